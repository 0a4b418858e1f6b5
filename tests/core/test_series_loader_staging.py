"""Staging: pixels read while the headers are read, then taken over by the load in display order."""

from __future__ import annotations

import os
import random
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path

import numpy as np
import pytest
from pydicom.uid import RLELossless
from synthetic import image_dataset, save
from test_series_loader import _expected

from workstation.core import series_staging
from workstation.core.display_sets import read_header_records
from workstation.core.pixel_layout import layout_reader
from workstation.core.series_loader import SeriesLoader
from workstation.core.series_staging import permute_rows


def _series(folder: Path, n: int, *, rows: int = 64, cols: int = 48, rle: set[int] = frozenset(),
            big: set[int] = frozenset()) -> list[str]:  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    paths = []
    for k in range(n):
        stored = rng.integers(-1000, 2000, (rows, cols)).astype(np.int16)
        stored[0, 0] = k  # each slice identifiable
        slope = 40 if k in big else 1  # 40 * 2000 - 1024 does not fit int16
        ds = image_dataset(stored, RescaleSlope=slope, RescaleIntercept=-1024, InstanceNumber=k + 1)
        if k in rle:
            ds.compress(RLELossless)
        paths.append(save(ds, folder / f"{k:03d}.dcm"))
    return paths


def _stage(loader: SeriesLoader, request: list[str]):
    """What the series opener does: read the headers in request order, each file staged as soon
    as its header is read (slices of 64x48 16-bit values: larger than the header read's 4 KiB, so
    their pixel data is deferred and its offset known)."""
    staging = loader.stage(len(request))
    layout = layout_reader()
    read_header_records(request, lambda rec: staging.add(rec.path, layout(rec.ds)))
    staging.finish()
    return staging


@pytest.fixture(scope="module")
def loader():
    with SeriesLoader(workers=2) as ld:
        yield ld


@pytest.mark.parametrize("n", [1, 2, 5, 9])
def test_permute_rows_matches_fancy_indexing(n: int) -> None:
    rng = random.Random(n)
    for _ in range(30):
        vol = np.arange(n * 2 * 3, dtype=np.int16).reshape(n, 2, 3)
        want = vol.copy()
        src = list(range(n))
        rng.shuffle(src)
        src = [s if rng.random() > 0.2 else None for s in src]  # some rows not staged
        permute_rows(vol, src)
        for i, s in enumerate(src):
            if s is not None:
                assert np.array_equal(vol[i], want[s]), (src, i)


def test_staged_series_loads_in_display_order_without_reading_the_files_again(
    loader: SeriesLoader, tmp_path: Path
) -> None:
    files = _series(tmp_path, 14)
    request = files[::2] + files[1::2]  # the order the archive handed them over
    staging = _stage(loader, request)
    assert staging.wait() == 14
    display = files[::-1]
    expected = [_expected(p) for p in display]
    for p in files:  # staged: the load must not need the files any more
        os.remove(p)
    res = loader.load(display, staged=staging, layouts=[staging.layout(p) for p in display])
    assert res.failures == ()
    assert res.decoders == {"staged": 14}
    assert res.volume.dtype == np.int16 and res.volume.shape == (14, 64, 48)
    for k, want in enumerate(expected):
        assert np.array_equal(res.volume[k], want), k
    staging.close()  # taken over: nothing left to release, and no error


@pytest.mark.parametrize(
    ("order", "view"),
    [("reversed", True), ("same", True), ("inner-reversed", True), ("shuffled", False)],
)
def test_display_order_that_is_a_run_of_the_request_needs_no_moved_rows(
    loader: SeriesLoader, tmp_path: Path, monkeypatch, order: str, view: bool
) -> None:
    """An axial stack shown head first from files the archive handed over feet first (or in
    display order already) is the staged segment itself, read backwards or forwards: no row is
    copied. Any other order moves the rows."""
    files = _series(tmp_path, 12)
    staging = _stage(loader, files)
    assert staging.wait() == 12
    display = {
        "reversed": files[::-1],
        "same": files,
        "inner-reversed": files[1:11][::-1],  # localizers at both ends left out
        "shuffled": files[1:] + files[:1],
    }[order]
    moved = []
    monkeypatch.setattr(
        series_staging, "permute_rows", lambda vol, src: moved.append(src) or permute_rows(vol, src)
    )
    res = loader.load(display, staged=staging, layouts=[staging.layout(p) for p in display])
    assert res.failures == () and res.decoders == {"staged": len(display)}
    assert (moved == []) is view
    if order == "reversed":
        assert res.volume.strides[0] < 0
    for k, p in enumerate(display):
        assert np.array_equal(res.volume[k], _expected(p)), k


def test_files_not_staged_are_loaded_the_usual_way(loader: SeriesLoader, tmp_path: Path) -> None:
    files = _series(tmp_path, 10, rle={3, 7}, big={5})
    staging = _stage(loader, files)
    assert staging.wait() == 7  # RLE has no layout; slice 5 does not fit the int16 segment
    subset = files[1:9][::-1]  # a display set of part of the request (a localizer left out)
    res = loader.load(subset, staged=staging, layouts=[staging.layout(p) for p in subset])
    assert res.failures == ()
    assert res.volume.dtype == np.float32  # slice 5 needs it
    assert res.decoders["staged"] == 5 and sum(res.decoders.values()) == 8
    for k, p in enumerate(subset):
        assert np.allclose(res.volume[k], _expected(p)), p


def test_a_staging_not_taken_over_is_released(loader: SeriesLoader, tmp_path: Path) -> None:
    files = _series(tmp_path, 6)
    staging = _stage(loader, files)
    assert staging.wait() == 6
    name = staging._shm.name
    SharedMemory(name=name).close()  # the segment exists
    staging.close()
    staging.close()
    with pytest.raises(FileNotFoundError):
        SharedMemory(name=name)
    res = loader.load(files, staged=staging)  # closed: loaded the usual way
    assert res.decoders == {"native": 6} and not res.failures


def test_nothing_is_staged_over_the_memory_budget(loader: SeriesLoader, tmp_path: Path) -> None:
    files = _series(tmp_path, 4)
    asked = []
    staging = loader.stage(4, fits=lambda nbytes: asked.append(nbytes) or False)
    layout = layout_reader()
    read_header_records(files, lambda rec: staging.add(rec.path, layout(rec.ds)))
    assert asked == [4 * 64 * 48 * 2] and staging.wait() == 0
    res = loader.load(files, staged=staging)
    assert res.decoders == {"native": 4}
