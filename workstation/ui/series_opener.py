"""From "open this series / this folder" to frame sources, off the GUI thread.

Opening a series shows its first file at once (one header read, one frame decoded), then, when
every header is read and the display sets are built, swaps in the sorted stack at the same image.
Display sets and their sources are kept per series, so opening a series again (or in a second
viewport) is immediate and shares the decoded frames.

With a stager (:meth:`SeriesOpener.set_stager`, the frame service's ``stage``), the loader's
worker processes read each uncompressed file's pixels into a shared volume as soon as its header
is read here (in request order: the display order is not known yet), while this thread goes on
reading headers and building the display sets; the volume load that follows then only puts the
rows in display order. (Having the workers parse the headers too was measured slower: pickling
the headers back costs more than it saves.)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from PySide6.QtCore import QObject, Signal

from workstation.core.decoders import DecoderRegistry
from workstation.core.display_sets import (
    DisplaySet,
    HeaderRecord,
    build_display_sets,
    read_header_records,
)
from workstation.core.errors import DicomError
from workstation.core.frame_cache import FrameCache
from workstation.core.frame_source import FrameSource
from workstation.core.pixel_layout import layout_reader
from workstation.core.series_staging import Staging
from workstation.ui.series_request import SeriesRequest

Stager = Callable[[int, Callable[[int], bool]], Staging | None]

log = logging.getLogger(__name__)


def main_display_set(sets: Sequence[DisplaySet], first_path: str | None = None) -> DisplaySet:
    """The set a radiologist expects: the one holding ``first_path`` unless it is a localizer,
    else the largest non-localizer set."""
    if first_path is not None:
        for d in sets:
            if not d.is_localizer and any(f.path == first_path for f in d.frames):
                return d
    candidates = [d for d in sets if not d.is_localizer] or list(sets)
    return max(candidates, key=lambda d: len(d.frames))


class SeriesOpener(QObject):
    """Builds :class:`FrameSource` objects for requests; answers through signals.

    Signals
    -------
    provisional(object token, FrameSource)
        The first file of a requested series, decoded: show it now.
    opened(object token, FrameSource, str first_path)
        The series' main display set; ``first_path`` is the file shown provisionally.
    sets_opened(object token, list)
        Every display set of a folder / file list (``open_paths``), sources in reading order.
    failed(object token, str)
        Nothing could be shown; the reason.
    """

    provisional = Signal(object, object)
    opened = Signal(object, object, str)
    sets_opened = Signal(object, list)
    failed = Signal(object, str)

    def __init__(
        self, cache: FrameCache, registry: DecoderRegistry | None = None, parent=None
    ) -> None:
        super().__init__(parent)
        self.cache = cache
        self.registry = registry
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="series-open")
        self._lock = threading.Lock()
        self._by_series: dict[tuple[str, ...], list[FrameSource]] = {}
        self._stager: Stager | None = None

    def set_stager(self, stager: Stager | None) -> None:
        """Read pixels ahead while a series' headers are read: ``stager(file_count, fits)``
        gives a :class:`~workstation.core.series_loader.Staging` or None
        (:meth:`FrameService.stage <workstation.ui.frame_service.FrameService.stage>`)."""
        self._stager = stager

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _staging(self, paths: Sequence[str]) -> Staging | None:
        if self._stager is None or len(paths) < 2:
            return None
        try:
            return self._stager(len(paths), self.cache.fits)
        except Exception:  # noqa: BLE001 - reading ahead is an optimisation only
            log.exception("reading ahead")
            return None

    def _sources(self, paths: Sequence[str], stage: bool = False) -> list[FrameSource]:
        key = tuple(sorted(paths))
        with self._lock:
            hit = self._by_series.get(key)
        if hit is not None:
            return hit
        staging = self._staging(paths) if stage else None
        on_record = None
        if staging is not None:
            layout = layout_reader(self.registry)

            def on_record(rec: HeaderRecord) -> None:  # the workers read its pixels now
                try:
                    staging.add(rec.path, layout(rec.ds))
                except Exception:  # noqa: BLE001 - the load reads the file the usual way
                    log.debug("not read ahead: %s", rec.path, exc_info=True)

        records, problems = read_header_records(list(paths), on_record)
        if staging is not None:
            staging.finish()
        for path, reason in problems[:5]:
            log.warning("skipped %s: %s", path, reason)
        headers = {r.path: r.ds for r in records}
        sources = [
            FrameSource(d, headers, self.cache, self.registry) for d in build_display_sets(records)
        ]
        with self._lock:
            self._by_series[key] = sources
        return sources

    # --- a series ------------------------------------------------------------------------------
    def open_series(self, token: object, request: SeriesRequest) -> None:
        """Open ``request`` for ``token`` (usually the viewport that will show it)."""
        self._pool.submit(self._open_series, token, request)

    def _open_series(self, token: object, request: SeriesRequest) -> None:
        try:
            if not request.paths:
                self.failed.emit(token, "the series has no files")
                return
            key = tuple(sorted(request.paths))
            with self._lock:
                cached = self._by_series.get(key)
            first = request.paths[0]
            if cached is None and len(request.paths) > 1:
                first_sources = self._provisional(first)
                if first_sources is not None:
                    self.provisional.emit(token, first_sources)
            sources = self._sources(request.paths, stage=cached is None)
            if not sources:
                self.failed.emit(token, "no displayable images in the series")
                return
            main = main_display_set([s.display_set for s in sources], first)
            source = next(s for s in sources if s.display_set is main)
            self.opened.emit(token, source, first)
        except Exception as exc:  # noqa: BLE001 - report, never kill the worker
            log.exception("opening %s", request.series_uid)
            self.failed.emit(token, f"{type(exc).__name__}: {exc}")

    def _provisional(self, path: str) -> FrameSource | None:
        records, _ = read_header_records([path])
        sets = build_display_sets(records)
        if not sets:
            return None
        source = FrameSource(sets[0], {r.path: r.ds for r in records}, self.cache, self.registry)
        try:
            source.decode(0)
        except DicomError as exc:
            log.warning("%s", exc)
            return None
        return source

    # --- a folder or files, in place ----------------------------------------------------------------
    def open_paths(self, token: object, paths: Sequence[str]) -> None:
        """Every display set under ``paths`` (files or folders), read in place."""
        self._pool.submit(self._open_paths, token, list(paths))

    def _open_paths(self, token: object, paths: list[str]) -> None:
        try:
            sources = self._sources(paths)
            if not sources:
                self.failed.emit(token, "no DICOM images found in " + ", ".join(paths))
                return
            main = [s for s in sources if not s.display_set.is_localizer]
            rest = [s for s in sources if s.display_set.is_localizer]
            self.sets_opened.emit(token, main + rest)
        except Exception as exc:  # noqa: BLE001
            log.exception("opening %s", paths)
            self.failed.emit(token, f"{type(exc).__name__}: {exc}")
