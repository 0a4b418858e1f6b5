"""Pixel reads that start while a series' headers are still being read (the series opener).

Opening a series in the viewer reads every header first (the display order comes from them),
then loads the volume. A :class:`Staging` lets the loader's worker processes copy each
uncompressed file's pixels into a shared segment as soon as its header is read, in request order;
:meth:`SeriesLoader.load <workstation.core.series_loader.SeriesLoader.load>` then takes the
segment over as its volume and puts the rows in display order in place
(:func:`permute_rows`), so the pixels are read while the headers are, not after them.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.shared_memory import SharedMemory
from typing import TYPE_CHECKING

import numpy as np

from workstation.core.pixel_layout import PixelLayout
from workstation.core.series_loader import _Item
from workstation.core.volume_segment import (
    _HEADER,
    _allocate,
    _attach,
    _integral,
    _read_native,
    _reserve_rows,
)

if TYPE_CHECKING:
    from workstation.core.series_loader import SeriesLoader


def _stage_work(
    name: str, shape: tuple[int, ...], dtype: str, items: list[_Item]
) -> list[tuple[int, bool]]:
    """Read uncompressed pixels at their layouts into a staging segment (runs in a worker):
    ``(row, staged)`` for each item; a row not staged is loaded the usual way later."""
    shm = _attach(name)
    try:
        vol = np.ndarray(shape, np.dtype(dtype), buffer=shm.buf, offset=_HEADER)
        done = []
        for row, path, layout in items:
            ok = False
            if not shm.buf[0] and layout is not None:
                try:
                    _reserve_rows(shm, vol, (row,))
                except OSError:  # /dev/shm is full: the load says so
                    done.append((row, False))
                    continue
                ok = bool(_read_native(path, layout, vol[row], shm))
            done.append((row, ok))
        del vol
    finally:
        shm.close()
    return done


_STAGE_BATCH = 16


class Staging:
    """Uncompressed pixels read by the loader's workers while the caller is still reading the
    series' headers (:meth:`SeriesLoader.stage`), before the display order is known.

    The caller :meth:`add` s each file as soon as its header is read (in request order, with its
    :class:`~workstation.core.pixel_layout.PixelLayout`); the workers copy the pixel bytes into
    a shared segment, one row per file, while the caller goes on reading headers. A later
    :meth:`SeriesLoader.load` given this staging takes the segment over as its volume, moves the
    rows into display order in place and reads only the files that were not staged. Not taken
    over, it must be :meth:`close` d.
    """

    def __init__(
        self, loader: SeriesLoader, total: int, fits: Callable[[int], bool] | None = None
    ) -> None:
        self._loader = loader
        self.total = total
        self._fits = fits
        self._lock = threading.Lock()
        self._rows: dict[str, int] = {}
        self._layouts: dict[str, PixelLayout | None] = {}
        self._batch: list[_Item] = []
        self._jobs: list[cf.Future] = []
        self._shm: SharedMemory | None = None
        self._vol: np.ndarray | None = None
        self._dead = False  # closed, taken over, or over the memory budget

    def add(self, path: str, layout: PixelLayout | None) -> None:
        """One more file (its row is the number of files added before it)."""
        with self._lock:
            if len(self._rows) >= self.total or path in self._rows:
                return
            self._rows[path] = len(self._rows)
            self._layouts[path] = layout
            if self._dead or layout is None:
                return
            if self._vol is None:
                dtype = np.dtype(np.int16 if _integral(layout.transform) else np.float32)
                shape = (self.total, layout.rows, layout.cols)
                if self._fits is not None and not self._fits(int(np.prod(shape)) * dtype.itemsize):
                    self._dead = True  # no volume of this size will be loaded
                    return
                try:
                    self._shm, self._vol = _allocate(shape, dtype)
                except OSError:  # /dev/shm is full: the load says so
                    self._dead = True
                    return
            if (layout.rows, layout.cols) != self._vol.shape[1:]:
                return
            self._batch.append((self._rows[path], path, layout))
            # one read job at a time while the caller reads headers: the caller's thread keeps
            # a core to itself (it is the one the display sets wait for); the batch grows
            if len(self._batch) >= _STAGE_BATCH and (not self._jobs or self._jobs[-1].done()):
                self._submit()

    def finish(self) -> None:
        """Every file has been added: start the last reads, shared by every worker."""
        with self._lock:
            if self._dead:
                return
            rest, workers = self._batch, self._loader.workers
            size = max(1, -(-len(rest) // workers))
            for k in range(0, len(rest), size):
                self._batch = rest[k : k + size]
                self._submit()

    def wait(self) -> int:
        """Start the last reads and wait for all of them; how many files are staged."""
        return len(self._staged_rows())

    def layout_known(self, path: str) -> bool:
        """Whether ``path`` was added."""
        with self._lock:
            return path in self._layouts

    def layout(self, path: str) -> PixelLayout | None:
        """The layout given for ``path`` (None when unknown or not uncompressed)."""
        with self._lock:
            return self._layouts.get(path)

    def _submit(self) -> None:
        batch, self._batch = self._batch, []
        if not batch or self._vol is None or self._shm is None:
            return
        try:
            pool = self._loader._start_pool()
            job = pool.submit(
                _stage_work, self._shm.name, self._vol.shape, self._vol.dtype.str, batch
            )
        except (BrokenProcessPool, RuntimeError):
            return  # those files are loaded the usual way
        self._jobs.append(job)

    def _staged_rows(self) -> set[int]:
        self.finish()
        with self._lock:
            jobs = list(self._jobs)
        staged: set[int] = set()
        for fut in jobs:
            try:
                staged.update(row for row, ok in fut.result() if ok)
            except Exception as exc:  # noqa: BLE001 - those files are loaded the usual way
                if isinstance(exc, BrokenProcessPool):
                    self._loader._discard_pool()
        return staged

    def _claim(self, files: list[str]) -> tuple[SharedMemory, np.ndarray, list[int | None]] | None:
        """Take the segment over for a load of ``files``: (segment, its whole volume, each
        file's staged row or None); None when nothing useful was staged."""
        with self._lock:
            if self._dead or self._shm is None or self._vol is None:
                return None
        staged = self._staged_rows()
        with self._lock:
            if self._dead or self._shm is None or self._vol is None:
                return None
            rows = [self._rows.get(f) for f in files]
            src = [r if r is not None and r in staged else None for r in rows]
            if len(files) > self._vol.shape[0] or all(r is None for r in src):
                return None
            self._dead = True  # taken over: the load unlinks the segment
            shm, vol, self._shm, self._vol = self._shm, self._vol, None, None
        return shm, vol, src

    def close(self) -> None:
        """Release the segment unless a load took it over (idempotent)."""
        with self._lock:
            self._dead = True
            shm, self._shm = self._shm, None
            if shm is not None and self._vol is not None:
                shm.buf[0] = 1  # workers still reading skip the rest
            self._vol = None  # the mapping closes with the last view of it
            jobs, self._jobs = self._jobs, []
        for fut in jobs:
            fut.cancel()
        if shm is not None:
            shm.unlink()


def permute_rows(vol: np.ndarray, src: list[int | None]) -> None:
    """In place: row ``i`` of ``vol`` becomes what row ``src[i]`` holds (``src`` injective;
    None: row ``i`` is left as it is), with one spare row for each cycle."""
    pending = {i for i, s in enumerate(src) if s is not None and s != i}
    needed = {src[i] for i in pending}
    for start in [i for i in pending if i not in needed]:  # chains: their ends are free rows
        i = start
        while i in pending:
            s = src[i]
            vol[i] = vol[s]
            pending.discard(i)
            i = s
    while pending:  # what is left are cycles
        start = i = next(iter(pending))
        spare = vol[start].copy()
        while True:
            s = src[i]
            pending.discard(i)
            if s == start:
                vol[i] = spare
                break
            vol[i] = vol[s]
            i = s
