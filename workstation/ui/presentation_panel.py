"""Presentation states and key images in the viewer.

:class:`PresentationController` applies a :class:`~workstation.pstate.model.PresentationState` to
a viewport (window, displayed area, rotation/flip, invert, shutter, overlay activation and the
annotations in their layers, through :mod:`workstation.pstate.apply`) and leaves it again,
giving back the user's own view and annotations. It also builds the state to save from what a
viewport shows, and keeps the key-image marks.

:class:`PresentationPanel` is the dock: the states that reference the active viewport's series
(from ``list_states``), Apply / Leave, "Save presentation state…", "Mark key image" and
"Save key images…". Storing is the caller's: the panel hands the built state and the image
headers to ``save_state`` and the marked images to ``save_key_images`` (both from ``app``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workstation.core.annotation_store import AnnotationStore, image_key
from workstation.core.annotations import ImageRef, Layer
from workstation.core.view_state import ViewState
from workstation.pstate.apply import (
    identity_window,
    presentation_from_view,
    view_from_presentation,
)
from workstation.pstate.gsps_writer import content_label
from workstation.pstate.model import ImagePresentation, PresentationState
from workstation.ui.viewport import Viewport

ListStates = Callable[[str], Sequence[PresentationState]]
SaveState = Callable[[PresentationState, Sequence[Dataset], Mapping[str, object]], str]
SaveKeyImages = Callable[[Sequence[tuple[Dataset, int | None]], str], str]


@dataclass
class _Applied:
    state: PresentationState
    user_view: ViewState
    user_overlays: bool
    store: AnnotationStore
    shown: ImagePresentation | None = None
    unsubscribe: Callable[[], None] | None = field(default=None, repr=False)


def _series_uid(v: Viewport) -> str:
    src = v.model.source
    if src is None or not v.model.count:
        return ""
    return str(src.header(v.model.state.index).get("SeriesInstanceUID", "") or "")


def _index_of(v: Viewport, sop_uid: str, frame: int | None) -> int | None:
    src = v.model.source
    if src is None:
        return None
    for i, ref in enumerate(src.frames):
        uid = ref.sop_instance_uid or str(src.header(i).get("SOPInstanceUID", ""))
        fr = ref.frame_index + 1 if ref.frame_index is not None else None
        if uid == sop_uid and (frame is None or fr is None or fr == frame):
            return i
    return None


class PresentationController:
    """Applies and leaves presentation states on viewports; builds states; keeps key images."""

    def __init__(self) -> None:
        self._applied: dict[int, _Applied] = {}
        self._marks: dict[str, dict[tuple[str, int | None], ImageRef]] = {}

    # --- applying ------------------------------------------------------------------------------
    def applied(self, v: Viewport) -> PresentationState | None:
        got = self._applied.get(id(v))
        return got.state if got is not None else None

    def apply(self, v: Viewport, state: PresentationState) -> bool:
        """Show ``state`` on ``v``: its view of the image on screen (or of the first image it
        references, which the viewport moves to), its shutter, overlays and annotations.
        False when it references nothing in the viewport's series."""
        if v.model.source is None:
            return False
        ref = v.annotation_tools.current_image()
        if ref is None or state.for_image(ref.sop_instance_uid, ref.frame_number) is None:
            for sop, frame in state.images:
                i = _index_of(v, sop, frame)
                if i is not None:
                    v.model.set_index(i)
                    break
            else:
                return False
        self.leave(v)
        store = AnnotationStore(state.all_annotations)
        layers: dict[str, Layer] = {}
        for p in state.images.values():
            layers.update(p.layers)
        applied = _Applied(state, v.model.state, v.show_overlays, store)
        self._applied[id(v)] = applied

        def shutter_for(image: ImageRef):
            p = state.for_image(image.sop_instance_uid, image.frame_number)
            return p.shutter if p is not None else None

        v.annotation_tools.set_override(store, layers, shutter_for)
        applied.unsubscribe = v.model.subscribe(
            lambda model, what: self._follow(v) if what == "index" else None
        )
        self._follow(v)
        return True

    def _follow(self, v: Viewport) -> None:
        """Set the view the state gives the image on screen (when it differs from the last)."""
        applied = self._applied.get(id(v))
        ref = v.annotation_tools.current_image()
        if applied is None or ref is None:
            return
        p = applied.state.for_image(ref.sop_instance_uid, ref.frame_number)
        if p is None or p == applied.shown:
            return
        applied.shown = p
        geo = v.model.geometry()
        renderer = v.current_renderer()
        inverted = renderer.inverted_by_file if renderer is not None else False
        view = view_from_presentation(
            p,
            geo,
            v.model.viewport_size,
            inverted_by_file=inverted,
            base=v.model.state,
            screen_px_per_mm=v.model.screen_px_per_mm,
            # a state without a softcopy VOI means no VOI transformation (PS3.4 N.2.1.2), as
            # DCMTK renders it, not "keep the user's window"
            no_voi=identity_window(v.model.source.header(v.model.state.index)),
        )
        v.show_overlays = bool(p.overlays_on)
        v.model.set_view(view)
        v.update()

    def leave(self, v: Viewport) -> None:
        """Back to the user's own view, overlays and annotations."""
        applied = self._applied.pop(id(v), None)
        if applied is None:
            return
        if applied.unsubscribe is not None:
            applied.unsubscribe()
        v.annotation_tools.set_override(None)
        v.show_overlays = applied.user_overlays
        v.model.set_view(applied.user_view)
        v.update()

    # --- saving ---------------------------------------------------------------------------------
    def build_state(
        self, v: Viewport, label: str, description: str = "", creator: str = ""
    ) -> tuple[PresentationState, list[Dataset], dict[str, object]]:
        """The state that saves what ``v`` shows: the view of the image on screen applied to
        every image of the series that carries annotations (and to that image), with each
        image's annotations; plus the image headers and the measurements to write.

        Raises
        ------
        ValueError
            When the viewport shows nothing.
        """
        src, m = v.model.source, v.model
        ref = v.annotation_tools.current_image()
        if src is None or ref is None:
            raise ValueError("no image in the viewport to save a presentation state of")
        store = v.annotation_tools.store()
        layers = dict(v.annotation_tools.layers)
        keys = [image_key(ref)]
        if store is not None:
            keys += [k for k in store.images() if k not in keys]
        renderer = v.current_renderer()
        inverted = renderer.inverted_by_file if renderer is not None else False
        window = v.effective_window()
        images: dict[tuple[str, int | None], ImagePresentation] = {}
        headers: dict[str, Dataset] = {}
        measurements: dict[str, object] = {}
        for sop, frame in keys:
            i = _index_of(v, sop, frame)
            if i is None:
                continue
            ds = src.header(i)
            image = ImageRef(sop, frame, str(ds.get("SOPClassUID", "") or ""))
            annotations = tuple(store.for_image((sop, frame))) if store is not None else ()
            for a in annotations:
                value = store.measurement(a.uid)
                if value is not None:
                    measurements[a.uid] = value
            images[(sop, frame)] = presentation_from_view(
                m.state,
                image,
                src.geometry(i),
                m.viewport_size,
                inverted_by_file=inverted,
                voi=window,
                annotations=annotations,
                layers=layers or None,
                overlays_on=(),
                device_pixel_ratio=m.device_pixel_ratio,
                screen_px_per_mm=m.screen_px_per_mm,
            )
            headers.setdefault(sop, ds)
        first = src.header(m.state.index)
        state = PresentationState(
            sop_instance_uid=generate_uid(),
            series_uid=str(first.get("SeriesInstanceUID", "") or ""),
            study_uid=str(first.get("StudyInstanceUID", "") or ""),
            label=content_label(label or "MEASUREMENTS"),
            description=description,
            creator=creator,
            created=datetime.now(),
            images=images,
        )
        return state, list(headers.values()), measurements

    # --- key images -----------------------------------------------------------------------------
    def toggle_key_image(self, v: Viewport) -> bool:
        """Mark or unmark the image on screen; returns whether it is marked now."""
        ref = v.annotation_tools.current_image()
        series = _series_uid(v)
        if ref is None:
            return False
        marks = self._marks.setdefault(series, {})
        key = image_key(ref)
        if key in marks:
            del marks[key]
            return False
        marks[key] = ref
        return True

    def is_key_image(self, v: Viewport) -> bool:
        ref = v.annotation_tools.current_image()
        return ref is not None and image_key(ref) in self._marks.get(_series_uid(v), {})

    def key_images(self, v: Viewport) -> list[tuple[Dataset, int | None]]:
        """The marked images of ``v``'s series as (header, frame number), in display order."""
        src = v.model.source
        marks = self._marks.get(_series_uid(v), {})
        out = []
        if src is None:
            return out
        for i, ref in enumerate(src.frames):
            uid = ref.sop_instance_uid or str(src.header(i).get("SOPInstanceUID", ""))
            frame = ref.frame_index + 1 if ref.frame_index is not None else None
            if (uid, frame) in marks:
                out.append((src.header(i), frame))
        return out


class SaveStateDialog(QDialog):
    """Asks for the content label and the description of a presentation state."""

    def __init__(self, parent: QWidget | None = None, label: str = "MEASUREMENTS") -> None:
        super().__init__(parent)
        self.setWindowTitle("Save presentation state")
        form = QFormLayout(self)
        self.label = QLineEdit(label)
        self.label.setMaxLength(64)
        self.label.setToolTip("Content Label: capitals, digits, spaces and underscores, 16 at most")
        self.description = QLineEdit()
        form.addRow("Label", self.label)
        form.addRow("Description", self.description)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)


class PresentationPanel(QWidget):
    """The presentation-state and key-image dock of the active viewport.

    Parameters
    ----------
    viewer : ViewerArea
        Its ``active`` viewport is the one acted on; ``active_changed`` refreshes the list.
    list_states : callable
        ``list_states(series_instance_uid)`` -> the states that reference the series.
    save_state : callable, optional
        ``save_state(state, image_headers, measurements)`` stores (and maybe sends) a GSPS and
        returns a message for the status line.
    save_key_images : callable, optional
        ``save_key_images([(header, frame number)], description)`` writes a Key Object
        Selection and returns a message.
    controller : PresentationController, optional
        Shared with other widgets (a private one when None).
    """

    message = Signal(str)

    def __init__(
        self,
        viewer,
        list_states: ListStates,
        save_state: SaveState | None = None,
        save_key_images: SaveKeyImages | None = None,
        controller: PresentationController | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.list_states = list_states
        self.save_state = save_state
        self.save_key_images = save_key_images
        self.controller = controller or PresentationController()
        self._states: list[PresentationState] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.list = QListWidget(self)
        self.list.itemDoubleClicked.connect(lambda _: self.apply_selected())
        layout.addWidget(self.list)
        row = QHBoxLayout()
        self.apply_button = QPushButton("Apply", self)
        self.apply_button.clicked.connect(self.apply_selected)
        self.leave_button = QPushButton("Leave", self)
        self.leave_button.setToolTip("Back to your own view and annotations")
        self.leave_button.clicked.connect(self.leave)
        row.addWidget(self.apply_button)
        row.addWidget(self.leave_button)
        layout.addLayout(row)
        self.save_button = QPushButton("Save presentation state…", self)
        self.save_button.clicked.connect(self.save_dialog)
        self.save_button.setEnabled(save_state is not None)
        layout.addWidget(self.save_button)
        row = QHBoxLayout()
        self.mark_button = QPushButton("Mark key image", self)
        self.mark_button.setCheckable(True)
        self.mark_button.clicked.connect(self.toggle_key_image)
        self.save_keys_button = QPushButton("Save key images…", self)
        self.save_keys_button.clicked.connect(self.save_key_images_dialog)
        self.save_keys_button.setEnabled(save_key_images is not None)
        row.addWidget(self.mark_button)
        row.addWidget(self.save_keys_button)
        layout.addLayout(row)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self._unsub = None
        viewer.active_changed.connect(lambda _v: self.refresh())
        self.refresh()

    @property
    def viewport(self) -> Viewport:
        return self.viewer.active

    def _say(self, text: str) -> None:
        self.status.setText(text)
        self.message.emit(text)

    def refresh(self) -> None:
        """List the states of the active viewport's series; follow its frame for the mark."""
        v = self.viewport
        if self._unsub is not None:
            self._unsub()
        self._unsub = v.model.subscribe(lambda m, what: self._sync_mark())
        series = _series_uid(v)
        try:
            self._states = list(self.list_states(series)) if series else []
        except (OSError, ValueError) as exc:
            self._states = []
            self._say(f"Presentation states could not be listed: {exc}")
        applied = self.controller.applied(v)
        self.list.clear()
        for s in self._states:
            when = s.created.strftime("%Y-%m-%d %H:%M") if s.created else ""
            text = "  ".join(x for x in (s.label, s.description, s.creator, when) if x)
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, s.sop_instance_uid)
            if applied is not None and applied.sop_instance_uid == s.sop_instance_uid:
                item.setText("▶ " + text)
            self.list.addItem(item)
        self.leave_button.setEnabled(applied is not None)
        self.apply_button.setEnabled(bool(self._states))
        self._sync_mark()

    def _sync_mark(self) -> None:
        self.mark_button.setChecked(self.controller.is_key_image(self.viewport))

    def apply_selected(self) -> bool:
        row = self.list.currentRow()
        if not (0 <= row < len(self._states)):
            return False
        state = self._states[row]
        ok = self.controller.apply(self.viewport, state)
        self._say(
            f"Applied {state.label}" if ok else f"{state.label} references no image shown here"
        )
        self.refresh()
        return ok

    def leave(self) -> None:
        self.controller.leave(self.viewport)
        self._say("Back to your own view")
        self.refresh()

    def save(self, label: str, description: str) -> str:
        """Build the state of the active viewport and hand it to ``save_state``."""
        if self.save_state is None:
            raise RuntimeError("no save_state callback given")
        state, headers, measurements = self.controller.build_state(
            self.viewport, label, description
        )
        text = self.save_state(state, headers, measurements)
        self._say(text or f"Saved presentation state {state.label}")
        self.refresh()
        return text

    def save_dialog(self) -> None:
        dialog = SaveStateDialog(self)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        try:
            self.save(dialog.label.text(), dialog.description.text())
        except (OSError, ValueError) as exc:
            self._say(f"Not saved: {exc}")

    def toggle_key_image(self) -> None:
        marked = self.controller.toggle_key_image(self.viewport)
        self.mark_button.setChecked(marked)
        n = len(self.controller.key_images(self.viewport))
        self._say(f"{n} key image{'s' if n != 1 else ''} marked in this series")

    def save_key_images_dialog(self, description: str | None = None) -> None:
        if self.save_key_images is None:
            return
        marked = self.controller.key_images(self.viewport)
        if not marked:
            self._say("Mark key images first (Mark key image)")
            return
        if description is None:
            dialog = QDialog(self)
            dialog.setWindowTitle("Save key images")
            form = QFormLayout(dialog)
            edit = QLineEdit("Key images")
            form.addRow("Description", edit)
            buttons = QDialogButtonBox(
                QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
            )
            buttons.accepted.connect(dialog.accept)
            buttons.rejected.connect(dialog.reject)
            form.addRow(buttons)
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return
            description = edit.text()
        try:
            self._say(self.save_key_images(marked, description) or "Key images saved")
        except (OSError, ValueError) as exc:
            self._say(f"Key images not saved: {exc}")
