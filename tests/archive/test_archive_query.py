"""C-FIND matching: wildcards, person-name case rules, date/time ranges, UID lists, levels."""

from __future__ import annotations

import pytest
from archive_factory import instance, to_bytes
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import generate_uid
from pydicom.valuerep import PersonName

from workstation.archive.archive import Archive
from workstation.archive.errors import QueryError
from workstation.archive.query import build

STUDIES = [
    # name, id, date, time, modality, accession, description
    ("Smith^John", "P1", "20230105", "081500", "CT", "A100", "CHEST"),
    ("SMITH^JANE^^^", "P2", "20230220", "120000.5", "MR", "A101", "HEAD [WITH] CONTRAST"),
    ("Smithers^Waylon", "P3", "20231231", "235959", "CT", "B200", "ABDOMEN"),
    ("Jones^Indiana", "P4", "20220615", "09:30:00", "US", "C300", "chest"),
    ("Nguyen^Anh", "P5", "", "", "DX", "", ""),
]


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("q")
    a = Archive(root)
    uids = {}
    for name, pid, date, time, mod, acc, desc in STUDIES:
        study, series = generate_uid(), generate_uid()
        uids[pid] = study
        for i in range(2):
            ds = instance(study=study, series=series, patient_name=name, patient_id=pid, study_date=date,
                          study_time=time, modality=mod, accession=acc, description=desc,
                          instance_number=i + 1)  # fmt: skip
            assert a.add_bytes(to_bytes(ds), "t").ok
    # a second series of another modality in P1's study
    a.add_bytes(to_bytes(instance(study=uids["P1"], patient_name="Smith^John", patient_id="P1",
                                  study_date="20230105", modality="SR")), "t")  # fmt: skip
    a.uids = uids
    yield a
    a.close()


def ids(archive, level="STUDY", **keys):
    return sorted(r["PatientID"] for r in archive.find(level, keys))


def test_universal_matching_returns_everything(archive):
    assert ids(archive) == ["P1", "P2", "P3", "P4", "P5"]
    assert ids(archive, PatientName="") == ids(archive, PatientName="*")


def test_person_names_match_case_insensitively_with_wildcards(archive):
    assert ids(archive, PatientName="smith*") == ["P1", "P2", "P3"]
    assert ids(archive, PatientName="SMITH^*") == ["P1", "P2"]
    assert ids(archive, PatientName="smith^j*n*") == ["P1", "P2"]
    assert ids(archive, PatientName="smith^j?n?") == ["P2"]
    assert ids(archive, PatientName="*^ANH") == ["P5"]
    # exact match ignores case and trailing empty components, but is not a prefix match
    assert ids(archive, PatientName="smith^jane") == ["P2"]
    assert ids(archive, PatientName="smith") == []
    assert ids(archive, PatientName=PersonName("Jones^Indiana")) == ["P4"]


def test_other_strings_match_case_sensitively(archive):
    assert ids(archive, StudyDescription="CHEST") == ["P1"]
    assert ids(archive, StudyDescription="chest") == ["P4"]
    assert ids(archive, StudyDescription="*[WITH]*") == ["P2"]  # GLOB brackets are literal
    assert ids(archive, AccessionNumber="A1??") == ["P1", "P2"]
    assert ids(archive, PatientID="P?") == ["P1", "P2", "P3", "P4", "P5"]


def test_date_ranges(archive):
    assert ids(archive, StudyDate="20230105") == ["P1"]
    assert ids(archive, StudyDate="20230101-20230228") == ["P1", "P2"]
    assert ids(archive, StudyDate="20230201-") == ["P2", "P3"]
    assert ids(archive, StudyDate="-20221231") == ["P4"]  # the empty date never matches a range
    assert ids(archive, StudyDate="2023.01.01-2023.12.31") == ["P1", "P2", "P3"]
    with pytest.raises(QueryError, match="not YYYYMMDD"):
        list(archive.find("STUDY", {"StudyDate": "2023-"}))
    with pytest.raises(QueryError):
        list(archive.find("STUDY", {"StudyDate": "yesterday"}))


def test_time_ranges_include_the_whole_unit_of_the_bound(archive):
    assert ids(archive, StudyTime="0800-0930") == ["P1", "P4"]  # 09:30:00 stored normalized
    assert ids(archive, StudyTime="12-") == ["P2", "P3"]
    assert ids(archive, StudyTime="-1200") == ["P1", "P2", "P4"]  # 120000.5 is within 12:00
    assert ids(archive, StudyTime="2359") == ["P3"]


def test_uid_lists(archive):
    u = archive.uids
    assert ids(archive, StudyInstanceUID=f"{u['P1']}\\{u['P3']}") == ["P1", "P3"]
    assert ids(archive, StudyInstanceUID=MultiValue(str, [u["P2"], u["P4"]])) == ["P2", "P4"]
    assert ids(archive, StudyInstanceUID=u["P5"]) == ["P5"]


def test_modalities_in_study_matches_any_listed(archive):
    assert ids(archive, ModalitiesInStudy="SR") == ["P1"]
    assert ids(archive, ModalitiesInStudy="MR\\US") == ["P2", "P4"]
    row = next(archive.find("STUDY", {"PatientID": "P1"}))
    assert row["ModalitiesInStudy"] == "CT\\SR"
    assert row["NumberOfStudyRelatedSeries"] == 2
    assert row["NumberOfStudyRelatedInstances"] == 3


def test_levels_and_relational_keys(archive):
    pats = list(archive.find("PATIENT", {"PatientName": "smith*"}))
    assert sorted(p["PatientID"] for p in pats) == ["P1", "P2", "P3"]
    p1 = next(p for p in pats if p["PatientID"] == "P1")
    assert p1["NumberOfPatientRelatedStudies"] == 1
    assert p1["NumberOfPatientRelatedInstances"] == 3
    series = list(archive.find("SERIES", {"StudyInstanceUID": archive.uids["P1"]}))
    assert sorted(s["Modality"] for s in series) == ["CT", "SR"]
    # a SERIES query may also test study and patient attributes
    assert ids(archive, "SERIES", Modality="CT", PatientName="SMITH*") == ["P1", "P3"]
    images = list(archive.find("INSTANCE", {"PatientID": "P4"}))
    assert [i["InstanceNumber"] for i in images] == [1, 2]
    assert all(i["rel_path"].startswith("store/") for i in images)
    assert len(list(archive.find("IMAGE", {}, limit=3))) == 3


def test_key_below_the_level_is_an_error_unknown_keys_are_ignored(archive):
    with pytest.raises(QueryError, match="use ModalitiesInStudy"):
        list(archive.find("STUDY", {"Modality": "CT"}))
    assert list(archive.find("STUDY", {"Modality": ""}))  # no value: ignored
    assert ids(archive, PatientName="Jones*", PatientComments="x") == ["P4"]
    with pytest.raises(QueryError, match="unknown query level"):
        list(archive.find("FRAME", {}))
    with pytest.raises(QueryError, match="not an integer"):
        list(archive.find("SERIES", {"SeriesNumber": "one"}))


def test_pydicom_dataset_values_are_accepted(archive):
    identifier = Dataset()
    identifier.PatientName = "smith*"
    identifier.StudyDate = "20230101-20230131"
    keys = {elem.keyword: elem.value for elem in identifier}
    assert ids(archive, **keys) == ["P1"]


def test_prefix_name_query_uses_the_name_index(archive):
    sql, params, _ = build("STUDY", {"PatientName": "SMITH*"})
    plan = archive.index.reader().execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    assert any("patient_name_norm_idx" in str(row) for row in plan), plan
    sql, params, _ = build("STUDY", {"StudyDate": "20230101-20230131"})
    plan = archive.index.reader().execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    assert any("study_date_idx" in str(row) for row in plan), plan
