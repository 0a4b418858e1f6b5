"""``workstation listen`` against real peers on loopback: DCMTK's storescu, and Orthanc's C-MOVE.

Each test starts ``workstation --home TMP listen --port 0 --json`` as a subprocess (the listener
prints the port it got), sends, stops it with SIGTERM, and then opens the archive it wrote.
DCMTK and Orthanc run with ``TCP_NODELAY=1`` (see DESIGN.md).
"""

from __future__ import annotations

import json
import os
import queue
import resource
import shutil
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pydicom
import pytest
from peers import orthanc  # tests/ is on sys.path (conftest.py)
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove

from workstation.net.tcp import nodelay_handlers

pytestmark = pytest.mark.interop

archive_mod = pytest.importorskip("workstation.archive.archive", reason="the archive is not built")

TIMEOUT = 60.0
NODELAY = {**os.environ, "TCP_NODELAY": "1"}
LISTENER_AE = "WS"
# Each file of the series, and the storescu option that proposes its transfer syntax unchanged.
TS_FILES = {
    "1.dcm": "-xe",  # explicit VR little endian
    "2.dcm": "-xi",  # implicit VR little endian
    "3.dcm": "-xb",  # explicit VR big endian
    "4.dcm": "-xr",  # RLE lossless
    "5.dcm": "-xs",  # JPEG lossless SV1
    "6.dcm": "-xs",
    "7.dcm": "-xt",  # JPEG-LS lossless
    "8.dcm": "-xt",
    "9.dcm": "-xv",  # JPEG 2000 lossless
}

needs_dcmtk = pytest.mark.skipif(shutil.which("storescu") is None, reason="DCMTK storescu absent")
needs_orthanc = pytest.mark.skipif(
    shutil.which("Orthanc") is None, reason="Orthanc not installed (Debian package 'orthanc')"
)


# --- helpers ---------------------------------------------------------------------------------------
def dataset_bytes(part10: bytes) -> bytes:
    """What follows the File Meta Information of a Part 10 file."""
    assert part10[128:132] == b"DICM"
    group_length = int.from_bytes(part10[140:144], "little")
    return part10[144 + group_length :]


class Listener:
    """``workstation listen`` in a subprocess; its JSON lines arrive on a queue."""

    def __init__(self, home: Path, *options: str, preexec_fn=None) -> None:
        cmd = [sys.executable, "-m", "workstation", "--home", str(home), "listen", "--json"]
        cmd += ["--aet", LISTENER_AE, "--port", "0", "--bind", "127.0.0.1", *options]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=preexec_fn
        )
        self.lines: queue.Queue[dict | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        first = self.next_event()
        assert first["event"] == "listening", first
        self.port: int = first["port"]
        self.home = home

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def next_event(self, timeout: float = TIMEOUT) -> dict:
        event = self.lines.get(timeout=timeout)
        if event is None:
            raise AssertionError(f"listener exited: {self.proc.wait(5)}: {self.proc.stderr.read()}")
        return event

    def stop(self) -> list[dict]:
        """SIGTERM, then every event printed up to and including the summary."""
        self.proc.send_signal(signal.SIGTERM)
        events = []
        while not events or events[-1]["event"] != "summary":
            events.append(self.next_event())
        assert self.proc.wait(TIMEOUT) == 0, self.proc.stderr.read()
        return events

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(TIMEOUT)


@contextmanager
def listening(home: Path, *options: str, preexec_fn=None) -> Iterator[Listener]:
    listener = Listener(home, *options, preexec_fn=preexec_fn)
    try:
        yield listener
    finally:
        listener.kill()


def storescu(port: int, files: list[Path], *options: str, calling: str = "STORESCU"):
    cmd = ["storescu", *options, "-aet", calling, "-aec", LISTENER_AE, "127.0.0.1", str(port)]
    return subprocess.run(
        [*cmd, *map(str, files)], env=NODELAY, capture_output=True, text=True, timeout=TIMEOUT
    )


def archived(home: Path) -> dict[str, bytes]:
    """SOP Instance UID -> stored file bytes, from the archive's index."""
    with archive_mod.Archive(home / "archive") as archive:
        rows = list(archive.find("IMAGE", {"SOPInstanceUID": ""}))
        return {r["SOPInstanceUID"]: archive.path_of(r["rel_path"]).read_bytes() for r in rows}


# --- tests -----------------------------------------------------------------------------------------
@needs_dcmtk
def test_storescu_series_and_compressed_files_arrive_byte_identical(
    tmp_path: Path, corpus_dir: Path
) -> None:
    series = sorted((corpus_dir / "ct_series").glob("*/*.dcm"))
    ts_dir = corpus_dir / "transfer_syntax" / "dcm_qa_ts_siemens_mr"
    assert len(series) == 28
    with listening(tmp_path / "home", "--allow", "STORESCU") as listener:
        result = storescu(listener.port, series)
        assert result.returncode == 0, result.stderr
        for name, option in TS_FILES.items():  # one association per file: its own syntax
            result = storescu(listener.port, [ts_dir / name], option)
            assert result.returncode == 0, f"{name}: {result.stderr}"
        events = listener.stop()

    sent = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID: p.read_bytes()
            for p in [*series, *(ts_dir / n for n in TS_FILES)]}  # fmt: skip
    stored = archived(tmp_path / "home")
    assert sorted(stored) == sorted(sent)
    for uid, original in sent.items():
        got = pydicom.dcmread(pydicom.filebase.DicomBytesIO(stored[uid]), stop_before_pixels=True)
        want = pydicom.dcmread(pydicom.filebase.DicomBytesIO(original), stop_before_pixels=True)
        assert got.file_meta.TransferSyntaxUID == want.file_meta.TransferSyntaxUID, uid
        assert dataset_bytes(stored[uid]) == dataset_bytes(original), f"{uid} differs"
        assert got.file_meta.SourceApplicationEntityTitle == "STORESCU"

    batches = [e for e in events if e["event"] == "batch"]
    assert batches[0]["stored"] == 28 and batches[0]["outcome"] == "released"
    assert sum(b["stored"] for b in batches) == 37
    summary = events[-1]
    assert (summary["instances_new"], summary["studies"], summary["write_failed"]) == (37, 2, 0)


@needs_dcmtk
def test_unknown_calling_ae_is_rejected(tmp_path: Path, corpus_dir: Path) -> None:
    one = sorted((corpus_dir / "ct_series").glob("*/*.dcm"))[:1]
    with listening(tmp_path / "home", "--allow", "STORESCU") as listener:
        result = storescu(listener.port, one, calling="INTRUDER")
        events = listener.stop()
    assert result.returncode != 0
    assert "Calling AE Title Not Recognized" in result.stderr, result.stderr
    rejected = [e for e in events if e["event"] == "batch"]
    assert [(e["outcome"], e["calling_ae"]) for e in rejected] == [("rejected", "INTRUDER")]
    assert events[-1]["rejected_associations"] == 1 and events[-1]["instances_stored"] == 0
    assert archived(tmp_path / "home") == {}


@needs_orthanc
def test_orthanc_c_move_to_the_listener(tmp_path: Path, corpus_dir: Path) -> None:
    series = sorted((corpus_dir / "ct_series").glob("*/*.dcm"))
    study_uid = pydicom.dcmread(series[0], stop_before_pixels=True).StudyInstanceUID
    with listening(tmp_path / "home", "--allow", "ORTHANC") as listener:
        modalities = {"workstation": [LISTENER_AE, "127.0.0.1", listener.port]}
        with orthanc(tmp_path, modalities) as (http, dicom):
            for path in series:  # upload through the REST API
                request = urllib.request.Request(
                    f"http://127.0.0.1:{http}/instances", data=path.read_bytes(), method="POST"
                )
                with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                    assert json.load(response)["Status"] in ("Success", "AlreadyStored")

            ae = AE(ae_title="MOVESCU")
            ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TIMEOUT
            ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
            assoc = ae.associate("127.0.0.1", dicom, ae_title="ORTHANC",
                                 evt_handlers=nodelay_handlers())  # fmt: skip
            assert assoc.is_established
            query = Dataset()
            query.QueryRetrieveLevel = "STUDY"
            query.StudyInstanceUID = study_uid
            responses = list(
                assoc.send_c_move(query, LISTENER_AE, StudyRootQueryRetrieveInformationModelMove)
            )
            assoc.release()
        events = listener.stop()

    final = responses[-1][0]
    assert final.Status == 0x0000, final
    assert final.get("NumberOfCompletedSuboperations", len(series)) == len(series)
    stored = archived(tmp_path / "home")
    sent = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID: p for p in series}
    assert sorted(stored) == sorted(sent)
    for uid, path in sent.items():
        assert dataset_bytes(stored[uid]) == dataset_bytes(path.read_bytes()), uid
    batches = [e for e in events if e["event"] == "batch"]
    assert [(b["calling_ae"], b["stored"]) for b in batches] == [("ORTHANC", len(series))]


def test_write_failure_answers_out_of_resources_and_indexes_nothing(tmp_path: Path) -> None:
    """A real write failure: the listener process may not write files over 256 KiB (EFBIG).

    Small instances still go in; the 512 KiB one fails in the middle of its write, exactly
    like a disk filling up, and must be answered 0xA700 and leave nothing behind.
    """
    limit = 256 * 1024

    def small_files_only() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # Python ignores SIGXFSZ

    def ct(rows: int) -> Dataset:
        ds = Dataset()
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, generate_uid()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, generate_uid()
        ds.PatientID, ds.Modality = "FULL-DISK", "CT"
        ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored, ds.HighBit = rows, 512, 16, 16, 15
        ds.SamplesPerPixel, ds.PixelRepresentation = 1, 0
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.PixelData = bytes(rows * 512 * 2)
        ds.file_meta = pydicom.dataset.FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        return ds

    study = generate_uid()
    small, large = ct(64), ct(512)  # 64 KiB and 512 KiB of pixels
    with listening(tmp_path / "home", "--allow", "SCU", preexec_fn=small_files_only) as listener:
        ae = AE(ae_title="SCU")
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TIMEOUT
        ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
        assoc = ae.associate("127.0.0.1", listener.port, ae_title=LISTENER_AE)
        assert assoc.is_established
        statuses = [assoc.send_c_store(ds).Status for ds in (small, large)]
        assoc.release()
        events = listener.stop()

    assert statuses == [0x0000, 0xA700]
    assert events[-1]["write_failed"] == 1 and events[-1]["instances_stored"] == 1
    archive_root = tmp_path / "home" / "archive"
    assert sorted(archived(tmp_path / "home")) == [small.SOPInstanceUID]
    on_disk = sorted(p.name for p in archive_root.rglob("*") if p.is_file() and
                     p.suffix in (".dcm", ".part"))  # fmt: skip
    assert on_disk == [f"{small.SOPInstanceUID}.dcm"]  # no partial file anywhere
