"""Scrolling speed of the reading window: frames displayed per second, event to end of painting.

Two stacks, each loaded in the background first (``FrameService.load``: the foundation's
``SeriesLoader`` fills one volume), then scrolled one frame per wheel event as fast as the events
come, in a real :class:`~workstation.ui.viewport.Viewport` on Qt's offscreen platform:

* ``ct``: the 512x512 CT series of ``series_load.py`` (400 slices) in a 1000x1000 viewport;
* ``mg``: 2560x3328 (columns x rows) 16-bit mammography-sized frames (30, built once with pydicom
  into ``benchmarks/_data/scroll/``) in a tall 800x1000 viewport.

One frame is timed from ``QApplication.sendEvent(viewport, QWheelEvent)`` to the return of
``viewport.repaint()`` (which paints synchronously); every frame must come out painted (the
``painted`` signal's counter moves) at the next index. Two passes per repetition:

* ``first``: the first scroll through the loaded volume (each slice's renderer is made from the
  volume as it is shown: modality transform, padding mask, VOI choices), every frame once;
* ``again``: 200 frames back and forth once every renderer is cached (the usual case).

Where the time goes is measured inside the same frames by timing the viewport's own calls:
``renderer`` (``FrameSource.cached``), ``w/l`` (``Viewport._image_for``: window/level into the
viewport's 8-bit buffer, wrapped as a QImage), ``drawImage`` (``QPainter.drawImage`` with the
display transform, smooth scaling), ``text`` (``Viewport._draw_annotations``) and ``rest``
(event dispatch, model, fill, scroll bar, border, backing store). Cases and passes are
interleaved over the repetitions; the figures are medians (p95 over every frame of every
repetition). Targets (issue 5): CT >= 100 fps, the 2560x3328 stack >= 25 fps.

Usage: ``python benchmarks/scroll.py [--quick] [--reps N] [--frames N]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset  # noqa: E402
from pydicom.uid import (  # noqa: E402
    DigitalMammographyXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    generate_uid,
)

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QEventLoop, QPoint, QPointF, Qt, QTimer  # noqa: E402
from PySide6.QtGui import QPainter, QWheelEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402
from series_load import machine, uncompressed_series  # noqa: E402

import workstation.ui.viewport as viewport_module  # noqa: E402
from workstation.codecs import default_registry  # noqa: E402
from workstation.core.display_sets import build_display_sets, read_header_records  # noqa: E402
from workstation.core.frame_cache import FrameCache  # noqa: E402
from workstation.core.frame_source import FrameSource  # noqa: E402
from workstation.core.series_loader import SeriesLoader  # noqa: E402
from workstation.ui.bindings import load_bindings  # noqa: E402
from workstation.ui.frame_service import FrameService  # noqa: E402
from workstation.ui.presets import load_presets  # noqa: E402
from workstation.ui.viewport import Viewport  # noqa: E402

DATA = ROOT / "_data" / "scroll"
MB = 1024 * 1024
MG_ROWS, MG_COLS = 3328, 2560
TARGET_FPS = {"ct": 100.0, "mg": 25.0}
PARTS = ("renderer", "w/l", "drawImage", "text", "rest")


def none_refcount_guard() -> float:
    """Work around PySide6 6.12.0 on Python 3.11: every call of a Qt method returning void takes
    one reference from ``None`` (measured: ``QPainter.setPen`` -1, ``save``/``restore`` -2), so
    after ~5,000 such calls (~60 repaints of a viewport) Python aborts with "none_dealloc:
    deallocating None". Python >= 3.12 makes None immortal. Returns the measured loss per call
    and, when there is one, pins None's reference count high so that the benchmark can run."""
    import ctypes

    from PySide6.QtGui import QPen

    pen = QPen()
    before = sys.getrefcount(None)
    for _ in range(100):
        pen.setWidthF(1.5)
    loss = (before - sys.getrefcount(None)) / 100
    if loss > 0 and sys.version_info < (3, 12):
        for obj in (None, True, False):  # True and False lose references the same way
            ctypes.c_ssize_t.from_address(id(obj)).value += 1 << 40
    return loss


# --- data ---------------------------------------------------------------------------------------
def mg_dataset(k: int, study: str, series: str) -> FileDataset:
    """A 2560x3328 16-bit (12 bits stored) mammogram-like frame: breast on the left, noise."""
    rng = np.random.default_rng(500 + k)
    yy, xx = np.mgrid[0:MG_ROWS, 0:MG_COLS].astype(np.float32)
    r = np.sqrt(
        ((yy - MG_ROWS / 2) / (MG_ROWS * 0.42)) ** 2 + (xx / (MG_COLS * (0.7 + 0.01 * k))) ** 2
    )
    breast = r < 1.0
    values = np.where(breast, 2600.0 - 900.0 * r**2, 120.0)
    values += 60.0 * np.sin(xx / (37.0 + k)) * np.cos(yy / 53.0) * breast
    values += rng.normal(0.0, 25.0, values.shape).astype(np.float32)
    stored = np.clip(values, 0, 4095).astype(np.uint16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DigitalMammographyXRayImageStorageForPresentation
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("", Dataset(), file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyDate = ds.SeriesDate = "20240312"
    ds.Modality = "MG"
    ds.PatientName = "Phantom^Breast"
    ds.PatientID = "PH0002"
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.SeriesNumber = 1
    ds.InstanceNumber = k + 1
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.ViewPosition = "CC"
    ds.ImageLaterality = "L"
    ds.ImagerPixelSpacing = [0.065, 0.065]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = MG_ROWS, MG_COLS
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.WindowCenter = 2000
    ds.WindowWidth = 2400
    ds.PixelData = stored.tobytes()
    return ds


def mg_series(n: int) -> list[str]:
    """Create (or reuse) ``n`` mammography-sized frames (one series); return the files."""
    folder = DATA / f"mg{n}"
    files = [str(folder / f"{k:03d}.dcm") for k in range(n)]
    if (folder / "complete").exists():
        return files
    folder.mkdir(parents=True, exist_ok=True)
    study, series = generate_uid(), generate_uid()
    for k in range(n):
        mg_dataset(k, study, series).save_as(files[k], enforce_file_format=True)
    (folder / "complete").write_text("ok\n")
    return files


# --- harness ------------------------------------------------------------------------------------
def wait_for(signal, done, timeout_s: float = 120.0) -> None:
    """Run the event loop until ``done()`` (checked whenever ``signal`` fires or every 50 ms)."""
    loop = QEventLoop()
    signal.connect(loop.quit)
    timer = QTimer()
    timer.timeout.connect(loop.quit)
    timer.start(50)
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError("timed out")
        loop.exec()
    timer.stop()
    signal.disconnect(loop.quit)


class Probe:
    """Times the viewport's own calls while a frame is painted (per-frame seconds by part)."""

    def __init__(self) -> None:
        self.t = dict.fromkeys(PARTS, 0.0)

    def wrap(self, part: str, fn):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.t[part] += time.perf_counter() - t0

        return timed

    def reset(self) -> None:
        self.t = dict.fromkeys(PARTS, 0.0)


class Case:
    def __init__(self, name, files, size, service, cache, probe) -> None:
        self.name = name
        records, problems = read_header_records(files)
        assert not problems, problems[:3]
        headers = {r.path: r.ds for r in records}
        (ds,) = build_display_sets(records)
        self.source = FrameSource(ds, headers, cache, default_registry())
        self.n = len(self.source)
        self.shape = (int(records[0].ds.Rows), int(records[0].ds.Columns))
        self.viewport = Viewport(service, load_bindings(), load_presets())
        self.viewport.resize(*size)
        self.viewport.show()
        self.viewport.model.set_source(self.source, 0)
        self.service = service
        t0 = time.perf_counter()
        service.load(self.source)
        wait_for(service.load_finished, lambda: bool(self.source.loaded.all()))
        self.load_s = time.perf_counter() - t0
        self.decoder = ""
        src = self.source
        src.cached = probe.wrap("renderer", src.cached)
        self.viewport._image_for = probe.wrap("w/l", self.viewport._image_for)
        self.probe = probe
        self.direction = 1

    def drop_renderers(self) -> None:
        """Forget the per-slice renderers (the loaded volume stays): the next pass is a first."""
        for i in range(self.n):
            self.source.cache.discard((self.source.uid, i))

    def scroll(self, frames: int) -> tuple[list[float], dict[str, list[float]]]:
        """``frames`` wheel steps (turning at the ends); per-frame seconds and parts."""
        vp, probe = self.viewport, self.probe
        totals: list[float] = []
        parts: dict[str, list[float]] = {p: [] for p in PARTS}
        for _ in range(frames):
            idx = vp.model.state.index
            if not 0 <= idx + self.direction < self.n:
                self.direction = -self.direction
            ev = QWheelEvent(
                QPointF(100, 100),
                QPointF(100, 100),
                QPoint(0, 0),
                QPoint(0, -120 * self.direction),
                Qt.MouseButton.NoButton,
                Qt.KeyboardModifier.NoModifier,
                Qt.ScrollPhase.NoScrollPhase,
                False,
            )
            before = vp.frames_painted
            probe.reset()
            t0 = time.perf_counter()
            QApplication.sendEvent(vp, ev)
            vp.repaint()
            dt = time.perf_counter() - t0
            assert vp.model.state.index == idx + self.direction, "the wheel did not scroll"
            assert vp.frames_painted == before + 1, "a frame was not painted (not loaded?)"
            totals.append(dt)
            inner = 0.0
            for p in PARTS[:-1]:
                parts[p].append(probe.t[p])
                inner += probe.t[p]
            parts["rest"].append(dt - inner)
        self.decoder = vp.current_renderer().decoder
        return totals, parts


def stats(samples: list[float]) -> dict[str, float]:
    ms = sorted(1000.0 * s for s in samples)
    med = statistics.median(ms)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    return {"median_ms": round(med, 3), "p95_ms": round(p95, 3), "fps": round(1000.0 / med, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller stacks, fewer repetitions")
    ap.add_argument("--reps", type=int, default=None, help="repetitions (default 5, quick 2)")
    ap.add_argument("--frames", type=int, default=None, help="frames per 'again' pass (200)")
    args = ap.parse_args(argv)
    reps = args.reps or (2 if args.quick else 5)
    frames = args.frames or (100 if args.quick else 200)
    ct_n, mg_n = (120, 10) if args.quick else (400, 30)
    ct_files = uncompressed_series(400)[:ct_n]
    mg_files = mg_series(30)[:mg_n]
    for p in [*ct_files, *mg_files]:  # warm page cache
        Path(p).read_bytes()

    app = QApplication.instance() or QApplication([sys.argv[0]])
    none_loss = none_refcount_guard()
    if none_loss > 0:
        print(
            f"warning: this PySide6 takes {none_loss:g} reference(s) from None per void call; "
            "without the guard the process aborts after ~60 repaints (see none_refcount_guard)"
        )
    probe = Probe()
    # the corner text is drawn by a function of the viewport module (ui/viewport_text.py)
    viewport_module.draw_corner_text = probe.wrap("text", viewport_module.draw_corner_text)
    draw = QPainter.drawImage
    QPainter.drawImage = probe.wrap("drawImage", draw)
    cache = FrameCache(3 * 1024 * MB)
    registry = default_registry()
    service = FrameService(lambda: SeriesLoader(registry))
    load_before = os.getloadavg()[0]
    try:
        cases = [
            Case("ct", ct_files, (1000, 1000), service, cache, probe),
            Case("mg", mg_files, (800, 1000), service, cache, probe),
        ]
        app.processEvents()
        for c in cases:  # one untimed pass: first paints, font caches, buffers
            c.scroll(min(c.n - 1, 20))
        res: dict[str, dict[str, tuple[list[float], dict[str, list[float]]]]] = {
            c.name: {"first": ([], {p: [] for p in PARTS}), "again": ([], {p: [] for p in PARTS})}
            for c in cases
        }
        for _ in range(reps):
            for c in cases:
                c.drop_renderers()
                c.viewport.model.set_index(0)
                c.direction = 1
                app.processEvents()
                for name, count in (("first", c.n - 1), ("again", frames)):
                    totals, parts = c.scroll(count)
                    res[c.name][name][0].extend(totals)
                    for p in PARTS:
                        res[c.name][name][1][p].extend(parts[p])
            print(".", end="", flush=True)
        print()
    finally:
        QPainter.drawImage = draw
        service.shutdown()
    load_after = os.getloadavg()[0]

    out_cases: dict[str, dict] = {}
    print(
        f"Scroll: one wheel event -> viewport.repaint() returned, offscreen Qt, {reps} rep(s) "
        f"interleaved, medians (p95 over all frames); 1-minute load {load_before:.2f} before, "
        f"{load_after:.2f} after"
    )
    head = (
        f"{'case':<5}{'pass':<7}{'frames':>7}{'median ms':>11}{'p95 ms':>8}{'fps':>8}{'target':>8}"
        + "".join(f"{p:>10}" for p in PARTS)
    )
    print(head)
    print("-" * len(head))
    for c in cases:
        out_cases[c.name] = {
            "slices": c.n,
            "image": f"{c.shape[1]}x{c.shape[0]}",
            "viewport": f"{c.viewport.width()}x{c.viewport.height()}",
            "volume_load_s": round(c.load_s, 2),
            "target_fps": TARGET_FPS[c.name],
        }
        for name in ("first", "again"):
            totals, parts = res[c.name][name]
            s = stats(totals)
            part_ms = {p: round(1000.0 * statistics.median(parts[p]), 3) for p in PARTS}
            s["parts_median_ms"] = part_ms
            s["frames"] = len(totals)
            s["meets_target"] = s["fps"] >= TARGET_FPS[c.name]
            out_cases[c.name][name] = s
            print(
                f"{c.name:<5}{name:<7}{len(totals):>7}{s['median_ms']:>11.2f}{s['p95_ms']:>8.2f}"
                f"{s['fps']:>8.1f}{TARGET_FPS[c.name]:>8.0f}"
                + "".join(f"{part_ms[p]:>10.2f}" for p in PARTS)
            )
    print(
        "parts (median ms per frame): renderer = FrameSource.cached (renderer made from the volume "
        "on a first visit), w/l = window/level into the 8-bit buffer, drawImage = QPainter.drawImage "
        "with the display transform, text = corner annotations, rest = event, model, fill, scroll "
        "bar, border, backing store"
    )
    out = {
        "cases": out_cases,
        "reps": reps,
        "platform": QApplication.platformName(),
        "pyside_none_refs_lost_per_void_call": none_loss,
        "loadavg_before_after": [round(load_before, 2), round(load_after, 2)],
        "machine": machine(),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
