"""Importing folders, single files, zips and DICOMDIR media; progress, cancelling, refusals."""

from __future__ import annotations

import os
import threading
import zipfile
from pathlib import Path

import pytest
from archive_factory import instance, series_folder, to_bytes, write
from pydicom.fileset import FileSet

from workstation.archive.archive import Archive
from workstation.archive.errors import MediaError
from workstation.archive.importer import Importer
from workstation.archive.media import read_dicomdir
from workstation.archive.results import AddStatus


def _statuses(report):
    return {s.value: report.count(s) for s in AddStatus}


def test_folder_import_counts_every_file(archive, tmp_path):
    src = tmp_path / "in"
    series_folder(src / "deep" / "er", 5)
    write(instance(), src / "UPPER.DCM")
    (src / "readme.txt").write_text("not an image")
    (src / "empty").write_bytes(b"")
    (src / "no extension at all").write_bytes(os.urandom(300))
    events = []
    report = Importer(archive, workers=0).import_paths([src], on_progress=events.append)
    assert report.total == 9 and len(report.results) == 9
    assert _statuses(report) == {"imported": 6, "duplicate": 0, "conflict": 0, "rejected": 3}
    assert all(r.reason for r in report.results if r.status is AddStatus.REJECTED)
    assert [e.done for e in events] == list(range(1, 10))
    assert events[-1].imported == 6 and events[-1].rejected == 3
    assert events[-1].rate > 0 and events[-1].eta_s == 0
    assert "9/9 files" in events[-1].line()
    summary = report.to_json()
    assert summary["imported"] + summary["rejected"] == summary["total"] == 9
    assert sum(summary["rejected_reasons"].values()) == 3
    again = Importer(archive, workers=0).import_paths([src])
    assert _statuses(again) == {"imported": 0, "duplicate": 6, "conflict": 0, "rejected": 3}


def test_process_pool_and_inline_give_the_same_results(tmp_path):
    src = tmp_path / "in"
    series_folder(src, 40)
    (src / "junk.bin").write_bytes(b"\x00" * 50)
    outcomes = []
    for workers in (0, 2):
        with Archive(tmp_path / f"a{workers}") as a:
            report = Importer(a, workers=workers, batch_size=7).import_paths([src])
            outcomes.append(sorted((r.source, r.status.value) for r in report.results))
            assert a.usage()["instances"] == 40
    assert outcomes[0] == outcomes[1]


def test_single_files_and_zip(archive, tmp_path):
    one = write(instance(), tmp_path / "one.dcm")
    zpath = tmp_path / "bundle.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for i in range(3):
            zf.writestr(f"study/IMG{i}", to_bytes(instance(instance_number=i)))
        zf.writestr("study/", "")
        zf.writestr("notes.txt", "hello")
    report = Importer(archive).import_paths([one, zpath])
    assert _statuses(report)["imported"] == 4 and _statuses(report)["rejected"] == 1
    sources = {r.source for r in report.results}
    assert f"{zpath}!study/IMG0" in sources and str(one) in sources
    rejected = next(r for r in report.results if r.status is AddStatus.REJECTED)
    assert rejected.source.endswith("!notes.txt") and "not a DICOM" in rejected.reason
    assert not list((archive.root / "tmp").iterdir())


def test_missing_path_is_refused_not_fatal(archive, tmp_path):
    report = Importer(archive).import_paths([tmp_path / "nope"])
    assert report.plan.refused == ((str(tmp_path / "nope"), "no such file or folder"),)
    assert report.total == 0


def test_cancel_keeps_what_is_done(archive, tmp_path):
    src = tmp_path / "in"
    series_folder(src, 60)
    cancel = threading.Event()
    seen = []

    def on_progress(p):
        seen.append(p)
        if p.done == 5:
            cancel.set()

    report = Importer(archive, workers=0, batch_size=5).import_paths(
        [src], on_progress=on_progress, cancel=cancel
    )
    assert report.cancelled
    assert 5 <= len(report.results) < 60
    imported = {r.sop_instance_uid for r in report.results if r.status is AddStatus.IMPORTED}
    indexed = {r["SOPInstanceUID"] for r in archive.find("IMAGE", {})}
    assert imported == indexed
    rest = Importer(archive, workers=0).import_paths([src])
    assert rest.count(AddStatus.IMPORTED) == 60 - len(imported)
    assert archive.usage()["instances"] == 60


# --- DICOMDIR media ---------------------------------------------------------------------------------
def _media(tmp_path: Path, n: int = 3) -> Path:
    fs = FileSet()
    study = "1.2.826.0.1.3680043.8.498.1"
    for i in range(n):
        fs.add(instance(study=study, series="1.2.826.0.1.3680043.8.498.2", instance_number=i))
    root = tmp_path / "cd"
    fs.write(root)
    return root


def test_dicomdir_media_import_lists_missing_files(archive, tmp_path):
    root = _media(tmp_path, 3)
    plan = read_dicomdir(root / "DICOMDIR")
    assert len(plan.files) == 3 and plan.missing == ()
    os.unlink(plan.files[1])
    (root / "extra.dcm").write_bytes(to_bytes(instance()))  # not referenced: not imported
    report = Importer(archive).import_paths([root])  # the folder: read through its DICOMDIR
    assert report.count(AddStatus.IMPORTED) == 2 and report.total == 2
    (media,) = report.to_json()["media"]
    assert media["referenced"] == 3 and media["present"] == 2
    assert media["missing"] == [os.path.relpath(plan.files[1], root).replace(os.sep, "/")]
    scanned = Importer(archive, use_dicomdir=False).import_paths([root])
    assert scanned.count(AddStatus.IMPORTED) == 1  # extra.dcm; the DICOMDIR itself rejected
    assert any("DICOMDIR" in r.reason for r in scanned.results)


def test_lower_case_media_files_are_found(archive, tmp_path):
    root = _media(tmp_path, 2)
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames + dirnames:
            if name != "DICOMDIR":
                os.rename(os.path.join(dirpath, name), os.path.join(dirpath, name.lower()))
    plan = read_dicomdir(root / "DICOMDIR")
    assert len(plan.files) == 2 and plan.missing == ()


def _patch_file_id(dicomdir: Path, replacement: bytes) -> None:
    data = dicomdir.read_bytes()
    original = b"PT000000\\ST000000\\SE000000\\IM000000"
    assert data.count(original) == 1
    assert len(replacement) <= len(original)
    dicomdir.write_bytes(data.replace(original, replacement.ljust(len(original))))


@pytest.mark.parametrize(
    "file_id", [b"..\\..\\SECRET", b"PT000000\\..\\..\\..\\SECRET", b"\\etc\\passwd"]
)
def test_dicomdir_reference_escaping_the_media_is_refused(archive, tmp_path, file_id):
    root = _media(tmp_path, 1)
    write(instance(patient_name="OUTSIDE^MEDIA"), tmp_path / "SECRET")
    _patch_file_id(root / "DICOMDIR", file_id)
    with pytest.raises(MediaError, match="refused"):
        read_dicomdir(root / "DICOMDIR")
    report = Importer(archive).import_paths([root])
    assert report.total == 0 and report.results == ()
    ((path, reason),) = report.plan.refused
    assert path == str(root / "DICOMDIR") and "escapes the media root" in reason
    assert list(archive.find("PATIENT", {"PatientName": "OUTSIDE*"})) == []


def test_dicomdir_reference_through_a_symlink_out_of_the_media_is_refused(archive, tmp_path):
    root = _media(tmp_path, 1)
    outside = tmp_path / "elsewhere"
    os.rename(root / "PT000000", outside)
    os.symlink(outside, root / "PT000000")
    with pytest.raises(MediaError, match="outside the media root"):
        read_dicomdir(root / "DICOMDIR")
