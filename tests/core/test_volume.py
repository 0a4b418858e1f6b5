"""Volume geometry from display sets: exact affines, refusals, and real stacks assembled."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pydicom
import pytest

from workstation.core.display_sets import (
    DisplaySet,
    FrameRef,
    build_display_sets,
    read_header_records,
)
from workstation.core.frame_attributes import frame_attribute
from workstation.core.geometry import ImagePlane
from workstation.core.volume import assemble_volume, volume_geometry, volume_geometry_from_planes

AXIAL = ((1, 0, 0), (0, 1, 0))


def _plane(z, iop=AXIAL, origin_xy=(-10.0, -20.0), spacing=(0.5, 0.8), rows=3, cols=4):
    return ImagePlane(np.array([*origin_xy, z], float), iop[0], iop[1], spacing, rows, cols)


def _display_set(planes) -> DisplaySet:
    frames = tuple(
        FrameRef(f"/synthetic/{k}.dcm", None, k + 1, p, f"1.2.{k}") for k, p in enumerate(planes)
    )
    return DisplaySet("1.2#x", "1.2", "test", "stack", frames, "axial", False, (), True, None)


def test_regular_axial_stack_affine_is_exact():
    geo = volume_geometry_from_planes([_plane(z) for z in (0.0, 2.5, 5.0, 7.5)])
    assert geo.ok and geo.reason is None and geo.regular and not geo.sheared
    expected = np.array(
        [[0.8, 0, 0, -10], [0, 0.5, 0, -20], [0, 0, 2.5, 0], [0, 0, 0, 1]], dtype=float
    )
    np.testing.assert_allclose(geo.affine, expected)
    assert geo.spacing == pytest.approx((0.8, 0.5, 2.5))
    assert geo.shape == (4, 3, 4)
    np.testing.assert_allclose(geo.direction, np.eye(3))
    np.testing.assert_allclose(geo.index_to_patient((1, 2, 3)), [-9.2, -19.0, 7.5])
    np.testing.assert_allclose(
        geo.index_to_patient(np.array([[0, 0, 0], [3, 2, 1]])), [[-10, -20, 0], [-7.6, -19, 2.5]]
    )
    assert geo.problems == ()


def test_descending_stack_steps_backwards():
    geo = volume_geometry_from_planes([_plane(z) for z in (10.0, 5.0, 0.0)])
    assert geo.ok and geo.affine[2, 2] == pytest.approx(-5.0) and geo.spacing[2] == pytest.approx(5)


def test_gantry_tilt_gives_sheared_affine_through_true_origins():
    t = np.radians(18.5)
    iop = ((1, 0, 0), (0, np.cos(t), -np.sin(t)))
    planes = [_plane(5.0 * k, iop, origin_xy=(0, 0)) for k in range(5)]
    geo = volume_geometry_from_planes(planes)
    assert geo.ok and geo.sheared and geo.regular
    assert geo.tilt_deg == pytest.approx(18.5)
    np.testing.assert_allclose(geo.affine[:3, 2], [0, 0, 5])  # step between origins, not the normal
    assert geo.spacing[2] == pytest.approx(5 * np.cos(t))  # slice spacing along the normal
    for k, p in enumerate(planes):
        np.testing.assert_allclose(geo.index_to_patient((0, 0, k)), p.origin, atol=1e-12)
        np.testing.assert_allclose(geo.index_to_patient((3, 2, k)), p.pixel_to_patient(3, 2))
    assert any("sheared" in s for s in geo.problems)
    np.testing.assert_allclose(geo.direction[:, 2], [0, 0, 1])


def test_uneven_spacing_is_accepted_with_exact_slice_origins():
    zs = (0.0, 4.0, 8.0, 15.0)
    geo = volume_geometry_from_planes([_plane(z) for z in zs])
    assert geo.ok and not geo.regular
    assert geo.affine[2, 2] == pytest.approx(5.0)  # mean step
    np.testing.assert_allclose(geo.slice_origins[:, 2], zs)
    assert geo.problems == (
        "uneven slice spacing 4.00–7.00 mm: the affine uses the mean step 5.000 mm; "
        "use slice_origins for exact positions",
    )


@pytest.mark.parametrize(
    ("planes", "reason"),
    [
        ([_plane(0.0)], "a volume needs at least 2 frames, got 1"),
        ([_plane(0.0), None], "1 of 2 frames have no position/orientation/spacing"),
        ([_plane(0.0), _plane(1.0, ((1, 0, 0), (0, 0, -1)))], "orientation varies between frames"),
        ([_plane(0.0), _plane(1.0, rows=5)], "matrix size varies: 3x4 and 5x4"),
        (
            [_plane(0.0), _plane(1.0, spacing=(0.5, 0.9))],
            "pixel spacing varies: (0.5, 0.8) and (0.5, 0.9)",
        ),
        ([_plane(0.0), _plane(1.0), _plane(1.0)], "1 slices share a position with the next"),
        (
            [_plane(0.0), _plane(2.0), _plane(1.0)],
            "slices are not in monotonic order along the normal",
        ),
    ],
)
def test_refusals_carry_a_reason(planes, reason):
    geo = volume_geometry_from_planes(planes)
    assert not geo.ok and geo.reason == reason and geo.affine is None
    with pytest.raises(ValueError, match="no volume geometry"):
        geo.index_to_patient((0, 0, 0))


def test_assemble_volume_stacks_frames_in_display_order():
    dset = _display_set([_plane(z) for z in (0.0, 2.5, 5.0)])

    def loader(ref: FrameRef) -> np.ndarray:
        return np.full((3, 4), 10.0 * ref.instance_number, dtype=np.float32)

    assert volume_geometry(dset).shape == (3, 3, 4)
    vol, geo = assemble_volume(dset, loader)
    assert vol.shape == (3, 3, 4) and vol.dtype == np.float32 and geo.ok
    assert vol[:, 0, 0].tolist() == [10.0, 20.0, 30.0]
    with pytest.raises(ValueError, match=r"loader returned shape \(2, 2\)"):
        assemble_volume(dset, lambda ref: np.zeros((2, 2)))
    with pytest.raises(ValueError, match="not a volume: a volume needs at least 2 frames"):
        assemble_volume(_display_set([_plane(0.0)]), loader)


# --- real stacks -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _decoded(path: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)
        return ds, ds.pixel_array


def modality_loader(ref: FrameRef) -> np.ndarray:
    """Stored values through Rescale Slope/Intercept (per frame for enhanced objects)."""
    ds, pixels = _decoded(ref.path)
    frame = pixels if ref.frame_index is None else pixels[ref.frame_index]
    index = ref.frame_index
    slope = frame_attribute(ds, index, "PixelValueTransformationSequence", "RescaleSlope")
    intercept = frame_attribute(ds, index, "PixelValueTransformationSequence", "RescaleIntercept")
    return frame.astype(np.float32) * float(slope or 1.0) + float(intercept or 0.0)


def _only(corpus_dir, rel) -> list[DisplaySet]:
    records, _ = read_header_records([corpus_dir / rel])
    return build_display_sets(records)


@pytest.mark.corpus
def test_ge_tilted_series_assembles_as_sheared_uneven_volume(corpus_dir):
    (dset,) = _only(corpus_dir, "ct_series/ge_hispeed_dual_tilt_variable_spacing")
    vol, geo = assemble_volume(dset, modality_loader)
    assert vol.shape == (28, 512, 512) and geo.ok and geo.sheared and not geo.regular
    assert geo.tilt_deg == pytest.approx(18.5, abs=0.01)
    # the affine steps along the z axis between origins: (157.776 - 5.836) / 27 mm
    np.testing.assert_allclose(geo.affine[:3, 2], [0, 0, (157.776 - 5.836) / 27], atol=1e-3)
    np.testing.assert_allclose(geo.slice_origins[[0, -1], 2], [5.8360586, 157.7760586])
    np.testing.assert_array_equal(vol[0], modality_loader(dset.frames[0]))
    assert dset.frames[0].path.endswith("01.dcm")
    centre = vol[:, 236:276, 236:276]
    assert -100 < float(np.median(centre)) < 100  # brain tissue in HU
    assert float(vol.min()) <= -1000  # air (or padding) outside the head


@pytest.mark.corpus
def test_philips_enhanced_field_map_stack_is_a_regular_volume(corpus_dir):
    sets = _only(corpus_dir, "enhanced_multiframe/philips/IM_0027_fMAP.dcm")
    vol, geo = assemble_volume(sets[0], modality_loader)
    assert vol.shape == (32, 64, 64) and geo.ok and geo.regular and not geo.sheared
    assert geo.spacing == pytest.approx((4.0, 4.0, 4.0), abs=1e-3)
    np.testing.assert_allclose(geo.slice_origins[0], [-127.24, -119.78, -38.35], atol=0.01)
    assert not np.array_equal(vol[0], vol[-1])
