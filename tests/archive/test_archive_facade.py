"""The Archive facade: adding, duplicates and conflicts, deleting, usage, thread safety."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from archive_factory import instance, to_bytes, write
from pydicom.uid import generate_uid

from workstation.archive.archive import Archive
from workstation.archive.attributes import content_hash
from workstation.archive.errors import NotFoundError
from workstation.archive.results import AddStatus, ArchiveWriteError


def test_add_bytes_stores_byte_for_byte_under_uid_paths(archive):
    ds = instance(patient_name="SECRET^NAME", patient_id="SECRETID")
    data = to_bytes(ds)
    result = archive.add_bytes(data, "c-store from CT1@10.0.0.5")
    assert result.status is AddStatus.IMPORTED and result.ok
    assert result.sop_instance_uid == ds.SOPInstanceUID
    assert result.study_instance_uid == ds.StudyInstanceUID
    stored = archive.path_of(result.stored_path)
    assert stored.read_bytes() == data
    assert result.stored_path == (
        f"store/{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}/{ds.SOPInstanceUID}.dcm"
    )
    for path in archive.root.rglob("*"):  # never patient data in a path
        assert "SECRET" not in str(path)
    assert not list((archive.root / "tmp").iterdir())
    row = next(archive.find("IMAGE", {"SOPInstanceUID": ds.SOPInstanceUID}))
    assert row["content_hash"] == content_hash(data)
    assert row["size_bytes"] == len(data)


def test_add_file_indexes_every_level(archive, tmp_path):
    ds = instance(patient_name="Doe^Jane", modality="MR", accession="A7", description="KNEE")
    result = archive.add_file(write(ds, tmp_path / "in" / "x"))
    assert result.status is AddStatus.IMPORTED
    study = next(archive.find("STUDY", {"StudyInstanceUID": ds.StudyInstanceUID}))
    assert study["PatientName"] == "Doe^Jane"
    assert study["AccessionNumber"] == "A7"
    assert study["StudyDescription"] == "KNEE"
    assert study["ModalitiesInStudy"] == "MR"
    assert study["NumberOfStudyRelatedSeries"] == 1
    assert study["NumberOfStudyRelatedInstances"] == 1
    assert study["ReferringPhysicianName"] == "WHO^DOCTOR"
    series = next(archive.find("SERIES", {"StudyInstanceUID": ds.StudyInstanceUID}))
    assert series["Modality"] == "MR" and series["NumberOfSeriesRelatedInstances"] == 1
    image = next(archive.find("IMAGE", {"SeriesInstanceUID": ds.SeriesInstanceUID}))
    assert image["TransferSyntaxUID"] == "1.2.840.10008.1.2.1"
    assert image["NumberOfFrames"] == 1
    assert image["InstanceNumber"] == 1


def test_same_content_with_another_meta_header_is_a_duplicate(archive):
    ds = instance()
    first = archive.add_bytes(to_bytes(ds), "a")
    ds.file_meta.ImplementationVersionName = "OTHER_SENDER"
    ds.file_meta.SourceApplicationEntityTitle = "PACS"
    again = archive.add_bytes(to_bytes(ds), "b")
    assert first.status is AddStatus.IMPORTED
    assert again.status is AddStatus.DUPLICATE and again.ok
    assert again.stored_path == first.stored_path
    assert archive.usage()["instances"] == 1


def test_different_content_is_kept_aside_never_overwritten(archive):
    ds = instance(pixel_value=1)
    original = to_bytes(ds)
    first = archive.add_bytes(original, "first")
    ds.PixelData = bytes(len(ds.PixelData))  # same SOP Instance UID, other pixels
    changed = to_bytes(ds)
    conflict = archive.add_bytes(changed, "second")
    assert conflict.status is AddStatus.CONFLICT
    assert "different content" in conflict.reason
    assert conflict.stored_path.startswith("conflicts/")
    assert archive.path_of(first.stored_path).read_bytes() == original
    assert archive.path_of(conflict.stored_path).read_bytes() == changed
    assert archive.usage()["conflicts"] == 1
    # the same conflicting copy again adds nothing
    again = archive.add_bytes(changed, "third")
    assert again.status is AddStatus.DUPLICATE
    assert again.stored_path == conflict.stored_path
    assert archive.usage()["conflicts"] == 1


@pytest.mark.parametrize(
    "bad_uid, reason",
    [("1.2.../../../etc", "only digits"), ("1.2.3." + "4" * 70, "more than 64"), ("", "no ")],
)
def test_invalid_uids_are_rejected_and_nothing_is_written(archive, bad_uid, reason):
    ds = instance(sop=bad_uid or None)
    if not bad_uid:
        del ds.SOPInstanceUID
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3"
    result = archive.add_bytes(to_bytes(ds), "peer")
    assert result.status is AddStatus.REJECTED and not result.ok
    assert reason in result.reason
    assert not list((archive.root / "store").rglob("*.dcm"))
    assert not list((archive.root / "tmp").iterdir())


def test_not_dicom_is_rejected_with_the_readers_reason(archive, tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("hello, not an image")
    result = archive.add_file(junk)
    assert result.status is AddStatus.REJECTED
    assert "not a DICOM file" in result.reason


def test_write_failure_raises_archive_write_error(archive, monkeypatch):
    from workstation.archive import store

    def full(root, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "write_temp", full)
    with pytest.raises(ArchiveWriteError, match="No space left"):
        archive.add_bytes(to_bytes(instance()), "peer")
    assert archive.usage()["instances"] == 0


def test_delete_study_and_series_remove_files_and_rows(archive):
    study = generate_uid()
    s1, s2 = generate_uid(), generate_uid()
    results = [
        archive.add_bytes(to_bytes(instance(study=study, series=s, modality=m)), "x")
        for s, m in ((s1, "CT"), (s1, "CT"), (s2, "SR"))
    ]
    other = archive.add_bytes(to_bytes(instance()), "x")
    row = next(archive.find("STUDY", {"StudyInstanceUID": study}))
    assert row["ModalitiesInStudy"] == "CT\\SR" and row["NumberOfStudyRelatedInstances"] == 3

    assert archive.delete_series(s2) == 1
    assert not archive.path_of(results[2].stored_path).exists()
    row = next(archive.find("STUDY", {"StudyInstanceUID": study}))
    assert row["ModalitiesInStudy"] == "CT"
    assert row["NumberOfStudyRelatedSeries"] == 1
    assert row["NumberOfStudyRelatedInstances"] == 2

    assert archive.delete_study(study) == 2
    assert not any(archive.path_of(r.stored_path).exists() for r in results)
    assert not (archive.root / "store" / study).exists()
    assert list(archive.find("STUDY", {"StudyInstanceUID": study})) == []
    assert archive.path_of(other.stored_path).exists()
    usage = archive.usage()
    assert (usage["studies"], usage["instances"], usage["patients"]) == (1, 1, 1)
    with pytest.raises(NotFoundError, match="no study with UID 1.2.3"):
        archive.delete_study("1.2.3")


def test_usage_sums_sizes_by_modality(archive):
    mr = to_bytes(instance(modality="MR"))
    archive.add_bytes(mr, "x")
    archive.add_bytes(to_bytes(instance(modality="CT", size=32)), "x")
    usage = archive.usage()
    assert usage["instances"] == 2 and usage["studies"] == 2
    assert usage["by_modality"]["MR"]["bytes"] == len(mr)
    assert usage["bytes"] == sum(m["bytes"] for m in usage["by_modality"].values())
    assert usage["free_bytes"] > 0


def test_listener_threads_add_while_another_thread_queries(archive):
    study = generate_uid()
    payloads = [to_bytes(instance(study=study, instance_number=i)) for i in range(120)]
    errors: list[BaseException] = []
    seen_counts: list[int] = []
    stop = threading.Event()

    def sender(chunk):
        try:
            for data in chunk:
                assert archive.add_bytes(data, "c-store").status is AddStatus.IMPORTED
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def browser():
        try:
            while not stop.is_set():
                rows = list(archive.find("STUDY", {"StudyInstanceUID": study}))
                seen_counts.append(rows[0]["NumberOfStudyRelatedInstances"] if rows else 0)
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    reader = threading.Thread(target=browser)
    reader.start()
    senders = [threading.Thread(target=sender, args=(payloads[i::4],)) for i in range(4)]
    for t in senders:
        t.start()
    for t in senders:
        t.join()
    stop.set()
    reader.join()
    assert not errors
    assert seen_counts == sorted(seen_counts)  # counts only grow; every read was consistent
    row = next(archive.find("STUDY", {"StudyInstanceUID": study}))
    assert row["NumberOfStudyRelatedInstances"] == 120


def test_reopen_keeps_everything_and_close_is_clean(tmp_path):
    root = tmp_path / "a"
    with Archive(root) as a:
        r = a.add_bytes(to_bytes(instance()), "x")
        assert (root / "OPEN").exists()
    assert not (root / "OPEN").exists()
    with Archive(root) as a:
        assert a.last_reconcile is None  # clean close: no walk needed
        assert next(a.find("IMAGE", {}))["rel_path"] == r.stored_path
    assert os.listdir(root / "tmp") == []


def test_store_paths_contain_only_uids(archive, tmp_path):
    ds = instance(patient_name="Ünïcode^Name", patient_id="../../x")
    result = archive.add_file(write(ds, tmp_path / "weird name with spaces"))
    assert result.status is AddStatus.IMPORTED
    parts = Path(result.stored_path).parts
    assert parts[0] == "store"
    assert all(p.replace(".", "").replace("dcm", "").isdigit() for p in parts[1:])


def test_a_failed_commit_keeps_nothing_and_says_why(archive, monkeypatch):
    import sqlite3

    from workstation.archive.index import Index

    def full(conn, rows):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Index, "insert_many", staticmethod(full))
    ds = instance()
    with pytest.raises(ArchiveWriteError, match="disk is full"):
        archive.add_bytes(to_bytes(ds), "peer")
    assert not list((archive.root / "store").rglob("*.dcm"))
    assert not list((archive.root / "tmp").iterdir())
    monkeypatch.undo()
    assert archive.add_bytes(to_bytes(ds), "peer").status is AddStatus.IMPORTED
