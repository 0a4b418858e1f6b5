"""Joins the storage listener (``workstation.net``) to the archive (``workstation.archive``).

Each received instance goes to ``archive.add_bytes`` on the association's thread; the
:class:`~workstation.archive.results.AddResult` becomes the C-STORE status:

=====================================  =========================================
archive outcome                        DIMSE status answered
=====================================  =========================================
imported, duplicate                    0x0000 success
conflict (kept aside, reported)        0x0000 success: the instance is stored
``ArchiveWriteError`` / ``OSError``    0xA700 out of resources (also SQLite's "disk full")
rejected (unreadable, bad UIDs, ...)   0xC000 cannot understand
=====================================  =========================================

Every outcome goes to the audit log (``workstation.audit``). What each association delivered is
summed up per study in a frozen :class:`ReceivedBatch` when it ends: the command line prints
them, the window can show them.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from workstation.archive.results import AddResult, AddStatus, ArchiveWriteError
from workstation.net.storage_scp import (
    CANNOT_UNDERSTAND,
    DEFAULT_MAX_PDU,
    OUT_OF_RESOURCES,
    SUCCESS,
    AssociationReport,
    ListenerEvent,
    StorageListener,
)

audit = logging.getLogger("workstation.audit")
log = logging.getLogger(__name__)


class InstanceSink(Protocol):
    """What the listener needs of the archive."""

    def add_bytes(self, data: bytes, source: str) -> AddResult: ...


@dataclass(frozen=True)
class ListenerSettings:
    """How the storage listener is set up (defaults: AE ``WORKSTATION`` on port 11112).

    ``allowed_calling_aes`` empty and ``accept_any`` false is refused: a listener that accepts
    nobody is a configuration mistake, and accepting anybody must be asked for.
    """

    ae_title: str = "WORKSTATION"
    port: int = 11112
    bind_address: str = ""
    allowed_calling_aes: tuple[str, ...] = ()
    accept_any: bool = False
    max_pdu: int = DEFAULT_MAX_PDU


def status_for(result: AddResult) -> int:
    """The C-STORE status for what the archive did with a received instance."""
    if result.status in (AddStatus.IMPORTED, AddStatus.DUPLICATE, AddStatus.CONFLICT):
        return SUCCESS
    return CANNOT_UNDERSTAND


@dataclass(frozen=True)
class StudyTally:
    """Instances of one study received in one association."""

    study_instance_uid: str
    imported: int = 0
    duplicate: int = 0
    conflict: int = 0


@dataclass(frozen=True)
class ReceivedBatch:
    """What one association delivered, by study (sent when the association ends).

    Attributes
    ----------
    calling_ae, peer : str
        Who sent it (``peer`` is ``host:port``).
    outcome : str
        ``released``, ``aborted``, ``closed`` or ``rejected``.
    studies : tuple of StudyTally
        In order of first arrival.
    rejected : int
        Instances the archive could not understand (answered 0xC000).
    write_failed : int
        Instances that could not be written (answered 0xA700).
    size : int
        Bytes received in stored instances.
    seconds : float
        Length of the association.
    store_seconds : float
        Of which spent adding instances to the archive.
    reason : str
        Why the association was rejected, when it was.
    """

    calling_ae: str
    peer: str
    outcome: str
    studies: tuple[StudyTally, ...] = ()
    rejected: int = 0
    write_failed: int = 0
    size: int = 0
    seconds: float = 0.0
    store_seconds: float = 0.0
    reason: str = ""

    @property
    def stored(self) -> int:
        return sum(s.imported + s.duplicate + s.conflict for s in self.studies)


@dataclass
class _Pending:
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    rejected: int = 0
    write_failed: int = 0


class ArchiveReceiver:
    """A storage listener whose instances go into an archive.

    Parameters
    ----------
    archive : InstanceSink
        Usually ``Services.archive``; anything with ``add_bytes(data, source) -> AddResult``.
    settings : ListenerSettings
    on_batch : callable, optional
        Called with each :class:`ReceivedBatch`, on an association thread.

    Raises
    ------
    ValueError
        For invalid settings (bad AE title, port, nobody allowed).
    """

    def __init__(
        self,
        archive: InstanceSink,
        settings: ListenerSettings,
        on_batch: Callable[[ReceivedBatch], None] | None = None,
    ) -> None:
        self.archive = archive
        self.settings = settings
        self._on_batch = on_batch
        self._pending: dict[tuple[str, str], _Pending] = {}
        self._lock = threading.Lock()
        self.listener = StorageListener(
            settings.ae_title,
            settings.port,
            self.store,
            bind_address=settings.bind_address,
            allowed_calling_aes=settings.allowed_calling_aes,
            accept_any=settings.accept_any,
            max_pdu=settings.max_pdu,
        )
        self.listener.add_observer(self._observe)

    # --- the store callback (association threads) ---------------------------------------------
    def store(self, data: bytes, calling_ae: str, peer: str) -> int:
        """Add one received Part 10 file to the archive; return the C-STORE status."""
        source = f"c-store from {calling_ae}@{peer}"
        try:
            result = self.archive.add_bytes(data, source)
        except (ArchiveWriteError, OSError, sqlite3.OperationalError) as exc:
            # sqlite3: "database or disk is full" / "database is locked" from the index commit,
            # which the archive does not (yet) turn into ArchiveWriteError.
            audit.error("not stored (out of resources): %s: %s", source, exc)
            self._count(calling_ae, peer, None)
            return OUT_OF_RESOURCES
        status = status_for(result)
        if status == SUCCESS:
            audit.info(
                "received %s study %s from %s: %s%s",
                result.sop_instance_uid,
                result.study_instance_uid,
                source,
                result.status.value,
                f" ({result.reason})" if result.reason else "",
            )
        else:
            audit.warning("not stored (cannot understand): %s: %s", source, result.reason)
        self._count(calling_ae, peer, result)
        return status

    def _count(self, calling_ae: str, peer: str, result: AddResult | None) -> None:
        with self._lock:
            pending = self._pending.setdefault((calling_ae, peer), _Pending())
            if result is None:
                pending.write_failed += 1
            elif result.status is AddStatus.REJECTED:
                pending.rejected += 1
            else:
                study = result.study_instance_uid or "(unknown study)"
                pending.counts.setdefault(study, Counter())[result.status.value] += 1

    def _observe(self, event: ListenerEvent) -> None:
        if not isinstance(event, AssociationReport):
            return
        with self._lock:
            pending = self._pending.pop((event.calling_ae, event.peer), _Pending())
        if event.outcome != "rejected" and not (
            pending.counts or pending.rejected or pending.write_failed
        ):
            return  # an echo, or an association that sent nothing
        studies = tuple(
            StudyTally(uid, c["imported"], c["duplicate"], c["conflict"])
            for uid, c in pending.counts.items()
        )
        batch = ReceivedBatch(
            event.calling_ae,
            event.peer,
            event.outcome,
            studies,
            pending.rejected,
            pending.write_failed,
            event.size,
            event.seconds,
            event.store_seconds,
            event.reason,
        )
        if event.outcome == "rejected":
            audit.warning(
                "association from %s@%s rejected: %s", event.calling_ae, event.peer, event.reason
            )
        if self._on_batch is not None:
            self._on_batch(batch)

    # --- running ------------------------------------------------------------------------------
    @property
    def address(self) -> tuple[str, int]:
        """The ``(host, port)`` listened on."""
        return self.listener.address

    def start(self) -> None:
        """Listen in the background (for the window)."""
        self.listener.start()

    def stop(self, wait: bool = True) -> threading.Thread | None:
        """Stop listening; ``wait=False`` returns at once (see :meth:`StorageListener.stop`)."""
        return self.listener.stop(wait=wait)

    def serve_forever(self) -> None:
        """Listen until :meth:`request_stop` (or Ctrl-C); for the command line."""
        self.listener.serve_forever()

    def request_stop(self) -> None:
        self.listener.request_stop()
