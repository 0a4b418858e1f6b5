"""The measuring and annotation tools of a viewport: drawing, selecting, moving, handle editing,
deleting, undo/redo, and the measurements shown beside each graphic.

One :class:`AnnotationTools` per :class:`~workstation.ui.viewport.Viewport`. The viewport hands it
the mouse when the left button is bound to one of :data:`TOOLS` (the toolbar sets
``Viewport.left_tool``) or while a drawing is in progress, and asks it to paint. The annotations
themselves live in an :class:`~workstation.core.annotation_store.AnnotationStore` per series
(shared by the viewports on that series through an
:class:`~workstation.core.annotation_store.AnnotationLibrary`); an applied presentation state
swaps in its own store (:meth:`AnnotationTools.set_override`) and leaving it swaps the user's back.

Gestures (the left button):

* length, arrow: drag from one end to the other, or click both ends;
* angle: three clicks (end, vertex, end), or drag the first arm then click the other end;
* Cobb: two lines, each dragged or clicked end to end;
* ellipse, rectangle, circle: drag a box (a circle: from the centre);
* freehand: drag around the region; polygon: click the corners, double-click (or click the first
  corner, or Enter) to close;
* probe: press to read the value under the cursor, release to leave it as a point;
* text: click where the words go and type them (Enter keeps them, Escape drops them);
* select (and any tool, on a handle or on the selected annotation): drag a handle to reshape,
  drag the body to move; a double-click on a text edits its words.

Escape cancels a drawing or a drag in progress, else clears the selection.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QMouseEvent, QPainter
from PySide6.QtWidgets import QLineEdit

from workstation.core.annotation_shapes import hit, with_handle
from workstation.core.annotation_store import AnnotationLibrary, AnnotationStore
from workstation.core.annotations import (
    Annotation,
    ImageRef,
    Layer,
    ellipse_from_box,
    new_annotation,
)
from workstation.core.calibration import calibration_for
from workstation.core.measurements import measure, modality_unit
from workstation.ui.annotation_painter import paint_annotations, paint_shutter

if TYPE_CHECKING:
    from workstation.ui.viewport import Viewport

TOOLS: dict[str, str] = {
    "select": "Select, move and edit annotations",
    "length": "Length",
    "angle": "Angle (three clicks: end, vertex, end)",
    "cobb": "Cobb angle (two lines)",
    "ellipse": "Elliptical ROI",
    "rectangle": "Rectangular ROI",
    "circle": "Circular ROI (drag from the centre)",
    "freehand": "Freehand ROI (drag around the region)",
    "polygon": "Polygon ROI (click the corners, double-click to close)",
    "probe": "Point probe (value and patient position)",
    "arrow": "Arrow (drag from the label to the finding)",
    "text": "Text",
}
"""The left-button tools, with what the toolbar tip says."""

_CLICK_COUNTS = {"length": 2, "arrow": 2, "angle": 3, "cobb": 4}
_BOX_TOOLS = ("ellipse", "rectangle", "circle")
_DRAG_MIN = 3.0  # screen pixels a press must move to count as a drag
_CLOSE_PX = 8.0  # a polygon click this close to the first corner closes it
_FREEHAND_STEP = 2.5  # screen pixels between freehand points
_SCROLLBAR = 12  # the viewport's scroll bar on the right, and a little air


def _viewport_text_areas(w: float, h: float) -> list[QRectF]:
    """Where the viewport writes its own text (corner text, orientation labels, the scale bar on
    the right): measurement labels keep clear of these when they can."""
    line = max(12.0, min(17.0, h / 40))
    cw = 0.42 * w
    return [
        QRectF(0, 0, cw, 5 * line),
        QRectF(w - cw, 0, cw, 4 * line),
        QRectF(0, h - 4.5 * line, cw, 4.5 * line),
        QRectF(w - cw, h - 4 * line, cw, 4 * line),
        QRectF(w / 2 - 20, 0, 40, 1.6 * line),
        QRectF(w / 2 - 20, h - 1.6 * line, 40, 1.6 * line),
        QRectF(0, h / 2 - line, 30, 2 * line),
        QRectF(w - 120, h / 2 - line, 120, h * 0.3),
    ]


class AnnotationTools(QObject):
    """The tool state machine of one viewport.

    Parameters
    ----------
    viewport : Viewport
        The widget it draws on and reads the model, frame and renderer of.
    library : AnnotationLibrary, optional
        The stores by series; a private one when not given.
    """

    def __init__(self, viewport: Viewport, library: AnnotationLibrary | None = None) -> None:
        super().__init__(viewport)
        self.viewport = viewport
        self.library = library or AnnotationLibrary()
        self.layers: dict[str, Layer] = {}
        self._override: AnnotationStore | None = None
        self._shutter_for: Callable[[ImageRef], Any] | None = None
        self._draw: dict[str, Any] | None = None  # drawing in progress
        self._edit: dict[str, Any] | None = None  # drag of an existing annotation
        self._probe: Annotation | None = None
        self._last_edit: str | None = None
        self._editor: QLineEdit | None = None
        self._boxes: dict = {}
        self._tried: set[tuple[str, Annotation]] = set()
        self._watched: AnnotationStore | None = None
        self._unwatch = None
        viewport.model.subscribe(self._model_changed)

    # --- which store ------------------------------------------------------------------------------
    def store(self) -> AnnotationStore | None:
        """The store of what the viewport shows: the applied presentation state's, else the
        series'."""
        if self._override is not None:
            return self._override
        src = self.viewport.model.source
        if src is None:
            return None
        return self._watch(self.library.store(src.uid))

    def _watch(self, store: AnnotationStore) -> AnnotationStore:
        if store is not self._watched:
            if self._unwatch is not None:
                self._unwatch()
            self._watched = store
            self._unwatch = store.subscribe(lambda *_: self.viewport.update())
        return store

    def set_override(
        self,
        store: AnnotationStore | None,
        layers: dict[str, Layer] | None = None,
        shutter_for: Callable[[ImageRef], Any] | None = None,
    ) -> None:
        """Show and edit ``store`` instead of the series' own (an applied presentation state),
        in its ``layers``, with the shutter ``shutter_for(image)`` gives; None goes back to the
        user's annotations."""
        self.cancel()
        self._override = store
        self.layers = dict(layers or {})
        self._shutter_for = shutter_for
        if store is not None:
            self._watch(store)
        self.viewport.update()

    # --- the current image --------------------------------------------------------------------------
    def current_image(self) -> ImageRef | None:
        """The image (and frame) on screen as an :class:`ImageRef`."""
        m = self.viewport.model
        src = m.source
        if src is None or not m.count:
            return None
        ref = src.frames[m.state.index]
        ds = src.header(m.state.index)
        uid = ref.sop_instance_uid or str(ds.get("SOPInstanceUID", "") or "")
        frame = ref.frame_index + 1 if ref.frame_index is not None else None
        return ImageRef(uid, frame, str(ds.get("SOPClassUID", "") or ""))

    def annotations_here(self) -> list[Annotation]:
        store, ref = self.store(), self.current_image()
        if store is None or ref is None:
            return []
        return store.for_image(ref)

    def measure(self, a: Annotation) -> Any | None:
        """Measure ``a`` on the frame on screen (None when the frame is not decoded yet or the
        kind measures nothing)."""
        m = self.viewport.model
        src = m.source
        r = self.viewport.current_renderer()
        if src is None or r is None or a.kind in ("arrow", "text"):
            return None
        i = m.state.index
        ds = src.header(i)
        point = a.points[0] if str(ds.get("Modality", "")).upper() == "US" else None
        cal = calibration_for(ds, src.frames[i].frame_index, point)
        return measure(
            a,
            cal,
            values=None if r.is_color else r.modality,
            value_unit=modality_unit(ds),
            plane=src.plane(i),
        )

    def _measure_into(self, store: AnnotationStore, a: Annotation) -> None:
        key = (a.uid, a)
        if key in self._tried:
            return
        self._tried.add(key)
        try:
            value = self.measure(a)
        except ValueError:
            value = None
        if value is not None or self.viewport.current_renderer() is not None:
            store.set_measurement(a, value)
        else:
            self._tried.discard(key)  # the frame is not there yet: try at the next paint

    # --- painting ------------------------------------------------------------------------------
    @property
    def override(self) -> AnnotationStore | None:
        """The store of the applied presentation state, None when the user's own is shown."""
        return self._override

    def paint(self, painter: QPainter, matrix: np.ndarray, annotations: bool = True) -> None:
        """Draw the shutter of an applied presentation state, then (when ``annotations``) the
        annotations of the image on screen, the one being drawn and the probe."""
        ref = self.current_image()
        if self._shutter_for is not None and ref is not None:
            shutter = self._shutter_for(ref)
            geo = self.viewport.model.geometry()
            if shutter is not None and geo is not None:
                paint_shutter(painter, matrix, shutter, QSize(geo.cols, geo.rows))
        store = self.store()
        if store is None or not annotations:
            return
        shown = self.annotations_here()
        for a in shown:
            if store.measurement(a.uid) is None:
                self._measure_into(store, a)
        measurements = {a.uid: store.measurement(a.uid) for a in shown}
        extra = [x for x in (self._preview(), self._probe) if x is not None]
        for a in extra:
            try:
                measurements[a.uid] = self.measure(a)
            except ValueError:
                measurements[a.uid] = None
        w, h = float(self.viewport.width() - _SCROLLBAR), float(self.viewport.height())
        self._boxes = paint_annotations(
            painter,
            matrix,
            [*shown, *extra],
            layers=self.layers,
            measurements={k: v for k, v in measurements.items() if v is not None},
            selected=store.selected,
            bounds=QRectF(0.0, 0.0, w, h),
            avoid=_viewport_text_areas(w, h),
        )

    # --- mouse -------------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """A drawing or a drag is in progress."""
        return self._draw is not None or self._edit is not None or self._probe is not None

    def _image(self, pos: QPointF) -> tuple[float, float] | None:
        return self.viewport.image_point(pos.x(), pos.y())

    def press(self, tool: str | None, event: QMouseEvent) -> bool:
        """A mouse press; True when the tools took it."""
        if event.button() != Qt.MouseButton.LeftButton:
            if self.busy:
                self.cancel()
                return True
            return False
        if self._draw is not None:
            self._draw_press(event.position())
            return True
        if tool not in TOOLS:
            return False
        store, ref, pt = self.store(), self.current_image(), self._image(event.position())
        if store is None or ref is None or pt is None:
            return True
        self._commit_text()
        matrix = self.viewport.model.transform()
        here = self.annotations_here()
        grabbed = hit(
            here, matrix, event.position().x(), event.position().y(), selected=store.selected
        )
        if grabbed is None:
            for uid, box in self._boxes.items():
                a = store.get(uid)
                if a is not None and a.kind == "text" and box.contains(event.position()):
                    grabbed = (a, None)
        if grabbed is not None:
            a, h = grabbed
            if tool == "select" or h is not None or a.uid == store.selected:
                store.select(a.uid)
                store.begin("edit handle" if h is not None else "move")
                self._last_edit = a.uid
                self._edit = {"uid": a.uid, "handle": h, "start": pt, "original": a}
                return True
        store.select(None)
        if tool == "select":
            return True
        if tool == "text":
            self._open_text_editor(event.position(), ref, pt)
            return True
        if tool == "probe":
            self._probe = new_annotation("point", [pt], ref)
            self.viewport.update()
            return True
        self._draw = {
            "tool": tool,
            "image": ref,
            "points": [pt],
            "cursor": pt,
            "press": event.position(),
            "pressed": True,
        }
        if tool == "freehand":
            self._draw["last_screen"] = event.position()
        self.viewport.setMouseTracking(True)
        self.viewport.update()
        return True

    def move(self, event: QMouseEvent) -> bool:
        """A mouse move (with or without a button); True when the tools took it."""
        pt = self._image(event.position())
        if pt is None:
            return self.busy
        if self._edit is not None:
            store = self.store()
            e = self._edit
            if e["handle"] is None:
                new = e["original"].moved(pt[0] - e["start"][0], pt[1] - e["start"][1])
            else:
                new = with_handle(e["original"], e["handle"], pt)
            if store is not None and e["uid"] in store:
                store.replace(new)
            return True
        if self._probe is not None:
            self._probe = Annotation(self._probe.uid, "point", (pt,), self._probe.image)
            self.viewport.update()
            return True
        d = self._draw
        if d is None:
            return False
        d["cursor"] = pt
        if d["tool"] == "freehand" and d["pressed"]:
            last = d["last_screen"]
            if math.dist((last.x(), last.y()), (event.position().x(), event.position().y())) >= (
                _FREEHAND_STEP
            ):
                d["points"].append(pt)
                d["last_screen"] = event.position()
        self.viewport.update()
        return True

    def release(self, event: QMouseEvent) -> bool:
        """A button release; True when the tools took it."""
        if event.button() != Qt.MouseButton.LeftButton:
            return self.busy
        pt = self._image(event.position())
        if self._edit is not None:
            store = self.store()
            self._edit = None
            if store is not None:
                store.commit()
                current = store.get(e_uid) if (e_uid := self._last_edit) else None
                if current is not None:
                    self._measure_into(store, current)
            return True
        if self._probe is not None:
            probe = self._probe
            if pt is not None:
                probe = Annotation(probe.uid, "point", (pt,), probe.image)
            self._probe = None
            store = self.store()
            if store is not None:
                store.add(probe, "probe")
                store.select(probe.uid)
                self._measure_into(store, probe)
            return True
        d = self._draw
        if d is None:
            return False
        d["pressed"] = False
        if pt is None:
            return True
        dragged = (
            math.dist(
                (d["press"].x(), d["press"].y()), (event.position().x(), event.position().y())
            )
            >= _DRAG_MIN
        )
        tool = d["tool"]
        if tool == "freehand":
            if len(d["points"]) >= 3:
                self._finish(new_annotation("polygon", d["points"], d["image"]), "freehand")
            else:
                self.cancel()
        elif tool in _BOX_TOOLS or tool in _CLICK_COUNTS:
            if dragged:
                d["points"].append(pt)
            self._maybe_finish()
        self.viewport.update()
        return True

    def double_click(self, event: QMouseEvent) -> bool:
        """A double-click: closes a polygon, edits a text; True when the tools took it."""
        d = self._draw
        if d is not None and d["tool"] == "polygon":
            self._close_polygon()
            return True
        if d is not None:  # a quick second click of a two-click drawing
            self._draw_press(event.position())
            return True
        if self.viewport.left_tool not in TOOLS:
            return False
        store = self.store()
        if store is None:
            return False
        for uid, box in self._boxes.items():
            a = store.get(uid)
            if a is not None and a.kind == "text" and box.contains(event.position()):
                self._open_text_editor(event.position(), a.image, a.points[0], editing=a)
                return True
        return self.busy or self.viewport.left_tool not in (None, "select")

    def _draw_press(self, pos: QPointF) -> None:
        d = self._draw
        pt = self._image(pos)
        if pt is None:
            return
        d["press"], d["pressed"] = pos, True
        if d["tool"] == "polygon":
            first = self.viewport.model.transform() @ np.array([*d["points"][0], 1.0])
            if len(d["points"]) >= 3 and math.dist(first[:2], (pos.x(), pos.y())) <= _CLOSE_PX:
                self._close_polygon()
                return
            if pt != d["points"][-1]:
                d["points"].append(pt)
            return
        d["points"].append(pt)
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        d = self._draw
        tool, pts = d["tool"], d["points"]
        if tool in _BOX_TOOLS and len(pts) >= 2:
            a = self._box_annotation(tool, pts[0], pts[-1], d["image"])
            if a is None:
                self.cancel()
            else:
                self._finish(a, tool)
        elif tool in _CLICK_COUNTS and len(pts) >= _CLICK_COUNTS[tool]:
            kind = tool
            self._finish(new_annotation(kind, pts[: _CLICK_COUNTS[tool]], d["image"]), tool)

    def _close_polygon(self) -> None:
        d = self._draw
        pts = list(dict.fromkeys(d["points"]))
        if len(pts) >= 3:
            self._finish(new_annotation("polygon", pts, d["image"]), "polygon")
        else:
            self.cancel()

    @staticmethod
    def _box_annotation(tool: str, p0, p1, ref: ImageRef) -> Annotation | None:
        if math.dist(p0, p1) < 0.5:
            return None
        if tool == "rectangle":
            return new_annotation("rectangle", [p0, p1], ref)
        if tool == "circle":
            return new_annotation("circle", [p0, p1], ref)
        if abs(p1[0] - p0[0]) < 0.25 or abs(p1[1] - p0[1]) < 0.25:
            return None
        return new_annotation("ellipse", ellipse_from_box(p0, p1), ref)

    def _finish(self, a: Annotation, label: str) -> None:
        self._draw = None
        self.viewport.setMouseTracking(False)
        store = self.store()
        if store is not None:
            store.add(a, label)
            store.select(a.uid)
            self._measure_into(store, a)  # now, while its frame is on screen
        self.viewport.update()

    def _preview(self) -> Annotation | None:
        """The annotation being drawn, up to the cursor (None when it cannot be shown yet)."""
        d = self._draw
        if d is None:
            return None
        tool, pts, cur, ref = d["tool"], list(d["points"]), d["cursor"], d["image"]
        try:
            if tool in _BOX_TOOLS:
                a = self._box_annotation(tool, pts[0], cur, ref)
            elif tool == "freehand":
                a = new_annotation("polygon", pts, ref) if len(pts) >= 3 else None
            elif tool == "polygon":
                pts = [*pts, cur] if cur != pts[-1] else pts
                if len(pts) >= 3:
                    a = new_annotation("polygon", pts, ref)
                else:
                    a = new_annotation("length", pts, ref) if len(pts) == 2 else None
            else:
                n = _CLICK_COUNTS[tool]
                pts = [*pts, cur][:n]
                if len(pts) == n:
                    a = new_annotation(tool, pts, ref)
                elif len(pts) >= 2:  # the first arm of an angle, the first line of a Cobb
                    a = new_annotation("length", pts[:2], ref)
                else:
                    a = None
        except ValueError:
            return None
        return a

    # --- keys and commands -------------------------------------------------------------------------
    def cancel(self) -> bool:
        """Escape: drop a drawing, a probe or a drag in progress (True), else nothing (False)."""
        store = self.store() if (self._edit is not None) else None
        was = self.busy or self._editor is not None
        if self._edit is not None and store is not None:
            store.cancel()
        self._edit = None
        self._draw = None
        self._probe = None
        self._close_editor()
        self.viewport.setMouseTracking(False)
        self.viewport.update()
        return was

    def escape(self) -> None:
        """Cancel what is in progress; with nothing in progress, clear the selection."""
        if not self.cancel():
            store = self.store()
            if store is not None:
                store.select(None)

    def delete_selected(self) -> bool:
        store = self.store()
        if store is None or store.selected is None or self.busy:
            return False
        store.remove(store.selected)
        return True

    def undo(self) -> bool:
        self.cancel()
        store = self.store()
        return store.undo() if store is not None else False

    def redo(self) -> bool:
        self.cancel()
        store = self.store()
        return store.redo() if store is not None else False

    def select(self, uid: str | None) -> None:
        store = self.store()
        if store is not None:
            store.select(uid)

    def _model_changed(self, model, what: str) -> None:
        if what in ("source", "index") and (self.busy or self._editor is not None):
            self.cancel()

    # --- text ------------------------------------------------------------------------------------
    def _open_text_editor(
        self, pos: QPointF, ref: ImageRef, pt, editing: Annotation | None = None
    ) -> None:
        self._close_editor()
        edit = QLineEdit(self.viewport)
        edit.setPlaceholderText("Type, Enter to keep, Esc to drop")
        edit.setStyleSheet(
            "QLineEdit { background: rgba(0,0,0,170); color: rgb(255,220,60);"
            " border: 1px solid rgb(255,220,60); padding: 1px 3px; }"
        )
        if editing is not None:
            edit.setText(editing.text)
            edit.selectAll()
        edit.setMinimumWidth(180)
        edit.adjustSize()
        x = min(max(int(pos.x()), 0), max(self.viewport.width() - edit.width() - 12, 0))
        y = min(max(int(pos.y()) - edit.height() // 2, 0), max(self.viewport.height() - 24, 0))
        edit.move(x, y)
        edit.installEventFilter(self)
        edit.returnPressed.connect(self._commit_text)
        self._editor = edit
        self._text_target = (ref, pt, editing)
        edit.show()
        edit.setFocus()

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt override
        if obj is self._editor and event.type() == QEvent.Type.KeyPress:
            if event.key() == Qt.Key.Key_Escape:
                self._close_editor()
                self.viewport.setFocus()
                return True
        if obj is self._editor and event.type() == QEvent.Type.FocusOut:
            self._commit_text()
        return False

    @property
    def text_editor(self) -> QLineEdit | None:
        """The in-place editor while a text is being typed (tests type into it)."""
        return self._editor

    def _commit_text(self) -> None:
        edit = self._editor
        if edit is None:
            return
        words = edit.text().strip()
        ref, pt, editing = self._text_target
        self._close_editor()
        store = self.store()
        if store is None or not words:
            return
        if editing is not None:
            current = store.get(editing.uid)
            if current is not None and current.text != words:
                store.replace(current.with_text(words), "edit text")
            return
        a = new_annotation("text", [pt], ref, text=words)
        store.add(a, "text")
        store.select(a.uid)
        self.viewport.setFocus()

    def _close_editor(self) -> None:
        edit, self._editor = self._editor, None
        if edit is not None:
            edit.removeEventFilter(self)
            edit.hide()
            edit.deleteLater()
        self.viewport.update()
