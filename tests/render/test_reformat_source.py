"""Reformatted plane families as frame sources: markers where they belong, headers, slabs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mpr_synthetic import BACKGROUND, MARKER, marker_volume, write_series  # noqa: E402
from pydicom.dataset import Dataset  # noqa: E402

from workstation.core.calibration import calibration_for, length_mm  # noqa: E402
from workstation.core.crosshair import CrosshairModel  # noqa: E402
from workstation.core.display_sets import build_display_sets, read_header_records  # noqa: E402
from workstation.core.frame_cache import FrameCache  # noqa: E402
from workstation.core.frame_source import FrameSource  # noqa: E402
from workstation.core.geometry import orientation_labels, plane_from_dataset  # noqa: E402
from workstation.core.series_loader import SeriesLoader  # noqa: E402
from workstation.core.viewport_model import auto_window  # noqa: E402
from workstation.render.reformat_source import (  # noqa: E402
    ReformatSource,
    make_spec,
    step_along,
    volume_from_frame_source,
)
from workstation.render.reslice import Reslicer  # noqa: E402
from workstation.render.volume_image import build_volume_image  # noqa: E402


def template() -> Dataset:
    ds = Dataset()
    ds.PatientName = "MPR^MARKERS"
    ds.PatientID = "MPR1"
    ds.Modality = "CT"
    ds.SeriesDescription = "SYNTH"
    ds.FrameOfReferenceUID = "1.2.3.4"
    ds.WindowCenter, ds.WindowWidth = 40, 400
    ds.SeriesNumber = 3
    return ds


@pytest.fixture(scope="module")
def mv():
    return marker_volume()


@pytest.fixture(scope="module")
def volume(mv):
    return build_volume_image(mv.values, mv.planes, modality="CT")


@pytest.fixture(scope="module")
def reslicer(volume):
    return Reslicer(volume)


def source_for(volume, reslicer, model, view, **kw):
    ax = model.axes[view]
    spec = make_spec(volume, view, ax.x_axis, ax.y_axis, slab_mm=model.slab_mm, mode=model.mode)
    return ReformatSource(volume, reslicer, template(), spec, **kw)


def brightest(renderer) -> tuple[int, int]:
    values = renderer.modality
    row, col = np.unravel_index(int(np.argmax(values)), values.shape)
    return int(col), int(row)


def marker_centroid(renderer) -> tuple[float, float]:
    """Centroid (col, row) of the pixels above half the marker's contrast."""
    v = renderer.modality
    rows, cols = np.nonzero(v > (MARKER + BACKGROUND) / 2)
    assert rows.size, "no marker in this frame"
    return float(cols.mean()), float(rows.mean())


@pytest.mark.parametrize("view", ["axial", "coronal", "sagittal"])
def test_each_orthogonal_view_shows_the_marker_at_its_patient_point(mv, volume, reslicer, view):
    model = CrosshairModel(volume.centre_patient())
    src = source_for(volume, reslicer, model, view)
    target = mv.markers["centre"]
    i = src.nearest_to(target)
    r = src.decode(i)
    assert r.shape == (src.geometry(i).rows, src.geometry(i).cols)
    c, row = marker_centroid(r)
    shown = src.plane(i).pixel_to_patient(c, row)
    assert np.linalg.norm(shown - target) <= max(mv.pixel_mm, mv.spacing_mm)
    # the frame's plane passes within half a step of the marker
    assert abs(src.plane(i).patient_to_pixel(target)[2]) <= src.step_mm / 2 + 1e-6
    # the header says where the frame is, in a way the 2D code reads back
    plane = plane_from_dataset(src.header(i))
    np.testing.assert_allclose(plane.origin, src.plane(i).origin, atol=1e-3)
    np.testing.assert_allclose(plane.row_dir, model.axes[view].x_axis, atol=1e-6)
    assert src.header(i).SeriesDescription.startswith(f"MPR {view}")


def test_axial_frames_run_head_first_and_others_along_their_normal(volume, reslicer):
    model = CrosshairModel(volume.centre_patient())
    axial = source_for(volume, reslicer, model, "axial")
    assert axial.plane(0).origin[2] > axial.plane(1).origin[2]
    assert axial.step_mm == pytest.approx(1.5)
    coronal = source_for(volume, reslicer, model, "coronal")
    assert coronal.step_mm == pytest.approx(0.8)
    n = coronal.normal
    assert np.dot(coronal.plane(1).origin - coronal.plane(0).origin, n) == pytest.approx(0.8)
    # every index maps back to itself through its plane
    for src in (axial, coronal):
        for i in (0, 5, len(src) - 1):
            assert src.nearest_to(src.plane(i).origin) == i


def test_oblique_plane_keeps_the_marker_and_its_labels_agree_with_its_geometry(
    mv, volume, reslicer
):
    model = CrosshairModel(mv.markers["centre"])
    model.rotate("axial", np.radians(35))
    src = source_for(volume, reslicer, model, "coronal")
    i = src.nearest_to(mv.markers["centre"])
    r = src.decode(i)
    c, row = marker_centroid(r)
    shown = src.plane(i).pixel_to_patient(c, row)
    assert np.linalg.norm(shown - mv.markers["centre"]) <= max(mv.pixel_mm, mv.spacing_mm)
    ds = src.header(i)
    assert ds.SeriesDescription.startswith("MPR oblique")
    iop = np.array(ds.ImageOrientationPatient, float)
    labels = orientation_labels(iop[:3], iop[3:])
    # turned 35 degrees from L towards P about the head-feet axis: the right edge is left and
    # posterior (L first), the top is still the head
    assert labels == {"left": "RA", "right": "LP", "top": "H", "bottom": "F"}
    # turned about the slice axis, the normal stays within the 0.8 mm pixel grid
    assert src.step_mm == pytest.approx(0.8)
    # tilted 45 degrees between the 0.8 mm columns and the 1.5 mm slices: 1/|M^-1 n|
    tilted = CrosshairModel(mv.markers["centre"])
    tilted.rotate("coronal", np.radians(45))
    axial = source_for(volume, reslicer, tilted, "axial")
    assert axial.step_mm == pytest.approx(1 / np.sqrt(0.5 / 0.64 + 0.5 / 2.25))
    assert axial.step_mm == pytest.approx(step_along(volume, axial.normal))


def test_slab_mip_shows_a_marker_off_the_central_plane_and_minip_does_not(mv, volume, reslicer):
    model = CrosshairModel(mv.markers["centre"])
    centre, off = mv.markers["centre"], mv.markers["off_plane"]
    thin = source_for(volume, reslicer, model, "axial")
    i = thin.nearest_to(centre)
    assert abs(np.dot(off - centre, thin.normal)) == pytest.approx(6.0)
    col, row, _ = thin.plane(i).patient_to_pixel(off)
    col, row = round(col), round(row)
    assert thin.decode(i).modality[row, col] == pytest.approx(BACKGROUND)
    model.set_slab(16.0, "mip")
    mip = source_for(volume, reslicer, model, "axial")
    assert mip.uid != thin.uid and mip.frames[i].path == thin.frames[i].path
    assert mip.decode(i).modality[row, col] == pytest.approx(MARKER, abs=1.0)
    ds = mip.header(i)
    assert ds.SeriesDescription.startswith("MPR axial 16 mm MIP")
    assert float(ds.SliceThickness) == 16.0
    model.set_slab(16.0, "minip")
    minip = source_for(volume, reslicer, model, "axial")
    assert minip.decode(i).modality[row, col] == pytest.approx(BACKGROUND)
    model.set_slab(16.0, "mean")
    mean = source_for(volume, reslicer, model, "axial").decode(i).modality[row, col]
    assert BACKGROUND + 50 < mean < MARKER - 50
    # a 4 mm slab does not reach a marker 6 mm away (it spans 1 mm beyond its 3-voxel extent)
    model.set_slab(4.0, "mip")
    narrow = source_for(volume, reslicer, model, "axial")
    assert narrow.decode(i).modality[row, col] == pytest.approx(BACKGROUND)


def test_length_measured_in_a_reformat_uses_its_pixel_size(mv, volume, reslicer):
    model = CrosshairModel(mv.markers["centre"])
    src = source_for(volume, reslicer, model, "sagittal")
    i = src.nearest_to(mv.markers["centre"])
    ds = src.header(i)
    cal = calibration_for(ds)
    assert cal.calibrated and cal.row_mm == cal.col_mm == pytest.approx(src.spec.pixel_mm)
    assert src.geometry(i).spacing == (src.spec.pixel_mm, src.spec.pixel_mm)
    # the centre marker and the corner marker are both... measure between two known points
    a, b = mv.markers["centre"], mv.markers["centre"] + np.array([0.0, 12.0, -9.0])
    pa, pb = src.plane(i).patient_to_pixel(a), src.plane(i).patient_to_pixel(b)
    value, unit = length_mm(cal, pa[:2], pb[:2])
    assert unit == "mm" and value == pytest.approx(15.0, abs=1e-6)


def test_outside_the_volume_is_padding_not_a_value(mv, volume, reslicer):
    model = CrosshairModel(volume.centre_patient())
    model.rotate("axial", np.radians(45))
    src = source_for(volume, reslicer, model, "coronal")
    r = src.decode(len(src) // 2)
    assert not np.isnan(r.modality).any()
    assert r.padding is not None and r.padding.any() and not r.padding.all()
    assert np.all(r.modality[r.padding] == BACKGROUND)
    w = auto_window(r)
    assert w is not None and w.width >= 1


def test_header_copies_the_series_and_marks_the_reformat_and_lossy(volume, reslicer):
    t = template()
    t.LossyImageCompression = "01"
    model = CrosshairModel(volume.centre_patient())
    ax = model.axes["coronal"]
    spec = make_spec(volume, "coronal", ax.x_axis, ax.y_axis)
    src = ReformatSource(volume, reslicer, t, spec, lossy=True)
    ds = src.header(3)
    assert ds.PatientName == "MPR^MARKERS" and ds.FrameOfReferenceUID == "1.2.3.4"
    assert (ds.Rows, ds.Columns) == (spec.size[1], spec.size[0])
    assert float(ds.WindowCenter) == 40 and ds.InstanceNumber == 4
    assert "SliceLocation" not in ds and "RescaleSlope" not in ds
    assert src.is_lossy(3) and ds.LossyImageCompression == "01"
    assert src.display_set.geometry_ok and src.frames[3].plane is not None
    with pytest.raises(IndexError, match="frame"):
        src.decode(len(src))


def test_volume_from_a_loaded_frame_source(tmp_path, mv):
    paths = write_series(tmp_path / "s", mv)
    records, _ = read_header_records(paths)
    (ds,) = build_display_sets(records)
    cache = FrameCache(256 * 1024 * 1024)
    src = FrameSource(ds, {r.path: r.ds for r in records}, cache)
    with pytest.raises(ValueError, match="not loaded"):
        volume_from_frame_source(src)
    with SeriesLoader(workers=1) as loader:
        loaded = loader.load(src.volume_paths(), on_slice=src.slice_arrived)
    src.volume_done(loaded.failures)
    vol = volume_from_frame_source(src)
    idx = vol.patient_to_index(mv.markers["corner"])
    c, r, s = (int(round(v)) for v in idx)
    assert vol.values[s, r, c] == pytest.approx(MARKER)
