"""Folder import speed: a 400-image uncompressed 512x512 CT series into the archive.

Uses the uncompressed CT phantom of ``benchmarks/series_load.py`` (generated once under
``benchmarks/_data/series_load/``: realistic CT header, int16 pixels, explicit VR little endian), warms the page cache, then imports it into a fresh archive several
times, interleaved with two peers on the same files:

- ``cp -r`` followed by ``sync`` -- the floor for copying the bytes durably, no parsing;
- DCMTK ``dcmqridx`` -- DCMTK's archive indexer (reads each header into its index.dat, copies
  nothing, fsyncs nothing).

Ours is measured end to end (plan, parse, hash, copy, fsync, commit). Target: >= 1,000 files/s.
Prints a table and, last, one JSON line with the medians and ratios.

    python benchmarks/import_folder.py [--quick] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workstation.archive.archive import Archive  # noqa: E402
from workstation.archive.importer import Importer  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from series_load import uncompressed_series  # noqa: E402

N_FILES = 400
TARGET = 1000.0


def _warm(files: list[Path]) -> None:
    for f in files:
        f.read_bytes()


def run_ours(src: Path, scratch: Path, workers: int | None) -> tuple[float, float, dict]:
    """A fresh archive: import the folder (timed), then import it again (all duplicates)."""
    dest = scratch / "archive"
    shutil.rmtree(dest, ignore_errors=True)
    start = time.perf_counter()
    with Archive(dest) as archive:
        report = Importer(archive, workers=workers).import_paths([src])
    elapsed = time.perf_counter() - start
    start = time.perf_counter()
    with Archive(dest) as archive:
        again = Importer(archive, workers=workers).import_paths([src])
    elapsed_again = time.perf_counter() - start
    assert again.to_json()["duplicate"] == report.to_json()["imported"]
    return elapsed, elapsed_again, report.to_json()


def run_cp(src: Path, scratch: Path) -> float:
    dest = scratch / "cp"
    shutil.rmtree(dest, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run(["cp", "-r", str(src), str(dest)], check=True)
    subprocess.run(["sync", "-f", str(dest)], check=True)
    return time.perf_counter() - start


def run_dcmqridx(src: Path, scratch: Path, files: list[Path]) -> float | None:
    exe = shutil.which("dcmqridx")
    if exe is None:
        return None
    dest = scratch / "dcmqr"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir()
    start = time.perf_counter()
    subprocess.run([exe, str(dest), *map(str, files)], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (<1 min)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default auto)")
    args = parser.parse_args()
    reps = 3 if args.quick else 7
    files = [Path(p) for p in uncompressed_series(N_FILES)]
    src = files[0].parent
    _warm(files)
    load = os.getloadavg()  # other work on the machine skews every figure: reported
    n = len(files)
    ours: list[float] = []
    again: list[float] = []
    cp: list[float] = []
    dq: list[float] = []
    last: dict = {}
    with tempfile.TemporaryDirectory(dir=src.parent) as tmp:
        scratch = Path(tmp)
        run_ours(src, scratch, args.workers)  # warm-up: imports, forks, page cache
        for _ in range(reps):
            t, t_again, last = run_ours(src, scratch, args.workers)
            ours.append(t)
            again.append(t_again)
            assert last["imported"] == n, last
            cp.append(run_cp(src, scratch))
            t_dq = run_dcmqridx(src, scratch, files)
            if t_dq is not None:
                dq.append(t_dq)
    med = {
        "ours": statistics.median(ours),
        "again": statistics.median(again),
        "cp": statistics.median(cp),
    }
    if dq:
        med["dcmqridx"] = statistics.median(dq)
    rate = {k: n / v for k, v in med.items()}
    size_mb = sum(f.stat().st_size for f in files) / 1e6
    print(f"Folder import: {n} CT images 512x512 uncompressed ({size_mb:.0f} MB), warm cache, "
          f"{reps} reps, {os.cpu_count()} cores, load average {load[0]:.2f} before / "
          f"{os.getloadavg()[0]:.2f} after")  # fmt: skip
    print(f"{'tool':<40}{'median s':>10}{'files/s':>10}{'MB/s':>9}")
    labels = {
        "ours": "workstation import (copy+fsync+index)",
        "again": "same folder again (all duplicates)",
        "cp": "cp -r + sync (copy only)",
        "dcmqridx": "dcmqridx (index only, no copy)",
    }
    for key, value in med.items():
        print(f"{labels[key]:<40}{value:>10.3f}{rate[key]:>10.0f}{size_mb / value:>9.0f}")
    result = {
        "benchmark": "import_folder",
        "files": n,
        "megabytes": round(size_mb, 1),
        "reps": reps,
        "ours_files_per_s": round(rate["ours"], 1),
        "reimport_files_per_s": round(rate["again"], 1),
        "cp_sync_files_per_s": round(rate["cp"], 1),
        "dcmqridx_files_per_s": round(rate["dcmqridx"], 1) if "dcmqridx" in rate else None,
        "target_files_per_s": TARGET,
        "ratio_to_target": round(rate["ours"] / TARGET, 2),
        "ratio_to_cp_sync": round(rate["ours"] / rate["cp"], 2),
        "ratio_to_dcmqridx": round(rate["ours"] / rate["dcmqridx"], 2) if "dcmqridx" in rate
        else None,
        "meets_target": rate["ours"] >= TARGET,
        "load_average_before": round(load[0], 2),
    }  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
