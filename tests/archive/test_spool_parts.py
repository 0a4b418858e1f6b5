"""Empty spool files made ahead for the ack path: kept topped up by their own thread, handed out
open, removed when unused, never taken for an acknowledged instance after a crash; a write into
one that fails leaves nothing behind.

Each test runs for both kinds of part file: anonymous (``O_TMPFILE``, named in the spool only
when committed; what this filesystem gives) and named ``.part`` files (the fallback where the
filesystem refuses anonymous ones).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
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
REPO = Path(__file__).resolve().parents[2]


def _until(condition, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.005)


def _spool(archive: Archive) -> list[str]:
    return sorted(os.listdir(archive.root / store.SPOOL_DIR))


def _named_only(root: Path) -> None:
    """Make the archive at ``root`` use named part files, as where anonymous ones are refused."""
    store._NAMED_ONLY.add(os.path.join(root, store.SPOOL_DIR))  # noqa: SLF001


@pytest.fixture(params=["anonymous", "named"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def archive(tmp_path: Path, kind: str):
    root = tmp_path / "archive"
    a = Archive(root)
    if kind == "named":
        _named_only(a.root)
    yield a
    a.close()
    store._NAMED_ONLY.discard(os.path.join(a.root, store.SPOOL_DIR))  # noqa: SLF001


def test_parts_are_made_ahead_topped_up_and_removed_unused(archive: Archive, kind: str) -> None:
    parts = SpoolParts(archive.new_spool_part, ahead=8)
    try:
        _until(lambda: parts.ready == 8, "parts made ahead")
        names = _spool(archive)
        taken = [parts.take() for _ in range(5)]  # below half: the thread tops up
        if kind == "anonymous":  # nothing in the spool: no name until committed
            assert names == []
            assert all(path == "" and os.fstat(fd).st_nlink == 0 for fd, path in taken)
        else:
            assert len(names) == 8 and all(n.endswith(".part") for n in names)
            for _, path in taken:
                assert os.path.dirname(path) == os.fspath(archive.root / store.SPOOL_DIR)
                assert os.path.basename(path) in names
        for fd, _ in taken:
            assert os.fstat(fd).st_size == 0
            assert os.write(fd, b"x") == 1  # open for writing
            os.close(fd)
        _until(lambda: parts.ready == 8, "topped up again")
    finally:
        parts.close()
    left = _spool(archive)  # the taken ones only: the caller owns them
    assert sorted(os.path.basename(p) for _, p in taken if p) == left


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
        data = to_bytes(instance())
        spooled = archive.spool_bytes(data, part=(fd, path))
        _until(lambda: parts.ready == 4, "made ahead again once creating works")
    finally:
        parts.close()
    assert Path(spooled).read_bytes() == data
    assert _spool(archive) == [os.path.basename(spooled)]


def test_an_instance_written_to_a_part_is_spooled_and_a_failed_write_leaves_nothing(
    archive: Archive,
) -> None:
    data = to_bytes(instance())
    path = archive.spool_bytes(memoryview(data), part=archive.new_spool_part())
    assert path.endswith(store.SPOOL_SUFFIX) and Path(path).read_bytes() == data
    # A part whose descriptor cannot be written (as on a full disk): the write fails, the part
    # goes, and the caller is told (the listener answers Out of Resources).
    fd, part = archive.new_spool_part()
    read_only = os.open(part or f"/proc/self/fd/{fd}", os.O_RDONLY)  # the same file
    os.close(fd)
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


_CRASHING_RECEIVER = """
import os, sys, time
from workstation.archive import store
from workstation.archive.archive import Archive
from workstation.archive.spool import SpoolParts
archive = Archive(sys.argv[1])
if sys.argv[2] == "named":
    store._NAMED_ONLY.add(os.path.join(archive.root, store.SPOOL_DIR))
parts = SpoolParts(archive.new_spool_part, ahead=4)
while parts.ready < 4:
    time.sleep(0.01)
fd, path = parts.take()
os.write(fd, open(sys.argv[3], "rb").read()[:1000])  # an instance half received
print("ready", flush=True)
time.sleep(60)
"""


def test_parts_left_by_a_crash_are_never_taken_for_instances(tmp_path: Path, kind: str) -> None:
    root = tmp_path / "archive"
    Archive(root).close()
    sample = tmp_path / "instance.dcm"
    sample.write_bytes(to_bytes(instance()))
    proc = subprocess.Popen(
        [sys.executable, "-c", _CRASHING_RECEIVER, str(root), kind, str(sample)],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        spool_before = sorted(os.listdir(root / store.SPOOL_DIR))
        sizes = sorted(os.path.getsize(root / store.SPOOL_DIR / n) for n in spool_before)
    finally:
        proc.send_signal(signal.SIGKILL)  # the receiving process dies mid-instance
        proc.wait(WAIT)
    if kind == "named":  # its parts stay on disk, the half-written one among them
        assert all(n.endswith(".part") for n in spool_before) and sizes == [0, 0, 0, 1000]
        assert sorted(os.listdir(root / store.SPOOL_DIR)) == spool_before
    else:  # anonymous: nothing was ever named, and the dead process's files are gone
        assert spool_before == []
    second = Archive(root)
    try:
        assert _spool(second) == []
        assert list(second.find("IMAGE")) == []
    finally:
        second.close()


def test_a_filesystem_that_refuses_anonymous_files_gets_named_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not store._O_TMPFILE:  # noqa: SLF001
        pytest.skip("no anonymous files here (not Linux, or no /proc)")
    # The open flag without O_DIRECTORY: the kernel refuses it with EINVAL, as a filesystem
    # without O_TMPFILE support refuses the real one (EOPNOTSUPP; EISDIR on old kernels).
    monkeypatch.setattr(store, "_O_TMPFILE", store._O_TMPFILE & ~os.O_DIRECTORY)  # noqa: SLF001
    archive = Archive(tmp_path / "archive")
    spool = os.path.join(archive.root, store.SPOOL_DIR)
    try:
        fd, path = archive.new_spool_part()
        assert path.endswith(".part") and os.path.dirname(path) == spool
        assert spool in store._NAMED_ONLY  # noqa: SLF001 - remembered: not tried again
        data = to_bytes(instance())
        spooled = archive.spool_bytes(data, part=(fd, path))
        assert Path(spooled).read_bytes() == data and _spool(archive) == [Path(spooled).name]
    finally:
        archive.close()
        store._NAMED_ONLY.discard(spool)  # noqa: SLF001
