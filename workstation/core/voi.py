"""Value-of-interest (VOI) transforms: windows (LINEAR, LINEAR_EXACT, SIGMOID) and VOI LUTs.

All functions map modality values (float32) to display values in [0, 1] or straight into a
preallocated uint8 buffer. The formulas are those of PS3.3 C.11.2.1.2.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from workstation.core.frame_attributes import frame_item

FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")


@dataclass(frozen=True)
class Window:
    """A window centre/width with its VOI LUT Function, in modality units."""

    center: float
    width: float
    function: str = "LINEAR"
    explanation: str = ""

    def bounds(self) -> tuple[float, float]:
        """Modality values mapped to the lowest and highest output (for LINEAR_EXACT, exact)."""
        if self.function == "LINEAR":
            lo = self.center - 0.5 - (self.width - 1) / 2
            return lo, lo + max(self.width - 1, 1e-6)
        return self.center - self.width / 2, self.center + self.width / 2

    def describe(self) -> str:
        fn = "" if self.function == "LINEAR" else f" {self.function}"
        text = f"W {self.width:g} L {self.center:g}{fn}"
        return f"{text} ({self.explanation})" if self.explanation else text


@dataclass(frozen=True)
class VoiLut:
    """A VOI LUT from the VOI LUT Sequence."""

    first_mapped: int
    bits: int
    data: np.ndarray = field(repr=False)
    explanation: str = ""

    def describe(self) -> str:
        return f"VOI LUT {self.explanation or ''} ({len(self.data)} entries)".replace("  ", " ")


Voi = Window | VoiLut


def _as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple, MultiValue)):
        return list(value)
    return [value]


def _windows_in(item: Dataset) -> list[Window]:
    centers = _as_list(item.get("WindowCenter"))
    widths = _as_list(item.get("WindowWidth"))
    explanations = _as_list(item.get("WindowCenterWidthExplanation"))
    function = str(item.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()
    if function not in FUNCTIONS:
        function = "LINEAR"
    out = []
    for i, (c, w) in enumerate(zip(centers, widths, strict=False)):
        try:
            c, w = float(c), float(w)
        except (TypeError, ValueError):
            continue
        if w <= 0 or (function == "LINEAR" and w < 1):
            continue  # invalid per PS3.3 C.11.2.1.2; skip rather than divide by zero
        expl = str(explanations[i]) if i < len(explanations) else ""
        out.append(Window(c, w, function, expl))
    return out


def _luts_in(item: Dataset) -> list[VoiLut]:
    out = []
    for lut in item.get("VOILUTSequence", []) or []:
        desc = _as_list(lut.get("LUTDescriptor"))
        if len(desc) != 3 or "LUTData" not in lut:
            continue
        n, first, bits = (int(x) for x in desc)
        n = n or 65536
        raw = lut["LUTData"].value
        if isinstance(raw, (bytes, bytearray)):
            dtype = np.uint8 if bits <= 8 and len(raw) == n else np.uint16
            data = np.frombuffer(raw, dtype=dtype)
        else:
            data = np.asarray(_as_list(raw), dtype=np.uint16)
        data = data[:n].astype(np.float32)
        # Some writers declare fewer bits than the data use: trust the data (as DCMTK does).
        real_bits = max(bits, int(np.ceil(np.log2(float(data.max()) + 1))) if data.size else bits)
        out.append(VoiLut(first, real_bits, data, str(lut.get("LUTExplanation", ""))))
    return out


def voi_choices(ds: Dataset, frame_index: int | None = None) -> list[Voi]:
    """Every VOI the file offers for a frame, windows first, then VOI LUTs, in file order."""
    item = frame_item(ds, frame_index, "FrameVOILUTSequence")
    source = item if item is not None and "WindowCenter" in item else ds
    return [*_windows_in(source), *_luts_in(ds)]


def minmax_window(values: np.ndarray, exclude: np.ndarray | None = None) -> Window:
    """A window spanning the minimum to the maximum of ``values`` (padding excluded)."""
    v = values[~exclude] if exclude is not None and exclude.any() else values
    if v.size == 0:
        v = values
    lo, hi = float(v.min()), float(v.max())
    # LINEAR maps [c-0.5-(w-1)/2, c-0.5+(w-1)/2] onto the output range: choose c, w to hit lo, hi.
    width = max(hi - lo + 1, 1.0)
    center = lo + 0.5 + (width - 1) / 2
    return Window(center, width, "LINEAR", "min-max")


def apply_window(
    values: np.ndarray,
    window: Window,
    out: np.ndarray | None = None,
    scratch: np.ndarray | None = None,
) -> np.ndarray:
    """Map modality values through ``window`` into uint8 [0, 255].

    ``out`` (uint8) and ``scratch`` (float32) of the image's shape may be passed to avoid
    allocations on the interactive path; the result is written into ``out`` and returned.
    """
    if out is None:
        out = np.empty(values.shape, np.uint8)
    if scratch is None:
        scratch = np.empty(values.shape, np.float32)
    c, w = window.center, window.width
    if window.function == "SIGMOID":
        np.subtract(values, c, out=scratch)
        np.multiply(scratch, -4.0 / w, out=scratch)
        np.clip(scratch, -80, 80, out=scratch)
        np.exp(scratch, out=scratch)
        np.add(scratch, 1.0, out=scratch)
        np.divide(255.0, scratch, out=scratch)
    else:
        if window.function == "LINEAR_EXACT":
            lo, scale = c - w / 2, 255.0 / w
        elif w <= 1:  # LINEAR with width 1 is a threshold at c - 0.5
            lo, scale = c - 0.5, 255.0 * 1e6
        else:
            lo, scale = c - 0.5 - (w - 1) / 2, 255.0 / (w - 1)
        np.subtract(values, lo, out=scratch)
        np.multiply(scratch, scale, out=scratch)
        np.clip(scratch, 0.0, 255.0, out=scratch)
    np.add(scratch, 0.5, out=scratch)
    np.copyto(out, scratch, casting="unsafe")
    return out


def apply_voi_lut(values: np.ndarray, lut: VoiLut, out: np.ndarray | None = None) -> np.ndarray:
    """Map modality values through a VOI LUT into uint8 [0, 255]."""
    idx = np.clip(np.rint(values) - lut.first_mapped, 0, len(lut.data) - 1).astype(np.intp)
    scaled = lut.data * (255.0 / float(2**lut.bits - 1))
    table = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    result = table[idx]
    if out is not None:
        out[...] = result
        return out
    return result
