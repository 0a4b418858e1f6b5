"""Opening a series reads its pixels ahead: the loader's workers copy each file's pixels while the
opener is still reading headers, and the volume load takes them over in display order."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from synthetic import stack_files  # noqa: E402

from workstation.core.frame_cache import FrameCache  # noqa: E402
from workstation.core.series_loader import SeriesLoader  # noqa: E402
from workstation.ui.frame_service import FrameService  # noqa: E402
from workstation.ui.series_opener import SeriesOpener  # noqa: E402
from workstation.ui.series_request import SeriesRequest  # noqa: E402

MB = 1024 * 1024


@pytest.fixture
def parts(qapp):
    service = FrameService(lambda: SeriesLoader(workers=2))
    opener = SeriesOpener(FrameCache(256 * MB))
    stagings: list = []

    def stager(total, fits):
        staging = service.stage(total, fits)
        stagings.append(staging)
        return staging

    opener.set_stager(stager)
    yield service, opener, stagings
    opener.shutdown()
    service.shutdown()


def _open(qtbot, opener, paths, uid):
    with qtbot.waitSignal(opener.opened, timeout=30000) as opened:
        opener.open_series("viewport", SeriesRequest(tuple(paths), uid, "1.2.3"))
    source = opened.args[1]
    return source


def _load(qtbot, service, source) -> str:
    with qtbot.waitSignal(service.load_finished, timeout=30000) as done:
        service.load(source)
    return done.args[1]


def test_second_series_is_read_ahead_and_loaded_without_the_files(qtbot, parts, tmp_path) -> None:
    service, opener, stagings = parts
    # 64x64 16-bit slices: their pixel data lies beyond the header read, so its offset is known
    first = stack_files(tmp_path / "a", n=6, rows=64, cols=64)
    source = _open(qtbot, opener, first, "a")
    assert stagings == [None]  # the loader's workers were not started yet: now they start
    assert _load(qtbot, service, source) == ""

    files = stack_files(tmp_path / "b", n=24, rows=64, cols=64)
    request = files[:]
    random.Random(3).shuffle(request)  # the order the archive listed them in
    source = _open(qtbot, opener, request, "b")
    staging = stagings[-1]
    assert staging is not None and staging.wait() == 24
    expected = {p: pydicom.dcmread(p).pixel_array for p in files}
    for p in files:  # read ahead: the load must not need them again
        os.remove(p)
    assert _load(qtbot, service, source) == ""
    assert source.loaded.all()
    volume = source.cache.get((source.uid, "volume"))
    assert volume.shape == (24, 64, 64)
    for i, frame in enumerate(source.frames):  # display order: head first
        assert np.array_equal(volume[i], expected[frame.path]), i
    # an axial stack is shown head first: the last file of the acquisition on top
    assert source.frames[0].path == files[-1]
    assert source.cached(0).decoder == "loader"
