"""Window/level speed of the display pipeline, side by side with pydicom's own ``apply_voi_lut``.

Measures the interactive path: a frame already decoded and in modality units is re-windowed into
a preallocated 8-bit buffer (what a mouse drag does), for a 512x512 CT frame and a 2560x3328
mammography-sized frame. The peer is pydicom's ``apply_voi_lut`` followed by the 8-bit scaling a
viewer must add. Prints a table and, last, one JSON line.

    python benchmarks/window_level.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_voi_lut

from workstation.core.dicom_file import DicomFile
from workstation.core.pipeline import FrameRenderer
from workstation.core.voi import Window, apply_window

TARGET_MS = {"512x512": 2.0, "2560x3328": 25.0}


def _frame(rows: int, cols: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:rows, 0:cols]
    body = ((yy - rows / 2) / (rows * 0.42)) ** 2 + ((xx - cols / 2) / (cols * 0.45)) ** 2 < 1
    values = np.where(body, 40.0, -1000.0) + rng.normal(0, 15, (rows, cols))
    return values.astype(np.float32)


def _ours(values: np.ndarray, windows: list[Window], out: np.ndarray, scratch: np.ndarray) -> None:
    for w in windows:
        apply_window(values, w, out=out, scratch=scratch)


def _pydicom(values: np.ndarray, windows: list[Window], ds: Dataset) -> None:
    for w in windows:
        ds.WindowCenter, ds.WindowWidth = w.center, w.width
        shown = apply_voi_lut(values, ds)  # float64 output in the stored range
        lo, hi = w.center - 0.5 - (w.width - 1) / 2, w.center - 0.5 + (w.width - 1) / 2
        np.clip((shown - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (<1 min)")
    args = parser.parse_args()
    reps = 5 if args.quick else 15
    per_rep = 10
    rng = np.random.default_rng(1)
    results = {}
    for rows, cols in ((512, 512), (2560, 3328)):
        name = f"{rows}x{cols}"
        values = _frame(rows, cols, rng)
        out = np.empty((rows, cols), np.uint8)
        scratch = np.empty((rows, cols), np.float32)
        ds = Dataset()
        ds.BitsStored, ds.PixelRepresentation = 16, 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        # a drag: every event a slightly different window
        windows = [Window(40 + i, 400 + 3 * i) for i in range(per_rep)]
        _ours(values, windows, out, scratch)  # warm-up
        _pydicom(values, windows[:2], ds)
        ours_ms, peer_ms = [], []
        for _ in range(reps):  # interleaved
            t0 = time.perf_counter()
            _ours(values, windows, out, scratch)
            ours_ms.append((time.perf_counter() - t0) * 1000 / per_rep)
            t0 = time.perf_counter()
            _pydicom(values, windows, ds)
            peer_ms.append((time.perf_counter() - t0) * 1000 / per_rep)
        ours, peer = statistics.median(ours_ms), statistics.median(peer_ms)
        results[name] = {
            "ours_ms": round(ours, 3),
            "pydicom_ms": round(peer, 3),
            "speedup_vs_pydicom": round(peer / ours, 2),
            "target_ms": TARGET_MS[name],
            "meets_target": ours <= TARGET_MS[name],
        }
    ct = (
        Path(__file__).resolve().parents[2]
        / "shared/corpus/barre_classic_samples/CT_Explicit_Little.dcm"
    )
    if ct.exists():
        renderer = FrameRenderer(DicomFile.open(ct), 0)
        out = np.empty(renderer.shape, np.uint8)
        windows = [Window(40 + i, 400 + 3 * i) for i in range(per_rep)]
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            for w in windows:
                renderer.render(voi=w, out=out)
            times.append((time.perf_counter() - t0) * 1000 / per_rep)
        results["corpus CT render()"] = {
            "ours_ms": round(statistics.median(times), 3),
            "pydicom_ms": None,
            "speedup_vs_pydicom": None,
            "target_ms": TARGET_MS["512x512"],
            "meets_target": statistics.median(times) <= TARGET_MS["512x512"],
        }
    print(f"{'frame':>20} {'ours ms':>9} {'pydicom ms':>11} {'speed-up':>9} {'target':>8}")
    for name, r in results.items():
        print(
            f"{name:>20} {r['ours_ms']:9.3f} {r['pydicom_ms'] or float('nan'):11.3f} "
            f"{r['speedup_vs_pydicom'] or float('nan'):8.2f}x {'<=' + str(r['target_ms']):>8}"
            f" {'ok' if r['meets_target'] else 'MISSED'}"
        )
    print(json.dumps({"benchmark": "window_level", "repetitions": reps, "frames": results}))


if __name__ == "__main__":
    main()
