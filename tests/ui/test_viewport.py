"""Viewport interactions, asserted on the model state and on the pixels drawn (offscreen)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from synthetic import stack_files  # noqa: E402

from workstation.core.display_sets import build_display_sets, read_header_records  # noqa: E402
from workstation.core.frame_cache import FrameCache  # noqa: E402
from workstation.core.frame_source import FrameSource  # noqa: E402
from workstation.core.series_loader import SeriesLoader  # noqa: E402
from workstation.core.view_state import to_screen  # noqa: E402
from workstation.core.voi import Window, apply_window  # noqa: E402
from workstation.ui.bindings import load_bindings  # noqa: E402
from workstation.ui.frame_service import FrameService  # noqa: E402
from workstation.ui.presets import load_presets  # noqa: E402
from workstation.ui.viewer_area import ViewerArea, layout_cells  # noqa: E402
from workstation.ui.viewport import Viewport  # noqa: E402

MB = 1024 * 1024


@pytest.fixture
def service(qapp):
    s = FrameService(lambda: SeriesLoader(workers=1))
    yield s
    s.shutdown()


def sources(paths, cache=None) -> list[FrameSource]:
    records, _ = read_header_records(paths)
    headers = {r.path: r.ds for r in records}
    cache = cache or FrameCache(256 * MB)
    return [FrameSource(d, headers, cache) for d in build_display_sets(records)]


def decoded(src: FrameSource) -> FrameSource:
    for i in range(len(src)):
        src.decode(i)
    return src


def make_viewport(qtbot, service, size=(320, 320)) -> Viewport:
    v = Viewport(service, load_bindings(), load_presets())
    qtbot.addWidget(v)
    v.resize(*size)
    v.show()
    return v


def grey_at(v: Viewport, col: float, row: float) -> int:
    """The grey value drawn at the centre of image pixel (col, row)."""
    image = v.grab().toImage()
    x, y = to_screen(v.model.transform(), col, row)
    dpr = image.devicePixelRatio()
    return image.pixelColor(int(x * dpr), int(y * dpr)).red()


def expected(value: float, window: Window) -> int:
    return int(apply_window(np.array([value], np.float32), window)[0])


def mouse(v, kind, pos, button=Qt.MouseButton.LeftButton, mods=Qt.KeyboardModifier.NoModifier):
    buttons = Qt.MouseButton.NoButton if kind == QMouseEvent.Type.MouseButtonRelease else button
    ev = QMouseEvent(kind, QPointF(*pos), QPointF(*pos), button, buttons, mods)
    QApplication.sendEvent(v, ev)


def drag(v, start, end, button=Qt.MouseButton.LeftButton, mods=Qt.KeyboardModifier.NoModifier):
    mouse(v, QMouseEvent.Type.MouseButtonPress, start, button, mods)
    mid = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
    for p in (mid, end):
        ev = QMouseEvent(
            QMouseEvent.Type.MouseMove,
            QPointF(*p),
            QPointF(*p),
            Qt.MouseButton.NoButton,
            button,
            mods,
        )
        QApplication.sendEvent(v, ev)
    mouse(v, QMouseEvent.Type.MouseButtonRelease, end, button, mods)


def wheel(v, steps, pos=(100, 100), mods=Qt.KeyboardModifier.NoModifier):
    ev = QWheelEvent(
        QPointF(*pos),
        QPointF(*pos),
        QPoint(0, 0),
        QPoint(0, 120 * steps),
        Qt.MouseButton.NoButton,
        mods,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(v, ev)


def test_window_level_drag_changes_state_and_pixels(qtbot, service, tmp_path) -> None:
    (src,) = sources(stack_files(tmp_path, n=6))
    v = make_viewport(qtbot, service)
    v.model.set_source(decoded(src), 0)
    file_window = Window(500, 1000)
    value = 100 * 5 + 10  # display index 0 = the most superior slice, k = 5; column 10
    assert abs(grey_at(v, 10, 16) - expected(value, file_window)) <= 1
    drag(v, (150, 150), (150 + 256, 150 - 128))  # right: wider by one width; up: lower centre
    w = v.model.state.voi
    assert (w.width, w.center) == pytest.approx((2000, 0)) and v.model.state.voi_label == "user"
    assert abs(grey_at(v, 10, 16) - expected(value, w)) <= 1


def test_the_drawn_picture_is_reused_only_while_image_and_view_are_unchanged(
    qtbot, service, tmp_path
) -> None:
    """A repaint for something drawn over the image (reference lines, a crosshair) reuses the
    scaled picture; a new window, zoom or slice draws a new one, with the right pixels."""
    (src,) = sources(stack_files(tmp_path, n=6))
    v = make_viewport(qtbot, service)
    v.model.set_source(decoded(src), 0)
    v.grab()
    first = v._picture
    assert first is not None
    v.reference_lines = [((0.0, 0.0), (20.0, 20.0))]
    v.grab()
    assert v._picture is first  # only drawn over: the picture was blitted
    value = 100 * 5 + 10
    v.model.set_voi(Window(200, 400), "test")
    assert abs(grey_at(v, 10, 16) - expected(value, Window(200, 400))) <= 1
    assert v._picture is not first
    second = v._picture
    v.model.zoom_by(1.5)
    assert abs(grey_at(v, 10, 16) - expected(value, Window(200, 400))) <= 1
    assert v._picture is not second
    third = v._picture
    v.model.set_index(3)  # display index 3 = k 2
    assert abs(grey_at(v, 10, 16) - expected(100 * 2 + 10, Window(200, 400))) <= 1
    assert v._picture is not third


def test_wheel_scrolls_and_ctrl_wheel_zooms_about_the_cursor(qtbot, service, tmp_path) -> None:
    (src,) = sources(stack_files(tmp_path, n=6))
    v = make_viewport(qtbot, service)
    v.model.set_source(decoded(src), 0)
    wheel(v, -1)
    assert v.model.state.index == 1
    assert abs(grey_at(v, 3, 3) - expected(403, Window(500, 1000))) <= 1  # now slice k = 4
    wheel(v, 3)
    assert v.model.state.index == 0  # stops at the first image
    m0 = v.model.transform()
    anchor = (200.0, 120.0)
    under = np.linalg.inv(m0) @ np.array([*anchor, 1.0])
    wheel(v, 2, anchor, Qt.KeyboardModifier.ControlModifier)
    assert v.model.state.zoom_mode == "free"
    scale0 = np.sqrt(abs(np.linalg.det(m0[:2, :2])))
    assert v.model.state.zoom == pytest.approx(scale0 * 1.15**2)
    assert to_screen(v.model.transform(), under[0], under[1]) == pytest.approx(anchor)


def test_keys_invert_rotate_presets_and_ends(qtbot, service, tmp_path) -> None:
    (src,) = sources(stack_files(tmp_path, n=12))
    v = make_viewport(qtbot, service)
    v.model.set_source(decoded(src), 0)
    before = grey_at(v, 20, 4)
    qtbot.keyClick(v, Qt.Key.Key_I)
    assert v.model.state.invert
    assert abs(grey_at(v, 20, 4) - (255 - before)) <= 1
    qtbot.keyClick(v, Qt.Key.Key_BracketRight)  # rotate clockwise
    assert v.model.state.rotation == 90
    qtbot.keyClick(v, Qt.Key.Key_H)
    assert (v.model.state.rotation, v.model.state.flip) == (270, True)
    qtbot.keyClick(v, Qt.Key.Key_1)  # CT preset 1: brain
    assert (v.model.state.voi.center, v.model.state.voi.width) == (40, 80)
    assert v.model.state.voi_label == "preset Brain"
    qtbot.keyClick(v, Qt.Key.Key_End)
    assert v.model.state.index == 11
    qtbot.keyClick(v, Qt.Key.Key_Home)
    qtbot.keyClick(v, Qt.Key.Key_PageDown)
    assert v.model.state.index == 1
    qtbot.keyClick(v, Qt.Key.Key_R)  # reset keeps the image
    assert (v.model.state.rotation, v.model.state.voi, v.model.state.index) == (0, None, 1)


def test_undecoded_frames_come_from_the_service_and_stale_ones_are_not_drawn(
    qtbot, service, tmp_path
) -> None:
    (src,) = sources(stack_files(tmp_path, n=20))
    v = make_viewport(qtbot, service)
    v.model.set_source(src, 0)  # nothing decoded: painting asks the service
    v.repaint()
    qtbot.waitUntil(lambda: src.cached(0) is not None, timeout=5000)
    with qtbot.waitSignal(v.painted, timeout=5000):
        v.update()
    assert v.frames_painted >= 1 and v.current_renderer() is src.cached(0)


def test_repaints_are_held_back_while_the_next_frame_is_being_made(qtbot, service, tmp_path):
    """A view waiting for its next frame (here: its owner says one is pending) repaints its old
    image at most once per WAITING_REPAINT_S however often it is asked; with its frame ready
    every request repaints."""
    import time

    from workstation.ui.viewport import WAITING_REPAINT_S

    (src,) = sources(stack_files(tmp_path, n=4))
    v = make_viewport(qtbot, service)
    v.model.set_source(decoded(src), 0)
    with qtbot.waitSignal(v.painted, timeout=5000):
        v.update()

    def paints_while_asking(seconds: float) -> int:
        before = v.frames_painted
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            v.request_paint()
            QApplication.processEvents()
            time.sleep(0.004)
        qtbot.wait(int(WAITING_REPAINT_S * 1000) + 50)  # a held-back repaint lands
        return v.frames_painted - before

    v.frame_pending = True
    held = paints_while_asking(0.5)
    v.frame_pending = False
    free = paints_while_asking(0.5)
    assert 2 <= held <= 0.5 / WAITING_REPAINT_S + 2
    assert free > 2 * held


def test_background_volume_load_fills_the_scroll_bar(qtbot, service, tmp_path) -> None:
    (src,) = sources(stack_files(tmp_path, n=30))
    v = make_viewport(qtbot, service)
    v.model.set_source(src, 0)
    with qtbot.waitSignal(service.load_finished, timeout=30000):
        service.load(src)
    assert src.loaded.all()
    assert src.cached(29).decoder == "loader"


def test_cine_plays_at_the_chosen_rate(qtbot, service, tmp_path) -> None:
    (src,) = sources(stack_files(tmp_path, n=5))
    v = make_viewport(qtbot, service)
    v.model.set_source(decoded(src), 0)
    v.set_cine_fps(60)
    qtbot.keyClick(v, Qt.Key.Key_C)
    assert v.cine_running
    qtbot.waitUntil(lambda: v.model.state.index >= 3, timeout=3000)
    qtbot.keyClick(v, Qt.Key.Key_C)
    assert not v.cine_running


def test_layouts_and_maximise(qtbot, service) -> None:
    area = ViewerArea(service, load_bindings())
    qtbot.addWidget(area)
    area.resize(800, 600)
    area.show()
    for name, n in (("1x1", 1), ("2x2", 4), ("1+3", 4), ("1+2", 3), ("3x4", 12), ("4x4", 16)):
        area.set_layout(name)
        assert len(area.visible()) == n == len(layout_cells(name))
        assert all(v.isVisible() for v in area.visible())
    with pytest.raises(ValueError):
        layout_cells("5x5")
    area.set_layout("2x2")
    qtbot.keyClick(area.active, Qt.Key.Key_Tab)  # next viewport (not focus navigation)
    assert area.active is area.viewports[1] and area.viewports[1].active
    assert not area.viewports[0].active
    third = area.viewports[2]
    QApplication.sendEvent(
        third,
        QMouseEvent(
            QMouseEvent.Type.MouseButtonDblClick,
            QPointF(5, 5),
            QPointF(5, 5),
            Qt.MouseButton.LeftButton,
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier,
        ),
    )
    assert area.visible() == [third] and not area.viewports[0].isVisible()
    area.toggle_maximize(third)
    assert len(area.visible()) == 4 and area.viewports[0].isVisible()


def two_views(qtbot, service, tmp_path, second="coronal", n2=32, spacing2=1.0):
    for_uid = "1.2.3.4.5.6.7"
    axial = sources(stack_files(tmp_path / "ax", "axial", n=16, spacing=2.0, for_uid=for_uid))[0]
    other = sources(stack_files(tmp_path / "o", second, n=n2, spacing=spacing2, for_uid=for_uid))[0]
    area = ViewerArea(service, load_bindings(), load_presets())
    qtbot.addWidget(area)
    area.resize(800, 400)
    area.show()
    area.set_layout("1x2")
    a, b = area.viewports[:2]
    area.show_source(decoded(axial), a)
    area.show_source(decoded(other), b)
    area.set_active(a)
    return area, a, b


def test_reference_line_of_the_axial_slice_on_the_coronal(qtbot, service, tmp_path) -> None:
    area, a, b = two_views(qtbot, service, tmp_path)
    a.model.set_index(4)
    z = a.model.source.plane(4).origin[2]
    (seg,) = b.reference_lines
    # coronal rows run head to foot from z = +15.5: the line lies on the row at that height
    row = 15.5 - z
    assert seg[0][1] == pytest.approx(row) and seg[1][1] == pytest.approx(row)
    assert sorted([seg[0][0], seg[1][0]]) == pytest.approx([-0.5, 31.5])
    assert a.reference_lines == []
    area.show_reference_lines = False
    area.update_links()
    assert b.reference_lines == []


def test_synchronised_scrolling_by_position_and_by_index(qtbot, service, tmp_path) -> None:
    area, a, b = two_views(qtbot, service, tmp_path, second="axial", n2=32, spacing2=1.0)
    a.model.set_index(5)
    za = a.model.source.plane(5).origin[2]
    zb = b.model.source.plane(b.model.state.index).origin[2]
    assert abs(za - zb) <= 0.5  # the nearest of the 1 mm slices
    area.sync_mode = "index"
    a.model.set_index(15)
    assert b.model.state.index == 31  # the same place in the stack
    area.sync_mode = "off"
    a.model.set_index(0)
    assert b.model.state.index == 31


def test_locate_moves_the_other_viewport_to_the_point(qtbot, service, tmp_path) -> None:
    area, a, b = two_views(qtbot, service, tmp_path)
    area.locate(a, 10.0, 25.0)  # on the axial image: y = 25 - 15.5 = 9.5 mm
    y = b.model.source.plane(b.model.state.index).origin[1]
    assert abs(y - 9.5) <= 0.5
    col, row = b.locate_point
    assert col == pytest.approx(10.0)


def test_middle_drag_pans_and_linked_viewports_follow(qtbot, service, tmp_path) -> None:
    area, a, b = two_views(qtbot, service, tmp_path, second="axial", n2=16, spacing2=2.0)
    m0 = a.model.transform()
    drag(a, (100, 100), (140, 70), Qt.MouseButton.MiddleButton)
    assert a.model.state.pan == pytest.approx((40.0, -30.0))
    assert a.model.transform()[:2, 2] == pytest.approx(m0[:2, 2] + [40.0, -30.0])
    assert b.model.state.pan == (0.0, 0.0)  # not linked yet
    area.link_window = area.link_zoom = True
    drag(a, (100, 100), (110, 100), Qt.MouseButton.MiddleButton)
    drag(a, (100, 100), (164, 100))  # left drag: window
    assert b.model.state.pan == a.model.state.pan == pytest.approx((50.0, -30.0))
    assert b.model.state.voi == a.model.state.voi and a.model.state.voi.width > 1000
    qtbot.keyClick(a, Qt.Key.Key_S)  # sync off
    assert area.sync_mode == "off"
