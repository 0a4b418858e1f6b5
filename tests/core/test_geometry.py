"""Image-plane geometry: exact maths on synthetic planes and headers, and one real tilted series."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from workstation.core.geometry import (
    ImagePlane,
    classify_orientation,
    gantry_tilt_deg,
    orientation_labels,
    plane_from_dataset,
    spacing_report,
)

AXIAL = ((1, 0, 0), (0, 1, 0))
CORONAL = ((1, 0, 0), (0, 0, -1))
SAGITTAL = ((0, 1, 0), (0, 0, -1))


def _plane(origin, iop=AXIAL, spacing=(1.0, 1.0), rows=256, cols=256) -> ImagePlane:
    return ImagePlane(np.array(origin, float), iop[0], iop[1], spacing, rows, cols)


def _tilted_col(deg: float) -> tuple[float, float, float]:
    t = np.radians(deg)
    return (0.0, float(np.cos(t)), float(-np.sin(t)))


# --- ImagePlane ---------------------------------------------------------------------------------


def test_pixel_to_patient_uses_row_and_column_spacing_the_dicom_way():
    # PixelSpacing[0] = 0.5 between rows, [1] = 0.8 between columns
    p = _plane((10, 20, 30), spacing=(0.5, 0.8), rows=100, cols=200)
    np.testing.assert_allclose(p.pixel_to_patient(10, 4), [18.0, 22.0, 30.0])
    np.testing.assert_allclose(p.pixel_to_patient(0, 0), [10, 20, 30])
    pts = p.pixel_to_patient(np.array([0, 1, 2]), np.array([0, 0, 10]))
    np.testing.assert_allclose(pts, [[10, 20, 30], [10.8, 20, 30], [11.6, 25, 30]])


def test_patient_to_pixel_returns_pixel_and_signed_distance():
    p = _plane((10, 20, 30), spacing=(0.5, 0.8), rows=100, cols=200)
    col, row, dist = p.patient_to_pixel((18, 22, 35))
    assert (col, row, dist) == pytest.approx((10, 4, 5))
    cols, rows, dists = p.patient_to_pixel(np.array([[18, 22, 25], [10, 20, 30]]))
    np.testing.assert_allclose(cols, [10, 0])
    np.testing.assert_allclose(rows, [4, 0])
    np.testing.assert_allclose(dists, [-5, 0])


def test_oblique_round_trip_is_exact():
    rng = np.random.default_rng(7)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    p = ImagePlane(np.array([-12.5, 40.0, 7.25]), q[:, 0], q[:, 1], (0.7, 1.3), 64, 80)
    c, r = rng.uniform(0, 60, 5), rng.uniform(0, 60, 5)
    d = rng.uniform(-20, 20, 5)
    xyz = p.pixel_to_patient(c, r) + d[:, None] * p.normal
    c2, r2, d2 = p.patient_to_pixel(xyz)
    np.testing.assert_allclose(np.c_[c2, r2, d2], np.c_[c, r, d], atol=1e-9)


def test_normal_position_and_corners():
    p = _plane((10, 20, 30), spacing=(0.5, 0.8), rows=100, cols=200)
    np.testing.assert_allclose(p.normal, [0, 0, 1])
    assert p.position_along_normal == pytest.approx(30.0)
    corners = p.corners()
    np.testing.assert_allclose(corners[0], [10 - 0.4, 20 - 0.25, 30])
    np.testing.assert_allclose(corners[2], [10 + 199.5 * 0.8, 20 + 99.5 * 0.5, 30])
    np.testing.assert_allclose(corners[1], [10 + 199.5 * 0.8, 20 - 0.25, 30])
    # coronal normal points posterior, sagittal normal points right (-x)
    np.testing.assert_allclose(_plane((0, 0, 0), CORONAL).normal, [0, 1, 0])
    np.testing.assert_allclose(_plane((0, 0, 0), SAGITTAL).normal, [-1, 0, 0])


def test_direction_vectors_are_normalised_and_read_only():
    p = ImagePlane(np.zeros(3), (2, 0, 0), (0, 3, 0), (1, 1), 4, 4)
    np.testing.assert_allclose(p.row_dir, [1, 0, 0])
    with pytest.raises(ValueError):
        p.origin[0] = 5
    with pytest.raises(ValueError):
        ImagePlane(np.zeros(3), (1, 0, 0), (1, 0, 0), (1, 1), 4, 4)


def test_planes_with_the_same_cosines_share_their_directions_and_still_validate():
    a = ImagePlane(np.zeros(3), (2, 0, 0), (0, 3, 0), (1, 1), 4, 4)
    b = ImagePlane(np.ones(3), [2.0, 0.0, 0.0], np.array([0.0, 3.0, 0.0]), (1, 1), 4, 4)
    assert b.row_dir is a.row_dir and b.col_dir is a.col_dir  # worked out once
    with pytest.raises(ValueError):
        b.row_dir[0] = 5  # shared, so never writable
    oblique = (0.8, 0.6, 0.0, -0.6 * 0.5, 0.8 * 0.5, 0.5 * 3**0.5)
    c = ImagePlane(np.zeros(3), oblique[:3], oblique[3:], (1, 1), 4, 4)
    np.testing.assert_allclose(c.normal, np.cross(oblique[:3], oblique[3:]), atol=1e-12)
    for _ in range(2):  # a failure is not remembered as a success
        with pytest.raises(ValueError):
            ImagePlane(np.zeros(3), (1, 0, 0), (1, 0, 0), (1, 1), 4, 4)
        with pytest.raises(ValueError):
            ImagePlane(np.zeros(3), (0, 0, 0), (0, 1, 0), (1, 1), 4, 4)


def test_intersection_of_axial_with_sagittal_is_a_vertical_line():
    axial = _plane((-100, -100, 30))  # x, y in -100..155, z = 30
    sagittal = _plane((0, -100, 100), SAGITTAL, rows=256, cols=100)  # x = 0, y -100..-1
    seg = axial.intersection_with(sagittal)
    assert seg is not None
    (c0, r0), (c1, r1) = seg
    assert c0 == pytest.approx(100) and c1 == pytest.approx(100)
    assert sorted([r0, r1]) == pytest.approx([-0.5, 255.5])
    # only where the sagittal image actually is (y -100.5 .. -0.5 -> rows -0.5 .. 99.5)
    (c0, r0), (c1, r1) = axial.intersection_with(sagittal, clip_to_other=True)
    assert sorted([r0, r1]) == pytest.approx([-0.5, 99.5])
    # and the axial plane on the sagittal image: a horizontal line at z = 30 -> row 70
    (c0, r0), (c1, r1) = sagittal.intersection_with(axial)
    assert r0 == pytest.approx(70) and r1 == pytest.approx(70)
    assert sorted([c0, c1]) == pytest.approx([-0.5, 99.5])


def test_intersection_of_oblique_plane_is_clipped_diagonal():
    axial = _plane((0, 0, 0), rows=100, cols=100)
    # plane x + y = 50 (normal (1,1,0)/sqrt2): crosses the image from (50,0)-ish to (0,50)
    r = np.array([0, 0, 1.0])
    c = np.array([1, -1, 0]) / np.sqrt(2)
    other = ImagePlane(np.array([25.0, 25.0, 0.0]), r, c, (1, 1), 10, 10)
    (c0, r0), (c1, r1) = axial.intersection_with(other)
    assert {(round(c0, 6), round(r0, 6)), (round(c1, 6), round(r1, 6))} == {
        (50.5, -0.5),
        (-0.5, 50.5),
    }


def test_parallel_or_missing_planes_give_no_reference_line():
    axial = _plane((0, 0, 0))
    assert axial.intersection_with(_plane((0, 0, 10))) is None
    far_sagittal = _plane((500, 0, 0), SAGITTAL)
    assert axial.intersection_with(far_sagittal) is None


# --- headers -----------------------------------------------------------------------------------


def _classic(**kw) -> Dataset:
    ds = Dataset()
    ds.Rows, ds.Columns = 64, 128
    ds.ImagePositionPatient = [1.5, -2.0, 30.0]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [0.5, 0.25]
    for k, v in kw.items():
        setattr(ds, k, v)
    return ds


def test_plane_from_classic_dataset():
    p = plane_from_dataset(_classic())
    assert p is not None
    np.testing.assert_allclose(p.origin, [1.5, -2.0, 30.0])
    assert p.spacing_rc == (0.5, 0.25) and (p.rows, p.cols) == (64, 128)
    np.testing.assert_allclose(p.pixel_to_patient(4, 2), [2.5, -1.0, 30.0])


@pytest.mark.parametrize(
    "drop", ["ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"]
)
def test_plane_absent_gives_none(drop):
    ds = _classic()
    delattr(ds, drop)
    assert plane_from_dataset(ds) is None


def test_malformed_geometry_gives_none_not_an_exception():
    assert plane_from_dataset(_classic(ImagePositionPatient=[1, 2])) is None
    assert plane_from_dataset(_classic(ImageOrientationPatient=[1, 0, 0, 1, 0, 0])) is None
    assert plane_from_dataset(_classic(PixelSpacing=[0, 1])) is None


def _item(**kw) -> Dataset:
    d = Dataset()
    for k, v in kw.items():
        setattr(d, k, v)
    return d


def _enhanced() -> Dataset:
    ds = Dataset()
    ds.Rows, ds.Columns = 32, 32
    ds.NumberOfFrames = 3
    shared = _item(
        PlaneOrientationSequence=[_item(ImageOrientationPatient=[0, 1, 0, 0, 0, -1])],
        PixelMeasuresSequence=[_item(PixelSpacing=[2.0, 2.0], SliceThickness=3.0)],
    )
    ds.SharedFunctionalGroupsSequence = [shared]
    frames = []
    for i in range(3):
        f = _item(PlanePositionSequence=[_item(ImagePositionPatient=[10.0 - 3 * i, -50, 60])])
        if i == 2:
            f.PixelMeasuresSequence = [_item(PixelSpacing=[1.0, 1.5])]
        frames.append(f)
    ds.PerFrameFunctionalGroupsSequence = frames
    return ds


def test_plane_from_enhanced_per_frame_and_shared_groups():
    ds = _enhanced()
    p0, p1, p2 = (plane_from_dataset(ds, i) for i in range(3))
    np.testing.assert_allclose(p1.origin, [7, -50, 60])
    np.testing.assert_allclose(p0.row_dir, [0, 1, 0])
    assert classify_orientation(p0.row_dir, p0.col_dir) == "sagittal"
    assert p0.spacing_rc == (2.0, 2.0)
    assert p2.spacing_rc == (1.0, 1.5)  # per-frame Pixel Measures beat shared
    assert plane_from_dataset(ds).origin[0] == pytest.approx(10)  # no index: frame 0


def test_rt_dose_frames_are_offset_along_the_normal():
    ds = _classic(GridFrameOffsetVector=[0, 2.5, 5.0], NumberOfFrames=3)
    np.testing.assert_allclose(plane_from_dataset(ds, 2).origin, [1.5, -2.0, 35.0])


# --- labels and classification -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("iop", "expected"),
    [
        (AXIAL, {"left": "R", "right": "L", "top": "A", "bottom": "P"}),
        (CORONAL, {"left": "R", "right": "L", "top": "H", "bottom": "F"}),
        (SAGITTAL, {"left": "A", "right": "P", "top": "H", "bottom": "F"}),
        (((-1, 0, 0), (0, -1, 0)), {"left": "L", "right": "R", "top": "P", "bottom": "A"}),
    ],
)
def test_orientation_labels_standard_planes(iop, expected):
    assert orientation_labels(*iop) == expected


def test_orientation_labels_oblique_letters_ordered_by_magnitude():
    c30, s30 = np.cos(np.radians(30)), np.sin(np.radians(30))
    labels = orientation_labels((c30, s30, 0), (-s30, c30, 0))
    assert labels["right"] == "LP" and labels["left"] == "RA"
    assert labels["bottom"] == "PR" and labels["top"] == "AL"
    v = np.array([0.33, 0.5, 0.8]) / np.linalg.norm([0.33, 0.5, 0.8])
    assert orientation_labels(v, np.cross(v, (1, 0, 0)))["right"] == "HPL"
    # tiny components (1e-16 in real headers) do not add letters
    assert orientation_labels((1, -1e-16, 0), (1e-16, 1, 0))["right"] == "L"
    # an 18.5 degree gantry tilt: the bottom edge points posterior and to the feet
    labels = orientation_labels((1, 0, 0), _tilted_col(18.5))
    assert labels["bottom"] == "PF" and labels["top"] == "AH"


def test_classify_orientation():
    assert classify_orientation(*AXIAL) == "axial"
    assert classify_orientation(*CORONAL) == "coronal"
    assert classify_orientation(*SAGITTAL) == "sagittal"
    assert classify_orientation((1, 0, 0), _tilted_col(18.5)) == "axial"
    assert classify_orientation((1, 0, 0), _tilted_col(45)) == "oblique"
    assert classify_orientation((1, 0, 0), _tilted_col(35)) == "oblique"
    assert classify_orientation((1, 0, 0), _tilted_col(35), oblique_threshold_deg=40) == "axial"


# --- stacks ------------------------------------------------------------------------------------


def test_gantry_tilt_of_sheared_stack():
    col = _tilted_col(18.5)
    planes = [_plane((0, 0, 5.0 * k), ((1, 0, 0), col)) for k in (3, 0, 2, 1)]
    assert gantry_tilt_deg(planes) == pytest.approx(18.5, abs=1e-9)
    straight = [_plane((0, 0, 5.0 * k)) for k in range(4)]
    assert gantry_tilt_deg(straight) == 0.0
    assert gantry_tilt_deg(straight[:1]) == 0.0


def test_spacing_report_sorts_and_flags_uneven_spacing():
    planes = [_plane((0, 0, z)) for z in (10, 0, 17, 5)]
    rep = spacing_report(planes)
    assert rep.positions == pytest.approx((0, 5, 10, 17))
    assert rep.spacings == pytest.approx((5, 5, 7))
    assert not rep.regular
    assert (rep.min_spacing, rep.max_spacing) == pytest.approx((5, 7))
    assert spacing_report([_plane((0, 0, z)) for z in (0, 5.0, 10.04)]).regular  # within 1 %
    assert not spacing_report([_plane((0, 0, z)) for z in (0, 5.0, 10.2)]).regular
    assert spacing_report(planes[:1]).min_spacing is None


def test_spacing_report_under_tilt_distinguishes_normal_spacing_from_origin_steps():
    col = _tilted_col(20)
    planes = [_plane((0, 0, 5.0 * k), ((1, 0, 0), col)) for k in range(3)]
    rep = spacing_report(planes)
    assert rep.spacings == pytest.approx((5 * np.cos(np.radians(20)),) * 2)
    assert rep.origin_steps == pytest.approx((5.0, 5.0))


@pytest.mark.corpus
def test_ge_tilted_head_ct_header_geometry(corpus_dir):
    ds = pydicom.dcmread(
        corpus_dir / "ct_series/ge_hispeed_dual_tilt_variable_spacing/01.dcm",
        stop_before_pixels=True,
    )
    p = plane_from_dataset(ds)
    np.testing.assert_allclose(p.normal, [0, 0.3173047, 0.9483237], atol=1e-6)
    assert classify_orientation(p.row_dir, p.col_dir) == "axial"
    assert orientation_labels(p.row_dir, p.col_dir)["bottom"] == "PF"


def test_patient_orientation_gives_edge_labels_for_projection_images() -> None:
    from workstation.core.geometry import orientation_labels, patient_orientation_axes

    # a PA chest: rows run towards the patient's left, columns towards the feet
    assert orientation_labels(*patient_orientation_axes(["L", "F"])) == {
        "left": "R", "right": "L", "top": "H", "bottom": "F"}  # fmt: skip
    # a right MLO hung as acquired: rows towards anterior, columns foot-and-right (foot first)
    labels = orientation_labels(*patient_orientation_axes(["A", "FR"]))
    assert labels == {"left": "P", "right": "A", "top": "HL", "bottom": "FR"}
    for bad in (None, ["A"], ["A", "X"], ["", "F"], ["A", "R", "F"]):
        assert patient_orientation_axes(bad) is None
