"""The model of one viewport: which frames it shows and its :class:`ViewState`, with notifications.

The Qt widget draws a model and turns mouse and keys into calls on it; it never owns the state
(DESIGN rule 1). Listeners are called as ``listener(model, what)`` where ``what`` is ``'source'``,
``'index'``, ``'voi'`` or ``'view'`` (zoom, pan, rotation, flip, invert).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from workstation.core.frame_source import FrameSource
from workstation.core.pipeline import FrameRenderer
from workstation.core.view_state import (
    ImageGeometry,
    ViewState,
    display_transform,
    zoom_about,
)
from workstation.core.voi import Voi, Window

Listener = Callable[["ViewportModel", str], None]


def auto_window(renderer: FrameRenderer) -> Window | None:
    """A window over the 0.5th to 99.5th percentile of the frame's values, padding excluded."""
    if renderer.is_color:
        return None
    values = renderer.modality
    mask = renderer.padding
    step = max(1, int(np.sqrt(values.size / 65536)))  # about 65k samples are plenty
    sample = values[::step, ::step]
    if mask is not None:
        sample = sample[~mask[::step, ::step]]
    if sample.size == 0:
        return None
    lo, hi = np.percentile(sample, [0.5, 99.5])
    width = max(float(hi - lo), 1.0)
    return Window(float(lo) + width / 2, width, "LINEAR", "auto")


class ViewportModel:
    """State of one viewport; cheap to create, no Qt.

    Attributes
    ----------
    source : FrameSource or None
        What is shown (shared with other viewports on the same display set).
    state : ViewState
        The frozen view state; replaced, never mutated.
    viewport_size : (float, float)
        Logical pixels, set by the widget on resize.
    device_pixel_ratio, screen_px_per_mm : float
        Set by the widget from its screen (for 1:1 and true size).
    """

    def __init__(self) -> None:
        self.source: FrameSource | None = None
        self.state = ViewState()
        self.viewport_size: tuple[float, float] = (512.0, 512.0)
        self.device_pixel_ratio = 1.0
        self.screen_px_per_mm: float | None = None
        self._listeners: list[Listener] = []

    # --- notifications --------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(model, what)`` on every change; returns an unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _notify(self, what: str) -> None:
        for listener in list(self._listeners):
            listener(self, what)

    def _set(self, what: str, **changes) -> None:
        new = replace(self.state, **changes)
        if new != self.state:
            self.state = new
            self._notify(what)

    # --- source and frame -------------------------------------------------------------------------
    @property
    def count(self) -> int:
        return len(self.source) if self.source is not None else 0

    def set_source(self, source: FrameSource | None, index: int = 0) -> None:
        """Show ``source`` from frame ``index`` with a fresh view state."""
        self.source = source
        n = len(source) if source is not None else 0
        self.state = ViewState(index=min(max(index, 0), max(n - 1, 0)))
        self._notify("source")

    def replace_source(self, source: FrameSource, index: int) -> None:
        """Swap in another source (the full stack for a provisional first image), keeping the
        user's window, zoom and orientation."""
        self.source = source
        self.state = replace(self.state, index=min(max(index, 0), max(len(source) - 1, 0)))
        self._notify("source")

    def set_index(self, index: int) -> None:
        if self.count:
            self._set("index", index=min(max(int(index), 0), self.count - 1))

    def scroll(self, delta: int) -> None:
        """Move ``delta`` frames (positive: towards the end), stopping at the ends."""
        self.set_index(self.state.index + delta)

    def geometry(self) -> ImageGeometry | None:
        if self.source is None or not self.count:
            return None
        return self.source.geometry(self.state.index)

    def transform(self) -> np.ndarray | None:
        """Image ``(col, row)`` -> viewport matrix for the current frame (None when empty)."""
        geo = self.geometry()
        if geo is None:
            return None
        return display_transform(
            self.state, geo, self.viewport_size, self.device_pixel_ratio, self.screen_px_per_mm
        )

    # --- window ----------------------------------------------------------------------------------
    def set_voi(self, voi: Voi | None, label: str) -> None:
        self._set("voi", voi=voi, voi_label=label if voi is not None else "file")

    def drag_window(self, start: Window, dx: float, dy: float) -> None:
        """Window/level by a mouse drag of ``(dx, dy)`` pixels from where ``start`` was current.

        Right widens the window, left narrows it; down raises the centre (the image darkens), up
        lowers it. The step is proportional to the starting width (about 1/256 of it per pixel),
        so narrow brain windows and wide lung windows both feel alike.
        """
        step = max(start.width, 1.0) / 256.0
        width = max(start.width + dx * step, 1.0)
        centre = start.center + dy * step
        self.set_voi(Window(centre, width, start.function, ""), "user")

    # --- view ------------------------------------------------------------------------------------
    def zoom_by(self, factor: float, anchor: tuple[float, float] | None = None) -> None:
        geo = self.geometry()
        if geo is None:
            return
        if anchor is None:
            anchor = (self.viewport_size[0] / 2, self.viewport_size[1] / 2)
        new = zoom_about(
            self.state,
            factor,
            anchor,
            geo,
            self.viewport_size,
            self.device_pixel_ratio,
            self.screen_px_per_mm,
        )
        self._set("view", zoom_mode=new.zoom_mode, zoom=new.zoom, pan=new.pan)

    def set_zoom_mode(self, mode: str) -> None:
        """``fit``, ``one_to_one`` or ``true_size`` (centred again)."""
        self._set("view", zoom_mode=mode, pan=(0.0, 0.0))

    def pan_by(self, dx: float, dy: float) -> None:
        x, y = self.state.pan
        self._set("view", pan=(x + dx, y + dy))

    def set_align(self, horizontal: int, vertical: int) -> None:
        """Hold the image against viewport edges when not zoomed freely (see
        :attr:`ViewState.align`): -1 left/top, 0 centred, 1 right/bottom."""
        self._set("view", align=(int(horizontal), int(vertical)))

    def rotate(self, quarter_turns: int) -> None:
        new = self.state.rotated(quarter_turns)
        self._set("view", rotation=new.rotation)

    def flip_horizontal(self) -> None:
        new = self.state.flipped_horizontally()
        self._set("view", rotation=new.rotation, flip=new.flip)

    def flip_vertical(self) -> None:
        new = self.state.flipped_vertically()
        self._set("view", rotation=new.rotation, flip=new.flip)

    def toggle_invert(self) -> None:
        self._set("view", invert=not self.state.invert)

    def reset(self) -> None:
        """Back to the file's window, fitted, unrotated (the frame stays)."""
        self.state = ViewState(index=self.state.index)
        self._notify("voi")
        self._notify("view")

    def set_view(self, state: ViewState) -> None:
        """Take the window, zoom, pan, rotation, flip and invert of ``state`` (the frame stays):
        applying or leaving a presentation state."""
        new = replace(state, index=self.state.index)
        if new == self.state:
            return
        old, self.state = self.state, new
        if (old.voi, old.voi_label) != (new.voi, new.voi_label):
            self._notify("voi")
        self._notify("view")

    def copy_view_from(self, other: ViewportModel, window: bool, zoom: bool) -> None:
        """Linked viewports: take ``other``'s window and/or zoom and pan."""
        changes = {}
        if window and (self.state.voi, self.state.voi_label) != (
            other.state.voi,
            other.state.voi_label,
        ):
            self._set("voi", voi=other.state.voi, voi_label=other.state.voi_label)
        if zoom:
            changes = {
                "zoom_mode": other.state.zoom_mode,
                "zoom": other.state.zoom,
                "pan": other.state.pan,
            }
            self._set("view", **changes)
