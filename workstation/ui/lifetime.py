"""Destroying Qt objects at a known moment instead of inside the garbage collector.

``deleteLater()`` outside a running event loop waits, since ``processEvents()`` leaves deferred
deletes alone, and a Python collection that reaches a widget's wrappers first clears them while
the C++ widget still gets events (a crash, or attributes missing in ``paintEvent``).

:class:`GuiThreadCollector` makes every automatic collection of the window's process happen on
the GUI thread: Python otherwise collects in whichever thread happens to allocate (the series
opener reading headers, the frame service's threads, a receiving listener), and a Qt object
found in a garbage cycle there is destroyed from a thread that does not own it.
"""

from __future__ import annotations

import gc
import threading

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QWidget


def destroy_deferred() -> None:
    """Run the pending ``deleteLater()`` deletions now, then collect what they released."""
    if QApplication.instance() is not None:
        QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()


def destroy_now(obj: QObject) -> None:
    """Close ``obj`` (a widget) and destroy it before returning."""
    if isinstance(obj, QWidget):
        obj.close()
    obj.deleteLater()
    destroy_deferred()


class GuiThreadCollector(QObject):
    """Python's automatic garbage collection, run by a timer on the GUI thread instead.

    :meth:`start` turns the interpreter's own collection off; every ``interval_ms`` the timer
    collects the youngest generation, and the older ones when the interpreter's thresholds for
    them have passed (see :meth:`check`). Cyclic garbage then waits at most one interval, and
    worker threads never pause for a collection (reading a series' headers spent 6-83 ms of
    62-142 in collections, /work/notes/s8/gc_headers.py).
    :meth:`stop` runs a last collection and gives automatic collection back as it was.
    """

    def __init__(self, interval_ms: int = 500, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.check)
        self._was_enabled: bool | None = None
        self.collections = [0, 0, 0]  # per generation, for tests and diagnostics
        self._pending = 0  # objects moved towards the oldest generation since the last full one
        self._long_lived = 0  # objects in the oldest generation after the last full collection

    @property
    def active(self) -> bool:
        return self._was_enabled is not None

    def start(self) -> None:
        """Take collection over (idempotent); call it from the GUI thread."""
        if self._was_enabled is None:
            if threading.current_thread() is not threading.main_thread():
                raise RuntimeError("the collector runs on the GUI (main) thread")
            self._was_enabled = gc.isenabled()
            gc.disable()
            self._pending, self._long_lived = 0, len(gc.get_objects(generation=2))
            self._timer.start()

    def stop(self) -> None:
        """Collect once more and give collection back (idempotent)."""
        if self._was_enabled is not None:
            self._timer.stop()
            gc.collect()
            if self._was_enabled:
                gc.enable()
            self._was_enabled = None

    def check(self) -> None:
        """Collect the youngest generation, and the older ones as their thresholds pass (the
        timer calls it).

        The youngest one is collected at every tick, not only once its count passes its
        threshold: the count is allocations less deallocations, so the garbage of a few objects
        holding much memory (a closed series' volume in a cycle) would otherwise wait for 700
        other objects to be left behind. A full collection also waits, as the interpreter's
        own does, until the objects that reached the oldest generation since the last one are
        a quarter of those it held then: a window holding many series' headers is not scanned
        whole every minute.
        """
        _, t1, t2 = gc.get_threshold()
        c0, c1, c2 = gc.get_count()
        if c1 >= t1:
            self._pending += len(gc.get_objects(generation=0)) + len(gc.get_objects(generation=1))
            if c2 >= t2 and self._pending > self._long_lived // 4:
                gc.collect(2)
                self.collections[2] += 1
                self._pending, self._long_lived = 0, len(gc.get_objects(generation=2))
                return
            gc.collect(1)
            self.collections[1] += 1
        elif c0 > 0:
            gc.collect(0)
            self.collections[0] += 1
