"""The viewer area: a grid of viewports (1x1 to 4x4, 1+2, 1+3) and what links them.

Links between viewports, all driven from the active one:

* **reference lines**: the active frame's plane drawn on every other viewport with the same
  Frame of Reference and another orientation;
* **synchronised scrolling**: by patient position (same Frame of Reference, parallel planes: the
  nearest slice) or by index (the same number of frames forward or back);
* **linked window/level and zoom** (optional);
* **locate**: a click at a point moves every other viewport on that Frame of Reference to the
  slice nearest the point and marks it.

Two series in different Frames of Reference (a current study and its prior) link through a
one-click registration (:mod:`workstation.core.registration`): :meth:`ViewerArea.begin_registration`,
then a click on the same anatomy in each; scrolling, reference lines and locate then map patient
points through the stored translation.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QGridLayout, QWidget

from workstation.core.annotation_store import AnnotationLibrary
from workstation.core.comparison import ShownStudy, study_tags
from workstation.core.frame_source import FrameSource
from workstation.core.geometry import ImagePlane
from workstation.core.registration import (
    RegistrationBook,
    registration_from_points,
    space_key,
)
from workstation.core.viewport_model import ViewportModel
from workstation.ui.frame_service import FrameService
from workstation.ui.viewport import Viewport

MAX_VIEWPORTS = 16
SYNC_MODES = ("position", "index", "off")


def layout_cells(name: str) -> list[tuple[int, int, int, int]]:
    """Grid cells ``(row, col, row_span, col_span)`` for a layout name.

    ``RxC`` (rows x columns, 1..4 each), ``1+2`` (one large on the left, two stacked on the
    right) and ``1+3`` (one large, three stacked).
    """
    if name in ("1+2", "1+3"):
        k = int(name[-1])
        return [(0, 0, k, 1)] + [(i, 1, 1, 1) for i in range(k)]
    try:
        rows, cols = (int(x) for x in name.lower().split("x"))
    except ValueError as exc:
        raise ValueError(f"unknown layout {name!r}: use RxC (e.g. 2x2), 1+2 or 1+3") from exc
    if not (1 <= rows <= 4 and 1 <= cols <= 4):
        raise ValueError(f"layout {name!r}: rows and columns must be 1 to 4")
    return [(r, c, 1, 1) for r in range(rows) for c in range(cols)]


LAYOUTS = ("1x1", "1x2", "2x1", "2x2", "1+2", "1+3", "2x3", "3x3", "3x4", "4x4")


def _frame_of_reference(source: FrameSource | None, index: int) -> str:
    if source is None or not len(source):
        return ""
    return str(source.header(index).get("FrameOfReferenceUID", "") or "")


def _space(model: ViewportModel) -> str:
    """The patient space of a viewport's current frame (see :func:`space_key`)."""
    if model.source is None or not model.count:
        return ""
    ds = model.source.header(model.state.index)
    return space_key(
        str(ds.get("FrameOfReferenceUID", "") or ""), str(ds.get("SeriesInstanceUID", "") or "")
    )


def _shifted(plane: ImagePlane, translation: np.ndarray) -> ImagePlane:
    return ImagePlane(
        plane.origin + translation, plane.row_dir, plane.col_dir, plane.spacing_rc, plane.rows,
        plane.cols,
    )  # fmt: skip


class ViewerArea(QWidget):
    """Hosts the viewports; the window talks to it, it talks to the models."""

    active_changed = Signal(object)
    layout_changed = Signal(str)
    action_requested = Signal(str)
    #: A sentence for the status bar (registration steps and results).
    message = Signal(str)

    def __init__(
        self,
        service: FrameService,
        bindings=None,
        presets=None,
        cine_fps: float = 15.0,
        parent: QWidget | None = None,
        registrations: RegistrationBook | None = None,
    ) -> None:
        super().__init__(parent)
        self.service = service
        self.registrations = registrations if registrations is not None else RegistrationBook()
        #: Sync groups of a hanging protocol: when any are set, only viewports of the active
        #: one's group scroll with it. A new layout clears them.
        self.sync_groups: dict[Viewport, str] = {}
        self._registering: dict | None = None
        self.sync_mode = "position"
        self.link_window = False
        self.link_zoom = False
        self.show_reference_lines = True
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(2)
        self.viewports: list[Viewport] = []
        #: The annotations of every open series, shared by the viewports showing it.
        self.annotations = AnnotationLibrary()
        for _ in range(MAX_VIEWPORTS):
            v = Viewport(service, bindings, presets, cine_fps, self, annotations=self.annotations)
            v.hide()
            v.activated.connect(self.set_active)
            v.double_clicked.connect(self.toggle_maximize)
            v.locate_requested.connect(self._locate_requested)
            v.action_requested.connect(self.handle_action)
            v.model.subscribe(self._model_changed)
            self.viewports.append(v)
        self.active: Viewport = self.viewports[0]
        self.active.active = True
        self.layout_name = ""
        self.maximized: Viewport | None = None
        self._syncing = False
        self.set_layout("1x1")

    # --- layout ---------------------------------------------------------------------------------
    def set_layout(self, name: str) -> None:
        """Arrange the viewports; those beyond the layout keep their series for later."""
        cells = layout_cells(name)
        self.maximized = None
        self.sync_groups = {}
        for v in self.viewports:
            self._grid.removeWidget(v)
            v.hide()
        for v, (r, c, rs, cs) in zip(self.viewports, cells, strict=False):
            self._grid.addWidget(v, r, c, rs, cs)
            v.show()
        for i in range(4):
            self._grid.setRowStretch(i, 1 if i < max(r + rs for r, _, rs, _ in cells) else 0)
            self._grid.setColumnStretch(i, 1 if i < max(c + cs for _, c, _, cs in cells) else 0)
        self.layout_name = name
        if self.active not in self.visible():
            self.set_active(self.viewports[0])
        self.layout_changed.emit(name)
        self.update_links()
        self.update_study_tags()

    def visible(self) -> list[Viewport]:
        """The viewports of the layout, in reading order (the maximised one alone when set)."""
        if self.maximized is not None:
            return [self.maximized]
        return self.viewports[: len(layout_cells(self.layout_name))]

    def toggle_maximize(self, viewport: Viewport | None = None) -> None:
        """Show ``viewport`` alone; again to restore the layout."""
        viewport = viewport or self.active
        if self.maximized is not None:
            self.set_layout(self.layout_name)
            self.set_active(viewport)
            return
        for v in self.viewports:
            if v is not viewport:
                v.hide()
        self._grid.removeWidget(viewport)
        self._grid.addWidget(viewport, 0, 0, 4, 4)
        viewport.show()
        self.maximized = viewport
        self.update_study_tags()
        self.set_active(viewport)

    def set_active(self, viewport: Viewport) -> None:
        if viewport is self.active:
            return
        self.active.active = False
        self.active.update()
        self.active = viewport
        viewport.active = True
        viewport.update()
        self.active_changed.emit(viewport)
        self.update_links()

    def next_viewport(self) -> None:
        vis = self.visible()
        i = vis.index(self.active) if self.active in vis else -1
        self.set_active(vis[(i + 1) % len(vis)])
        self.active.setFocus()

    def handle_action(self, action: str) -> None:
        if action == "viewport.maximize":
            self.toggle_maximize()
        elif action == "viewport.next":
            self.next_viewport()
        elif action == "sync.toggle":
            self.sync_mode = "off" if self.sync_mode != "off" else "position"
            self.action_requested.emit("sync.changed")
        elif action == "sync.register":
            self.begin_registration()
        elif action == "reference_lines.toggle":
            self.show_reference_lines = not self.show_reference_lines
            self.update_links()
        else:
            self.action_requested.emit(action)

    # --- showing series -------------------------------------------------------------------------
    def show_source(
        self, source: FrameSource, viewport: Viewport | None = None, index: int = 0
    ) -> Viewport:
        """Show ``source`` in ``viewport`` (default: the active one) and load it in the background."""
        viewport = viewport or self.active
        viewport.model.set_source(source, index)
        self.service.load(source)
        return viewport

    def ensure_room(self, count: int) -> None:
        """Switch to the smallest grid with at least ``count`` viewports (at most 4x4) when the
        current layout has fewer."""
        if count <= len(self.visible()):
            return
        for name in ("1x2", "2x2", "2x3", "3x3", "3x4", "4x4"):
            if len(layout_cells(name)) >= count or name == "4x4":
                self.set_layout(name)
                return

    def first_free(self) -> Viewport:
        """The first visible viewport with nothing in it, else the active one."""
        for v in self.visible():
            if v.model.source is None:
                return v
        return self.active

    # --- links -----------------------------------------------------------------------------------
    def _model_changed(self, model: ViewportModel, what: str) -> None:
        if what == "source":
            self.update_study_tags()
        if self._syncing:
            return
        if model is not self.active.model:
            if what in ("index", "source"):
                self.update_links()
            return
        self._syncing = True
        try:
            if what == "index":
                self._sync_scroll()
            elif what in ("voi", "view") and (self.link_window or self.link_zoom):
                for v in self.visible():
                    if v is not self.active and v.model.source is not None:
                        v.model.copy_view_from(
                            model, window=self.link_window and what == "voi", zoom=self.link_zoom
                        )
        finally:
            self._syncing = False
        if what in ("index", "source"):
            self.update_links()

    def translation(self, source: ViewportModel, target: ViewportModel) -> np.ndarray | None:
        """What to add to a patient point of ``source`` to get the same anatomy in ``target``:
        zero in the same space, the registration's translation between registered spaces, None
        when they cannot be linked."""
        a, b = _space(source), _space(target)
        if not a or not b:
            return None
        if a == b:
            return np.zeros(3)
        reg = self.registrations.get(a, b)
        return None if reg is None else np.asarray(reg.translation, dtype=float)

    def _sync_scroll(self) -> None:
        a = self.active.model
        if self.sync_mode == "off" or a.source is None:
            return
        plane = a.source.plane(a.state.index)
        group = self.sync_groups.get(self.active)
        for v in self.visible():
            m = v.model
            if v is self.active or m.source is None:
                continue
            if self.sync_groups and (group is None or self.sync_groups.get(v) != group):
                continue
            if self.sync_mode == "index":
                if m.source is not a.source:
                    m.set_index(a.state.index * max(m.count - 1, 0) // max(a.count - 1, 1))
                continue
            other = m.source.plane(m.state.index)
            shift = self.translation(a, m)
            if (
                plane is None
                or other is None
                or shift is None
                or not plane.same_orientation(other, tol=0.05)
            ):
                continue
            centre = plane.pixel_to_patient((plane.cols - 1) / 2, (plane.rows - 1) / 2)
            j = m.source.nearest_to(np.asarray(centre, dtype=float).reshape(3) + shift)
            if j is not None:
                m.set_index(j)

    def update_study_tags(self) -> None:
        """Tag each viewport CURRENT or PRIOR when it shares the screen with another study of the
        same patient (dates shown prominently so that the two are never confused)."""
        shown = []
        for v in self.visible():
            m = v.model
            if m.source is None or not m.count:
                continue
            ds = m.source.header(0)
            shown.append(
                ShownStudy(
                    id(v),
                    str(ds.get("PatientID", "") or ""),
                    str(ds.get("StudyInstanceUID", "") or ""),
                    str(ds.get("StudyDate", "") or ""),
                    str(ds.get("StudyTime", "") or ""),
                )
            )
        tags = study_tags(shown)
        for v in self.viewports:
            tag = tags.get(id(v))
            if tag != v.study_tag:
                v.study_tag = tag
                v.update()

    def update_links(self) -> None:
        """Reference lines of the active frame on the other viewports."""
        a = self.active.model
        plane = a.source.plane(a.state.index) if a.source is not None and a.count else None
        for v in self.viewports:
            lines = []
            m = v.model
            if (
                self.show_reference_lines
                and v is not self.active
                and plane is not None
                and m.source is not None
                and m.count
            ):
                mine = m.source.plane(m.state.index)
                shift = self.translation(a, m)
                if mine is not None and shift is not None:
                    theirs = _shifted(plane, shift) if np.any(shift) else plane
                    seg = mine.intersection_with(theirs, clip_to_other=True)
                    if seg is not None:
                        lines.append(seg)
            if lines != v.reference_lines:
                v.reference_lines = lines
                v.update()

    def _locate_requested(self, viewport: Viewport, col: float, row: float) -> None:
        if self._registering is not None:
            self._registration_click(viewport, col, row)
        else:
            self.locate(viewport, col, row)

    def locate(self, viewport: Viewport, col: float, row: float) -> None:
        """Move the other viewports in the same (or a registered) space to the clicked point."""
        m = viewport.model
        plane = m.source.plane(m.state.index) if m.source is not None else None
        if plane is None:
            return
        point = np.asarray(plane.pixel_to_patient(col, row), dtype=float).reshape(3)
        viewport.locate_point = (col, row)
        viewport.update()
        self._syncing = True
        try:
            for v in self.visible():
                o = v.model
                if v is viewport or o.source is None:
                    continue
                shift = self.translation(m, o)
                if shift is None:
                    continue
                target_point = point + shift
                j = o.source.nearest_to(target_point)
                if j is None:
                    continue
                o.set_index(j)
                target = o.source.plane(j)
                c, r, _ = target.patient_to_pixel(target_point)
                v.locate_point = (float(c), float(r))
                v.update()
        finally:
            self._syncing = False
        self.update_links()

    def locate_patient_point(self, frame_of_reference: str, point) -> None:
        """Move the viewports in (or registered to) ``frame_of_reference`` to the slice nearest
        the patient ``point`` and mark it (the MPR crosshair drives this)."""
        point = np.asarray(point, dtype=float).reshape(3)
        self._syncing = True
        try:
            for v in self.visible():
                m = v.model
                if m.source is None or not m.count:
                    continue
                space = _space(m)
                if space == frame_of_reference:
                    target_point = point
                else:
                    reg = self.registrations.get(frame_of_reference, space)
                    if reg is None:
                        continue
                    target_point = reg.apply(point)
                j = m.source.nearest_to(target_point)
                if j is None:
                    continue
                m.set_index(j)
                c, r, _ = m.source.plane(j).patient_to_pixel(target_point)
                v.locate_point = (float(c), float(r))
                v.update()
        finally:
            self._syncing = False
        self.update_links()

    # --- one-click registration ----------------------------------------------------------------
    def begin_registration(self) -> None:
        """Start registering two series: the next click (left button) in a viewport marks a
        structure, a click on the same structure in a viewport of another space completes it.
        Escape-like cancel: :meth:`cancel_registration`."""
        self._registering = {"first": None, "tools": {}}
        for v in self.visible():
            self._registering["tools"][v] = v.left_tool
            v.left_tool = "locate"
        self.message.emit("Registration: click a structure in one series")

    def cancel_registration(self) -> None:
        if self._registering is None:
            return
        for v, tool in self._registering["tools"].items():
            v.left_tool = tool
        self._registering = None

    @property
    def registering(self) -> bool:
        return self._registering is not None

    def _registration_click(self, viewport: Viewport, col: float, row: float) -> None:
        m = viewport.model
        plane = m.source.plane(m.state.index) if m.source is not None else None
        if plane is None:
            self.message.emit("Registration: this image has no patient geometry; click another")
            return
        point = np.asarray(plane.pixel_to_patient(col, row), dtype=float).reshape(3)
        viewport.locate_point = (col, row)
        viewport.update()
        first = self._registering["first"]
        space = _space(m)
        if first is None or first[0] == space:
            self._registering["first"] = (space, point, viewport)
            self.message.emit("Registration: now click the same structure in the other series")
            return
        try:
            reg = registration_from_points(first[0], first[1], space, point)
        except ValueError as exc:
            self.message.emit(f"Registration failed: {exc}")
            self.cancel_registration()
            return
        self.cancel_registration()
        self.registrations.set(reg)
        dz = float(np.dot(reg.translation, plane.normal))
        self.message.emit(
            f"Registered: the series now scroll together (offset {dz:+.1f} mm along the stack)"
        )
        self.set_active(first[2])
        self._syncing = True
        try:
            self._sync_scroll()
        finally:
            self._syncing = False
        self.update_links()
