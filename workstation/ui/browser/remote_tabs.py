"""One tab per configured remote node in the browser's tab widget, kept in step with the node
list (the "Nodes" dialog adds, edits and removes nodes; their tabs follow)."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Sequence

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel, QPushButton, QTabWidget, QVBoxLayout, QWidget

from workstation.net.nodes import LocalIdentity, RemoteNode
from workstation.ui.browser.node_dialog import EchoFunction, NodeDialog, SaveNodes
from workstation.ui.browser.remote_tab import (
    QueryFunction,
    RemoteTab,
    RetrieveFunction,
    study_query_function,
)

NO_NODES_TITLE = "PACS"


class RemoteTabs(QObject):
    """Keeps a :class:`RemoteTab` per node in ``tabs`` (after the local tabs already there).

    Parameters
    ----------
    tabs : QTabWidget
        The browser's tab widget.
    nodes : sequence of RemoteNode
    identity : LocalIdentity
        Our AE title for queries and echoes.
    retrieve : RetrieveFunction or None
        ``RetrieveService.retrieve`` (lands the studies in the archive).
    save_nodes : SaveNodes or None
        Keeps an edited node list; None: the Nodes dialog is read-only (``read_only_reason``).
    query : callable, optional
        ``query(identity) -> QueryFunction``; default study-level C-FIND.
    echo_fn : EchoFunction, optional

    Signals
    -------
    study_retrieved(str)
        A study reached the local archive from some node (refresh the local list).
    nodes_changed(tuple)
        The node list was edited and saved.
    """

    study_retrieved = Signal(str)
    nodes_changed = Signal(tuple)

    def __init__(
        self,
        tabs: QTabWidget,
        nodes: Sequence[RemoteNode],
        identity: LocalIdentity,
        retrieve: RetrieveFunction | None,
        save_nodes: SaveNodes | None,
        *,
        query: Callable[[LocalIdentity], QueryFunction] = study_query_function,
        echo_fn: EchoFunction | None = None,
        read_only_reason: str = "",
        today: Callable[[], _dt.date] = _dt.date.today,
    ) -> None:
        super().__init__(tabs)
        self.tabs_widget = tabs
        self.identity = identity
        self.nodes: tuple[RemoteNode, ...] = tuple(nodes)
        self._retrieve = retrieve
        self._save = save_nodes
        self._query = query(identity)
        self._echo_fn = echo_fn
        self._read_only_reason = read_only_reason
        self._today = today
        self.tabs: dict[str, RemoteTab] = {}
        self._placeholder: QWidget | None = None
        self.dialog: NodeDialog | None = None
        self._rebuild()

    def tab(self, name: str) -> RemoteTab:
        """The tab of the node called ``name``."""
        return self.tabs[name]

    def _rebuild(self) -> None:
        """One tab per node, in order; a tab whose node is unchanged is kept (with its list)."""
        current = self.tabs_widget.currentWidget()
        current_name = current.node.name if isinstance(current, RemoteTab) else None
        old = self.tabs
        self.tabs = {}
        for tab in old.values():
            self.tabs_widget.removeTab(self.tabs_widget.indexOf(tab))
        if self._placeholder is not None:
            self._remove(self._placeholder)
            self._placeholder = None
        for node in self.nodes:
            tab = old.pop(node.name, None)
            if tab is None or tab.node != node:
                if tab is not None:
                    self._remove(tab)
                tab = RemoteTab(node, self._query, self._retrieve, today=self._today,
                                on_manage_nodes=self.manage_nodes)  # fmt: skip
                tab.study_retrieved.connect(self.study_retrieved)
            self.tabs[node.name] = tab
            self.tabs_widget.addTab(tab, node.name)
            self.tabs_widget.setTabToolTip(self.tabs_widget.indexOf(tab), node.label)
        for tab in old.values():  # removed nodes
            self._remove(tab)
        if not self.nodes:
            self._placeholder = self._no_nodes()
            self.tabs_widget.addTab(self._placeholder, NO_NODES_TITLE)
        if current_name in self.tabs:  # the node's tab stays in front, even when made afresh
            self.tabs_widget.setCurrentWidget(self.tabs[current_name])
        elif current is not None and self.tabs_widget.indexOf(current) >= 0:
            self.tabs_widget.setCurrentWidget(current)

    def _remove(self, widget: QWidget) -> None:
        index = self.tabs_widget.indexOf(widget)
        if index >= 0:
            self.tabs_widget.removeTab(index)
        if isinstance(widget, RemoteTab):
            widget.shutdown()
        widget.deleteLater()

    def _no_nodes(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        text = QLabel("No remote node is configured. Add your PACS (AE title, host, port) to "
                      "query it and retrieve studies into the local archive.", wordWrap=True)  # fmt: skip
        button = QPushButton("Nodes…")
        button.clicked.connect(self.manage_nodes)
        layout.addWidget(text)
        layout.addWidget(button)
        layout.addStretch(1)
        return page

    def manage_nodes(self) -> NodeDialog:
        """Open the Nodes dialog (non-modal); the tabs follow what it saves."""
        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.raise_()
            return self.dialog
        self.dialog = NodeDialog(self.nodes, self.identity, self._save, echo_fn=self._echo_fn,
                                 read_only_reason=self._read_only_reason,
                                 parent=self.tabs_widget.window())  # fmt: skip
        self.dialog.nodes_changed.connect(self.set_nodes)
        self.dialog.show()
        return self.dialog

    def set_nodes(self, nodes: Sequence[RemoteNode]) -> None:
        """Show one tab per node of ``nodes`` (a tab whose node changed is made afresh)."""
        self.nodes = tuple(nodes)
        self._rebuild()
        self.nodes_changed.emit(self.nodes)

    def shutdown(self) -> None:
        """Stop every tab's workers."""
        for tab in self.tabs.values():
            tab.shutdown()
        if self.dialog is not None:
            self.dialog.shutdown()
