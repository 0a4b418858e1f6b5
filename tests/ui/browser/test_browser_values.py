"""What a reader sees of DICOM values, the search keys the form produces, thumbnail scaling."""

from __future__ import annotations

import datetime as _dt

import numpy as np

from workstation.ui.browser.thumbnails import downscale
from workstation.ui.browser.values import StudyQuery, format_date, format_person_name


def test_person_names_read_family_comma_given():
    assert format_person_name("Smith^John") == "Smith, John"
    assert format_person_name("SMITH^JANE^^^") == "SMITH, JANE"
    assert format_person_name("Last^First^mid^pre") == "Last, pre First mid"
    assert format_person_name("Doe^John^^Dr^Jr") == "Doe, Dr John Jr"
    assert format_person_name("Anonymized") == "Anonymized"
    assert format_person_name("^Anh") == "Anh"
    assert format_person_name("=Yamada^Tarou=") == "Yamada, Tarou"
    assert format_person_name(None) == format_person_name("") == ""


def test_dates_read_iso():
    assert format_date("20230105") == "2023-01-05"
    assert format_date("2023.01.05") == "2023-01-05"
    assert format_date("") == ""
    assert format_date("2023") == "2023"


def test_query_keys():
    assert StudyQuery().to_keys() == {}
    q = StudyQuery(patient_name="smi", patient_id="P?", description="head", modality="ct",
                   accession="A1", date_from=_dt.date(2023, 1, 1))  # fmt: skip
    assert q.to_keys() == {
        "PatientName": "smi*",
        "PatientID": "P?",
        "StudyDate": "20230101-",
        "ModalitiesInStudy": "CT",
        "AccessionNumber": "A1",
        "StudyDescription": "*head*",
    }
    assert StudyQuery(patient_name="doe^j?n").to_keys() == {"PatientName": "doe^j?n"}
    day = _dt.date(2024, 2, 29)
    assert StudyQuery(date_from=day, date_to=day).to_keys() == {"StudyDate": "20240229"}
    assert StudyQuery(date_to=day).to_keys() == {"StudyDate": "-20240229"}


def test_downscale_fits_averages_and_keeps_physical_proportions():
    img = np.zeros((512, 512), np.uint8)
    img[:, 256:] = 200
    small = downscale(img, 128)
    assert small.shape == (128, 128)
    assert small[0, 0] == 0 and small[0, -1] == 200
    rgb = np.zeros((300, 600, 3), np.uint8)
    assert downscale(rgb, 100).shape == (50, 100, 3)
    # 256 rows of 2 mm, 512 columns of 1 mm: square on screen
    assert downscale(np.zeros((256, 512), np.uint8), 128, aspect=2.0).shape == (128, 128)
    assert downscale(np.zeros((16, 16), np.uint8), 128).shape == (16, 16)  # never enlarged
