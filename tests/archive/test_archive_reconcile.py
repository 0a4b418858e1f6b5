"""Schema versions and migrations; start-up reconciliation of store and index."""

from __future__ import annotations

import os
import shutil
import sqlite3

import pytest
from archive_factory import instance, to_bytes, write

from workstation.archive import index as index_module
from workstation.archive.archive import Archive
from workstation.archive.attributes import content_hash, dataset_offset
from workstation.archive.errors import SchemaError


def test_new_index_has_the_newest_schema_in_wal_mode(tmp_path):
    with Archive(tmp_path / "a") as a:
        conn = a.index.reader()
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(index_module.MIGRATIONS)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert a.index.previous_version == 0


def test_an_older_schema_is_migrated_in_place(tmp_path, monkeypatch):
    root = tmp_path / "a"
    with Archive(root) as a:
        a.add_bytes(to_bytes(instance()), "x")
    v2 = "ALTER TABLE study ADD COLUMN institution TEXT NOT NULL DEFAULT ''"
    monkeypatch.setattr(index_module, "MIGRATIONS", [*index_module.MIGRATIONS, v2])
    with Archive(root) as a:
        assert a.index.previous_version == 1
        conn = a.index.reader()
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
        assert conn.execute("SELECT institution FROM study").fetchall() == [("",)]
        assert a.usage()["instances"] == 1


def test_a_failed_migration_leaves_the_old_version(tmp_path, monkeypatch):
    root = tmp_path / "a"
    Archive(root).close()
    broken = "ALTER TABLE study ADD COLUMN x TEXT; ALTER TABLE nosuchtable ADD COLUMN y TEXT"
    monkeypatch.setattr(index_module, "MIGRATIONS", [*index_module.MIGRATIONS, broken])
    with pytest.raises(sqlite3.OperationalError):
        Archive(root)
    conn = sqlite3.connect(root / "index.sqlite")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    columns = [r[1] for r in conn.execute("PRAGMA table_info(study)")]
    assert "x" not in columns
    conn.close()


def test_a_newer_schema_is_refused_untouched(tmp_path):
    root = tmp_path / "a"
    Archive(root).close()
    conn = sqlite3.connect(root / "index.sqlite")
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaError, match="version 99 is newer"):
        Archive(root)


def test_content_hash_ignores_the_file_meta(tmp_path):
    ds = instance()
    a = to_bytes(ds)
    ds.file_meta.ImplementationVersionName = "SOMEONE_ELSE_1"
    b = to_bytes(ds)
    assert a != b and content_hash(a) == content_hash(b)
    assert a[dataset_offset(a) :] == b[dataset_offset(b) :]
    assert dataset_offset(b"no preamble at all") == 0


def _unclean(root):
    (root / "OPEN").touch()  # as if the last session had crashed


def test_reconcile_reindexes_orphans_and_drops_dangling_rows(tmp_path):
    root = tmp_path / "a"
    with Archive(root) as a:
        kept = a.add_bytes(to_bytes(instance()), "x")
        lost = a.add_bytes(to_bytes(instance()), "x")
    # a crash between rename and commit leaves a complete file without its row:
    orphan_ds = instance()
    rel = f"store/{orphan_ds.StudyInstanceUID}/{orphan_ds.SeriesInstanceUID}/{orphan_ds.SOPInstanceUID}.dcm"
    write(orphan_ds, root / rel)
    os.unlink(root / lost.stored_path)  # and a file removed behind the archive's back
    (root / "tmp" / "abc.part").write_bytes(b"half a file")
    _unclean(root)
    with Archive(root) as a:
        report = a.last_reconcile
        assert report is not None
        assert report.reindexed == (rel,)
        assert report.dangling_removed == (lost.stored_path,)
        assert report.quarantined == ()
        assert not list((root / "tmp").iterdir())
        paths = {r["rel_path"] for r in a.find("IMAGE", {})}
        assert paths == {kept.stored_path, rel}
        assert a.usage()["studies"] == 2  # the emptied study is gone
    assert "2 files" in report.summary() or report.files_checked == 2


def test_reconcile_quarantines_what_it_cannot_index(tmp_path):
    root = tmp_path / "a"
    Archive(root).close()
    junk = root / "store" / "1.2.3" / "4.5.6" / "7.8.9.dcm"
    junk.parent.mkdir(parents=True)
    junk.write_bytes(b"not dicom")
    misplaced_ds = instance()
    misplaced = write(misplaced_ds, root / "store" / "1.2" / "3.4" / "5.6.dcm")
    stray_conflict = root / "conflicts" / "1.2.3" / "abcd.dcm"
    stray_conflict.parent.mkdir(parents=True)
    stray_conflict.write_bytes(b"x")
    _unclean(root)
    with Archive(root) as a:
        report = a.last_reconcile
        reasons = dict(report.quarantined)
        assert "unreadable" in reasons["store/1.2.3/4.5.6/7.8.9.dcm"]
        assert "name another place" in reasons["store/1.2/3.4/5.6.dcm"]
        assert "conflicts/1.2.3/abcd.dcm" in reasons
        assert not misplaced.exists() and not junk.exists()
        assert a.usage()["quarantined_files"] == 3
        assert a.usage()["instances"] == 0
    listing = next((root / "quarantine").iterdir()) / "REASONS.tsv"
    assert "store/1.2/3.4/5.6.dcm" in listing.read_text()


def test_orphan_copy_of_an_indexed_instance_is_removed_or_kept_aside(tmp_path):
    root = tmp_path / "a"
    ds = instance()
    with Archive(root) as a:
        first = a.add_bytes(to_bytes(ds), "x")
    # the same instance under a second study folder (same SOP UID, same content)
    ds2 = instance(sop=ds.SOPInstanceUID, study=ds.StudyInstanceUID, series="1.2.3.4")
    ds2.PixelData = ds.PixelData
    same = write(ds2, root / f"store/{ds.StudyInstanceUID}/1.2.3.4/{ds.SOPInstanceUID}.dcm")
    _unclean(root)
    with Archive(root) as a:
        report = a.last_reconcile
        assert len(report.conflicts_kept) + len(report.redundant_removed) == 1
        assert not same.exists()
        assert a.path_of(first.stored_path).exists()
        assert a.usage()["instances"] == 1


def test_no_walk_after_a_clean_close_nor_while_another_process_has_it_open(tmp_path):
    root = tmp_path / "a"
    first = Archive(root)
    _unclean(root)
    second = Archive(root)  # the first still holds its shared lock: no reconcile
    assert second.last_reconcile is None
    second.close()
    first.close()
    assert not (root / "OPEN").exists()
    with Archive(root) as a:
        assert a.last_reconcile is None
    shutil.rmtree(root / "tmp")
    with Archive(root, reconcile=True) as a:  # explicit, and tmp/ is recreated
        assert a.last_reconcile is not None and not a.last_reconcile.changed
