"""Overlay planes (60xx): separate 1-bit planes in Overlay Data, and bits embedded in pixel data."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np
from pydicom.dataset import Dataset


@dataclass(frozen=True)
class OverlayPlane:
    """One overlay plane rasterised to the image grid for a frame."""

    group: int
    mask: np.ndarray = field(repr=False)  # bool, image shape
    label: str = ""
    kind: str = "G"  # G graphics, R ROI
    embedded: bool = False


def overlay_groups(ds: Dataset) -> list[int]:
    """The overlay groups (6000, 6002, ... 601E) present in ``ds``."""
    return sorted({t.group for t in ds.keys() if 0x6000 <= t.group <= 0x601E and t.group % 2 == 0})


def _plane_bits(
    ds: Dataset, group: int, frame_index: int, stored_raw: np.ndarray | None
) -> np.ndarray | None:
    rows = ds.get((group, 0x0010))
    cols = ds.get((group, 0x0011))
    if rows is None or cols is None or rows.value is None or cols.value is None:
        return None  # an overlay group without its size cannot be placed
    rows, cols = int(rows.value), int(cols.value)
    data = ds.get((group, 0x3000))
    if data is not None and data.value:
        nframes = int(ds.get((group, 0x0015)).value) if (group, 0x0015) in ds else 1
        first = int(ds.get((group, 0x0051)).value) if (group, 0x0051) in ds else 1
        local = frame_index + 1 - first
        if not 0 <= local < max(nframes, 1):
            return None
        bits = np.unpackbits(np.frombuffer(data.value, np.uint8), bitorder="little")
        start = local * rows * cols
        plane = bits[start : start + rows * cols]
        if plane.size < rows * cols:
            return None
        return plane.reshape(rows, cols).astype(bool)
    # Embedded (retired): the overlay lives in an otherwise unused bit of the pixel data.
    bit_pos = ds.get((group, 0x0102))
    if bit_pos is None or stored_raw is None:
        return None
    bit = int(bit_pos.value)
    if stored_raw.shape[:2] != (rows, cols):
        return None
    return ((stored_raw.astype(np.uint32) >> bit) & 1).astype(bool)


def _raw_native_frame(ds: Dataset, frame_index: int) -> np.ndarray | None:
    """The raw stored words of an uncompressed frame, high bits included (for embedded overlays)."""
    elem = ds["PixelData"] if "PixelData" in ds else None
    if elem is None or elem.is_undefined_length:
        return None
    bits = int(ds.get("BitsAllocated", 16))
    if bits not in (8, 16, 32) or int(ds.get("SamplesPerPixel", 1)) != 1:
        return None
    rows, cols = int(ds.Rows), int(ds.Columns)
    dtype = np.dtype(f"u{bits // 8}").newbyteorder(
        ">" if ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.2" else "<"
    )
    n = rows * cols
    buf = np.frombuffer(elem.value, dtype=dtype, count=n, offset=frame_index * n * dtype.itemsize)
    return buf.reshape(rows, cols)


def overlay_planes(
    ds: Dataset,
    frame_index: int,
    image_shape: tuple[int, int],
    groups: Collection[int] | None = None,
) -> list[OverlayPlane]:
    """The overlay planes that apply to a frame, placed on the image grid (Overlay Origin).

    Parameters
    ----------
    ds : Dataset
        The image (its 60xx groups; the pixel data too for embedded overlays).
    frame_index : int
        0-based frame of the image.
    image_shape : (rows, cols)
    groups : collection of int, optional
        Only these overlay groups (e.g. those a presentation state activates); None: every
        group present.
    """
    planes: list[OverlayPlane] = []
    raw = None
    for group in overlay_groups(ds):
        if groups is not None and group not in groups:
            continue
        if (group, 0x3000) not in ds and (group, 0x0102) in ds and raw is None:
            raw = _raw_native_frame(ds, frame_index)
        bits = _plane_bits(ds, group, frame_index, raw)
        if bits is None:
            continue
        origin = ds.get((group, 0x0050))
        try:
            r0, c0 = int(origin.value[0]) - 1, int(origin.value[1]) - 1
        except (AttributeError, TypeError, IndexError, ValueError):
            r0, c0 = 0, 0
        mask = np.zeros(image_shape, bool)
        h, w = bits.shape
        rs, cs = max(r0, 0), max(c0, 0)
        re, ce = min(r0 + h, image_shape[0]), min(c0 + w, image_shape[1])
        if re > rs and ce > cs:
            mask[rs:re, cs:ce] = bits[rs - r0 : re - r0, cs - c0 : ce - c0]
        label_el = ds.get((group, 0x1500))
        type_el = ds.get((group, 0x0040))
        planes.append(
            OverlayPlane(
                group=group,
                mask=mask,
                label=str(label_el.value) if label_el else "",
                kind=str(type_el.value) if type_el else "G",
                embedded=(group, 0x3000) not in ds,
            )
        )
    return planes


def select_planes(
    planes: Sequence[OverlayPlane], groups: Collection[int] | None
) -> list[OverlayPlane]:
    """The planes of ``planes`` whose group is in ``groups`` (all of them when None)."""
    if groups is None:
        return list(planes)
    return [p for p in planes if p.group in groups]


def burn_in(image: np.ndarray, planes: list[OverlayPlane], value: int = 255) -> np.ndarray:
    """Draw overlay planes onto an 8-bit display image (in place) and return it."""
    for plane in planes:
        if image.ndim == 3:
            image[plane.mask] = (value, value, value)
        else:
            image[plane.mask] = value
    return image
