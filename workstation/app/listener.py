"""Joins the storage listener (``workstation.net``) to the archive (``workstation.archive``).

How a received instance is acknowledged is :attr:`ListenerSettings.ack`:

``"spooled"`` (the default)
    The association's thread only writes the bytes, fragment by fragment as they arrive (the
    fast engine streams them), to a spool file made ahead in the archive's ``spool/`` (page
    cache, no fsync) and answers success once the instance is whole; the receiver's ingester
    indexes them in batches (in the app's ingest process on idle CPU time, see
    :mod:`workstation.archive.ingest_process`, or on a thread of this process). An
    acknowledged instance survives a crash of the process (SIGKILL included: the next start of
    the archive indexes the spool), but a power cut or kernel crash may lose those acknowledged
    in the last fraction of a second.
``"synced"`` (``workstation listen --sync``)
    The same, with the spool file and directory fsynced before the answer: an acknowledged
    instance survives a power cut too, at ~1-3 ms more per instance.
``"indexed"``
    The instance goes through ``archive.add_bytes`` (durable and indexed) before the answer,
    so that a data set the archive cannot understand is refused with 0xC000 (slowest).

In the spooled modes the answer is 0x0000, or 0xA700 when the spool cannot be written; what
the archive then makes of the instance goes to the audit log, and one that it cannot index is
quarantined (it was acknowledged: never dropped). In the indexed mode the
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
summed up per study in a frozen :class:`ReceivedBatch` when it ends (spooled: once the last of
its instances is indexed): the command line prints them, the window can show them.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from workstation.archive.ingest_process import IngestProcess, ProcessIngester, spool_ingester
from workstation.archive.results import AddResult, AddStatus, ArchiveWriteError
from workstation.archive.spool import SpooledItem, SpoolIngester
from workstation.archive.store import PartFile, SpoolWriter
from workstation.net.nodes import ListenerTls
from workstation.net.storage_scp import (
    CANNOT_UNDERSTAND,
    DEFAULT_ENGINE,
    DEFAULT_MAX_PDU,
    OUT_OF_RESOURCES,
    SUCCESS,
    AssociationReport,
    ListenerEvent,
    StorageListener,
)
from workstation.net.tls import listener_context

audit = logging.getLogger("workstation.audit")
log = logging.getLogger(__name__)


class InstanceSink(Protocol):
    """What the listener needs of the archive."""

    def add_bytes(self, data: bytes, source: str) -> AddResult: ...

    def spool_bytes(
        self, data: bytes | memoryview, *, sync: bool = False, part: PartFile | None = None
    ) -> str: ...

    def open_spool(self, *, sync: bool = False, part: PartFile | None = None) -> SpoolWriter: ...

    def new_spool_part(self) -> PartFile: ...

    def prepare_spooled(self, item: SpooledItem) -> Any: ...

    def index_spooled(
        self, items: Sequence[SpooledItem], prepared: Sequence[Any] | None = None
    ) -> list[AddResult]: ...


AckMode = Literal["spooled", "synced", "indexed"]
ACK_MODES: tuple[str, ...] = ("spooled", "synced", "indexed")


@dataclass(frozen=True)
class ListenerSettings:
    """How the storage listener is set up (defaults: AE ``WORKSTATION`` on port 11112).

    ``allowed_calling_aes`` empty and ``accept_any`` false is refused: a listener that accepts
    nobody is a configuration mistake, and accepting anybody must be asked for. ``ack`` says
    what a success answer guarantees (see the module docstring). ``tls`` (the identity's
    listener TLS, ``workstation nodes local --listener-tls``) makes it accept only TLS.
    """

    ae_title: str = "WORKSTATION"
    port: int = 11112
    bind_address: str = ""
    allowed_calling_aes: tuple[str, ...] = ()
    accept_any: bool = False
    max_pdu: int = DEFAULT_MAX_PDU
    ack: AckMode = "spooled"
    tls: ListenerTls = field(default_factory=ListenerTls)
    engine: str = DEFAULT_ENGINE  # the acceptor: "fast" or "pynetdicom" (storage_scp.ENGINES)


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
        Instances the archive could not understand (indexed mode: answered 0xC000; spooled:
        acknowledged, then quarantined).
    write_failed : int
        Instances that could not be written (answered 0xA700).
    size : int
        Bytes received in stored instances.
    seconds : float
        Length of the association.
    store_seconds : float
        Of which spent answering C-STOREs (spooled: writing the spool; indexed: adding to the
        archive).
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
    spooled: int = 0  # acknowledged, handed to the ingester
    indexed: int = 0  # of which the ingester has reported
    report: AssociationReport | None = None  # the association ended; waiting for the ingester


class ArchiveReceiver:
    """A storage listener whose instances go into an archive.

    Parameters
    ----------
    archive : InstanceSink
        Usually ``Services.archive`` (the indexed mode needs only ``add_bytes``).
    settings : ListenerSettings
    on_batch : callable, optional
        Called with each :class:`ReceivedBatch`, on an association thread or the ingester's.
    ingest : IngestProcess, optional
        Where the spooled modes index: in this child process (see
        :mod:`workstation.archive.ingest_process`: it takes no CPU from the sender's turn); by
        default on a thread of this process.

    In the spooled modes the receiver owns an ingester: it starts with the receiver and
    :meth:`stop` drains it (nothing is left in ``spool/`` after a clean stop).

    Raises
    ------
    ValueError
        For invalid settings (bad AE title, port, nobody allowed).
    TlsError
        When TLS is on and its certificate, key or CA file is missing, unreadable or the key
        does not match the certificate (the message names the file): before anything listens.
    """

    def __init__(
        self,
        archive: InstanceSink,
        settings: ListenerSettings,
        on_batch: Callable[[ReceivedBatch], None] | None = None,
        ingest: IngestProcess | None = None,
    ) -> None:
        self.archive = archive
        self.settings = settings
        self._on_batch = on_batch
        if settings.ack not in ACK_MODES:
            raise ValueError(f"listener: ack must be one of {', '.join(ACK_MODES)}, not "
                             f"{settings.ack!r}")  # fmt: skip
        self._pending: dict[tuple[str, str], _Pending] = {}
        self._lock = threading.Lock()
        self._ingester: SpoolIngester | ProcessIngester | None = None
        ssl_context = None
        if settings.tls.enabled:
            ssl_context = listener_context(settings.tls, f"listener {settings.ae_title}")
        if settings.ack != "indexed":
            self._ingester = spool_ingester(archive, self._indexed, ingest)
        self.listener = StorageListener(
            settings.ae_title,
            settings.port,
            self.store,
            bind_address=settings.bind_address,
            allowed_calling_aes=settings.allowed_calling_aes,
            accept_any=settings.accept_any,
            max_pdu=settings.max_pdu,
            ssl_context=ssl_context,
            engine=settings.engine,
            stream_callback=self.open_stream if self._ingester is not None else None,
        )
        self.listener.add_observer(self._observe)

    # --- the store callback (association threads) ---------------------------------------------
    def store(self, data: bytes, calling_ae: str, peer: str) -> int:
        """Add one received Part 10 file to the archive; return the C-STORE status (the
        indexed mode, and the pynetdicom engine; the fast engine streams, see
        :meth:`open_stream`)."""
        source = f"c-store from {calling_ae}@{peer}"
        if self._ingester is not None:
            return self._spool(data, calling_ae, peer, source)
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
            self._audit_stored(result)
        else:
            audit.warning("not stored (cannot understand): %s: %s", source, result.reason)
        self._count(calling_ae, peer, result)
        return status

    def open_stream(self, calling_ae: str, peer: str) -> _SpoolSink:
        """The listener's stream callback (spooled modes, fast engine): the instance is written
        to its spool file fragment by fragment as it arrives (see :class:`_SpoolSink`)."""
        return _SpoolSink(self, calling_ae, peer)

    def _spool(self, data: bytes, calling_ae: str, peer: str, source: str) -> int:
        assert self._ingester is not None
        try:
            path = self.archive.spool_bytes(data, sync=self.settings.ack == "synced",
                                            part=self._ingester.take_part())  # fmt: skip
        except OSError as exc:  # ArchiveWriteError: disk full, permissions
            return self._not_spooled(calling_ae, peer, source, exc)
        return self._spooled(path, data, calling_ae, peer, source)

    def _spooled(
        self, path: str, kept: bytes | None, calling_ae: str, peer: str, source: str
    ) -> int:
        """Hand an acknowledged spool file to the ingester; the status to answer."""
        assert self._ingester is not None
        with self._lock:
            self._pending.setdefault((calling_ae, peer), _Pending()).spooled += 1
        self._ingester.submit(path, kept, source, (calling_ae, peer))
        return SUCCESS

    def _not_spooled(self, calling_ae: str, peer: str, source: str, exc: OSError) -> int:
        """An instance the spool could not take (disk full, permissions); the status."""
        audit.error("not stored (out of resources): %s: %s", source, exc)
        self._count(calling_ae, peer, None)
        return OUT_OF_RESOURCES

    def _indexed(self, token: Hashable, result: AddResult) -> None:
        """The ingester indexed (or quarantined) one spooled instance (ingester thread)."""
        if result.status is not AddStatus.REJECTED:  # rejections: logged by the archive
            self._audit_stored(result)
        calling_ae, peer = token  # type: ignore[misc]
        self._count(calling_ae, peer, result, indexed=True)
        with self._lock:
            pending = self._pending.get((calling_ae, peer))
            if pending is None or pending.report is None or pending.indexed < pending.spooled:
                return
            del self._pending[(calling_ae, peer)]
        self._emit_batch(pending.report, pending)

    @staticmethod
    def _audit_stored(result: AddResult) -> None:
        audit.info(
            "received %s study %s from %s: %s%s",
            result.sop_instance_uid,
            result.study_instance_uid,
            result.source,
            result.status.value,
            f" ({result.reason})" if result.reason else "",
        )

    def _count(
        self, calling_ae: str, peer: str, result: AddResult | None, indexed: bool = False
    ) -> None:
        with self._lock:
            pending = self._pending.setdefault((calling_ae, peer), _Pending())
            pending.indexed += indexed
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
        key = (event.calling_ae, event.peer)
        with self._lock:
            pending = self._pending.get(key, _Pending())
            if pending.indexed < pending.spooled:  # the ingester reports the rest, then emits
                pending.report = event
                return
            self._pending.pop(key, None)
        self._emit_batch(event, pending)

    def _emit_batch(self, event: AssociationReport, pending: _Pending) -> None:
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
        """Stop listening and drain the ingester (everything spooled is indexed, and the last
        batches reported); ``wait=False`` returns at once with the thread doing it (see
        :meth:`StorageListener.stop`)."""
        if not wait:
            thread = threading.Thread(target=self.stop, name="stop-receiver")
            thread.start()
            return thread
        self.listener.stop()
        if self._ingester is not None:
            self._ingester.close()
            with self._lock:  # associations whose last instances could not be indexed
                left = [(k, p) for k, p in self._pending.items() if p.report is not None]
                for key, _ in left:
                    del self._pending[key]
            for _, pending in left:
                assert pending.report is not None
                log.warning("%d instance(s) from %s@%s stay spooled: not indexed",
                            pending.spooled - pending.indexed, pending.report.calling_ae,
                            pending.report.peer)  # fmt: skip
                self._emit_batch(pending.report, pending)
        return None

    def serve_forever(self) -> None:
        """Listen until :meth:`request_stop` (or Ctrl-C); for the command line. Returns once
        the ingester is drained."""
        try:
            self.listener.serve_forever()
        finally:
            self.stop()

    def request_stop(self) -> None:
        self.listener.request_stop()


class _SpoolSink:
    """One instance streamed into its spool file as it arrives (a
    :class:`~workstation.net.fast_scp.StoreSink`): written fragment by fragment while the sender
    is still sending, named in the spool and handed to the ingester when whole, removed if
    the association ends first. A failed write (disk full) is kept, the rest of the instance
    is dropped, and :meth:`finish` answers Out of Resources."""

    def __init__(self, receiver: ArchiveReceiver, calling_ae: str, peer: str) -> None:
        assert receiver._ingester is not None  # noqa: SLF001 - the receiver's own helper
        self._receiver = receiver
        self._calling_ae, self._peer = calling_ae, peer
        self._error: OSError | None = None
        self._writer: SpoolWriter | None = None
        try:
            self._writer = receiver.archive.open_spool(
                sync=receiver.settings.ack == "synced",
                part=receiver._ingester.take_part(),  # noqa: SLF001
            )
        except OSError as exc:
            self._error = exc

    def write(self, data: memoryview) -> None:
        if self._writer is None:
            return
        try:
            self._writer.write(data)
        except OSError as exc:
            self._error = exc
            self.abandon()

    def finish(self) -> int:
        source = f"c-store from {self._calling_ae}@{self._peer}"
        receiver = self._receiver
        if self._writer is not None:
            try:
                path = self._writer.commit()
            except OSError as exc:
                self._error = exc
            else:
                return receiver._spooled(path, None, self._calling_ae, self._peer, source)  # noqa: SLF001
        assert self._error is not None
        return receiver._not_spooled(self._calling_ae, self._peer, source, self._error)  # noqa: SLF001

    def abandon(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.discard()
