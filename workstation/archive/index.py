"""The SQLite index: Patient -> Study -> Series -> Instance, schema versions and their migrations.

One database file (``index.sqlite``) in WAL mode, so readers never block the writer nor the other
way round. The schema version is SQLite's ``user_version``; ``MIGRATIONS[i]`` takes a database
from version ``i`` to ``i + 1`` inside one transaction, so an interrupted migration leaves the
old version intact. A database newer than this code is refused, never modified.

Study and series rows carry denormalized counts and sizes (``num_instances``, ``num_series``,
``size_bytes``, ``modalities``) kept up to date on every insert and recomputed after deletions,
so a study list never counts instance rows at query time.

Writers use :meth:`Index.transaction` on the single writer connection (the caller serializes
writers with a lock); readers use :meth:`Index.reader`, one connection per thread.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from workstation.archive.attributes import InstanceRecord
from workstation.archive.errors import SchemaError

log = logging.getLogger(__name__)

_V1 = """
CREATE TABLE patient (
    pk INTEGER PRIMARY KEY,
    patient_id TEXT NOT NULL DEFAULT '',
    patient_name TEXT NOT NULL DEFAULT '',
    patient_name_norm TEXT NOT NULL DEFAULT '',
    birth_date TEXT NOT NULL DEFAULT '',
    sex TEXT NOT NULL DEFAULT '',
    UNIQUE (patient_id, patient_name, birth_date)
);
CREATE INDEX patient_name_norm_idx ON patient (patient_name_norm);
CREATE INDEX patient_id_idx ON patient (patient_id);

CREATE TABLE study (
    pk INTEGER PRIMARY KEY,
    patient_pk INTEGER NOT NULL REFERENCES patient (pk),
    study_uid TEXT NOT NULL UNIQUE,
    study_date TEXT NOT NULL DEFAULT '',
    study_time TEXT NOT NULL DEFAULT '',
    accession TEXT NOT NULL DEFAULT '',
    study_id TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    referring_physician TEXT NOT NULL DEFAULT '',
    referring_norm TEXT NOT NULL DEFAULT '',
    modalities TEXT NOT NULL DEFAULT '',
    num_series INTEGER NOT NULL DEFAULT 0,
    num_instances INTEGER NOT NULL DEFAULT 0,
    size_bytes INTEGER NOT NULL DEFAULT 0,
    added_at REAL NOT NULL DEFAULT 0
);
CREATE INDEX study_patient_idx ON study (patient_pk);
CREATE INDEX study_date_idx ON study (study_date, study_time);
CREATE INDEX study_accession_idx ON study (accession);

CREATE TABLE series (
    pk INTEGER PRIMARY KEY,
    study_pk INTEGER NOT NULL REFERENCES study (pk),
    series_uid TEXT NOT NULL UNIQUE,
    modality TEXT NOT NULL DEFAULT '',
    series_number INTEGER,
    description TEXT NOT NULL DEFAULT '',
    body_part TEXT NOT NULL DEFAULT '',
    num_instances INTEGER NOT NULL DEFAULT 0,
    size_bytes INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX series_study_idx ON series (study_pk);

CREATE TABLE instance (
    pk INTEGER PRIMARY KEY,
    series_pk INTEGER NOT NULL REFERENCES series (pk),
    sop_uid TEXT NOT NULL UNIQUE,
    sop_class TEXT NOT NULL DEFAULT '',
    instance_number INTEGER,
    transfer_syntax TEXT NOT NULL DEFAULT '',
    frames INTEGER NOT NULL DEFAULT 0,
    rel_path TEXT NOT NULL UNIQUE,
    size_bytes INTEGER NOT NULL DEFAULT 0,
    content_hash TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    added_at REAL NOT NULL DEFAULT 0
);
CREATE INDEX instance_series_idx ON instance (series_pk);

CREATE TABLE conflict (
    pk INTEGER PRIMARY KEY,
    sop_uid TEXT NOT NULL,
    study_uid TEXT NOT NULL DEFAULT '',
    rel_path TEXT NOT NULL UNIQUE,
    content_hash TEXT NOT NULL,
    existing_hash TEXT NOT NULL,
    size_bytes INTEGER NOT NULL DEFAULT 0,
    source TEXT NOT NULL DEFAULT '',
    added_at REAL NOT NULL DEFAULT 0
);
CREATE INDEX conflict_sop_idx ON conflict (sop_uid);
"""

#: ``MIGRATIONS[i]`` upgrades a database at ``user_version == i`` to ``i + 1``.
MIGRATIONS: list[str] = [_V1]


def connect(db_path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection with the archive's settings (autocommit; transactions are explicit)."""
    if readonly:
        conn = sqlite3.connect(
            f"file:{db_path}?mode=ro", uri=True, timeout=30, isolation_level=None,
            check_same_thread=False,
        )  # fmt: skip
    else:
        conn = sqlite3.connect(db_path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 30000")
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
        # FULL: a commit is on disk when it returns (the WAL is fsynced). A file is reported as
        # imported only after its commit, so the report survives power loss, not just a crash.
        conn.execute("PRAGMA synchronous = FULL")
    return conn


def migrate(conn: sqlite3.Connection, db_path: str) -> int:
    """Bring the schema to the newest version; return the version it had before.

    Raises
    ------
    SchemaError
        When the database is newer than this code (written by a later release).
    """
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise SchemaError(
            db_path,
            f"index schema version {version} is newer than this program understands "
            f"({len(MIGRATIONS)}); upgrade the workstation or use another --home",
        )
    for step in range(version, len(MIGRATIONS)):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[step].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {step + 1}")
            conn.execute("COMMIT")
        except Exception:
            conn.execute("ROLLBACK")
            raise
        log.info("%s: index schema migrated from version %d to %d", db_path, step, step + 1)
    return version


class Index:
    """The index database: one writer connection, a reader connection per thread.

    Parameters
    ----------
    db_path : Path
        The SQLite file; created (with the newest schema) when absent.
    """

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.writer = connect(db_path)
        try:
            self.previous_version = migrate(self.writer, str(db_path))
        except Exception:
            self.writer.close()
            raise
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()

    # --- connections ------------------------------------------------------------------------
    def reader(self) -> sqlite3.Connection:
        """This thread's read connection (opened on first use)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.db_path)
            conn.execute("PRAGMA query_only = 1")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def close(self) -> None:
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        self.writer.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` on the writer (``ROLLBACK`` on error)."""
        conn = self.writer
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # --- lookups ------------------------------------------------------------------------------
    @staticmethod
    def existing(conn: sqlite3.Connection, sop_uid: str) -> tuple[str, str] | None:
        """(content hash, relative path) of an indexed instance, or None."""
        row = conn.execute(
            "SELECT content_hash, rel_path FROM instance WHERE sop_uid = ?", (sop_uid,)
        ).fetchone()
        return (row[0], row[1]) if row else None

    @staticmethod
    def kept_conflicts(conn: sqlite3.Connection, sop_uid: str) -> list[tuple[str, str]]:
        """(content hash, relative path) of each copy of ``sop_uid`` kept aside."""
        rows = conn.execute(
            "SELECT content_hash, rel_path FROM conflict WHERE sop_uid = ?", (sop_uid,)
        )
        return [(row[0], row[1]) for row in rows]

    def indexed_paths(self) -> dict[str, str]:
        """Relative path -> SOP Instance UID of every indexed instance."""
        rows = self.reader().execute("SELECT rel_path, sop_uid FROM instance")
        return dict(rows.fetchall())

    def conflict_paths(self) -> set[str]:
        return {r[0] for r in self.reader().execute("SELECT rel_path FROM conflict")}

    # --- writes (the caller holds the writer lock and a transaction) ---------------------------
    @staticmethod
    def insert_many(
        conn: sqlite3.Connection, rows: Iterable[tuple[InstanceRecord, str, int, str, str]]
    ) -> int:
        """Add instances ``(record, rel_path, size, digest, source)``, creating their patient,
        study and series rows as needed; counts are updated once per series and study."""
        now = time.time()
        series_pks: dict[str, tuple[int, int]] = {}
        per_series: dict[int, list[int]] = {}
        per_study: dict[int, list[int]] = {}
        values = []
        for rec, rel_path, size, digest, source in rows:
            pks = series_pks.get(rec.series_uid)
            if pks is None:
                pks = series_pks[rec.series_uid] = Index._series_pk(conn, rec, now)
            series_pk, study_pk = pks
            values.append(
                (
                    series_pk, rec.sop_uid, rec.sop_class, rec.instance_number,
                    rec.transfer_syntax, rec.frames, rel_path, size, digest, source, now,
                )
            )  # fmt: skip
            for acc, pk in ((per_series, series_pk), (per_study, study_pk)):
                tally = acc.setdefault(pk, [0, 0])
                tally[0] += 1
                tally[1] += size
        conn.executemany(
            "INSERT INTO instance (series_pk, sop_uid, sop_class, instance_number, "
            "transfer_syntax, frames, rel_path, size_bytes, content_hash, source, added_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            values,
        )
        for table, acc in (("series", per_series), ("study", per_study)):
            conn.executemany(
                f"UPDATE {table} SET num_instances = num_instances + ?, "
                "size_bytes = size_bytes + ? WHERE pk = ?",
                [(n, size, pk) for pk, (n, size) in acc.items()],
            )
        return len(values)

    @staticmethod
    def _series_pk(conn: sqlite3.Connection, rec: InstanceRecord, now: float) -> tuple[int, int]:
        """(series pk, study pk) for a record, inserting patient, study and series as needed."""
        row = conn.execute(
            "SELECT pk, study_pk FROM series WHERE series_uid = ?", (rec.series_uid,)
        ).fetchone()
        if row:
            return row[0], row[1]
        row = conn.execute(
            "SELECT pk, modalities FROM study WHERE study_uid = ?", (rec.study_uid,)
        ).fetchone()
        if row:
            study_pk, modalities = row
        else:
            row = conn.execute(
                "SELECT pk FROM patient WHERE patient_id = ? AND patient_name = ? "
                "AND birth_date = ?",
                (rec.patient_id, rec.patient_name, rec.birth_date),
            ).fetchone()
            if row:
                patient_pk = row[0]
            else:
                patient_pk = conn.execute(
                    "INSERT INTO patient (patient_id, patient_name, patient_name_norm, "
                    "birth_date, sex) VALUES (?, ?, ?, ?, ?)",
                    (
                        rec.patient_id, rec.patient_name, rec.patient_name_norm,
                        rec.birth_date, rec.sex,
                    ),
                ).lastrowid  # fmt: skip
            study_pk = conn.execute(
                "INSERT INTO study (patient_pk, study_uid, study_date, study_time, accession, "
                "study_id, description, referring_physician, referring_norm, added_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    patient_pk, rec.study_uid, rec.study_date, rec.study_time, rec.accession,
                    rec.study_id, rec.study_description, rec.referring_physician,
                    rec.referring_norm, now,
                ),
            ).lastrowid  # fmt: skip
            modalities = ""
        series_pk = conn.execute(
            "INSERT INTO series (study_pk, series_uid, modality, series_number, description, "
            "body_part) VALUES (?, ?, ?, ?, ?, ?)",
            (
                study_pk, rec.series_uid, rec.modality, rec.series_number,
                rec.series_description, rec.body_part,
            ),
        ).lastrowid  # fmt: skip
        mods = set(filter(None, modalities.split("\\")))
        if rec.modality:
            mods.add(rec.modality)
        conn.execute(
            "UPDATE study SET num_series = num_series + 1, modalities = ? WHERE pk = ?",
            ("\\".join(sorted(mods)), study_pk),
        )
        return series_pk, study_pk  # type: ignore[return-value]

    @staticmethod
    def insert_conflict(
        conn: sqlite3.Connection,
        rec: InstanceRecord,
        rel_path: str,
        size: int,
        digest: str,
        existing_hash: str,
        source: str,
    ) -> None:
        conn.execute(
            "INSERT OR IGNORE INTO conflict (sop_uid, study_uid, rel_path, content_hash, "
            "existing_hash, size_bytes, source, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                rec.sop_uid,
                rec.study_uid,
                rel_path,
                digest,
                existing_hash,
                size,
                source,
                time.time(),
            ),
        )

    @staticmethod
    def study_paths(conn: sqlite3.Connection, study_uid: str) -> list[str] | None:
        """Relative paths of a study's instances; None when the study is not indexed."""
        row = conn.execute("SELECT pk FROM study WHERE study_uid = ?", (study_uid,)).fetchone()
        if row is None:
            return None
        return [
            r[0]
            for r in conn.execute(
                "SELECT i.rel_path FROM instance i JOIN series se ON se.pk = i.series_pk "
                "WHERE se.study_pk = ?",
                (row[0],),
            )
        ]

    @staticmethod
    def series_paths(conn: sqlite3.Connection, series_uid: str) -> list[str] | None:
        row = conn.execute("SELECT pk FROM series WHERE series_uid = ?", (series_uid,)).fetchone()
        if row is None:
            return None
        return [
            r[0]
            for r in conn.execute("SELECT rel_path FROM instance WHERE series_pk = ?", (row[0],))
        ]

    @staticmethod
    def delete_paths(conn: sqlite3.Connection, rel_paths: Iterable[str]) -> int:
        """Remove the instance rows of ``rel_paths``, then fix counts and drop empty parents."""
        series_pks: set[int] = set()
        removed = 0
        for rel in rel_paths:
            row = conn.execute(
                "DELETE FROM instance WHERE rel_path = ? RETURNING series_pk", (rel,)
            ).fetchone()
            if row:
                series_pks.add(row[0])
                removed += 1
        Index.refresh_series(conn, series_pks)
        return removed

    @staticmethod
    def refresh_series(conn: sqlite3.Connection, series_pks: Iterable[int]) -> None:
        """Recompute counts of these series and their studies; drop rows left empty."""
        study_pks: set[int] = set()
        for pk in series_pks:
            row = conn.execute("SELECT study_pk FROM series WHERE pk = ?", (pk,)).fetchone()
            if row is None:
                continue
            study_pks.add(row[0])
            n, size = conn.execute(
                "SELECT count(*), coalesce(sum(size_bytes), 0) FROM instance WHERE series_pk = ?",
                (pk,),
            ).fetchone()
            if n == 0:
                conn.execute("DELETE FROM series WHERE pk = ?", (pk,))
            else:
                conn.execute(
                    "UPDATE series SET num_instances = ?, size_bytes = ? WHERE pk = ?",
                    (n, size, pk),
                )
        for pk in study_pks:
            rows = conn.execute(
                "SELECT modality, num_instances, size_bytes FROM series WHERE study_pk = ?", (pk,)
            ).fetchall()
            if not rows:
                patient = conn.execute(
                    "DELETE FROM study WHERE pk = ? RETURNING patient_pk", (pk,)
                ).fetchone()
                if (
                    patient
                    and not conn.execute(
                        "SELECT 1 FROM study WHERE patient_pk = ? LIMIT 1", (patient[0],)
                    ).fetchone()
                ):
                    conn.execute("DELETE FROM patient WHERE pk = ?", (patient[0],))
                continue
            mods = "\\".join(sorted({r[0] for r in rows if r[0]}))
            conn.execute(
                "UPDATE study SET num_series = ?, num_instances = ?, size_bytes = ?, "
                "modalities = ? WHERE pk = ?",
                (len(rows), sum(r[1] for r in rows), sum(r[2] for r in rows), mods, pk),
            )

    @staticmethod
    def delete_conflicts(conn: sqlite3.Connection, rel_paths: Iterable[str]) -> None:
        conn.executemany("DELETE FROM conflict WHERE rel_path = ?", [(p,) for p in rel_paths])
