"""Volumes for reformatting, built once per display set off the GUI thread and shared.

The MPR workspace and hanging-protocol reformats ask a :class:`VolumeStore` for the volume of a
:class:`~workstation.core.frame_source.FrameSource`. When the series is still loading the store
waits for the frame service to finish it, then builds the
:class:`~workstation.render.volume_image.VolumeImage` (and its
:class:`~workstation.render.reslice.Reslicer`) in a worker thread and announces it with
:attr:`VolumeStore.ready`. One store is made by the application and handed to whoever needs it
(no module-level state, DESIGN rule 8).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from pydicom.dataset import Dataset
from PySide6.QtCore import QObject, Signal

from workstation.core.frame_source import FrameSource
from workstation.render.reformat_source import volume_from_frame_source
from workstation.render.reslice import Reslicer
from workstation.render.volume_image import VolumeImage
from workstation.ui.frame_service import FrameService

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class SharedVolume:
    """A built volume, its reslicer and what the reformats of it copy from the series.

    Attributes
    ----------
    key : str
        The display set's uid.
    volume, reslicer
        The volume and its (thread-safe) reslicer.
    template : Dataset
        A header of the series (patient, study, Frame of Reference, window).
    label : str
        The display set's label, for the user.
    lossy : bool
        Whether any slice is (or was) lossy compressed.
    """

    key: str
    volume: VolumeImage
    reslicer: Reslicer
    template: Dataset
    label: str
    lossy: bool


class VolumeStore(QObject):
    """Builds and keeps the volumes of the last few display sets.

    Parameters
    ----------
    service : FrameService
        Loads series that are not loaded yet (its ``load_finished`` tells when).
    keep : int
        How many volumes stay in memory (least recently used go first).

    Signals
    -------
    ready(str uid)
        The volume of display set ``uid`` is built: :meth:`get` returns it.
    failed(str uid, str reason)
        It cannot be built (not a volume, slices missing...).
    """

    ready = Signal(str)
    failed = Signal(str, str)

    def __init__(self, service: FrameService, keep: int = 2, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.service = service
        self.keep = max(1, keep)
        self._volumes: OrderedDict[str, SharedVolume] = OrderedDict()
        self._waiting: dict[str, FrameSource] = {}
        self._building: set[str] = set()
        self._callbacks: dict[str, list[tuple[Callable, Callable | None]]] = {}
        service.load_finished.connect(self._load_finished)
        self._built.connect(self._store)

    _built = Signal(str, object, str)  # uid, SharedVolume or None, reason (worker -> GUI thread)

    def get(self, uid: str) -> SharedVolume | None:
        """The built volume of display set ``uid`` (None when not built)."""
        vol = self._volumes.get(uid)
        if vol is not None:
            self._volumes.move_to_end(uid)
        return vol

    def request(
        self,
        source: FrameSource,
        on_ready: Callable[[SharedVolume], None] | None = None,
        on_failed: Callable[[str], None] | None = None,
    ) -> SharedVolume | None:
        """The volume of ``source`` now if built; otherwise start loading/building it and call
        ``on_ready(volume)`` (or ``on_failed(reason)``) on the GUI thread later."""
        have = self.get(source.uid)
        if have is not None:
            if on_ready is not None:
                on_ready(have)
            return have
        if on_ready is not None or on_failed is not None:
            self._callbacks.setdefault(source.uid, []).append(
                (on_ready or (lambda v: None), on_failed)
            )
        if source.uid in self._building or source.uid in self._waiting:
            return None
        if source.loaded.all():
            self._build(source)
        else:
            self._waiting[source.uid] = source
            self.service.load(source)
        return None

    def _load_finished(self, uid: str, message: str) -> None:
        source = self._waiting.pop(uid, None)
        if source is None:
            return
        if not source.loaded.all():
            self._store(uid, None, message or "the series did not load completely")
            return
        self._build(source)

    def _build(self, source: FrameSource) -> None:
        self._building.add(source.uid)

        def work() -> None:
            try:
                volume = volume_from_frame_source(source)
                shared = SharedVolume(
                    source.uid,
                    volume,
                    Reslicer(volume),
                    source.header(0),
                    source.display_set.label,
                    any(source.is_lossy(i) for i in range(len(source))),
                )
            except (ValueError, MemoryError) as exc:
                self._built.emit(source.uid, None, str(exc))
                return
            except Exception as exc:  # noqa: BLE001 - a VTK or numpy surprise: report it
                log.exception("building the volume of %s", source.uid)
                self._built.emit(source.uid, None, f"{type(exc).__name__}: {exc}")
                return
            self._built.emit(source.uid, shared, "")

        threading.Thread(target=work, name="mpr-volume", daemon=True).start()

    def _store(self, uid: str, shared: SharedVolume | None, reason: str) -> None:
        self._building.discard(uid)
        callbacks = self._callbacks.pop(uid, [])
        if shared is None:
            for _, on_failed in callbacks:
                if on_failed is not None:
                    on_failed(reason)
            self.failed.emit(uid, reason)
            return
        self._volumes[uid] = shared
        while len(self._volumes) > self.keep:
            self._volumes.popitem(last=False)
        for on_ready, _ in callbacks:
            on_ready(shared)
        self.ready.emit(uid)
