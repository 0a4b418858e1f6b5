"""Dark theme and the help panel."""

from __future__ import annotations

import textwrap

from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication

from workstation.ui.bindings import ACTIONS, load_bindings, native_key_text
from workstation.ui.help_panel import HelpPanel
from workstation.ui.presets import load_presets
from workstation.ui.theme import apply_dark_theme, configure_hidpi, dark_style_sheet


def test_dark_theme_applies(qapp):
    old_palette, old_sheet, old_style = qapp.palette(), qapp.styleSheet(), qapp.style().name()
    try:
        apply_dark_theme(qapp)
        palette = QApplication.palette()
        assert palette.color(QPalette.ColorRole.Window).lightness() < 40
        assert palette.color(QPalette.ColorRole.Base).lightness() < 40
        text = palette.color(QPalette.ColorRole.WindowText).lightness()
        assert 140 <= text <= 210, "mid-grey text: readable, not glaring"
        disabled = palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
        assert disabled.lightness() < text
        assert "QScrollBar" in qapp.styleSheet() and "QDockWidget" in qapp.styleSheet()
        qapp.setStyleSheet("")  # the style sheet wraps the style; without it Fusion shows
        assert qapp.style().name().lower() == "fusion"
    finally:
        qapp.setStyle(old_style)
        qapp.setPalette(old_palette)
        qapp.setStyleSheet(old_sheet)


def test_style_sheet_has_no_bright_colours():
    import re

    for colour in re.findall(r"#([0-9a-fA-F]{6})\b", dark_style_sheet()):
        red, green, blue = (int(colour[i : i + 2], 16) for i in (0, 2, 4))
        assert max(red, green, blue) <= 0xD0, f"#{colour} is too bright for a reading room"


def test_configure_hidpi_after_the_app_exists_is_refused(qapp):
    assert configure_hidpi() is False


def test_help_panel_lists_every_action_mouse_slot_and_preset(qtbot, tmp_path):
    bindings_file = tmp_path / "key_bindings.yaml"
    presets_file = tmp_path / "window_presets.yaml"
    presets_file.write_text(
        textwrap.dedent(
            """
            presets:
              MR:
                T2 brain: {center: 500, width: 1000, key: 1}
            """
        )
    )
    bindings = load_bindings(None)
    presets = load_presets(presets_file)
    panel = HelpPanel(
        bindings,
        presets,
        bindings_file=bindings_file,
        presets_file=presets_file,
        problems=["somewhere.yaml:3: something"],
    )
    qtbot.addWidget(panel)
    keyboard = panel.rows_text(panel.keyboard_table)
    descriptions = [row[0] for row in keyboard]
    for action, description in ACTIONS.items():
        matching = [row for row in keyboard if row[0].startswith(description)]
        assert matching, f"{action} is missing from the help panel"
        assert matching[0][1].split("  or  ")[0] == native_key_text(bindings.keys_for(action)[0])
    assert any("(CT: Brain; MR: T2 brain)" in d for d in descriptions)
    mouse = panel.rows_text(panel.mouse_table)
    assert ["Shift + Left button click", "Locate: move the other viewports to this point"] in mouse
    assert ["Ctrl + Wheel", "Zoom"] in mouse
    assert len(mouse) == len(bindings.mouse)
    presets_rows = panel.rows_text(panel.presets_table)
    assert ["Lung", "-600", "1500", "5"] in presets_rows
    assert ["T2 brain", "500", "1000", "1"] in presets_rows
    assert [r[0] for r in presets_rows if r[1] == ""] == ["CT", "MR"]  # modality headings
    assert str(bindings_file) in panel.files_label.text()
    assert str(presets_file) in panel.files_label.text()


def test_help_panel_screenshot_on_dark_theme(qtbot, qapp, tmp_path):
    old_palette, old_sheet, old_style = qapp.palette(), qapp.styleSheet(), qapp.style().name()
    try:
        apply_dark_theme(qapp)
        panel = HelpPanel(load_bindings(None), load_presets(None))
        qtbot.addWidget(panel)
        panel.show()
        qtbot.waitExposed(panel)
        image = panel.grab().toImage()
        assert image.save(str(tmp_path / "help.png"))
        # mostly dark: the average lightness of the panel stays low
        step = 8
        samples = [
            image.pixelColor(x, y).lightness()
            for x in range(0, image.width(), step)
            for y in range(0, image.height(), step)
        ]
        assert sum(samples) / len(samples) < 60
    finally:
        qapp.setStyle(old_style)
        qapp.setPalette(old_palette)
        qapp.setStyleSheet(old_sheet)
