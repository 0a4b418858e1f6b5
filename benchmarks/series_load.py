"""Series loading speed: our SeriesLoader against SimpleITK's ImageSeriesReader and a raw read.

Builds (once, into ``benchmarks/_data/series_load/``) a 400-slice 512x512 CT series in five
transfer syntaxes: uncompressed, JPEG lossless SV1, JPEG-LS lossless, JPEG 2000 lossless and RLE.
For each syntax it then loads the series into a volume, interleaved and repeated:

* ours: ``workstation.core.series_loader.SeriesLoader.load`` (worker processes, modality LUT applied);
* SimpleITK: ``sitk.ImageSeriesReader`` on the same file names, ``GetArrayFromImage`` included;
* raw: reading every file's bytes (``open().read()``), the floor set by the file system.

All three run with a warm page cache (a warm-up read of every file comes first). It prints a table
and, as its last line, one JSON object with slices/s, the ratios and the time to first slice.

Two columns say how far a ratio can go on this machine. ``sitk cores`` is SimpleITK's process
CPU time over its wall time: GDCM decodes JPEG 2000 with OpenJPEG's threads on every core, so
SimpleITK is not single-threaded there. ``cpu ms`` is the CPU time per slice of our own decode
path in one process; ``ceiling`` = cores x 1000 / cpu ms / SimpleITK's slices/s, the ratio our
loader would reach with every core decoding and no overhead at all.

Usage: ``python benchmarks/series_load.py [--quick] [--reps N] [--workers W]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from workstation.codecs import default_registry  # noqa: E402
from workstation.core.series_loader import SeriesLoader  # noqa: E402

DATA = ROOT / "_data" / "series_load"
ROWS = COLS = 512
SPACING = 0.7  # mm; 358 mm field of view
SLICE_STEP = 1.25  # mm
PADDING = -2000  # stored value outside the reconstruction circle
SYNTAXES: dict[str, str] = {
    "uncompressed": ExplicitVRLittleEndian,
    "jpeg-lossless-sv1": JPEGLosslessSV1,
    "jpeg-ls-lossless": JPEGLSLossless,
    "jpeg2000-lossless": JPEG2000Lossless,
    "rle": RLELossless,
}


# --- data ---------------------------------------------------------------------------------------
def _ellipse(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float):
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def phantom_hu(k: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """One axial slice of a chest/abdomen phantom in HU, with CT-like noise."""
    t = k / max(1, n - 1)  # 0 = abdomen, 1 = upper chest
    yy, xx = np.mgrid[0:ROWS, 0:COLS].astype(np.float32)
    hu = np.full((ROWS, COLS), -1000.0, np.float32)
    cy, cx = 270.0, 256.0
    ry, rx = 150 + 10 * np.sin(3 * t), 215 - 15 * t
    hu[_ellipse(yy, xx, cy, cx, ry, rx)] = -100.0  # subcutaneous fat
    hu[_ellipse(yy, xx, cy, cx, ry - 14, rx - 16)] = 40.0  # soft tissue
    if t > 0.35:  # lungs grow towards the apex
        s = min(1.0, (t - 0.35) / 0.3)
        for side in (-1, 1):
            hu[_ellipse(yy, xx, cy - 15, cx + side * 95, 95 * s + 5, 70 * s + 5)] = -850.0
        hu[_ellipse(yy, xx, cy - 5, cx + 20, 55, 50)] = 45.0  # heart / mediastinum
        for i in range(8):  # vessels in the lungs
            a = i * 0.8 + 3 * t
            hu[
                _ellipse(
                    yy,
                    xx,
                    cy - 15 + 50 * np.sin(a),
                    cx + (90 if i % 2 else -90) + 30 * np.cos(a),
                    5,
                    5,
                )
            ] = 40.0
    else:  # abdomen: liver, kidneys, bowel gas
        hu[_ellipse(yy, xx, cy - 20, cx - 80, 80, 70)] = 60.0
        for side in (-1, 1):
            hu[_ellipse(yy, xx, cy + 60, cx + side * 70, 30, 20)] = 30.0
        hu[_ellipse(yy, xx, cy - 50, cx + 70, 18, 25)] = -950.0
    hu[_ellipse(yy, xx, cy + 25, cx, 28, 18)] = 45.0  # aorta
    hu[_ellipse(yy, xx, cy + 95, cx, 28, 30)] = 1000.0  # vertebral body, cortex
    hu[_ellipse(yy, xx, cy + 95, cx, 23, 25)] = 250.0  # cancellous bone
    hu[_ellipse(yy, xx, cy + 130, cx, 12, 8)] = 900.0  # spinous process
    for i in range(10):  # ribs, front and back
        a = np.pi * (0.1 + 0.8 * i / 9)
        y = cy + (ry - 22) * np.sin(a) * (1 if i % 2 else -1)
        hu[_ellipse(yy, xx, y, cx + (rx - 22) * np.cos(a), 7, 9)] = 800.0
    hu[_ellipse(yy, xx, 470, cx, 12, 230) & (yy > 462)] = 300.0  # table
    hu += rng.normal(0.0, 15.0, hu.shape).astype(np.float32)  # quantum noise ~15 HU
    return hu


def ct_dataset(k: int, n: int, study: str, series: str, frame: str) -> FileDataset:
    rng = np.random.default_rng(1000 + k)
    hu = phantom_hu(k, n, rng)
    stored = np.clip(np.rint(hu + 1024.0), -1024, 3071).astype(np.int16)
    yy, xx = np.mgrid[0:ROWS, 0:COLS]
    stored[(yy - 255.5) ** 2 + (xx - 255.5) ** 2 > 256.0**2] = PADDING
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("", Dataset(), file_meta=meta, preamble=b"\0" * 128)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20240312"
    ds.StudyTime = ds.SeriesTime = "101500"
    ds.ContentTime = f"1016{k % 60:02d}"
    ds.AccessionNumber = "BENCH0001"
    ds.Modality = "CT"
    ds.Manufacturer = "Phantom"
    ds.StudyDescription = "CT CHEST ABDOMEN"
    ds.SeriesDescription = "AXIAL 1.25 STND"
    ds.PatientName = "Phantom^Body"
    ds.PatientID = "PH0001"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.BodyPartExamined = "CHEST"
    ds.SliceThickness = SLICE_STEP
    ds.KVP = 120
    ds.ConvolutionKernel = "STANDARD"
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.StudyID = "1"
    ds.SeriesNumber = 2
    ds.InstanceNumber = k + 1
    ds.ImagePositionPatient = [-179.15, -179.15, -500.0 + k * SLICE_STEP]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.FrameOfReferenceUID = frame
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = -500.0 + k * SLICE_STEP
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = ROWS, COLS
    ds.PixelSpacing = [SPACING, SPACING]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.PixelPaddingValue = PADDING
    ds.WindowCenter = [40, -600]
    ds.WindowWidth = [400, 1600]
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    ds.PixelData = stored.tobytes()
    return ds


def _write_uncompressed(args: tuple[int, int, str, str, str, str]) -> None:
    k, n, study, series, frame, out = args
    ct_dataset(k, n, study, series, frame).save_as(out, enforce_file_format=True)


def _write_j2k(args: tuple[str, str]) -> None:
    src, out = args
    ds = pydicom.dcmread(src)
    ds.compress(JPEG2000Lossless)
    ds.save_as(out, enforce_file_format=True)


def _run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


def uncompressed_series(n: int) -> list[str]:
    """Create (or reuse) the uncompressed ``n``-slice CT series; return its files in order.

    The other benchmarks (folder import, ingest) use this same series.
    """
    folder = DATA / f"n{n}" / "uncompressed"
    files = [str(folder / f"{k:04d}.dcm") for k in range(n)]
    if (folder / "complete").exists():
        return files
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    uids = (generate_uid(), generate_uid(), generate_uid())
    with ProcessPoolExecutor(os.cpu_count() or 2) as pool:
        list(
            pool.map(_write_uncompressed, [(k, n, *uids, files[k]) for k in range(n)], chunksize=8)
        )
    (folder / "complete").write_text("ok\n")
    return files


def build_series(n: int) -> dict[str, list[str]]:
    """Create (or reuse) the series of ``n`` slices in every syntax; return the file lists."""
    base = DATA / f"n{n}"
    files = {name: [str(base / name / f"{k:04d}.dcm") for k in range(n)] for name in SYNTAXES}
    if (base / "complete").exists():
        return files
    print(f"building the {n}-slice series in {base} (once) ...", flush=True)
    t0 = time.perf_counter()
    src = uncompressed_series(n)
    for name in SYNTAXES:
        if name != "uncompressed":
            shutil.rmtree(base / name, ignore_errors=True)
            (base / name).mkdir(parents=True)
    workers = os.cpu_count() or 2
    tools = {
        "jpeg-lossless-sv1": ["dcmcjpeg", "+e1"],
        "jpeg-ls-lossless": ["dcmcjpls", "+el"],
        "rle": ["dcmcrle"],
    }
    cmds = [[*tool, src[k], files[name][k]] for name, tool in tools.items() for k in range(n)]
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(_run, cmds))
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_write_j2k, zip(src, files["jpeg2000-lossless"], strict=True), chunksize=8))
    for name, uid in SYNTAXES.items():  # check each syntax decodes to the same values
        ds = pydicom.dcmread(files[name][n // 2])
        assert ds.file_meta.TransferSyntaxUID == uid, (name, ds.file_meta.TransferSyntaxUID)
    (base / "complete").write_text("ok\n")
    print(f"built in {time.perf_counter() - t0:.1f} s", flush=True)
    return files


def series_files(n: int, full_n: int) -> dict[str, list[str]]:
    """The first ``n`` slices: of the full series when it exists, else of a series of ``n``."""
    if (DATA / f"n{full_n}" / "complete").exists():
        return {k: v[:n] for k, v in build_series(full_n).items()}
    return build_series(n)


# --- the three loaders -------------------------------------------------------------------------
def load_sitk(paths: list[str]) -> np.ndarray:
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(paths)
    return sitk.GetArrayFromImage(reader.Execute())


def load_raw(paths: list[str]) -> int:
    total = 0
    for p in paths:
        with open(p, "rb") as f:
            total += len(f.read())
    return total


def time_it(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def time_cpu(fn, *args) -> tuple[float, float]:
    """Wall time and this process's CPU time (all its threads) of one call."""
    c0, t0 = time.process_time(), time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0, time.process_time() - c0


def decode_cpu_ms(paths: list[str], registry) -> float:
    """CPU milliseconds per slice of the loader's own per-file work (header, decode, modality
    values) in this process: with W cores, W * 1000 / this is the most slices/s any split of
    the work can reach."""
    from workstation.core.series_loader import _decode_stored

    _decode_stored(paths[0], registry)
    c0 = time.process_time()
    for p in paths:
        _decode_stored(p, registry)
    return (time.process_time() - c0) * 1000.0 / len(paths)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer slices and repetitions (< 1 min)")
    ap.add_argument("--reps", type=int, default=None, help="repetitions (default 5, quick 1)")
    ap.add_argument("--slices", type=int, default=None, help="slices (default 400, quick 80)")
    ap.add_argument("--workers", type=int, default=None, help="loader worker processes")
    ap.add_argument("--only", nargs="*", choices=list(SYNTAXES), help="only these syntaxes")
    args = ap.parse_args(argv)
    n = args.slices or (80 if args.quick else 400)
    reps = args.reps or (1 if args.quick else 5)
    files = series_files(n, 400)
    names = args.only or list(SYNTAXES)

    load_before = os.getloadavg()[0]
    # warm page cache: every file read once before anything is timed
    for name in names:
        load_raw(files[name])
    results: dict[str, dict[str, float]] = {}
    with SeriesLoader(registry=default_registry(), workers=args.workers) as loader:
        loader.load(files["uncompressed"][:4])  # warm the pool (imports in the workers)
        workers = loader.workers
        for name in names:
            paths = files[name]
            # one untimed pass of each so that plugin imports are not measured
            loader.first_slice(paths[0])
            ref = loader.load(paths[:8]).volume
            sitk_ref = load_sitk(paths[:8])
            if not np.array_equal(ref.astype(np.float64), sitk_ref.astype(np.float64)):
                print(f"warning: {name}: ours and SimpleITK differ on the first 8 slices")
            ours_t, sitk_t, raw_t, first_ms, decoders = [], [], [], [], {}
            sitk_cores: list[float] = []
            for _ in range(reps):
                first_ms.append(time_it(loader.first_slice, paths[0]) * 1000.0)
                t0 = time.perf_counter()
                vol = loader.load(paths)
                ours_t.append(time.perf_counter() - t0)
                decoders = vol.decoders
                if vol.failures:
                    print(f"warning: {name}: {len(vol.failures)} failures: {vol.failures[0]}")
                del vol
                wall, cpu = time_cpu(load_sitk, paths)
                sitk_t.append(wall)
                sitk_cores.append(cpu / wall)
                raw_t.append(time_it(load_raw, paths))
            cpu_ms = decode_cpu_ms(paths[:24], default_registry())
            ceiling = min(workers, os.cpu_count() or 1) * 1000.0 / cpu_ms
            ours = n / statistics.median(ours_t)
            sitk_r = n / statistics.median(sitk_t)
            raw = n / statistics.median(raw_t)
            results[name] = {
                "ours_slices_per_s": round(ours, 1),
                "sitk_slices_per_s": round(sitk_r, 1),
                "raw_slices_per_s": round(raw, 1),
                "ratio_vs_sitk": round(ours / sitk_r, 3),
                "ratio_vs_raw": round(ours / raw, 3),
                "first_slice_ms": round(statistics.median(first_ms), 2),
                "sitk_cores": round(statistics.median(sitk_cores), 2),
                "decode_cpu_ms": round(cpu_ms, 2),
                "ceiling_vs_sitk": round(ceiling / sitk_r, 3),
                "decoders": decoders,
                "mb": round(sum(os.path.getsize(p) for p in paths) / 1e6, 1),
            }
            print(f"  {name}: done", flush=True)

    load_after = os.getloadavg()[0]
    print()
    print(
        f"Series load: {n} slices {ROWS}x{COLS} CT, {reps} rep(s) interleaved, medians, "
        f"{workers} worker(s), warm page cache (every file read once before timing)"
    )
    print(
        f"1-minute load average {load_before:.2f} before, {load_after:.2f} after (this run adds "
        f"up to ~{workers}): other processes on the machine lower ours/sitk, which needs every core"
    )
    if args.quick:
        print(
            "--quick is a smoke test: SimpleITK's per-slice speed depends on the series size "
            "(JPEG lossless ~200/s at 80 slices, ~140/s at 400), so take ratios from a full run"
        )
    head = (
        f"{'syntax':<20}{'MB':>7}{'ours/s':>9}{'sitk/s':>9}{'raw/s':>10}"
        f"{'ours/sitk':>11}{'ours/raw':>10}{'first ms':>10}{'sitk cores':>11}{'cpu ms':>8}{'ceiling':>9}  decoders"
    )
    print(head)
    print("-" * len(head))
    for name, r in results.items():
        dec = ", ".join(f"{k}:{v}" for k, v in r["decoders"].items())
        print(
            f"{name:<20}{r['mb']:>7.1f}{r['ours_slices_per_s']:>9.1f}{r['sitk_slices_per_s']:>9.1f}"
            f"{r['raw_slices_per_s']:>10.1f}{r['ratio_vs_sitk']:>10.2f}x{r['ratio_vs_raw']:>9.3f}x"
            f"{r['first_slice_ms']:>10.2f}{r['sitk_cores']:>11.2f}"
            f"{r['decode_cpu_ms']:>8.1f}{r['ceiling_vs_sitk']:>8.2f}x  {dec}"
        )
    out = {
        "syntaxes": {
            k: {
                key: v[key]
                for key in (
                    "ours_slices_per_s",
                    "sitk_slices_per_s",
                    "raw_slices_per_s",
                    "ratio_vs_sitk",
                    "ratio_vs_raw",
                    "first_slice_ms",
                    "sitk_cores",
                    "decode_cpu_ms",
                    "ceiling_vs_sitk",
                )
            }
            for k, v in results.items()
        },
        "slices": n,
        "reps": reps,
        "workers": workers,
        "page_cache": "warm",
        "loadavg_before_after": [round(load_before, 2), round(load_after, 2)],
        "machine": machine(),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
