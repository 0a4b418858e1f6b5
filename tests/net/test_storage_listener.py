"""The storage listener against a real pynetdicom peer, in-process, on loopback.

The store callbacks are real functions that keep what they receive in memory (or a real archive
in a temporary directory); nothing of pynetdicom is mocked.
"""

from __future__ import annotations

import errno
import json
import queue
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from pynetdicom.dsutils import encode
from pynetdicom.sop_class import Verification

from workstation.app.listener import (
    ArchiveReceiver,
    ListenerSettings,
    ReceivedBatch,
    status_for,
)
from workstation.archive.results import AddResult, AddStatus, ArchiveWriteError
from workstation.net.association import keep_answers_from_reactor, unread_rejection
from workstation.net.listener_events import AssociationReport, ListenerEvent, ReceivedInstance
from workstation.net.storage_scp import ENGINES, StorageListener
from workstation.net.tcp import nodelay_handlers

SCU_AE = "TESTSCU"
TIMEOUT = 30.0  # generous: a loaded 2-core CI machine, never reached when things work


def dataset_bytes(part10: bytes) -> bytes:
    """The data set of a Part 10 file: what follows the File Meta Information group."""
    assert part10[128:132] == b"DICM"
    (group_length,) = struct.unpack("<I", part10[140:144])
    return part10[144 + group_length :]


def ct_dataset(study: str | None = None, with_study: bool = True) -> Dataset:
    """A small, valid CT instance (8x8 pixels) in Explicit VR Little Endian."""
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    if with_study:
        ds.StudyInstanceUID = study or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = "NET-TEST"
    ds.PatientName = "Listener^Test"
    ds.Modality = "CT"
    ds.Rows = ds.Columns = 8
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = bytes(range(128))
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


class Recorder:
    """A store callback that keeps the files in memory and answers a chosen status."""

    def __init__(self, answer: Callable[[bytes], int] | None = None) -> None:
        self.files: list[tuple[bytes, str, str]] = []
        self.answer = answer or (lambda data: 0x0000)
        self.lock = threading.Lock()

    def __call__(self, data: bytes, calling_ae: str, peer: str) -> int:
        with self.lock:
            self.files.append((data, calling_ae, peer))
        return self.answer(data)


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """Each listener test runs with both acceptors."""
    return request.param


@pytest.fixture
def serve(engine: str) -> Iterator[Callable[..., StorageListener]]:
    started: list[StorageListener] = []

    def start(callback: Callable[[bytes, str, str], int], **kw: object) -> StorageListener:
        kw.setdefault("allowed_calling_aes", [SCU_AE])
        kw.setdefault("engine", engine)
        listener = StorageListener("LISTENER", 0, callback, bind_address="127.0.0.1", **kw)
        listener.start()
        started.append(listener)
        return listener

    yield start
    for listener in started:
        listener.stop(grace=1.0)


def associate(listener: StorageListener, calling: str = SCU_AE, contexts=None):
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TIMEOUT
    for uid, syntaxes in contexts or [(CTImageStorage, [ExplicitVRLittleEndian])]:
        ae.add_requested_context(uid, syntaxes)
    host, port = listener.address
    assoc = ae.associate(host, port, ae_title="LISTENER", evt_handlers=nodelay_handlers())
    return keep_answers_from_reactor(assoc)


def store(listener: StorageListener, *datasets: Dataset | str, calling: str = SCU_AE) -> list[int]:
    """Send in one association; the statuses answered."""
    contexts = []
    for d in datasets:
        ds = pydicom.dcmread(d, stop_before_pixels=True) if isinstance(d, str) else d
        contexts.append((ds.SOPClassUID, [ds.file_meta.TransferSyntaxUID]))
    assoc = associate(listener, calling, contexts)
    assert assoc.is_established
    try:
        return [status_of(assoc.send_c_store(d)) for d in datasets]
    finally:
        assoc.release()


# --- the network side, with an in-memory callback ---------------------------------------------
def test_store_hands_over_the_data_set_as_received(serve) -> None:
    rec = Recorder()
    listener = serve(rec)
    ds = ct_dataset()
    rle = get_testdata_file("MR_small_RLE.dcm")  # compressed: must arrive still compressed
    assert store(listener, ds, rle) == [0x0000, 0x0000]

    (first, calling, peer), (second, _, _) = rec.files
    assert calling == SCU_AE and peer.startswith("127.0.0.1:")
    meta = pydicom.dcmread(pydicom.filebase.DicomBytesIO(first), stop_before_pixels=True).file_meta
    assert meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert meta.SourceApplicationEntityTitle == SCU_AE
    assert dataset_bytes(first) == encode(ds, False, True)

    original = Path(rle).read_bytes()
    received = pydicom.dcmread(pydicom.filebase.DicomBytesIO(second))
    assert received.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.5"  # RLE Lossless
    assert dataset_bytes(second) == dataset_bytes(original)  # byte for byte, never re-encoded


def test_status_mapping_of_the_callback(serve) -> None:
    def answer(data: bytes) -> int:
        marker = pydicom.dcmread(pydicom.filebase.DicomBytesIO(data)).PatientID
        if marker == "ENOSPC":
            raise OSError(errno.ENOSPC, "No space left on device")
        if marker == "ARCHIVE":
            raise ArchiveWriteError("store/...: write failed")
        if marker == "BUG":
            raise RuntimeError("a bug in the callback")
        if marker == "GARBAGE":
            return "not a status"  # type: ignore[return-value]
        return {"C000": 0xC000, "OK": 0x0000}[marker]

    listener = serve(Recorder(answer))
    sent = []
    for marker in ("OK", "ENOSPC", "ARCHIVE", "C000", "BUG", "GARBAGE"):
        ds = ct_dataset()
        ds.PatientID = marker
        sent.append(ds)
    assert store(listener, *sent) == [0x0000, 0xA700, 0xA700, 0xC000, 0x0110, 0x0110]


def test_unknown_calling_ae_is_rejected(serve) -> None:
    events: queue.Queue[ListenerEvent] = queue.Queue()
    rec = Recorder()
    listener = serve(rec)
    listener.add_observer(events.put)
    assoc = associate(listener, calling="STRANGER")
    # pynetdicom's requestor can take a rejection followed at once by the close for an abort
    # and leave the A-ASSOCIATE-RJ unread (association.unread_rejection): read it either way
    rj = assoc.acceptor.primitive if assoc.is_rejected else unread_rejection(assoc)
    assert rj is not None and not assoc.is_established
    assert (rj.result, rj.result_source, rj.diagnostic) == (0x01, 0x01, 0x03)  # calling AE unknown
    assert rec.files == []
    (report,) = take(events, AssociationReport)
    assert report.outcome == "rejected" and "STRANGER" in report.reason


def test_accept_any_must_be_explicit(serve) -> None:
    with pytest.raises(ValueError, match="no calling AE title is allowed"):
        StorageListener("LISTENER", 0, Recorder())
    with pytest.raises(ValueError, match="not a valid AE title"):
        StorageListener("A" * 17, 0, Recorder(), accept_any=True)
    listener = serve(Recorder(), allowed_calling_aes=(), accept_any=True)
    assert store(listener, ct_dataset(), calling="ANYBODY") == [0x0000]


def test_echo_nodelay_and_events(serve) -> None:
    events: queue.Queue[ListenerEvent] = queue.Queue()
    listener = serve(Recorder(lambda data: 0xA700 if b"FAIL" in data else 0x0000))
    listener.add_observer(events.put)
    assoc = associate(listener, contexts=[(Verification, None), (CTImageStorage, None)])
    assert assoc.is_established
    # TCP_NODELAY on both ends (tcp.py on ours through nodelay_handlers, the listener on its own)
    ours = assoc.dul.socket.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    (server_assoc,) = listener._server.active_associations  # noqa: SLF001 - a look inside
    server_socket = getattr(server_assoc, "socket", None) or server_assoc.dul.socket.socket
    theirs = server_socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    assert ours and theirs
    assert status_of(assoc.send_c_echo()) == 0x0000
    ok, failing = ct_dataset(), ct_dataset()
    failing.PatientID = "FAIL"
    assert [status_of(assoc.send_c_store(d)) for d in (ok, failing)] == [0x0000, 0xA700]
    assoc.release()
    *received, report = take(events, AssociationReport)
    assert all(isinstance(r, ReceivedInstance) for r in received)
    assert [(r.sop_instance_uid, r.ok) for r in received] == [
        (ok.SOPInstanceUID, True),
        (failing.SOPInstanceUID, False),
    ]
    assert (report.outcome, report.received, report.failed) == ("released", 1, 1)
    assert report.size == received[0].size


def test_serve_forever_returns_on_request_stop(engine: str) -> None:
    listener = StorageListener(
        "LISTENER", 0, Recorder(), bind_address="127.0.0.1", accept_any=True, engine=engine
    )
    listener.start()  # bound before serve_forever (which then only waits)
    port = listener.address[1]
    thread = threading.Thread(target=listener.serve_forever, daemon=True)
    thread.start()
    listener.request_stop()
    thread.join(TIMEOUT)
    assert not thread.is_alive() and not listener.running
    with socket.socket() as s:  # the port is free again
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_stop_is_prompt_with_a_silent_connection_and_can_return_at_once(engine: str) -> None:
    """A TCP probe that never sends A-ASSOCIATE must not hold the stop for the grace period."""
    listener = StorageListener(
        "LISTENER", 0, Recorder(), bind_address="127.0.0.1", accept_any=True, engine=engine
    )
    listener.start()
    port = listener.address[1]
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as probe:
        assert probe.getpeername()[1] == port
        started = time.monotonic()
        thread = listener.stop(grace=30.0, wait=False)
        assert time.monotonic() - started < 0.5 and thread is not None  # the GUI thread's case
        thread.join(TIMEOUT)
        assert not thread.is_alive() and time.monotonic() - started < 5.0
    assert not listener.running


# --- joined to the archive ---------------------------------------------------------------------
class MemorySink:
    """An in-memory archive: answers from a script of outcomes."""

    def __init__(self) -> None:
        self.sources: list[str] = []

    def add_bytes(self, data: bytes, source: str) -> AddResult:
        self.sources.append(source)
        ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(data), stop_before_pixels=True)
        status = AddStatus(ds.PatientID)
        if ds.get("PatientName") == "Disk^Full":
            raise ArchiveWriteError(f"{source}: [Errno 28] No space left on device")
        if ds.get("PatientName") == "Index^Full":
            raise sqlite3.OperationalError("database or disk is full")
        return AddResult(status, source, ds.SOPInstanceUID, ds.get("StudyInstanceUID", ""))


def test_status_for_every_archive_outcome() -> None:
    assert [status_for(AddResult(s, "x")) for s in AddStatus] == [0, 0, 0, 0xC000]


def test_receiver_maps_archive_outcomes_and_sums_up_by_study() -> None:
    batches: queue.Queue[ReceivedBatch] = queue.Queue()
    sink = MemorySink()
    settings = ListenerSettings("LISTENER", 0, "127.0.0.1", (SCU_AE,), ack="indexed")
    receiver = ArchiveReceiver(sink, settings, on_batch=batches.put)
    receiver.start()
    try:
        study = generate_uid()
        sent = []
        for outcome in ("imported", "imported", "duplicate", "conflict", "rejected", "imported"):
            ds = ct_dataset(study)
            ds.PatientID = outcome
            sent.append(ds)
        sent.append(ct_dataset(study))
        sent[-1].PatientID = "imported"
        sent[-2].PatientName, sent[-1].PatientName = "Disk^Full", "Index^Full"
        assert store(receiver.listener, *sent) == [0, 0, 0, 0, 0xC000, 0xA700, 0xA700]
        batch = batches.get(timeout=TIMEOUT)
    finally:
        receiver.stop()
    assert all(s.startswith(f"c-store from {SCU_AE}@127.0.0.1:") for s in sink.sources)
    assert batch.outcome == "released" and batch.stored == 4
    assert [(t.study_instance_uid, t.imported, t.duplicate, t.conflict) for t in batch.studies] == [
        (study, 2, 1, 1)
    ]
    assert (batch.rejected, batch.write_failed) == (1, 2)


@pytest.mark.parametrize("ack", ["indexed", "spooled"])
def test_real_archive_write_failure_answers_out_of_resources(tmp_path: Path, ack: str) -> None:
    archive_mod = pytest.importorskip("workstation.archive.archive")
    archive = archive_mod.Archive(tmp_path / "archive")
    settings = ListenerSettings("LISTENER", 0, "127.0.0.1", (SCU_AE,), ack=ack)  # type: ignore[arg-type]
    receiver = ArchiveReceiver(archive, settings)
    receiver.start()
    try:
        good, no_study = ct_dataset(), ct_dataset(with_study=False)
        # Spooled, the header is examined after the answer: acknowledged, then quarantined.
        expected = [0x0000, 0xC000] if ack == "indexed" else [0x0000, 0x0000]
        assert store(receiver.listener, good, no_study) == expected
        # The area the ack path writes becomes a file: every write now fails (ENOTDIR), as it
        # would on a full or read-only disk, and even root cannot write through it.
        broken = tmp_path / "archive" / ("tmp" if ack == "indexed" else "spool")
        if ack != "indexed":
            receiver._ingester.close()  # white box: let the spool empty before breaking it
            assert not list(broken.iterdir())
        broken.rmdir()
        broken.write_bytes(b"")
        failing = ct_dataset()
        assert store(receiver.listener, failing) == [0xA700]
    finally:
        receiver.stop()
    stored = sorted(p.name for p in (tmp_path / "archive" / "store").rglob("*.dcm"))
    assert stored == [f"{good.SOPInstanceUID}.dcm"]  # nothing partial, nothing of the failures
    rows = archive.find("IMAGE", {"SOPInstanceUID": ""})
    assert [r["SOPInstanceUID"] for r in rows] == [good.SOPInstanceUID]
    quarantined = list((tmp_path / "archive" / "quarantine").rglob("*.dcm"))
    if ack == "spooled":  # acknowledged, so kept: byte for byte, with the reason beside it
        assert [dataset_bytes(q.read_bytes()) for q in quarantined] == [
            encode(no_study, False, True)
        ]
        reasons = next((tmp_path / "archive" / "quarantine").rglob("REASONS.tsv")).read_text()
        assert "StudyInstanceUID" in reasons
    else:
        assert quarantined == []
    archive.close()


def test_spooled_instances_are_indexed_byte_identical_after_stop(tmp_path: Path) -> None:
    archive_mod = pytest.importorskip("workstation.archive.archive")
    archive = archive_mod.Archive(tmp_path / "archive")
    batches: queue.Queue[ReceivedBatch] = queue.Queue()
    settings = ListenerSettings("LISTENER", 0, "127.0.0.1", (SCU_AE,))
    assert settings.ack == "spooled"  # the default
    receiver = ArchiveReceiver(archive, settings, on_batch=batches.put)
    receiver.start()
    study_a, study_b = generate_uid(), generate_uid()
    sent = [ct_dataset(study_a) for _ in range(70)] + [ct_dataset(study_b) for _ in range(5)]
    sent.append(sent[0])  # the same instance again: a duplicate
    try:
        assert store(receiver.listener, *sent) == [0x0000] * len(sent)
    finally:
        receiver.stop()
    assert not list((tmp_path / "archive" / "spool").iterdir())  # drained by stop()
    batch = batches.get(timeout=TIMEOUT)
    assert batch.outcome == "released" and batch.stored == len(sent)
    assert [(t.study_instance_uid, t.imported, t.duplicate) for t in batch.studies] == [
        (study_a, 70, 1),
        (study_b, 5, 0),
    ]
    rows = {
        r["SOPInstanceUID"]: r["rel_path"] for r in archive.find("IMAGE", {"SOPInstanceUID": ""})
    }
    assert set(rows) == {ds.SOPInstanceUID for ds in sent}
    for ds in sent:
        on_disk = archive.path_of(rows[ds.SOPInstanceUID]).read_bytes()
        assert dataset_bytes(on_disk) == encode(ds, False, True)
    archive.close()


def test_spool_left_by_a_killed_listener_is_indexed_on_open(tmp_path: Path) -> None:
    """``workstation listen`` is SIGKILLed right after the last acknowledgement: every
    acknowledged instance is indexed, byte for byte, when the archive is opened again."""
    archive_mod = pytest.importorskip("workstation.archive.archive")
    home = tmp_path / "home"
    cmd = [sys.executable, "-m", "workstation", "--home", str(home), "listen", "--json",
           "--aet", "LISTENER", "--port", "0", "--bind", "127.0.0.1", "--allow", SCU_AE]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(proc.stdout.readline())  # type: ignore[union-attr]
        assert first["event"] == "listening", (first, proc.stderr)
        ae = AE(ae_title=SCU_AE)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TIMEOUT
        ae.add_requested_context(CTImageStorage, [ExplicitVRLittleEndian])
        assoc = ae.associate("127.0.0.1", first["port"], ae_title="LISTENER",
                             evt_handlers=nodelay_handlers())  # fmt: skip
        keep_answers_from_reactor(assoc)
        assert assoc.is_established
        sent = [ct_dataset() for _ in range(40)]
        for ds in sent[:-1]:
            assert status_of(assoc.send_c_store(ds)) == 0x0000
        assert status_of(assoc.send_c_store(sent[-1])) == 0x0000
        proc.kill()  # SIGKILL right after the last ack: no drain, no clean close
        proc.wait(TIMEOUT)
        assoc.abort()
        left = len(list((home / "archive" / "spool").glob("*.dcm")))
        print(f"{left} acknowledged instance(s) still spooled at the kill")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(TIMEOUT)
    with archive_mod.Archive(home / "archive") as archive:
        rows = {
            r["SOPInstanceUID"]: r["rel_path"]
            for r in archive.find("IMAGE", {"SOPInstanceUID": ""})
        }
        assert set(rows) == {ds.SOPInstanceUID for ds in sent}
        for ds in sent:
            on_disk = archive.path_of(rows[ds.SOPInstanceUID]).read_bytes()
            assert dataset_bytes(on_disk) == encode(ds, False, True)
        assert not list((home / "archive" / "spool").iterdir())


# --- helpers -------------------------------------------------------------------------------------
def status_of(response: Dataset) -> int:
    """The Status of a DIMSE response; pynetdicom gives an empty Dataset when none came."""
    assert "Status" in response, f"no response within the DIMSE timeout ({TIMEOUT} s)"
    return int(response.Status)


def take(events: queue.Queue, until: type, timeout: float = TIMEOUT) -> list:
    """Events from the queue up to and including the first of type ``until``."""
    taken = []
    while not taken or not isinstance(taken[-1], until):
        taken.append(events.get(timeout=timeout))  # queue.Empty after ``timeout``: a failure
    return taken


def test_our_store_scu_gets_every_answer_from_a_fast_peer() -> None:
    """Our C-STORE requestor (net/store_scu.store, the "Send to…" path) sending many small
    instances to the fast engine in this process, which answers within microseconds: every
    instance gets its status. Without keep_answers_from_reactor, pynetdicom's reactor thread took
    about one answer in a few hundred (issue #875) and the send stopped there after waiting out
    the DIMSE timeout."""
    from workstation.net.nodes import LocalIdentity, RemoteNode
    from workstation.net.store_scu import store as store_scu

    study = generate_uid()
    got: list[bytes] = []
    listener = StorageListener(
        "LISTENER", 0, lambda data, _ae, _peer: got.append(data) or 0,
        bind_address="127.0.0.1", allowed_calling_aes=["SENDER"], engine="fast",
    )  # fmt: skip
    listener.start()
    try:
        host, port = listener.address
        node = RemoteNode("fast peer", "LISTENER", host, port, dimse_timeout=3)
        datasets = [ct_dataset(study) for _ in range(600)]
        outcomes = store_scu(LocalIdentity("SENDER", 11112), node, datasets)
    finally:
        listener.stop(grace=1.0)
    missing = [o for o in outcomes if o.status != 0]
    assert not missing, missing[:3]
    assert len(outcomes) == len(datasets) == len(got)
