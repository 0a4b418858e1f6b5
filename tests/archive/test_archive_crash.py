"""Crash safety: SIGKILL an import at random moments, restart, and check nothing is lost.

``workstation import --stream`` prints a file as ``imported`` only after its batch committed.
The test kills the whole process group (the importer and its worker processes) with SIGKILL at
random moments (fixed seed), then checks, before any repair, that the index alone holds every
instance reported as imported with its complete file; then opens the archive (which reconciles
after the unclean stop) and checks that store and index agree exactly.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from archive_factory import series_folder

from workstation.archive.archive import Archive
from workstation.archive.attributes import content_hash

REPO = Path(__file__).resolve().parents[2]
N_FILES = 800
ROUNDS = 12


def _start(home: Path, src: Path) -> tuple[subprocess.Popen, list[str], threading.Thread]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "workstation", "--home", str(home), "import", str(src),
         "--stream", "-q"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            lines.append(raw.decode())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return proc, lines, reader


def _reported_imported(lines: list[str]) -> dict[str, str]:
    out = {}
    for line in lines:
        if not line.endswith("\n"):
            continue  # cut by the kill
        record = json.loads(line)
        if record["event"] == "file" and record["status"] == "imported":
            out[record["sop_instance_uid"]] = record["source"]
    return out


def _index_rows(home: Path) -> dict[str, tuple[str, str]]:
    """SOP UID -> (rel_path, hash), read straight from SQLite before the archive repairs."""
    conn = sqlite3.connect(home / "archive" / "index.sqlite")
    try:
        rows = conn.execute("SELECT sop_uid, rel_path, content_hash FROM instance").fetchall()
    finally:
        conn.close()
    return {sop: (rel, digest) for sop, rel, digest in rows}


def _store_files(root: Path) -> set[str]:
    return {
        os.path.relpath(os.path.join(d, f), root).replace(os.sep, "/")
        for d, _, files in os.walk(root / "store")
        for f in files
    }


def _check(home: Path, reported: dict[str, str]) -> int:
    root = home / "archive"
    rows = _index_rows(home)
    for sop in reported:  # durable before it was reported: no repair needed to find it
        assert sop in rows, f"{sop} was reported imported but is not in the index"
        rel, digest = rows[sop]
        assert content_hash((root / rel).read_bytes()) == digest, f"{rel} is damaged"
    with Archive(root) as archive:  # an unclean stop: this reconciles
        indexed = {r["rel_path"]: r for r in archive.find("IMAGE", {})}
        assert set(indexed) == _store_files(root)
        for rel, row in indexed.items():
            assert content_hash((root / rel).read_bytes()) == row["content_hash"]
        assert not list((root / "tmp").iterdir())
        assert archive.usage()["instances"] == len(indexed)
        assert archive.usage()["quarantined_files"] == 0
        study = list(archive.find("STUDY", {}))
        assert len(study) <= 1
        if study:
            assert study[0]["NumberOfStudyRelatedInstances"] == len(indexed)
        return len(indexed)


def _wait_lines(proc: subprocess.Popen, lines: list[str], count: int) -> None:
    deadline = time.monotonic() + 120
    while len(lines) < count and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)


def test_sigkill_at_random_moments_loses_nothing_reported(tmp_path):
    src = tmp_path / "src"
    series_folder(src, N_FILES, size=128)  # ~33 KB each
    rng = random.Random(20240611)
    home = tmp_path / "home"
    reported: dict[str, str] = {}
    interrupted = indexed = 0
    for _ in range(ROUNDS):
        # a random moment of the remaining work: after a random number of files was reported
        # (files already in the archive are reported first, as duplicates), plus a random delay
        # that lands it anywhere in the batch under way (parsing, fsync, rename, commit)
        # within the first quarter of what is left, so that several rounds find work to cut
        target = rng.randint(indexed + 1, indexed + max(1, (N_FILES - indexed) // 4))
        jitter = rng.uniform(0.0, 0.02)
        proc, lines, reader = _start(home, src)
        _wait_lines(proc, lines, target)
        time.sleep(jitter)
        still_running = proc.poll() is None
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        reader.join(timeout=10)
        new = _reported_imported(lines)
        assert not set(new) & set(reported), "an instance was imported twice"
        reported.update(new)
        interrupted += still_running
        indexed = _check(home, reported)
        if indexed == N_FILES:
            break
    assert interrupted >= 3, "the kills should land while importing"

    proc, lines, reader = _start(home, src)  # finish the job
    assert proc.wait(timeout=120) == 0
    reader.join()
    reported.update(_reported_imported(lines))
    assert len(reported) <= N_FILES
    assert _check(home, reported) == N_FILES
