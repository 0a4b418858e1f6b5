"""A 2D viewport showing one MPR plane, with the crosshair drawn on it and dragged on it.

Everything a :class:`~workstation.ui.viewport.Viewport` does (window/level, zoom, pan, scroll,
measurements, corner text, orientation labels, scale bar) works unchanged: the frames come from a
:class:`~workstation.render.reformat_source.ReformatSource`. On top, the other two planes are
drawn as lines through the crosshair point in their colours (dashed lines mark their slab), and
the left button, when pressed on the crosshair, drags it:

* the centre: moves the point within this plane;
* a line: moves that plane along its normal (the point follows across it);
* a round handle on a line: turns the other two planes about this plane's normal (oblique).

Elsewhere the left button does what the toolbar says (window/level by default).
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPen
from PySide6.QtWidgets import QWidget

from workstation.core.crosshair import VIEWS, CrosshairModel
from workstation.core.geometry import ImagePlane
from workstation.ui.frame_service import FrameService
from workstation.ui.viewport import SCROLLBAR_W, Viewport

#: One colour per plane, drawn as that plane's line in the other views and as the view's frame.
PLANE_COLOURS = {
    "axial": QColor(235, 80, 80),
    "coronal": QColor(90, 200, 100),
    "sagittal": QColor(90, 150, 245),
}
GRAB_CENTRE_PX = 12.0
GRAB_LINE_PX = 6.0
HANDLE_RADIUS_PX = 5.0
HANDLE_FRACTION = 0.38  # handles sit this fraction of the shorter viewport side from the centre
_CENTRE_GAP_PX = 10.0
#: Left-button tools under which the crosshair may be grabbed (not while measuring).
_NAVIGATION_TOOLS = (None, "window_level", "pan", "zoom", "scroll", "locate", "crosshair")


class MprViewport(Viewport):
    """One plane of the MPR workspace.

    Parameters
    ----------
    view : str
        ``axial``, ``coronal`` or ``sagittal``: the plane family this viewport shows.
    crosshair : CrosshairModel
        The shared crosshair.
    service, bindings, presets, parent
        As for :class:`~workstation.ui.viewport.Viewport`.
    """

    def __init__(
        self,
        view: str,
        crosshair: CrosshairModel,
        service: FrameService,
        bindings=None,
        presets=None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(service, bindings, presets, parent=parent)
        if view not in VIEWS:
            raise ValueError(f"unknown MPR view {view!r}: one of {VIEWS}")
        self.view = view
        self.crosshair = crosshair
        self.show_crosshair = True
        self._xdrag: dict | None = None
        crosshair.subscribe(lambda *_: self.request_paint())

    # --- geometry on screen ---------------------------------------------------------------------
    def current_plane(self) -> ImagePlane | None:
        """The plane of the frame on screen."""
        src = self.model.source
        if src is None or not self.model.count:
            return None
        return src.plane(self.model.state.index)

    def _to_screen(self, plane: ImagePlane, matrix: np.ndarray, xyz: np.ndarray) -> np.ndarray:
        c, r, _ = plane.patient_to_pixel(xyz)
        return (matrix @ np.array([c, r, 1.0]))[:2]

    def crosshair_on_screen(self) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
        """The crosshair centre in viewport pixels and, per other view, the unit screen
        direction of its line (None when nothing is shown)."""
        plane, matrix = self.current_plane(), self.model.transform()
        if plane is None or matrix is None:
            return None
        p = self.crosshair.point
        centre = self._to_screen(plane, matrix, p)
        dirs = {}
        for other in VIEWS:
            if other == self.view:
                continue
            try:
                d = self.crosshair.line_direction(self.view, other)
            except ValueError:
                continue
            s = self._to_screen(plane, matrix, p + d * 10.0) - centre
            n = float(np.hypot(*s))
            if n > 1e-9:
                dirs[other] = s / n
        return centre, dirs

    def _handle_distance(self) -> float:
        return HANDLE_FRACTION * min(self.width() - SCROLLBAR_W, self.height())

    def handles(self) -> list[tuple[str, np.ndarray]]:
        """``(other view, screen position)`` of the rotation handles, two per line."""
        shown = self.crosshair_on_screen()
        if shown is None:
            return []
        centre, dirs = shown
        r = self._handle_distance()
        return [(o, centre + sign * r * d) for o, d in dirs.items() for sign in (1.0, -1.0)]

    # --- painting ---------------------------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().paintEvent(event)
        if not self.show_crosshair:
            return
        shown = self.crosshair_on_screen()
        if shown is None:
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.setClipRect(1, 1, self.width() - SCROLLBAR_W - 2, self.height() - 2)
        centre, dirs = shown
        reach = 2.0 * math.hypot(self.width(), self.height())
        plane, matrix = self.current_plane(), self.model.transform()
        half_slab = self.crosshair.slab_mm / 2
        for other, d in dirs.items():
            colour = PLANE_COLOURS[other]
            pen = QPen(colour)
            pen.setWidthF(1.3)
            p.setPen(pen)
            c = QPointF(*centre)
            dq = QPointF(*d)
            p.drawLine(c + dq * _CENTRE_GAP_PX, c + dq * reach)
            p.drawLine(c - dq * _CENTRE_GAP_PX, c - dq * reach)
            if half_slab > 0:
                n = self.crosshair.normal(other)
                off = self._to_screen(plane, matrix, self.crosshair.point + n * half_slab) - centre
                dashed = QPen(colour)
                dashed.setWidthF(1.0)
                dashed.setStyle(Qt.PenStyle.DashLine)
                p.setPen(dashed)
                for sign in (1.0, -1.0):
                    o = c + QPointF(*(sign * off))
                    p.drawLine(o - dq * reach, o + dq * reach)
            p.setPen(pen)
            p.setBrush(QColor(colour.red(), colour.green(), colour.blue(), 90))
            for sign in (1.0, -1.0):
                h = c + dq * (sign * self._handle_distance())
                p.drawEllipse(h, HANDLE_RADIUS_PX, HANDLE_RADIUS_PX)
            p.setBrush(Qt.BrushStyle.NoBrush)
        frame = QPen(PLANE_COLOURS[self.view])
        frame.setWidthF(3.0 if self.active else 1.5)
        p.setClipping(False)
        p.setPen(frame)
        p.drawLine(QPointF(1, 1), QPointF(60, 1))  # the view's own colour, top-left edge
        p.drawLine(QPointF(1, 1), QPointF(1, 40))
        p.end()

    # --- mouse ----------------------------------------------------------------------------------------
    def _grab(self, pos: np.ndarray) -> dict | None:
        """What a left press at viewport ``pos`` takes hold of, if anything."""
        shown = self.crosshair_on_screen()
        if shown is None:
            return None
        centre, dirs = shown
        if float(np.hypot(*(pos - centre))) <= GRAB_CENTRE_PX:
            return {"kind": "centre"}
        for _other, h in self.handles():
            if float(np.hypot(*(pos - h))) <= HANDLE_RADIUS_PX + 4:
                return {"kind": "rotate", "angle": self._image_angle(pos)}
        for other, d in dirs.items():
            rel = pos - centre
            across = abs(float(rel[0] * d[1] - rel[1] * d[0]))
            if across <= GRAB_LINE_PX:
                return {"kind": "line", "other": other}
        return None

    def _image_angle(self, pos: np.ndarray) -> float:
        """Angle of ``pos`` about the crosshair, in this plane's image coordinates
        (``atan2(row, col)``, the sense of :meth:`CrosshairModel.rotate`)."""
        plane = self.current_plane()
        c0, r0, _ = plane.patient_to_pixel(self.crosshair.point)
        pt = self.image_point(float(pos[0]), float(pos[1]))
        return math.atan2(pt[1] - r0, pt[0] - c0)

    def patient_at(self, x: float, y: float) -> np.ndarray | None:
        """The patient point under viewport ``(x, y)`` on the plane shown."""
        plane, pt = self.current_plane(), self.image_point(x, y)
        if plane is None or pt is None:
            return None
        return np.asarray(plane.pixel_to_patient(pt[0], pt[1]), float).reshape(3)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if (
            self.show_crosshair
            and event.button() == Qt.MouseButton.LeftButton
            and not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
            and self.left_tool in _NAVIGATION_TOOLS
            and event.position().x() < self.width() - SCROLLBAR_W
        ):
            pos = np.array([event.position().x(), event.position().y()])
            grab = self._grab(pos)
            if grab is not None:
                self.activated.emit(self)
                self.setFocus()
                self._xdrag = grab
                return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        g = self._xdrag
        if g is None:
            super().mouseMoveEvent(event)
            return
        x, y = event.position().x(), event.position().y()
        target = self.patient_at(x, y)
        if target is None:
            return
        if g["kind"] == "centre":
            self.crosshair.set_point(target)
        elif g["kind"] == "line":
            n = self.crosshair.normal(g["other"])
            p = self.crosshair.point
            self.crosshair.set_point(p + n * float(np.dot(target - p, n)))
        elif g["kind"] == "rotate":
            angle = self._image_angle(np.array([x, y]))
            delta = math.remainder(angle - g["angle"], 2 * math.pi)
            g["angle"] = angle
            self.crosshair.rotate(self.view, delta)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if self._xdrag is not None:
            self._xdrag = None
            return
        super().mouseReleaseEvent(event)
