"""VolumeScene's engines (CPU and GPU ray casting) and its preview volume: voxels land where the
geometry says in every engine and quality, the preview is a true block average, clipping works
in patient space, the interactive image sample distance adapts (off-screen OpenGL: EGL/llvmpipe)."""

from __future__ import annotations

import numpy as np
import pytest
from vtkmodules.util import numpy_support

from workstation.core.geometry import ImagePlane
from workstation.render.volume_image import build_volume_image
from workstation.render.volume_rendering import VolumePreset, VolumeScene

MIP = {
    "m": VolumePreset(
        "m",
        "m",
        "modality",
        "mip",
        ((0.0, 0.0), (1000.0, 1.0)),
        ((0.0, 0, 0, 0), (1000.0, 1, 1, 1)),
        False,
    )
}
BLOB_IJK = (31.5, 14.5, 44.5)  # centre of the bright block (col, row, slice)


def oblique_volume():
    """64^3, 1 x 1.5 mm pixels, 2 mm slices, rotated 30 deg about z and tilted 0.4 rad: a bright
    block of 4 x 10 x 10 voxels in a dark background."""
    n = 64
    v = np.full((n, n, n), -1000, np.int16)
    v[40:50, 10:20, 30:34] = 1000
    a = np.radians(30)
    xa = np.array([np.cos(a), np.sin(a), 0.0])
    ya = np.array([-np.sin(a) * np.cos(0.4), np.cos(a) * np.cos(0.4), np.sin(0.4)])
    normal = np.cross(xa, ya)
    planes = [
        ImagePlane(
            np.array([10, -20, 30.0]) + 2.0 * k * normal, tuple(xa), tuple(ya), (1.0, 1.5), n, n
        )
        for k in range(n)
    ]
    return build_volume_image(v, planes, modality="CT")


@pytest.fixture(scope="module")
def window():
    pytest.importorskip("vtkmodules.vtkRenderingOpenGL2")
    from workstation.render.offscreen import HeadlessRenderingError, offscreen_render_window

    try:
        win, _ = offscreen_render_window(256, 256)
    except HeadlessRenderingError as exc:
        pytest.skip(f"no off-screen OpenGL here: {exc}")
    yield win
    win.Finalize()


def draw(window, scene, point=None):
    """The red channel as float (rows from the top); with ``point``, also where that patient
    point projects (column, row)."""
    from workstation.render.offscreen import capture

    window.AddRenderer(scene.renderer)
    try:
        grey = capture(window)[..., 0].astype(float)
        if point is None:
            return grey
        r = scene.renderer
        r.SetWorldPoint(*point, 1.0)
        r.WorldToDisplay()
        x, y, _ = r.GetDisplayPoint()
        return grey, (x, grey.shape[0] - 1 - y)
    finally:
        window.RemoveRenderer(scene.renderer)


@pytest.mark.parametrize("engine", ["cpu", "gpu"])
@pytest.mark.parametrize("interactive", [False, True])
def test_marker_lands_where_the_geometry_says(window, engine, interactive):
    volume = oblique_volume()
    scene = VolumeScene(volume, MIP, "m", engine=engine, preview_voxels=20_000)
    assert scene.preview_factors == (3, 3, 2)
    scene.renderer.GetActiveCamera().ParallelProjectionOn()
    scene.set_interactive(interactive)
    assert scene.actor.GetMapper() is (scene.preview_mapper if interactive else scene.mapper)
    grey, (ex, ey) = draw(window, scene, volume.index_to_patient(BLOB_IJK))
    ys, xs = np.nonzero(grey > 60)
    assert len(xs) > 30
    tolerance = 1.5 if not interactive else 3.0  # the preview's blocks are 3 x 4.5 x 4 mm
    assert abs(xs.mean() - ex) < tolerance and abs(ys.mean() - ey) < tolerance, (
        xs.mean(),
        ys.mean(),
        ex,
        ey,
    )


def test_cpu_and_gpu_draw_the_same_mip(window):
    volume = oblique_volume()
    images = []
    for engine in ("cpu", "gpu"):
        scene = VolumeScene(volume, MIP, "m", engine=engine)
        images.append(draw(window, scene))
    bright = (images[0] > 60) | (images[1] > 60)
    assert bright.sum() > 30
    assert np.abs(images[0] - images[1])[bright].mean() < 25  # a few grey levels at the edges
    assert ((images[0] > 60) == (images[1] > 60)).mean() > 0.995


def test_clipping_box_is_in_patient_space(window):
    volume = oblique_volume()
    scene = VolumeScene(volume, MIP, "m", preview_voxels=20_000)
    blob = volume.index_to_patient(BLOB_IJK)
    corners = volume.bounds_patient()
    lo, hi = corners.min(axis=0) - 1, corners.max(axis=0) + 1
    scene.set_clipping_box((lo[0], blob[0] - 8, lo[1], hi[1], lo[2], hi[2]))
    assert (draw(window, scene) > 60).sum() == 0  # the block lies beyond the box
    scene.set_clipping_box((blob[0] - 8, hi[0], lo[1], hi[1], lo[2], hi[2]))
    assert (draw(window, scene) > 60).sum() > 30  # the block is inside
    scene.set_interactive(True)  # the preview is clipped alike
    assert (draw(window, scene) > 60).sum() > 10
    scene.set_clipping_box((lo[0], blob[0] - 8, lo[1], hi[1], lo[2], hi[2]))
    assert (draw(window, scene) > 60).sum() == 0
    assert scene.preview_mapper is not scene.mapper
    assert [m.GetClippingPlanes().GetNumberOfItems() for m in scene.mappers] == [6, 6]
    scene.set_clipping_box(None)
    assert scene.clipping_box is None
    assert [m.GetClippingPlanes().GetNumberOfItems() for m in scene.mappers] == [0, 0]


def test_preview_is_a_block_average_at_the_block_centres():
    volume = oblique_volume()
    scene = VolumeScene(volume, MIP, "m", preview_voxels=20_000)
    fx, fy, fz = scene.preview_factors
    assert (64 // fx) * (64 // fy) * (64 // fz) <= 20_000
    image = scene.preview_mapper.GetInput()
    nx, ny, nz = image.GetDimensions()
    assert (nx, ny, nz) == (64 // fx, 64 // fy, 64 // fz)
    got = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(nz, ny, nx)
    v = volume.values.astype(np.float64)
    k, j, i = 22, 4, 10  # one block, by hand
    want = v[k * fz : (k + 1) * fz, j * fy : (j + 1) * fy, i * fx : (i + 1) * fx].mean()
    assert got[k, j, i] == pytest.approx(want, abs=0.5)
    assert got.dtype == volume.values.dtype
    # the block's value sits at its centre: index (f - 1) / 2 of the full grid, in patient space
    local = np.array(image.GetOrigin()) + np.array(image.GetSpacing()) * (i, j, k)
    matrix = np.array(
        [[scene.actor.GetUserMatrix().GetElement(r, c) for c in range(4)] for r in range(4)]
    )
    patient = matrix[:3, :3] @ local + matrix[:3, 3]
    centre = volume.index_to_patient(
        np.array([i * fx, j * fy, k * fz]) + (np.array([fx, fy, fz]) - 1) / 2
    )
    np.testing.assert_allclose(patient, centre, atol=1e-6)


def test_small_volume_has_no_separate_preview():
    scene = VolumeScene(oblique_volume(), MIP, "m")  # 64^3 is under the budget
    assert scene.preview_factors == (1, 1, 1)
    assert scene.preview_mapper is scene.mapper and len(scene.mappers) == 1


def test_interactive_image_sample_distance_adapts():
    scene = VolumeScene(oblique_volume(), MIP, "m", preview_voxels=20_000)
    scene.frame_rendered(1.0)  # ignored: not interactive
    assert scene.mapper.GetImageSampleDistance() == 1.0
    scene.set_interactive(True)
    start = scene.interactive_image_sample
    scene.frame_rendered(4 * scene.target_frame_s)  # too slow: rays for fewer pixels
    assert scene.interactive_image_sample == pytest.approx(min(6.0, 2 * start))
    assert scene.preview_mapper.GetImageSampleDistance() == pytest.approx(
        scene.interactive_image_sample
    )
    for _ in range(10):
        scene.frame_rendered(scene.target_frame_s / 100)  # fast: back to a ray per pixel
    assert scene.interactive_image_sample == 1.0
    scene.set_interactive(False)
    assert scene.actor.GetMapper() is scene.mapper
    assert scene.mapper.GetImageSampleDistance() == 1.0
    assert scene.mapper.GetSampleDistance() == pytest.approx(min(scene.volume.spacing_mm))


def test_unknown_engine_is_refused():
    with pytest.raises(ValueError, match="engine must be one of cpu, gpu"):
        VolumeScene(oblique_volume(), MIP, "m", engine="cuda")
