"""Decoding and loading off the GUI thread, reported back through Qt signals.

Two threads:

* the **decoder** takes the latest frame each viewport is waiting for (older requests from the
  same viewport are dropped: scrolling fast through undecoded frames decodes only what is still
  wanted) and decodes it through :meth:`FrameSource.decode`;
* the **loader** works through whole display sets one at a time: stacks that can be one volume go
  through :class:`~workstation.core.series_loader.SeriesLoader` (worker processes, slices shown as
  they land); other sets are decoded frame by frame (prefetch for cine and multi-frame) while the
  memory budget allows.

Signals carry the source uid and indices only; the frames themselves stay in the shared cache.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from workstation.core.errors import DicomError
from workstation.core.frame_source import FrameSource
from workstation.core.series_loader import LoadCancelled, SeriesLoader, SharedMemoryFull
from workstation.core.series_staging import Staging

log = logging.getLogger(__name__)
_EMIT_INTERVAL_S = 0.03
_MAX_STAGINGS = 3  # series opened but not loaded yet whose pixels are being read ahead


class FrameService(QObject):
    """Owns the decoder and loader threads; one per application window."""

    frame_ready = Signal(str, int)
    frame_failed = Signal(str, int, str)
    slices_arrived = Signal(str)
    load_progress = Signal(str, int, int)
    load_finished = Signal(str, str)

    def __init__(
        self,
        loader_factory: Callable[[], SeriesLoader] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._loader_factory = loader_factory or SeriesLoader
        self._loader: SeriesLoader | None = None
        self._cond = threading.Condition()
        self._wanted: dict[int, tuple[FrameSource, int]] = {}
        self._queue: deque[FrameSource] = deque()
        self._cancelled: set[str] = set()
        self._loading: str | None = None
        self._stop = False
        self._warm_up = False
        self._stagings: list[Staging] = []
        self._decoder = threading.Thread(
            target=self._decode_loop, name="frame-decoder", daemon=True
        )
        self._load_thread = threading.Thread(
            target=self._load_loop, name="series-load", daemon=True
        )
        self._decoder.start()
        self._load_thread.start()

    # --- requests from the GUI thread ----------------------------------------------------------------
    def request(self, requester: object, source: FrameSource, index: int) -> None:
        """Decode ``source`` frame ``index`` for ``requester`` (replaces its earlier request)."""
        with self._cond:
            self._wanted[id(requester)] = (source, index)
            self._cond.notify_all()

    def load(self, source: FrameSource) -> None:
        """Load every frame of ``source`` in the background (no-op when queued or done)."""
        with self._cond:
            self._cancelled.discard(source.uid)
            if source.uid == self._loading or any(s.uid == source.uid for s in self._queue):
                return
            if source.loaded.all():
                return
            self._queue.append(source)
            self._cond.notify_all()

    def stage(self, total: int, fits: Callable[[int], bool] | None = None) -> Staging | None:
        """Start reading a series' pixels while its headers are still being read.

        Called by the series opener before it reads the headers of ``total`` files; it adds each
        file to the :class:`~workstation.core.series_loader.Staging` returned, and the load of
        the display set holding them takes it over. None while the loader's worker processes
        are not started yet (this call starts them in the background).
        """
        with self._cond:
            loader = self._loader
            if loader is None or self._stop:
                self._warm_up = True
                self._cond.notify_all()
                return None
            staging = loader.stage(total, fits)
            self._stagings.append(staging)
            old = self._stagings[:-_MAX_STAGINGS]
            del self._stagings[:-_MAX_STAGINGS]
        for st in old:
            st.close()
        return staging

    def _take_staging(self, paths: list[str]) -> Staging | None:
        with self._cond:
            for st in self._stagings:
                if st.layout_known(paths[0]):
                    self._stagings.remove(st)
                    return st
        return None

    def cancel(self, source_uid: str) -> None:
        """Stop loading a source (what is loaded stays)."""
        with self._cond:
            self._cancelled.add(source_uid)
            self._queue = deque(s for s in self._queue if s.uid != source_uid)

    def is_loading(self, source_uid: str) -> bool:
        with self._cond:
            return source_uid == self._loading or any(s.uid == source_uid for s in self._queue)

    def shutdown(self) -> None:
        """Stop both threads and the loader's worker processes."""
        with self._cond:
            self._stop = True
            if self._loading is not None:
                self._cancelled.add(self._loading)
            self._cond.notify_all()
        self._decoder.join(timeout=5)
        self._load_thread.join(timeout=10)
        with self._cond:
            stagings, self._stagings = self._stagings, []
        for st in stagings:
            st.close()
        if self._loader is not None:
            self._loader.close()
            self._loader = None

    # --- the decoder thread ------------------------------------------------------------------------
    def _decode_loop(self) -> None:
        while True:
            with self._cond:
                while not self._wanted and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                key = next(iter(self._wanted))
                source, index = self._wanted.pop(key)
            try:
                source.decode(index)
            except (DicomError, IndexError) as exc:
                self.frame_failed.emit(source.uid, index, str(exc))
                continue
            except Exception as exc:  # noqa: BLE001 - a decoder bug must not kill the thread
                log.exception("decoding %s frame %d", source.uid, index)
                self.frame_failed.emit(source.uid, index, f"{type(exc).__name__}: {exc}")
                continue
            self.frame_ready.emit(source.uid, index)

    # --- the loader thread -------------------------------------------------------------------------
    def _load_loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stop and not self._warm_up:
                    self._cond.wait()
                if self._stop:
                    return
                warm_up, self._warm_up = self._warm_up, False
                if not self._queue:
                    source = None
                else:
                    source = self._queue.popleft()
                    self._loading = source.uid
            if source is None:
                if warm_up and self._loader is None:  # a series is being opened
                    try:
                        self._loader = self._loader_factory()
                    except Exception:  # noqa: BLE001 - the load will say why
                        log.exception("starting the series loader")
                continue
            try:
                message = self._load(source)
            except Exception as exc:  # noqa: BLE001 - report, keep the thread alive
                log.exception("loading %s", source.uid)
                message = f"load failed: {type(exc).__name__}: {exc}"
            with self._cond:
                self._loading = None
            self.load_finished.emit(source.uid, message)

    def _is_cancelled(self, uid: str) -> bool:
        with self._cond:
            return self._stop or uid in self._cancelled

    def _load(self, source: FrameSource) -> str:
        paths = source.volume_paths()
        if paths is not None:
            try:
                return self._load_volume(source, paths)
            except SharedMemoryFull as exc:  # the frames decode one by one, within the budget
                log.warning("%s", exc)
                rest = self._prefetch(source)
                return f"Frames decode one by one: {exc}" + (f"; {rest}" if rest else "")
        return self._prefetch(source)

    def _load_volume(self, source: FrameSource, paths: list[str]) -> str:
        if self._loader is None:
            self._loader = self._loader_factory()
        last = [0.0]

        def on_slice(volume, index: int) -> None:
            source.slice_arrived(volume, index)
            now = time.perf_counter()
            if now - last[0] >= _EMIT_INTERVAL_S:
                last[0] = now
                self.slices_arrived.emit(source.uid)

        def progress(done: int, total: int) -> None:
            if done == total or done % 8 == 0:
                self.load_progress.emit(source.uid, done, total)

        staged = self._take_staging(paths)
        if staged is not None and all(staged.layout_known(p) for p in paths):
            layouts = [staged.layout(p) for p in paths]  # worked out as the headers were read
        else:
            layouts = source.volume_layouts()
        try:
            result = self._loader.load(
                paths,
                progress=progress,
                cancel=lambda: self._is_cancelled(source.uid),
                on_slice=on_slice,
                layouts=layouts,
                staged=staged,
            )
        except LoadCancelled as exc:
            self.slices_arrived.emit(source.uid)
            return str(exc)
        finally:
            if staged is not None:
                staged.close()  # a no-op when the load took its segment over
        source.volume_done(result.failures)
        self.slices_arrived.emit(source.uid)
        self.load_progress.emit(source.uid, len(paths), len(paths))
        if result.failures:
            return f"{len(result.failures)} of {len(paths)} images could not be loaded"
        return ""

    def _prefetch(self, source: FrameSource) -> str:
        n = len(source)
        failed = 0
        for i in range(n):
            if self._is_cancelled(source.uid):
                return "cancelled"
            if source.cache.used > 0.8 * source.cache.budget:
                return "memory budget reached: the other frames decode when shown"
            if source.cached(i) is None:
                try:
                    source.decode(i)
                except (DicomError, IndexError):
                    failed += 1
                    continue
                self.frame_ready.emit(source.uid, i)
            if i % 4 == 0 or i == n - 1:
                self.load_progress.emit(source.uid, i + 1, n)
        return f"{failed} of {n} frames could not be decoded" if failed else ""
