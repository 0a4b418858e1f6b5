"""Frame sources: display order, per-frame decoding, the volume path and the memory budget."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic import stack_files

from workstation.core.display_sets import build_display_sets, read_header_records
from workstation.core.frame_cache import FrameCache
from workstation.core.frame_source import FrameSource
from workstation.core.series_loader import SeriesLoader
from workstation.core.viewport_model import ViewportModel, auto_window
from workstation.core.voi import Window

MB = 1024 * 1024


def source_for(paths, budget=64 * MB) -> FrameSource:
    records, problems = read_header_records(paths)
    assert not problems
    (ds,) = build_display_sets(records)
    return FrameSource(ds, {r.path: r.ds for r in records}, FrameCache(budget))


def test_axial_stacks_show_head_first_and_decode_per_frame(tmp_path) -> None:
    paths = stack_files(tmp_path, "axial", n=6)
    src = source_for(paths)
    z = [src.plane(i).origin[2] for i in range(len(src))]
    assert z == sorted(z, reverse=True)  # superior first
    assert src.cached(0) is None  # nothing decoded yet, and asking never decodes
    r = src.decode(0)
    assert int(r.modality[3, 7]) == 500 + 7  # slice k=5 (the most superior), column 7
    assert src.cached(0) is r and src.loaded[0]


def test_volume_path_shows_slices_as_they_arrive(tmp_path) -> None:
    paths = stack_files(tmp_path, "axial", n=8)
    src = source_for(paths)
    files = src.volume_paths()
    assert files == [f.path for f in src.frames]
    arrived = []
    with SeriesLoader(workers=2) as loader:
        result = loader.load(
            files, on_slice=lambda vol, i: (src.slice_arrived(vol, i), arrived.append(i))
        )
    src.volume_done(result.failures)
    assert sorted(arrived) == list(range(8)) and src.loaded.all()
    r = src.cached(2)
    assert r is not None and r.decoder == "loader"
    assert int(r.modality[0, 9]) == 100 * 5 + 9  # display index 2 = acquisition slice 5
    assert r.nbytes == 0  # a view of the volume, not a copy
    assert src.cache.used >= result.volume.nbytes


def test_a_decoded_frame_stays_cached_until_its_own_slice_arrives(tmp_path) -> None:
    """The volume supersedes a per-frame renderer slice by slice: the frame a viewport shows
    must not vanish from the cache when the first other slice of the volume arrives."""
    paths = stack_files(tmp_path, "axial", n=6)
    src = source_for(paths)
    shown = src.decode(3)  # what the viewport decoded while the volume was still to come
    with SeriesLoader(workers=1) as loader:
        result = loader.load(src.volume_paths())
    volume = result.volume
    src.slice_arrived(volume, 0)
    assert src.cached(3) is shown  # slice 3 is not in the volume yet
    assert src.cached(0).decoder == "loader"
    src.slice_arrived(volume, 3)
    r = src.cached(3)
    assert r is not shown and r.decoder == "loader"
    assert np.array_equal(r.modality, shown.modality)
    assert (src.uid, 3) in src.cache and src.cache.get((src.uid, 3)) is r


def test_budget_evicts_least_recent_and_refuses_oversized_volumes(tmp_path) -> None:
    paths = stack_files(tmp_path, "axial", n=10, rows=64, cols=64)
    src = source_for(paths, budget=3 * 64 * 64 * 4 + 3 * 4096 + 100)  # room for 3 frames
    assert src.volume_paths() is None  # 10 int16 slices would not fit... nor does a volume
    for i in range(10):
        src.decode(i)
    assert len(src.cache) == 3 and src.cache.used <= src.cache.budget
    assert src.cache.evictions == 7
    assert src.cached(9) is not None and src.cached(0) is None


def test_cache_put_larger_than_budget_keeps_nothing() -> None:
    cache = FrameCache(100)
    assert cache.put("a", object(), 60)
    assert not cache.put("b", object(), 101)
    assert cache.get("a") is not None and cache.get("b") is None
    cache.put("c", object(), 60)  # evicts a
    assert cache.get("a") is None and cache.used == 60


def test_model_window_drag_scroll_and_auto_window(tmp_path) -> None:
    src = source_for(stack_files(tmp_path, "axial", n=5))
    m = ViewportModel()
    seen = []
    m.subscribe(lambda model, what: seen.append(what))
    m.set_source(src, 0)
    m.scroll(10)
    assert m.state.index == 4  # stops at the end
    m.scroll(-2)
    assert m.state.index == 2
    start = Window(500, 1000)
    m.drag_window(start, dx=256, dy=-128)  # right widens by a width, up lowers the centre
    assert m.state.voi.width == pytest.approx(2000) and m.state.voi.center == pytest.approx(0)
    assert m.state.voi_label == "user"
    w = auto_window(src.decode(2))
    vals = src.decode(2).modality
    assert w.center == pytest.approx((np.percentile(vals, 0.5) + np.percentile(vals, 99.5)) / 2)
    m.reset()
    assert m.state.voi is None and m.state.index == 2
    assert seen[:3] == ["source", "index", "index"] and "voi" in seen


def test_padding_from_volume_values_matches_the_stored_padding(tmp_path) -> None:
    from synthetic import image_dataset, save

    from workstation.core.dicom_file import DicomFile
    from workstation.core.modality_lut import modality_transform
    from workstation.core.pipeline import FrameRenderer

    stored = np.full((8, 8), -2000, np.int16)
    stored[2:6, 2:6] = 40
    ds = image_dataset(stored, RescaleSlope=1, RescaleIntercept=-1024, PixelPaddingValue=-2000)
    path = save(ds, tmp_path / "pad.dcm")
    direct = FrameRenderer(DicomFile.open(path), 0)
    mt = modality_transform(ds, 0)
    from_values = FrameRenderer.from_values(ds, 0, mt.apply(stored), mt, (path, 0), "loader")
    assert "_padding" not in from_values.__dict__  # not built until asked for
    assert np.array_equal(from_values.padding, direct.padding)
    assert from_values.default_voi() == direct.default_voi()  # min-max without the padding
