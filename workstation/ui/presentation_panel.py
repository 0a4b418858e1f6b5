"""Presentation states and key images in the viewer: the dock.

:class:`PresentationPanel` lists the states that reference the active viewport's series (from
``list_states``), with Apply / Leave, "Save presentation state…", "Mark key image" and "Save key
images…", the key-image notes of the study (a :class:`~workstation.ui.key_image_panel.KeyImagePanel`)
and "Send to…" for the selected state or note (an
:class:`~workstation.ui.object_sender.ObjectSender`). Applying, leaving, building the state to
save and the key-image marks are the
:class:`~workstation.ui.presentation_controller.PresentationController`'s. Storing is the
caller's: the panel hands the built state and the image headers to ``save_state`` and the marked
images to ``save_key_images`` (both from ``app``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from pydicom.dataset import Dataset
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

from workstation.net.nodes import RemoteNode
from workstation.pstate.model import PresentationState
from workstation.ui.key_image_panel import KeyImagePanel
from workstation.ui.object_sender import ObjectSender
from workstation.ui.presentation_controller import (
    PresentationController,
    series_uid_of,
    study_uid_of,
)
from workstation.ui.viewport import Viewport

ListStates = Callable[[str], Sequence[PresentationState]]
SaveState = Callable[[PresentationState, Sequence[Dataset], Mapping[str, object]], str]
SaveKeyImages = Callable[[Sequence[tuple[Dataset, int | None]], str], str]


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
    key_images : KeyImagePanel, optional
        The key-image notes of the study (listed under the states; opening one marks its
        images).
    sender : ObjectSender, optional
        Sends the selected state or key-image note to a configured node ("Send to…").
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
        *,
        key_images: KeyImagePanel | None = None,
        sender: ObjectSender | None = None,
    ) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.list_states = list_states
        self.save_state = save_state
        self.save_key_images = save_key_images
        self.controller = controller or PresentationController()
        self.key_panel = key_images
        self.sender = sender
        self._states: list[PresentationState] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(QLabel("Presentation states of the series", self))
        self.list = QListWidget(self)
        self.list.itemDoubleClicked.connect(lambda _: self.apply_selected())
        layout.addWidget(self.list, 1)  # the spare height goes to the states, not between rows
        row = QHBoxLayout()
        self.apply_button = QPushButton("Apply", self)
        self.apply_button.clicked.connect(self.apply_selected)
        self.leave_button = QPushButton("Leave", self)
        self.leave_button.setToolTip("Back to your own view and annotations")
        self.leave_button.clicked.connect(self.leave)
        row.addWidget(self.apply_button)
        row.addWidget(self.leave_button)
        self.send_state_button = QPushButton("Send to…", self)
        self.send_state_button.setToolTip("C-STORE the selected state to a PACS node")
        self.send_state_button.clicked.connect(lambda: self.send_selected("state"))
        row.addWidget(self.send_state_button)
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
        self.send_keys_button = QPushButton("Send to…", self)
        self.send_keys_button.setToolTip("C-STORE the selected key-image note to a PACS node")
        self.send_keys_button.clicked.connect(lambda: self.send_selected("key images"))
        if key_images is not None:
            key_images.setParent(self)
            key_images.buttons.addWidget(self.send_keys_button)
            key_images.message.connect(self._say)
            key_images.opened.connect(lambda _stack: self.refresh())
            key_images.list.currentRowChanged.connect(lambda _r: self._enable_send())
            layout.addWidget(key_images)
        else:
            self.send_keys_button.hide()
        if sender is not None:
            sender.finished.connect(lambda _ok, text: self._say(text))
            sender.finished.connect(lambda _ok, _text: self._enable_send())
        self.list.currentRowChanged.connect(lambda _r: self._enable_send())
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
        series = series_uid_of(v)
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
        if self.key_panel is not None:
            self.key_panel.refresh(study_uid_of(v))
        self._enable_send()
        self._sync_mark()

    def _enable_send(self) -> None:
        can = self.sender is not None and not self.sender.busy
        self.send_state_button.setVisible(self.sender is not None)
        self.send_state_button.setEnabled(can and 0 <= self.list.currentRow() < len(self._states))
        self.send_keys_button.setEnabled(
            can and self.key_panel is not None and self.key_panel.selected() is not None
        )

    def send_selected(self, which: str = "state", node: RemoteNode | None = None) -> bool:
        """Send the selected presentation state (``which="state"``) or key-image note
        (``"key images"``) to ``node`` (asked for when None) in the background; the outcome
        comes as a message. False when nothing was started."""
        if self.sender is None:
            return False
        if which == "state":
            row = self.list.currentRow()
            if not 0 <= row < len(self._states):
                self._say("Select a presentation state to send")
                return False
            uid, what = (
                self._states[row].sop_instance_uid,
                f"Presentation state {self._states[row].label}",
            )
        else:
            doc = self.key_panel.selected() if self.key_panel is not None else None
            if doc is None:
                self._say("Select a key-image note to send")
                return False
            uid, what = doc.sop_instance_uid, f"Key images '{doc.label or 'Key images'}'"
        if node is None:
            if not self.sender.nodes():
                self._say("No PACS node is set up: add one with Nodes… in the browser")
                return False
            node = self.sender.choose(self, what)
            if node is None:
                return False
        if not self.sender.send(uid, what, node):
            self._say("A send is still running; try again when it is done")
            return False
        self._say(f"Sending {what} to {node.name}…")
        self._enable_send()
        return True

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


__all__ = ["PresentationController", "PresentationPanel", "SaveStateDialog"]
