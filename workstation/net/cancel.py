"""A cancel token: the GUI's Cancel button (any thread) reaches the operation's association.

An operation registers a hook (send C-CANCEL, or abort) while it runs; :meth:`CancelToken.cancel`
calls the hooks at once on the caller's thread, so the request goes out without waiting for the
next response to arrive.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

#: A node still answering this long after our C-CANCEL gets it again, at most this many times
#: in all (then the operation's abort timer ends it). Some nodes drop a C-CANCEL that arrives
#: before they have started the operation (pynetdicom's SCP clears them then).
CANCEL_RESEND_S = 0.5
CANCEL_TRIES = 3


class CancelToken:
    """Cancellation shared between whoever asks (any thread) and the operation.

    Example
    -------
    >>> token = CancelToken()
    >>> results = find(identity, node, "STUDY", {"PatientName": "DOE*"}, cancel=token)
    ...     # doctest: +SKIP
    >>> token.cancel()  # from the GUI thread: C-CANCEL goes out now  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._hooks: list[Callable[[], None]] = []

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self) -> None:
        """Ask for cancellation (idempotent, any thread, returns at once)."""
        with self._lock:
            if self._event.is_set():
                return
            self._event.set()
            hooks = list(self._hooks)
        for hook in hooks:
            self._run(hook)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until cancelled or ``timeout``; True when cancelled."""
        return self._event.wait(timeout)

    def add_hook(self, hook: Callable[[], None]) -> Callable[[], None]:
        """Call ``hook`` on cancellation (at once if already cancelled); returns a remover."""
        with self._lock:
            already = self._event.is_set()
            if not already:
                self._hooks.append(hook)
        if already:
            self._run(hook)

        def remove() -> None:
            with self._lock:
                if hook in self._hooks:
                    self._hooks.remove(hook)

        return remove

    @staticmethod
    def _run(hook: Callable[[], None]) -> None:
        try:
            hook()
        except Exception:  # a hook failing (association already gone) must not reach the GUI
            log.debug("cancel hook %r failed", hook, exc_info=True)
