"""Sending a stored presentation state or key-object document to a PACS node, off the GUI thread.

:class:`ObjectSender` asks which configured node (when not told), runs the C-STORE given by the
application (``send(sop_instance_uid, node) -> message``) on a worker thread, and answers with
one clear line: stored, or why not (node down, association rejected, the node refused the
object). The GUI thread never waits on the network.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QInputDialog, QWidget

from workstation.net.errors import NetError
from workstation.net.nodes import RemoteNode
from workstation.ui.browser.tasks import TaskRunner

SendFunction = Callable[[str, RemoteNode], object]
NodeList = Callable[[], Sequence[RemoteNode]]


class ObjectSender(QObject):
    """Sends archive objects (by SOP Instance UID) to the configured nodes.

    Parameters
    ----------
    send : callable
        ``send(sop_instance_uid, node)``; blocks; raises on failure (its message is shown).
    nodes : callable
        The configured nodes now (the list may change while the window is open).

    Signals
    -------
    finished(bool, str)
        Whether the node stored the object, and the message for the user.
    """

    finished = Signal(bool, str)

    def __init__(self, send: SendFunction, nodes: NodeList, parent: QObject | None = None):
        super().__init__(parent)
        self._send = send
        self._nodes = nodes
        self._runner = TaskRunner(1, "send", self)
        self._runner.finished.connect(lambda _t, value: self.finished.emit(*value))
        self._runner.failed.connect(lambda _t, text: self.finished.emit(False, text))
        self.busy = False
        self.finished.connect(self._done)

    def _done(self, _ok: bool, _text: str) -> None:
        self.busy = False

    def nodes(self) -> list[RemoteNode]:
        return list(self._nodes())

    def choose(self, parent: QWidget | None, what: str) -> RemoteNode | None:
        """Ask which node to send ``what`` to; None when cancelled or none is configured."""
        nodes = self.nodes()
        if not nodes:
            return None
        names = [f"{n.name}  ({n.ae_title}@{n.host}:{n.port})" for n in nodes]
        choice, ok = QInputDialog.getItem(parent, "Send to", f"Send {what} to", names, 0, False)
        if not ok:
            return None
        return nodes[names.index(choice)]

    def send(self, sop_uid: str, what: str, node: RemoteNode) -> bool:
        """Start sending ``sop_uid`` (called ``what`` in messages) to ``node``; the answer comes
        through :attr:`finished`. False when a send is already running."""
        if self.busy:
            return False
        self.busy = True
        self._runner.submit(self._job, sop_uid, what, node)
        return True

    def _job(self, sop_uid: str, what: str, node: RemoteNode) -> tuple[bool, str]:
        try:
            self._send(sop_uid, node)
        except NetError as exc:
            return False, f"{what} not sent: {exc}"
        except Exception as exc:  # noqa: BLE001 - the node refused it, or it is not stored
            return False, f"{what} not sent to {node.name}: {exc}"
        return True, f"{what} sent to {node.name} ({node.ae_title})"

    def wait(self, msecs: int = -1) -> bool:
        """Block until the running send is done (tests and shutdown only)."""
        return self._runner.wait(msecs)

    def shutdown(self) -> None:
        self._runner.shutdown()


__all__ = ["ObjectSender"]
