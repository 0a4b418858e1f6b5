"""Destroying Qt objects at a known moment instead of inside the garbage collector.

``deleteLater()`` outside a running event loop waits, since ``processEvents()`` leaves deferred
deletes alone, and a Python collection that reaches a widget's wrappers first clears them while
the C++ widget still gets events (a crash, or attributes missing in ``paintEvent``).
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QEvent, QObject
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
