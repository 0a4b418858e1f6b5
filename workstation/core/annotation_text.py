"""The text a viewport prints in its four corners, and the length of its scale bar.

Pure functions of a header and the view, so the layout of the corners is tested without Qt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pydicom.dataset import Dataset

from workstation.core.voi import VoiLut, Window


@dataclass(frozen=True)
class CornerText:
    """Lines for each corner, top to bottom; ``lossy`` asks for the visible lossy mark."""

    top_left: tuple[str, ...]
    top_right: tuple[str, ...]
    bottom_left: tuple[str, ...]
    bottom_right: tuple[str, ...]
    lossy: bool = False


def _s(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    if value is None:
        return ""
    return str(value).strip()


def person_name(value: object) -> str:
    """DICOM PN ``FAMILY^Given^Middle`` as ``FAMILY, Given Middle``."""
    text = str(value or "").split("=")[0]
    parts = [p.strip() for p in text.split("^")]
    family = parts[0] if parts else ""
    given = " ".join(p for p in parts[1:3] if p)
    return f"{family}, {given}" if family and given else family or given


def dicom_date(value: object) -> str:
    """``YYYYMMDD`` as ``YYYY-MM-DD`` (other text unchanged)."""
    text = str(value or "").strip()
    if len(text) == 8 and text.isdigit():
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return text


def dicom_time(value: object) -> str:
    """``HHMMSS.frac`` as ``HH:MM:SS``."""
    text = str(value or "").strip()
    if len(text) >= 4 and text[:4].isdigit():
        hh, mm, ss = text[:2], text[2:4], text[4:6] if len(text) >= 6 else "00"
        return f"{hh}:{mm}:{ss}"
    return text


def _age(ds: Dataset) -> str:
    age = _s(ds, "PatientAge")
    if age:
        return age.lstrip("0") or age
    birth, date = _s(ds, "PatientBirthDate"), _s(ds, "StudyDate")
    if len(birth) == 8 and len(date) == 8 and birth.isdigit() and date.isdigit():
        years = int(date[:4]) - int(birth[:4]) - ((date[4:]) < (birth[4:]))
        return f"{years}Y" if years >= 0 else ""
    return ""


def _mm(value: object) -> str:
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return ""


def window_text(voi: Window | VoiLut | None, label: str) -> str:
    if voi is None:
        return "colour"
    if isinstance(voi, VoiLut):
        return f"VOI LUT {voi.explanation}".strip()
    what = f" ({label})" if label and label not in ("user",) else ""
    return f"W {voi.width:.0f} L {voi.center:.0f}{what}"


def corner_text(
    ds: Dataset,
    *,
    index: int,
    count: int,
    voi: Window | VoiLut | None,
    voi_label: str,
    scale: float,
    rotation: int,
    flip: bool,
    invert: bool,
    lossy: bool,
    frame_label: str = "",
    slice_location: float | None = None,
) -> CornerText:
    """The four corners for one frame.

    ``scale`` is screen pixels per image pixel (shown as a percentage); ``slice_location`` (mm)
    overrides the header's Slice Location when the caller knows the position along the stack.
    """
    sex_age = " ".join(x for x in (_s(ds, "PatientSex"), _age(ds)) if x)
    birth = dicom_date(ds.get("PatientBirthDate"))
    top_left = (
        person_name(ds.get("PatientName")),
        f"ID {_s(ds, 'PatientID')}",
        " ".join(x for x in (birth, sex_age) if x),
        _s(ds, "InstitutionName"),
    )
    study_when = " ".join(
        x for x in (dicom_date(ds.get("StudyDate")), dicom_time(ds.get("StudyTime"))) if x
    )
    top_right = (
        _s(ds, "StudyDescription"),
        study_when,
        f"Acc {_s(ds, 'AccessionNumber')}" if _s(ds, "AccessionNumber") else "",
        " ".join(x for x in (_s(ds, "Manufacturer"), _s(ds, "ManufacturerModelName")) if x),
    )
    series_no = _s(ds, "SeriesNumber")
    series = " ".join(
        x for x in (f"Se {series_no}" if series_no else "", _s(ds, "SeriesDescription")) if x
    )
    loc = slice_location
    if loc is None and "SliceLocation" in ds:
        try:
            loc = float(ds.SliceLocation)
        except (TypeError, ValueError):
            loc = None
    thickness = _mm(ds.get("SliceThickness"))
    position = " ".join(
        x
        for x in (
            f"Loc {loc:.1f} mm" if loc is not None else "",
            f"Thk {thickness} mm" if thickness else "",
        )
        if x
    )
    im = f"Im {index + 1}/{count}"
    inst = _s(ds, "InstanceNumber")
    if inst:
        im += f"  (#{inst})"
    bottom_left = (series, im, frame_label, position)
    transforms = []
    if rotation:
        transforms.append(f"rot {rotation}°")
    if flip:
        transforms.append("flip")
    if invert:
        transforms.append("inverted")
    bottom_right = (
        "LOSSY COMPRESSED" if lossy else "",
        " ".join(transforms),
        f"Zoom {scale * 100:.0f}%",
        window_text(voi, voi_label),
    )
    return CornerText(
        tuple(x for x in top_left if x),
        tuple(x for x in top_right if x),
        tuple(x for x in bottom_left if x),
        tuple(x for x in bottom_right if x),
        lossy,
    )


def scale_bar_mm(mm_per_screen_px: float, max_px: float) -> tuple[float, float] | None:
    """A round length (1, 2, 5 x 10^n mm) whose bar is at most ``max_px`` long: (mm, pixels)."""
    if not mm_per_screen_px > 0 or max_px < 10:
        return None
    limit = mm_per_screen_px * max_px
    exp = math.floor(math.log10(limit))
    for base in (5, 2, 1):
        length = base * 10.0**exp
        if length <= limit:
            return length, length / mm_per_screen_px
    length = 10.0 ** (exp - 1) * 5
    return length, length / mm_per_screen_px
