"""Measuring in the window and keeping it: the Length tool from the toolbar on the demo CT, the
measurement listed, saved as a GSPS in the archive with the study, listed for the series, and
re-applied (the measurement comes back, editable) after the user's own one is deleted."""

from __future__ import annotations

import pydicom
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from workstation.app.gui import Gui
from workstation.app.services import Services
from workstation.core.view_state import to_screen

GSPS = "1.2.840.10008.5.1.4.1.1.11.1"


def send(v, kind, pos, buttons=Qt.MouseButton.LeftButton):
    ev = QMouseEvent(kind, QPointF(*pos), QPointF(*pos), Qt.MouseButton.LeftButton, buttons,
                     Qt.KeyboardModifier.NoModifier)  # fmt: skip
    QApplication.sendEvent(v, ev)


@pytest.fixture
def demo(qapp, tmp_path):
    """The window on the demo CT, its first viewport active: ``(services, gui, viewport)``."""
    services = Services(home=tmp_path / "home")
    gui = Gui(services)
    try:
        gui.window.resize(1600, 1000)
        gui.window.show()
        assert gui.install_demo(ask=False)
        assert gui.open_demo_study()
        assert gui.wait_until_painted(timeout_s=60)
        v = gui.window.viewer.visible()[0]
        gui.window.viewer.set_active(v)
        yield services, gui, v
    finally:
        gui.close()
        services.archive.close()


def test_length_measured_saved_as_gsps_and_reapplied(qtbot, demo) -> None:
    services, gui, v = demo
    gui.window.set_mouse_tool("length")
    assert v.left_tool == "length" and gui.window.measure_button.isChecked()
    m = v.model.transform()
    a, b = to_screen(m, 100, 256), to_screen(m, 400, 256)
    send(v, QMouseEvent.Type.MouseButtonPress, a)
    send(v, QMouseEvent.Type.MouseMove, ((a[0] + b[0]) / 2, a[1]))
    send(v, QMouseEvent.Type.MouseMove, b)
    send(v, QMouseEvent.Type.MouseButtonRelease, b, Qt.MouseButton.NoButton)
    store = v.annotation_tools.store()
    (length,) = store.all()
    assert length.kind == "length"
    assert abs(length.points[0][0] - 100) < 1 and abs(length.points[1][0] - 400) < 1
    spacing = float(v.model.source.header(v.model.state.index).PixelSpacing[1])
    # measured at once when the frame is in the cache, else at the next paint (the series
    # may still be loading in the background and its frames moving into the volume)
    qtbot.waitUntil(lambda: store.measurement(length.uid) is not None, timeout=10000)
    measured = store.measurement(length.uid)
    want = (length.points[1][0] - length.points[0][0]) * spacing
    assert abs(measured.values["length_mm"] - want) < 0.1
    # saved as a GSPS into the archive, with the study
    panel = gui.presentation_panel
    text = panel.save("NODULE", "length across the chest")
    assert "saved" in text
    study = v.model.source.header(0).StudyInstanceUID
    rows = list(services.archive.find("IMAGE", {"StudyInstanceUID": study, "SOPClassUID": GSPS,
                                                "rel_path": ""}))  # fmt: skip
    assert len(rows) == 1
    ds = pydicom.dcmread(services.archive.path_of(rows[0]["rel_path"]))
    assert ds.ContentLabel == "NODULE"
    # listed for the series; the user's own measurement deleted; applying brings it back
    panel.refresh()
    assert panel.list.count() == 1
    store.remove(length.uid)
    assert store.all() == []
    panel.list.setCurrentRow(0)
    assert panel.apply_selected()
    shown = v.annotation_tools.store().all()
    assert [a.kind for a in shown] == ["length"]
    assert all(
        abs(p[0] - q[0]) < 0.01 and abs(p[1] - q[1]) < 0.01
        for p, q in zip(shown[0].points, length.points, strict=True)
    )
    panel.leave()
    assert v.annotation_tools.store().all() == []  # back to the user's own (deleted) state


def test_key_images_saved_listed_reopened_and_sent_in_the_window(qtbot, demo, tmp_path) -> None:
    """Mark two CT slices, save the key-image note; it is listed with the study (and as a KO
    series in the archive); opening it shows just those two slices as a stack, marked. With no
    PACS node set up, "Send to…" says so."""
    import os
    from pathlib import Path

    services, gui, v = demo
    panel = gui.presentation_panel
    gui.window.side_dock.show()  # View > Annotations and presentation states
    gui.window.side_tabs.setCurrentWidget(panel)
    src = v.model.source
    chosen = (len(src) * 2 // 3, len(src) // 3)  # marked in this order, shown in stack order
    for i in chosen:
        v.model.set_index(i)
        panel.toggle_key_image()
        assert panel.mark_button.isChecked()
    uids = [str(src.header(i).SOPInstanceUID) for i in sorted(chosen)]
    panel.save_key_images_dialog(description="nodule and hilum")
    assert "Key images (2) saved" in panel.status.text()
    keys = panel.key_panel
    assert keys.list.count() == 1 and "nodule and hilum" in keys.list.item(0).text()
    study = str(src.header(0).StudyInstanceUID)
    (ko,) = list(services.archive.find("SERIES", {"StudyInstanceUID": study, "Modality": "KO",
                                                  "SeriesDescription": ""}))  # fmt: skip
    assert ko["SeriesDescription"] == "Key images: nodule and hilum"
    keys.list.setCurrentRow(0)
    shots = Path(os.environ.get("WS_SCREENSHOTS", tmp_path))
    gui.screenshot(shots / "window_key_images_listed.png")
    with qtbot.waitSignal(keys.opened, timeout=30000) as got:
        keys.open_selected()
    stack = got.args[0]
    assert v.model.source is stack.source and stack.missing == ()
    assert [f.sop_instance_uid for f in v.model.source.frames] == uids
    assert panel.mark_button.isChecked()
    assert gui.wait_until_painted(timeout_s=60)
    gui.screenshot(shots / "window_key_images_opened.png")
    # no node configured: said, nothing sent
    assert not panel.send_selected("key images")
    assert "No PACS node is set up" in panel.status.text()
