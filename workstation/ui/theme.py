"""Dark theme for reading rooms, and HiDPI set-up.

Reading rooms are dim: bright panels around an image lower the contrast the eye can see in it. The
palette keeps backgrounds near black, text a mid grey that does not glare, and the selection accent a
muted steel blue; the style sheet (``resources/style/dark.qss``) shapes toolbars, docks, tab bars
and scroll bars in the same colours.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QCoreApplication, Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from workstation.ui.presets import packaged_resource

log = logging.getLogger(__name__)

_Role = QPalette.ColorRole
_Group = QPalette.ColorGroup

# Active/inactive colours per role, then what changes when a widget is disabled.
DARK_COLOURS: dict[QPalette.ColorRole, str] = {
    _Role.Window: "#1b1b1b",
    _Role.WindowText: "#b4b4b4",
    _Role.Base: "#141414",
    _Role.AlternateBase: "#1a1a1a",
    _Role.ToolTipBase: "#262626",
    _Role.ToolTipText: "#c4c4c4",
    _Role.PlaceholderText: "#6a6a6a",
    _Role.Text: "#b4b4b4",
    _Role.Button: "#262626",
    _Role.ButtonText: "#b4b4b4",
    _Role.BrightText: "#d9a0a0",
    _Role.Light: "#3a3a3a",
    _Role.Midlight: "#2e2e2e",
    _Role.Mid: "#232323",
    _Role.Dark: "#101010",
    _Role.Shadow: "#050505",
    _Role.Highlight: "#3f5266",
    _Role.HighlightedText: "#dcdcdc",
    _Role.Link: "#7f9bb8",
    _Role.LinkVisited: "#8e84a8",
}
DISABLED_COLOURS: dict[QPalette.ColorRole, str] = {
    _Role.WindowText: "#5a5a5a",
    _Role.Text: "#5a5a5a",
    _Role.ButtonText: "#5a5a5a",
    _Role.Highlight: "#2a2f35",
    _Role.HighlightedText: "#7a7a7a",
    _Role.PlaceholderText: "#474747",
    _Role.Link: "#4e5c6b",
}


def dark_palette() -> QPalette:
    """The reading-room palette (for all colour groups, with dimmer disabled colours)."""
    palette = QPalette()
    for role, colour in DARK_COLOURS.items():
        palette.setColor(role, QColor(colour))
    if hasattr(_Role, "Accent"):  # Qt >= 6.6
        palette.setColor(_Role.Accent, QColor(DARK_COLOURS[_Role.Highlight]))
    for role, colour in DISABLED_COLOURS.items():
        palette.setColor(_Group.Disabled, role, QColor(colour))
    return palette


def dark_style_sheet() -> str:
    """The dark style sheet shipped in ``resources/style/dark.qss`` (empty if it is missing)."""
    path = packaged_resource("style/dark.qss")
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        log.warning("dark style sheet %s not readable: %s", path, exc)
        return ""


def apply_dark_theme(app: QApplication) -> None:
    """Give the application the Fusion style, the dark palette and the dark style sheet.

    Parameters
    ----------
    app : QApplication
        The running application.
    """
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    app.setStyleSheet(dark_style_sheet())


def configure_hidpi() -> bool:
    """Let Qt scale by the screen's exact factor (150 % stays 1.5, not rounded to 2).

    Qt 6 is HiDPI-aware by default; this only sets the rounding policy, which must happen before
    the ``QApplication`` exists.

    Returns
    -------
    bool
        False (and a logged warning) when an application already exists, so nothing was changed.
    """
    if QCoreApplication.instance() is not None:
        log.warning("configure_hidpi() called after the QApplication was created: no effect")
        return False
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
        Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
    )
    return True
