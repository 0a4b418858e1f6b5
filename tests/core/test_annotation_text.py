"""Corner annotations and the scale bar."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from workstation.core.annotation_text import corner_text, person_name, scale_bar_mm
from workstation.core.voi import Window


def header() -> Dataset:
    ds = Dataset()
    ds.PatientName = "DOE^JANE^Q"
    ds.PatientID = "P123"
    ds.PatientBirthDate = "19600215"
    ds.PatientSex = "F"
    ds.StudyDate = "20240110"
    ds.StudyTime = "101530"
    ds.StudyDescription = "CT CHEST"
    ds.SeriesNumber = 3
    ds.SeriesDescription = "Lung 1.25"
    ds.InstanceNumber = 17
    ds.SliceLocation = "-120.5"
    ds.SliceThickness = "1.25"
    return ds


def test_corners_carry_patient_study_series_image_and_window() -> None:
    ct = corner_text(
        header(),
        index=16,
        count=120,
        voi=Window(-600, 1500),
        voi_label="preset lung",
        scale=1.5,
        rotation=90,
        flip=True,
        invert=False,
        lossy=True,
    )
    assert ct.top_left[:3] == ("DOE, JANE Q", "ID P123", "1960-02-15 F 63Y")
    assert ct.top_right[:2] == ("CT CHEST", "2024-01-10 10:15:30")
    assert ct.bottom_left[:2] == ("Se 3 Lung 1.25", "Im 17/120  (#17)")
    assert "Loc -120.5 mm Thk 1.25 mm" in ct.bottom_left
    assert ct.bottom_right == (
        "LOSSY COMPRESSED",
        "rot 90° flip",
        "Zoom 150%",
        "W 1500 L -600 (preset lung)",
    )
    assert ct.lossy


def test_person_name_forms() -> None:
    assert person_name("SMITH") == "SMITH"
    assert person_name("Yamada^Tarou=山田^太郎") == "Yamada, Tarou"


@pytest.mark.parametrize(
    ("mm_per_px", "max_px", "expected_mm"),
    [(0.5, 100, 50), (0.7, 100, 50), (0.3, 100, 20), (2.0, 300, 500), (0.05, 30, 1)],
)
def test_scale_bar_is_a_round_length_within_the_limit(mm_per_px, max_px, expected_mm) -> None:
    mm, px = scale_bar_mm(mm_per_px, max_px)
    assert mm == expected_mm
    assert px == pytest.approx(mm / mm_per_px) and px <= max_px
