"""CPU cost of the JPEG 2000 decoders at hand, per 512x512 CT slice, in one process.

Decodes the first 40 slices of the JPEG 2000 lossless series of ``series_load.py`` (build it
first: ``python benchmarks/series_load.py --only jpeg2000-lossless``) with each decoder that can
be imported, through pydicom's plugins (pylibjpeg, gdcm, pillow), and reports wall and process
CPU milliseconds per slice (CPU counts every thread: GDCM decodes with OpenJPEG's threads) and
whether the values equal pylibjpeg's. It shows why ``series_load.py``'s JPEG 2000 ratio against
SimpleITK has a ceiling on a 2-core machine: all of them are OpenJPEG at much the same CPU cost.

Usage: ``python benchmarks/j2k_decoders.py``; the last line is one JSON object.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pydicom
from pydicom.pixels import pixel_array

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from series_load import DATA  # noqa: E402

N = 40


def main() -> int:
    files = sorted((DATA / "n400" / "jpeg2000-lossless").glob("*"))[:N]
    if len(files) < N:
        print("build the series first: python benchmarks/series_load.py --only jpeg2000-lossless")
        return 2
    datasets = [pydicom.dcmread(f) for f in files]
    ref = [pixel_array(ds, index=0, decoding_plugin="pylibjpeg") for ds in datasets]
    out: dict[str, dict] = {}
    for plugin in ("pylibjpeg", "gdcm", "pillow"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pixel_array(datasets[0], index=0, decoding_plugin=plugin)
        except Exception as exc:  # noqa: BLE001 - not installed or cannot decode it
            out[plugin] = {"error": f"{type(exc).__name__}: {exc}"[:120]}
            continue
        same = True
        c0, t0 = time.process_time(), time.perf_counter()
        for ds, want in zip(datasets, ref, strict=True):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                got = pixel_array(ds, index=0, decoding_plugin=plugin)
            same = same and np.array_equal(got.astype(np.int32), want.astype(np.int32))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        out[plugin] = {
            "wall_ms": round(1000 * wall / N, 1),
            "cpu_ms": round(1000 * cpu / N, 1),
            "cores": round(cpu / wall, 2),
            "equal_to_pylibjpeg": same,
        }
        print(f"{plugin:10} wall {out[plugin]['wall_ms']:6.1f} ms  cpu {out[plugin]['cpu_ms']:6.1f} "
              f"ms  ({out[plugin]['cores']} cores)  equal: {same}")  # fmt: skip
    print(json.dumps({"slices": N, "decoders": out}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
