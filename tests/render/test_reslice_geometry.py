"""Geometry of the volume and its reformats: markers at known patient points land where they must.

Three acquisitions of the same markers: plain axial, an oblique (rotated) orientation, and an
axial stack with gantry tilt. Each marker is a 3x3x3 voxel blob; its patient position is that of
the blob's centre voxel. In every reformat through the marker (axial, coronal, sagittal, a
double-oblique plane, and a 20 mm MIP slab) the blob's centroid must lie within one voxel of
``plane.patient_to_pixel(marker)``.
"""

from __future__ import annotations

import numpy as np
import pytest

from workstation.core.geometry import ImagePlane, orientation_labels
from workstation.render.reslice import (
    ReslicePlane,
    Reslicer,
    oblique_plane,
    orthogonal_planes,
    rotation_matrix,
)
from workstation.render.volume_image import build_volume_image

MARKERS = [(10.0, -12.0, 6.0), (-18.0, 9.0, -14.0), (4.0, 20.0, 15.0)]


def acquire(row_dir, col_dir, step, n=48, rows=64, cols=64, pixel=1.0):
    """Planes of a stack centred on the origin whose origins advance by ``step`` (mm vector), and
    its voxels with a blob at the voxel nearest each marker; returns (values, planes, markers)."""
    row_dir, col_dir, step = (np.asarray(v, float) for v in (row_dir, col_dir, step))
    start = -(cols - 1) / 2 * pixel * row_dir - (rows - 1) / 2 * pixel * col_dir
    start = start - (n - 1) / 2 * step
    planes = [
        ImagePlane(start + k * step, row_dir, col_dir, (pixel, pixel), rows, cols) for k in range(n)
    ]
    values = np.full((n, rows, cols), -1000, np.int16)
    placed = []
    normal = planes[0].normal
    for m in MARKERS:
        k = int(np.argmin([abs(np.dot(np.asarray(m) - p.origin, normal)) for p in planes]))
        c, r, _ = planes[k].patient_to_pixel(m)
        c, r = int(round(c)), int(round(r))
        values[k - 1 : k + 2, r - 1 : r + 2, c - 1 : c + 2] = 1000
        placed.append(planes[k].pixel_to_patient(c, r))
    return values, planes, placed


def centroid(img: np.ndarray, near: tuple[float, float], radius: float = 6.0):
    rows, cols = np.mgrid[: img.shape[0], : img.shape[1]]
    win = (np.abs(cols - near[0]) <= radius) & (np.abs(rows - near[1]) <= radius)
    vals = np.where(win & np.isfinite(img), img, -1000.0) + 1000.0
    vals[vals < 0.3 * vals.max()] = 0
    assert vals.sum() > 0, "marker not found near where it should be"
    return float((cols * vals).sum() / vals.sum()), float((rows * vals).sum() / vals.sum())


ROT = rotation_matrix((1.0, 1.0, 0.3), 35.0)
TILT = np.radians(18.5)
ACQUISITIONS = {
    "axial": ((1, 0, 0), (0, 1, 0), (0, 0, 1.5)),
    "oblique": (ROT @ (1, 0, 0), ROT @ (0, 1, 0), 1.5 * (ROT @ (0, 0, 1))),
    # GE-style tilt: the image plane is tilted about x, the table (origins) moves along z
    "tilted": ((1, 0, 0), (0, np.cos(TILT), -np.sin(TILT)), (0, 0, 1.5 / np.cos(TILT))),
}


@pytest.mark.parametrize("kind", sorted(ACQUISITIONS))
def test_markers_land_in_every_reformat(kind):
    values, planes, markers = acquire(*ACQUISITIONS[kind])
    volume = build_volume_image(values, planes)
    if kind == "tilted":
        assert volume.resampled_for_tilt_deg == pytest.approx(18.5, abs=0.05)
        assert np.allclose(volume.direction.T @ volume.direction, np.eye(3), atol=1e-9)
    else:
        assert volume.resampled_for_tilt_deg is None
    reslicer = Reslicer(volume)
    tolerance_mm = max(volume.spacing_mm) + 1e-6
    for marker in markers:
        planes_here = dict(orthogonal_planes(volume, marker))
        planes_here["oblique"] = oblique_plane(volume, "axial", 25.0, -30.0, marker)
        for name, plane in planes_here.items():
            for slab in (0.0, 20.0):
                img = reslicer.reslice(plane, slab_mm=slab, mode="mip")
                expect = plane.patient_to_pixel(marker)
                assert abs(expect[2]) < 1e-6  # the plane passes through the marker
                got = centroid(img, expect[:2])
                err_mm = np.hypot(got[0] - expect[0], got[1] - expect[1]) * plane.pixel_mm
                assert err_mm <= tolerance_mm, (kind, name, slab, marker, got, expect)


def test_a_slab_sees_only_what_lies_within_it():
    values, planes, markers = acquire(*ACQUISITIONS["axial"])
    volume = build_volume_image(values, planes)
    reslicer = Reslicer(volume)
    marker = np.asarray(markers[0])
    axial = orthogonal_planes(volume, marker)["axial"]
    col, row, _ = axial.patient_to_pixel(marker)
    for dz, seen in ((7.0, True), (-7.0, True), (13.0, False), (-13.0, False)):
        img = reslicer.reslice(axial.moved_to(marker + (0, 0, dz)), slab_mm=20.0, mode="mip")
        peak = float(img[int(round(row)), int(round(col))])
        assert (peak > 500) is seen, (dz, peak)


def test_orthogonal_planes_follow_the_radiological_convention():
    values, planes, _ = acquire(*ACQUISITIONS["axial"])
    volume = build_volume_image(values, planes)
    ortho = orthogonal_planes(volume)
    expected = {
        "axial": {"left": "R", "right": "L", "top": "A", "bottom": "P"},
        "coronal": {"left": "R", "right": "L", "top": "H", "bottom": "F"},
        "sagittal": {"left": "A", "right": "P", "top": "H", "bottom": "F"},
    }
    centre = volume.centre_patient()
    for name, plane in ortho.items():
        assert orientation_labels(plane.x_axis, plane.y_axis) == expected[name]
        # a point towards the patient's left / head / anterior moves the right way on screen
        c0, r0, _ = plane.patient_to_pixel(centre)
        cl, _, _ = plane.patient_to_pixel(centre + (10, 0, 0))
        _, rh, _ = plane.patient_to_pixel(centre + (0, 0, 10))
        ca, ra, _ = plane.patient_to_pixel(centre + (0, -10, 0))
        if name in ("axial", "coronal"):
            assert cl > c0  # patient left on screen right
        if name in ("coronal", "sagittal"):
            assert rh < r0  # head up
        if name == "axial":
            assert ra < r0  # anterior up
        if name == "sagittal":
            assert ca < c0  # anterior on screen left
    # the image covers the volume: every corner projects inside it
    for plane in ortho.values():
        for corner in volume.bounds_patient():
            c, r, _ = plane.patient_to_pixel(corner)
            assert -0.5 <= c <= plane.size[0] - 0.5 and -0.5 <= r <= plane.size[1] - 0.5
    assert ortho["axial"].pixel_mm == pytest.approx(1.0)


def test_slab_modes_on_a_known_volume():
    rng = np.random.default_rng(3)
    n = 40
    levels = rng.integers(-500, 500, n).astype(np.float32)
    values = np.broadcast_to(levels[:, None, None], (n, 16, 16)).copy()
    planes = [
        ImagePlane(np.array([0.0, 0.0, float(k)]), (1, 0, 0), (0, 1, 0), (1, 1), 16, 16)
        for k in range(n)
    ]
    volume = build_volume_image(values, planes)
    reslicer = Reslicer(volume)
    axial = orthogonal_planes(volume, (7.0, 7.0, 20.0))["axial"]
    window = levels[16:25]  # 8 mm slab centred on z = 20 samples slices 16..24
    for mode, expect in (("mip", window.max()), ("minip", window.min()), ("mean", window.mean())):
        img = reslicer.reslice(axial, slab_mm=8.0, mode=mode)
        assert img.shape == (16, 16)
        assert np.allclose(img, expect, atol=1e-3), mode
    thin = reslicer.reslice(axial)
    assert np.allclose(thin, levels[20])


def test_outside_the_volume_is_nan_and_bad_arguments_are_refused():
    values, planes, _ = acquire(*ACQUISITIONS["axial"])
    volume = build_volume_image(values, planes)
    reslicer = Reslicer(volume)
    axial = orthogonal_planes(volume)["axial"]
    wide = ReslicePlane(axial.centre, axial.x_axis, axial.y_axis, 1.0, (100, 64))
    img = reslicer.reslice(wide)
    assert np.isnan(img[:, :15]).all() and np.isnan(img[:, -15:]).all()
    assert np.isfinite(img[:, 20:80]).all()
    with pytest.raises(ValueError, match="slab thickness"):
        reslicer.reslice(axial, slab_mm=150.0)
    with pytest.raises(ValueError, match="slab mode"):
        reslicer.reslice(axial, slab_mm=5.0, mode="median")
    with pytest.raises(ValueError, match="not orthogonal"):
        ReslicePlane((0, 0, 0), (1, 0, 0), (1, 1, 0), 1.0, (10, 10))


def test_preview_slab_matches_the_full_one_where_smooth():
    values, planes, _ = acquire(*ACQUISITIONS["axial"])
    z, y, x = np.mgrid[: values.shape[0], : values.shape[1], : values.shape[2]]
    values = (x * 3 + y * 2 + z).astype(np.float32)  # a smooth ramp
    volume = build_volume_image(values, planes)
    reslicer = Reslicer(volume)
    plane = oblique_plane(volume, "axial", 10.0, 15.0)
    full = reslicer.reslice(plane, slab_mm=10.0, mode="mean")
    fast = reslicer.reslice(plane, slab_mm=10.0, mode="mean", preview=True)
    assert fast.shape == full.shape
    both = np.isfinite(full) & np.isfinite(fast)
    assert both.sum() > 0.3 * full.size
    assert np.median(np.abs(full[both] - fast[both])) < 3.0


def test_uneven_spacing_is_resampled_and_reported():
    positions = [0.0, 1.0, 2.0, 3.0, 6.0, 7.0, 8.0, 12.0, 13.0]
    planes = [
        ImagePlane(np.array([0, 0, z]), (1, 0, 0), (0, 1, 0), (1, 1), 8, 8) for z in positions
    ]
    values = np.stack([np.full((8, 8), z * 10, np.float32) for z in positions])
    volume = build_volume_image(values, planes)
    assert volume.uneven_spacing is not None and "uneven" in volume.uneven_spacing
    assert volume.spacing_mm[2] == pytest.approx(1.0)
    assert volume.values.shape[0] == 14
    # linear in z: each resampled slice holds 10 * its position
    assert np.allclose(volume.values[:, 0, 0], np.arange(14) * 10.0, atol=1e-4)


def test_descending_slices_and_refused_stacks():
    values, planes, markers = acquire(*ACQUISITIONS["axial"])
    volume = build_volume_image(values[::-1], planes[::-1])
    assert any("descending" in n for n in volume.notes)
    ijk = volume.patient_to_index(markers[0])
    k, r, c = (int(round(v)) for v in ijk[::-1])
    assert volume.values[k, r, c] == 1000
    with pytest.raises(ValueError, match="planes for"):
        build_volume_image(values[:-1], planes)
    with pytest.raises(ValueError, match="not a volume"):
        build_volume_image(values[:2], [planes[0], planes[0]])


def _noise_volume(slice_mm: float):
    """Random int16 voxels, 0.7 mm pixels, slices ``slice_mm`` apart. With 0.7 mm slices every
    orthogonal plane has its pixels on voxel centres; with 1 mm the coronal and sagittal rows fall
    between slices."""
    rng = np.random.default_rng(11)
    n, rows, cols = 60, 50, 40
    values = rng.integers(-1000, 1000, (n, rows, cols)).astype(np.int16)
    planes = [
        ImagePlane(
            np.array([-10.0, -12.0, k * slice_mm]), (1, 0, 0), (0, 1, 0), (0.7, 0.7), rows, cols
        )
        for k in range(n)
    ]
    return build_volume_image(values, planes)


@pytest.mark.parametrize("name", ["axial", "coronal", "sagittal"])
def test_grid_aligned_slab_combines_the_voxel_planes_within_it(name):
    """A slab lined up with the voxel grid, pixels on voxel centres, is the max / min / mean of
    the thin reformats at the voxel planes whose centres lie within it (checked against thin
    reslices, one per plane)."""
    volume = _noise_volume(0.7)
    reslicer = Reslicer(volume)
    point = np.array([-10 + 20 * 0.7, -12 + 25 * 0.7, 30 * 0.7])  # a voxel centre
    plane = orthogonal_planes(volume, point)[name]
    step = reslicer.voxel_step_mm(plane.normal)
    grid = reslicer.grid_slab(plane, 8.4 * step)  # 8.4 steps: the 9 planes within +-4.2 steps
    assert grid is not None and grid.count == 9 and grid.exact
    thin = np.array(
        [reslicer.reslice(plane.moved_to(point + plane.normal * step * i)) for i in range(-4, 5)]
    )
    for mode, combine in (("mip", np.max), ("minip", np.min), ("mean", np.mean)):
        img = reslicer.reslice(plane, slab_mm=8.4 * step, mode=mode)
        assert img.shape == thin.shape[1:]
        assert np.array_equal(np.isnan(img), np.isnan(thin[0])), (name, mode)
        inside = np.isfinite(img)
        assert inside.sum() > 0.5 * img.size
        assert np.allclose(img[inside], combine(thin, axis=0)[inside], atol=1e-3), (name, mode)


def test_grid_slab_beyond_the_volume_and_planes_off_the_grid():
    volume = _noise_volume(1.0)
    reslicer = Reslicer(volume)
    centre = volume.centre_patient()
    axial = orthogonal_planes(volume, centre)["axial"]
    # partly beyond the last slice: only the slices inside count
    edge = axial.moved_to(centre + (0, 0, 30.0))  # z = 59.5: half a slice beyond the last one
    grid = reslicer.grid_slab(edge, 10.0)
    assert (grid.first, grid.last) == (55, 59)
    img = reslicer.reslice(edge, slab_mm=10.0, mode="mip")
    assert np.allclose(img, volume.values[55:60].max(axis=0))
    # wholly beyond: nothing to show
    assert np.isnan(reslicer.reslice(axial.moved_to(centre + (0, 0, 60.0)), slab_mm=10.0)).all()
    # thinner than a voxel, or tilted: not on the grid
    assert reslicer.grid_slab(axial, 0.5) is None
    assert reslicer.grid_slab(oblique_plane(volume, "axial", 5.0, 0.0), 10.0) is None
    # coronal rows 0.7 mm apart over 1 mm slices: lined up, not on voxel centres: sampled by VTK
    coronal = orthogonal_planes(volume, centre)["coronal"]
    grid = reslicer.grid_slab(coronal, 10.0)
    assert grid is not None and not grid.exact
    with pytest.raises(ValueError):
        grid.combine(volume.values, "mip", *coronal.size[::-1])
    slab = reslicer.reslice(coronal, slab_mm=10.0, mode="mip")
    assert np.array_equal(
        slab, reslicer._sample(coronal, 10.0, "mip", "linear", None), equal_nan=True
    )
    thin = reslicer.reslice(coronal)
    inside = np.isfinite(slab) & np.isfinite(thin)
    assert inside.sum() > 0.5 * slab.size
    assert (slab[inside] >= thin[inside] - 1e-3).mean() > 0.99  # a MIP over the thin plane


def test_draft_of_a_grid_slab_between_voxel_centres():
    """While the crosshair moves, a coronal slab of an axial stack whose rows fall between
    slices is drafted by reducing its voxel planes first, then interpolating: for a
    mean that is the slab of the voxel planes interpolated first (linear steps commute); for a
    MIP it is at least that (a MinIP at most). Outside the volume is NaN where the full slab has
    it."""
    volume = _noise_volume(1.0)  # coronal and sagittal rows 0.7 mm apart over 1 mm slices
    reslicer = Reslicer(volume)
    point = np.array([-10 + 20 * 0.7, -12 + 25 * 0.7, 30.0])
    plane = orthogonal_planes(volume, point)["coronal"]
    step = reslicer.voxel_step_mm(plane.normal)
    grid = reslicer.grid_slab(plane, 8.4 * step)
    assert grid is not None and not grid.exact and grid.count == 9
    drafted = reslicer.reslice(plane, slab_mm=8.4 * step, mode="mean", preview=True)
    assert np.array_equal(
        drafted, grid.draft(volume.values, "mean", *plane.size[::-1]), equal_nan=True
    )
    # reference: each voxel plane's thin reformat (rows interpolated between slices), combined
    thin = np.array(
        [reslicer.reslice(plane.moved_to(point + plane.normal * step * i)) for i in range(-4, 5)]
    )
    full = reslicer.reslice(plane, slab_mm=8.4 * step, mode="mip")
    for mode, combine in (("mip", np.max), ("minip", np.min), ("mean", np.mean)):
        draft = reslicer.reslice(plane, slab_mm=8.4 * step, mode=mode, preview=True)
        assert draft.shape == full.shape and draft.dtype == np.float32
        assert np.array_equal(np.isnan(draft), np.isnan(full)), mode
        ref = combine(thin, axis=0)
        inside = np.isfinite(draft) & np.isfinite(ref)
        assert inside.sum() > 0.5 * draft.size
        d, r = draft[inside], ref[inside]
        if mode == "mean":
            assert np.allclose(d, r, atol=1e-2)
        elif mode == "mip":
            assert (d >= r - 1e-2).all()
        else:
            assert (d <= r + 1e-2).all()


def test_draft_follows_the_markers():
    """The draft of a 20 mm coronal and sagittal MIP shows each marker where the full slab does."""
    values, planes, markers = acquire((1, 0, 0), (0, 1, 0), (0, 0, 1.5))
    volume = build_volume_image(values, planes)
    reslicer = Reslicer(volume)
    for m in markers:
        for name in ("coronal", "sagittal"):
            plane = orthogonal_planes(volume, m)[name]
            full = reslicer.reslice(plane, slab_mm=20.0, mode="mip")
            draft = reslicer.reslice(plane, slab_mm=20.0, mode="mip", preview=True)
            want = plane.patient_to_pixel(m)[:2]
            for img in (full, draft):
                c, r = centroid(np.nan_to_num(img, nan=-1000.0), want)
                assert abs(c - want[0]) <= 1.0 and abs(r - want[1]) <= 1.0, (name, m)
