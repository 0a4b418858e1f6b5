"""The demo studies: what lands in the archive, their geometry, validity and rendering."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from itertools import pairwise

import numpy as np
import pydicom
import pytest

from workstation.app.cli import main
from workstation.app.demo import DEMO_STUDIES, demo_present, install_demo
from workstation.app.demo import ct as demo_ct
from workstation.app.demo.ct_anatomy import NODULE_CENTRE
from workstation.app.demo.headers import to_part10
from workstation.archive.archive import Archive
from workstation.core.dicom_file import DicomFile
from workstation.core.display_sets import build_display_sets, read_header_records
from workstation.core.pipeline import render_frame

TOTAL = sum(s.instances for s in DEMO_STUDIES)
KEYS = ["ct-current", "ct-prior", "dx", "dx-prior", "mr", "mg-current", "mg-prior", "us"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    home = tmp_path_factory.mktemp("demo-home")
    archive = Archive(home / "archive")
    calls: list[tuple[int, int]] = []
    report = install_demo(archive, progress=lambda d, t: calls.append((d, t)))
    yield home, archive, report, calls
    archive.close()


def _files(archive: Archive, **keys: str) -> list[str]:
    return [str(archive.path_of(r["rel_path"])) for r in archive.find("IMAGE", keys)]


def test_install_counts_and_progress(installed):
    _, archive, report, calls = installed
    assert report.problems == ()
    assert report.instances_installed == TOTAL == 369
    assert set(report.studies_installed) == set(KEYS)
    assert calls[0] == (0, TOTAL) and calls[-1] == (TOTAL, TOTAL)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    patients = list(archive.find("PATIENT", {"NumberOfPatientRelatedStudies": ""}))
    assert sorted((p["PatientName"], p["NumberOfPatientRelatedStudies"]) for p in patients) == [
        ("DEMO^ABDOMEN US", 1), ("DEMO^BRAIN MR", 1), ("DEMO^CHEST CT", 2),
        ("DEMO^CHEST XRAY", 2), ("DEMO^SCREENING MAMMO", 2),
    ]  # fmt: skip
    series = list(archive.find("SERIES", {"SeriesDescription": "", "Modality": ""}))
    got = Counter((s["Modality"], s["SeriesDescription"], s["NumberOfSeriesRelatedInstances"])
                  for s in series)  # fmt: skip
    assert got == Counter({
        ("CT", "CHEST 2.5 AX", 120): 2, ("DX", "CHEST PA", 1): 2, ("DX", "CHEST LAT", 1): 2,
        ("MR", "T1 SAG", 20): 1, ("MR", "T2 AX", 24): 1, ("MR", "FLAIR AX", 24): 1,
        ("MR", "DWI AX", 24): 1, ("MR", "ADC AX", 24): 1, ("MG", "R CC", 1): 2,
        ("MG", "L CC", 1): 2, ("MG", "R MLO", 1): 2, ("MG", "L MLO", 1): 2,
        ("US", "RUQ LIVER RIGHT KIDNEY CINE", 1): 1,
    })  # fmt: skip
    for patient_id, dates in (("DEMO-CT-0001", ["20240312", "20250314"]),
                              ("DEMO-DX-0002", ["20240304", "20250310"]),
                              ("DEMO-MG-0004", ["20240320", "20250318"])):  # fmt: skip
        studies = list(archive.find("STUDY", {"PatientID": patient_id, "StudyDate": ""}))
        assert sorted(s["StudyDate"] for s in studies) == dates


def test_idempotent_and_partial_reinstall(installed):
    _, archive, _, _ = installed
    assert demo_present(archive)
    again = install_demo(archive)
    assert again.studies_installed == () and again.instances_installed == 0
    assert len(again.studies_skipped) == len(DEMO_STUDIES)
    dx = next(s for s in DEMO_STUDIES if s.study.key == "dx")
    archive.delete_study(dx.uid)
    assert not demo_present(archive)
    redo = install_demo(archive)
    assert redo.studies_installed == ("dx",) and redo.instances_installed == 2
    assert redo.problems == () and demo_present(archive)


def test_empty_archive_has_no_demo(tmp_path):
    with Archive(tmp_path / "archive") as archive:
        assert not demo_present(archive)


def test_generation_is_deterministic():
    acq = demo_ct.ACQUISITIONS[0]
    first = [to_part10(ds) for _, ds in zip(range(2), demo_ct.ct_instances(acq), strict=False)]
    second = [to_part10(ds) for _, ds in zip(range(2), demo_ct.ct_instances(acq), strict=False)]
    assert first == second


def test_display_sets_and_geometry(installed):
    _, archive, _, _ = installed
    records, problems = read_header_records(_files(archive))
    assert problems == []
    sets = build_display_sets(records)
    by_label = {}
    for d in sets:
        ds = next(r.ds for r in records if r.path == d.frames[0].path)
        by_label.setdefault(str(ds.SeriesDescription), []).append((d, ds))
    assert len(sets) == 2 + 4 + 5 + 8 + 1
    for description, expect in (("CHEST 2.5 AX", ("axial", 120, 2.5)), ("T1 SAG", ("sagittal", 20, 6.0)),
                                ("T2 AX", ("axial", 24, 6.0)), ("DWI AX", ("axial", 24, 6.0))):  # fmt: skip
        for d, _ in by_label[description]:
            orientation, n, step = expect
            assert d.kind == "stack" and d.geometry_ok, d.geometry_problem
            assert d.orientation == orientation and len(d.frames) == n
            normal = np.cross(d.frames[0].plane.row_dir, d.frames[0].plane.col_dir)
            pos = [float(np.dot(f.plane.origin, normal)) for f in d.frames]
            assert all(b > a for a, b in pairwise(pos))
            assert np.allclose(np.diff(pos), step)
            assert d.frames[0].plane.spacing_rc == d.frames[-1].plane.spacing_rc
    for description in ("CHEST PA", "CHEST LAT", "R CC", "L CC", "R MLO", "L MLO"):
        assert len(by_label[description]) == 2  # current and prior
        for d, ds in by_label[description]:
            assert d.kind == "single" and ds.ViewPosition in ("PA", "LL", "CC", "MLO")
    ((d, ds),) = by_label["RUQ LIVER RIGHT KIDNEY CINE"]
    assert d.kind == "cine" and len(d.frames) == 48


def _ct_volume(archive: Archive, date: str) -> tuple[np.ndarray, np.ndarray]:
    study = next(archive.find("STUDY", {"PatientID": "DEMO-CT-0001", "StudyDate": date}))
    slices = [
        pydicom.dcmread(p) for p in _files(archive, StudyInstanceUID=study["StudyInstanceUID"])
    ]
    slices.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
    hu = np.stack([ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
                   for ds in slices])  # fmt: skip
    origin = np.array([[float(v) for v in ds.ImagePositionPatient] for ds in slices])
    return hu, origin


def _component(mask: np.ndarray, seed: tuple[int, ...]) -> np.ndarray:
    """The 6-connected part of ``mask`` that holds ``seed`` (repeated dilation)."""
    grown = np.zeros_like(mask)
    grown[seed] = True
    while True:
        step = grown.copy()
        for axis in range(3):
            for shift in (1, -1):
                step |= np.roll(grown, shift, axis)
        step &= mask
        if (step == grown).all():
            return grown
        grown = step


def test_nodule_grew_since_the_prior(installed):
    """Measured on the pixels: the solid (> -300 HU) blob nearest to where the nodule is
    expected, in a 40 mm cube of lung (the prior's patient lay a few mm elsewhere)."""
    _, archive, _, _ = installed
    centre = np.add(NODULE_CENTRE, demo_ct.ACQUISITIONS[0].shift)
    volumes = {}
    for date in ("20250314", "20240312"):
        hu, origin = _ct_volume(archive, date)
        assert -1010 < np.median(hu[:, 5:20, 200:300]) < -990  # air above the patient
        ks = np.nonzero(np.abs(origin[:, 2] - centre[2]) <= 20)[0]
        c0 = int(round((centre[0] - origin[0, 0]) / demo_ct.SPACING))
        r0 = int(round((centre[1] - origin[0, 1]) / demo_ct.SPACING))
        h = int(20 / demo_ct.SPACING)
        roi = hu[ks][:, r0 - h : r0 + h, c0 - h : c0 + h]
        assert np.median(roi) < -700  # lung around it
        solid = roi > -300
        idx = np.argwhere(solid)
        middle = np.array(roi.shape) / 2
        seed = tuple(idx[np.argmin((((idx - middle) * [2.5, 0.7, 0.7]) ** 2).sum(axis=1))])
        blob = _component(solid, seed)
        assert not blob[[0, -1]].any() and not blob[:, [0, -1]].any()  # inside the cube
        volumes[date] = int(blob.sum()) * demo_ct.SPACING**2 * demo_ct.THICKNESS
    assert volumes["20240312"] > 150  # 8 mm: about 270 mm3
    assert volumes["20250314"] > 3 * volumes["20240312"]  # 13 mm: about 1150 mm3 and more


def test_hounsfield_units_are_plausible(installed):
    _, archive, _, _ = installed
    hu, _ = _ct_volume(archive, "20250314")
    mid = hu[80]  # mid chest
    assert hu.min() >= -1024 and hu.max() > 900  # cortical bone
    assert (np.abs(mid - -860) < 60).mean() > 0.1  # lung parenchyma
    assert ((mid > 200) & (mid < 320)).sum() > 500  # contrast-filled vessels


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) not installed")
def test_dciodvfy_reports_no_errors(installed):
    _, archive, _, _ = installed
    seen: dict[str, str] = {}
    for r in archive.find("IMAGE", {"SeriesDescription": "", "SeriesInstanceUID": ""}):
        key = f"{r['SeriesDescription']} {r['SeriesInstanceUID']}"
        seen.setdefault(key, str(archive.path_of(r["rel_path"])))
    assert len(seen) == 20  # every series, current and prior
    for description, path in seen.items():
        out = subprocess.run(["dciodvfy", path], capture_output=True, text=True, timeout=60)
        errors = [
            line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")
        ]
        assert errors == [], f"{description}: {errors}"


def test_every_file_renders(installed):
    _, archive, _, _ = installed
    paths = _files(archive)
    assert len(paths) == TOTAL
    for path in paths:
        f = DicomFile.open(path)
        image = render_frame(f, 0)
        assert image.pixels.shape[:2] == (f.header.Rows, f.header.Columns)
        assert int(image.pixels.max()) - int(image.pixels.min()) > 20, path  # not blank
        assert image.inverted == (f.header.PhotometricInterpretation == "MONOCHROME1")


def test_cli_reports_already_present(installed, capsys):
    home, _, _, _ = installed
    assert main(["--home", str(home), "demo", "--json", "-q"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["instances_installed"] == 0
    assert sorted(report["studies_skipped"]) == sorted(KEYS)


def _one(archive: Archive, patient_id: str, date: str, description: str) -> pydicom.Dataset:
    study = next(archive.find("STUDY", {"PatientID": patient_id, "StudyDate": date}))
    (path,) = _files(archive, StudyInstanceUID=study["StudyInstanceUID"],
                     SeriesDescription=description)  # fmt: skip
    return pydicom.dcmread(path)


MG_VIEWS = {  # series description: laterality, view, code, Patient Orientation
    "R CC": ("R", "CC", "399162004", ["P", "L"]),
    "L CC": ("L", "CC", "399162004", ["A", "R"]),
    "R MLO": ("R", "MLO", "399368009", ["P", "FL"]),
    "L MLO": ("L", "MLO", "399368009", ["A", "FR"]),
}


def test_mammography_headers(installed):
    """What the screening protocol selects on, and the IOD's fixed values."""
    _, archive, _, _ = installed
    for date in ("20250318", "20240320"):
        for description, (side, view, value, orientation) in MG_VIEWS.items():
            ds = _one(archive, "DEMO-MG-0004", date, description)
            assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.1.2"  # MG for presentation
            assert ds.Modality == "MG" and ds.PresentationIntentType == "FOR PRESENTATION"
            assert ds.BodyPartExamined == "BREAST" and ds.OrganExposed == "BREAST"
            assert ds.ImageLaterality == side and ds.ViewPosition == view
            (item,) = ds.ViewCodeSequence
            assert (item.CodeValue, item.CodingSchemeDesignator) == (value, "SCT")
            assert list(ds.PatientOrientation) == orientation
            assert ds.AnatomicRegionSequence[0].CodeValue == "76752008"
            assert (ds.Rows, ds.Columns, ds.BitsStored) == (1600, 1200, 12)
            assert [float(v) for v in ds.ImagerPixelSpacing] == [0.15, 0.15]
            assert ds.PositionerType == "MAMMOGRAPHIC" and float(ds.BodyPartThickness) > 40
            assert 0 < int(ds.pixel_array.max()) < 4096


def test_mammograms_lie_as_their_orientation_says(installed):
    """The breast touches the chest-wall edge the Patient Orientation names (posterior at
    the right for P, at the left for A) and not the other; MLOs show the pectoral muscle, a
    bright band at the top of the chest-wall edge."""
    _, archive, _, _ = installed
    for description, (_, view, _, orientation) in MG_VIEWS.items():
        px = _one(archive, "DEMO-MG-0004", "20250318", description).pixel_array.astype(float)
        tissue = px > 300
        wall, far = (-1, 0) if orientation[0] == "P" else (0, -1)
        assert tissue[:, wall].mean() > 0.6, description
        assert tissue[:, far].mean() == 0.0, description
        rows_on_wall = np.nonzero(tissue[:, wall])[0]
        cols = slice(-200, None) if wall == -1 else slice(0, 200)
        top = px[:150, cols][tissue[:150, cols]]
        if view == "MLO":
            assert rows_on_wall[0] == 0  # the axilla runs off the top
            assert np.median(top) > np.median(px[tissue]) + 300  # pectoral muscle
            assert np.percentile(top, 10) > np.percentile(px[tissue], 50)  # all of it
        else:
            assert rows_on_wall[0] > 50 and rows_on_wall[-1] < 1550  # a rounded CC outline


def test_new_mass_in_the_current_left_breast(installed):
    """Where the mass lies, the current LCC and LMLO are much brighter than the prior at the
    same tissue (the prior lay a few millimetres elsewhere); elsewhere they agree."""
    _, archive, _, _ = installed
    from workstation.app.demo import mammo
    from workstation.app.demo.mammo_anatomy import CELL, SPACING

    prior_pose = mammo.EXAMS[1].poses["L"]
    for description, view in (("L CC", "CC"), ("L MLO", "MLO")):
        now = _one(archive, "DEMO-MG-0004", "20250318", description).pixel_array.astype(float)
        then = _one(archive, "DEMO-MG-0004", "20240320", description).pixel_array.astype(float)
        mass = mammo.EXAMS[0].mass[view]
        dy, dx = (CELL * s for s in prior_pose.shift_cells)

        def disc(img, u, v, shift=(0, 0)):
            r, c = int(round(v / SPACING)) + shift[0], int(round(u / SPACING)) + shift[1]
            return img[r - 15 : r + 16, c - 15 : c + 16].mean()

        assert disc(now, mass.u, mass.v) - disc(then, mass.u, mass.v, (dy, dx)) > 250
        for du, dv in ((0, 60), (-25, 40), (20, 80)):  # the same tissue away from the mass
            u, v = mass.u + du, mass.v + dv
            assert abs(disc(now, u, v) - disc(then, u, v, (dy, dx))) < 120, (description, du)
    right = _one(archive, "DEMO-MG-0004", "20250318", "R CC").pixel_array.astype(float)
    prior_right = _one(archive, "DEMO-MG-0004", "20240320", "R CC").pixel_array.astype(float)
    assert abs(right[_tissue(right)].mean() - prior_right[_tissue(prior_right)].mean()) < 80


def _tissue(img: np.ndarray) -> np.ndarray:
    """Pixels inside the breast (the background is below 100)."""
    return img > 300


def test_chest_prior_shows_a_smaller_heart(installed):
    """The cardiac silhouette on the PA, measured as the run of dense pixels across the
    heart, is wider now than a year earlier (the prior patient stood 9 mm lower)."""
    _, archive, _, _ = installed
    from workstation.app.demo.shapes import box_blur

    widths = {}
    for date, y_mm in (("20250310", 270.0), ("20240304", 279.0)):
        ds = _one(archive, "DEMO-DX-0002", date, "CHEST PA")
        assert ds.PatientID == "DEMO-DX-0002" and ds.ViewPosition == "PA"
        row = box_blur(ds.pixel_array.astype(np.float32), 25)[int(y_mm / 0.175)]
        threshold = (np.percentile(row[300:1700], 10) + row[1024]) / 2
        dense = row > threshold
        lo = 1024 - int(np.argmin(dense[1024::-1]))
        hi = 1024 + int(np.argmin(dense[1024:]))
        widths[date] = (hi - lo) * 0.175
    assert 140 < widths["20250310"] < 190 and 120 < widths["20240304"] < 170
    assert widths["20250310"] - widths["20240304"] > 10


def test_ultrasound_cine(installed):
    """A looping 48-frame sector whose deep tissue moves with breathing and whose abdominal
    wall stays still."""
    _, archive, _, _ = installed
    (path,) = _files(archive, PatientID="DEMO-US-0005")
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.3.1" and ds.Modality == "US"
    assert (int(ds.NumberOfFrames), ds.Rows, ds.Columns, ds.BitsAllocated) == (48, 480, 640, 8)
    assert ds.FrameIncrementPointer == 0x00181063 and float(ds.FrameTime) == 50.0
    assert int(ds.CineRate) == 20 and ds.PhotometricInterpretation == "MONOCHROME2"
    region = ds.SequenceOfUltrasoundRegions[0]
    assert region.PhysicalUnitsXDirection == 3 and float(region.PhysicalDeltaX) == 0.032
    frames = ds.pixel_array.astype(float)
    assert (frames[:, -1, :40] == 0).all() and (frames[:, 5, :] == 0).all()  # outside the fan
    assert 70 < frames[0, 150:300, 250:390].mean() < 150  # liver: mid grey
    deep = (slice(120, 470), slice(200, 440))
    wall = (slice(25, 60), slice(260, 380))
    half = np.abs(frames[24][deep] - frames[0][deep]).mean()
    assert half > 15  # the organs moved half a breath
    assert np.abs(frames[47][deep] - frames[0][deep]).mean() < half / 2  # the loop closes
    assert np.abs(frames[24][wall] - frames[0][wall]).mean() < half / 2


@pytest.mark.parametrize(
    ("key", "protocol", "stages"),
    [("dx", "chest-pa-lat", 2), ("mg-current", "mammo-screening", 3), ("us", "us-cine", 1)],
)
def test_protocols_hang_the_new_studies(installed, capsys, key, protocol, stages):
    """``workstation hang`` picks the built-in protocol and fills every viewport of its
    stages, the comparison stages from the prior a year earlier."""
    home, _, _, _ = installed
    uid = next(s.uid for s in DEMO_STUDIES if s.study.key == key)
    assert main(["--home", str(home), "hang", uid, "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["protocols"][0]["name"] == protocol
    filled = [s for s in answer["stages"] if s["filled"] == len(s["viewports"])]
    assert len(filled) >= stages
    if stages > 1:
        assert answer["priors"][0]["date"].startswith("2024-03")
        dates = {vp["study_date"] for s in answer["stages"] for vp in s["viewports"]}
        assert any(d.startswith("2024") for d in dates) and any(d.startswith("2025") for d in dates)
