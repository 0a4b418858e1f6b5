"""Reconciliation: make the file store and the index agree after a crash or outside meddling.

- A file in ``store/`` without a row (a crash between rename and commit, see store.py) is
  re-indexed when its header is readable and its UIDs give exactly the path it is at; the same
  content already indexed elsewhere makes it a redundant copy (removed); different content under
  an indexed SOP Instance UID is moved to ``conflicts/``. Anything else is quarantined.
- A row whose file is gone (deleted outside the program, or a delete interrupted after its files
  were removed) is dropped, and the counts of its series and study are recomputed.
- The same for ``conflicts/``: rows without files are dropped, files without rows quarantined.

Temp files are cleared separately (:func:`clear_tmp`) and only when no other process has the
archive open, since another process's ``tmp/`` files may be in flight.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from workstation.archive import store
from workstation.archive.attributes import content_hash
from workstation.archive.index import Index
from workstation.archive.results import AddResult, AddStatus
from workstation.archive.store import Prepared

log = logging.getLogger(__name__)

_BATCH = 200


@dataclass(frozen=True)
class ReconcileReport:
    """What reconciliation found and did.

    Attributes
    ----------
    files_checked : int
        Files walked under ``store/`` and ``conflicts/``.
    reindexed : tuple of str
        Relative paths of orphan files now indexed.
    redundant_removed : tuple of str
        Orphans whose exact content was already indexed under another path.
    conflicts_kept : tuple of str
        Orphans with an indexed SOP Instance UID but other content, moved to ``conflicts/``.
    quarantined : tuple of (str, str)
        (original relative path, reason) of files moved to ``quarantine/``.
    dangling_removed : tuple of str
        Relative paths of rows dropped because their file was missing.
    elapsed_s : float
    """

    files_checked: int = 0
    reindexed: tuple[str, ...] = ()
    redundant_removed: tuple[str, ...] = ()
    conflicts_kept: tuple[str, ...] = ()
    quarantined: tuple[tuple[str, str], ...] = ()
    dangling_removed: tuple[str, ...] = ()
    elapsed_s: float = 0.0
    notes: tuple[str, ...] = field(default=())

    @property
    def changed(self) -> bool:
        return bool(
            self.reindexed
            or self.redundant_removed
            or self.conflicts_kept
            or self.quarantined
            or self.dangling_removed
        )

    def summary(self) -> str:
        return (
            f"reconciled {self.files_checked} files in {self.elapsed_s:.2f} s: "
            f"{len(self.reindexed)} orphans re-indexed, {len(self.redundant_removed)} redundant "
            f"copies removed, {len(self.conflicts_kept)} kept as conflicts, "
            f"{len(self.quarantined)} quarantined, {len(self.dangling_removed)} dangling rows "
            "removed"
        )


def clear_tmp(root: Path) -> int:
    """Remove every file under ``root/tmp`` (unfinished writes); return how many."""
    removed = 0
    tmp = root / store.TMP_DIR
    for entry in os.scandir(tmp) if tmp.is_dir() else ():
        try:
            os.unlink(entry.path)
            removed += 1
        except OSError as exc:
            log.warning("cannot remove unfinished write %s: %s", entry.path, exc)
    if removed:
        log.info("%s: removed %d unfinished temp files", tmp, removed)
    return removed


def _walk(root: Path, sub: str) -> list[str]:
    out = []
    for dirpath, _, files in os.walk(root / sub):
        for name in files:
            out.append(os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/"))
    return out


def quarantine(root: Path, rel: str, reason: str, stamp: str) -> None:
    """Move ``root/rel`` to ``quarantine/STAMP/rel`` and note the reason in REASONS.tsv."""
    qdir = root / store.QUARANTINE_DIR / stamp
    dest = qdir / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(root / rel, dest)
    with open(qdir / "REASONS.tsv", "a", encoding="utf-8") as fh:
        fh.write(f"{rel}\t{reason}\n")
    log.warning("%s: quarantined %s: %s", root, rel, reason)


def reconcile_store(
    root: Path, index: Index, commit: Callable[[Sequence[Prepared]], list[AddResult]]
) -> ReconcileReport:
    """Reconcile ``root``'s store and conflict folders with ``index``.

    ``commit`` is the archive's batch commit: an orphan is offered to it as a prepared file whose
    temp path is the orphan itself, so it goes through exactly the duplicate and conflict rules
    of an import. The caller holds the archive's writer lock.
    """
    start = time.perf_counter()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    indexed = index.indexed_paths()
    on_disk = _walk(root, store.STORE_DIR)
    orphans = [rel for rel in on_disk if rel not in indexed]
    present = set(on_disk)
    dangling = [rel for rel in indexed if rel not in present]
    if dangling:
        with index.transaction() as conn:
            Index.delete_paths(conn, dangling)
        for rel in dangling:
            log.warning("%s: dropped the row of %s: its file is missing", root, rel)

    reindexed: list[str] = []
    redundant: list[str] = []
    conflicts: list[str] = []
    quarantined: list[tuple[str, str]] = []
    pending: list[tuple[str, Prepared]] = []

    def flush() -> None:
        results = commit([p for _, p in pending])
        for (rel, _), res in zip(pending, results, strict=True):
            if res.status is AddStatus.IMPORTED:
                reindexed.append(rel)
            elif res.status is AddStatus.DUPLICATE:
                redundant.append(rel)
            elif res.status is AddStatus.CONFLICT:
                conflicts.append(rel)
            else:
                quarantined.append((rel, res.reason))
                if (root / rel).exists():
                    quarantine(root, rel, res.reason, stamp)
        pending.clear()

    for rel in orphans:
        path = os.fspath(root / rel)
        prepared = _examine(path, rel)
        if prepared.reason:
            quarantined.append((rel, prepared.reason))
            quarantine(root, rel, prepared.reason, stamp)
            continue
        pending.append((rel, prepared))
        if len(pending) >= _BATCH:
            flush()
    if pending:
        flush()

    conflict_rows = index.conflict_paths()
    conflict_files = _walk(root, store.CONFLICT_DIR)
    gone = [rel for rel in conflict_rows if rel not in set(conflict_files)]
    if gone:
        with index.transaction() as conn:
            Index.delete_conflicts(conn, gone)
        dangling += gone
    for rel in conflict_files:
        if rel not in conflict_rows:
            reason = "a conflicting copy without its index row (interrupted write)"
            quarantined.append((rel, reason))
            quarantine(root, rel, reason, stamp)
    return ReconcileReport(
        files_checked=len(on_disk) + len(conflict_files),
        reindexed=tuple(reindexed),
        redundant_removed=tuple(redundant),
        conflicts_kept=tuple(conflicts),
        quarantined=tuple(quarantined),
        dangling_removed=tuple(dangling),
        elapsed_s=time.perf_counter() - start,
    )


def _examine(path: str, rel: str) -> Prepared:
    """Identify an orphan; its 'temp path' is the file itself, so committing leaves it in place."""
    header = store.read_record(path, rel)
    if isinstance(header, Prepared):
        return Prepared(source=rel, reason=f"unreadable: {header.reason}")
    expected = store.instance_rel_path(header)
    if expected != rel:
        return Prepared(source=rel, reason=f"its UIDs name another place ({expected})")
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        return Prepared(source=rel, reason=f"cannot read: {exc}")
    digest = content_hash(data)
    return Prepared(
        source=f"reconciled {rel}", record=header, digest=digest, size=len(data), tmp_path=path
    )
