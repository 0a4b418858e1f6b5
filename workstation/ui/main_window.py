"""The reading window: the viewer area, its toolbar and menus, the browser docks, the status bar.

Composed by :mod:`workstation.app.gui`, which hands in the services (frame cache, decoders,
bindings, presets, settings) and the browser widgets; nothing here opens files on the GUI thread.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence

from PySide6.QtCore import QByteArray, Qt, QTimer, Slot
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QProgressBar,
    QStackedWidget,
    QTabWidget,
    QToolBar,
    QToolButton,
    QWidget,
)

from workstation.core.frame_cache import FrameCache
from workstation.core.frame_source import FrameSource
from workstation.ui.annotation_tools import TOOLS
from workstation.ui.frame_service import FrameService
from workstation.ui.series_opener import SeriesOpener
from workstation.ui.series_request import SeriesRequest
from workstation.ui.viewer_area import LAYOUTS, ViewerArea
from workstation.ui.viewport import Viewport

log = logging.getLogger(__name__)

MOUSE_TOOLS = (
    ("window_level", "W/L", "Left button: window / level"),
    ("pan", "Pan", "Left button: pan"),
    ("zoom", "Zoom", "Left button: zoom"),
    ("scroll", "Scroll", "Left button: scroll the stack"),
    ("locate", "Locate", "Left button: locate the point in the other viewports"),
)


class MainWindow(QMainWindow):
    """The application window.

    Parameters
    ----------
    cache : FrameCache
        The decoded-frame memory budget.
    service : FrameService
        Decoding and loading threads.
    opener : SeriesOpener
        Builds frame sources from requests.
    bindings, presets : optional
        Key/mouse bindings and window presets (``workstation.ui.bindings`` / ``presets``).
    settings : optional
        ``workstation.ui.settings.Settings``; window geometry and layout are remembered in it.
    docks : sequence of (title, widget)
        Browser panels; a widget with ``series_activated`` / ``study_activated`` signals is
        connected to the viewer.
    on_import : callable, optional
        ``on_import(paths)`` imports dropped files into the archive.
    on_help : callable, optional
        Shows the help panel.
    """

    def __init__(
        self,
        cache: FrameCache,
        service: FrameService,
        opener: SeriesOpener,
        bindings=None,
        presets=None,
        settings=None,
        docks: Sequence[tuple[str, QWidget]] = (),
        on_import: Callable[[list[str]], None] | None = None,
        on_help: Callable[[], None] | None = None,
        registrations=None,
    ) -> None:
        super().__init__()
        self.setWindowTitle("workstation")
        self.cache = cache
        self.service = service
        self.opener = opener
        self.presets = presets
        self.settings = settings
        self.on_import = on_import
        self.on_help = on_help
        fps = float(getattr(settings, "cine_fps", 15.0) or 15.0) if settings else 15.0
        self.viewer = ViewerArea(service, bindings, presets, fps, self, registrations=registrations)
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.viewer)
        self.setCentralWidget(self.stack)
        self.mpr = None
        self.setAcceptDrops(True)
        self._pending: dict[int, object] = {}
        self._progress: dict[str, tuple[int, int]] = {}
        self.viewer.action_requested.connect(self._window_action)
        self.viewer.message.connect(lambda text: self.status_label.setText(text))
        self.viewer.active_changed.connect(lambda v: self._refresh_toolbar())
        for v in self.viewer.viewports:
            v.model.subscribe(lambda m, what: self._refresh_toolbar() if what == "view" else None)
        # the loader's workers read pixels while the opener reads headers (a full /dev/shm is
        # a clear error since the loader reserves its pages, not a SIGBUS)
        opener.set_stager(service.stage)
        opener.provisional.connect(self._provisional)
        opener.opened.connect(self._opened)
        opener.sets_opened.connect(self._sets_opened)
        opener.failed.connect(self._failed)
        service.load_progress.connect(self._load_progress)
        service.load_finished.connect(self._load_finished)
        self._build_status()
        self._build_docks(docks)
        self._build_actions()
        if settings is not None:
            self._restore_settings()

    # --- construction -----------------------------------------------------------------------------
    def _build_status(self) -> None:
        self.status_label = QLabel("")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.memory_label = QLabel("")
        self.statusBar().addWidget(self.status_label, 1)
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.memory_label)
        timer = QTimer(self)
        timer.timeout.connect(self._update_memory)
        timer.start(1000)

    def _update_memory(self) -> None:
        mb = 1024 * 1024
        self.memory_label.setText(
            f"cache {self.cache.used / mb:,.0f} / {self.cache.budget / mb:,.0f} MB"
        )

    def _build_docks(self, docks: Sequence[tuple[str, QWidget]]) -> None:
        self.browser_tabs = QTabWidget()
        for title, widget in docks:
            self.browser_tabs.addTab(widget, title)
            if hasattr(widget, "series_activated"):
                widget.series_activated.connect(self.open_series)
            if hasattr(widget, "study_activated"):
                widget.study_activated.connect(self.open_study)
        self.browser_dock = QDockWidget("Studies", self)
        self.browser_dock.setObjectName("browser")
        self.browser_dock.setWidget(self.browser_tabs)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.browser_dock)
        if not docks:
            self.browser_dock.hide()

    def _action(self, text: str, slot, tip: str = "", checkable: bool = False) -> QAction:
        a = QAction(text, self)
        a.setToolTip(tip or text)
        a.setCheckable(checkable)
        a.triggered.connect(slot)
        return a

    def _build_actions(self) -> None:
        tb = QToolBar("Viewer", self)
        tb.setObjectName("viewer-toolbar")
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.addToolBar(tb)
        self.toolbar = tb
        # layouts
        layout_menu = QMenu("Layout", self)
        self.layout_actions: dict[str, QAction] = {}
        group = QActionGroup(self)
        for name in LAYOUTS:
            a = layout_menu.addAction(name)
            a.setCheckable(True)
            group.addAction(a)
            a.triggered.connect(lambda _=False, n=name: self.set_layout(n))
            self.layout_actions[name] = a
        button = QToolButton(self)
        button.setText("Layout")
        button.setMenu(layout_menu)
        button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        tb.addWidget(button)
        tb.addSeparator()
        # mouse tools
        self.tool_actions: dict[str, QAction] = {}
        tools = QActionGroup(self)
        for tool, text, tip in MOUSE_TOOLS:
            a = self._action(text, lambda _=False, t=tool: self.set_mouse_tool(t), tip, True)
            tools.addAction(a)
            tb.addAction(a)
            self.tool_actions[tool] = a
        self.tool_actions["window_level"].setChecked(True)
        self._build_measure_tools(tb, tools)
        tb.addSeparator()
        self.preset_menu = QMenu("Presets", self)
        self.preset_menu.aboutToShow.connect(self._fill_presets)
        pb = QToolButton(self)
        pb.setText("Presets")
        pb.setMenu(self.preset_menu)
        pb.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        tb.addWidget(pb)
        for action, text in (
            ("window.auto", "Auto"),
            ("view.invert", "Invert"),
            ("view.rotate_ccw", "⟲"),
            ("view.rotate_cw", "⟳"),
            ("view.flip_h", "Flip H"),
            ("view.flip_v", "Flip V"),
            ("view.fit", "Fit"),
            ("view.one_to_one", "1:1"),
            ("view.true_size", "True size"),
            ("view.reset", "Reset"),
            ("cine.toggle", "Cine"),
        ):
            tb.addAction(self._action(text, lambda _=False, n=action: self.perform(n)))
        tb.addSeparator()
        sync_menu = QMenu("Sync", self)
        self.sync_actions: dict[str, QAction] = {}
        sync_group = QActionGroup(self)
        for mode, text in (
            ("position", "Scroll by patient position"),
            ("index", "Scroll by image number"),
            ("off", "No synchronised scrolling"),
        ):
            a = sync_menu.addAction(text)
            a.setCheckable(True)
            sync_group.addAction(a)
            a.triggered.connect(lambda _=False, m=mode: self.set_sync_mode(m))
            self.sync_actions[mode] = a
        sync_menu.addSeparator()
        self.link_window_action = sync_menu.addAction("Link window/level")
        self.link_window_action.setCheckable(True)
        self.link_window_action.toggled.connect(lambda on: setattr(self.viewer, "link_window", on))
        self.link_zoom_action = sync_menu.addAction("Link zoom and pan")
        self.link_zoom_action.setCheckable(True)
        self.link_zoom_action.toggled.connect(lambda on: setattr(self.viewer, "link_zoom", on))
        sync_menu.addSeparator()
        register = sync_menu.addAction("Register two series (click the same anatomy in both)")
        register.triggered.connect(lambda: self.viewer.handle_action("sync.register"))
        sb = QToolButton(self)
        sb.setText("Sync")
        sb.setMenu(sync_menu)
        sb.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        tb.addWidget(sb)
        self.refline_action = self._action(
            "Ref lines", self._toggle_reference_lines, "Reference lines", True
        )
        self.refline_action.setChecked(True)
        tb.addAction(self.refline_action)
        # menus
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addAction(
            self._action("Open folder or CD without importing…", self._open_folder_dialog)
        )
        if self.on_import is not None:
            file_menu.addAction(self._action("Import folder…", self._import_folder_dialog))
        file_menu.addSeparator()
        quit_action = self._action("Quit", self.close)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        file_menu.addAction(quit_action)
        self.view_menu = view_menu = self.menuBar().addMenu("&View")
        view_menu.addMenu(layout_menu)
        view_menu.addAction(self.browser_dock.toggleViewAction())
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction(self._action("Keyboard and mouse…", lambda: self.perform("help.show")))
        self._refresh_toolbar()

    def _restore_settings(self) -> None:
        s = self.settings
        geometry = getattr(s, "window_geometry", None)
        state = getattr(s, "window_state", None)
        if geometry:
            self.restoreGeometry(QByteArray(geometry))
        if state:
            self.restoreState(QByteArray(state))
        layout = getattr(s, "last_layout", None) or "1x1"
        try:
            self.set_layout(layout)
        except ValueError:
            self.set_layout("1x1")
        self.set_sync_mode(getattr(s, "sync_mode", "position") or "position")
        self.viewer.show_reference_lines = bool(getattr(s, "show_reference_lines", True))
        self.refline_action.setChecked(self.viewer.show_reference_lines)
        self.link_window_action.setChecked(bool(getattr(s, "link_window_level", False)))
        self.link_zoom_action.setChecked(bool(getattr(s, "link_zoom", False)))

    def save_settings(self) -> None:
        s = self.settings
        if s is None:
            return
        s.window_geometry = bytes(self.saveGeometry().data())
        s.window_state = bytes(self.saveState().data())
        s.last_layout = self.viewer.layout_name
        s.sync_mode = self.viewer.sync_mode
        s.show_reference_lines = self.viewer.show_reference_lines
        s.link_window_level = self.viewer.link_window
        s.link_zoom = self.viewer.link_zoom
        try:
            s.save()
        except OSError as exc:
            log.warning("settings not saved: %s", exc)

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if not getattr(self, "_docks_sized", False):
            self._docks_sized = True
            QTimer.singleShot(0, self, self._size_docks)  # dropped if the window goes first

    def _size_docks(self) -> None:
        width = max(320, min(480, self.width() * 3 // 10))
        self.resizeDocks([self.browser_dock], [width], Qt.Orientation.Horizontal)

    def closeEvent(self, event) -> None:  # noqa: N802
        self.save_settings()
        for v in self.viewer.viewports:
            v.stop_cine()
        super().closeEvent(event)

    # --- toolbar state ------------------------------------------------------------------------------
    def _refresh_toolbar(self) -> None:
        a = self.layout_actions.get(self.viewer.layout_name)
        if a is not None:
            a.setChecked(True)
        s = self.sync_actions.get(self.viewer.sync_mode)
        if s is not None:
            s.setChecked(True)

    def set_layout(self, name: str) -> None:
        self.viewer.set_layout(name)
        self._refresh_toolbar()

    def set_sync_mode(self, mode: str) -> None:
        self.viewer.sync_mode = mode if mode in self.sync_actions else "position"
        self._refresh_toolbar()

    def _build_measure_tools(self, tb: QToolBar, group: QActionGroup) -> None:
        """A "Measure" button: the last measurement or annotation tool used, and a menu of all
        of them (in the same group as the other left-button tools)."""
        menu = QMenu("Measure", self)
        for tool, tip in TOOLS.items():
            text = tip.split(" (")[0]
            a = self._action(text, lambda _=False, t=tool: self.set_mouse_tool(t), tip, True)
            group.addAction(a)
            menu.addAction(a)
            self.tool_actions[tool] = a
        self.measure_button = QToolButton(self)
        self.measure_button.setText("Length")
        self.measure_button.setToolTip("Measurement and annotation tools (menu: all of them)")
        self.measure_button.setMenu(menu)
        self.measure_button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        self.measure_button.setCheckable(True)
        self._last_measure_tool = "length"
        self.measure_button.clicked.connect(lambda: self.set_mouse_tool(self._last_measure_tool))
        tb.addWidget(self.measure_button)

    def set_mouse_tool(self, tool: str) -> None:
        """What the left button does without modifiers (the bindings' default otherwise)."""
        for v in self.viewer.viewports:
            v.left_tool = None if tool == "window_level" else tool
        self.tool_actions[tool].setChecked(True)
        if hasattr(self, "measure_button"):
            if tool in TOOLS:
                self._last_measure_tool = tool
                self.measure_button.setText(self.tool_actions[tool].text())
            self.measure_button.setChecked(tool in TOOLS)

    # --- MPR ------------------------------------------------------------------------------------
    def set_mpr(self, mpr, make_3d=None) -> None:
        """The MPR workspace (``ui.mpr.MprArea``), shown in place of the viewer grid by the MPR
        action; ``make_3d(shared_volume) -> QWidget`` builds the 3D view for its 2x2 layout."""
        self.mpr = mpr
        self.make_3d = make_3d
        self.stack.addWidget(mpr)
        mpr.close_requested.connect(self.close_mpr)
        mpr.status.connect(self.status_label.setText)
        mpr.point_changed.connect(self.viewer.locate_patient_point)
        tip = "MPR: axial, coronal and sagittal reformats of the active series, with crosshairs"
        self.mpr_action = self._action("MPR", self.toggle_mpr, tip, True)
        self.mpr_action.setShortcut(QKeySequence("Ctrl+M"))
        self.toolbar.addAction(self.mpr_action)
        self.view_menu.addAction(self.mpr_action)
        if make_3d is not None:
            tip = "3D volume rendering of the series, in the MPR workspace's fourth cell"
            self.vr_action = self._action("3D", self.show_3d, tip)
            self.toolbar.addAction(self.vr_action)

    def toggle_mpr(self) -> None:
        """Show the active viewport's series in the MPR workspace, or go back to the grid."""
        if self.mpr is None:
            return
        if self.stack.currentWidget() is self.mpr:
            self.close_mpr()
            return
        src = self.viewer.active.model.source
        ok = isinstance(src, FrameSource) and src.display_set.geometry_ok and len(src) > 2
        if not ok:
            self.mpr_action.setChecked(False)
            self.status_label.setText(
                "MPR needs a stack of parallel slices with geometry in the active viewport"
            )
            return
        self.stack.setCurrentWidget(self.mpr)
        self.mpr_action.setChecked(True)
        self.mpr.open_source(src)

    def close_mpr(self) -> None:
        self.stack.setCurrentWidget(self.viewer)
        if self.mpr is not None:
            self.mpr_action.setChecked(False)

    def show_3d(self) -> None:
        """Open the MPR workspace with the 3D view in its fourth cell."""
        if self.mpr is None or self.make_3d is None:
            return
        if self.stack.currentWidget() is not self.mpr:
            self.toggle_mpr()
            if self.stack.currentWidget() is not self.mpr:
                return
        shared = self.mpr.shared
        if shared is None:
            self.status_label.setText("3D: the volume is still loading; press 3D again when it is")
            return
        try:
            widget = self.make_3d(shared)
        except Exception as exc:  # noqa: BLE001 - no OpenGL here: say so, keep the MPR views
            self.status_label.setText(f"3D view unavailable: {exc}")
            return
        self.mpr.set_3d_widget(widget)
        self.mpr.set_layout("2x2")

    def add_side_panel(self, title: str, widget: QWidget) -> None:
        """A tab in the right-hand dock (measurements, presentation states...)."""
        if not hasattr(self, "side_tabs"):
            self.side_tabs = QTabWidget()
            self.side_dock = QDockWidget("Annotations", self)
            self.side_dock.setObjectName("annotations")
            self.side_dock.setWidget(self.side_tabs)
            self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.side_dock)
            self.side_dock.hide()  # the images get the room; View > Annotations shows it
            toggle = self.side_dock.toggleViewAction()
            toggle.setText("Annotations and presentation states")
            toggle.setShortcut(QKeySequence("Ctrl+Shift+A"))
            self.view_menu.addAction(toggle)
        self.side_tabs.addTab(widget, title)
        if hasattr(widget, "message"):
            widget.message.connect(self.status_label.setText)

    def _toggle_reference_lines(self, on: bool) -> None:
        self.viewer.show_reference_lines = on
        self.viewer.update_links()

    def _fill_presets(self) -> None:
        self.preset_menu.clear()
        v = self.viewer.active
        modality = v.modality()
        presets = self.presets.for_modality(modality) if self.presets is not None else []
        if not presets:
            a = self.preset_menu.addAction(f"no presets for {modality or 'this image'}")
            a.setEnabled(False)
        for p in presets:
            key = f"\t{p.key}" if p.key else ""
            a = self.preset_menu.addAction(f"{p.name}  (W {p.width:g} L {p.center:g}){key}")
            a.triggered.connect(lambda _=False, k=p: self._apply_preset(k))

    def _apply_preset(self, preset) -> None:
        from workstation.core.voi import Window

        self.viewer.active.model.set_voi(
            Window(preset.center, preset.width, "LINEAR", preset.name), f"preset {preset.name}"
        )

    def perform(self, action: str) -> None:
        """Run a bound action on the active viewport (or on the window)."""
        if not self.viewer.active.perform(action):
            self._window_action(action)

    def _window_action(self, action: str) -> None:
        if action == "help.show" and self.on_help is not None:
            self.on_help()
        elif action in ("viewport.maximize", "viewport.next", "sync.toggle", "sync.register"):
            self.viewer.handle_action(action)
            self._refresh_toolbar()
        elif action == "reference_lines.toggle":
            self.viewer.handle_action(action)
            self.refline_action.setChecked(self.viewer.show_reference_lines)
        elif action == "sync.changed":
            self._refresh_toolbar()
        elif action in ("hanging.next_stage", "hanging.previous_stage"):
            if getattr(self, "hanging", None) is not None:
                self.hanging.next_stage(1 if action.endswith("next_stage") else -1)

    # --- opening -----------------------------------------------------------------------------------
    def open_series(self, request: SeriesRequest, viewport: Viewport | None = None) -> None:
        """Show a series in ``viewport`` (default: the active one)."""
        viewport = viewport or self.viewer.active
        self._pending[id(viewport)] = request
        viewport.message = "opening…"
        viewport.update()
        self.status_label.setText(f"Opening {request.label or request.series_uid}")
        if request.patient:
            self.setWindowTitle(f"{request.patient} — workstation")
        self.opener.open_series(viewport, request)

    def set_hanging(self, controller, save_protocol=None) -> None:
        """Hang studies opened from the browser with protocols (``HangingController``) and add
        the Protocol menu to the toolbar."""
        from workstation.ui.hanging_menu import HangingMenu, protocol_button

        self.hanging = controller
        controller.message.connect(self.status_label.setText)
        controller.busy.connect(self._priors_busy)
        self.hanging_menu = HangingMenu(self, controller, save_protocol)
        self.toolbar.addSeparator()
        self.toolbar.addWidget(protocol_button(self.hanging_menu))

    def _priors_busy(self, on: bool) -> None:
        if on:
            self.progress.setRange(0, 0)
            self.progress.setFormat("fetching priors")
        else:
            self.progress.setRange(0, 1)
            self.progress.setValue(1)
        self.progress.setVisible(on)

    def open_study(self, study_uid: str, requests: list) -> None:
        """Hang a study with its protocol when there is a hanging controller; otherwise lay its
        series out in the visible viewports, in order."""
        if getattr(self, "hanging", None) is not None and study_uid:
            self.hanging.open_study(study_uid)
            return
        if not requests:
            return
        self.viewer.ensure_room(len(requests))
        self._refresh_toolbar()
        for v, request in zip(self.viewer.visible(), requests, strict=False):
            self.open_series(request, v)

    def open_paths(self, paths: Sequence[str], viewport: Viewport | None = None) -> None:
        """Open files or folders in place (no import): each display set in its own viewport."""
        self.status_label.setText("Reading " + ", ".join(paths))
        self.opener.open_paths(viewport or "layout", list(paths))
        folders = [p for p in paths if os.path.isdir(p)]
        for i in range(self.browser_tabs.count()):
            widget = self.browser_tabs.widget(i)
            if folders and hasattr(widget, "open_path"):  # the media browser: its tree too
                widget.open_path(folders[0])
                self.browser_tabs.setCurrentIndex(i)
                break

    @Slot(object, object)
    def _provisional(self, token: object, source: FrameSource) -> None:
        if isinstance(token, Viewport) and self._pending.get(id(token)) is not None:
            token.model.set_source(source, 0)

    @Slot(object, object, str)
    def _opened(self, token: object, source: FrameSource, first_path: str) -> None:
        if not isinstance(token, Viewport):
            return
        self._pending.pop(id(token), None)
        # a stack opens at its first image in display order (the top of an axial stack), even
        # when the provisional first file lies elsewhere in it
        index = 0
        current = token.model.source
        if current is not None and len(current) == 1 and current.frames[0].path == first_path:
            token.model.replace_source(source, index)
            current.close()
        else:
            token.model.set_source(source, index)
        token.message = ""
        self.service.load(source)
        self.viewer.update_links()
        self.status_label.setText(source.display_set.label)
        if token is self.viewer.active:
            token.setFocus()

    @Slot(object, list)
    def _sets_opened(self, token: object, sources: list) -> None:
        if isinstance(token, Viewport):
            targets = [token]
        else:
            if self.viewer.layout_name == "1x1":  # a chosen layout stays; 1x1 makes room
                self.viewer.ensure_room(min(len(sources), 4))
                self._refresh_toolbar()
            targets = self.viewer.visible()
        for v, source in zip(targets, sources, strict=False):
            self.viewer.show_source(source, v)
        n = len(sources)
        self.status_label.setText(f"{n} display set{'s' if n != 1 else ''}")
        self.viewer.update_links()
        self.viewer.active.setFocus()

    @Slot(object, str)
    def _failed(self, token: object, reason: str) -> None:
        if isinstance(token, Viewport):
            self._pending.pop(id(token), None)
            token.message = reason
            token.update()
        self.status_label.setText(f"Could not open: {reason}")

    @Slot(str, int, int)
    def _load_progress(self, uid: str, done: int, total: int) -> None:
        self._progress[uid] = (done, total)
        d = sum(x for x, _ in self._progress.values())
        t = sum(y for _, y in self._progress.values())
        if t and d < t:
            self.progress.setRange(0, t)
            self.progress.setValue(d)
            self.progress.setFormat(f"loading {d}/{t}")
            self.progress.show()
        else:
            self.progress.hide()

    @Slot(str, str)
    def _load_finished(self, uid: str, message: str) -> None:
        self._progress.pop(uid, None)
        if not self._progress:
            self.progress.hide()
        if message:
            self.status_label.setText(message)

    # --- dialogs and drops ---------------------------------------------------------------------------
    def _open_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a folder or CD (read in place)")
        if path:
            self.open_paths([path])

    def _import_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Import a folder into the archive")
        if path and self.on_import is not None:
            self.on_import([path])

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if not paths:
            return
        target = self.viewer.childAt(self.viewer.mapFrom(self, event.position().toPoint()))
        while target is not None and not isinstance(target, Viewport):
            target = target.parentWidget()
        if isinstance(target, Viewport):
            self.viewer.set_active(target)
            self.open_paths(paths, target)  # onto a viewport: read in place, shown there
        elif self.on_import is not None:
            self.on_import(paths)  # elsewhere: import into the archive
        else:
            self.open_paths(paths)
        event.acceptProposedAction()
