"""How fast the MPR workspace follows the crosshair, in a real window.

A 512x512x400 CT-like volume (``--quick``: 256x256x200) is shown in the
:class:`~workstation.ui.mpr.mpr_area.MprArea`; the crosshair is moved along a diagonal so that
all three views change slice at every step. One update is timed from the move to the moment
the three viewports have painted the new frames (reslicing in the frame service's decoder
thread, windowing, painting). Thin planes, a 20 mm MIP slab and an oblique (double-oblique) set
are measured. Beside it, the same reslices done back to back without the UI (``bare``) tell
what the UI adds. For slabs, ``rest_to_full_quality_ms``: from a move until the three views show
the full-quality slabs (the views draft slabs while the crosshair moves and make them in full
200 ms after it rests).

``--cases`` picks the cases (default ``thin,mip20,oblique``).

Run under a display (``xvfb-run -a python benchmarks/mpr_views.py``) or with
``QT_QPA_PLATFORM=offscreen``. The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydicom.dataset import Dataset  # noqa: E402
from PySide6.QtCore import QEventLoop, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from workstation.core.geometry import ImagePlane  # noqa: E402
from workstation.core.series_loader import SeriesLoader  # noqa: E402
from workstation.render.reslice import Reslicer  # noqa: E402
from workstation.render.volume_image import build_volume_image  # noqa: E402
from workstation.ui.frame_service import FrameService  # noqa: E402
from workstation.ui.mpr.mpr_area import MprArea  # noqa: E402
from workstation.ui.mpr.volume_store import SharedVolume  # noqa: E402


def ct_like(cols: int, rows: int, slices: int) -> np.ndarray:
    """int16 HU: air around a water ellipsoid body with bone shells and contrast vessels."""
    z, y, x = np.ogrid[-1 : 1 : slices * 1j, -1 : 1 : rows * 1j, -1 : 1 : cols * 1j]
    vol = np.full((slices, rows, cols), -1000, np.int16)
    body = (x / 0.85) ** 2 + (y / 0.6) ** 2 < 1
    vol[np.broadcast_to(body, vol.shape)] = 40
    shell = np.broadcast_to(((x / 0.8) ** 2 + (y / 0.55) ** 2 > 0.9) & body, vol.shape)
    vol[shell] = 900
    for cx, cy in ((0.2, 0.1), (-0.25, 0.05), (0.0, -0.3)):
        vessel = (x - cx - 0.1 * z) ** 2 + (y - cy) ** 2 < 0.004
        vol[np.broadcast_to(vessel, vol.shape)] = 350
    rng = np.random.default_rng(1)
    vol += rng.integers(-15, 16, vol.shape, dtype=np.int16)
    return vol


def shared_volume(cols: int, rows: int, slices: int) -> SharedVolume:
    values = ct_like(cols, rows, slices)
    px, dz = 0.7, 1.0
    origin = np.array([-(cols - 1) * px / 2, -(rows - 1) * px / 2, 0.0])
    planes = [
        ImagePlane(origin + (0, 0, k * dz), (1, 0, 0), (0, 1, 0), (px, px), rows, cols)
        for k in range(slices)
    ]
    volume = build_volume_image(values, planes, modality="CT")
    header = Dataset()
    header.Modality = "CT"
    header.PatientName = "BENCH^MPR"
    header.FrameOfReferenceUID = "1.2.826.0.1.3680043.9.1"
    header.WindowCenter, header.WindowWidth = 40, 400
    return SharedVolume("bench", volume, Reslicer(volume), header, "bench CT", False)


def wait_painted(app: QApplication, area: MprArea, before: dict, timeout_s: float = 5.0) -> bool:
    """Until every view painted a frame it had not shown at ``before``; False on timeout."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout_s:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 5)
        if all(
            v.current_renderer() is not None and v.frames_painted > before[name]
            for name, v in area.viewports.items()
        ):
            return True
    return False


def run_moves(app: QApplication, area: MprArea, steps: int) -> list[float]:
    vol = area.shared.volume
    corners = vol.bounds_patient()
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    times = []
    for k in range(steps):
        t = 0.25 + 0.5 * (k % 40) / 40
        point = lo + (hi - lo) * np.array([t, 1 - t, t])
        before = {name: v.frames_painted for name, v in area.viewports.items()}
        t0 = time.perf_counter()
        area.set_point(point)
        for v in area.viewports.values():
            v.update()
        if not wait_painted(app, area, before):
            raise RuntimeError("the views did not update within 5 s")
        times.append(time.perf_counter() - t0)
    return times


def full_quality_shown(area: MprArea) -> bool:
    """Every view shows the full-quality frame (not a draft) of the slice through the point."""
    for v in area.viewports.values():
        src = v.model.source
        index = src.nearest_to(area.crosshair.point)
        full = src.cache.get((src.uid, index))
        if v.model.state.index != index or full is None or v.current_renderer() is not full:
            return False
    return True


def run_rests(app: QApplication, area: MprArea, steps: int) -> list[float]:
    """Move the crosshair, let it rest: seconds from the move until the three views show the
    full-quality frames (drafts first; the full slabs are made ``DRAFT_SETTLE_MS`` after the
    move, so that much of it is waiting)."""
    vol = area.shared.volume
    corners = vol.bounds_patient()
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    times = []
    for k in range(steps):
        t = 0.3 + 0.4 * ((7 * k) % steps) / steps
        t0 = time.perf_counter()
        area.set_point(lo + (hi - lo) * np.array([t, 1 - t, t]))
        while time.perf_counter() - t0 < 10.0:  # the views repaint when their frames land
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 5)
            if not area.drafting and full_quality_shown(area):
                break
        else:
            raise RuntimeError("the views did not show full-quality frames within 10 s")
        times.append(time.perf_counter() - t0)
    return times


def run_drag(app: QApplication, area: MprArea, seconds: float) -> dict[str, float]:
    """Move the crosshair at 60 Hz (a mouse drag) for ``seconds``; per view, how many new
    slices were painted per second (requests for slices passed by are dropped, as in use)."""
    vol = area.shared.volume
    corners = vol.bounds_patient()
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    shown = {name: [] for name in area.viewports}

    def painted(v) -> None:
        # the frame painted, not the model's index: the MPR area's flow control (connected to
        # the same signal, before this) may already have moved the view on to its next slice
        key = v.shown_frame
        if key is not None and (not shown[v.view] or shown[v.view][-1] != key):
            shown[v.view].append(key)

    for v in area.viewports.values():
        v.painted.connect(painted)
    # the real event loop (it sleeps between events, as in use), a timer moving the point
    loop = QEventLoop()
    t0 = time.perf_counter()

    def move() -> None:
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            loop.quit()
            return
        t = 0.25 + 0.5 * elapsed / seconds
        area.set_point(lo + (hi - lo) * np.array([t, 1 - t, t]))

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.timeout.connect(move)
    timer.start(16)
    loop.exec()
    timer.stop()
    for v in area.viewports.values():
        v.painted.disconnect(painted)
    return {name: len(keys) / seconds for name, keys in shown.items()}


def bare(area: MprArea, steps: int) -> list[float]:
    """The three reslices of a crosshair move, back to back, no UI."""
    sources = [v.model.source for v in area.viewports.values()]
    vol = area.shared.volume
    corners = vol.bounds_patient()
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    times = []
    for k in range(steps):
        t = 0.3 + 0.4 * (k % 40) / 40
        point = lo + (hi - lo) * np.array([t, 1 - t, t])
        t0 = time.perf_counter()
        for s in sources:
            s.reslicer.reslice(
                s.reslice_plane(s.nearest_to(point)), slab_mm=s.spec.slab_mm, mode=s.spec.mode
            )
        times.append(time.perf_counter() - t0)
    return times


def measure(app: QApplication, area: MprArea, steps: int, drag_s: float) -> dict:
    """One case as set up in ``area``: moves (latency), a 60 Hz drag, bare reslices."""
    wait_painted(app, area, {n: v.frames_painted for n, v in area.viewports.items()}, 20.0)
    ui = run_moves(app, area, steps)
    drag = run_drag(app, area, drag_s)
    raw = bare(area, max(5, steps // 3))
    med = statistics.median(ui)
    rests = run_rests(app, area, max(5, steps // 6)) if area.crosshair.slab_mm > 0 else None
    return {
        "rest_to_full_quality_ms": (
            round(1000 * statistics.median(rests), 1) if rests is not None else None
        ),
        "drag_fps_per_view": {k: round(v, 1) for k, v in drag.items()},
        "drag_fps_min": round(min(drag.values()), 1),
        "update_ms_median": round(1000 * med, 1),
        "update_ms_p90": round(1000 * sorted(ui)[int(0.9 * (len(ui) - 1))], 1),
        "fps": round(1.0 / med, 1),
        "bare_three_reslices_ms": round(1000 * statistics.median(raw), 1),
        "sizes": [list(v.model.source.spec.size) for v in area.viewports.values()],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="256x256x200, fewer steps")
    ap.add_argument("--cases", default="thin,mip20,oblique", help="comma-separated cases")
    args = ap.parse_args()
    cases = [c for c in args.cases.split(",") if c]
    load_before = os.getloadavg()
    cols, rows, slices = (256, 256, 200) if args.quick else (512, 512, 400)
    steps = 20 if args.quick else 60
    app = QApplication.instance() or QApplication([])
    service = FrameService(lambda: SeriesLoader(workers=1))
    area = MprArea(service)
    area.resize(1500, 950)
    area.show()
    t0 = time.perf_counter()
    shared = shared_volume(cols, rows, slices)
    build_s = time.perf_counter() - t0
    area.set_volume(shared)
    before = {name: -1 for name in area.viewports}
    wait_painted(app, area, before, 20.0)
    drag_s = 2.0 if args.quick else 4.0
    results = {}
    for case in cases:
        if case == "thin":
            area.set_slab(0.0, "mip")
        elif case == "mip20":
            area.set_slab(20.0, "mip")
        elif case == "oblique":
            area.set_slab(0.0, "mip")
            area.crosshair.rotate("axial", math.radians(25))
            area.crosshair.rotate("coronal", math.radians(-15))
        else:
            raise SystemExit(f"unknown case {case!r}: thin, mip20 or oblique")
        results[case] = measure(app, area, steps, drag_s)
    service.shutdown()
    platform = os.environ.get("QT_QPA_PLATFORM", "") or app.platformName()
    print(f"MPR crosshair updates, {cols}x{rows}x{slices} volume, window on '{platform}'")
    print("one move, then wait for the three views: latency; 60 Hz drag: new slices painted per s")
    print(
        f"{'case':10} {'median ms':>10} {'p90 ms':>8} {'fps':>6} {'drag fps (min view)':>20} "
        f"{'bare 3 reslices ms':>19}"
    )
    for case, r in results.items():
        print(
            f"{case:10} {r['update_ms_median']:>10} {r['update_ms_p90']:>8} {r['fps']:>6} "
            f"{r['drag_fps_min']:>20} {r['bare_three_reslices_ms']:>19}"
        )
    print(
        json.dumps(
            {
                "volume": [cols, rows, slices],
                "platform": platform,
                "volume_build_s": round(build_s, 2),
                "steps": steps,
                **results,
                "target_fps": 20,
                "thin_drag_meets_target": (
                    results["thin"]["drag_fps_min"] >= 20 if "thin" in results else None
                ),
                "loadavg_before_after": [
                    [round(v, 2) for v in load_before],
                    [round(v, 2) for v in os.getloadavg()],
                ],
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
