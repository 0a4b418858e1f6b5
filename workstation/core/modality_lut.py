"""Stored values to modality values: rescale slope/intercept or the Modality LUT Sequence."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pydicom.dataset import Dataset

from workstation.core.frame_attributes import frame_item


@dataclass(frozen=True)
class ModalityTransform:
    """How one frame's stored values become modality values (HU on CT)."""

    slope: float = 1.0
    intercept: float = 0.0
    lut: np.ndarray | None = field(default=None, repr=False)
    lut_first_mapped: int = 0
    units: str = ""

    @property
    def is_identity(self) -> bool:
        return self.lut is None and self.slope == 1.0 and self.intercept == 0.0

    def describe(self) -> str:
        if self.lut is not None:
            return f"Modality LUT ({len(self.lut)} entries, first {self.lut_first_mapped})"
        if self.is_identity:
            return "identity"
        units = f" -> {self.units}" if self.units else ""
        return f"x * {self.slope:g} + {self.intercept:g}{units}"

    def apply(self, stored: np.ndarray) -> np.ndarray:
        """Modality values of ``stored`` as float32 (a new array)."""
        if self.lut is not None:
            idx = np.clip(stored.astype(np.int64) - self.lut_first_mapped, 0, len(self.lut) - 1)
            return self.lut[idx].astype(np.float32)
        out = stored.astype(np.float32)
        if self.slope != 1.0:
            out *= np.float32(self.slope)
        if self.intercept != 0.0:
            out += np.float32(self.intercept)
        return out


def _float(value, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def modality_transform(ds: Dataset, frame_index: int | None = None) -> ModalityTransform:
    """The modality transform for a frame (functional groups first for enhanced objects)."""
    if int(ds.get("SamplesPerPixel", 1) or 1) > 1:
        return ModalityTransform()
    item = frame_item(ds, frame_index, "PixelValueTransformationSequence")
    source = item if item is not None else ds
    seq = ds.get("ModalityLUTSequence")
    if seq and "RescaleSlope" not in source:
        lut_item = seq[0]
        n, first, _bits = (int(x) for x in lut_item.LUTDescriptor)
        raw = lut_item["LUTData"].value
        data = (
            np.frombuffer(raw, dtype=np.uint16)
            if isinstance(raw, (bytes, bytearray))
            else np.asarray(list(raw), dtype=np.uint16)
        )
        data = data[: (n or 65536)].astype(np.float32)
        return ModalityTransform(
            lut=data, lut_first_mapped=first, units=str(lut_item.get("ModalityLUTType", ""))
        )
    slope = _float(source.get("RescaleSlope", 1.0), 1.0) or 1.0
    intercept = _float(source.get("RescaleIntercept", 0.0), 0.0)
    units = str(source.get("RescaleType", "") or "")
    if not units and str(ds.get("Modality", "")) == "CT" and "RescaleSlope" in source:
        units = "HU"
    return ModalityTransform(slope=slope, intercept=intercept, units=units)


def _padding_range(ds: Dataset, stored_kind: str) -> tuple[int, int] | None:
    """The padding range in stored values (signed when the pixels are)."""
    try:
        a = int(ds.PixelPaddingValue)
        b = int(ds.get("PixelPaddingRangeLimit", a))
    except (TypeError, ValueError):
        return None
    if stored_kind == "i" and int(ds.get("PixelRepresentation", 0)) == 1:
        bits = int(ds.get("BitsAllocated", 16))
        # the padding attributes are stored with the pixel's VR (US or SS), read as unsigned
        a = a - (1 << bits) if a >= 1 << (bits - 1) else a
        b = b - (1 << bits) if b >= 1 << (bits - 1) else b
    return min(a, b), max(a, b)


def padding_mask(ds: Dataset, stored: np.ndarray) -> np.ndarray | None:
    """True where ``stored`` holds Pixel Padding Value (or lies in the padding range)."""
    if "PixelPaddingValue" not in ds or stored.ndim != 2:
        return None
    bounds = _padding_range(ds, stored.dtype.kind)
    if bounds is None:
        return None
    mask = (stored >= bounds[0]) & (stored <= bounds[1])
    return mask if mask.any() else None


def padding_in_values(
    ds: Dataset, values: np.ndarray, transform: ModalityTransform
) -> np.ndarray | None:
    """The padding mask from modality values (``transform`` applied to the padding range)."""
    if "PixelPaddingValue" not in ds or values.ndim != 2 or transform.lut is not None:
        return None
    kind = "i" if int(ds.get("PixelRepresentation", 0)) == 1 else "u"
    bounds = _padding_range(ds, kind)
    if bounds is None:
        return None
    lo, hi = transform.apply(np.array(bounds, np.float64))
    lo, hi = min(lo, hi), max(lo, hi)
    mask = (values >= lo - 1e-3) & (values <= hi + 1e-3)
    return mask if mask.any() else None
