"""The archive facade: ``Archive(root)`` adds files and received instances, answers queries,
deletes studies and series, reports usage, and reconciles its store with its index.

Thread safety: one writer connection behind a lock (``add_*``, ``commit``, ``delete_*``,
``reconcile``), and a read connection per thread for ``find`` and ``usage`` (WAL mode: readers
never wait for the writer). A storage listener may call :meth:`Archive.add_bytes` (or
:meth:`Archive.spool_bytes`) from its association threads while the GUI queries.

Between processes: every open archive holds a shared ``flock`` on ``archive.lock``. Start-up
reconciliation runs only when the exclusive lock can be taken (no other process has the archive
open), so it never mistakes another process's in-flight writes for debris. It walks the whole
store when the previous session did not close cleanly (the ``OPEN`` marker is still there) and
otherwise only clears ``tmp/``. Before that walk, start-up indexes every file left in
``spool/`` (instances a listener acknowledged and had not indexed when its process died; see
:mod:`workstation.archive.spool`), so nothing acknowledged is lost to a process crash.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from workstation.archive import query as _query
from workstation.archive import store
from workstation.archive.errors import NotFoundError
from workstation.archive.index import Index
from workstation.archive.reconcile import (
    ReconcileReport,
    clear_tmp,
    quarantine,
    reconcile_store,
)
from workstation.archive.results import AddResult, AddStatus, ArchiveWriteError
from workstation.archive.spool import MAX_BATCH, SpooledItem
from workstation.archive.store import Prepared

log = logging.getLogger(__name__)
audit = logging.getLogger("workstation.audit")

_MARKER = "OPEN"
_FSYNC_THREADS = 16


class Archive:
    """The local archive under ``root``.

    Parameters
    ----------
    root : Path
        The archive directory (created when absent).
    reconcile : bool or None
        True: always walk the store at start-up; False: never (tools that generate an index);
        None (default): walk it when the previous session did not close cleanly.
    """

    def __init__(self, root: Path | str, *, reconcile: bool | None = None) -> None:
        self.root = Path(root)
        for sub in (store.STORE_DIR, store.CONFLICT_DIR, store.TMP_DIR, store.SPOOL_DIR):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._lock_file = open(self.root / "archive.lock", "a+b")  # noqa: SIM115 - held open
        self.index = Index(self.root / store.INDEX_NAME)
        self.last_reconcile: ReconcileReport | None = None
        self._closed = False
        self._fsync_pool: ThreadPoolExecutor | None = None
        try:
            self._start(reconcile)
        except BaseException:
            self.close()
            raise

    def _start(self, reconcile: bool | None) -> None:
        marker = self.root / _MARKER
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            alone = True
        except OSError:
            alone = False
        if alone:
            clear_tmp(self.root)
            self._recover_spool()
            if reconcile or (reconcile is None and marker.exists()):
                self.reconcile()
            marker.touch()
            store.fsync_dir(self.root)
        else:
            log.info("%s is open in another process: start-up reconciliation skipped", self.root)
        fcntl.flock(self._lock_file, fcntl.LOCK_SH)

    # --- lifecycle ----------------------------------------------------------------------------
    def close(self) -> None:
        """Close the index; the last process to close removes the unclean-shutdown marker."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            if self._fsync_pool is not None:
                self._fsync_pool.shutdown()
            self.index.close()
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                (self.root / _MARKER).unlink(missing_ok=True)
            except OSError:
                pass  # another process still has it open
            self._lock_file.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def path_of(self, rel_path: str) -> Path:
        """The absolute path of an index ``rel_path``."""
        return self.root / rel_path

    # --- adding -------------------------------------------------------------------------------
    def add_file(self, path: str | os.PathLike[str]) -> AddResult:
        """Copy one file into the archive (durable before this returns).

        Raises
        ------
        ArchiveWriteError
            When the store cannot be written (disk full, permissions); nothing was indexed.
        """
        return self._add_one(store.prepare_file(os.fspath(path), os.fspath(self.root)))

    def add_bytes(self, data: bytes, source: str) -> AddResult:
        """Store a complete DICOM Part 10 file received over the network, byte-for-byte.

        Parameters
        ----------
        data : bytes
            The whole file: preamble, File Meta Information and data set.
        source : str
            Who sent it, e.g. ``"c-store from CT1@10.0.0.5"`` (kept in the index).

        Raises
        ------
        ArchiveWriteError
            When the store cannot be written; the caller should answer "out of resources".
        """
        return self._add_one(store.prepare_bytes(data, source, os.fspath(self.root)))

    def spool_bytes(
        self,
        data: bytes | memoryview,
        *,
        sync: bool = False,
        part: store.PartFile | None = None,
    ) -> str:
        """Write a received Part 10 file to ``spool/`` and return the spool file's path.

        The instance is not indexed yet: hand the path to a
        :class:`~workstation.archive.spool.SpoolIngester` (or, after a crash, the next start of
        the archive indexes it). ``sync`` fsyncs it first (survives a power cut; without it, a
        process crash). ``data`` may be a view of the caller's buffer: it is written before this
        returns and not kept. ``part``: an empty spool file made ahead by
        :meth:`new_spool_part` (this call closes it); by default one is made here.

        Raises
        ------
        ArchiveWriteError
            When it cannot be written (disk full, permissions); nothing was left behind.
        """
        try:
            return store.write_spool(self.root, data, sync=sync, part=part)
        except OSError as exc:
            raise ArchiveWriteError(f"{self.root}: spool write failed: {exc}") from exc

    def open_spool(
        self, *, sync: bool = False, part: store.PartFile | None = None
    ) -> store.SpoolWriter:
        """A :class:`~workstation.archive.store.SpoolWriter` for an instance written to
        ``spool/`` as it arrives (the streaming form of :meth:`spool_bytes`: its ``commit``
        gives the path to hand to the ingester; its ``write`` and ``commit`` raise ``OSError``).

        Raises
        ------
        ArchiveWriteError
            When no spool file can be created (disk full, permissions).
        """
        try:
            return store.SpoolWriter(self.root, part, sync=sync)
        except OSError as exc:
            raise ArchiveWriteError(f"{self.root}: spool write failed: {exc}") from exc

    def new_spool_part(self) -> store.PartFile:
        """An empty spool file, open for writing, for a later :meth:`spool_bytes` or
        :meth:`open_spool` (anonymous where the filesystem allows, else ``spool/NAME.part``:
        see :func:`~workstation.archive.store.new_spool_part`).

        Raises
        ------
        OSError
            When it cannot be created.
        """
        return store.new_spool_part(self.root)

    def prepare_spooled(self, item: SpooledItem) -> Prepared:
        """Identify and hash one spooled instance (its header read, its content hashed), ready
        for :meth:`index_spooled`; never raises (a bad file is a rejection to quarantine)."""
        return store.prepare_spooled(item.path, item.data, item.source)

    def index_spooled(
        self, items: Sequence[SpooledItem], prepared: Sequence[Prepared] | None = None
    ) -> list[AddResult]:
        """Index spooled instances in one commit; one result per item, in order.

        ``prepared``: what :meth:`prepare_spooled` gave for each item, when the caller prepared
        them as they arrived (the spool ingester does); else they are prepared here.

        Imported ones are renamed from ``spool/`` into the store, duplicates removed, conflicts
        kept aside; rejected ones (unreadable, bad UIDs) go to ``quarantine/``. Every outcome
        goes to the audit log.

        Raises
        ------
        ArchiveWriteError
            When the commit fails (disk full): every file stays in ``spool/``.
        """
        if prepared is None:
            prepared = [self.prepare_spooled(i) for i in items]
        results = self.commit(prepared)
        stamp = ""
        for item, res in zip(prepared, results, strict=True):
            if res.status is AddStatus.REJECTED:
                if item.tmp_path and os.path.exists(item.tmp_path):
                    stamp = stamp or time.strftime("%Y%m%d-%H%M%S")
                    rel = os.path.relpath(item.tmp_path, self.root).replace(os.sep, "/")
                    quarantine(self.root, rel, res.reason, stamp)
                audit.warning(
                    "acknowledged but not indexed (quarantined): %s: %s", res.source, res.reason
                )
        return results

    def _recover_spool(self) -> None:
        """Index the spool left by a process that ended before its ingester drained."""
        spool = self.root / store.SPOOL_DIR
        leftovers: list[tuple[float, str]] = []
        for entry in os.scandir(spool):
            if entry.name.endswith(".part"):  # never acknowledged: the write did not finish
                os.unlink(entry.path)
            elif entry.name.endswith(store.SPOOL_SUFFIX):
                leftovers.append((entry.stat().st_mtime, entry.path))
        if not leftovers:
            return
        leftovers.sort()
        counts: dict[str, int] = {}
        for start in range(0, len(leftovers), MAX_BATCH):
            chunk = leftovers[start : start + MAX_BATCH]
            items = [SpooledItem(path, None, "c-store (recovered from spool)") for _, path in chunk]
            try:
                results = self.index_spooled(items)
            except ArchiveWriteError as exc:  # disk full: they stay spooled for the next start
                log.error("%s: cannot index the spool left by the last session: %s", self.root, exc)
                return
            for res in results:
                counts[res.status.value] = counts.get(res.status.value, 0) + 1
                if res.status is not AddStatus.REJECTED:
                    audit.info(
                        "recovered %s study %s from the spool: %s",
                        res.sop_instance_uid, res.study_instance_uid, res.status.value,
                    )  # fmt: skip
        log.warning("%s: indexed %d instances left in the spool: %s", self.root, len(leftovers),
                    ", ".join(f"{n} {what}" for what, n in sorted(counts.items())))  # fmt: skip

    def _add_one(self, prepared: Prepared) -> AddResult:
        if prepared.write_failed:
            raise ArchiveWriteError(f"{self.root}: {prepared.source}: {prepared.reason}")
        return self.commit([prepared])[0]

    def commit(self, batch: Sequence[Prepared]) -> list[AddResult]:
        """Move prepared files into place and index them in one transaction.

        Returns one result per item, in order. Nothing is reported as imported before the
        transaction is committed (see :mod:`workstation.archive.store` for the ordering).
        """
        with self._lock:
            placed: list[tuple[str, str]] = []
            spool_dir = os.fspath(self.root / store.SPOOL_DIR)
            try:
                return self._commit_locked(batch, placed)
            except BaseException as exc:
                for path, origin in placed:  # renamed in but never indexed: take them out again
                    try:
                        if os.path.dirname(origin) == spool_dir:  # acknowledged: keep it spooled
                            os.replace(path, origin)
                        else:
                            os.unlink(path)
                    except OSError:
                        log.warning("cannot undo the placing of %s (from %s)", path, origin)
                tmp_dir = os.fspath(self.root / store.TMP_DIR)
                for item in batch:  # temp copies only: a reconciled orphan stays where it is
                    if os.path.dirname(item.tmp_path) == tmp_dir:
                        store.discard(item)
                if isinstance(exc, OSError | sqlite3.OperationalError) and not isinstance(
                    exc, ArchiveWriteError
                ):  # disk full, I/O error, permissions: nothing of the batch was kept
                    raise ArchiveWriteError(f"{self.root}: commit failed: {exc}") from exc
                raise

    def _commit_locked(
        self, batch: Sequence[Prepared], placed: list[tuple[str, str]]
    ) -> list[AddResult]:
        results: list[AddResult] = []
        # Copies found redundant are removed only once the batch is committed: a spooled one is
        # acknowledged, and must stay in spool/ if the commit fails.
        redundant: list[Prepared] = []
        sync_dirs: set[str] = set()
        seen: dict[str, tuple[str, str]] = {}
        new_rows: list[tuple[Any, str, int, str, str]] = []
        self._sync_temp_files([item.tmp_path for item in batch if item.tmp_path])
        with self.index.transaction() as conn:
            for item in batch:
                rec = item.record
                if rec is None:
                    results.append(AddResult(AddStatus.REJECTED, item.source, reason=item.reason))
                    continue
                ids = {"sop_instance_uid": rec.sop_uid, "study_instance_uid": rec.study_uid}
                existing = seen.get(rec.sop_uid) or self.index.existing(conn, rec.sop_uid)
                held = existing and _held_copy(
                    item, [existing, *self.index.kept_conflicts(conn, rec.sop_uid)]
                )
                if existing and held == existing[1]:
                    redundant.append(item)
                    results.append(
                        AddResult(AddStatus.DUPLICATE, item.source, **ids, stored_path=existing[1])
                    )
                    continue
                if held:
                    redundant.append(item)
                    results.append(
                        AddResult(
                            AddStatus.DUPLICATE, item.source, **ids, stored_path=held,
                            reason="same content as a conflicting copy already kept aside",
                        )
                    )  # fmt: skip
                    continue
                if not item.tmp_path:  # changed under us since the worker checked
                    results.append(
                        AddResult(
                            AddStatus.REJECTED, item.source, **ids,
                            reason="the archive changed while this file was imported; retry",
                        )
                    )  # fmt: skip
                    continue
                if existing:
                    rel = store.conflict_rel_path(rec, item.digest)
                    self._place(item.tmp_path, rel, sync_dirs, placed)
                    self.index.insert_conflict(
                        conn, rec, rel, item.size, item.digest, existing[0], item.source
                    )
                    reason = (
                        f"SOP Instance UID already archived with different content "
                        f"(stored {existing[0][:12]}, offered {item.digest[:12]}); kept aside"
                    )
                    results.append(
                        AddResult(AddStatus.CONFLICT, item.source, **ids, reason=reason,
                                  stored_path=rel)
                    )  # fmt: skip
                    continue
                rel = store.instance_rel_path(rec)
                self._place(item.tmp_path, rel, sync_dirs, placed)
                new_rows.append((rec, rel, item.size, item.digest, item.source))
                seen[rec.sop_uid] = (item.digest, rel)
                results.append(AddResult(AddStatus.IMPORTED, item.source, **ids, stored_path=rel))
            Index.insert_many(conn, new_rows)
            for d in sorted(sync_dirs, key=len, reverse=True):
                store.fsync_dir(d)
        for item in redundant:
            store.discard(item)
        return results

    def _sync_temp_files(self, paths: list[str]) -> None:
        """fsync the batch's temp files concurrently (see store.py for why)."""
        if len(paths) <= 1:
            for path in paths:
                store.fsync_file(path)
            return
        if self._fsync_pool is None:
            self._fsync_pool = ThreadPoolExecutor(_FSYNC_THREADS, thread_name_prefix="fsync")
        for _ in self._fsync_pool.map(store.fsync_file, paths):
            pass

    def _place(
        self, tmp: str, rel: str, sync_dirs: set[str], placed: list[tuple[str, str]]
    ) -> None:
        """Rename a temp file to ``rel``, noting the directories whose entries changed."""
        final = self.root / rel
        parent = final.parent
        missing = []
        d = parent
        while not d.exists():
            missing.append(d)
            d = d.parent
        if missing:
            parent.mkdir(parents=True, exist_ok=True)
            sync_dirs.update(os.fspath(m.parent) for m in missing)
        if os.fspath(final) != tmp:  # a reconciled orphan is already in place
            os.replace(tmp, final)
            placed.append((os.fspath(final), tmp))
        sync_dirs.add(os.fspath(parent))

    # --- queries ------------------------------------------------------------------------------
    def find(
        self, level: str, keys: Mapping[str, Any] | None = None, limit: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Matches of a C-FIND style query, streamed (see :mod:`workstation.archive.query`).

        Parameters
        ----------
        level : str
            ``PATIENT``, ``STUDY``, ``SERIES`` or ``IMAGE`` (``INSTANCE``).
        keys : mapping
            DICOM keyword -> match value (``""`` returns the attribute without testing it).
            Values may be strings or pydicom values (``PersonName``, ``MultiValue`` of UIDs).

        Yields
        ------
        dict
            Every attribute of the level and the levels above (keyword -> value), plus sizes
            and, at IMAGE level, ``rel_path`` (see :meth:`path_of`) and ``content_hash``.
        """
        # The generator holds a read snapshot until exhausted or closed: consume it promptly.
        return _query.run(self.index.reader(), level, keys or {}, limit)

    def usage(self) -> dict[str, Any]:
        """Counts and bytes: patients, studies, series, instances, per modality, conflicts,
        quarantine, and the free space of the volume."""
        conn = self.index.reader()
        counts = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("patient", "study", "series", "instance")
        }
        total = conn.execute("SELECT coalesce(sum(size_bytes), 0) FROM instance").fetchone()[0]
        by_modality = {
            (mod or "?"): {"series": n, "instances": i, "bytes": b}
            for mod, n, i, b in conn.execute(
                "SELECT modality, count(*), sum(num_instances), sum(size_bytes) FROM series "
                "GROUP BY modality ORDER BY sum(size_bytes) DESC"
            )
        }
        n_conf, b_conf = conn.execute(
            "SELECT count(*), coalesce(sum(size_bytes), 0) FROM conflict"
        ).fetchone()
        quarantine = _tree_size(self.root / store.QUARANTINE_DIR)
        disk = shutil.disk_usage(self.root)
        return {
            "root": str(self.root),
            "patients": counts["patient"],
            "studies": counts["study"],
            "series": counts["series"],
            "instances": counts["instance"],
            "bytes": total,
            "by_modality": by_modality,
            "conflicts": n_conf,
            "conflict_bytes": b_conf,
            "quarantined_files": quarantine[0],
            "quarantine_bytes": quarantine[1],
            "free_bytes": disk.free,
        }

    # --- deleting -----------------------------------------------------------------------------
    def delete_study(self, study_uid: str) -> int:
        """Delete a study's files and rows; return the number of instances removed.

        Raises
        ------
        NotFoundError
            When the study is not in the archive.
        """
        return self._delete("study", study_uid, Index.study_paths)

    def delete_series(self, series_uid: str) -> int:
        """Delete a series' files and rows; return the number of instances removed.

        Raises
        ------
        NotFoundError
            When the series is not in the archive.
        """
        return self._delete("series", series_uid, Index.series_paths)

    def _delete(self, what: str, uid: str, paths_of: Any) -> int:
        # Files go first, then the rows: a crash in between leaves rows without files, which
        # reconciliation removes; the other order would leave files that it would re-index.
        with self._lock:
            rels = paths_of(self.index.writer, uid)
            if rels is None:
                raise NotFoundError(f"no {what} with UID {uid} in the archive at {self.root}")
            dirs: set[Path] = set()
            for rel in rels:
                path = self.root / rel
                path.unlink(missing_ok=True)
                dirs.add(path.parent)
            for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
                _remove_empty_dirs(d, self.root / store.STORE_DIR)
            store.fsync_dir(self.root / store.STORE_DIR)
            with self.index.transaction() as conn:
                removed = Index.delete_paths(conn, rels)
        audit.info("deleted %s %s: %d instances from %s", what, uid, removed, self.root)
        return removed

    # --- consistency --------------------------------------------------------------------------
    def reconcile(self) -> ReconcileReport:
        """Bring store and index into agreement (see :mod:`workstation.archive.reconcile`)."""
        with self._lock:
            report = reconcile_store(self.root, self.index, self.commit)
        self.last_reconcile = report
        level = logging.WARNING if report.changed else logging.INFO
        log.log(level, "%s: %s", self.root, report.summary())
        return report


def _remove_empty_dirs(d: Path, stop: Path) -> None:
    while d != stop and stop in d.parents:
        try:
            d.rmdir()
        except OSError:
            return
        d = d.parent


def _tree_size(root: Path) -> tuple[int, int]:
    n = size = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            if name == "REASONS.tsv":  # the quarantine's own notes
                continue
            try:
                size += os.stat(os.path.join(dirpath, name)).st_size
                n += 1
            except OSError:
                pass
    return n, size


def _held_copy(item: Prepared, stored: Sequence[tuple[str, str]]) -> str:
    """The relative path of the first stored ``(digest, path)`` with the prepared copy's
    content, or empty (see :func:`~workstation.archive.store.held_digest`; the offered bytes
    are its temp file, read only for a digest of the older algorithm)."""
    if not item.tmp_path:  # found held when prepared: its digest is the stored one it matched
        return next((rel for digest, rel in stored if digest == item.digest), "")

    def data() -> bytes:
        with open(item.tmp_path, "rb") as fh:
            return fh.read()

    try:
        hit = store.held_digest([digest for digest, _ in stored], item.digest, data)
    except OSError:  # unreadable: not known to be the same; its placing reports the error
        return ""
    return next((rel for digest, rel in stored if digest == hit), "") if hit else ""
