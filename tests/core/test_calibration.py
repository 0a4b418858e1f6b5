"""Which pixel spacing a measurement uses: synthetic headers for each rule, real files for a few."""

from __future__ import annotations

import math

import pydicom
import pytest
from pydicom.dataset import Dataset

from workstation.core.calibration import (
    SOURCE_IMAGER,
    SOURCE_IMAGER_ERMF,
    SOURCE_NONE,
    SOURCE_PIXEL_SPACING,
    SOURCE_SCANNED,
    SOURCE_US_REGION,
    Calibration,
    calibration_for,
    length_mm,
)


def _ds(modality: str, **kw) -> Dataset:
    ds = Dataset()
    ds.Modality = modality
    ds.Rows, ds.Columns = 100, 100
    for k, v in kw.items():
        setattr(ds, k, v)
    return ds


def _item(**kw) -> Dataset:
    d = Dataset()
    for k, v in kw.items():
        setattr(d, k, v)
    return d


@pytest.mark.parametrize("modality", ["CR", "DX", "MG", "IO", "XA", "RF"])
def test_projection_prefers_pixel_spacing(modality):
    cal = calibration_for(_ds(modality, PixelSpacing=[0.1, 0.12], ImagerPixelSpacing=[0.2, 0.2]))
    assert (cal.row_mm, cal.col_mm, cal.source) == (0.1, 0.12, SOURCE_PIXEL_SPACING)
    assert "not stated" in cal.detail


def test_projection_pixel_spacing_equal_to_imager_spacing_is_called_out():
    cal = calibration_for(_ds("DX", PixelSpacing=[0.2, 0.2], ImagerPixelSpacing=[0.2, 0.2]))
    assert cal.source == SOURCE_PIXEL_SPACING
    assert "equals Imager Pixel Spacing" in cal.detail


def test_projection_imager_spacing_corrected_by_magnification():
    cal = calibration_for(
        _ds("MG", ImagerPixelSpacing=[0.1, 0.1], EstimatedRadiographicMagnificationFactor=1.25)
    )
    assert cal.source == SOURCE_IMAGER_ERMF
    assert cal.row_mm == pytest.approx(0.08) and cal.col_mm == pytest.approx(0.08)
    assert "1.25" in cal.detail


def test_projection_imager_spacing_alone_warns_about_magnification():
    cal = calibration_for(_ds("CR", ImagerPixelSpacing=[0.15, 0.175]))
    assert (cal.row_mm, cal.col_mm, cal.source) == (0.15, 0.175, SOURCE_IMAGER)
    assert "magnification" in cal.detail
    # an ERMF of 0 is ignored, not divided by
    cal = calibration_for(
        _ds("CR", ImagerPixelSpacing=[0.15, 0.15], EstimatedRadiographicMagnificationFactor=0)
    )
    assert cal.source == SOURCE_IMAGER and cal.row_mm == 0.15


def test_ct_and_enhanced_mr_use_pixel_spacing_per_frame():
    cal = calibration_for(_ds("CT", PixelSpacing=[0.7, 0.7]))
    assert (cal.row_mm, cal.source) == (0.7, SOURCE_PIXEL_SPACING)
    mr = _ds("MR")
    mr.SharedFunctionalGroupsSequence = [_item(PixelMeasuresSequence=[_item(PixelSpacing=[2, 2])])]
    mr.PerFrameFunctionalGroupsSequence = [
        _item(),
        _item(PixelMeasuresSequence=[_item(PixelSpacing=[1.5, 1.25])]),
    ]
    assert calibration_for(mr, frame_index=0).row_mm == 2.0
    cal = calibration_for(mr, frame_index=1)
    assert (cal.row_mm, cal.col_mm) == (1.5, 1.25)
    assert "functional group" in cal.detail


def _us_regions() -> Dataset:
    doppler = _item(
        RegionLocationMinX0=0, RegionLocationMinY0=60, RegionLocationMaxX1=99,
        RegionLocationMaxY1=99, PhysicalUnitsXDirection=4, PhysicalUnitsYDirection=7,
        PhysicalDeltaX=0.01, PhysicalDeltaY=0.5,
    )  # fmt: skip
    bmode = _item(
        RegionLocationMinX0=10, RegionLocationMinY0=0, RegionLocationMaxX1=89,
        RegionLocationMaxY1=59, PhysicalUnitsXDirection=3, PhysicalUnitsYDirection=3,
        PhysicalDeltaX=0.02, PhysicalDeltaY=0.025,
    )  # fmt: skip
    return _ds("US", SequenceOfUltrasoundRegions=[doppler, bmode])


def test_ultrasound_first_region_in_cm_without_a_point():
    cal = calibration_for(_us_regions())
    assert cal.source == SOURCE_US_REGION
    assert cal.col_mm == pytest.approx(0.2) and cal.row_mm == pytest.approx(0.25)
    assert "region 2 of 2" in cal.detail


def test_ultrasound_region_under_the_point():
    ds = _us_regions()
    assert calibration_for(ds, point=(50, 30)).row_mm == pytest.approx(0.25)
    doppler = calibration_for(ds, point=(50, 80))
    assert doppler.source == SOURCE_NONE and "seconds" in doppler.detail
    outside = calibration_for(ds, point=(5, 30))
    assert outside.source == SOURCE_NONE and "no ultrasound region" in outside.detail


def test_ultrasound_without_regions_and_other_fallbacks():
    assert calibration_for(_ds("US")).source == SOURCE_NONE
    sc = calibration_for(_ds("OT", NominalScannedPixelSpacing=[0.3, 0.3]))
    assert (sc.row_mm, sc.source) == (0.3, SOURCE_SCANNED)
    none = calibration_for(_ds("OT"))
    assert none == Calibration(None, None, SOURCE_NONE, none.detail) and "pixels" in none.detail
    assert calibration_for(_ds("CT", PixelSpacing=[0, 1])).source == SOURCE_NONE
    assert calibration_for(_ds("CT", PixelSpacing=[-0.5, -0.5])).source == SOURCE_NONE


def test_length_in_mm_or_pixels():
    cal = Calibration(0.5, 0.25, SOURCE_PIXEL_SPACING, "")
    value, unit = length_mm(cal, (0, 0), (4, 3))  # 4 columns = 1 mm, 3 rows = 1.5 mm
    assert unit == "mm" and value == pytest.approx(math.hypot(1.0, 1.5))
    assert length_mm(Calibration(None, None, SOURCE_NONE, ""), (1, 1), (4, 5)) == (5.0, "px")


@pytest.mark.corpus
def test_real_projection_and_ultrasound_files(corpus_dir):
    def read(rel: str) -> Dataset:
        return pydicom.dcmread(corpus_dir / rel, stop_before_pixels=True)

    mg = calibration_for(read("radiography_mammo/MG_Explicit_Little.dcm"))
    # Pixel Spacing 0.25 (FIDUCIAL) wins over Imager Pixel Spacing 0.5 / ERMF 1.5
    assert (mg.row_mm, mg.source) == (0.25, SOURCE_PIXEL_SPACING) and "FIDUCIAL" in mg.detail
    dx = calibration_for(read("radiography_mammo/dx_image.dcm"))
    assert dx.row_mm == pytest.approx(1.2) and dx.col_mm == pytest.approx(1.2012)
    assert "equals Imager Pixel Spacing" in dx.detail
    us = read("us_multiframe/pydicom_data/OBXXXX1A_2frame.dcm")
    cal = calibration_for(us)
    assert cal.source == SOURCE_US_REGION and cal.row_mm == pytest.approx(0.2622878766)
    # the spectral Doppler strip at the bottom is in seconds, not cm
    assert calibration_for(us, point=(300, 560)).source == SOURCE_NONE
    fmap = calibration_for(read("enhanced_multiframe/philips/IM_0027_fMAP.dcm"), frame_index=5)
    assert (fmap.row_mm, fmap.col_mm) == (4.0, 4.0)
