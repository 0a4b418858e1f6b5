"""Retrieve speed: the same 400-image CT study from Orthanc, ours against DCMTK, in one run.

Orthanc runs on loopback (its own storage, no plugins, TCP_NODELAY=1) holding the uncompressed
400-slice CT phantom of ``benchmarks/series_load.py``. Each repetition, interleaved:

* ours, C-MOVE: ``RetrieveService.retrieve`` into a fresh archive -- a temporary listener on our
  port, Orthanc's C-MOVE into it, every instance spooled and indexed (the call returns once the
  archive has them all) -- what ``workstation retrieve`` does, in-process;
* ours, C-MOVE, pynetdicom engine: the same with the listener on pynetdicom's acceptor (the
  previous one), started and stopped inside the timing as the temporary listener is;
* DCMTK, C-MOVE: ``movescu`` asking Orthanc to send to a fresh ``storescp`` (plain files, no
  index; TCP_NODELAY=1), timed from the ``movescu`` start to its exit;
* ours, C-MOVE into plain files: our ``move`` into our ``StorageListener`` (fast engine) whose
  store callback writes each file into a folder, no archive: the same job as movescu+storescp;
* ours, C-GET: the same ``retrieve`` by C-GET (a study-level C-FIND first for the SOP Classes
  in Study, which Orthanc answers; an image-level listing where a node does not), then C-GET
  into the archive;
* DCMTK, C-GET: ``getscu`` writing plain files;
* C-FIND latency at STUDY level (patient ID key): our ``find`` (a new association per query)
  against ``findscu`` (a new process per query, so its start-up is included: reported apart).

``ratio_vs_dcmtk`` is ours / DCMTK images per second for C-MOVE (target >= 1.0). Each run's CPU
time is reported per image too: the receiving side (our whole process, every thread; or the
DCMTK processes) and Orthanc's, the sender's. On a 2-core machine the two together bound the
rate, so they say where a retrieve's time goes.

Usage: ``python benchmarks/retrieve.py [--quick] [--reps N]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

from ingest import free_port, stop, wait_for_port  # noqa: E402
from series_load import uncompressed_series  # noqa: E402

DATA = ROOT / "_data"
N = 400
NODELAY = {**os.environ, "TCP_NODELAY": "1"}
TIMEOUT = 300.0
OURS, STORESCP, SCU = "OURS", "STORESCP", "BENCHSCU"
FIND_QUERIES = 20


_ORTHANC_PID = [0]
#: The ingest process our retrieves index in, started once as the app's Services start one.
_INGEST: list = []


def _proc_cpu(pid: int) -> float:
    """CPU seconds of a running process (0 when it is not there)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def ingest_process():
    """The shared :class:`IngestProcess` (None where this tree has none: an A/B of old code)."""
    if not _INGEST:
        try:
            from workstation.archive.ingest_process import IngestProcess
        except ImportError:
            _INGEST.append(None)
        else:
            process = IngestProcess()
            process.wait_ready(60)
            _INGEST.append(process)
    return _INGEST[0]


def cpu_seconds() -> dict[str, float]:
    """CPU seconds so far: this process (every thread), its ended children (movescu, storescp,
    getscu) and Orthanc."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    ingest = _INGEST[0] if _INGEST else None
    ours_cpu = time.process_time() + (_proc_cpu(ingest.pid) if ingest is not None else 0.0)
    return {"ours": ours_cpu, "children": kids.ru_utime + kids.ru_stime,
            "orthanc": _proc_cpu(_ORTHANC_PID[0])}  # fmt: skip


@contextmanager
def orthanc(tmp: Path, ours_port: int, storescp_port: int) -> Iterator[int]:
    http, dicom = free_port(), free_port()
    config = {"Name": "bench", "StorageDirectory": str(tmp / "db"), "IndexDirectory": str(tmp / "db"),
              "Plugins": [], "HttpPort": http, "DicomPort": dicom, "DicomAet": "ORTHANC",
              "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
              "DicomCheckCalledAet": False, "StorageCompression": False, "SaveJobs": False,
              "DicomAlwaysAllowGet": True, "DicomAlwaysAllowMove": True,
              "DicomModalities": {"ours": [OURS, "127.0.0.1", ours_port],
                                  "storescp": [STORESCP, "127.0.0.1", storescp_port],
                                  "scu": [SCU, "127.0.0.1", 1]}}  # fmt: skip
    (tmp / "orthanc.json").write_text(json.dumps(config))
    proc = subprocess.Popen(["Orthanc", str(tmp / "orthanc.json")], env=NODELAY,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    _ORTHANC_PID[0] = proc.pid
    try:
        wait_for_port(dicom, proc, "Orthanc")
        wait_for_port(http, proc, "Orthanc")
        yield dicom
    finally:
        stop(proc)


def load(files: list[Path], port: int) -> None:
    cmd = ["storescu", "-aet", SCU, "-aec", "ORTHANC", "127.0.0.1", str(port), *map(str, files)]
    result = subprocess.run(cmd, env=NODELAY, capture_output=True, text=True, timeout=TIMEOUT)
    if result.returncode != 0:
        raise RuntimeError(f"storescu into Orthanc failed: {result.stderr[-500:]}")


def ours(node, identity, study: str, method: str, engine: str = "") -> float:
    """Seconds for one retrieve; ``engine`` names the listener's acceptor (default: its own)."""
    from workstation.app.listener import ArchiveReceiver, ListenerSettings
    from workstation.app.retrieve_service import RetrieveService
    from workstation.archive.archive import Archive

    with tempfile.TemporaryDirectory(prefix="retrieve-", dir=DATA) as tmp:
        archive = Archive(Path(tmp) / "archive")
        ingest = ingest_process()  # started once, outside the timing (the app starts it early)
        extra = {} if ingest is None else {"ingest": ingest}
        try:
            started = time.perf_counter()
            receiver = None
            if engine:
                settings = ListenerSettings(identity.ae_title, identity.port, "127.0.0.1",
                                            node.sends_as, engine=engine)  # fmt: skip
                receiver = ArchiveReceiver(archive, settings, **extra)
                receiver.start()
            try:
                service = RetrieveService(archive, identity, receiver=receiver, **extra)
                report = service.retrieve(node, study, method=method)
            finally:
                if receiver is not None:
                    receiver.stop()  # drains the spool: every instance indexed
            seconds = time.perf_counter() - started
        finally:
            archive.close()
    if report.outcome != "complete" or report.arrived != N:
        raise RuntimeError(f"our {method} did not complete: {report.message}")
    return seconds


def ours_move_files(node, identity, study: str) -> float:
    """Seconds for our C-MOVE into our listener writing plain files (like storescp -od)."""
    from workstation.net.retrieve import RetrieveTarget, move
    from workstation.net.storage_scp import StorageListener

    with tempfile.TemporaryDirectory(prefix="retrieve-", dir=DATA) as tmp:
        names = iter(range(N * 2))

        def write(data: bytes, calling_ae: str, peer: str) -> int:
            Path(tmp, f"{next(names)}.dcm").write_bytes(data)
            return 0x0000

        started = time.perf_counter()
        listener = StorageListener(identity.ae_title, identity.port, write,
                                   bind_address="127.0.0.1", allowed_calling_aes=node.sends_as)  # fmt: skip
        listener.start()
        try:
            move(identity, node, RetrieveTarget(study))
        finally:
            listener.stop()
        seconds = time.perf_counter() - started
        got = len(list(Path(tmp).iterdir()))
    if got != N:
        raise RuntimeError(f"our C-MOVE into files: {got} files")
    return seconds


def dcmtk_move(orthanc_port: int, storescp_port: int, study: str) -> float:
    with tempfile.TemporaryDirectory(prefix="retrieve-", dir=DATA) as tmp:
        scp = subprocess.Popen(["storescp", "-od", tmp, str(storescp_port)], env=NODELAY,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            wait_for_port(storescp_port, scp, "storescp")
            cmd = ["movescu", "-S", "-aet", SCU, "-aec", "ORTHANC", "-aem", STORESCP,
                   "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}",
                   "127.0.0.1", str(orthanc_port)]  # fmt: skip
            started = time.perf_counter()
            result = subprocess.run(cmd, env=NODELAY, capture_output=True, text=True,
                                    timeout=TIMEOUT)  # fmt: skip
            seconds = time.perf_counter() - started
        finally:
            stop(scp)
        got = len(list(Path(tmp).iterdir()))
    if result.returncode != 0 or got != N:
        raise RuntimeError(f"movescu -> storescp: {got} files; {result.stderr[-500:]}")
    return seconds


def dcmtk_get(orthanc_port: int, study: str) -> float:
    with tempfile.TemporaryDirectory(prefix="retrieve-", dir=DATA) as tmp:
        cmd = ["getscu", "-S", "-aet", SCU, "-aec", "ORTHANC", "-od", tmp,
               "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}",
               "127.0.0.1", str(orthanc_port)]  # fmt: skip
        started = time.perf_counter()
        result = subprocess.run(cmd, env=NODELAY, capture_output=True, text=True, timeout=TIMEOUT)
        seconds = time.perf_counter() - started
        got = len(list(Path(tmp).iterdir()))
    if result.returncode != 0 or got != N:
        raise RuntimeError(f"getscu: {got} files; {result.stderr[-500:]}")
    return seconds


def find_ours(node, identity, patient_id: str) -> float:
    from workstation.net.find import find

    started = time.perf_counter()
    results = list(find(identity, node, "study", {"PatientID": patient_id}))
    seconds = time.perf_counter() - started
    if len(results) != 1:
        raise RuntimeError(f"our C-FIND found {len(results)} studies")
    return seconds


def find_dcmtk(orthanc_port: int, patient_id: str) -> float:
    cmd = ["findscu", "-S", "-aet", SCU, "-aec", "ORTHANC", "-k", "QueryRetrieveLevel=STUDY",
           "-k", f"PatientID={patient_id}", "-k", "StudyInstanceUID", "-k", "PatientName",
           "-k", "StudyDate", "-k", "StudyDescription", "127.0.0.1", str(orthanc_port)]  # fmt: skip
    started = time.perf_counter()
    result = subprocess.run(cmd, env=NODELAY, capture_output=True, text=True, timeout=60)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"findscu failed: {result.stderr[-300:]}")
    return seconds


def process_start() -> float:
    """What starting a DCMTK tool costs here (``findscu --version``), to read findscu's time."""
    started = time.perf_counter()
    subprocess.run(["findscu", "--version"], capture_output=True, timeout=60)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one repetition (about a minute)")
    parser.add_argument("--reps", type=int, help="repetitions (default 5, quick 1)")
    args = parser.parse_args()
    reps = args.reps or (1 if args.quick else 5)
    for tool in ("Orthanc", "storescu", "storescp", "movescu", "getscu", "findscu"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed: cannot run this benchmark", file=sys.stderr)
            return 2
    import pydicom

    from workstation.app.cli_network import LISTENER_SWITCH_INTERVAL
    from workstation.net.nodes import LocalIdentity, RemoteNode

    files = [Path(p) for p in uncompressed_series(N)]
    size = sum(p.stat().st_size for p in files)
    first = pydicom.dcmread(files[0], stop_before_pixels=True)
    study, patient_id = str(first.StudyInstanceUID), str(first.PatientID)
    sys.setswitchinterval(LISTENER_SWITCH_INTERVAL)  # as 'workstation retrieve' and 'listen' run
    ours_port, storescp_port = free_port(), free_port()
    identity = LocalIdentity(OURS, ours_port)
    times: dict[str, list[float]] = {k: [] for k in ("ours_move", "ours_move_pynetdicom",
                                                     "ours_move_files", "dcmtk_move", "ours_get",
                                                     "dcmtk_get")}  # fmt: skip
    cpu: dict[str, list[dict[str, float]]] = {k: [] for k in times}
    finds: dict[str, list[float]] = {"ours": [], "findscu": [], "process_start": []}
    with tempfile.TemporaryDirectory(prefix="retrieve-orthanc-", dir=DATA) as tmp:
        with orthanc(Path(tmp), ours_port, storescp_port) as port:
            load(files, port)
            node = RemoteNode("orthanc", "ORTHANC", "127.0.0.1", port)
            ours(node, identity, study, "C-MOVE")  # warm-up: Orthanc's cache, our imports
            runs = {
                "ours_move": lambda: ours(node, identity, study, "C-MOVE"),
                "ours_move_pynetdicom": lambda: ours(node, identity, study, "C-MOVE",
                                                     engine="pynetdicom"),
                "ours_move_files": lambda: ours_move_files(node, identity, study),
                "dcmtk_move": lambda: dcmtk_move(port, storescp_port, study),
                "ours_get": lambda: ours(node, identity, study, "C-GET"),
                "dcmtk_get": lambda: dcmtk_get(port, study),
            }  # fmt: skip
            for _ in range(reps):  # interleaved
                for key, run in runs.items():
                    before = cpu_seconds()
                    times[key].append(run())
                    after = cpu_seconds()
                    cpu[key].append({k: after[k] - before[k] for k in after})
                for _ in range(FIND_QUERIES):
                    finds["ours"].append(find_ours(node, identity, patient_id))
                    finds["findscu"].append(find_dcmtk(port, patient_id))
                finds["process_start"].append(process_start())

    rate = {k: N / statistics.median(v) for k, v in times.items()}
    find_ms = {k: 1000 * statistics.median(v) for k, v in finds.items()}
    ratio = rate["ours_move"] / rate["dcmtk_move"]
    ratio_get = rate["ours_get"] / rate["dcmtk_get"]
    # each repetition's own C-MOVE ratio (ours and DCMTK ran seconds apart): the spread says how
    # much one median of a noisy machine can be trusted
    per_rep = [d / o for o, d in zip(times["ours_move"], times["dcmtk_move"], strict=True)]
    print(f"retrieve: {N} CT images 512x512 ({size / 1e6:.0f} MB) from Orthanc on loopback, "
          f"{reps} interleaved repetition(s), medians")  # fmt: skip
    # CPU milliseconds per image: the receiving side (our process, or DCMTK's processes) and
    # Orthanc, the sender; on 2 cores the two together bound the rate
    cpu_ms = {
        key: {
            part: round(1000 * statistics.median(c[part] for c in runs_cpu) / N, 2)
            for part in ("ours", "children", "orthanc")
        }
        for key, runs_cpu in cpu.items()
    }
    print(f"{'retrieve':<52}{'images/s':>10}{'MB/s':>8}{'seconds':>9}"
          f"{'cpu ms/img':>12}{'Orthanc':>9}")  # fmt: skip
    labels = {
        "ours_move": "ours: C-MOVE into our listener + archive (indexed)",
        "ours_move_pynetdicom": "  the same, pynetdicom engine",
        "ours_move_files": "ours: C-MOVE into our listener, files, no index",
        "dcmtk_move": "DCMTK: movescu -> storescp (files, no index)",
        "ours_get": "ours: C-GET into the archive (study find first)",
        "dcmtk_get": "DCMTK: getscu (files, no index)",
    }
    for key, label in labels.items():
        r = rate[key]
        receiver = cpu_ms[key]["ours"] + cpu_ms[key]["children"]
        print(f"{label:<52}{r:>10.1f}{r * size / N / 1e6:>8.1f}{N / r:>9.2f}"
              f"{receiver:>12.2f}{cpu_ms[key]['orthanc']:>9.2f}")  # fmt: skip
    print(f"C-FIND at STUDY level (patient ID), median of {len(finds['ours'])}: ours "
          f"{find_ms['ours']:.1f} ms (new association each); findscu {find_ms['findscu']:.1f} ms "
          f"per run, of which ~{find_ms['process_start']:.1f} ms is starting the process")  # fmt: skip
    old_ratio = rate["ours_move_pynetdicom"] / rate["dcmtk_move"]
    files_ratio = rate["ours_move_files"] / rate["dcmtk_move"]
    print(f"ratio ours / DCMTK: C-MOVE {ratio:.2f} (target 1.0; pynetdicom engine "
          f"{old_ratio:.2f}; files without the archive {files_ratio:.2f}), C-GET "
          f"{ratio_get:.2f}; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")  # fmt: skip
    print(f"C-MOVE ratio of each repetition: {' '.join(f'{r:.2f}' for r in per_rep)} "
          f"({sum(r >= 1.0 for r in per_rep)} of {len(per_rep)} at or above 1.0)")  # fmt: skip
    print(json.dumps({
        "benchmark": "retrieve",
        "images": N,
        "bytes": size,
        "reps": reps,
        "machine": f"{platform.machine()} {os.cpu_count()} cpu",
        "images_per_s": {k: round(v, 1) for k, v in rate.items()},
        "cpu_ms_per_image": cpu_ms,
        "ratio_vs_dcmtk": round(ratio, 3),
        "ratio_per_repetition": [round(r, 3) for r in per_rep],
        "ratio_get_vs_dcmtk": round(ratio_get, 3),
        "ratio_pynetdicom_engine_vs_dcmtk": round(old_ratio, 3),
        "ratio_files_no_archive_vs_dcmtk": round(files_ratio, 3),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "find_ms": {k: round(v, 2) for k, v in find_ms.items()},
        "target_ratio": 1.0,
        "target_met": ratio >= 1.0,
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
