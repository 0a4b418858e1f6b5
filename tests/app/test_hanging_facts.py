"""Facts for the hanging protocols from a real archive (corpus and synthetic files), and the
protocols matched on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from core.synthetic import image_dataset, save, stack_files
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from workstation.app.hanging_facts import (
    facts_from_archive,
    facts_from_records,
    local_studies_of_patient,
)
from workstation.archive.archive import Archive
from workstation.archive.errors import NotFoundError
from workstation.core.display_sets import read_header_records
from workstation.hanging import best_protocol, load_protocols

MG_CLASS = "1.2.840.10008.5.1.4.1.1.1.2"


def mammogram(folder: Path, study: str, date: str, lat: str, view: str, rows: str) -> str:
    meaning = {"CC": "cranio-caudal", "MLO": "medio-lateral oblique"}[view]
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = (
        "399162004" if view == "CC" else "399368009", "SCT", meaning)  # fmt: skip
    ds = image_dataset(np.zeros((8, 6), np.uint16), modality="MG", PatientID="MG1",
                       PatientName="TEST^MAMMO", IssuerOfPatientID="HOSP", StudyInstanceUID=study,
                       SeriesInstanceUID=generate_uid(), StudyDate=date, StudyTime="090000",
                       StudyDescription="SCREENING MAMMOGRAPHY", ImageLaterality=lat,
                       PatientOrientation=[rows, "L" if lat == "R" else "R"],
                       SeriesNumber={"CC": 1, "MLO": 2}[view] + (2 if lat == "L" else 0),
                       ViewCodeSequence=Sequence([code]), BodyPartExamined="BREAST")  # fmt: skip
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = MG_CLASS
    folder.mkdir(parents=True, exist_ok=True)
    return save(ds, folder / f"{study[-6:]}_{lat}{view}.dcm")


@pytest.fixture
def archive(tmp_path):
    with Archive(tmp_path / "archive") as a:
        yield a


def add(archive: Archive, paths) -> None:
    for p in paths:
        assert archive.add_file(p).ok, p


def test_mammography_facts_from_the_archive_and_the_protocol(tmp_path, archive):
    now, before = generate_uid(), generate_uid()
    for study, date in ((now, "20250301"), (before, "20240305")):
        add(archive, [mammogram(tmp_path / "mg", study, date, lat, view, "A")
                      for lat in "RL" for view in ("CC", "MLO")])  # fmt: skip
    current = facts_from_archive(archive, now)
    assert (current.patient_id, current.issuer_of_patient_id) == ("MG1", "HOSP")
    assert current.study_date.isoformat() == "2025-03-01" and current.modalities == ("MG",)
    assert current.body_part == "BREAST"
    views = sorted(
        (d.image_laterality, d.view, d.patient_orientation) for d in current.display_sets
    )
    assert views == [("L", "CC", ("A", "R")), ("L", "MLO", ("A", "R")),
                     ("R", "CC", ("A", "L")), ("R", "MLO", ("A", "L"))]  # fmt: skip
    priors = local_studies_of_patient(archive, "MG1")
    assert {p.study_uid for p in priors} == {now, before}
    assert all(p.issuer_of_patient_id == "HOSP" and p.display_sets == () for p in priors)
    match = best_protocol(current, [facts_from_archive(archive, before)], load_protocols())
    assert match.name == "mammo-screening"
    stage = match.stages[1]
    got = [(v.study, v.display_set.image_laterality, v.display_set.view) for v in stage.viewports]
    assert got == [("current", "R", "CC"), ("current", "L", "CC"), ("prior", "R", "CC"),
                   ("prior", "L", "CC")]  # fmt: skip
    # rows written towards A for both breasts: only the right ones are mirrored
    assert [v.options.flip_horizontal for v in match.stages[0].viewports] == [True, False] * 2


def test_ct_stack_and_localizer_from_synthetic_files(tmp_path, archive):
    study = generate_uid()
    axial = stack_files(tmp_path / "ax", "axial", n=12, study_uid=study, series_number=2)
    coronal = stack_files(tmp_path / "cor", "coronal", n=5, study_uid=study, series_number=3)
    add(archive, [*axial, *coronal])
    facts = facts_from_archive(archive, study)
    got = sorted((d.orientation, d.number_of_images, d.kind) for d in facts.display_sets)
    assert got == [("axial", 12, "stack"), ("coronal", 5, "stack")]
    assert all(not d.contrast and not d.localizer for d in facts.display_sets)
    match = best_protocol(facts, [], load_protocols())
    assert match.name == "ct"
    assert match.stages[0].viewports[0].display_set.orientation == "axial"


def test_corpus_ct_and_us(corpus_dir, archive):
    ct = sorted((corpus_dir / "ct_series").glob("*/*.dcm"))
    us = corpus_dir / "us_multiframe" / "pydicom" / "examples_jpeg2k.dcm"
    add(archive, ct)
    ct_uid = read_header_records(ct[:1])[0][0].ds.StudyInstanceUID
    facts = facts_from_archive(archive, ct_uid)
    assert facts.modalities == ("CT",)
    assert sum(d.number_of_images for d in facts.display_sets) == len(ct) == 28
    assert best_protocol(facts, [], load_protocols()).name == "ct"
    records, problems = read_header_records([us])
    assert problems == []
    (us_facts,) = facts_from_records(records)
    assert us_facts.modalities == ("US",) and us_facts.source == "files"
    assert best_protocol(us_facts, [], load_protocols()).name == "us-cine"


def test_unknown_study_is_a_clear_error(archive):
    with pytest.raises(NotFoundError, match="no study with UID 1.2.3 in the archive"):
        facts_from_archive(archive, "1.2.3")
