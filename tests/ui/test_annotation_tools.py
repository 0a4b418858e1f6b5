"""The annotation tools on a real Viewport: real mouse and key events, synthetic images with known
values, the annotation's image coordinates under zoom, pan, rotation and flip, the measurement
shown, editing, undo/redo, and the pixels painted."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from synthetic import image_dataset, save, stack_files  # noqa: E402

from workstation.core.display_sets import build_display_sets, read_header_records  # noqa: E402
from workstation.core.frame_cache import FrameCache  # noqa: E402
from workstation.core.frame_source import FrameSource  # noqa: E402
from workstation.core.series_loader import SeriesLoader  # noqa: E402
from workstation.core.view_state import to_screen  # noqa: E402
from workstation.ui.bindings import load_bindings  # noqa: E402
from workstation.ui.frame_service import FrameService  # noqa: E402
from workstation.ui.presets import load_presets  # noqa: E402
from workstation.ui.viewport import Viewport  # noqa: E402

LEFT = Qt.MouseButton.LeftButton
NOMOD = Qt.KeyboardModifier.NoModifier
Type = QMouseEvent.Type


@pytest.fixture
def service(qapp):
    s = FrameService(lambda: SeriesLoader(workers=1))
    yield s
    s.shutdown()


def source_of(paths) -> FrameSource:
    records, _ = read_header_records(paths)
    headers = {r.path: r.ds for r in records}
    (ds,) = build_display_sets(records)
    src = FrameSource(ds, headers, FrameCache(64 * 1024 * 1024))
    for i in range(len(src)):
        src.decode(i)
    return src


def viewport(qtbot, service, src, tool=None, size=(400, 400)) -> Viewport:
    v = Viewport(service, load_bindings(), load_presets())
    qtbot.addWidget(v)
    v.resize(*size)
    v.show()
    v.model.set_source(src, 0)
    v.left_tool = tool
    v.grab()  # one paint: the model learns the viewport size
    return v


def send(v, kind, pos, button=LEFT, buttons=None, mods=NOMOD):
    if buttons is None:
        buttons = Qt.MouseButton.NoButton if kind == Type.MouseButtonRelease else button
    ev = QMouseEvent(kind, QPointF(*pos), QPointF(*pos), button, buttons, mods)
    QApplication.sendEvent(v, ev)


def screen(v, col, row):
    return to_screen(v.model.transform(), col, row)


def drag_image(v, points, steps=4):
    """Press at the first image point, move through the others, release at the last."""
    pts = [screen(v, *p) for p in points]
    send(v, Type.MouseButtonPress, pts[0])
    for a, b in zip(pts[:-1], pts[1:], strict=True):
        for k in range(1, steps + 1):
            t = k / steps
            p = (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)
            send(v, Type.MouseMove, p, Qt.MouseButton.NoButton, LEFT)
    send(v, Type.MouseButtonRelease, pts[-1])


def click_image(v, col, row):
    p = screen(v, col, row)
    send(v, Type.MouseButtonPress, p)
    send(v, Type.MouseButtonRelease, p)


def only(v):
    (a,) = v.annotation_tools.annotations_here()
    return a


def measured(v, a):
    v.grab()  # painting measures what has no value yet
    return v.annotation_tools.store().measurement(a.uid)


@pytest.fixture
def stack(tmp_path):
    """Six 64x64 CT slices, 0.5 mm pixels, slice k holding 100 k + column."""
    return source_of(stack_files(tmp_path, n=6, rows=64, cols=64, pixel_mm=0.5))


VIEWS = {
    "fit": lambda m: None,
    "zoomed_panned": lambda m: (m.zoom_by(2.5, (120.0, 90.0)), m.pan_by(-37.0, 21.0)),
    "rotated": lambda m: m.rotate(1),
    "flipped_rotated": lambda m: (m.flip_horizontal(), m.rotate(-1)),
}


@pytest.mark.parametrize("view", VIEWS)
def test_length_by_drag_lands_on_the_image_points(qtbot, service, stack, view) -> None:
    v = viewport(qtbot, service, stack, "length")
    VIEWS[view](v.model)
    drag_image(v, [(10.0, 12.0), (40.0, 52.0)])
    a = only(v)
    assert a.kind == "length"
    assert np.allclose(a.points, [(10.0, 12.0), (40.0, 52.0)], atol=1e-6)
    m = measured(v, a)
    assert m.values["length_mm"] == pytest.approx(0.5 * 50.0)  # 30 x 40 pixels of 0.5 mm
    assert m.lines == ("25.0 mm",) and m.calibration_source == "PixelSpacing"


def test_length_by_two_clicks_and_anisotropic_pixels(qtbot, service, tmp_path) -> None:
    stored = np.zeros((40, 60), np.int16)
    path = save(
        image_dataset(stored, PixelSpacing=[0.8, 0.5], RescaleSlope=1, RescaleIntercept=0),
        tmp_path / "a.dcm",
    )
    v = viewport(qtbot, service, source_of([path]), "length")
    click_image(v, 5, 5)
    assert v.annotation_tools.busy and not v.annotation_tools.annotations_here()
    send(v, Type.MouseMove, screen(v, 20, 25), Qt.MouseButton.NoButton, Qt.MouseButton.NoButton)
    assert v.annotation_tools._preview().points[1] == pytest.approx((20, 25))
    click_image(v, 20, 25)
    a = only(v)
    assert np.allclose(a.points, [(5, 5), (20, 25)], atol=1e-6)
    # columns step 0.5 mm, rows 0.8 mm: the true distance uses both
    assert measured(v, a).values["length_mm"] == pytest.approx(np.hypot(15 * 0.5, 20 * 0.8))


def test_uncalibrated_image_measures_in_pixels(qtbot, service, tmp_path) -> None:
    path = save(image_dataset(np.zeros((40, 40), np.uint16), modality="OT"), tmp_path / "u.dcm")
    v = viewport(qtbot, service, source_of([path]), "length")
    drag_image(v, [(3, 4), (6, 8)])
    m = measured(v, only(v))
    assert m.values["length_px"] == pytest.approx(5.0) and m.calibration_source == "none"


def test_angle_by_three_clicks_and_cobb_by_two_drags(qtbot, service, stack) -> None:
    v = viewport(qtbot, service, stack, "angle")
    for p in ((10, 30), (30, 30), (30, 10)):
        click_image(v, *p)
    a = only(v)
    assert a.kind == "angle" and measured(v, a).values["angle_deg"] == pytest.approx(90.0)
    v.annotation_tools.store().clear()
    v.left_tool = "cobb"
    drag_image(v, [(5, 10), (45, 10)])
    assert v.annotation_tools.busy  # waiting for the second line
    drag_image(v, [(5, 40), (45, 40 - 40 * np.tan(np.radians(25)))])
    c = only(v)
    assert c.kind == "cobb" and measured(v, c).values["angle_deg"] == pytest.approx(25.0)


def test_rectangle_roi_statistics_are_exact(qtbot, service, stack) -> None:
    v = viewport(qtbot, service, stack, "rectangle")
    v.model.rotate(1)
    drag_image(v, [(10, 5), (19, 14)])
    a = only(v)
    assert a.kind == "rectangle" and np.allclose(a.points, [(10, 5), (19, 14)])
    m = measured(v, a)
    k = 5  # display index 0 is the most superior slice: values 100 * 5 + column
    cols = np.arange(10, 20)
    assert m.values["n"] == 100
    assert m.values["mean"] == pytest.approx(100 * k + cols.mean())
    assert m.values["sd"] == pytest.approx(cols.std())
    assert (m.values["min"], m.values["max"]) == (100 * k + 10, 100 * k + 19)
    assert m.unit == "HU" and m.values["area_mm2"] == pytest.approx(9 * 9 * 0.25)


def test_ellipse_circle_freehand_and_click_polygon(qtbot, service, stack) -> None:
    v = viewport(qtbot, service, stack, "ellipse")
    drag_image(v, [(10, 10), (30, 20)])
    e = only(v)
    assert e.kind == "ellipse"
    assert np.allclose(e.points, [(10, 15), (30, 15), (20, 10), (20, 20)], atol=1e-6)
    store = v.annotation_tools.store()
    store.clear()
    v.left_tool = "circle"
    drag_image(v, [(32, 32), (32, 40)])
    c = only(v)
    assert c.kind == "circle" and np.allclose(c.points, [(32, 32), (32, 40)])
    assert measured(v, c).values["area_mm2"] == pytest.approx(np.pi * 64 * 0.25)
    store.clear()
    v.left_tool = "freehand"
    drag_image(v, [(10, 10), (40, 10), (40, 40), (10, 40)], steps=10)
    f = only(v)
    assert f.kind == "polygon" and len(f.points) >= 20
    assert measured(v, f).values["area_mm2"] == pytest.approx(30 * 30 * 0.25, rel=0.02)
    store.clear()
    v.left_tool = "polygon"
    for p in ((10, 10), (40, 10), (40, 40)):
        click_image(v, *p)
    last = screen(v, 10, 40)
    send(v, Type.MouseButtonPress, last)
    send(v, Type.MouseButtonRelease, last)
    send(v, Type.MouseButtonDblClick, last)
    send(v, Type.MouseButtonRelease, last)
    p = only(v)
    assert p.kind == "polygon" and np.allclose(p.points, [(10, 10), (40, 10), (40, 40), (10, 40)])
    assert v.annotation_tools.busy is False


def test_probe_reads_the_value_and_patient_point(qtbot, service, stack) -> None:
    v = viewport(qtbot, service, stack, "probe")
    start, end = screen(v, 5, 5), screen(v, 23, 17)
    send(v, Type.MouseButtonPress, start)
    assert v.annotation_tools._probe is not None  # shown while pressed
    send(v, Type.MouseMove, end, Qt.MouseButton.NoButton, LEFT)
    send(v, Type.MouseButtonRelease, end)
    a = only(v)
    assert a.kind == "point" and np.allclose(a.points, [(23, 17)])
    m = measured(v, a)
    assert m.values["value"] == 100 * 5 + 23
    plane = stack.plane(0)
    assert (m.values["x_mm"], m.values["y_mm"], m.values["z_mm"]) == pytest.approx(
        tuple(plane.pixel_to_patient(23, 17))
    )


def test_text_typed_in_place(qtbot, service, stack) -> None:
    v = viewport(qtbot, service, stack, "text")
    click_image(v, 12, 20)
    editor = v.annotation_tools.text_editor
    assert editor is not None and editor.isVisible()
    qtbot.keyClicks(editor, "pneumothorax")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    a = only(v)
    assert (a.kind, a.text) == ("text", "pneumothorax") and np.allclose(a.points, [(12, 20)])
    click_image(v, 30, 30)
    qtbot.keyClicks(v.annotation_tools.text_editor, "dropped")
    qtbot.keyClick(v.annotation_tools.text_editor, Qt.Key.Key_Escape)
    assert only(v) == a


def test_move_handle_delete_undo_redo_restore_exactly(qtbot, service, stack) -> None:
    v = viewport(qtbot, service, stack, "length")
    v.model.zoom_by(1.7, (200.0, 200.0))
    v.model.flip_vertical()
    drag_image(v, [(10, 10), (30, 10)])
    original = only(v)
    store = v.annotation_tools.store()
    assert store.selected == original.uid
    v.left_tool = "select"
    drag_image(v, [(20, 10), (25, 17)])  # the body: move by (5, 7)
    moved = only(v)
    assert np.allclose(moved.points, [(15, 17), (35, 17)], atol=1e-6)
    drag_image(v, [(35, 17), (35, 40)])  # the second end's handle
    edited = only(v)
    assert np.allclose(edited.points, [(15, 17), (35, 40)], atol=1e-6)
    assert measured(v, edited).values["length_mm"] == pytest.approx(0.5 * np.hypot(20, 23))
    qtbot.keyClick(v, Qt.Key.Key_Delete)
    assert v.annotation_tools.annotations_here() == []
    qtbot.keyClick(v, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert only(v) == edited
    qtbot.keyClick(v, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert only(v) == moved
    qtbot.keyClick(v, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert only(v) == original
    qtbot.keyClick(v, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert v.annotation_tools.annotations_here() == []
    shift_ctrl = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    for want in (original, moved, edited):
        qtbot.keyClick(v, Qt.Key.Key_Z, shift_ctrl)
        assert only(v) == want
    qtbot.keyClick(v, Qt.Key.Key_Z, shift_ctrl)
    assert v.annotation_tools.annotations_here() == []


def test_a_drawing_tool_edits_a_handle_instead_of_drawing(qtbot, service, stack) -> None:
    v = viewport(qtbot, service, stack, "rectangle")
    drag_image(v, [(10, 10), (30, 30)])
    drag_image(v, [(30, 10), (40, 5)])  # an unstored corner of the selected rectangle
    a = only(v)
    assert np.allclose(a.points, [(10, 5), (40, 30)])


def test_escape_cancels_a_drawing_and_a_drag(qtbot, service, stack) -> None:
    v = viewport(qtbot, service, stack, "angle")
    click_image(v, 10, 10)
    click_image(v, 20, 20)
    qtbot.keyClick(v, Qt.Key.Key_Escape)
    assert not v.annotation_tools.busy and v.annotation_tools.annotations_here() == []
    v.left_tool = "length"
    drag_image(v, [(10, 10), (30, 10)])
    before = only(v)
    send(v, Type.MouseButtonPress, screen(v, 20, 10))
    send(v, Type.MouseMove, screen(v, 20, 30), Qt.MouseButton.NoButton, LEFT)
    assert only(v) != before
    qtbot.keyClick(v, Qt.Key.Key_Escape)
    send(v, Type.MouseButtonRelease, screen(v, 20, 30))
    assert only(v) == before
    assert v.annotation_tools.store().undo_label() == "length"


def test_annotations_follow_their_image_when_scrolling(qtbot, service, stack) -> None:
    v = viewport(qtbot, service, stack, "arrow")
    drag_image(v, [(10, 10), (20, 20)])
    a = only(v)
    v.model.set_index(2)
    assert v.annotation_tools.annotations_here() == []
    v.model.set_index(0)
    assert only(v) == a
    assert a.image.sop_instance_uid == str(stack.header(0).SOPInstanceUID)


def test_painted_pixels_show_the_graphic(qtbot, service, stack) -> None:
    v = viewport(qtbot, service, stack, "length")
    v.model.rotate(1)
    drag_image(v, [(8, 40), (56, 40)])
    v.annotation_tools.store().select(None)
    img = v.grab().toImage()
    dpr = img.devicePixelRatio()

    def colour(col, row):
        x, y = screen(v, col, row)
        c = img.pixelColor(int(x * dpr), int(y * dpr))
        return c.red(), c.green(), c.blue()

    def yellow(c):
        return c[0] > 200 and c[1] > 170 and c[2] < 120

    def near_yellow(col, row):
        x, y = screen(v, col, row)
        return any(
            yellow(
                (
                    img.pixelColor(int(x * dpr) + dx, int(y * dpr) + dy).red(),
                    img.pixelColor(int(x * dpr) + dx, int(y * dpr) + dy).green(),
                    img.pixelColor(int(x * dpr) + dx, int(y * dpr) + dy).blue(),
                )
            )
            for dx in (-1, 0, 1)
            for dy in (-1, 0, 1)
        )

    for col in (15, 32, 50):
        assert near_yellow(col, 40)  # rotated 90: the line is vertical on screen
    assert not yellow(colour(32, 30))  # ten pixels beside it: the image, grey
    v.show_annotations = False
    img = v.grab().toImage()
    assert not near_yellow(32, 40)
