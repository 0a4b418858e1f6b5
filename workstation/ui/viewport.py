"""One viewport: draws a :class:`ViewportModel` and turns the mouse and keys into model calls.

Painting never decodes: a frame not yet in the cache is requested from the
:class:`~workstation.ui.frame_service.FrameService` and the previous image stays until it arrives
(a late answer for a frame scrolled past is cached but not drawn). Re-windowing writes into
buffers the viewport owns, so scrolling allocates nothing per frame.
"""

from __future__ import annotations

import math
import time

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal, Slot
from PySide6.QtGui import (
    QColor,
    QImage,
    QMouseEvent,
    QPainter,
    QPen,
    QPixmap,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import QWidget

from workstation.core.comparison import StudyTag
from workstation.core.overlays import burn_in, select_planes
from workstation.core.pipeline import FrameRenderer
from workstation.core.view_state import to_image
from workstation.core.viewport_model import ViewportModel, auto_window
from workstation.core.voi import Window
from workstation.ui.annotation_tools import AnnotationTools
from workstation.ui.frame_service import FrameService
from workstation.ui.study_tag import draw_study_tag
from workstation.ui.viewport_text import SCROLLBAR_W, draw_corner_text

#: While the frame to show is still being made, the view repaints (the old image, with moved
#: crosshair, reference lines and text) at most this often: a drag or a fast scroll asks for a
#: repaint at every mouse event, and painting a stale frame 60 times a second in three views
#: starved the GUI thread of the time to paint the frames that landed.
WAITING_REPAINT_S = 0.066
_ACTIVE = QColor(70, 130, 200)
_REFLINE = QColor(240, 210, 60)
_DEFAULT_MOUSE = {
    Qt.MouseButton.LeftButton: "window_level",
    Qt.MouseButton.MiddleButton: "pan",
    Qt.MouseButton.RightButton: "zoom",
}
# Actions the viewport performs itself; the rest go to the window through action_requested.
_LOCAL_ACTIONS = {
    "scroll.next": lambda v: v.model.scroll(1),
    "scroll.previous": lambda v: v.model.scroll(-1),
    "scroll.page_next": lambda v: v.model.scroll(max(1, v.model.count // 10)),
    "scroll.page_previous": lambda v: v.model.scroll(-max(1, v.model.count // 10)),
    "scroll.first": lambda v: v.model.set_index(0),
    "scroll.last": lambda v: v.model.set_index(v.model.count - 1),
    "window.auto": lambda v: v.auto_window(),
    "view.reset": lambda v: v.model.reset(),
    "view.invert": lambda v: v.model.toggle_invert(),
    "view.rotate_cw": lambda v: v.model.rotate(1),
    "view.rotate_ccw": lambda v: v.model.rotate(-1),
    "view.flip_h": lambda v: v.model.flip_horizontal(),
    "view.flip_v": lambda v: v.model.flip_vertical(),
    "view.fit": lambda v: v.model.set_zoom_mode("fit"),
    "view.one_to_one": lambda v: v.model.set_zoom_mode("one_to_one"),
    "view.true_size": lambda v: v.model.set_zoom_mode("true_size"),
    "cine.toggle": lambda v: v.toggle_cine(),
    "cine.faster": lambda v: v.set_cine_fps(v.cine_fps * 1.25),
    "cine.slower": lambda v: v.set_cine_fps(v.cine_fps / 1.25),
    "overlays.toggle": lambda v: v.toggle_overlays(),
    "annotations.toggle": lambda v: v.toggle_annotations(),
    "annotation.delete": lambda v: v.annotation_tools.delete_selected(),
    "annotation.undo": lambda v: v.annotation_tools.undo(),
    "annotation.redo": lambda v: v.annotation_tools.redo(),
    "annotation.cancel": lambda v: v.annotation_tools.escape(),
}


def cine_rate(ds) -> float | None:
    """Frames per second the file asks for: Frame Time, Cine Rate, Recommended Display Rate."""
    for keyword, to_fps in (
        ("FrameTime", lambda v: 1000.0 / v),
        ("CineRate", lambda v: v),
        ("RecommendedDisplayFrameRate", lambda v: v),
    ):
        value = ds.get(keyword)
        try:
            v = float(value)
        except (TypeError, ValueError):
            continue
        if v > 0:
            fps = to_fps(v)
            if 0.5 <= fps <= 240:
                return fps
    return None


class Viewport(QWidget):
    """Draws one :class:`ViewportModel`.

    Signals
    -------
    activated(Viewport)
        A mouse press made this the active viewport.
    double_clicked(Viewport)
        Maximise / restore.
    locate_requested(Viewport, float, float)
        A locate click at image ``(col, row)`` of the current frame.
    action_requested(str)
        A key or button action the window handles (maximise, next viewport, sync, help...).
    painted(Viewport)
        A frame was drawn (tests and the screenshot wait on it).
    """

    activated = Signal(object)
    double_clicked = Signal(object)
    locate_requested = Signal(object, float, float)
    action_requested = Signal(str)
    painted = Signal(object)

    def __init__(
        self,
        service: FrameService,
        bindings=None,
        presets=None,
        cine_fps: float = 15.0,
        parent: QWidget | None = None,
        annotations=None,
    ) -> None:
        super().__init__(parent)
        self.model = ViewportModel()
        self.service = service
        self.bindings = bindings
        self.presets = presets
        self.default_cine_fps = cine_fps
        self.cine_fps = cine_fps
        self.active = False
        #: What the left button does without modifiers when a toolbar tool overrides it.
        self.left_tool: str | None = None
        self.show_overlays = True
        #: Overlay groups drawn when overlays are on (an applied presentation state's
        #: activation); None: every group of the image.
        self.overlay_groups: frozenset[int] | None = None
        self.show_annotations = True
        self.reference_lines: list[tuple[tuple[float, float], tuple[float, float]]] = []
        self.locate_point: tuple[float, float] | None = None
        #: CURRENT / PRIOR label when the viewer shows several studies of the patient.
        self.study_tag: StudyTag | None = None
        self.message = ""
        self.frames_painted = 0
        self._renderer: FrameRenderer | None = None
        self._image: QImage | None = None
        self._image_key: tuple | None = None
        self._buffers: dict[tuple, tuple[np.ndarray, np.ndarray | None]] = {}
        self._drag: dict | None = None
        self._cine = QTimer(self)
        self._cine.timeout.connect(self._cine_step)
        self._last_paint = 0.0
        #: Set by a view's owner while the frame it will show next is being made elsewhere
        #: (the MPR area holds a view on its slice until the next one is ready): repaints are
        #: held back as while waiting for a frame.
        self.frame_pending = False
        #: ``(source uid, index)`` of the last frame painted as the current one (listeners of
        #: :attr:`painted` may already have moved the model on to the next index).
        self.shown_frame: tuple[str, int] | None = None
        self._picture: QPixmap | None = None  # the image as last drawn, see _draw_image
        self._picture_key: tuple | None = None
        self._deferred = QTimer(self)
        self._deferred.setSingleShot(True)
        self._deferred.timeout.connect(self.update)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(False)
        self.setMinimumSize(64, 64)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.model.subscribe(self._changed)
        #: Measuring and annotation tools; ``annotations`` is the AnnotationLibrary shared by
        #: the viewports (a private one when None).
        self.annotation_tools = AnnotationTools(self, annotations)
        service.frame_ready.connect(self._frame_ready)
        service.frame_failed.connect(self._frame_failed)
        service.slices_arrived.connect(self._slices_arrived)

    # --- model wiring -------------------------------------------------------------------------
    def _changed(self, model: ViewportModel, what: str) -> None:
        if what == "source":
            src, r = model.source, self._renderer
            if r is None or src is None or r.key[0] != src.frames[model.state.index].path:
                self._renderer = None  # another series: do not leave the old image up
            self._image_key = None
            self.message = ""
            self.stop_cine()
            if model.source is not None:
                rate = cine_rate(model.source.header(0))
                self.cine_fps = rate or self.default_cine_fps
        self.request_paint()

    def request_paint(self) -> None:
        """``update()``, held back to one repaint per :data:`WAITING_REPAINT_S` while the frame
        to show is not decoded yet (the old one stays up; the new one paints the moment it
        lands, see :meth:`_frame_ready`)."""
        src = self.model.source
        waiting = self.frame_pending or (
            src is not None
            and len(src) > 0
            and self._renderer is not None
            and src.cached(self.model.state.index) is None
        )
        if not waiting:
            self._deferred.stop()
            self.update()
            return
        if self._deferred.isActive():
            return
        wait_s = self._last_paint + WAITING_REPAINT_S - time.monotonic()
        if wait_s <= 0:
            self.update()
        else:
            self._deferred.start(max(1, int(wait_s * 1000)))

    @Slot(str, int)
    def _frame_ready(self, uid: str, index: int) -> None:
        src = self.model.source
        if src is not None and src.uid == uid and index == self.model.state.index:
            self._deferred.stop()
            self.update()

    @Slot(str, int, str)
    def _frame_failed(self, uid: str, index: int, reason: str) -> None:
        src = self.model.source
        if src is not None and src.uid == uid and index == self.model.state.index:
            self.message = reason
            self.update()

    @Slot(str)
    def _slices_arrived(self, uid: str) -> None:
        src = self.model.source
        if src is not None and src.uid == uid:
            self.update()

    def current_renderer(self) -> FrameRenderer | None:
        """The renderer of the frame shown now, if decoded (never blocks)."""
        src = self.model.source
        if src is None or not len(src):
            return None
        return src.cached(self.model.state.index)

    def effective_window(self) -> Window | None:
        """The window in use: the state's, else the frame's default."""
        if isinstance(self.model.state.voi, Window):
            return self.model.state.voi
        r = self.current_renderer() or self._renderer
        if r is None:
            return None
        voi = r.default_voi()
        return voi if isinstance(voi, Window) else None

    # --- actions -----------------------------------------------------------------------------------
    def perform(self, action: str) -> bool:
        """Do a bound action; True when it was one of this viewport's."""
        if action.startswith("preset."):
            self.apply_preset_key(int(action.split(".")[1]))
            return True
        fn = _LOCAL_ACTIONS.get(action)
        if fn is None:
            self.action_requested.emit(action)
            return False
        fn(self)
        return True

    def modality(self) -> str:
        src = self.model.source
        return str(src.header(self.model.state.index).get("Modality", "")) if src else ""

    def apply_preset_key(self, key: int) -> None:
        if self.presets is None or self.model.source is None:
            return
        preset = self.presets.by_key(self.modality(), key)
        if preset is not None:
            self.model.set_voi(
                Window(preset.center, preset.width, "LINEAR", preset.name),
                f"preset {preset.name}",
            )

    def auto_window(self) -> None:
        r = self.current_renderer()
        if r is not None:
            w = auto_window(r)
            if w is not None:
                self.model.set_voi(w, "auto")

    def toggle_overlays(self) -> None:
        self.show_overlays = not self.show_overlays
        self._image_key = None
        self.update()

    def toggle_annotations(self) -> None:
        self.show_annotations = not self.show_annotations
        self.update()

    # --- cine ----------------------------------------------------------------------------------------
    @property
    def cine_running(self) -> bool:
        return self._cine.isActive()

    def toggle_cine(self) -> None:
        if self._cine.isActive():
            self.stop_cine()
        elif self.model.count > 1:
            self._cine.start(max(1, round(1000 / self.cine_fps)))
            self.update()

    def stop_cine(self) -> None:
        self._cine.stop()

    def set_cine_fps(self, fps: float) -> None:
        self.cine_fps = min(max(fps, 1.0), 120.0)
        if self._cine.isActive():
            self._cine.start(max(1, round(1000 / self.cine_fps)))
        self.update()

    def _cine_step(self) -> None:
        src, n = self.model.source, self.model.count
        if src is None or n < 2:
            self.stop_cine()
            return
        nxt = (self.model.state.index + 1) % n
        if src.cached(nxt) is None:  # wait for the frame rather than skip it
            self.service.request(self, src, nxt)
            return
        self.model.set_index(nxt)

    # --- rendering -----------------------------------------------------------------------------------
    def _buffers_for(self, r: FrameRenderer) -> tuple[np.ndarray, np.ndarray | None]:
        key = (r.shape, r.is_color)
        buf = self._buffers.get(key)
        if buf is None:
            if r.is_color:
                buf = (np.empty((*r.shape, 3), np.uint8), None)
            else:
                buf = (np.empty(r.shape, np.uint8), np.empty(r.shape, np.float32))
            self._buffers = {key: buf}  # keep only the current shape
        return buf

    def _image_for(self, r: FrameRenderer) -> QImage:
        st = self.model.state
        groups = self.overlay_groups
        key = (id(r), st.voi, st.invert, self.show_overlays, groups)
        if self._image is not None and key == self._image_key:
            return self._image
        out, scratch = self._buffers_for(r)
        every = self.show_overlays and groups is None
        if r.is_color:
            np.copyto(out, r.render(invert=st.invert, overlays=every).pixels)
        else:
            r.render(voi=st.voi, invert=st.invert, overlays=every, out=out, scratch=scratch)
        if self.show_overlays and groups is not None:
            burn_in(out, select_planes(r.overlay_planes, groups))
        h, w = out.shape[:2]
        if r.is_color:
            img = QImage(out.data, w, h, 3 * w, QImage.Format.Format_RGB888)
        else:
            img = QImage(out.data, w, h, w, QImage.Format.Format_Grayscale8)
        self._image, self._image_key = img, key
        return img

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.model.viewport_size = (float(self.width()), float(self.height()))
        self.model.device_pixel_ratio = self.devicePixelRatioF()
        screen = self.screen()
        if screen is not None and screen.physicalDotsPerInchX() > 0:
            self.model.screen_px_per_mm = screen.logicalDotsPerInchX() / 25.4
        self._last_paint = time.monotonic()
        p = QPainter(self)
        p.fillRect(self.rect(), Qt.GlobalColor.black)
        src = self.model.source
        if src is None or not len(src):
            self._draw_hint(p, "Drop a series here, or double-click one in the browser")
            self._draw_border(p)
            p.end()
            return
        idx = self.model.state.index
        r = src.cached(idx)
        waiting = r is None
        if waiting:
            self.service.request(self, src, idx)
            r = self._renderer
        else:
            self._renderer = r
            self.message = ""
        matrix = self.model.transform()
        geo = self.model.geometry()
        if r is not None and matrix is not None and r.shape == (geo.rows, geo.cols):
            self._draw_image(p, self._image_for(r), matrix)
            self._draw_graphics(p, matrix)
            self.annotation_tools.paint(p, matrix, annotations=self.show_annotations)
        if self.show_annotations:
            draw_corner_text(self, p, matrix, waiting)
        if self.study_tag is not None:
            draw_study_tag(p, self, self.study_tag)
        self._draw_scrollbar(p)
        self._draw_border(p)
        p.end()
        if not waiting:
            self.frames_painted += 1
            self.shown_frame = (src.uid, idx)
            self.painted.emit(self)

    def _draw_image(self, p: QPainter, img: QImage, matrix: np.ndarray) -> None:
        """The image through ``matrix`` (image pixel centres to widget coordinates).

        The transformed, smoothed picture is kept in a widget-sized pixmap: a repaint for
        something drawn over it (the crosshair during a drag, a measurement being drawn, the
        reference lines) blits it instead of scaling the image again (~1.5 ms of a 7 ms paint).
        """
        dpr = self.devicePixelRatioF()
        scale = math.sqrt(abs(np.linalg.det(matrix[:2, :2])))
        smooth = scale * dpr != 1.0
        key = (img.cacheKey(), tuple(np.round(matrix[:2].ravel(), 6)), self.width(),
               self.height(), dpr, smooth)  # fmt: skip
        if key != self._picture_key:
            picture = QPixmap(max(1, round(self.width() * dpr)), max(1, round(self.height() * dpr)))
            picture.setDevicePixelRatio(dpr)
            picture.fill(Qt.GlobalColor.black)
            q = QPainter(picture)
            q.setTransform(QTransform(matrix[0, 0], matrix[1, 0], matrix[0, 1], matrix[1, 1],
                                      matrix[0, 2], matrix[1, 2]))  # fmt: skip
            q.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
            q.drawImage(QRectF(-0.5, -0.5, img.width(), img.height()), img)
            q.end()
            self._picture, self._picture_key = picture, key
        p.drawPixmap(0, 0, self._picture)

    def _draw_hint(self, p: QPainter, text: str) -> None:
        p.setPen(QColor(150, 150, 150))
        p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, text)

    def _draw_border(self, p: QPainter) -> None:
        pen = QPen(_ACTIVE if self.active else QColor(45, 45, 45))
        pen.setWidth(2 if self.active else 1)
        p.setPen(pen)
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(self.rect().adjusted(0, 0, -1, -1))

    def _draw_graphics(self, p: QPainter, matrix: np.ndarray) -> None:
        def screen(c: float, r: float) -> QPointF:
            x, y, _ = matrix @ np.array([c, r, 1.0])
            return QPointF(x, y)

        if self.reference_lines:
            pen = QPen(_REFLINE)
            pen.setWidthF(1.5)
            p.setPen(pen)
            for a, b in self.reference_lines:
                p.drawLine(screen(*a), screen(*b))
        if self.locate_point is not None:
            c = screen(*self.locate_point)
            pen = QPen(QColor(80, 220, 120))
            pen.setWidthF(1.5)
            p.setPen(pen)
            for dx, dy in ((1, 0), (0, 1)):
                p.drawLine(c - QPointF(12 * dx, 12 * dy), c - QPointF(4 * dx, 4 * dy))
                p.drawLine(c + QPointF(4 * dx, 4 * dy), c + QPointF(12 * dx, 12 * dy))

    def _draw_scrollbar(self, p: QPainter) -> None:
        src = self.model.source
        n = len(src) if src is not None else 0
        if n < 2:
            return
        x, h = self.width() - SCROLLBAR_W, self.height()
        p.fillRect(QRectF(x, 0, SCROLLBAR_W, h), QColor(20, 20, 20))
        loaded = src.loaded
        # loaded runs, drawn as bands
        edges = np.flatnonzero(np.diff(np.concatenate(([0], loaded.astype(np.int8), [0]))))
        for a, b in zip(edges[::2], edges[1::2], strict=False):
            p.fillRect(
                QRectF(x + 3, h * a / n, SCROLLBAR_W - 6, h * (b - a) / n), QColor(60, 90, 60)
            )
        i = self.model.state.index
        th = max(6.0, h / n)
        p.fillRect(
            QRectF(x + 1, (h - th) * i / max(n - 1, 1), SCROLLBAR_W - 2, th), QColor(170, 170, 170)
        )

    # --- mouse and keys ---------------------------------------------------------------------------
    def _mouse_action(self, event: QMouseEvent) -> str | None:
        if (
            self.left_tool is not None
            and event.button() == Qt.MouseButton.LeftButton
            and not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        ):
            return self.left_tool
        if self.bindings is not None:
            return self.bindings.mouse_action(event.button(), event.modifiers())
        if (
            event.modifiers() & Qt.KeyboardModifier.ShiftModifier
            and event.button() == Qt.MouseButton.LeftButton
        ):
            return "locate"
        return _DEFAULT_MOUSE.get(event.button())

    def image_point(self, x: float, y: float) -> tuple[float, float] | None:
        m = self.model.transform()
        return None if m is None else to_image(m, x, y)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self.activated.emit(self)
        self.setFocus()
        pos = event.position()
        if self.model.count > 1 and pos.x() >= self.width() - SCROLLBAR_W:
            self._drag = {"action": "scrollbar"}
            self._scrollbar_to(pos.y())
            return
        action = self._mouse_action(event)
        if self.annotation_tools.press(action, event):
            return
        if action is None or self.model.source is None:
            return
        self._drag = {
            "action": action,
            "start": pos,
            "last": pos,
            "window": self.effective_window(),
            "index": self.model.state.index,
        }
        if action == "locate":
            self._locate(pos)

    def _scrollbar_to(self, y: float) -> None:
        n = self.model.count
        self.model.set_index(round(y / max(self.height(), 1) * (n - 1)))

    def _locate(self, pos: QPointF) -> None:
        pt = self.image_point(pos.x(), pos.y())
        if pt is not None:
            self.locate_requested.emit(self, pt[0], pt[1])

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._drag is None and self.annotation_tools.move(event):
            return
        d = self._drag
        if d is None:
            return
        pos = event.position()
        if d["action"] == "scrollbar":
            self._scrollbar_to(pos.y())
            return
        dx, dy = pos.x() - d["start"].x(), pos.y() - d["start"].y()
        step_x, step_y = pos.x() - d["last"].x(), pos.y() - d["last"].y()
        d["last"] = pos
        action = d["action"]
        if action == "window_level" and d["window"] is not None:
            self.model.drag_window(d["window"], dx, dy)
        elif action == "pan":
            self.model.pan_by(step_x, step_y)
        elif action == "zoom":
            self.model.zoom_by(math.exp(-step_y / 150.0), (d["start"].x(), d["start"].y()))
        elif action == "scroll":
            self.model.set_index(d["index"] + round(dy / 6))
        elif action == "locate":
            self._locate(pos)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._drag is None and self.annotation_tools.release(event):
            return
        self._drag = None

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self.annotation_tools.double_click(event):
            return
        self.double_clicked.emit(self)

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        self.activated.emit(self)
        steps = event.angleDelta().y() / 120.0
        if steps == 0:
            return
        if self.bindings is not None:
            action = self.bindings.wheel_action(event.modifiers())
        else:
            action = "zoom" if event.modifiers() & Qt.KeyboardModifier.ControlModifier else "scroll"
        if action == "zoom":
            pos = event.position()
            self.model.zoom_by(1.15**steps, (pos.x(), pos.y()))
        elif action == "scroll":
            self.model.scroll(-round(steps) if abs(steps) >= 1 else (-1 if steps > 0 else 1))
        event.accept()

    def focusNextPrevChild(self, next: bool) -> bool:  # noqa: N802, A002
        return False  # Tab is a binding (next viewport), not focus navigation

    def keyPressEvent(self, event) -> None:  # noqa: N802
        action = self.bindings.action_for_key(event) if self.bindings is not None else None
        if action is None:
            super().keyPressEvent(event)
            return
        self.perform(action)
        event.accept()
