"""The MPR workspace: axial, coronal and sagittal reformats of one volume around a crosshair.

Three :class:`~workstation.ui.mpr.mpr_viewport.MprViewport` (layout ``1+2``: axial large on the
left; ``2x2``: with a slot for the 3D view) share one
:class:`~workstation.core.crosshair.CrosshairModel`:

* moving the crosshair (dragging its centre or a line, a locate click, scrolling a view) puts
  every view on the plane through the point;
* turning the crosshair in one view (its round handles) turns the other two planes: oblique,
  and double oblique after a turn in a second view;
* the slab control (0-100 mm, MIP / MinIP / mean) applies to the three views;
* window/level is linked across the three views (``link_window``);
* :attr:`MprArea.point_changed` carries the crosshair point so the reading window can drive the
  2D viewports' reference lines and locate.

A new orientation or slab makes new frame sources (with new ids: frames still being resliced for
the old ones are dropped); each viewport keeps its image until the new one arrives.
"""

from __future__ import annotations

import logging

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from workstation.core.crosshair import MAX_SLAB_MM, SLAB_MODES, VIEWS, CrosshairModel, PlaneAxes
from workstation.core.frame_cache import FrameCache
from workstation.core.frame_source import FrameSource
from workstation.core.viewport_model import ViewportModel
from workstation.render.reformat_source import MODE_NAMES, ReformatSource, make_spec
from workstation.render.reslice import orthogonal_planes
from workstation.ui.frame_service import FrameService
from workstation.ui.mpr.mpr_viewport import MprViewport
from workstation.ui.mpr.volume_store import SharedVolume, VolumeStore

log = logging.getLogger(__name__)

MPR_LAYOUTS = ("1+2", "2x2")
_CELLS = {
    "1+2": {"axial": (0, 0, 2, 1), "coronal": (0, 1, 1, 1), "sagittal": (1, 1, 1, 1)},
    "2x2": {"axial": (0, 0, 1, 1), "coronal": (0, 1, 1, 1), "sagittal": (1, 0, 1, 1)},
}
#: Milliseconds after the last move of the crosshair before slab views are made at full
#: quality again (while it moves they are drafted at half resolution, see ReformatSource.draft).
DRAFT_SETTLE_MS = 200
_SIZE_QUANTUM = 32  # an oblique plane's matrix grows in steps of this many pixels, never shrinks


class MprArea(QWidget):
    """The MPR workspace.

    Parameters
    ----------
    service : FrameService
        Reslices in its decoder thread (and loads series not loaded yet).
    store : VolumeStore, optional
        Shared volumes (a private one when None).
    bindings, presets : optional
        As for the 2D viewports.
    cache : FrameCache, optional
        Where resliced frames are kept (a private 192 MB one when None).

    Signals
    -------
    point_changed(str frame_of_reference_uid, object point)
        The crosshair moved; ``point`` is a (3,) numpy array, patient mm.
    status(str)
        A line for the status bar (volume being built, what was resampled, why it failed).
    close_requested()
        The user asked to leave the MPR workspace.
    """

    point_changed = Signal(str, object)
    status = Signal(str)
    close_requested = Signal()

    def __init__(
        self,
        service: FrameService,
        store: VolumeStore | None = None,
        bindings=None,
        presets=None,
        cache: FrameCache | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.service = service
        self.store = store if store is not None else VolumeStore(service, parent=self)
        self.cache = cache if cache is not None else FrameCache(192 * 1024 * 1024)
        self.link_window = True
        self.shared: SharedVolume | None = None
        self.crosshair = CrosshairModel((0.0, 0.0, 0.0))
        self.layout_name = ""
        self.maximized: MprViewport | None = None
        self._pending_uid: str | None = None
        self._syncing = False
        self._axes_shown: dict[str, PlaneAxes] = {}
        self._sizes: dict[str, tuple[int, int]] = {}
        self._settle = QTimer(self)
        self._settle.setSingleShot(True)
        self._settle.setInterval(DRAFT_SETTLE_MS)
        self._settle.timeout.connect(self._end_draft)
        service.frame_failed.connect(self._frame_failed)
        self.viewports: dict[str, MprViewport] = {}
        self._build_ui(bindings, presets)
        self.crosshair.subscribe(self._crosshair_changed)
        self.set_layout("1+2")

    # --- construction -------------------------------------------------------------------------
    def _build_ui(self, bindings, presets) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(2)
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 2)
        self.layout_buttons: dict[str, QPushButton] = {}
        for name in MPR_LAYOUTS:
            b = QPushButton(name if name != "2x2" else "2x2 + 3D")
            b.setCheckable(True)
            b.clicked.connect(lambda _=False, n=name: self.set_layout(n))
            bar.addWidget(b)
            self.layout_buttons[name] = b
        bar.addSpacing(12)
        bar.addWidget(QLabel("Slab"))
        self.slab_spin = QDoubleSpinBox()
        self.slab_spin.setRange(0.0, MAX_SLAB_MM)
        self.slab_spin.setDecimals(1)
        self.slab_spin.setSingleStep(1.0)
        self.slab_spin.setSuffix(" mm")
        self.slab_spin.setSpecialValueText("thin")
        self.slab_spin.setKeyboardTracking(False)
        self.slab_spin.valueChanged.connect(lambda v: self.set_slab(v, None))
        bar.addWidget(self.slab_spin)
        self.mode_combo = QComboBox()
        for mode in SLAB_MODES:
            self.mode_combo.addItem(MODE_NAMES[mode], mode)
        self.mode_combo.currentIndexChanged.connect(
            lambda i: self.set_slab(None, self.mode_combo.itemData(i))
        )
        bar.addWidget(self.mode_combo)
        reset = QPushButton("Reset")
        reset.setToolTip("Orthogonal planes through the volume centre")
        reset.clicked.connect(self.reset)
        bar.addWidget(reset)
        bar.addSpacing(12)
        self.info = QLabel("")
        self.info.setStyleSheet("color: #b0b0a0")
        # long notes (what was resampled) must not widen the workspace: clipped, full in the tip
        self.info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        bar.addWidget(self.info, 1)
        close = QPushButton("Close MPR")
        close.clicked.connect(self.close_requested.emit)
        bar.addWidget(close)
        outer.addLayout(bar)
        self.grid_host = QWidget(self)
        self._grid = QGridLayout(self.grid_host)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(2)
        outer.addWidget(self.grid_host, 1)
        for view in VIEWS:
            v = MprViewport(view, self.crosshair, self.service, bindings, presets, self.grid_host)
            v.locate_requested.connect(self._locate)
            v.activated.connect(self._activate)
            v.double_clicked.connect(self.toggle_maximize)
            v.painted.connect(self._caught_up)
            v.model.subscribe(lambda m, what, view=view: self._model_changed(view, m, what))
            self.viewports[view] = v
        self.viewports["axial"].active = True
        self.view_3d: QWidget = QLabel("3D view: not part of this build yet")
        self.view_3d.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.view_3d.setStyleSheet("color: #888; background: black")

    def set_3d_widget(self, widget: QWidget) -> None:
        """Put ``widget`` (the volume rendering view) in the fourth cell of the 2x2 layout."""
        old = self.view_3d
        self._grid.removeWidget(old)
        old.hide()
        old.setParent(None)
        self.view_3d = widget
        self.set_layout(self.layout_name or "1+2")

    # --- layout ---------------------------------------------------------------------------------
    def set_layout(self, name: str) -> None:
        """``1+2`` (axial large, coronal and sagittal stacked) or ``2x2`` (with the 3D view)."""
        if name not in _CELLS:
            raise ValueError(f"unknown MPR layout {name!r}: one of {MPR_LAYOUTS}")
        self.maximized = None
        for w in (*self.viewports.values(), self.view_3d):
            self._grid.removeWidget(w)
            w.hide()
        for view, (r, c, rs, cs) in _CELLS[name].items():
            self._grid.addWidget(self.viewports[view], r, c, rs, cs)
            self.viewports[view].show()
        if name == "2x2":
            self.view_3d.setParent(self.grid_host)
            self._grid.addWidget(self.view_3d, 1, 1, 1, 1)
            self.view_3d.show()
        for i in range(2):
            self._grid.setRowStretch(i, 1)
            self._grid.setColumnStretch(i, 1)
        self.layout_name = name
        for n, b in self.layout_buttons.items():
            b.setChecked(n == name)

    def toggle_maximize(self, viewport: MprViewport | None = None) -> None:
        """Show one view alone; again to restore the layout."""
        if self.maximized is not None:
            self.set_layout(self.layout_name)
            return
        viewport = viewport or self.active_viewport()
        for w in (*self.viewports.values(), self.view_3d):
            if w is not viewport:
                w.hide()
        self._grid.removeWidget(viewport)
        self._grid.addWidget(viewport, 0, 0, 2, 2)
        viewport.show()
        self.maximized = viewport

    def active_viewport(self) -> MprViewport:
        return next((v for v in self.viewports.values() if v.active), self.viewports["axial"])

    def _activate(self, viewport: MprViewport) -> None:
        for v in self.viewports.values():
            if v.active != (v is viewport):
                v.active = v is viewport
                v.update()

    # --- opening --------------------------------------------------------------------------------
    def open_source(self, source: FrameSource) -> None:
        """Reformat ``source`` (a stack): load it if needed, build its volume, show the planes."""
        self._pending_uid = source.uid
        self.info.setText(f"{source.display_set.label}: building the volume…")
        self.status.emit(f"MPR: building the volume of {source.display_set.label}")
        self.store.request(
            source,
            on_ready=lambda shared, uid=source.uid: self._volume_ready(uid, shared),
            on_failed=lambda reason, uid=source.uid: self._volume_failed(uid, reason),
        )

    def _volume_ready(self, uid: str, shared: SharedVolume) -> None:
        if uid == self._pending_uid:
            self.set_volume(shared)

    def _volume_failed(self, uid: str, reason: str) -> None:
        if uid == self._pending_uid:
            self.info.setText(f"cannot reformat: {reason}")
            self.status.emit(f"MPR: cannot reformat: {reason}")

    def set_volume(self, shared: SharedVolume, point=None) -> None:
        """Show ``shared``'s volume, crosshair at ``point`` (default: the volume centre)."""
        self._pending_uid = shared.key
        self.close_sources()
        self.shared = None  # no rebuilds while the crosshair moves to its new home
        vol = shared.volume
        home = {
            name: PlaneAxes(np.array(p.x_axis), np.array(p.y_axis))
            for name, p in orthogonal_planes(vol).items()
        }
        centre = vol.centre_patient() if point is None else np.asarray(point, float)
        self._axes_shown.clear()
        self._sizes.clear()
        self.crosshair.rehome(centre, home)
        self.shared = shared
        self._rebuild_sources(fresh=True)
        notes = "; ".join(vol.notes)
        label = shared.label
        self.info.setText(f"{label}" + (f" — {notes}" if notes else ""))
        self.info.setToolTip("\n".join((label, *vol.notes)))
        self.status.emit(f"MPR of {label}" + (f": {notes}" if notes else ""))
        self._emit_point()

    def close_sources(self) -> None:
        """Forget the frames resliced so far."""
        for v in self.viewports.values():
            src = v.model.source
            if isinstance(src, ReformatSource):
                src.close()

    # --- sources ----------------------------------------------------------------------------------
    def _spec(self, view: str):
        vol = self.shared.volume
        axes = self.crosshair.axes[view]
        oblique = self.crosshair.view_is_oblique(view)
        spec = make_spec(
            vol,
            view,
            axes.x_axis,
            axes.y_axis,
            slab_mm=self.crosshair.slab_mm,
            mode=self.crosshair.mode,
            quantum=_SIZE_QUANTUM if oblique else 1,
            min_size=self._sizes.get(view, (1, 1)) if oblique else (1, 1),
        )
        self._sizes[view] = spec.size
        return spec

    def _rebuild_sources(self, fresh: bool = False, views=VIEWS) -> None:
        shared = self.shared
        if shared is None:
            return
        template = shared.template
        self._syncing = True
        try:
            for view in views:
                old = self.viewports[view].model.source
                src = ReformatSource(
                    shared.volume,
                    shared.reslicer,
                    template,
                    self._spec(view),
                    centre=shared.volume.centre_patient(),
                    lossy=shared.lossy,
                    cache=self.cache,
                    volume_key=shared.key,
                )
                self._axes_shown[view] = self.crosshair.axes[view]
                model = self.viewports[view].model
                index = src.nearest_to(self.crosshair.point)
                if fresh or model.source is None:
                    model.set_source(src, index)
                else:
                    model.replace_source(src, index)
                if isinstance(old, ReformatSource):
                    old.close()
        finally:
            self._syncing = False

    # --- crosshair -> views -----------------------------------------------------------------------
    def _crosshair_changed(self, model: CrosshairModel, what: str) -> None:
        if self.shared is None:
            return
        if what == "axes":
            turned = [v for v in VIEWS if self._axes_shown.get(v) is not model.axes[v]]
            self._rebuild_sources(views=turned)
        elif what == "slab":
            self._rebuild_sources()
            self.slab_spin.blockSignals(True)
            self.slab_spin.setValue(model.slab_mm)
            self.slab_spin.blockSignals(False)
            self.mode_combo.blockSignals(True)
            self.mode_combo.setCurrentIndex(SLAB_MODES.index(model.mode))
            self.mode_combo.blockSignals(False)
        if what == "point" and model.slab_mm > 0:
            self._start_draft()
        if what in ("point", "axes"):
            self._follow_point()
            self._emit_point()

    # --- drafts while moving ------------------------------------------------------------------------
    @property
    def drafting(self) -> bool:
        """Whether slab views are being drafted (the crosshair moved in the last moments)."""
        return self._settle.isActive()

    def _start_draft(self) -> None:
        """The crosshair moves through a slab: draft the slabs until it rests."""
        for v in self.viewports.values():
            if isinstance(v.model.source, ReformatSource):
                v.model.source.draft = True
        self._settle.start()

    def _end_draft(self) -> None:
        """The crosshair rests: make the slabs shown at full quality (the drafts stay up
        until they are ready)."""
        for v in self.viewports.values():
            src = v.model.source
            if isinstance(src, ReformatSource) and src.draft:
                src.draft = False
                if src.cached(v.model.state.index) is None:
                    self.service.request(v, src, v.model.state.index)
                v.update()

    def _follow_point(self, views=None) -> None:
        """Put the views on the slices through the point.

        Flow control: a view that has not painted its slice yet (its frame is being made, or
        made and not yet painted) keeps it and takes the newest point when it has painted it
        (:meth:`_caught_up`). Without it a drag faster than the reslicing would ask for a new
        slice before each answer and show none until the drag stops; with it every view shows a
        new slice as often as one can be made. Waiting for the paint, not only for the frame,
        matters for the cheap views: the axial slab of an axial stack is ready in a few ms, and
        a view that moved on as soon as its frame was made had the decoder make slices it never
        showed (20 mm MIP drag: 96 axial slabs made, 56 painted; /work/notes/s10/drag_trace.py).
        """
        self._syncing = True
        try:
            for name, v in self.viewports.items():
                if views is not None and name not in views:
                    continue
                src = v.model.source
                if not isinstance(src, ReformatSource):
                    continue
                want = src.nearest_to(self.crosshair.point)
                # a view whose slice is not painted yet stays on it and catches up once painted
                index = v.model.state.index
                unseen = src.cached(index) is None or v.shown_frame != (src.uid, index)
                v.frame_pending = want != index and unseen
                if want != v.model.state.index and not v.frame_pending:
                    v.model.set_index(want)
                    if src.cached(want) is None:
                        # ask now, not at the next paint: the slice is often ready by then and
                        # the view paints once, with it
                        self.service.request(v, src, want)
        finally:
            self._syncing = False

    def _caught_up(self, viewport: MprViewport) -> None:
        """``viewport`` painted the frame it waited for (or gave up on it): next slice."""
        if viewport.frame_pending:
            viewport.frame_pending = False
            self._follow_point((viewport.view,))

    def _frame_failed(self, uid: str, index: int, reason: str) -> None:
        for v in list(self.viewports.values()):
            if v.frame_pending and v.model.source is not None and v.model.source.uid == uid:
                self._caught_up(v)

    def _emit_point(self) -> None:
        if self.shared is None:
            return
        for_uid = str(self.shared.template.get("FrameOfReferenceUID", "") or "")
        self.point_changed.emit(for_uid, self.crosshair.point.copy())

    # --- views -> crosshair -----------------------------------------------------------------------
    def _model_changed(self, view: str, model: ViewportModel, what: str) -> None:
        if self._syncing:
            return
        src = model.source
        if what == "index" and isinstance(src, ReformatSource):
            # the user scrolled this view: the point moves along its normal to the new slice
            self.crosshair.move_along_normal(view, src.position(model.state.index))
        elif what == "voi" and self.link_window:
            self._syncing = True
            try:
                for other in self.viewports.values():
                    if other.model is not model and other.model.source is not None:
                        other.model.copy_view_from(model, window=True, zoom=False)
            finally:
                self._syncing = False

    def _locate(self, viewport: MprViewport, col: float, row: float) -> None:
        plane = viewport.current_plane()
        if plane is not None:
            self.crosshair.set_point(np.asarray(plane.pixel_to_patient(col, row)).reshape(3))

    # --- commands ---------------------------------------------------------------------------------
    def set_point(self, point) -> None:
        """Move the crosshair to a patient point (mm)."""
        self.crosshair.set_point(point)

    def set_slab(self, slab_mm: float | None, mode: str | None) -> None:
        """Slab thickness (0-100 mm; None keeps it) and mode (``mip``/``minip``/``mean``)."""
        self.crosshair.set_slab(self.crosshair.slab_mm if slab_mm is None else slab_mm, mode)

    def reset(self) -> None:
        """Orthogonal planes through the volume centre, views fitted; the slab stays."""
        if self.shared is None:
            return
        self._sizes.clear()
        self.crosshair.reset(self.shared.volume.centre_patient())
        for v in self.viewports.values():
            v.model.set_zoom_mode("fit")
