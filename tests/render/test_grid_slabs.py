"""Slabs lined up with the voxel grid, made in numpy, against vtkImageReslice thin reformats.

A grid-aligned slab is defined as the max / min / mean over the voxel planes whose centres lie
within it of the thin reformats of those planes. Here every such slab is checked against exactly
that, made the slow way: one ``Reslicer.reslice(plane moved to the voxel plane, slab_mm=0)``
(vtkImageReslice, linear) per plane, combined. Volumes of random voxels (every interpolation
error shows), slices spaced unlike the pixels (coronal and sagittal rows fall between slices),
odd output pixel sizes, planes partly beyond the volume in-plane and along the normal.
"""

from __future__ import annotations

import numpy as np
import pytest

from workstation.core.geometry import ImagePlane
from workstation.render.grid_slab import GridSlab
from workstation.render.reslice import ReslicePlane, Reslicer, orthogonal_planes
from workstation.render.volume_image import build_volume_image

MODES = {"mip": np.max, "minip": np.min, "mean": np.mean}
SCALE = 2000.0  # the voxels span -1000..1000
ATOL = 1e-4 * SCALE  # VTK quantises its interpolation weights to ~1/65536: ~0.03 here


def noise_volume(
    slice_mm: float = 1.3, pixel=(0.7, 0.8), shape=(37, 41, 33), dtype=np.int16, coronal=False
):
    """Random voxels in -1000..1000; an axial stack (or a coronal one, slices along y)."""
    rng = np.random.default_rng(7)
    values = rng.integers(-1000, 1000, shape).astype(dtype)
    if dtype != np.int16:
        values += rng.random(shape).astype(dtype)
    n, rows, cols = shape
    row_dir, col_dir = ((1, 0, 0), (0, 0, -1)) if coronal else ((1, 0, 0), (0, 1, 0))
    step = np.array((0, 1, 0) if coronal else (0, 0, 1), float) * slice_mm
    planes = [
        ImagePlane(np.array([-10.0, -12.0, 5.0]) + k * step, row_dir, col_dir, pixel, rows, cols)
        for k in range(n)
    ]
    return build_volume_image(values, planes)


def thin_reformats_combined(reslicer: Reslicer, grid: GridSlab, plane: ReslicePlane, mode: str):
    """The reference: vtkImageReslice thin reformats at the slab's voxel planes, combined."""
    volume = reslicer.volume
    thin = []
    for k in range(grid.first, grid.last + 1):
        ijk = [0.0, 0.0, 0.0]
        ijk[2 - grid.normal_axis] = float(k)
        thin.append(reslicer.reslice(plane.moved_to(volume.index_to_patient(ijk))))
    thin = np.array(thin)
    outside = np.isnan(thin)
    assert (outside == outside[0]).all()  # the same in-plane grid: the same pixels outside
    return MODES[mode](thin, axis=0)


def custom_plane(volume, view: str, pixel_mm: float, shift_mm, size_scale=1.0, flip_x=False):
    """The orthogonal ``view`` with another pixel size, its centre shifted by ``shift_mm``
    (patient mm; the normal part moves the slab), its matrix scaled by ``size_scale``."""
    base = orthogonal_planes(volume)[view]
    cols = int(base.size[0] * base.pixel_mm / pixel_mm * size_scale) + 3
    rows = int(base.size[1] * base.pixel_mm / pixel_mm * size_scale) + 2
    x = tuple(-v for v in base.x_axis) if flip_x else base.x_axis
    y = base.y_axis
    centre = np.asarray(base.centre) + np.asarray(shift_mm, float)
    return ReslicePlane(tuple(centre), x, y, pixel_mm, (cols, rows))


def check_against_vtk(reslicer: Reslicer, plane: ReslicePlane, slab_mm: float) -> GridSlab:
    grid = reslicer.grid_slab(plane, slab_mm)
    assert grid is not None and grid.count >= 2
    cols, rows = plane.size
    for mode in MODES:
        got = grid.combine(reslicer.volume.values, mode, rows, cols)
        made = reslicer.reslice(plane, slab_mm=slab_mm, mode=mode)
        if grid.exact:  # reslice takes the numpy path
            assert np.array_equal(made, got, equal_nan=True)
        else:  # sampled by VTK (GIL contention: see Reslicer.reslice)
            sampled = reslicer._sample(plane, slab_mm, mode, "linear", None)
            assert np.array_equal(made, sampled, equal_nan=True)
        want = thin_reformats_combined(reslicer, grid, plane, mode)
        assert np.array_equal(np.isnan(got), np.isnan(want)), mode
        inside = np.isfinite(want)
        assert inside.any()
        err = float(np.abs(got[inside] - want[inside]).max())
        assert err <= ATOL, (mode, err)
    return grid


@pytest.mark.parametrize("view", ["axial", "coronal", "sagittal"])
@pytest.mark.parametrize("pixel_mm", [0.7, 0.55, 0.93, 1.7])
def test_grid_slab_equals_the_vtk_thin_reformats_combined(view, pixel_mm):
    volume = noise_volume()  # 1.3 mm slices, 0.7 x 0.8 mm pixels
    reslicer = Reslicer(volume)
    plane = custom_plane(volume, view, pixel_mm, (1.37, -2.21, 3.13))
    grid = check_against_vtk(reslicer, plane, 6.0)
    if view != "axial" or pixel_mm != 0.7:
        assert not grid.exact  # the interpolating path was taken


@pytest.mark.parametrize("view", ["axial", "coronal", "sagittal"])
def test_grid_slab_partly_beyond_the_volume(view):
    """Shifted in-plane so that part of the image lies beyond the volume (NaN there, VTK's
    half-voxel border inside), and along the normal so that part of the slab does too."""
    volume = noise_volume()
    reslicer = Reslicer(volume)
    normal = orthogonal_planes(volume)[view].normal
    lo, hi = volume.bounds_patient().min(axis=0), volume.bounds_patient().max(axis=0)
    reach = float(np.abs((hi - lo) @ normal)) / 2
    shift = np.array([9.3, -11.7, 14.9])
    shift = shift - (shift @ normal) * normal + (reach - 1.1) * normal  # slab over the edge
    plane = custom_plane(volume, view, 0.61, shift, size_scale=1.2, flip_x=True)
    grid = check_against_vtk(reslicer, plane, 8.0)
    assert grid.count < 8.0 / reslicer.voxel_step_mm(normal)  # clipped by the volume
    img = reslicer.reslice(plane, slab_mm=8.0)
    assert np.isnan(img).any() and np.isfinite(img).any()


def test_grid_slab_of_a_coronal_stack_and_float_voxels():
    volume = noise_volume(slice_mm=1.1, pixel=(0.6, 0.9), dtype=np.float32, coronal=True)
    reslicer = Reslicer(volume)
    for view in ("axial", "coronal", "sagittal"):
        plane = custom_plane(volume, view, 0.75, (2.3, 1.1, -3.7))
        check_against_vtk(reslicer, plane, 5.0)


def test_outputs_exactly_on_the_half_voxel_border_are_inside():
    """Rows half a slice apart land exactly on -0.5 and n - 0.5: inside for vtkImageReslice
    (the edge slice), and just beyond them outside."""
    volume = noise_volume(slice_mm=1.0, pixel=(1.0, 1.0), shape=(10, 12, 14))
    reslicer = Reslicer(volume)
    base = orthogonal_planes(volume)["coronal"]
    plane = ReslicePlane(base.centre, base.x_axis, base.y_axis, 0.5, (29, 25))
    grid = check_against_vtk(reslicer, plane, 3.0)
    rows = grid.row0 + np.arange(25) * grid.row_step
    img = reslicer.reslice(plane, slab_mm=3.0)
    edge = np.isclose(rows, -0.5) | np.isclose(rows, 9.5)
    assert edge.sum() == 2 and np.isfinite(img[edge]).all()
    assert np.isnan(img[(rows < -0.5 - 1e-9) | (rows > 9.5 + 1e-9)]).all()


def test_rows_in_bands_give_the_same_slab():
    """Memory stays bounded: the rows are done a band at a time, as few as two input rows of
    every plane when the working memory allowed is tiny, with the same result."""
    volume = noise_volume()
    reslicer = Reslicer(volume)
    plane = custom_plane(volume, "sagittal", 0.83, (0.4, 0.0, 0.0))
    grid = reslicer.grid_slab(plane, 12.0)
    assert not grid.exact and grid.count > 10
    cols, rows = plane.size
    for mode in MODES:
        whole = grid.combine(volume.values, mode, rows, cols)
        for budget in (1, 30_000, 200_000):  # bands of 2 input rows, of a few, of many
            banded = grid.combine(volume.values, mode, rows, cols, block_bytes=budget)
            assert np.allclose(whole, banded, atol=1e-3, equal_nan=True), (mode, budget)


def test_preview_of_grid_slabs_and_slabs_beyond_the_volume():
    """On voxel centres the exact slab is cheaper than any draft: the preview is the slab.
    Between voxel centres the preview is vtkImageReslice's half-resolution draft (it kept the
    MPR drag faster): close to the slab where the voxels are smooth. Slabs wholly beyond the
    volume are NaN."""
    on_voxels = noise_volume(slice_mm=0.7, pixel=(0.7, 0.7))
    reslicer = Reslicer(on_voxels)
    for view in ("axial", "coronal", "sagittal"):
        plane = orthogonal_planes(on_voxels)[view]
        assert reslicer.grid_slab(plane, 5.0).exact
        full = reslicer.reslice(plane, slab_mm=5.0)
        assert np.array_equal(reslicer.reslice(plane, slab_mm=5.0, preview=True), full)
    volume = noise_volume()
    z, y, x = np.mgrid[: volume.shape[0], : volume.shape[1], : volume.shape[2]]
    ramp = (3 * x + 2 * y + 5 * z).astype(np.float32)
    smooth = Reslicer(build_volume_image(ramp, _planes_of(volume)))
    plane = custom_plane(volume, "coronal", 0.7, (0.0, 0.0, 0.0))
    full = smooth.reslice(plane, slab_mm=10.0, mode="mean")
    draft = smooth.reslice(plane, slab_mm=10.0, mode="mean", preview=True)
    assert draft.shape == full.shape and not np.array_equal(draft, full, equal_nan=True)
    both = np.isfinite(full) & np.isfinite(draft)
    assert both.sum() > 0.5 * full.size
    assert np.median(np.abs(full[both] - draft[both])) < 2.0
    reslicer = Reslicer(volume)
    far = plane.moved_to(np.asarray(plane.centre) + 100.0 * plane.normal)
    assert reslicer.grid_slab(far, 10.0).count == 0
    assert np.isnan(reslicer.reslice(far, slab_mm=10.0)).all()
    aside = custom_plane(volume, "coronal", 0.7, (80.0, 0.0, 0.0))  # beside the volume
    assert np.isnan(reslicer.reslice(aside, slab_mm=10.0, mode="mean")).all()
    with pytest.raises(ValueError, match="slab mode"):
        reslicer.grid_slab(plane, 10.0).combine(volume.values, "median", 4, 4)


def _planes_of(volume):
    """The slice planes of an axial ``volume`` (its index grid)."""
    m = volume.patient_from_index
    n, rows, cols = volume.shape
    dx, dy = np.linalg.norm(m[:3, 0]), np.linalg.norm(m[:3, 1])
    return [
        ImagePlane(m[:3, 3] + k * m[:3, 2], m[:3, 0] / dx, m[:3, 1] / dy, (dx, dy), rows, cols)
        for k in range(n)
    ]
