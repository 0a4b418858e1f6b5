"""The help panel (F1): keyboard shortcuts, mouse bindings and window/level presets as in force now.

Built from the loaded ``Bindings`` and ``PresetBook``, so what it shows is what the keys do, including
the user's own files; it names those files so the user knows where to change them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workstation.ui.bindings import (
    ACTIONS,
    MOUSE_ACTIONS,
    WHEEL,
    Bindings,
    describe_mouse_slot,
    native_key_text,
)
from workstation.ui.presets import PresetBook

# Action id prefix -> the group the keyboard table shows it under, in this order.
_GROUPS = (
    ("scroll", "Stack"),
    ("preset", "Window/level"),
    ("window", "Window/level"),
    ("view", "View"),
    ("cine", "Cine"),
    ("viewport", "Viewports"),
    ("sync", "Viewports"),
    ("reference_lines", "Viewports"),
    ("overlays", "Display"),
    ("annotations", "Display"),
    ("help", "Help"),
)
_UNBOUND = "—"
_KEYS_JOIN = "  or  "
_NO_PRESET_NOTE = (
    "Modalities without presets (MR, PT, CR, DX, ...) use the window stored in the file, or "
    "automatic window/level ({auto}). MR signal has no absolute units, so presets there are yours "
    "to add."
)


def _preset_names(action: str, presets: PresetBook) -> str:
    """For ``preset.N``: which preset the key gives per modality, e.g. `` (CT: Brain)``."""
    if not action.startswith("preset."):
        return ""
    number = int(action.split(".", 1)[1])
    names = [
        f"{modality}: {preset.name}"
        for modality in presets.modalities()
        if (preset := presets.by_key(modality, number)) is not None
    ]
    return f" ({'; '.join(names)})" if names else ""


def _group_of(action: str) -> str:
    prefix = action.split(".", 1)[0]
    return next((title for p, title in _GROUPS if p == prefix), "Other")


class HelpPanel(QDialog):
    """A dialog listing the keys, the mouse and the presets.

    Parameters
    ----------
    bindings : Bindings
        The key and mouse bindings in force.
    presets : PresetBook
        The window/level presets in force.
    bindings_file, presets_file : Path or None
        The user's files that change them (shown so the user can find them).
    problems : iterable of str
        Problems found while loading those files, shown at the top.
    parent : QWidget or None
    """

    def __init__(
        self,
        bindings: Bindings,
        presets: PresetBook,
        *,
        bindings_file: Path | None = None,
        presets_file: Path | None = None,
        problems: Iterable[str] = (),
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard, mouse and presets")
        self.resize(700, 700)
        layout = QVBoxLayout(self)
        problems = list(problems)
        if problems:
            warning = QLabel(
                "Some of your settings files could not be used:\n" + "\n".join(problems), self
            )
            warning.setWordWrap(True)
            warning.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            warning.setStyleSheet("color: #c8a070;")
            layout.addWidget(warning)

        self.tabs = QTabWidget(self)
        self.keyboard_table = self._keyboard_table(bindings, presets)
        self.mouse_table = self._mouse_table(bindings)
        self.presets_table = self._presets_table(presets)
        auto = ", ".join(native_key_text(k) for k in bindings.keys_for("window.auto")) or _UNBOUND
        presets_page = QWidget(self)
        presets_layout = QVBoxLayout(presets_page)
        presets_layout.setContentsMargins(0, 0, 0, 0)
        presets_layout.addWidget(self.presets_table)
        note = QLabel(_NO_PRESET_NOTE.format(auto=auto), presets_page)
        note.setWordWrap(True)
        note.setContentsMargins(6, 4, 6, 4)
        presets_layout.addWidget(note)
        self.tabs.addTab(self.keyboard_table, "Keyboard")
        self.tabs.addTab(self.mouse_table, "Mouse")
        self.tabs.addTab(presets_page, "Window/level presets")
        layout.addWidget(self.tabs, 1)

        self.files_label = QLabel(self._files_text(bindings_file, presets_file), self)
        self.files_label.setWordWrap(True)
        self.files_label.setTextFormat(Qt.TextFormat.PlainText)
        self.files_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.files_label)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    # ----------------------------------------------------------------------------------------------

    def _keyboard_table(self, bindings: Bindings, presets: PresetBook) -> QTableWidget:
        rows: list[tuple[str, str] | str] = []
        group = None
        for action, description in ACTIONS.items():
            if _group_of(action) != group:
                group = _group_of(action)
                rows.append(group)
            keys = _KEYS_JOIN.join(native_key_text(k) for k in bindings.keys_for(action))
            rows.append((description + _preset_names(action, presets), keys or _UNBOUND))
        return self._table(("Action", "Keys"), rows)

    def _mouse_table(self, bindings: Bindings) -> QTableWidget:
        rows = []
        for slot, action in bindings.mouse.items():
            how = "" if slot.endswith(WHEEL) else " click" if action == "locate" else " drag"
            rows.append((describe_mouse_slot(slot) + how, MOUSE_ACTIONS[action]))
        return self._table(("Mouse", "Action"), rows)

    def _presets_table(self, presets: PresetBook) -> QTableWidget:
        rows: list[tuple[str, ...] | str] = []
        for modality in presets.modalities():
            rows.append(modality)
            for preset in presets.for_modality(modality):
                key = str(preset.key) if preset.key is not None else _UNBOUND
                rows.append((preset.name, f"{preset.center:g}", f"{preset.width:g}", key))
        return self._table(("Preset", "Centre", "Width", "Key"), rows)

    def _table(self, headers: tuple[str, ...], rows: list) -> QTableWidget:
        """A read-only table; a plain-string row is a group heading spanning all columns."""
        table = QTableWidget(len(rows), len(headers), self)
        table.setHorizontalHeaderLabels(headers)
        table.verticalHeader().setVisible(False)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        table.setShowGrid(False)
        table.setWordWrap(False)
        table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 10)
        bold = QFont(table.font())
        bold.setBold(True)
        for row, values in enumerate(rows):
            if isinstance(values, str):
                item = QTableWidgetItem(values)
                item.setFont(bold)
                table.setItem(row, 0, item)
                table.setSpan(row, 0, 1, len(headers))
                continue
            for column, value in enumerate(values):
                item = QTableWidgetItem(value)
                if column > 0 and len(headers) > 2:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                table.setItem(row, column, item)
        header = table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        metrics = table.fontMetrics()
        for column in range(1, len(headers)):
            texts = [headers[column]] + [r[column] for r in rows if not isinstance(r, str)]
            width = max(metrics.horizontalAdvance(text) for text in texts) + 32  # + item padding
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Fixed)
            header.resizeSection(column, width)
        return table

    @staticmethod
    def _files_text(bindings_file: Path | None, presets_file: Path | None) -> str:
        lines = [
            "To change these, edit your own files (only the entries you change), then restart:"
        ]
        for what, path in (
            ("Keys and mouse", bindings_file),
            ("Window/level presets", presets_file),
        ):
            if path is None:
                continue
            state = "" if Path(path).exists() else "  (new file)"
            lines.append(f"  {what}: {path}{state}")
        if len(lines) == 1:
            return "Key bindings and presets are the shipped defaults."
        return "\n".join(lines)

    def rows_text(self, table: QTableWidget) -> list[list[str]]:
        """The text of a table, row by row (for tests and copy/paste)."""
        return [
            [
                table.item(row, column).text() if table.item(row, column) else ""
                for column in range(table.columnCount())
            ]
            for row in range(table.rowCount())
        ]
