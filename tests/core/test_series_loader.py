"""SeriesLoader: exact modality values, failures reported not raised, progress, cancel, shutdown."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut
from pydicom.uid import RLELossless
from synthetic import image_dataset, save

from workstation.core.decoders import DecoderRegistry
from workstation.core.series_loader import LoadCancelled, LoadedVolume, SeriesLoader

ROWS, COLS = 24, 20


def _slices(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        a = rng.integers(-1000, 2500, (ROWS, COLS)).astype(np.int16)
        a[0, 0] = -2000  # padding-like value, and an extreme
        a[-1, -1] = 3000 + k
        out.append(a)
    return out


def _write_series(
    folder: Path, n: int = 12, *, rle: bool = False, slope=1, intercept=-1024, **attrs
) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, stored in enumerate(_slices(n)):
        ds = image_dataset(
            stored, RescaleSlope=slope, RescaleIntercept=intercept, InstanceNumber=k + 1, **attrs
        )
        if rle:
            ds.compress(RLELossless)
        paths.append(save(ds, folder / f"{k:03d}.dcm"))
    return paths


def _expected(path: str) -> np.ndarray:
    ds = pydicom.dcmread(path)
    return apply_modality_lut(ds.pixel_array, ds)


@pytest.fixture(scope="module")
def loader():
    with SeriesLoader(workers=2) as ld:
        yield ld


@pytest.mark.parametrize("rle", [False, True], ids=["uncompressed", "rle"])
def test_values_match_pydicom(loader: SeriesLoader, tmp_path: Path, rle: bool) -> None:
    paths = _write_series(tmp_path, rle=rle)
    result = loader.load(paths)
    assert isinstance(result, LoadedVolume)
    assert result.failures == ()
    assert result.volume.shape == (12, ROWS, COLS)
    assert result.volume.dtype == np.int16
    for k, path in enumerate(paths):
        np.testing.assert_array_equal(result.volume[k].astype(np.float64), _expected(path))
    assert sum(result.decoders.values()) == 12
    assert ("native" in result.decoders) != rle
    assert result.elapsed_s > 0 and result.first_slice_ms >= 0
    np.testing.assert_array_equal(loader.first_slice(paths[3]), result.volume[3])


def test_order_is_kept(loader: SeriesLoader, tmp_path: Path) -> None:
    paths = _write_series(tmp_path)[::-1]
    volume = loader.load(paths).volume
    for k, path in enumerate(paths):
        np.testing.assert_array_equal(volume[k].astype(np.float64), _expected(path))


def test_fractional_slope_gives_float32(loader: SeriesLoader, tmp_path: Path) -> None:
    paths = _write_series(tmp_path, slope=0.5, intercept=-10.25)
    result = loader.load(paths)
    assert result.volume.dtype == np.float32
    for k, path in enumerate(paths):
        np.testing.assert_allclose(result.volume[k], _expected(path), rtol=0, atol=1e-3)


def test_out_of_int16_range_switches_to_float32(loader: SeriesLoader, tmp_path: Path) -> None:
    paths = _write_series(tmp_path, n=6)
    ds = pydicom.dcmread(paths[4])
    ds.RescaleSlope = 20  # integral, but 3000 * 20 does not fit int16
    ds.save_as(paths[4])
    result = loader.load(paths)
    assert result.failures == ()
    assert result.volume.dtype == np.float32
    for k, path in enumerate(paths):
        np.testing.assert_array_equal(result.volume[k], _expected(path))


def test_unsigned_12_bit(loader: SeriesLoader, tmp_path: Path) -> None:
    folder = tmp_path / "u12"
    folder.mkdir()
    paths = []
    for k, stored in enumerate(_slices(5)):
        arr = (stored.astype(np.int32) + 2000).clip(0, 4095).astype(np.uint16)
        ds = image_dataset(arr, bits_stored=12, RescaleSlope=1, RescaleIntercept=-1024)
        paths.append(save(ds, folder / f"{k}.dcm"))
    result = loader.load(paths)
    assert result.volume.dtype == np.int16
    for k, path in enumerate(paths):
        np.testing.assert_array_equal(result.volume[k].astype(np.float64), _expected(path))


def test_failures_are_reported_and_the_rest_loads(loader: SeriesLoader, tmp_path: Path) -> None:
    paths = _write_series(tmp_path, rle=True)
    Path(paths[2]).write_bytes(b"this is not DICOM" * 100)
    data = Path(paths[7]).read_bytes()
    Path(paths[7]).write_bytes(data[: len(data) - 300])  # truncated RLE stream
    missing = str(tmp_path / "missing.dcm")
    paths.append(missing)
    result = loader.load(paths)
    failed = dict(result.failures)
    assert set(failed) == {paths[2], paths[7], missing}
    assert all(reason for reason in failed.values())
    vmin = result.volume.min()
    for k, path in enumerate(paths):
        if path in failed:
            assert (result.volume[k] == vmin).all()
        else:
            np.testing.assert_array_equal(result.volume[k].astype(np.float64), _expected(path))
    assert sum(result.decoders.values()) == len(paths) - 3


def test_nothing_readable(loader: SeriesLoader, tmp_path: Path) -> None:
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"x" * 50)
    result = loader.load([bad])
    assert len(result.failures) == 1 and result.failures[0][0] == str(bad)
    assert result.volume.shape[0] == 1


def test_progress_is_called_on_the_calling_thread(loader: SeriesLoader, tmp_path: Path) -> None:
    import threading

    paths = _write_series(tmp_path)
    calls: list[tuple[int, int, int]] = []
    loader.load(paths, progress=lambda d, t: calls.append((d, t, threading.get_ident())))
    assert calls[-1][:2] == (12, 12)
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)
    assert {c[2] for c in calls} == {threading.get_ident()}


def test_cancel_raises_and_the_loader_stays_usable(loader: SeriesLoader, tmp_path: Path) -> None:
    paths = _write_series(tmp_path)
    with pytest.raises(LoadCancelled):
        loader.load(paths, cancel=lambda: True)
    assert loader.load(paths).failures == ()


def test_volume_outlives_further_loads(loader: SeriesLoader, tmp_path: Path) -> None:
    paths = _write_series(tmp_path)
    first = loader.load(paths).volume
    view = first[5]
    del first
    loader.load(paths[:3])
    np.testing.assert_array_equal(view.astype(np.float64), _expected(paths[5]))


def test_pool_closes_cleanly(tmp_path: Path) -> None:
    paths = _write_series(tmp_path, n=4)
    loader = SeriesLoader(workers=2)
    assert loader.load(paths).failures == ()
    processes = list(loader._pool._processes.values())
    assert processes and all(p.is_alive() for p in processes)
    loader.close()
    loader.close()  # idempotent
    assert all(not p.is_alive() for p in processes)
    with SeriesLoader(workers=1) as other:
        assert other.load(paths).volume.shape == (4, ROWS, COLS)
    assert other._pool is None


class _CrashingDecoder:
    """A fallback that kills its process for files marked 'crash' (a decoder segfaulting)."""

    name = "crasher"

    def preferred_for(self, transfer_syntax: str, ds: object) -> bool:
        return str(getattr(ds, "ImageComments", "")) == "crash"

    def decode(self, path: str, frame_index: int, ds: object) -> np.ndarray:
        os._exit(3)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs the fork start method")
def test_a_decoder_crash_is_a_failure_not_a_hang(tmp_path: Path) -> None:
    paths = _write_series(tmp_path, n=8, rle=True)
    ds = pydicom.dcmread(paths[5])
    ds.ImageComments = "crash"
    ds.save_as(paths[5])
    registry = DecoderRegistry(fallbacks=(_CrashingDecoder(),))
    with SeriesLoader(registry, workers=2, start_method="fork") as loader:
        result = loader.load(paths)
        assert [p for p, _ in result.failures] == [paths[5]]
        assert "crashed" in result.failures[0][1]
        for k in (0, 4, 7):
            np.testing.assert_array_equal(result.volume[k].astype(np.float64), _expected(paths[k]))
        assert loader.load(paths[:2]).failures == ()  # a fresh pool took over
