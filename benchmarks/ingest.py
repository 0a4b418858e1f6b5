"""Ingest speed: DCMTK ``storescu`` sending a 400-image CT series to our listener and to Orthanc.

Both receivers run on loopback as separate processes and are started fresh (empty storage) for
every repetition; only the ``storescu`` run is timed (one association, all files, TCP_NODELAY=1,
page cache warm). Repetitions are interleaved and the medians compared:

* ours: ``workstation --home TMP listen`` (our fast acceptor + the real archive, spooled);
* ours, pynetdicom engine: the same with ``--engine pynetdicom`` (the previous acceptor);
* orthanc: Orthanc on loopback with its own storage, no plugins (TCP_NODELAY=1);
* storescp: DCMTK ``storescp`` writing plain files, no index (a reference: the network floor);
* ours, network only: our ``StorageListener`` with a store callback that discards the data,
  with either engine;
* archive only: ``Archive.add_bytes`` on the same 400 files in one process, no network.

The last two show where our time goes. The series is the uncompressed CT phantom of
``benchmarks/series_load.py`` (generated once under ``benchmarks/_data/series_load/``).

Usage: ``python benchmarks/ingest.py [--quick] [--reps N]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

from series_load import uncompressed_series  # noqa: E402

DATA = ROOT / "_data"
N = 400
NODELAY = {**os.environ, "TCP_NODELAY": "1"}
TIMEOUT = 300.0
SCU_AE = "BENCHSCU"


# --- data -----------------------------------------------------------------------------------------
def series_files() -> list[Path]:
    """400 uncompressed 512x512 CT files, shared with ``series_load.py``."""
    return [Path(p) for p in uncompressed_series(N)]


# --- receivers (each a context manager yielding (called AE, port)) -------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
            return
        except OSError:
            threading.Event().wait(0.02)
    raise RuntimeError(f"{what}: nothing listening on 127.0.0.1:{port} after 60 s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(30)


@contextmanager
def ours(tmp: Path, engine: str = "fast") -> Iterator[tuple[str, int]]:
    cmd = [sys.executable, "-m", "workstation", "--home", str(tmp / "home"), "listen", "--json",
           "--aet", "OURS", "--port", "0", "--bind", "127.0.0.1", "--allow", SCU_AE,
           "--engine", engine]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT.parent)
    try:
        first = json.loads(proc.stdout.readline() or "{}")  # type: ignore[union-attr]
        if first.get("event") != "listening":
            raise RuntimeError(f"workstation listen did not start: {first}")
        yield "OURS", first["port"]
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
        batches = [e for e in map(json.loads, rest.splitlines()) if e["event"] == "batch"]
        if batches:
            LAST_BATCH.clear()
            LAST_BATCH.update(batches[-1])
    finally:
        stop(proc)


LAST_BATCH: dict = {}  # the last "batch" line of our listener: association and archive seconds

_NULL_LISTENER = """
import sys
from workstation.net.storage_scp import StorageListener
listener = StorageListener("NULL", 0, lambda data, calling_ae, peer: 0x0000,
                           bind_address="127.0.0.1", allowed_calling_aes=[sys.argv[1]],
                           engine=sys.argv[2])
listener.start()
print(listener.address[1], flush=True)
sys.stdin.read()
listener.stop()
"""


@contextmanager
def ours_network_only(tmp: Path, engine: str = "fast") -> Iterator[tuple[str, int]]:
    proc = subprocess.Popen([sys.executable, "-c", _NULL_LISTENER, SCU_AE, engine], cwd=ROOT.parent,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        yield "NULL", int(proc.stdout.readline())  # type: ignore[union-attr]
        proc.stdin.close()  # type: ignore[union-attr]
        proc.wait(30)
    finally:
        stop(proc)


@contextmanager
def orthanc(tmp: Path) -> Iterator[tuple[str, int]]:
    http, dicom = free_port(), free_port()
    config = {"Name": "bench", "StorageDirectory": str(tmp / "db"), "IndexDirectory": str(tmp / "db"),
              "Plugins": [], "HttpPort": http, "DicomPort": dicom, "DicomAet": "ORTHANC",
              "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
              "DicomCheckCalledAet": False, "StorageCompression": False, "SaveJobs": False}  # fmt: skip
    (tmp / "orthanc.json").write_text(json.dumps(config))
    proc = subprocess.Popen(["Orthanc", str(tmp / "orthanc.json")], env=NODELAY,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for_port(dicom, proc, "Orthanc")
        wait_for_port(http, proc, "Orthanc")
        yield "ORTHANC", dicom
    finally:
        stop(proc)


@contextmanager
def storescp(tmp: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    (tmp / "out").mkdir()
    proc = subprocess.Popen(["storescp", "-od", str(tmp / "out"), str(port)], env=NODELAY,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for_port(port, proc, "storescp")
        yield "STORESCP", port
    finally:
        stop(proc)


RECEIVERS: dict[str, Callable] = {
    "ours": ours,
    "ours_pynetdicom": partial(ours, engine="pynetdicom"),
    "orthanc": orthanc,
    "storescp": storescp,
    "ours_network_only": ours_network_only,
    "ours_network_only_pynetdicom": partial(ours_network_only, engine="pynetdicom"),
}


def send(files: list[Path], receiver: Callable) -> float:
    """Seconds for one storescu association sending ``files`` to a fresh ``receiver``."""
    with tempfile.TemporaryDirectory(prefix="ingest-", dir=DATA) as tmp:
        with receiver(Path(tmp)) as (called, port):
            cmd = ["storescu", "-aet", SCU_AE, "-aec", called, "127.0.0.1", str(port)]
            started = time.perf_counter()
            result = subprocess.run([*cmd, *map(str, files)], env=NODELAY, capture_output=True,
                                    text=True, timeout=TIMEOUT)  # fmt: skip
            seconds = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(f"storescu to {called} failed: {result.stderr.strip()[-500:]}")
    return seconds


def archive_only(files: list[Path]) -> float:
    """Seconds for ``Archive.add_bytes`` of every file into a fresh archive (no network)."""
    from workstation.archive.archive import Archive

    blobs = [p.read_bytes() for p in files]
    with tempfile.TemporaryDirectory(prefix="ingest-", dir=DATA) as tmp:
        archive = Archive(Path(tmp) / "archive")
        try:
            started = time.perf_counter()
            for data in blobs:
                if not archive.add_bytes(data, "benchmark").ok:
                    raise RuntimeError("archive refused a benchmark file")
            return time.perf_counter() - started
        finally:
            archive.close()


# --- main -------------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one repetition (under a minute)")
    parser.add_argument("--reps", type=int, help="repetitions per receiver (default 5, quick 1)")
    args = parser.parse_args()
    reps = args.reps or (1 if args.quick else 5)
    for tool in ("storescu", "storescp", "Orthanc"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed: cannot run this benchmark", file=sys.stderr)
            return 2
    files = series_files()
    size = sum(p.stat().st_size for p in files)
    for p in files:  # warm the page cache
        p.read_bytes()

    times: dict[str, list[float]] = {name: [] for name in [*RECEIVERS, "archive_only"]}
    store_share: list[float] = []
    for _ in range(reps):  # interleaved: every receiver once per round
        for name, receiver in RECEIVERS.items():
            times[name].append(send(files, receiver))
            if name == "ours" and LAST_BATCH.get("seconds"):
                store_share.append(LAST_BATCH["store_seconds"] / LAST_BATCH["seconds"])
        times["archive_only"].append(archive_only(files))

    rate = {name: len(files) / statistics.median(t) for name, t in times.items()}
    ratio = rate["ours"] / rate["orthanc"]
    print(f"ingest: storescu -> receiver on loopback, {len(files)} CT images 512x512 "
          f"({size / 1e6:.0f} MB), {reps} interleaved repetition(s), medians")  # fmt: skip
    print(f"{'receiver':<36}{'images/s':>10}{'MB/s':>9}{'ms/image':>10}")
    labels = {
        "ours": "ours (workstation listen + archive)",
        "ours_pynetdicom": "  the same, pynetdicom engine",
        "orthanc": "Orthanc",
        "storescp": "DCMTK storescp (files, no index)",
        "ours_network_only": "ours, network only (discards)",
        "ours_network_only_pynetdicom": "  the same, pynetdicom engine",
        "archive_only": "ours, archive.add_bytes only",
    }
    for name, label in labels.items():
        r = rate[name]
        print(f"{label:<36}{r:>10.1f}{r * size / len(files) / 1e6:>9.1f}{1000 / r:>10.2f}")
    share = statistics.median(store_share) if store_share else float("nan")
    old_ratio = rate["ours_pynetdicom"] / rate["orthanc"]
    print(f"ratio ours / Orthanc: {ratio:.2f} (target 1.5; pynetdicom engine {old_ratio:.2f}); "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")  # fmt: skip
    print(f"inside our listener, "
          f"{share:.0%} of the association's time is spent in archive.add_bytes")  # fmt: skip
    print(json.dumps({
        "benchmark": "ingest",
        "images": len(files),
        "bytes": size,
        "reps": reps,
        "machine": f"{platform.machine()} {os.cpu_count()} cpu",
        "images_per_s": {k: round(v, 1) for k, v in rate.items()},
        "ratio_vs_orthanc": round(ratio, 3),
        "ratio_network_only_vs_orthanc": round(rate["ours_network_only"] / rate["orthanc"], 3),
        "ratio_pynetdicom_engine_vs_orthanc": round(old_ratio, 3),
        "ratio_network_only_pynetdicom_engine_vs_orthanc": round(
            rate["ours_network_only_pynetdicom"] / rate["orthanc"], 3),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "archive_share_of_listener_time": round(share, 3),
        "target_ratio": 1.5,
        "target_met": ratio >= 1.5,
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
