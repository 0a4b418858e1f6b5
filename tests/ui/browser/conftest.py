"""Fixtures of the study browser tests: real archives (SQLite index, file store) built in
``tmp_path`` from synthetic instances and corpus files; no mocks."""

from __future__ import annotations

import datetime as _dt
import sys
from pathlib import Path

import numpy as np
import pytest
from pydicom.uid import generate_uid
from PySide6.QtCore import Qt

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "archive"))

from archive_factory import instance, to_bytes  # noqa: E402

from workstation.archive.archive import Archive  # noqa: E402
from workstation.archive.importer import Importer  # noqa: E402
from workstation.archive.results import AddStatus  # noqa: E402

TODAY = _dt.date.today()
TWO_DAYS_AGO = (TODAY - _dt.timedelta(days=2)).strftime("%Y%m%d")
TODAY_DA = TODAY.strftime("%Y%m%d")
GE_CT = "ct_series/ge_hispeed_dual_tilt_variable_spacing"
PHILIPS_CD = "dicomdir_cd/philips_ingenuity_ct_cd"

# name, id, date, time, modality, accession, description, images per series, extra series
STUDIES = [
    ("Smith^John", "P1", TWO_DAYS_AGO, "081500", "CT", "A100", "CHEST", 3, "SR"),
    ("SMITH^JANE^^^", "P2", "20230220", "120000", "MR", "A101", "HEAD", 2, ""),
    ("Smithers^Waylon", "P3", "20231231", "235959", "CT", "B200", "ABDOMEN", 4, ""),
    ("Jones^Indiana", "P4", TODAY_DA, "093000", "US", "C300", "Renal", 1, ""),
    ("Nguyen^Anh", "P5", "20200101", "", "DX", "", "", 2, ""),
]


def _gradient(size: int, seed: int) -> bytes:
    y, x = np.mgrid[0:size, 0:size]
    return ((x * 37 + y * 11 + seed * 500) % 4096).astype(np.uint16).tobytes()


def add_synthetic_studies(archive: Archive) -> dict[str, str]:
    """The STUDIES above; returns PatientID -> StudyInstanceUID."""
    uids = {}
    for name, pid, date, time, mod, acc, desc, n, extra in STUDIES:
        study = uids[pid] = generate_uid()
        series = generate_uid()
        for i in range(n):
            ds = instance(study=study, series=series, patient_name=name, patient_id=pid,
                          study_date=date, study_time=time, modality=mod, accession=acc,
                          description=desc, instance_number=i + 1, size=64,
                          PixelData=_gradient(64, i))  # fmt: skip
            assert archive.add_bytes(to_bytes(ds), "test").ok
        if extra:  # a second series numbered 2 (the first is 1)
            ds = instance(study=study, patient_name=name, patient_id=pid, study_date=date,
                          study_time=time, modality=extra, accession=acc, description=desc,
                          SeriesNumber=2, SeriesDescription="REPORT")  # fmt: skip
            assert archive.add_bytes(to_bytes(ds), "test").ok
    return uids


@pytest.fixture(scope="module")
def synthetic_archive(tmp_path_factory):
    """The five synthetic STUDIES (no corpus needed)."""
    archive = Archive(tmp_path_factory.mktemp("browser") / "archive")
    archive.uids = add_synthetic_studies(archive)
    yield archive
    archive.close()


@pytest.fixture(scope="module")
def ct_archive(tmp_path_factory, corpus_dir):
    """The synthetic studies and the GE CT series of the corpus (28 images)."""
    archive = Archive(tmp_path_factory.mktemp("browser-ct") / "archive")
    archive.uids = add_synthetic_studies(archive)
    report = Importer(archive, workers=0).import_paths([corpus_dir / GE_CT])
    assert report.count(AddStatus.IMPORTED) == 28
    yield archive
    archive.close()


@pytest.fixture
def empty_archive(tmp_path):
    archive = Archive(tmp_path / "archive")
    yield archive
    archive.close()


@pytest.fixture
def widgets(qtbot):
    """Keeps the browsers of a test alive (qtbot holds them weakly) and, at teardown, waits
    for their workers. List it after the archive fixtures, so it is torn down before them."""
    kept = []
    yield kept
    for widget in kept:
        widget.shutdown()
        widget.close()


def double_click(qtbot, view, index) -> None:
    """A user's double-click on an item: press and release, then the double-click (an item
    view activates only the item the press was on)."""
    view.scrollTo(index)
    pos = view.visualRect(index).center()
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=pos)
