"""Running browser jobs off the GUI thread: a small pool per widget, results as signals.

A :class:`TaskRunner` lives in the GUI thread; a job runs on its own :class:`QThreadPool`
(never the global one) and its return value (a frozen value) comes back through
:attr:`TaskRunner.finished` with the job's token, delivered in the GUI thread (the signal's
owner lives there, so the connection is queued). A job that raises is reported through
:attr:`TaskRunner.failed` with its message, never lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, Signal

log = logging.getLogger(__name__)


class TaskRunner(QObject):
    """Runs callables on a private thread pool.

    Parameters
    ----------
    threads : int
        Jobs that may run at once.
    name : str
        For log messages.
    parent : QObject or None
    """

    finished = Signal(int, object)  # token, return value
    failed = Signal(int, str)  # token, message

    def __init__(self, threads: int = 1, name: str = "browser", parent: QObject | None = None):
        super().__init__(parent)
        self.name = name
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max(1, threads))
        self._next = 0
        self._closed = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> int:
        """Queue ``fn(*args)``; return its token (0 once :meth:`shutdown` was called)."""
        if self._closed:
            return 0
        self._next += 1
        token = self._next
        self._pool.start(lambda: self._run(token, fn, args))
        return token

    def _run(self, token: int, fn: Callable[..., Any], args: tuple) -> None:
        try:
            value = fn(*args)
        except Exception as exc:  # noqa: BLE001 - reported to the GUI, never lost
            log.exception("%s job %d failed", self.name, token)
            if not self._closed:
                emit_from_worker(self, "failed", token, f"{type(exc).__name__}: {exc}")
            return
        if not self._closed:
            emit_from_worker(self, "finished", token, value)

    def clear(self) -> None:
        """Drop the jobs that have not started."""
        self._pool.clear()

    def wait(self, msecs: int = -1) -> bool:
        """Wait until every job is done (tests and shutdown only: it blocks)."""
        return self._pool.waitForDone(msecs)

    def shutdown(self) -> None:
        """Drop queued jobs and wait for the running ones; nothing is emitted afterwards."""
        self._closed = True
        self._pool.clear()
        self._pool.waitForDone()


def emit_from_worker(source: QObject, signal: str, *args: Any) -> None:
    """Emit ``source.<signal>(*args)`` from a worker thread (queued to the GUI thread).

    When the widget owning ``source`` was destroyed while the job ran, there is nobody to tell:
    the answer is dropped instead of raising in the worker.
    """
    try:
        getattr(source, signal).emit(*args)
    except RuntimeError:
        log.debug("%s: the receiver was destroyed; answer dropped", signal)
