"""Measurement maths: exact ROI statistics on a synthetic image whose every pixel value is known,
lengths and angles with anisotropic and missing calibration, the probe, and a calibrated real CT
distance checked against the patient coordinates of its two ends."""

from __future__ import annotations

import math

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from workstation.core.annotations import ImageRef, ellipse_from_box, new_annotation
from workstation.core.calibration import Calibration, calibration_for
from workstation.core.geometry import plane_from_dataset
from workstation.core.measurements import measure, modality_unit, roi_mask

IMG = ImageRef("1.2.3")
ROWS, COLS = 40, 50
# value = 100 * row + col: every pixel says where it is
VALUES = (100 * np.arange(ROWS)[:, None] + np.arange(COLS)[None, :]).astype(np.float64)
CAL = Calibration(0.5, 0.8, "PixelSpacing", "Pixel Spacing 0.5 x 0.8 mm")
NONE = Calibration(None, None, "none", "no Pixel Spacing; measurements are in pixels")


def _stats(pixels: list[tuple[int, int]]) -> tuple[float, float, float, float, int]:
    vals = np.array([100 * r + c for c, r in pixels], dtype=np.float64)
    return (
        vals.mean(),
        math.sqrt(((vals - vals.mean()) ** 2).mean()),
        vals.min(),
        vals.max(),
        len(vals),
    )


def _check(m, pixels) -> None:
    mean, sd, lo, hi, n = _stats(pixels)
    assert m.values["n"] == n
    assert m.values["mean"] == pytest.approx(mean, abs=1e-9)
    assert m.values["sd"] == pytest.approx(sd, abs=1e-9)
    assert (m.values["min"], m.values["max"]) == (lo, hi)


def test_rectangle_statistics_exact() -> None:
    # corners between pixel centres: columns 2..4, rows 2..3 are inside
    a = new_annotation("rectangle", [(4.5, 1.5), (1.5, 3.5)], IMG)
    m = measure(a, CAL, values=VALUES, value_unit="HU")
    _check(m, [(c, r) for c in (2, 3, 4) for r in (2, 3)])
    assert m.values["area_mm2"] == pytest.approx(3 * 2 * 0.5 * 0.8)
    assert m.unit == "HU" and "HU" in m.lines[0]
    assert m.calibration_source == "PixelSpacing"


def test_circle_statistics_exact() -> None:
    # lattice points with dx^2 + dy^2 <= 9: Gauss's circle problem gives 29
    a = new_annotation("circle", [(20, 15), (23, 15)], IMG)
    m = measure(a, CAL, values=VALUES)
    pixels = [
        (20 + dx, 15 + dy) for dx in range(-3, 4) for dy in range(-3, 4) if dx * dx + dy * dy <= 9
    ]
    assert len(pixels) == 29
    _check(m, pixels)
    assert m.values["area_mm2"] == pytest.approx(math.pi * 9 * 0.4)


def test_polygon_statistics_exact() -> None:
    # a diamond |dx| + |dy| <= 4.5 around (25, 20): 1 + 4 * (1 + 2 + 3 + 4) = 41 pixels
    pts = [(25, 15.5), (29.5, 20), (25, 24.5), (20.5, 20)]
    a = new_annotation("polygon", pts, IMG)
    m = measure(a, NONE, values=VALUES)
    pixels = [
        (25 + dx, 20 + dy) for dx in range(-5, 6) for dy in range(-5, 6) if abs(dx) + abs(dy) <= 4
    ]
    assert len(pixels) == 41
    _check(m, pixels)
    assert m.values["area_px"] == pytest.approx(2 * 4.5 * 4.5)
    assert "px²" in m.lines[-1] and m.note == "uncalibrated: pixels"


def test_rotated_ellipse_statistics_exact() -> None:
    # an ellipse with semi-axes 6 and 2 along the diagonals, centred on (25, 20)
    u = (math.sqrt(0.5), math.sqrt(0.5))
    v = (-u[1], u[0])
    c = (25.0, 20.0)
    pts = [
        (c[0] - 6 * u[0], c[1] - 6 * u[1]),
        (c[0] + 6 * u[0], c[1] + 6 * u[1]),
        (c[0] - 2 * v[0], c[1] - 2 * v[1]),
        (c[0] + 2 * v[0], c[1] + 2 * v[1]),
    ]
    a = new_annotation("ellipse", pts, IMG)
    m = measure(a, CAL, values=VALUES)
    pixels = []
    for r in range(ROWS):
        for col in range(COLS):
            dx, dy = col - 25, r - 20
            # in the rotated frame, (dx + dy)/sqrt2 along u and (dy - dx)/sqrt2 along v
            pu, pv = (dx + dy) / math.sqrt(2), (dy - dx) / math.sqrt(2)
            if pu * pu / 36 + pv * pv / 4 <= 1 + 1e-9:
                pixels.append((col, r))
    _check(m, pixels)
    # an axis-aligned box ellipse: 4 points from the box, area pi a b
    box = new_annotation("ellipse", ellipse_from_box((10, 10), (20, 14)), IMG)
    assert measure(box, NONE).values["area_px"] == pytest.approx(math.pi * 5 * 2)


def test_mask_ignores_pixels_outside_the_image() -> None:
    a = new_annotation("rectangle", [(-10, -10), (1.2, 0.2)], IMG)
    mask = roi_mask(a, (ROWS, COLS))
    assert mask.sum() == 2 and mask[0, 0] and mask[0, 1]
    with pytest.raises(ValueError, match="not a region"):
        roi_mask(new_annotation("length", [(0, 0), (1, 1)], IMG), (4, 4))


def test_length_anisotropic_and_uncalibrated() -> None:
    a = new_annotation("length", [(0, 0), (5, 6)], IMG)
    # 5 columns of 0.8 mm and 6 rows of 0.5 mm: a 4-3-5 triangle
    m = measure(a, CAL)
    assert m.values["length_mm"] == pytest.approx(5.0)
    assert m.lines == ("5.0 mm",) and m.unit == "mm"
    u = measure(a, NONE)
    assert u.values["length_px"] == pytest.approx(math.hypot(5, 6))
    assert u.unit == "px" and u.calibration_source == "none" and "uncalibrated" in u.note


def test_angles() -> None:
    right = new_annotation("angle", [(10, 0), (0, 0), (0, 10)], IMG)
    assert measure(right, NONE).values["angle_deg"] == pytest.approx(90)
    # with 0.8 mm columns and 0.5 mm rows the same pixels make a different angle
    diag = new_annotation("angle", [(10, 0), (0, 0), (10, 10)], IMG)
    assert measure(diag, NONE).values["angle_deg"] == pytest.approx(45)
    assert measure(diag, CAL).values["angle_deg"] == pytest.approx(math.degrees(math.atan2(5, 8)))

    # Cobb: lines at +20 and -50 degrees meet at 70 (acute, whatever the drawing direction)
    def seg(deg, c, r):
        t = math.radians(deg)
        return [(c, r), (c + 10 * math.cos(t), r + 10 * math.sin(t))]

    cobb = new_annotation("cobb", seg(20, 0, 0) + list(reversed(seg(-50, 0, 20))), IMG)
    assert measure(cobb, NONE).values["angle_deg"] == pytest.approx(70)
    wide = new_annotation("cobb", seg(0, 0, 0) + seg(120, 0, 20), IMG)
    assert measure(wide, NONE).values["angle_deg"] == pytest.approx(60)


def test_probe_value_and_patient_point() -> None:
    ds = Dataset()
    ds.Rows, ds.Columns = ROWS, COLS
    ds.ImagePositionPatient = [-100.0, -50.0, 30.0]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [0.5, 0.8]
    plane = plane_from_dataset(ds)
    a = new_annotation("point", [(7.2, 3.9)], IMG)
    m = measure(a, CAL, values=VALUES, value_unit="HU", plane=plane)
    assert m.values["value"] == 407  # pixel (col 7, row 4)
    assert (m.values["x_mm"], m.values["y_mm"], m.values["z_mm"]) == pytest.approx(
        (-100 + 7 * 0.8, -50 + 4 * 0.5, 30)
    )
    assert m.lines[0] == "407.0 HU"
    assert measure(new_annotation("point", [(99, 99)], IMG), CAL, values=VALUES).lines[0] == (
        "outside the image"
    )
    assert measure(new_annotation("arrow", [(0, 0), (3, 3)], IMG), CAL) is None
    assert measure(new_annotation("text", [(0, 0)], IMG, text="x"), CAL) is None


def test_modality_unit() -> None:
    ds = Dataset()
    ds.Modality = "CT"
    assert modality_unit(ds) == "HU"
    ds.RescaleType = "US"
    assert modality_unit(ds) == ""
    ds.Modality, ds.RescaleType = "MR", "OD"
    assert modality_unit(ds) == "OD"
    ds2 = Dataset()
    ds2.Modality, ds2.Units = "PT", "BQML"
    assert modality_unit(ds2) == "BQML"


def test_calibrated_ct_length_of_a_known_distance(corpus_dir) -> None:
    """On a real CT, a line between two pixel centres measures what the patient coordinates of
    its ends (Image Position / Orientation / Pixel Spacing) say, to 0.1 mm, and a line of 200
    columns measures 200 x the column spacing."""
    path = corpus_dir / "dicomdir_cd/philips_ingenuity_ct_cd/DICOM/S21570/S2010/I100"
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    cal = calibration_for(ds)
    assert cal.source == "PixelSpacing"
    plane = plane_from_dataset(ds)
    row_mm, col_mm = (float(v) for v in ds.PixelSpacing)
    a = new_annotation("length", [(100, 300), (300, 300)], IMG)
    assert measure(a, cal).values["length_mm"] == pytest.approx(200 * col_mm, abs=0.1)
    b = new_annotation("length", [(40.5, 60.25), (410.75, 455.5)], IMG)
    ends = plane.pixel_to_patient(np.array([40.5, 410.75]), np.array([60.25, 455.5]))
    known = float(np.linalg.norm(ends[1] - ends[0]))
    got = measure(b, cal).values["length_mm"]
    assert abs(got - known) < 0.1, (got, known)
    assert got == pytest.approx(math.hypot(370.25 * col_mm, 395.25 * row_mm), abs=1e-9)
