"""The real corpus: everything accounted for, a second import adds nothing, the Philips CD."""

from __future__ import annotations

import json
import os
from collections import Counter

import pytest

from workstation.app.cli import main
from workstation.archive.archive import Archive
from workstation.archive.importer import Importer
from workstation.archive.results import AddStatus

pytestmark = pytest.mark.corpus

PHILIPS = "dicomdir_cd/philips_ingenuity_ct_cd"


def _all_files(root):
    return sorted(os.path.join(d, f) for d, _, files in os.walk(root) for f in files)


def _store_files(root):
    return {
        os.path.relpath(os.path.join(d, f), root).replace(os.sep, "/")
        for d, _, files in os.walk(root / "store")
        for f in files
    }


def test_whole_corpus_every_file_accounted_for_and_reimport_adds_nothing(corpus_dir, tmp_path):
    files = _all_files(corpus_dir)
    with Archive(tmp_path / "archive") as archive:
        report = Importer(archive).import_paths([corpus_dir])
        assert report.total == len(files)
        assert sorted(r.source for r in report.results) == files  # each file reported once
        counts = Counter(r.status for r in report.results)
        assert sum(counts.values()) == len(files)
        assert counts[AddStatus.IMPORTED] > 400
        for r in report.results:
            if r.status is AddStatus.REJECTED:
                assert r.reason, r  # rejected with a reason
            else:
                assert r.sop_instance_uid and r.stored_path
        # non-DICOM files of the corpus are among the rejected, with the reader's reason
        by_source = {r.source: r for r in report.results}
        manifest = by_source[str(corpus_dir / "MANIFEST.tsv")]
        assert manifest.status is AddStatus.REJECTED and "not a DICOM file" in manifest.reason
        dicomdir = by_source[str(corpus_dir / PHILIPS / "DICOMDIR")]
        assert "DICOMDIR" in dicomdir.reason

        usage = archive.usage()
        assert usage["instances"] == counts[AddStatus.IMPORTED]
        assert usage["conflicts"] == counts[AddStatus.CONFLICT]
        indexed = {r["rel_path"] for r in archive.find("IMAGE", {})}
        assert indexed == _store_files(archive.root)  # index and store agree

        again = Importer(archive).import_paths([corpus_dir])
        assert again.count(AddStatus.IMPORTED) == 0
        assert again.count(AddStatus.CONFLICT) == 0  # kept-aside copies are known now
        assert again.count(AddStatus.REJECTED) == counts[AddStatus.REJECTED]
        assert again.count(AddStatus.DUPLICATE) == len(files) - counts[AddStatus.REJECTED]
        assert archive.usage()["instances"] == usage["instances"]
        assert archive.usage()["conflicts"] == usage["conflicts"]
        assert _store_files(archive.root) == indexed


def test_philips_cd_imports_through_its_dicomdir_listing_missing_images(corpus_dir, tmp_path):
    with Archive(tmp_path / "archive") as archive:
        report = Importer(archive).import_paths([corpus_dir / PHILIPS])
        (media,) = report.plan.media
        assert media.dicomdir == str(corpus_dir / PHILIPS / "DICOMDIR")
        assert len(media.files) == 90  # what is on this copy of the CD
        assert len(media.files) + len(media.missing) == 433  # what the DICOMDIR references
        assert "DICOM/S21610/S3010/I210" in media.missing
        assert report.total == 90
        assert report.count(AddStatus.IMPORTED) == 90  # DIRFILEs are not referenced: skipped
        studies = list(archive.find("STUDY", {}))
        assert len(studies) == 2
        assert {s["PatientID"] for s in studies} == {"PLASTIC"}
        series = list(archive.find("SERIES", {}))
        assert len(series) == 5
        assert sum(s["NumberOfSeriesRelatedInstances"] for s in series) == 90


def test_cli_import_json_and_ls(corpus_dir, tmp_path, capsys):
    home = tmp_path / "home"
    code = main(["--home", str(home), "import", str(corpus_dir / PHILIPS), "--json", "-q"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (out["imported"], out["duplicate"], out["rejected"], out["total"]) == (90, 0, 0, 90)
    assert out["media"][0]["present"] == 90 and len(out["media"][0]["missing"]) == 343
    assert main(["--home", str(home), "ls", "studies", "--json", "--name", "head"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["count"] == 2
    assert sum(r["NumberOfStudyRelatedInstances"] for r in listing["rows"]) == 90
    assert listing["usage"]["instances"] == 90


def test_direct_value_decoding_matches_pydicom_on_every_corpus_header(corpus_dir):
    """The index reads raw values directly where unambiguous; pydicom must agree everywhere."""
    from workstation.archive import attributes
    from workstation.core.dicom_file import read_dataset
    from workstation.core.errors import DicomError

    keywords = [
        "PatientName", "PatientID", "StudyDescription", "ReferringPhysicianName",
        "AccessionNumber", "Modality", "SeriesDescription", "BodyPartExamined", "StudyID",
        "PatientSex", "StudyDate", "StudyTime", "SOPClassUID", "SeriesInstanceUID",
    ]  # fmt: skip
    checked = 0
    for path in _all_files(corpus_dir):
        try:
            fast_ds, _ = read_dataset(path, header_only=True)
            slow_ds, _ = read_dataset(path, header_only=True)
        except DicomError:
            continue
        values = attributes._Values(fast_ds)
        for keyword in keywords:
            assert values.text(keyword) == attributes._text(slow_ds, keyword), (path, keyword)
        for keyword in ("SeriesNumber", "InstanceNumber", "NumberOfFrames"):
            assert values.integer(keyword) == attributes._int(slow_ds, keyword), (path, keyword)
        checked += 1
    assert checked > 500
