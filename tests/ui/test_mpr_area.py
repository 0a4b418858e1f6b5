"""The MPR workspace on a synthetic volume with markers at known patient points (offscreen).

Everything goes through the real parts: files on disk, the series loader, the frame service's
decoder thread reslicing with VTK, the viewports painting.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "render"))
from mpr_synthetic import MARKER, marker_volume, write_series  # noqa: E402

from workstation.core.display_sets import build_display_sets, read_header_records  # noqa: E402
from workstation.core.frame_cache import FrameCache  # noqa: E402
from workstation.core.frame_source import FrameSource  # noqa: E402
from workstation.core.geometry import orientation_labels  # noqa: E402
from workstation.core.series_loader import SeriesLoader  # noqa: E402
from workstation.core.view_state import screen_axes_in_patient, to_screen  # noqa: E402
from workstation.ui.frame_service import FrameService  # noqa: E402
from workstation.ui.mpr.mpr_area import MprArea  # noqa: E402

SHIFT = Qt.KeyboardModifier.ShiftModifier
NONE = Qt.KeyboardModifier.NoModifier


@pytest.fixture
def service(qapp):
    s = FrameService(lambda: SeriesLoader(workers=1))
    yield s
    s.shutdown()


@pytest.fixture(scope="module")
def mv():
    return marker_volume()


@pytest.fixture
def area(qtbot, service, tmp_path, mv):
    paths = write_series(tmp_path / "series", mv)
    records, _ = read_header_records(paths)
    (ds,) = build_display_sets(records)
    src = FrameSource(ds, {r.path: r.ds for r in records}, FrameCache(256 * 1024 * 1024))
    a = MprArea(service)
    qtbot.addWidget(a)
    a.resize(960, 720)
    a.show()
    a.open_source(src)  # not loaded yet: the store loads it through the service, then builds
    qtbot.waitUntil(lambda: a.shared is not None, timeout=20000)
    settle(qtbot, a)
    return a


def on_point(area) -> bool:
    return all(
        v.model.state.index == v.model.source.nearest_to(area.crosshair.point)
        and v.current_renderer() is not None
        for v in area.viewports.values()
    )


def settle(qtbot, area) -> None:
    """Wait until every view shows the slice through the crosshair at full quality (a view
    still waiting for a frame takes the newest point once it has painted it; slabs are drafted
    while the crosshair moves)."""
    for v in area.viewports.values():
        v.update()
    qtbot.waitUntil(lambda: not area.drafting and on_point(area), timeout=10000)
    for v in area.viewports.values():
        v.repaint()


def screen_of(v, xyz) -> tuple[float, float]:
    c, r, _ = v.current_plane().patient_to_pixel(np.asarray(xyz, float))
    return to_screen(v.model.transform(), c, r)


def send(v, kind, pos, button=Qt.MouseButton.LeftButton, mods=NONE) -> None:
    buttons = Qt.MouseButton.NoButton if kind == QMouseEvent.Type.MouseButtonRelease else button
    ev = QMouseEvent(kind, QPointF(*pos), QPointF(*pos), button, buttons, mods)
    QApplication.sendEvent(v, ev)


def click(v, pos, mods=NONE) -> None:
    send(v, QMouseEvent.Type.MouseButtonPress, pos, mods=mods)
    send(v, QMouseEvent.Type.MouseButtonRelease, pos, mods=mods)


def drag(v, points, mods=NONE) -> None:
    send(v, QMouseEvent.Type.MouseButtonPress, points[0], mods=mods)
    for p in points[1:]:
        send(v, QMouseEvent.Type.MouseMove, p, mods=mods)
    send(v, QMouseEvent.Type.MouseButtonRelease, points[-1], mods=mods)


def marker_at_crosshair(v, tolerance_mm: float) -> float:
    """Distance (mm) from the crosshair to the centroid of the bright voxels around it in the
    frame ``v`` shows; asserts the marker is there."""
    r = v.current_renderer()
    plane = v.current_plane()
    c0, r0, dist = plane.patient_to_pixel(v.crosshair.point)
    assert abs(dist) <= v.model.source.step_mm / 2 + 1e-6
    values = r.modality
    rows, cols = np.nonzero(values > MARKER / 2)
    near = np.hypot(cols - c0, rows - r0) * plane.spacing_rc[0] <= 6.0
    assert near.any(), f"{v.view}: no marker near the crosshair"
    centroid = plane.pixel_to_patient(cols[near].mean(), rows[near].mean())
    d = float(np.linalg.norm(centroid - v.crosshair.point))
    assert d <= tolerance_mm, f"{v.view}: marker {d:.2f} mm from the crosshair"
    return d


def grey(v, pos) -> int:
    image = v.grab().toImage()
    dpr = image.devicePixelRatio()
    return image.pixelColor(int(pos[0] * dpr), int(pos[1] * dpr)).red()


def test_clicking_the_marker_in_the_axial_view_puts_the_crosshair_there(qtbot, area, mv):
    ax, cor, sag = (area.viewports[v] for v in ("axial", "coronal", "sagittal"))
    marker = mv.markers["centre"]
    # scroll the axial view to the marker's slice: the crosshair follows along the normal
    ax.model.set_index(ax.model.source.nearest_to(marker))
    assert abs(area.crosshair.point[2] - marker[2]) <= mv.spacing_mm / 2 + 1e-6
    settle(qtbot, area)
    click(ax, screen_of(ax, marker), SHIFT)  # locate (shift + left) on the marker
    voxel = max(mv.pixel_mm, mv.spacing_mm)
    assert np.linalg.norm(area.crosshair.point - marker) <= voxel
    settle(qtbot, area)
    for v in (ax, cor, sag):
        marker_at_crosshair(v, voxel)
        assert grey(v, screen_of(v, area.crosshair.point)) == 255  # drawn: HU 1500, W400 L40
    # each view's corner text names the reformat
    assert cor.model.source.header(cor.model.state.index).SeriesDescription.startswith(
        "MPR coronal"
    )


def test_dragging_the_centre_moves_the_point_and_the_other_views_follow(qtbot, area, mv):
    sag = area.viewports["sagittal"]
    ax, cor = area.viewports["axial"], area.viewports["coronal"]
    before = (ax.model.state.index, cor.model.state.index)
    start = screen_of(sag, area.crosshair.point)
    end = (start[0] - 40, start[1] + 30)
    drag(sag, [start, (start[0] - 20, start[1] + 15), end])
    expected = sag.patient_at(*end)
    np.testing.assert_allclose(area.crosshair.point, expected, atol=1e-6)
    settle(qtbot, area)
    assert (ax.model.state.index, cor.model.state.index) != before
    assert ax.model.state.index == ax.model.source.nearest_to(expected)
    assert cor.model.state.index == cor.model.source.nearest_to(expected)
    assert sag.model.state.voi is None  # the drag took the crosshair, not the window


def test_scrolling_a_view_moves_the_crosshair_and_a_line_drag_moves_one_plane(qtbot, area):
    cor = area.viewports["coronal"]
    p0 = area.crosshair.point.copy()
    i0 = cor.model.state.index
    cor.model.scroll(5)
    src = cor.model.source
    # the point lands on the new slice, moving only along the coronal normal
    assert np.dot(area.crosshair.point, src.normal) == pytest.approx(src.position(i0 + 5))
    assert abs(src.position(i0 + 5) - src.position(i0)) == pytest.approx(5 * src.step_mm)
    moved = area.crosshair.point - p0
    assert np.linalg.norm(np.cross(moved, src.normal)) < 1e-6
    settle(qtbot, area)
    # drag the axial (red) line in the coronal view down by 50 px: only z changes
    ax = area.viewports["axial"]
    centre = np.array(screen_of(cor, area.crosshair.point))
    _, dirs = cor.crosshair_on_screen()
    on_line = centre + 80 * dirs["axial"]
    p1 = area.crosshair.point.copy()
    drag(cor, [tuple(on_line), tuple(on_line + (0, 25)), tuple(on_line + (0, 50))])
    d = area.crosshair.point - p1
    want = cor.patient_at(*(on_line + (0, 50))) - cor.patient_at(*on_line)
    assert d[2] == pytest.approx(want[2]) and d[2] < -5
    assert abs(d[0]) < 1e-6 and abs(d[1]) < 1e-6
    settle(qtbot, area)
    assert ax.model.state.index == ax.model.source.nearest_to(area.crosshair.point)


def test_rotating_makes_an_oblique_plane_whose_labels_agree_with_its_geometry(qtbot, area, mv):
    ax, cor, sag = (area.viewports[v] for v in ("axial", "coronal", "sagittal"))
    marker = mv.markers["centre"]
    area.set_point(marker)
    settle(qtbot, area)
    centre = np.array(screen_of(ax, area.crosshair.point))
    (_, handle) = next((o, h) for o, h in ax.handles() if o == "coronal")
    rel = handle - centre
    turn = math.radians(30)  # clockwise on the screen (y down)
    path = []
    for k in range(1, 7):
        t = turn * k / 6
        rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
        path.append(tuple(centre + rot @ rel))
    drag(ax, [tuple(handle), *path])
    assert not area.crosshair.view_is_oblique("axial")
    assert area.crosshair.view_is_oblique("coronal") and area.crosshair.view_is_oblique("sagittal")
    x = area.crosshair.axes["coronal"].x_axis
    assert math.degrees(math.atan2(x[1], x[0])) == pytest.approx(30, abs=1.0)
    settle(qtbot, area)
    ds = cor.model.source.header(cor.model.state.index)
    assert ds.SeriesDescription.startswith("MPR oblique")
    # the labels the viewport draws come from the frame's plane through the display transform
    right, down = screen_axes_in_patient(
        cor.model.transform(), cor.current_plane().row_dir, cor.current_plane().col_dir
    )
    labels = orientation_labels(right, down)
    assert labels["right"] == "LP" and labels["left"] == "RA" and labels["top"] == "H"
    iop = np.array(ds.ImageOrientationPatient, float)
    np.testing.assert_allclose(iop[:3], x, atol=1e-5)
    voxel = max(mv.pixel_mm, mv.spacing_mm)
    for v in (cor, sag):
        marker_at_crosshair(v, voxel)
    # the axial lines turned with the planes: the coronal line now runs at 30 degrees
    _, dirs = ax.crosshair_on_screen()
    angle = math.degrees(math.atan2(dirs["coronal"][1], dirs["coronal"][0])) % 180
    assert angle == pytest.approx(30, abs=1.0)
    area.reset()
    assert not area.crosshair.is_oblique
    settle(qtbot, area)
    assert cor.model.source.header(0).SeriesDescription.startswith("MPR coronal")


def test_slab_mip_shows_a_marker_off_the_central_plane(qtbot, area, mv):
    ax = area.viewports["axial"]
    area.set_point(mv.markers["centre"])
    settle(qtbot, area)
    off = mv.markers["off_plane"]  # 6 mm below the plane, 10 voxels aside
    pos = screen_of(ax, off)
    assert grey(ax, pos) == 0
    # the control, as the user sets it (14 mm: the other planes' dashed slab edges, drawn 7 mm
    # from their lines, stay clear of the marker 8 mm aside)
    area.slab_spin.setValue(14.0)
    assert area.crosshair.slab_mm == 14.0 and area.crosshair.mode == "mip"
    settle(qtbot, area)
    src = ax.model.source
    assert src.header(ax.model.state.index).SeriesDescription.startswith("MPR axial 14 mm MIP")
    assert grey(ax, pos) == 255
    area.mode_combo.setCurrentIndex(area.mode_combo.findData("minip"))
    settle(qtbot, area)
    assert grey(ax, pos) == 0
    assert grey(ax, screen_of(ax, mv.markers["centre"])) == 0  # 3 voxels thick, slab 14 mm


def test_slab_views_are_drafted_while_the_crosshair_moves_then_made_in_full(qtbot, area, mv):
    """Moving through a slab shows half-resolution drafts (made ~3.5x faster); once the
    crosshair rests the views get the full-quality slab, exactly what the reslicer makes."""
    from workstation.ui.mpr.mpr_area import DRAFT_SETTLE_MS

    area.set_slab(10.0, "mip")
    settle(qtbot, area)
    ax = area.viewports["axial"]
    src = ax.model.source
    area.set_point(np.asarray(mv.markers["centre"], float) + (0.0, 0.0, 4.0))
    assert area.drafting
    index = ax.model.state.index
    qtbot.waitUntil(lambda: ax.shown_frame == (src.uid, index), timeout=10000)
    draft = src.cache.get((src.uid, "draft", index))
    assert draft is not None and src.cache.get((src.uid, index)) is None
    qtbot.wait(DRAFT_SETTLE_MS + 50)
    settle(qtbot, area)
    full = ax.current_renderer()
    assert full is src.cache.get((src.uid, index)) and full is not draft
    want = src.reslicer.reslice(src.reslice_plane(index), slab_mm=10.0, mode="mip")
    got = np.asarray(full.modality)
    inside = np.isfinite(want)
    assert np.array_equal(got[inside], want[inside])
    assert ax.shown_frame == (src.uid, index)
    # coronal and sagittal: rows between the 1.5 mm slices (sampled by vtkImageReslice)
    for view in ("coronal", "sagittal"):
        v = area.viewports[view]
        s, i = v.model.source, v.model.state.index
        want = s.reslicer.reslice(s.reslice_plane(i), slab_mm=10.0, mode="mip")
        got = np.asarray(v.current_renderer().modality)
        inside = np.isfinite(want)
        assert inside.any() and np.array_equal(got[inside], want[inside]), view


def test_window_level_is_linked_across_the_three_views(qtbot, area):
    ax, cor, sag = (area.viewports[v] for v in ("axial", "coronal", "sagittal"))
    w, h = ax.width(), ax.height()
    drag(ax, [(w * 0.15, h * 0.85), (w * 0.15 + 64, h * 0.85 - 32)])
    voi = ax.model.state.voi
    assert voi is not None and voi.width == pytest.approx(400 + 100)
    assert cor.model.state.voi == voi and sag.model.state.voi == voi
    cor.model.zoom_by(2.0)
    assert ax.model.state.zoom_mode == "fit"  # zoom and pan stay per view


def test_length_measured_in_a_reformat_uses_the_reformat_pixel_size(qtbot, area, mv):
    sag = area.viewports["sagittal"]
    area.set_point(mv.markers["centre"])
    settle(qtbot, area)
    sag.left_tool = "length"
    a = area.crosshair.point + np.array([0.0, -14.0, 9.0])
    b = area.crosshair.point + np.array([0.0, 10.0, -9.0])  # 30 mm apart in the sagittal plane
    drag(sag, [screen_of(sag, a), screen_of(sag, b)])
    sag.repaint()
    (ann,) = sag.annotation_tools.annotations_here()
    m = sag.annotation_tools.measure(ann)
    assert m.unit == "mm" and m.values["length_mm"] == pytest.approx(30.0, abs=0.05)
    # a frame elsewhere in the stack does not carry it
    sag.model.scroll(3)
    assert sag.annotation_tools.annotations_here() == []


def test_layouts_and_the_point_signal(qtbot, area):
    got = []
    area.point_changed.connect(lambda uid, p: got.append((uid, p)))
    area.set_point(area.crosshair.point + (1.0, 2.0, 3.0))
    assert got and got[-1][0] and np.allclose(got[-1][1], area.crosshair.point)
    area.set_layout("2x2")
    assert area.view_3d.isVisible() and all(v.isVisible() for v in area.viewports.values())
    area.set_layout("1+2")
    assert not area.view_3d.isVisible()
    ax = area.viewports["axial"]
    assert ax.width() > area.viewports["coronal"].width() * 0.9
    assert ax.height() > 1.8 * area.viewports["coronal"].height()
    with pytest.raises(ValueError, match="MPR layout"):
        area.set_layout("3x3")


def test_a_series_that_is_not_a_volume_says_why(qtbot, service, tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
    from synthetic import image_dataset, save

    path = save(image_dataset(np.zeros((8, 8), np.int16)), tmp_path / "one.dcm")
    records, _ = read_header_records([path])
    (ds,) = build_display_sets(records)
    src = FrameSource(ds, {r.path: r.ds for r in records}, FrameCache(1 << 24))
    a = MprArea(service)
    qtbot.addWidget(a)
    failures = []
    a.status.connect(failures.append)
    a.open_source(src)
    qtbot.waitUntil(lambda: "cannot reformat" in a.info.text(), timeout=10000)
    assert a.shared is None and any("cannot reformat" in s for s in failures)


def test_open_reformat_shows_a_slab_reformat_in_a_plain_viewport(qtbot, service, tmp_path, mv):
    from workstation.ui.mpr.reformat import open_reformat
    from workstation.ui.mpr.volume_store import VolumeStore
    from workstation.ui.viewport import Viewport

    paths = write_series(tmp_path / "s2", mv)
    records, _ = read_header_records(paths)
    (ds,) = build_display_sets(records)
    src = FrameSource(ds, {r.path: r.ds for r in records}, FrameCache(256 * 1024 * 1024))
    store = VolumeStore(service)
    with pytest.raises(ValueError, match="plane"):
        open_reformat(store, src, "oblique")
    got = []
    open_reformat(store, src, "coronal", 10.0, "mip", on_ready=lambda r, i: got.append((r, i)))
    qtbot.waitUntil(lambda: bool(got), timeout=20000)
    reformat, index = got[0]
    v = Viewport(service)
    qtbot.addWidget(v)
    v.resize(400, 400)
    v.show()
    v.model.set_source(reformat, reformat.nearest_to(mv.markers["corner"]))
    qtbot.waitUntil(lambda: v.current_renderer() is not None, timeout=10000)
    ds0 = reformat.header(v.model.state.index)
    assert ds0.SeriesDescription.startswith("MPR coronal 10 mm MIP")
    assert 0 <= index < len(reformat)
    c, r, _ = reformat.plane(v.model.state.index).patient_to_pixel(mv.markers["corner"])
    assert v.current_renderer().modality[round(r), round(c)] == pytest.approx(MARKER, abs=1)
    # asked again, the volume is shared, not rebuilt
    again = []
    open_reformat(store, src, "axial", on_ready=lambda r, i: again.append(r))
    assert again and again[0].volume is reformat.volume


def test_a_continuous_drag_shows_new_slices_before_it_ends(qtbot, area):
    """The crosshair moved at 60 Hz for 1.5 s, faster than slab frames are made: every view
    paints new slices during the drag, not only once it stops (a drag used to starve the GUI
    thread with repaints of stale frames, and the views showed nothing new until it ended)."""
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer

    area.set_slab(12.0, "mip")
    settle(qtbot, area)
    vol = area.shared.volume
    corners = vol.bounds_patient()
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    shown = {name: set() for name in area.viewports}
    for name, v in area.viewports.items():
        v.painted.connect(lambda v=v, name=name: shown[name].add(v.shown_frame))
    clock = QElapsedTimer()
    clock.start()
    loop = QEventLoop()
    timer = QTimer()
    moves = []

    def move() -> None:
        t = clock.elapsed() / 1500
        if t >= 1:
            loop.quit()
            return
        moves.append(t)
        area.set_point(lo + (hi - lo) * (0.2 + 0.6 * np.array([t, 1 - t, t])))

    timer.timeout.connect(move)
    timer.start(16)
    loop.exec()
    timer.stop()
    assert len(moves) > 30
    for name in area.viewports:
        assert len(shown[name]) >= 3, (name, shown[name])


def test_a_view_shows_each_slice_it_had_made_before_it_follows_the_point(qtbot, area):
    """Flow control during a drag: a view whose slice is made but not painted yet stays on it
    when the crosshair moves again, paints it, then takes the newest point. (A cheap view used
    to move on as soon as its frame was made: the decoder made slices no one saw, 96 made
    against 56 painted for the axial view of a 20 mm MIP drag.)"""
    ax = area.viewports["axial"]
    src = ax.model.source
    start = area.crosshair.point.copy()
    normal = np.asarray(src.normal, float)
    first = start + 3 * src.step_mm * normal
    area.set_point(first)  # no events processed: nothing is painted meanwhile
    index = ax.model.state.index
    assert index == src.nearest_to(first) and ax.shown_frame != (src.uid, index)
    deadline = time.monotonic() + 5
    while src.cached(index) is None and time.monotonic() < deadline:
        time.sleep(0.005)  # the decoder thread makes it; no events: it is not painted
    assert src.cached(index) is not None and ax.shown_frame != (src.uid, index)
    area.set_point(start + 6 * src.step_mm * normal)
    assert ax.model.state.index == index and ax.frame_pending  # it waits for its paint
    qtbot.waitUntil(lambda: on_point(area), timeout=10000)  # painted, then caught up
    newest = ax.model.state.index
    assert newest == src.nearest_to(area.crosshair.point) and newest != index
