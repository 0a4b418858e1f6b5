"""The window's "Protocol" toolbar menu: the protocols ranked for the open study (with their
scores; the one on screen checked), next / previous stage, and saving the layout as a protocol."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtGui import QActionGroup
from PySide6.QtWidgets import QInputDialog, QMainWindow, QMenu, QMessageBox, QToolButton

from workstation.ui.hanging_controller import HangingController


class HangingMenu(QMenu):
    """Built on each opening from :attr:`HangingController.ranked`.

    Parameters
    ----------
    controller : HangingController
    save_protocol : callable, optional
        ``save_protocol(name, yaml_text) -> Path`` writes a user protocol (and reloads them).
    """

    def __init__(
        self,
        window: QMainWindow,
        controller: HangingController,
        save_protocol: Callable[[str, str], Path] | None = None,
    ) -> None:
        super().__init__("Protocol", window)
        self.window = window
        self.controller = controller
        self.save_protocol = save_protocol
        self.aboutToShow.connect(self.rebuild)
        self.rebuild()

    def rebuild(self) -> None:
        self.clear()
        c = self.controller
        group = QActionGroup(self)
        if not c.ranked:
            a = self.addAction("Open a study from the archive to hang it")
            a.setEnabled(False)
        for m in c.ranked:
            text = f"{m.protocol.label or m.name}   (score {m.score:g})"
            if not m.matched:
                text += "  - does not match"
            a = self.addAction(text)
            a.setCheckable(True)
            a.setChecked(c.match is not None and m.name == c.match.name)
            a.setToolTip("; ".join(m.failures) if m.failures else m.protocol.source)
            group.addAction(a)
            a.triggered.connect(lambda _=False, name=m.name: c.choose(name))
        self.addSeparator()
        n = len(c.match.stages) if c.match is not None else 0
        nxt = self.addAction("Next stage\tN")
        nxt.setEnabled(n > 1)
        nxt.triggered.connect(lambda: c.next_stage(1))
        prev = self.addAction("Previous stage\tShift+N")
        prev.setEnabled(n > 1)
        prev.triggered.connect(lambda: c.next_stage(-1))
        self.addSeparator()
        save = self.addAction("Save layout as protocol…")
        save.setEnabled(self.save_protocol is not None)
        save.triggered.connect(self.save_layout)

    def save_layout(self) -> None:
        name, ok = QInputDialog.getText(
            self.window, "Save layout as protocol", "Protocol name (letters, digits, - and _):"
        )
        name = name.strip()
        if not ok or not name or self.save_protocol is None:
            return
        try:
            text = self.controller.layout_as_protocol(name)
            path = self.save_protocol(name, text)
        except (OSError, ValueError) as exc:
            QMessageBox.warning(self.window, "Save layout as protocol", str(exc))
            return
        self.controller.message.emit(f"Protocol {name!r} saved to {path}")


def protocol_button(menu: HangingMenu) -> QToolButton:
    b = QToolButton(menu.window)
    b.setText("Protocol")
    b.setToolTip("Hanging protocols for the open study")
    b.setMenu(menu)
    b.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
    return b
