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
    assert report.instances_installed == TOTAL == 358
    assert set(report.studies_installed) == {"ct-current", "ct-prior", "dx", "mr"}
    assert calls[0] == (0, TOTAL) and calls[-1] == (TOTAL, TOTAL)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    patients = list(archive.find("PATIENT", {"NumberOfPatientRelatedStudies": ""}))
    assert sorted((p["PatientName"], p["NumberOfPatientRelatedStudies"]) for p in patients) == [
        ("DEMO^BRAIN MR", 1), ("DEMO^CHEST CT", 2), ("DEMO^CHEST XRAY", 1),
    ]  # fmt: skip
    series = list(archive.find("SERIES", {"SeriesDescription": "", "Modality": ""}))
    got = Counter((s["Modality"], s["SeriesDescription"], s["NumberOfSeriesRelatedInstances"])
                  for s in series)  # fmt: skip
    assert got == Counter({
        ("CT", "CHEST 2.5 AX", 120): 2, ("DX", "CHEST PA", 1): 1, ("DX", "CHEST LAT", 1): 1,
        ("MR", "T1 SAG", 20): 1, ("MR", "T2 AX", 24): 1, ("MR", "FLAIR AX", 24): 1,
        ("MR", "DWI AX", 24): 1, ("MR", "ADC AX", 24): 1,
    })  # fmt: skip
    ct_studies = list(archive.find("STUDY", {"PatientID": "DEMO-CT-0001", "StudyDate": ""}))
    assert sorted(s["StudyDate"] for s in ct_studies) == ["20240312", "20250314"]


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
    assert len(sets) == 2 + 2 + 5
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
    for description in ("CHEST PA", "CHEST LAT"):
        ((d, ds),) = by_label[description]
        assert d.kind == "single" and ds.ViewPosition in ("PA", "LL")


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
    for r in archive.find("IMAGE", {"SeriesDescription": ""}):
        seen.setdefault(r["SeriesDescription"], str(archive.path_of(r["rel_path"])))
    assert len(seen) == 8
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
    assert sorted(report["studies_skipped"]) == ["ct-current", "ct-prior", "dx", "mr"]
