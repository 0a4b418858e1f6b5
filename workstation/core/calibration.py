"""Which pixel spacing a distance measurement may use, and why.

A measurement tool must not silently turn pixels into millimetres with the wrong attribute: in
projection radiography the detector spacing (Imager Pixel Spacing) overstates anatomy by the
geometric magnification, and ultrasound calibrates per region of the screen. :func:`calibration_for`
picks the attribute, and says which one it took, so the viewer can show it beside the number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset

from workstation.core.frame_attributes import frame_attribute

PROJECTION_MODALITIES = frozenset({"CR", "DX", "MG", "IO", "XA", "RF", "RG", "PX"})

SOURCE_PIXEL_SPACING = "PixelSpacing"
SOURCE_IMAGER = "ImagerPixelSpacing"
SOURCE_IMAGER_ERMF = "ImagerPixelSpacing corrected by EstimatedRadiographicMagnificationFactor"
SOURCE_SCANNED = "NominalScannedPixelSpacing"
SOURCE_US_REGION = "UltrasoundRegion"
SOURCE_NONE = "none"

_US_UNITS = {
    0: "none",
    1: "percent",
    2: "dB",
    3: "cm",
    4: "seconds",
    5: "hertz",
    6: "dB/seconds",
    7: "cm/sec",
    8: "cm2",
    9: "cm2/sec",
    0xA: "cm3",
    0xB: "cm3/sec",
    0xC: "degrees",
}


@dataclass(frozen=True)
class Calibration:
    """Millimetres per pixel for measurements on one image (or frame / ultrasound region).

    Attributes
    ----------
    row_mm : float or None
        Distance between adjacent rows (vertical step), mm; None when uncalibrated.
    col_mm : float or None
        Distance between adjacent columns (horizontal step), mm; None when uncalibrated.
    source : str
        One of ``PixelSpacing``, ``ImagerPixelSpacing``, ``ImagerPixelSpacing corrected by
        EstimatedRadiographicMagnificationFactor``, ``NominalScannedPixelSpacing``,
        ``UltrasoundRegion`` or ``none`` (measure in pixels).
    detail : str
        A sentence for the user: which attribute, what it means, caveats.
    """

    row_mm: float | None
    col_mm: float | None
    source: str
    detail: str

    @property
    def calibrated(self) -> bool:
        """True when both spacings are known."""
        return self.row_mm is not None and self.col_mm is not None


def _pair(value: Any) -> tuple[float, float] | None:
    """Two positive finite floats from a DICOM value, else None."""
    if value is None:
        return None
    try:
        vals = [float(v) for v in value] if not isinstance(value, (int, float)) else [float(value)]
    except (TypeError, ValueError):
        return None
    if len(vals) == 1:
        vals = vals * 2  # tolerate a VM 1 value (seen in the wild)
    if len(vals) != 2 or not all(math.isfinite(v) and v > 0 for v in vals):
        return None
    return vals[0], vals[1]


def _fmt(pair: tuple[float, float]) -> str:
    return f"{pair[0]:g} x {pair[1]:g} mm"


def _uncalibrated(why: str) -> Calibration:
    return Calibration(None, None, SOURCE_NONE, f"{why}; measurements are in pixels")


def _scanned(ds: Dataset) -> Calibration | None:
    """Calibration of a digitised film from Nominal Scanned Pixel Spacing, if present."""
    scanned = _pair(ds.get("NominalScannedPixelSpacing"))
    if scanned is None:
        return None
    return Calibration(
        scanned[0],
        scanned[1],
        SOURCE_SCANNED,
        f"Nominal Scanned Pixel Spacing {_fmt(scanned)} of the digitised film",
    )


def _projection(ds: Dataset, frame_index: int | None) -> Calibration:
    ps = _pair(frame_attribute(ds, frame_index, "PixelMeasuresSequence", "PixelSpacing"))
    ips = _pair(ds.get("ImagerPixelSpacing")) or _pair(
        frame_attribute(ds, frame_index, "XRayGeometrySequence", "ImagerPixelSpacing")
    )
    if ps is not None:
        detail = f"Pixel Spacing {_fmt(ps)}"
        kind = ds.get("PixelSpacingCalibrationType")
        if kind:
            desc = ds.get("PixelSpacingCalibrationDescription")
            detail += f", calibrated ({kind}{': ' + str(desc) if desc else ''})"
        else:
            detail += ", calibration plane not stated"
        if ips is not None and all(
            math.isclose(a, b, rel_tol=1e-4) for a, b in zip(ps, ips, strict=True)
        ):
            detail += "; equals Imager Pixel Spacing, so it may be at the detector, not the patient"
        return Calibration(ps[0], ps[1], SOURCE_PIXEL_SPACING, detail)
    if ips is not None:
        try:
            ermf = float(ds.get("EstimatedRadiographicMagnificationFactor") or 0)
        except (TypeError, ValueError):
            ermf = 0.0
        if math.isfinite(ermf) and ermf > 0:
            corr = (ips[0] / ermf, ips[1] / ermf)
            return Calibration(
                corr[0],
                corr[1],
                SOURCE_IMAGER_ERMF,
                f"Imager Pixel Spacing {_fmt(ips)} divided by Estimated Radiographic "
                f"Magnification Factor {ermf:g} = {_fmt(corr)} (estimated at the patient)",
            )
        return Calibration(
            ips[0],
            ips[1],
            SOURCE_IMAGER,
            f"Imager Pixel Spacing {_fmt(ips)} at the detector; not corrected for geometric "
            "magnification, so distances in the patient are overstated",
        )
    scanned = _scanned(ds)
    if scanned is not None:
        return scanned
    return _uncalibrated("no Pixel Spacing or Imager Pixel Spacing")


def _region_contains(region: Dataset, point: tuple[float, float]) -> bool:
    try:
        x0, y0 = float(region.RegionLocationMinX0), float(region.RegionLocationMinY0)
        x1, y1 = float(region.RegionLocationMaxX1), float(region.RegionLocationMaxY1)
    except (AttributeError, TypeError, ValueError):
        return False
    return x0 <= point[0] <= x1 and y0 <= point[1] <= y1


def _ultrasound(ds: Dataset, point: tuple[float, float] | None) -> Calibration | None:
    regions = list(ds.get("SequenceOfUltrasoundRegions") or [])
    if not regions:
        return None
    if point is not None:
        chosen = [(i, r) for i, r in enumerate(regions) if _region_contains(r, point)]
        if not chosen:
            return _uncalibrated(f"point ({point[0]:g}, {point[1]:g}) lies in no ultrasound region")
        index, region = chosen[0]
    else:
        spatial = [
            (i, r)
            for i, r in enumerate(regions)
            if r.get("PhysicalUnitsXDirection") == 3 and r.get("PhysicalUnitsYDirection") == 3
        ]
        if not spatial:
            return _uncalibrated(f"none of {len(regions)} ultrasound regions is in cm")
        index, region = spatial[0]
    ux, uy = region.get("PhysicalUnitsXDirection"), region.get("PhysicalUnitsYDirection")
    if ux != 3 or uy != 3:
        names = (_US_UNITS.get(ux, str(ux)), _US_UNITS.get(uy, str(uy)))
        return _uncalibrated(
            f"ultrasound region {index + 1} has units {names[0]} x {names[1]}, not cm"
        )
    try:
        dx, dy = abs(float(region.PhysicalDeltaX)), abs(float(region.PhysicalDeltaY))
    except (AttributeError, TypeError, ValueError):
        return _uncalibrated(f"ultrasound region {index + 1} has no usable Physical Delta X/Y")
    if not (dx > 0 and dy > 0 and math.isfinite(dx) and math.isfinite(dy)):
        return _uncalibrated(f"ultrasound region {index + 1} has Physical Delta 0")
    return Calibration(
        dy * 10.0,
        dx * 10.0,
        SOURCE_US_REGION,
        f"ultrasound region {index + 1} of {len(regions)}: Physical Delta X {dx:g} cm, "
        f"Y {dy:g} cm per pixel",
    )


def calibration_for(
    ds: Dataset, frame_index: int | None = None, point: tuple[float, float] | None = None
) -> Calibration:
    """The calibration a distance measurement on this image should use.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        The header (pixels not needed).
    frame_index : int, optional
        0-based frame of an enhanced multi-frame object (Pixel Measures functional group).
    point : (col, row), optional
        For ultrasound: the pixel where the measurement starts; the region containing it is used.
        Without it, the first region calibrated in cm.

    Returns
    -------
    Calibration
        Rules: projection radiography (CR, DX, MG, IO, XA, RF) prefers Pixel Spacing, then Imager
        Pixel Spacing divided by the Estimated Radiographic Magnification Factor, then Imager Pixel
        Spacing alone; ultrasound uses the Sequence of Ultrasound Regions (cm -> mm); everything
        else uses Pixel Spacing (per-frame, shared or top level); any modality falls back to
        Nominal Scanned Pixel Spacing; otherwise ``source == 'none'``.
    """
    modality = str(ds.get("Modality") or "").upper()
    if modality in PROJECTION_MODALITIES:
        return _projection(ds, frame_index)
    if modality == "US" or "SequenceOfUltrasoundRegions" in ds:
        cal = _ultrasound(ds, point)
        if cal is not None:
            return cal
    ps = _pair(frame_attribute(ds, frame_index, "PixelMeasuresSequence", "PixelSpacing"))
    if ps is not None:
        where = (
            "Pixel Measures functional group"
            if ("SharedFunctionalGroupsSequence" in ds or "PerFrameFunctionalGroupsSequence" in ds)
            else "Pixel Spacing"
        )
        return Calibration(
            ps[0], ps[1], SOURCE_PIXEL_SPACING, f"{where} {_fmt(ps)} in the patient plane"
        )
    scanned = _scanned(ds)
    if scanned is not None:
        return scanned
    if modality == "US":
        return _uncalibrated("ultrasound image without calibrated regions")
    return _uncalibrated("no Pixel Spacing")


def length_mm(
    cal: Calibration, p0: tuple[float, float], p1: tuple[float, float]
) -> tuple[float, str]:
    """Length of the segment ``p0``-``p1`` (pixel ``(col, row)`` coordinates).

    Returns
    -------
    (value, unit)
        ``unit`` is ``'mm'`` when ``cal`` is calibrated, else ``'px'``.
    """
    dc, dr = float(p1[0]) - float(p0[0]), float(p1[1]) - float(p0[1])
    if cal.row_mm is not None and cal.col_mm is not None:
        return math.hypot(dc * cal.col_mm, dr * cal.row_mm), "mm"
    return math.hypot(dc, dr), "px"
