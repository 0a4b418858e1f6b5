"""UI tests run offscreen: widgets are drawn into memory, no display needed.

Tests that need a real X server (VTK views, the window screenshot) start their own process with
``QT_QPA_PLATFORM=xcb`` on pytest-xvfb's display.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
