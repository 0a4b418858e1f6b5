"""Run by test_series_loader_shm_full.py inside a mount namespace whose /dev/shm is a small
tmpfs (``unshare --mount``): loads that do not fit must fail with SharedMemoryFull, never SIGBUS.

Usage: ``python shm_full_child.py FOLDER`` (prints one JSON line of results).
"""

from __future__ import annotations

import faulthandler
import json
import os
import sys
import threading
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent))

from synthetic import image_dataset, save  # noqa: E402

from workstation.core.dicom_file import read_dataset  # noqa: E402
from workstation.core.pixel_layout import pixel_layouts  # noqa: E402
from workstation.core.series_loader import SeriesLoader, SharedMemoryFull  # noqa: E402


def write_series(folder: Path, n: int, size: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(n)
    paths = []
    for k in range(n):
        stored = rng.integers(-1000, 2000, (size, size)).astype(np.int16)
        ds = image_dataset(stored, RescaleSlope=1, RescaleIntercept=-1024, InstanceNumber=k + 1)
        paths.append(save(ds, folder / f"{k:03d}.dcm"))
    return paths


def fill_shm(path: str) -> int:
    """Write a file into /dev/shm until the file system is full; its size."""
    written = 0
    block = b"\xff" * (256 * 1024)
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                n = f.write(block)
            except OSError:
                return written
            written += n or 0
            if not n:
                return written


def fill_during_load(paths: list[str], filler: str, out: dict):
    """Load ``paths`` with one worker whose first file is a FIFO: the worker waits on it, this
    thread fills /dev/shm meanwhile, then sends the file; the other slices find no room."""
    fifo = str(Path(paths[0]).with_name("first.fifo"))
    os.mkfifo(fifo)
    data = Path(paths[0]).read_bytes()

    def feed() -> None:
        with open(fifo, "wb") as f:  # returns once the worker opened the FIFO to read
            out["filled_bytes"] = fill_shm(filler)
            f.write(data)

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        with SeriesLoader(workers=1) as one:
            return one.load([fifo, *paths[1:]])
    finally:
        feeder.join()


def outcome(call) -> dict:
    try:
        vol = call()
    except SharedMemoryFull as exc:
        return {"raised": "SharedMemoryFull", "message": str(exc)}
    return {"loaded": int(vol.volume.shape[0]), "failures": len(vol.failures)}


def main() -> int:
    faulthandler.enable()
    folder = Path(sys.argv[1])
    big = write_series(folder / "big", 24, 512)  # 12 MB: more than the 8 MB /dev/shm
    small = write_series(folder / "small", 12, 256)  # 1.5 MB
    out: dict = {}
    with SeriesLoader(workers=2) as loader:
        out["too_big"] = outcome(lambda: loader.load(big))
        layouts = pixel_layouts([read_dataset(p, header_only=True)[0] for p in big])
        out["too_big_layouts"] = outcome(lambda: loader.load(big, layouts=layouts))
        filler = "/dev/shm/filler"
        out["filled_during_load"] = outcome(lambda: fill_during_load(small, filler, out))
        os.unlink(filler)
        vol = loader.load(small)  # room again: the same loader loads the series whole
        expected = [np.frombuffer(open(p, "rb").read()[-256 * 256 * 2 :], "<i2") for p in small]
        out["after"] = {
            "loaded": int(vol.volume.shape[0]),
            "failures": len(vol.failures),
            "equal": all(
                np.array_equal(vol.volume[k].ravel(), e.astype(np.int32) - 1024)
                for k, e in enumerate(expected)
            ),
        }
        staging = loader.stage(len(big))
        for p, lay in zip(big, layouts, strict=True):
            staging.add(p, lay)
        out["staging_dead"] = staging.wait() == 0
        staging.close()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
