"""The spool ingester prepares each instance as it takes it, so a batch that closes has only its
commit left to do; what it prepared is what gets committed, retried as is after a failure."""

from __future__ import annotations

import threading

import pytest
from archive_factory import instance, to_bytes

from workstation.archive.archive import Archive
from workstation.archive.results import AddStatus, ArchiveWriteError
from workstation.archive.spool import SpoolIngester


class _Watched(Archive):
    """A real archive that records the ingester's calls (and can fail one commit)."""

    def __init__(self, root) -> None:  # noqa: ANN001
        super().__init__(root)
        self.prepared_paths: list[str] = []
        self.first_prepared = threading.Event()
        self.commits: list[tuple[list[str], list[str] | None]] = []
        self.fail_next_commit = False

    def prepare_spooled(self, item):  # noqa: ANN001, ANN201
        got = super().prepare_spooled(item)
        self.prepared_paths.append(item.path)
        self.first_prepared.set()
        return got

    def index_spooled(self, items, prepared=None):  # noqa: ANN001, ANN201
        paths = [i.path for i in items]
        self.commits.append((paths, None if prepared is None else [p.tmp_path for p in prepared]))
        if self.fail_next_commit:
            self.fail_next_commit = False
            raise ArchiveWriteError("disk full (test)")
        return super().index_spooled(items, prepared)


@pytest.fixture
def watched(tmp_path):
    a = _Watched(tmp_path / "archive")
    yield a
    a.close()


def test_an_instance_is_prepared_while_its_batch_is_still_open(watched) -> None:
    results = []
    ingester = SpoolIngester(watched, lambda token, r: results.append((token, r)), max_wait=5.0)
    datas = [to_bytes(instance(instance_number=i)) for i in range(3)]
    try:
        ingester.submit(watched.spool_bytes(datas[0]), datas[0], "test", 0)
        assert watched.first_prepared.wait(2.0)  # well before the 5 s batch closes
        assert watched.commits == []  # the batch is still open: only the commit waits
        for i in (1, 2):
            ingester.submit(watched.spool_bytes(datas[i]), datas[i], "test", i)
    finally:
        assert ingester.close(10.0)
    assert len(watched.commits) == 1
    paths, prepared = watched.commits[0]
    assert prepared == paths == watched.prepared_paths  # what was prepared, in order
    assert [t for t, _ in results] == [0, 1, 2]
    assert all(r.status is AddStatus.IMPORTED for _, r in results)
    assert len(list(watched.find("IMAGE"))) == 3


def test_a_failed_commit_is_retried_with_what_was_prepared(watched, monkeypatch) -> None:
    monkeypatch.setattr("workstation.archive.spool.RETRY_DELAY", 0.05)
    results = []
    ingester = SpoolIngester(watched, lambda token, r: results.append(r), max_wait=0.05)
    data = to_bytes(instance())
    watched.fail_next_commit = True
    ingester.submit(watched.spool_bytes(data), data, "test")
    try:
        for _ in range(200):
            if results:
                break
            threading.Event().wait(0.02)
    finally:
        assert ingester.close(10.0)
    assert len(watched.commits) == 2 and watched.commits[0] == watched.commits[1]
    assert len(watched.prepared_paths) == 1  # prepared once, committed twice
    assert [r.status for r in results] == [AddStatus.IMPORTED]
