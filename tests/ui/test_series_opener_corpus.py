"""Every series of the corpus opens through the opener with pixels read ahead, and the loaded
volume holds exactly what decoding each frame on its own gives."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from workstation.codecs import default_registry
from workstation.core.display_sets import build_display_sets, read_header_records
from workstation.core.frame_cache import FrameCache
from workstation.core.frame_source import FrameSource
from workstation.core.series_loader import SeriesLoader
from workstation.ui.frame_service import FrameService
from workstation.ui.series_opener import SeriesOpener
from workstation.ui.series_request import SeriesRequest

pytestmark = pytest.mark.corpus
MB = 1024 * 1024


def test_every_corpus_series_opens_and_loads_what_per_frame_decoding_gives(
    qtbot, qapp, corpus_dir
) -> None:
    records, _ = read_header_records([corpus_dir])
    series: dict[str, list[str]] = defaultdict(list)
    by_series: dict[str, list] = defaultdict(list)
    for r in records:
        series[str(r.ds.get("SeriesInstanceUID", r.path))].append(r.path)
        by_series[str(r.ds.get("SeriesInstanceUID", r.path))].append(r)
    many = {uid: sorted(p)[::-1] for uid, p in series.items() if len(p) >= 2}  # reversed: rows move
    assert len(many) >= 10
    registry = default_registry()
    service = FrameService(lambda: SeriesLoader(registry, workers=2))
    opener = SeriesOpener(FrameCache(1024 * MB), registry)
    staged = []

    def stager(total, fits):
        staging = service.stage(total, fits)
        staged.append(staging)
        return staging

    opener.set_stager(stager)
    answers: list = []
    opener.opened.connect(lambda token, source, first: answers.append(source))
    opener.failed.connect(lambda token, reason: answers.append(reason))
    volumes, failed = 0, []
    try:
        for uid, paths in many.items():
            answers.clear()
            opener.open_series("v", SeriesRequest(tuple(paths), uid, ""))
            qtbot.waitUntil(lambda: bool(answers), timeout=60000)
            source = answers[0]
            if isinstance(source, str):  # said why: only series without images may fail
                if build_display_sets(by_series[uid]):
                    failed.append((paths[0], source))
                continue
            is_volume = source.volume_paths() is not None
            with qtbot.waitSignal(service.load_finished, timeout=60000):
                service.load(source)
            if not is_volume:
                continue
            volumes += 1
            alone = FrameSource(source.display_set, {}, FrameCache(256 * MB), registry)
            for i in sorted({0, len(source) // 2, len(source) - 1}):
                if not source.loaded[i]:
                    continue  # failed in the volume: it decodes (and fails) per frame
                got = source.cached(i)
                assert got is not None and got.decoder == "loader", (uid, i)
                want = alone.decode(i)
                assert np.allclose(got.modality, want.modality, atol=1e-3), (uid, i, paths)
    finally:
        opener.shutdown()
        service.shutdown()
    assert volumes >= 5 and not failed, failed
    assert sum(s is not None for s in staged) >= volumes - 1  # the first open starts the pool
