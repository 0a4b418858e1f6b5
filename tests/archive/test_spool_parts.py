"""Empty spool files made ahead for the ack path: kept topped up by their own thread, handed out
open, removed when unused, never taken for an acknowledged instance after a crash; a write into
one that fails leaves nothing behind."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from archive_factory import instance, to_bytes

from workstation.archive import store
from workstation.archive.archive import Archive
from workstation.archive.results import AddStatus, ArchiveWriteError
from workstation.archive.spool import SpoolIngester, SpoolParts

WAIT = 10.0  # seconds; never reached when things work


def _until(condition, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.005)


def _spool(archive: Archive) -> list[str]:
    return sorted(os.listdir(archive.root / store.SPOOL_DIR))


@pytest.fixture
def archive(tmp_path: Path):
    a = Archive(tmp_path / "archive")
    yield a
    a.close()


def test_parts_are_made_ahead_topped_up_and_removed_unused(archive: Archive) -> None:
    parts = SpoolParts(archive.new_spool_part, ahead=8)
    try:
        _until(lambda: parts.ready == 8, "parts made ahead")
        names = _spool(archive)
        assert len(names) == 8 and all(n.endswith(".part") for n in names)
        taken = [parts.take() for _ in range(5)]  # below half: the thread tops up
        for fd, path in taken:
            assert os.path.dirname(path) == os.fspath(archive.root / store.SPOOL_DIR)
            assert os.fstat(fd).st_size == 0 and os.path.basename(path) in names
            assert os.write(fd, b"x") == 1  # open for writing
            os.close(fd)
        _until(lambda: parts.ready == 8, "topped up again")
    finally:
        parts.close()
    left = _spool(archive)  # the taken ones only: the caller owns them
    assert sorted(os.path.basename(p) for _, p in taken) == left


def test_a_part_is_made_on_the_spot_when_none_is_ready_and_errors_reach_the_caller(
    archive: Archive,
) -> None:
    broken = threading.Event()

    def create() -> tuple[int, str]:
        if broken.is_set():
            raise OSError(28, "No space left on device")
        return archive.new_spool_part()

    broken.set()
    parts = SpoolParts(create, ahead=4)
    try:
        with pytest.raises(OSError, match="No space"):
            parts.take()  # nothing ready, and none can be made
        broken.clear()  # space again: the thread retries, and take() makes its own meanwhile
        fd, path = parts.take()
        os.close(fd)
        _until(lambda: parts.ready == 4, "made ahead again once creating works")
    finally:
        parts.close()
    assert _spool(archive) == [os.path.basename(path)]


def test_an_instance_written_to_a_part_is_spooled_and_a_failed_write_leaves_nothing(
    archive: Archive,
) -> None:
    data = to_bytes(instance())
    path = archive.spool_bytes(memoryview(data), part=archive.new_spool_part())
    assert path.endswith(store.SPOOL_SUFFIX) and Path(path).read_bytes() == data
    # A part whose descriptor cannot be written (as on a full disk): the write fails, the part
    # goes, and the caller is told (the listener answers Out of Resources).
    fd, part = archive.new_spool_part()
    os.close(fd)
    read_only = os.open(part, os.O_RDONLY)
    with pytest.raises(ArchiveWriteError, match="spool write failed"):
        archive.spool_bytes(data, part=(read_only, part))
    assert _spool(archive) == [os.path.basename(path)]
    with pytest.raises(OSError):  # this call closed the descriptor it was given
        os.fstat(read_only)


def test_the_ingester_owns_its_parts_and_leaves_an_empty_spool(archive: Archive) -> None:
    results = []
    ingester = SpoolIngester(archive, lambda token, r: results.append(r))
    datas = [to_bytes(instance(instance_number=i)) for i in range(3)]
    for data in datas:
        path = archive.spool_bytes(data, part=ingester.take_part())
        ingester.submit(path, None, "test")  # read back when indexed
    assert ingester.close(WAIT)
    assert ingester.take_part() is None  # closed: the archive makes its own part
    assert [r.status for r in results] == [AddStatus.IMPORTED] * 3
    assert _spool(archive) == []  # indexed, and the parts made ahead removed
    stored = sorted(archive.path_of(r.stored_path).read_bytes() for r in results)
    assert stored == sorted(datas)


def test_parts_left_by_a_crash_are_never_taken_for_instances(tmp_path: Path) -> None:
    first = Archive(tmp_path / "archive")
    parts = SpoolParts(first.new_spool_part, ahead=4)
    _until(lambda: parts.ready == 4, "parts made ahead")
    fd, path = parts.take()
    os.write(fd, to_bytes(instance())[:1000])  # acknowledged never: the write did not finish
    os.close(fd)
    # The process dies here: its parts stay on disk (the thread is stopped without tidying up).
    for ready_fd, _ in parts._ready:  # noqa: SLF001 - white box: forget them as a dead
        os.close(ready_fd)  # process would, descriptors closed by its end
    parts._ready.clear()  # noqa: SLF001
    parts.close()
    first.close()
    assert len(_spool(first)) == 4
    second = Archive(tmp_path / "archive")
    try:
        assert _spool(second) == []
        assert list(second.find("IMAGE")) == []
    finally:
        second.close()
