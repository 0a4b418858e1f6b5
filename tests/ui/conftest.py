"""UI tests run offscreen: widgets are drawn into memory, no display needed.

Tests that need a real X server (VTK views, the window screenshot) start their own process with
``QT_QPA_PLATFORM=xcb`` on pytest-xvfb's display.
"""

from __future__ import annotations

import gc
import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _widgets_destroyed_after_each_test():
    """Destroy what a test closed before the next one starts.

    pytest-qt closes the widgets a test registered and calls ``deleteLater()``, but outside a
    running event loop those deletions wait for whichever later test first runs a nested loop,
    and the Python side of a closed window waits for some later garbage collection. Both then
    happened in the middle of another test, beside its threads. Here they happen at teardown,
    after the test's own fixtures (its frame services and loaders) have shut down.
    """
    yield
    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QApplication

    if QApplication.instance() is not None:
        QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()
