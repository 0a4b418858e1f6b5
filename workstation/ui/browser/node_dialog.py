"""The "Nodes" dialog: list the remote nodes, add, edit or remove one (name, AE title, host,
port, retrieve method), and test one with C-ECHO (on a worker thread; the outcome is shown).

The dialog edits plain :class:`~workstation.net.nodes.RemoteNode` values; where they are kept is
the application's business: it passes a ``save`` callable (``NodeSettings.save`` of a book with
these nodes) and is told through :attr:`NodeDialog.nodes_changed`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from workstation.net.echo import EchoResult, echo
from workstation.net.nodes import RETRIEVE_METHODS, LocalIdentity, RemoteNode
from workstation.ui.browser.tasks import TaskRunner

log = logging.getLogger(__name__)

#: ``save(nodes)``: keep the node list (raises OSError/ValueError with a message when it cannot).
SaveNodes = Callable[[tuple[RemoteNode, ...]], None]
EchoFunction = Callable[[RemoteNode], EchoResult]

_ERROR_STYLE = "color: #ff8a80;"
_OK_STYLE = "color: #9ccc65;"


class NodeDialog(QDialog):
    """Manage the remote nodes.

    Parameters
    ----------
    nodes : sequence of RemoteNode
        The nodes as configured now.
    identity : LocalIdentity
        Our AE title (the calling AE of the echo).
    save : SaveNodes or None
        Keeps an edited list; None makes the dialog read-only (e.g. the settings file is broken).
    echo_fn : callable, optional
        ``echo_fn(node) -> EchoResult``; default :func:`workstation.net.echo.echo` as ``identity``.

    Signals
    -------
    nodes_changed(tuple)
        The list was saved (a tuple of RemoteNode).
    echo_finished(EchoResult)
        An echo ended; the result line shows it.
    """

    nodes_changed = Signal(tuple)
    echo_finished = Signal(object)

    def __init__(
        self,
        nodes: Sequence[RemoteNode],
        identity: LocalIdentity,
        save: SaveNodes | None,
        *,
        echo_fn: EchoFunction | None = None,
        read_only_reason: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Remote nodes")
        self.nodes: tuple[RemoteNode, ...] = tuple(nodes)
        self._save = save
        self._echo_fn = echo_fn or (lambda node: echo(identity, node))
        self._echoes = TaskRunner(2, "echo", self)
        self._echoes.finished.connect(self._echo_done)
        self._echoes.failed.connect(self._echo_failed)

        self.list = QListWidget(self)
        self.list.currentRowChanged.connect(self._row_changed)
        self.name = QLineEdit(objectName="NodeName", placeholderText="e.g. pacs")
        self.ae_title = QLineEdit(objectName="NodeAeTitle", placeholderText="PACS", maxLength=16)
        self.host = QLineEdit(objectName="NodeHost", placeholderText="pacs.example.org")
        self.port = QSpinBox(objectName="NodePort", minimum=1, maximum=65535, value=104)
        self.method = QComboBox(objectName="NodeMethod")
        self.method.addItems(list(RETRIEVE_METHODS))
        self.method.setToolTip("C-MOVE: the node connects back to our listener "
                               f"({identity.ae_title}, port {identity.port}); "
                               "C-GET: everything comes on our own connection")  # fmt: skip
        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("AE title", self.ae_title)
        form.addRow("Host", self.host)
        form.addRow("Port", self.port)
        form.addRow("Retrieve by", self.method)
        form.addRow("", QLabel(f"We are {identity.ae_title}, listening on port {identity.port}"))

        self.add_button = QPushButton("Add", toolTip="Add a node with these settings")
        self.save_button = QPushButton("Save", toolTip="Save the changes to the selected node")
        self.remove_button = QPushButton("Remove", toolTip="Remove the selected node")
        self.echo_button = QPushButton("Echo", toolTip="Test the node with C-ECHO")
        self.add_button.clicked.connect(self.add_node)
        self.save_button.clicked.connect(self.save_node)
        self.remove_button.clicked.connect(self.remove_node)
        self.echo_button.clicked.connect(self.echo_node)
        buttons = QHBoxLayout()
        for b in (self.add_button, self.save_button, self.remove_button, self.echo_button):
            buttons.addWidget(b)
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        buttons.addStretch(1)
        buttons.addWidget(close)
        self.result = QLabel("", wordWrap=True, objectName="NodeResult")
        self.result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        right = QVBoxLayout()
        right.addLayout(form)
        right.addStretch(1)
        top = QHBoxLayout()
        top.addWidget(self.list, 1)
        top.addLayout(right, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(top, 1)
        layout.addWidget(self.result)
        layout.addLayout(buttons)
        if save is None:
            for b in (self.add_button, self.save_button, self.remove_button):
                b.setEnabled(False)
            self._show_result(read_only_reason or "The node list cannot be saved.", ok=False)
        self._fill_list()
        self.resize(640, 360)

    # --- the list ---------------------------------------------------------------------------------
    def _fill_list(self, select: str = "") -> None:
        self.list.blockSignals(True)
        self.list.clear()
        for node in self.nodes:
            self.list.addItem(f"{node.name} — {node.ae_title}@{node.host}:{node.port} "
                              f"({node.retrieve_method})")  # fmt: skip
        self.list.blockSignals(False)
        names = [n.name for n in self.nodes]
        row = names.index(select) if select in names else (0 if names else -1)
        self.list.setCurrentRow(row)
        self._row_changed(row)

    def selected(self) -> RemoteNode | None:
        row = self.list.currentRow()
        return self.nodes[row] if 0 <= row < len(self.nodes) else None

    def _row_changed(self, row: int) -> None:
        node = self.nodes[row] if 0 <= row < len(self.nodes) else None
        if node is not None:
            self.name.setText(node.name)
            self.ae_title.setText(node.ae_title)
            self.host.setText(node.host)
            self.port.setValue(node.port)
            self.method.setCurrentText(node.retrieve_method)
        editable = self._save is not None
        self.save_button.setEnabled(editable and node is not None)
        self.remove_button.setEnabled(editable and node is not None)

    # --- editing ----------------------------------------------------------------------------------
    def _node_from_fields(self, base: RemoteNode | None = None) -> RemoteNode | None:
        """The fields as a node (keeping ``base``'s other settings); None with a message when a
        field is invalid."""
        values = {
            "name": self.name.text(),
            "ae_title": self.ae_title.text(),
            "host": self.host.text(),
            "port": self.port.value(),
            "retrieve_method": self.method.currentText(),
        }
        try:
            return base.replace(**values) if base is not None else RemoteNode(**values)
        except ValueError as exc:
            self._show_result(str(exc), ok=False)
            return None

    def _commit(self, nodes: tuple[RemoteNode, ...], select: str, what: str) -> bool:
        names = [n.name.lower() for n in nodes]
        duplicate = next((n for n in names if names.count(n) > 1), None)
        if duplicate is not None:
            self._show_result(f"a node called {duplicate!r} already exists", ok=False)
            return False
        if self._save is None:
            return False
        try:
            self._save(nodes)
        except (OSError, ValueError) as exc:
            self._show_result(f"Not saved: {exc}", ok=False)
            return False
        self.nodes = nodes
        self._fill_list(select)
        self._show_result(what, ok=True)
        self.nodes_changed.emit(nodes)
        return True

    def add_node(self) -> bool:
        """Add a node from the fields; False (with the reason shown) when refused."""
        node = self._node_from_fields()
        if node is None:
            return False
        return self._commit((*self.nodes, node), node.name, f"Added {node.label}")

    def save_node(self) -> bool:
        """Replace the selected node by the fields."""
        old = self.selected()
        if old is None:
            return False
        node = self._node_from_fields(old)
        if node is None:
            return False
        nodes = tuple(node if n is old else n for n in self.nodes)
        return self._commit(nodes, node.name, f"Saved {node.label}")

    def remove_node(self) -> bool:
        """Remove the selected node."""
        old = self.selected()
        if old is None:
            return False
        nodes = tuple(n for n in self.nodes if n is not old)
        return self._commit(nodes, "", f"Removed {old.name}")

    # --- echo -------------------------------------------------------------------------------------
    def echo_node(self) -> None:
        """C-ECHO the node the fields describe (saved or not), on a worker thread."""
        node = self._node_from_fields(self.selected())
        if node is None:
            return
        self._show_result(f"Echo {node.label}…", ok=None)
        self.echo_button.setEnabled(False)
        self._echoes.submit(self._echo_fn, node)

    def _echo_done(self, _token: int, result: EchoResult) -> None:
        self.echo_button.setEnabled(True)
        self._show_result(result.message, ok=result.ok)
        self.echo_finished.emit(result)

    def _echo_failed(self, _token: int, message: str) -> None:
        self.echo_button.setEnabled(True)
        self._show_result(f"Echo failed: {message}", ok=False)

    def _show_result(self, text: str, ok: bool | None) -> None:
        self.result.setText(text)
        self.result.setStyleSheet("" if ok is None else _OK_STYLE if ok else _ERROR_STYLE)

    def shutdown(self) -> None:
        """Wait for a running echo (bounded by the node's timeouts)."""
        self._echoes.shutdown()

    def done(self, result: int) -> None:  # noqa: D102 - Qt override: stop the workers first
        self.shutdown()
        super().done(result)
