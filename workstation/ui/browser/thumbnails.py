"""Series thumbnails: the middle image of a series rendered through the viewer's pipeline and
downscaled by area averaging (worker side, no Qt), and a small cache of the Qt pixmaps.

The middle image shows anatomy where the first slice of a stack is often a cap of air; for a
single multi-frame file the middle frame is used. Non-square pixels (Pixel Spacing or Pixel
Aspect Ratio) are corrected so that a thumbnail has the proportions of the image on screen.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from workstation.core.dicom_file import DicomFile
from workstation.core.errors import DicomError
from workstation.core.pipeline import render_frame
from workstation.ui.browser.values import Thumbnail


def _aspect(header) -> float:
    """Physical height / width of one pixel (1.0 when unknown)."""
    try:
        spacing = header.get("PixelSpacing") or header.get("ImagerPixelSpacing")
        if spacing and len(spacing) == 2 and float(spacing[0]) > 0 and float(spacing[1]) > 0:
            return float(spacing[0]) / float(spacing[1])
        ratio = header.get("PixelAspectRatio")
        if ratio and len(ratio) == 2 and float(ratio[0]) > 0 and float(ratio[1]) > 0:
            return float(ratio[0]) / float(ratio[1])
    except (TypeError, ValueError):
        pass
    return 1.0


def downscale(pixels: np.ndarray, size: int, aspect: float = 1.0) -> np.ndarray:
    """Fit ``pixels`` (uint8, (h, w) or (h, w, 3)) within ``size`` x ``size``.

    Area averaging by an integer factor, then nearest sampling to the exact size, which also
    applies ``aspect`` (physical pixel height / width).
    """
    h, w = pixels.shape[:2]
    shown_h = h * aspect
    scale = min(size / shown_h, size / w, 1.0 if aspect == 1.0 else math.inf)
    out_h = max(1, round(shown_h * scale))
    out_w = max(1, round(w * scale))
    factor = max(1, min(h // out_h, w // out_w))
    img = pixels
    if factor > 1:
        hh, ww = (h // factor) * factor, (w // factor) * factor
        img = pixels[:hh, :ww].astype(np.float32)
        shape = (hh // factor, factor, ww // factor, factor) + pixels.shape[2:]
        img = img.reshape(shape).mean(axis=(1, 3))
        img = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    rows = (np.arange(out_h) * img.shape[0] / out_h).astype(np.intp)
    cols = (np.arange(out_w) * img.shape[1] / out_w).astype(np.intp)
    return np.ascontiguousarray(img[rows][:, cols])


def render_thumbnail(series_uid: str, paths: Sequence[str], size: int) -> Thumbnail:
    """Render the middle image of a series (falling back to the first) at most ``size`` px.

    Never raises for a bad file: the returned thumbnail then carries ``error``.
    """
    if not paths:
        return Thumbnail(series_uid, 0, 0, 0, b"", "", error="no files")
    middle = len(paths) // 2
    candidates = [paths[middle]] + ([paths[0]] if middle else [])
    error = ""
    for path in candidates:
        try:
            dicom = DicomFile.open(path)
            frame = dicom.number_of_frames // 2
            image = render_frame(dicom, frame, overlays=False)
            small = downscale(image.pixels, size, _aspect(dicom.header))
        except Exception as exc:  # noqa: BLE001 - a bad file gives a placeholder tile
            error = str(exc) if isinstance(exc, DicomError) else f"{type(exc).__name__}: {exc}"
            continue
        channels = 3 if small.ndim == 3 else 1
        return Thumbnail(
            series_uid, small.shape[1], small.shape[0], channels, small.tobytes(), path
        )
    return Thumbnail(series_uid, 0, 0, 0, b"", candidates[0], error=error)


class ThumbnailCache:
    """Least-recently-used pixmaps (or anything) keyed by series, paths count and size."""

    def __init__(self, capacity: int = 512) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple, object] = OrderedDict()

    def get(self, key: tuple) -> object | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: tuple, value: object) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)
