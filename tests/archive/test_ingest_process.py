"""Received instances indexed in a child process on idle CPU time: the child indexes what it is
given and reports each result with its token; it runs under SCHED_IDLE; its log records reach
the parent's logging; when it cannot start, or dies, nothing acknowledged is left unindexed (what
it had not reported is indexed in-process, and an instance it had already moved into the store
is found by a reconciliation); the pipe to it never blocks the thread that answers a C-STORE.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from archive_factory import instance, to_bytes

from workstation.archive import store
from workstation.archive.archive import Archive
from workstation.archive.ingest_process import IngestProcess, _FrameWriter, _read_frame
from workstation.archive.results import AddStatus

WAIT = 30.0  # seconds; never reached when things work


def _instances(n: int) -> list[bytes]:
    study = instance().StudyInstanceUID
    return [to_bytes(instance(study=study, instance_number=i + 1)) for i in range(n)]


def _spool_dir(archive: Archive) -> list[str]:
    return os.listdir(archive.root / store.SPOOL_DIR)


def _indexed(archive: Archive) -> int:
    return archive.usage()["instances"]


@pytest.fixture
def process():
    p = IngestProcess()
    yield p
    p.close()


def test_the_child_indexes_and_reports_each_result_with_its_token(
    archive: Archive, process: IngestProcess, caplog: pytest.LogCaptureFixture
) -> None:
    assert process.wait_ready(WAIT)
    if hasattr(os, "SCHED_IDLE"):
        assert process.policy == "SCHED_IDLE"
        assert os.sched_getscheduler(process.pid) == os.SCHED_IDLE  # the real child, as run
    results: dict[object, AddStatus] = {}
    ingester = process.ingester(archive, lambda token, r: results.__setitem__(token, r.status))
    datas = _instances(20)
    for i, data in enumerate(datas):
        ingester.submit(archive.spool_bytes(data, part=ingester.take_part()), data, "test", i)
    ingester.submit(archive.spool_bytes(b"not DICOM at all" * 20), None, "test", "junk")
    with caplog.at_level(logging.WARNING, logger="workstation.audit"):
        assert ingester.close(WAIT)
    assert results == {**{i: AddStatus.IMPORTED for i in range(20)}, "junk": AddStatus.REJECTED}
    assert ingester.pending == 0
    assert _indexed(archive) == 20
    assert _spool_dir(archive) == []
    assert len(list((archive.root / store.QUARANTINE_DIR).rglob("*.dcm"))) == 1
    # the child's audit record of the quarantined instance, re-logged by the parent
    assert any("acknowledged but not indexed" in r.getMessage() for r in caplog.records)


def test_two_ingesters_share_the_child(tmp_path: Path, process: IngestProcess) -> None:
    archives = [Archive(tmp_path / "a"), Archive(tmp_path / "b")]
    try:
        ingesters = [process.ingester(a) for a in archives]
        for a, ing in zip(archives, ingesters, strict=True):
            for data in _instances(5):
                ing.submit(a.spool_bytes(data), None, "test")
        assert all(ing.close(WAIT) for ing in ingesters)
        assert [_indexed(a) for a in archives] == [5, 5]
        assert process.running  # still there for the next receiver
    finally:
        for a in archives:
            a.close()


@pytest.mark.parametrize("python", ["/nonexistent/python3", shutil.which("false") or "/bin/false"])
def test_without_a_child_the_instances_are_indexed_in_process(
    archive: Archive, python: str
) -> None:
    process = IngestProcess(python=python)  # cannot start / ends at once
    try:
        results = []
        ingester = process.ingester(archive, lambda token, r: results.append(r.status))
        for data in _instances(10):
            ingester.submit(archive.spool_bytes(data, part=ingester.take_part()), None, "test")
        assert ingester.close(WAIT)
        assert results == [AddStatus.IMPORTED] * 10
        assert _indexed(archive) == 10 and _spool_dir(archive) == []
        assert not process.running
    finally:
        process.close()


def test_a_child_killed_mid_stream_loses_nothing(archive: Archive, process: IngestProcess) -> None:
    assert process.wait_ready(WAIT)
    results = []
    ingester = process.ingester(archive, lambda token, r: results.append(r.status))
    datas = _instances(60)
    for data in datas[:20]:
        ingester.submit(archive.spool_bytes(data), None, "test")
    deadline = time.monotonic() + WAIT
    while not results:  # the child has committed its first batch
        assert time.monotonic() < deadline
        time.sleep(0.005)
    for data in datas[20:40]:
        ingester.submit(archive.spool_bytes(data), None, "test")
    os.kill(process.pid, signal.SIGKILL)  # wherever it is: reading, preparing, committing
    for data in datas[40:]:
        ingester.submit(archive.spool_bytes(data), None, "test")
    assert ingester.close(WAIT)
    assert len(results) == 60  # each reported once: by the child or after the handover
    assert not process.running
    assert _indexed(archive) == 60
    assert _spool_dir(archive) == []


def test_an_instance_the_dead_child_had_placed_is_found_by_reconciliation(
    archive: Archive, process: IngestProcess
) -> None:
    """What a death between moving a spool file into the store and the index commit leaves."""
    assert process.wait_ready(WAIT)
    os.kill(process.pid, signal.SIGSTOP)  # it takes nothing from the pipe until it dies
    ingester = process.ingester(archive)
    paths = [archive.spool_bytes(data) for data in _instances(3)]
    for path in paths:
        ingester.submit(path, None, "test")
    record = store.prepare_spooled(paths[0], None, "test").record
    assert record is not None
    placed = archive.root / store.instance_rel_path(record)
    placed.parent.mkdir(parents=True)
    os.replace(paths[0], placed)  # moved into the store, never indexed
    os.kill(process.pid, signal.SIGKILL)
    assert ingester.close(WAIT)
    assert _indexed(archive) == 3
    hit = list(archive.find("IMAGE", {"SOPInstanceUID": record.sop_uid}))
    assert [h["rel_path"] for h in hit] == [store.instance_rel_path(record)]


def test_a_full_pipe_never_blocks_the_sender() -> None:
    read_fd, write_fd = os.pipe()
    writer = _FrameWriter(write_fd)
    frames = [("item", 1, i, "/spool/" + "x" * 200, "c-store") for i in range(20_000)]  # ~5 MB
    done = threading.Event()

    def send_all() -> None:
        from workstation.archive.ingest_process import _frame

        assert all(writer.send(_frame(f)) for f in frames)
        done.set()

    sender = threading.Thread(target=send_all)
    started = time.monotonic()
    sender.start()
    assert done.wait(WAIT), "send() blocked on a pipe nobody reads"
    assert time.monotonic() - started < WAIT
    got = []
    with os.fdopen(read_fd, "rb") as stream:
        closer = threading.Thread(target=writer.close)  # writes the backlog, then closes
        closer.start()
        while (message := _read_frame(stream)) is not None:
            got.append(message)
        closer.join(WAIT)
    assert got == frames  # all of them, in order


def test_the_child_ends_with_its_parent(tmp_path: Path) -> None:
    """A parent that dies leaves a child that indexes what it was given and exits."""
    import subprocess

    script = tmp_path / "parent.py"
    script.write_text(
        "import os, sys\n"
        "from workstation.archive.archive import Archive\n"
        "from workstation.archive.ingest_process import IngestProcess\n"
        "a = Archive(sys.argv[1]); p = IngestProcess(); p.wait_ready(30)\n"
        "ing = p.ingester(a)\n"
        "for f in sys.argv[2:]:\n"
        "    ing.submit(a.spool_bytes(open(f, 'rb').read()), None, 'test')\n"
        "print(p.pid, flush=True)\n"
        "os._exit(0)  # no close, no drain\n"
    )
    files = []
    for i, data in enumerate(_instances(8)):
        files.append(tmp_path / f"{i}.dcm")
        files[-1].write_bytes(data)
    root = tmp_path / "archive"
    out = subprocess.run([sys.executable, str(script), str(root), *map(str, files)],
                         capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    child = int(out.stdout.split()[0])
    deadline = time.monotonic() + WAIT
    while Path(f"/proc/{child}").exists() and _state(child) != "Z":
        assert time.monotonic() < deadline, "the orphaned ingest process did not end"
        time.sleep(0.02)
    with Archive(root) as archive:
        assert _indexed(archive) == 8
        assert _spool_dir(archive) == []


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_an_ingester_that_outlives_the_process_indexes_in_process(
    archive: Archive, process: IngestProcess
) -> None:
    ingester = process.ingester(archive)
    for data in _instances(5):
        ingester.submit(archive.spool_bytes(data), None, "test")
    assert process.close(WAIT)  # the child indexes what it was given, then ends
    for data in _instances(5):
        ingester.submit(archive.spool_bytes(data), None, "test")
    assert ingester.close(WAIT)
    assert _indexed(archive) == 10
    assert _spool_dir(archive) == []
