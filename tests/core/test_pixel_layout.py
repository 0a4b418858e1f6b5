"""Pixel layouts from deferred headers: the loader reads pixel bytes at the header's offset and
gets exactly the values of a full decode; files it cannot read that way are decoded as before."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut
from pydicom.uid import RLELossless
from synthetic import image_dataset, save

from workstation.core.dicom_file import read_dataset
from workstation.core.display_sets import build_display_sets, read_header_records
from workstation.core.frame_cache import FrameCache
from workstation.core.frame_source import FrameSource
from workstation.core.pixel_layout import PixelLayout, pixel_layout, read_stored
from workstation.core.series_loader import SeriesLoader

ROWS, COLS = 80, 64  # 5 KB even at 8 bits: more than the deferred-read threshold


def _stored(k: int, dtype=np.int16, lo=-1000, hi=2500) -> np.ndarray:
    rng = np.random.default_rng(k)
    return rng.integers(lo, hi, (ROWS, COLS)).astype(dtype)


def _expected(path: str) -> np.ndarray:
    ds = pydicom.dcmread(path)
    return apply_modality_lut(ds.pixel_array, ds)


def _header(path: str):
    return read_dataset(path, header_only=True)[0]


@pytest.fixture(scope="module")
def loader():
    with SeriesLoader(workers=2) as ld:
        yield ld


def _load_both(loader: SeriesLoader, paths: list[str]):
    layouts = [pixel_layout(_header(p)) for p in paths]
    return loader.load(paths), loader.load(paths, layouts=layouts), layouts


def test_layout_of_a_deferred_header(tmp_path: Path) -> None:
    path = save(image_dataset(_stored(0), RescaleIntercept=-1024, RescaleSlope=1), tmp_path / "a")
    layout = pixel_layout(_header(path))
    assert isinstance(layout, PixelLayout)
    assert (layout.rows, layout.cols, layout.dtype) == (ROWS, COLS, "<i2")
    assert layout.transform.intercept == -1024
    data = Path(path).read_bytes()
    assert data[layout.offset : layout.offset + layout.nbytes] == _stored(0).tobytes()
    np.testing.assert_array_equal(read_stored(path, layout), _stored(0))


def test_no_layout_where_bytes_are_not_the_stored_values(tmp_path: Path) -> None:
    rle = image_dataset(_stored(1))
    rle.compress(RLELossless)
    signed12 = image_dataset(_stored(2), bits_stored=12)  # needs sign extension
    small = image_dataset(_stored(3)[:8, :8])  # pixel data read with the header: no offset
    for name, ds in {"rle": rle, "signed12": signed12, "small": small}.items():
        path = save(ds, tmp_path / name)
        assert pixel_layout(_header(path)) is None, name
    full = pydicom.dcmread(save(image_dataset(_stored(4)), tmp_path / "full"))
    assert pixel_layout(full) is None  # pixel data in memory: the offset is not known


@pytest.mark.parametrize(
    "case",
    [
        "int16-intercept",
        "uint16-12bit",
        "uint16-overflow",
        "uint8",
        "fractional-slope",
        "int16-overflow",
        "mixed",
    ],
)
def test_loader_with_layouts_matches_the_full_decode(
    loader: SeriesLoader, tmp_path: Path, case: str
) -> None:
    paths = []
    for k in range(7):
        if case == "uint16-12bit":
            ds = image_dataset(
                _stored(k, np.uint16, 0, 4096),
                bits_stored=12,
                RescaleSlope=1,
                RescaleIntercept=-1024,
            )
        elif case == "uint16-overflow":  # 60000 - 1000 does not fit int16: a float32 volume
            ds = image_dataset(
                _stored(k, np.uint16, 0, 60001), RescaleSlope=1, RescaleIntercept=-1000
            )
        elif case == "uint8":
            ds = image_dataset(_stored(k, np.uint8, 0, 256), RescaleSlope=1, RescaleIntercept=-100)
        elif case == "fractional-slope":
            ds = image_dataset(_stored(k), RescaleSlope=0.5, RescaleIntercept=-10.25)
        else:
            ds = image_dataset(_stored(k), RescaleSlope=1, RescaleIntercept=-1024)
        if case == "int16-overflow" and k == 4:
            ds.RescaleIntercept = 32000  # integral, but the values leave int16
        if case == "mixed" and k in (2, 5):
            ds.compress(RLELossless)
        paths.append(save(ds, tmp_path / f"{k}.dcm"))
    plain, fast, layouts = _load_both(loader, paths)
    if case == "mixed":
        assert [lay is None for lay in layouts] == [k in (2, 5) for k in range(7)]
    else:
        assert all(lay is not None for lay in layouts)
    assert fast.failures == plain.failures == ()
    assert fast.volume.dtype == plain.volume.dtype
    np.testing.assert_array_equal(fast.volume, plain.volume)
    for k, path in enumerate(paths):
        np.testing.assert_allclose(fast.volume[k], _expected(path), rtol=0, atol=1e-3)


def test_a_file_cut_short_after_its_header_was_read_is_reported(
    loader: SeriesLoader, tmp_path: Path
) -> None:
    paths = [save(image_dataset(_stored(k)), tmp_path / f"{k}.dcm") for k in range(4)]
    layouts = [pixel_layout(_header(p)) for p in paths]
    data = Path(paths[1]).read_bytes()
    Path(paths[1]).write_bytes(data[:-500])
    result = loader.load(paths, layouts=layouts)
    assert [p for p, _ in result.failures] == [paths[1]]
    for k in (0, 2, 3):
        np.testing.assert_array_equal(result.volume[k], _stored(k))


def test_layouts_must_match_the_paths(loader: SeriesLoader, tmp_path: Path) -> None:
    path = save(image_dataset(_stored(0)), tmp_path / "a.dcm")
    with pytest.raises(ValueError, match="layouts"):
        loader.load([path], layouts=[])


def test_frame_source_layouts_follow_display_order(loader: SeriesLoader, tmp_path: Path) -> None:
    paths = []
    for k in range(5):
        ds = image_dataset(
            _stored(k),
            RescaleSlope=1,
            RescaleIntercept=-1024,
            ImagePositionPatient=[0, 0, 5.0 * k],
            ImageOrientationPatient=[1, 0, 0, 0, 1, 0],
            PixelSpacing=[1, 1],
            SeriesInstanceUID="1.2.3.4",
            FrameOfReferenceUID="1.2.3.5",
            InstanceNumber=k + 1,
        )
        paths.append(save(ds, tmp_path / f"{k}.dcm"))
    records, problems = read_header_records(paths[::-1])
    assert problems == []
    (dset,) = build_display_sets(records)
    source = FrameSource(dset, {r.path: r.ds for r in records}, FrameCache(1 << 26))
    vol_paths = source.volume_paths()
    layouts = source.volume_layouts()
    assert vol_paths == paths[::-1]  # axial: head first
    assert all(lay is not None for lay in layouts)
    result = loader.load(vol_paths, layouts=layouts)
    for i, path in enumerate(vol_paths):
        np.testing.assert_array_equal(result.volume[i], _expected(path))


@pytest.mark.parametrize("kernel_copy", [True, False])
@pytest.mark.parametrize(
    ("dtype", "lo", "hi", "intercept", "fits"),
    [
        (np.int16, -1000, 2500, -1024, True),
        (np.int16, -32000, 100, -1024, False),  # below int16 after the intercept
        (np.int16, 0, 32000, 1000, False),  # above
        (np.uint16, 0, 4096, -1024, True),
        (np.uint16, 0, 65535, -32768, True),  # every result fits, through wrap-around
        (np.uint16, 0, 40000, 0, False),
    ],
)
def test_native_read_into_a_shared_segment(
    tmp_path: Path, monkeypatch, kernel_copy, dtype, lo, hi, intercept, fits
) -> None:
    """The workers' read of one slice into the shared volume, with the kernel's copy
    (``sendfile`` into the segment) and with a plain read: the modality values, or False when
    they do not fit int16."""
    from multiprocessing.shared_memory import SharedMemory

    from workstation.core import volume_segment as sl

    monkeypatch.setattr(sl, "_SENDFILE", [kernel_copy and sl._SENDFILE[0]])
    copies = []
    if hasattr(os, "sendfile"):
        real = os.sendfile
        monkeypatch.setattr(os, "sendfile", lambda *a: copies.append(a) or real(*a))
    stored = _stored(3, dtype, lo, hi)
    stored[0, 0], stored[-1, -1] = lo, hi
    ds = image_dataset(stored, RescaleSlope=1, RescaleIntercept=intercept)
    path = save(ds, tmp_path / "a.dcm")
    layout = pixel_layout(_header(path))
    assert layout is not None and layout.dtype == np.dtype(dtype).newbyteorder("<").str
    shm = SharedMemory(create=True, size=sl._HEADER + 3 * ROWS * COLS * 2)
    try:
        vol = np.ndarray((3, ROWS, COLS), np.int16, buffer=shm.buf, offset=sl._HEADER)
        vol[...] = 7
        got = sl._read_native(path, layout, vol[1], shm)
        assert got is fits
        if fits:
            np.testing.assert_array_equal(vol[1], stored.astype(np.int32) + intercept)
        assert (vol[0] == 7).all() and (vol[2] == 7).all()  # the neighbours are untouched
        assert bool(copies) == (kernel_copy and sys.platform.startswith("linux"))
        del vol
    finally:
        shm.close()
        shm.unlink()
