"""The 3D view: a :class:`~workstation.render.volume_rendering.VolumeScene` in a Qt widget.

Mouse: left drag rotates, middle drag pans, the wheel zooms (right drag zooms too, as in VTK),
**Ctrl + left drag** shifts and spreads the transfer function like window/level in 2D (right
widens, up raises). The tool row picks the preset, shows a clipping box (drag its faces), and
resets the view to anterior.

Progressive drawing: while the mouse drags (and for each wheel step) frames come from the scene's
small preview volume at an adaptive resolution (tens of milliseconds); the full-quality still frame
follows :attr:`VolumeView.still_delay_ms` after the last move, so a quick succession of drags or
wheel steps never waits for it, and the GUI is blocked only for that one frame (a few hundred ms on
a 512^3 CT with CPU ray casting). Preset changes, transfer-function drags and view resets draw the
preview at once and refine the same way; :meth:`VolumeView.render` draws a still frame directly.

The VTK render window needs a real OpenGL surface (an X server or Xvfb: a grab of the widget
itself is black; use ``QScreen.grabWindow``).
"""

from __future__ import annotations

import time

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QPushButton, QVBoxLayout, QWidget
from vtkmodules.qt.QVTKRenderWindowInteractor import QVTKRenderWindowInteractor
from vtkmodules.vtkCommonDataModel import vtkPlanes
from vtkmodules.vtkInteractionStyle import vtkInteractorStyleTrackballCamera
from vtkmodules.vtkInteractionWidgets import vtkBoxRepresentation, vtkBoxWidget2

from workstation.render.volume_image import VolumeImage
from workstation.render.volume_rendering import VolumePreset, VolumeScene, load_presets


class VolumeView(QWidget):
    """A 3D view of one volume with presets, clipping box and transfer-function window/level.

    Parameters
    ----------
    volume : VolumeImage
        The volume (shared with the MPR views).
    presets : mapping, optional
        Preset key -> VolumePreset (default: the shipped ones).
    preset : str
        Initial preset.
    """

    preset_changed = Signal(str)

    def __init__(
        self,
        volume: VolumeImage,
        presets: dict[str, VolumePreset] | None = None,
        preset: str = "ct-bone",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.scene = VolumeScene(volume, presets or load_presets(), preset)
        self.vtk_widget = QVTKRenderWindowInteractor(self)
        self.render_window = self.vtk_widget.GetRenderWindow()
        self.render_window.AddRenderer(self.scene.renderer)
        self.interactor = self.render_window.GetInteractor()
        self.style = vtkInteractorStyleTrackballCamera()
        self.interactor.SetInteractorStyle(self.style)
        self._tf_drag: tuple[int, int] | None = None
        self._frame_start = 0.0
        #: Milliseconds of calm before the full-quality frame replaces the preview.
        self.still_delay_ms = 150
        #: Seconds the last full-quality (still) frame took.
        self.last_still_s = 0.0
        self._still_timer = QTimer(self)
        self._still_timer.setSingleShot(True)
        self._still_timer.timeout.connect(self.render)
        self._install_observers()

        self.preset_box = QComboBox(self)
        for key, p in self.scene.presets.items():
            self.preset_box.addItem(p.label, key)
        self.preset_box.setCurrentIndex(self.preset_box.findData(self.scene.preset.key))
        self.preset_box.currentIndexChanged.connect(
            lambda i: self.set_preset(self.preset_box.itemData(i))
        )
        self.clip_box = QCheckBox("Clip box", self)
        self.clip_box.toggled.connect(self.set_clipping_enabled)
        reset = QPushButton("Reset view", self)
        reset.clicked.connect(lambda: self.reset_view())
        tools = QHBoxLayout()
        tools.setContentsMargins(4, 2, 4, 2)
        tools.addWidget(self.preset_box)
        tools.addWidget(self.clip_box)
        tools.addWidget(reset)
        tools.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(tools)
        layout.addWidget(self.vtk_widget, 1)

        self.box_widget = vtkBoxWidget2()
        self.box_widget.SetInteractor(self.interactor)
        rep = vtkBoxRepresentation()
        rep.SetPlaceFactor(1.0)
        rep.PlaceWidget(self.scene.volume.image.GetBounds())
        rep.SetInsideOut(1)  # plane normals point inwards: the mapper keeps the inside
        self.box_widget.SetRepresentation(rep)
        self.box_widget.RotationEnabledOff()
        self.box_widget.AddObserver("InteractionEvent", self._box_moved)
        self.box_widget.AddObserver("StartInteractionEvent", self._interaction_started)
        self.box_widget.AddObserver("EndInteractionEvent", lambda *_: self.schedule_still())
        self.interactor.Initialize()

    # -- public ------------------------------------------------------------------------------------
    def set_preset(self, key: str) -> None:
        """Show preset ``key``; emits :attr:`preset_changed`."""
        self.scene.set_preset(key)
        index = self.preset_box.findData(key)
        if index != self.preset_box.currentIndex():
            self.preset_box.setCurrentIndex(index)
        self.preset_changed.emit(key)
        self.render_progressive()

    def set_clipping_enabled(self, on: bool) -> None:
        """Show the clipping box widget and clip to it (off: no clipping)."""
        if self.clip_box.isChecked() != on:
            self.clip_box.setChecked(on)
            return
        if on:
            self.box_widget.On()
            self._box_moved()
        else:
            self.box_widget.Off()
            self.scene.set_clipping_planes(None)
        self.render()

    def reset_view(self, view: str = "anterior") -> None:
        """Camera back to ``view`` (anterior: patient left on screen right, head up)."""
        self.scene.reset_camera(view)
        self.render_progressive()

    def render(self) -> None:
        """Draw a still (full quality) frame now."""
        self._still_timer.stop()
        self.scene.set_interactive(False)
        start = time.perf_counter()
        self.render_window.Render()
        self.last_still_s = time.perf_counter() - start

    def render_progressive(self) -> None:
        """Draw a preview frame now and the full-quality one after :attr:`still_delay_ms`."""
        self.scene.set_interactive(True)
        self.render_window.Render()
        self.schedule_still()

    def schedule_still(self) -> None:
        """(Re)start the countdown to the full-quality frame."""
        self._still_timer.start(self.still_delay_ms)

    def still_pending(self) -> bool:
        """Whether a full-quality frame is still to come."""
        return self._still_timer.isActive()

    # -- VTK events ----------------------------------------------------------------------------------
    def _install_observers(self) -> None:
        style = self.style
        style.AddObserver("StartInteractionEvent", self._interaction_started)
        style.AddObserver("EndInteractionEvent", lambda *_: self.schedule_still())
        self.render_window.AddObserver("StartEvent", self._frame_started)
        self.render_window.AddObserver("EndEvent", self._frame_ended)
        for event, handler in (
            ("LeftButtonPressEvent", self._left_press),
            ("LeftButtonReleaseEvent", self._left_release),
            ("MouseMoveEvent", self._mouse_move),
        ):
            style.AddObserver(event, handler, 1.0)

    def _interaction_started(self, *_: object) -> None:
        self._still_timer.stop()
        self.scene.set_interactive(True)

    def _frame_started(self, *_: object) -> None:
        self._frame_start = time.perf_counter()

    def _frame_ended(self, *_: object) -> None:
        self.scene.frame_rendered(time.perf_counter() - self._frame_start)

    def _left_press(self, *_: object) -> None:
        if self.interactor.GetControlKey():
            self._tf_drag = self.interactor.GetEventPosition()
            self._interaction_started()
            return  # handled: the trackball style does not rotate
        self.style.OnLeftButtonDown()

    def _left_release(self, *_: object) -> None:
        if self._tf_drag is not None:
            self._tf_drag = None
            self.schedule_still()
            return
        self.style.OnLeftButtonUp()

    def _mouse_move(self, *_: object) -> None:
        if self._tf_drag is None:
            self.style.OnMouseMove()
            return
        x, y = self.interactor.GetEventPosition()
        x0, y0 = self._tf_drag
        self._tf_drag = (x, y)
        self.scene.drag_window(x - x0, -(y - y0))  # VTK y grows upwards; drag up raises
        self.render_window.Render()

    def _box_moved(self, *_: object) -> None:
        planes = vtkPlanes()
        self.box_widget.GetRepresentation().GetPlanes(planes)
        self.scene.set_clipping_planes(planes)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        """The first paint draws the preview; the still frame (which on first use also computes
        the full volume's gradients) follows."""
        super().showEvent(event)
        if not event.spontaneous():
            self.scene.set_interactive(True)
            self.schedule_still()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self._still_timer.stop()
        self.box_widget.Off()
        self.vtk_widget.Finalize()
        super().closeEvent(event)
