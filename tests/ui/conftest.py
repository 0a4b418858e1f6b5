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
def _widgets_destroyed_before_they_are_collected():
    """No garbage collection while a test runs; at its teardown, Qt deletes what was closed,
    then Python collects.

    A widget a test made (``area = ViewerArea(...)``, registered with ``qtbot.addWidget``) is
    cyclic garbage once the test function returns, while it is still shown: pytest-qt closes it
    and calls ``deleteLater()`` only later, at teardown, and outside a running event loop that
    deletion waits further. A collection in between (any allocation may start one) cleared the
    widgets' Python attributes and destroyed the C++ window from inside the collector, with Qt
    still sending it events: runs died with SIGSEGV or SIGBUS in the main thread
    ("Garbage-collecting", ``QMetaMethod::name``, ``Shiboken::Object::cppPointer``) or failed with
    "'Viewport' object has no attribute 'model'" in ``paintEvent``. This fixture is set up first
    and torn down last, after pytest-qt's closing and the test's own fixtures (its frame
    services and loaders) have shut down.
    """
    gc.disable()
    try:
        yield
    finally:
        from workstation.ui.lifetime import destroy_deferred

        destroy_deferred()
        gc.enable()
