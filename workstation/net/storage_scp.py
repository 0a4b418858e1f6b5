"""The storage listener: a Storage SCP and Verification SCP on pynetdicom.

It accepts every storage SOP class pynetdicom knows, in every transfer syntax pydicom knows, and
hands each received instance to a ``store_callback`` as a complete DICOM Part 10 file: the data
set bytes exactly as they arrived (never decoded and re-encoded, so compressed data stays as it
was sent), behind a file meta header built from the C-STORE request. What is done with those
bytes (the archive) is the caller's business; ``workstation.app.listener`` joins the two.

Handlers run on pynetdicom's association threads: nothing here touches a GUI. Observers get
frozen :class:`ReceivedInstance` and :class:`AssociationReport` values on those threads and must
hand them over to their own thread themselves (a Qt signal, a queue).
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from pydicom.uid import AllTransferSyntaxes, ExplicitVRLittleEndian
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification
from pynetdicom.transport import ThreadedAssociationServer

from workstation.net.fast_scp import AcceptorHooks, FastAcceptor, StoreSink
from workstation.net.listener_events import (
    SUCCESS,
    AssociationReport,
    ListenerEvent,
    Observer,
    ReceivedInstance,
)
from workstation.net.part10 import part10_header
from workstation.net.tcp import set_nodelay_on_open, use_fast_recv
from workstation.net.tls import server_handshake

__all__ = [
    "CANNOT_UNDERSTAND",
    "OUT_OF_RESOURCES",
    "PROCESSING_FAILURE",
    "SUCCESS",
    "AssociationReport",
    "ListenerEvent",
    "ReceivedInstance",
    "StorageListener",
    "StoreCallback",
]

log = logging.getLogger(__name__)

OUT_OF_RESOURCES = 0xA700  # Storage: Refused, out of resources (disk full, write error)
CANNOT_UNDERSTAND = 0xC000  # Storage: Error, cannot understand (unparseable data set)
PROCESSING_FAILURE = 0x0110  # general DIMSE failure: a bug in the callback, not the data

DEFAULT_MAX_PDU = 1_048_576  # large PDUs: fewer Python-level PDU round trips per image
#: How often an association's DUL thread polls when it has nothing to do. pynetdicom's 1 ms adds
#: ~1 ms per C-STORE (a fresh PDU waits for the next poll); 0.2 ms took a storescu series from
#: ~190 to ~300 images/s here, for ~7% of a core while an association sits idle.
DEFAULT_POLL_INTERVAL = 0.0002

#: The order we accept transfer syntaxes in when a context proposes several (pynetdicom takes
#: the acceptor's first that the requestor proposed): Explicit VR Little Endian first, the
#: syntax most archives store, so that a sender proposing [explicit, big endian, implicit] in one
#: context (DCMTK's dcmqrscp and movescu do) sends its files unchanged instead of converting them
#: to Implicit VR (pydicom's list begins with Implicit).
ACCEPTED_SYNTAXES = [ExplicitVRLittleEndian, *(ts for ts in AllTransferSyntaxes
                                                if ts != ExplicitVRLittleEndian)]  # fmt: skip

#: Verification and every storage SOP class pynetdicom knows: the abstract syntaxes accepted.
ACCEPTED_SOP_CLASSES = (
    Verification,
    *(cx.abstract_syntax for cx in AllStoragePresentationContexts),
)

#: ``store_callback(data, calling_ae, peer) -> DIMSE status``. ``data`` is a complete Part 10
#: file; ``peer`` is ``"host:port"``. Raising ``OSError`` (``ArchiveWriteError`` is one) answers
#: Out of Resources.
StoreCallback = Callable[[bytes, str, str], int]

#: ``stream_callback(calling_ae, peer) -> StoreSink or None``: a sink takes the instance piece
#: by piece as it arrives (the fast engine; the store callback is then not called for it),
#: None hands it to the store callback whole. A sink's ``OSError`` answers Out of Resources and
#: anything else it raises Processing Failure, as for the store callback.
StreamCallback = Callable[[str, str], StoreSink | None]

#: The acceptors behind the listener: ``"fast"`` (:mod:`workstation.net.fast_scp`, one thread per
#: association reading PDUs straight off the socket) or ``"pynetdicom"`` (its AE and DUL threads).
ENGINES = ("fast", "pynetdicom")
DEFAULT_ENGINE = "fast"


@dataclass
class _AssocStats:
    association_id: int
    calling_ae: str
    peer: str
    started: float
    outcome: str = "closed"
    received: int = 0
    failed: int = 0
    size: int = 0
    store_seconds: float = 0.0


def _validate_ae(title: str, what: str) -> str:
    value = title.strip()
    if not value or len(value) > 16 or "\\" in value or not value.isprintable():
        raise ValueError(f"{what} {title!r} is not a valid AE title (1-16 printable characters)")
    return value


def _peer(assoc: Any) -> str:
    return f"{assoc.requestor.address}:{assoc.requestor.port}"


class StorageListener:
    """Storage SCP + Verification SCP, started and stopped without blocking the caller.

    Parameters
    ----------
    ae_title : str
        Our AE title (the called AE title peers must use).
    port : int
        TCP port; ``0`` picks a free one (see :attr:`address`).
    store_callback : StoreCallback
        Called on an association thread for each instance; returns the DIMSE status to answer.
    bind_address : str
        Interface to listen on; ``""`` means all.
    allowed_calling_aes : iterable of str
        Calling AE titles accepted. Others are rejected ("calling AE title not recognised").
    accept_any : bool
        Accept any calling AE title; must be asked for explicitly.
    max_pdu : int
        Largest PDU we accept (0: unlimited).
    acse_timeout, dimse_timeout, network_timeout : float
        Seconds to wait for association messages, DIMSE messages, and network silence.
    maximum_associations : int
        Simultaneous associations accepted.
    poll_interval : float
        Seconds an idle association's DUL thread sleeps between polls (pynetdicom: 0.001).
    engine : str
        ``"fast"`` or ``"pynetdicom"`` (see :data:`ENGINES`); both answer the same way.
    stream_callback : StreamCallback, optional
        With the fast engine, asked for a :class:`~workstation.net.fast_scp.StoreSink` as each
        C-STORE request arrives: the instance is written to it fragment by fragment while the
        rest is still on its way, and never held whole in memory (the pynetdicom engine always
        uses the store callback).
    ssl_context : ssl.SSLContext, optional
        Accept only TLS connections, with this context (``workstation.net.tls.listener_context``,
        whose handshake runs on the association's thread, bounded by ``acse_timeout``). With the
        pynetdicom engine a caller whose handshake fails (no TLS, no or an unverified
        certificate) is reported as a rejected association with the reason.

    Raises
    ------
    ValueError
        For an invalid AE title, or when no calling AE is allowed and ``accept_any`` is false.
    """

    def __init__(
        self,
        ae_title: str,
        port: int,
        store_callback: StoreCallback,
        *,
        bind_address: str = "",
        allowed_calling_aes: Iterable[str] = (),
        accept_any: bool = False,
        max_pdu: int = DEFAULT_MAX_PDU,
        acse_timeout: float = 30.0,
        dimse_timeout: float = 60.0,
        network_timeout: float = 60.0,
        maximum_associations: int = 10,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        engine: str = DEFAULT_ENGINE,
        ssl_context: ssl.SSLContext | None = None,
        stream_callback: StreamCallback | None = None,
    ) -> None:
        if engine not in ENGINES:
            raise ValueError(f"storage listener: engine {engine!r} is not one of {ENGINES}")
        self.engine = engine
        self._stream = stream_callback
        self.ae_title = _validate_ae(ae_title, "our AE title")
        self.allowed_calling_aes = tuple(
            _validate_ae(t, "allowed calling AE title") for t in allowed_calling_aes
        )
        if not accept_any and not self.allowed_calling_aes:
            raise ValueError(
                "storage listener: no calling AE title is allowed; list the peers' AE titles "
                "or ask explicitly to accept any"
            )
        if not 0 <= port <= 65535:
            raise ValueError(f"storage listener: port {port} is out of range 0-65535")
        self.accept_any = accept_any
        self.poll_interval = poll_interval
        self.port = port
        self.bind_address = bind_address
        self.ssl_context = ssl_context
        self._store = store_callback
        self._observers: list[Observer] = []
        self._stats: dict[int, _AssocStats] = {}
        self._lock = threading.Lock()
        self._stop_requested = threading.Event()
        self._server: ThreadedAssociationServer | FastAcceptor | None = None

        ae = AE(ae_title=self.ae_title)
        ae.maximum_pdu_size = max_pdu
        ae.acse_timeout = acse_timeout
        ae.dimse_timeout = dimse_timeout
        ae.network_timeout = network_timeout
        ae.maximum_associations = maximum_associations
        if not accept_any:
            ae.require_calling_aet = list(self.allowed_calling_aes)
        if engine == "pynetdicom":  # ~0.1 s of validation; the fast engine needs only the UIDs
            for uid in ACCEPTED_SOP_CLASSES:
                ae.add_supported_context(uid, ACCEPTED_SYNTAXES)
        self._ae = ae

    # --- observers ------------------------------------------------------------------------------
    def add_observer(self, observer: Observer) -> Callable[[], None]:
        """Call ``observer`` with each :class:`ReceivedInstance` and :class:`AssociationReport`.

        It runs on an association thread and must not block for long or touch a GUI.
        Returns a function that removes it.
        """
        with self._lock:
            self._observers.append(observer)

        def remove() -> None:
            with self._lock:
                if observer in self._observers:
                    self._observers.remove(observer)

        return remove

    def _emit(self, value: ListenerEvent) -> None:
        with self._lock:
            observers = list(self._observers)
        for observer in observers:
            try:
                observer(value)
            except Exception:  # an observer's bug must not fail the C-STORE
                log.exception("storage listener observer %r failed on %r", observer, value)

    # --- running --------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def address(self) -> tuple[str, int]:
        """The ``(host, port)`` actually listened on (the real port when ``port`` was 0)."""
        if self._server is None:
            raise RuntimeError("storage listener is not running")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        """Start listening in background threads and return at once.

        Raises
        ------
        OSError
            When the port cannot be bound (in use, no permission), with the address in the message.
        """
        if self._server is not None:
            return
        try:
            self._server = self._start_fast() if self.engine == "fast" else self._start_pynetdicom()
        except OSError as exc:
            where = f"{self.bind_address or '*'}:{self.port}"
            raise OSError(
                exc.errno,
                f"storage listener {self.ae_title} cannot listen on {where}: {exc.strerror or exc}",
            ) from exc
        self._stop_requested.clear()
        log.info("storage listener %s listening on %s:%d (%s engine%s)", self.ae_title,
                 *self.address, self.engine,
                 ", TLS" if self.ssl_context is not None else "")  # fmt: skip

    def _start_pynetdicom(self) -> ThreadedAssociationServer:
        handlers = [
            (evt.EVT_CONN_OPEN, self._on_conn_open),
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_ACCEPTED, self._on_accepted),
            (evt.EVT_REJECTED, self._on_rejected),
            (evt.EVT_RELEASED, self._on_ended),
            (evt.EVT_ABORTED, self._on_ended),
            (evt.EVT_CONN_CLOSE, self._on_closed),
        ]
        return self._ae.start_server(
            (self.bind_address, self.port),
            block=False,
            evt_handlers=handlers,
            ssl_context=self.ssl_context,
        )

    def _start_fast(self) -> FastAcceptor:
        ae = self._ae
        hooks = AcceptorHooks(
            calling_allowed=lambda calling: self.accept_any or calling in self.allowed_calling_aes,
            accepted=self._accepted,
            rejected=self._rejected,
            store=self._deliver,
            ended=self._ended,
            open_store=self._open_stream if self._stream is not None else None,
        )
        return FastAcceptor(
            self.ae_title,
            (self.bind_address, self.port),
            hooks,
            abstract_syntaxes=ACCEPTED_SOP_CLASSES,
            transfer_syntaxes=ACCEPTED_SYNTAXES,
            max_pdu=ae.maximum_pdu_size,
            acse_timeout=ae.acse_timeout,
            network_timeout=ae.network_timeout,
            maximum_associations=ae.maximum_associations,
            ssl_context=self.ssl_context,
        )

    def stop(self, grace: float = 5.0, wait: bool = True) -> threading.Thread | None:
        """Stop accepting, give running associations ``grace`` seconds to finish, abort the rest.

        Also ends :meth:`serve_forever`. Safe to call twice and from any thread except an
        association's own (a store callback or observer).

        Parameters
        ----------
        grace : float
            Seconds a transfer in progress may take to finish.
        wait : bool
            False: return at once (the GUI thread) and wind down in a background thread, which
            is returned; the port is free once it ends.
        """
        self._stop_requested.set()
        with self._lock:
            server, self._server = self._server, None
        if server is None:
            return None
        if not wait:
            thread = threading.Thread(
                target=self._wind_down, args=(server, grace), name=f"stop-{self.ae_title}"
            )
            thread.start()
            return thread
        self._wind_down(server, grace)
        return None

    def _wind_down(self, server: ThreadedAssociationServer | FastAcceptor, grace: float) -> None:
        if isinstance(server, FastAcceptor):
            server.shutdown(grace)
            log.info("storage listener %s stopped", self.ae_title)
            return
        active = list(server.active_associations)
        server.shutdown()
        deadline = time.monotonic() + grace
        for assoc in active:
            if assoc.is_established:  # let a transfer in progress finish, within the grace
                assoc.join(max(0.0, deadline - time.monotonic()))
            if assoc.is_alive():  # still negotiating (or a bare TCP probe), or out of grace
                log.info("storage listener %s: aborting association from %s",
                         self.ae_title, _peer(assoc))  # fmt: skip
                assoc.abort()
        log.info("storage listener %s stopped", self.ae_title)

    def request_stop(self) -> None:
        """Ask :meth:`serve_forever` to stop and return (safe in signal handlers)."""
        self._stop_requested.set()

    def serve_forever(self, poll: float = 0.2) -> None:
        """Start, block until :meth:`request_stop` or :meth:`stop`, then stop.

        The wait wakes every ``poll`` seconds so that signal handlers (Ctrl-C, SIGTERM) run
        promptly; a ``KeyboardInterrupt`` stops the listener and propagates.
        """
        self.start()
        try:
            while not self._stop_requested.wait(poll):
                pass
        finally:
            self.stop()

    def __enter__(self) -> StorageListener:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- pynetdicom handlers (association threads) ----------------------------------------------
    def _on_conn_open(self, event: Any) -> None:
        set_nodelay_on_open(event)
        if self.ssl_context is not None and not self._tls_handshake(event.assoc):
            return
        use_fast_recv(event)
        dul = event.assoc.dul
        if hasattr(dul, "_run_loop_delay"):  # pynetdicom's poll knob (a private attribute)
            dul._run_loop_delay = self.poll_interval

    def _tls_handshake(self, assoc: Any) -> bool:
        """The TLS handshake of an accepted connection, on its own thread before the association
        starts; on failure report it, close the connection and let the association end at once
        (instead of waiting out the ACSE timeout for a request that cannot come)."""
        assoc_socket = assoc.dul.socket
        why = server_handshake(assoc_socket.socket, self._ae.acse_timeout)
        if why is None:
            return True
        log.warning("storage listener %s: TLS connection from %s refused: %s",
                    self.ae_title, _peer(assoc), why)  # fmt: skip
        self._emit(AssociationReport(id(assoc), "", _peer(assoc), "rejected", reason=why))
        assoc_socket.close()
        assoc.acse_timeout = 0
        return False

    def _on_accepted(self, event: Any) -> None:
        assoc = event.assoc
        self._accepted(id(assoc), assoc.requestor.ae_title, _peer(assoc))

    def _accepted(self, association_id: int, calling_ae: str, peer: str) -> None:
        stats = _AssocStats(association_id, calling_ae, peer, time.monotonic())
        with self._lock:
            self._stats[association_id] = stats

    def _rejected(self, association_id: int, calling_ae: str, peer: str, reason: str) -> None:
        self._emit(AssociationReport(association_id, calling_ae, peer, "rejected", reason=reason))

    def _ended(self, association_id: int, outcome: str) -> None:
        with self._lock:
            stats = self._stats.get(association_id)
            if stats is not None:
                stats.outcome = outcome
        self._finish(association_id)

    def _on_rejected(self, event: Any) -> None:
        assoc = event.assoc
        calling = assoc.requestor.ae_title
        if not self.accept_any and calling not in self.allowed_calling_aes:
            reason = f"calling AE title {calling!r} not recognised"
        else:
            reason = "too many associations"
        log.info(
            "storage listener rejected association from %s@%s: %s", calling, _peer(assoc), reason
        )
        self._emit(AssociationReport(id(assoc), calling, _peer(assoc), "rejected", reason=reason))

    def _on_ended(self, event: Any) -> None:
        outcome = "released" if event.event is evt.EVT_RELEASED else "aborted"
        with self._lock:
            stats = self._stats.get(id(event.assoc))
            if stats is not None:
                stats.outcome = outcome
        self._finish(id(event.assoc))

    def _on_closed(self, event: Any) -> None:
        self._finish(id(event.assoc))

    def _finish(self, association_id: int) -> None:
        with self._lock:
            stats = self._stats.pop(association_id, None)
        if stats is None:
            return
        self._emit(
            AssociationReport(
                stats.association_id,
                stats.calling_ae,
                stats.peer,
                stats.outcome,
                stats.received,
                stats.failed,
                stats.size,
                time.monotonic() - stats.started,
                stats.store_seconds,
            )
        )

    def _on_store(self, event: Any) -> int:
        assoc = event.assoc
        request = event.request
        calling_ae = assoc.requestor.ae_title
        peer = _peer(assoc)
        sop_class = str(request.AffectedSOPClassUID)
        sop_instance = str(request.AffectedSOPInstanceUID)
        transfer_syntax = str(event.context.transfer_syntax)
        # The data set exactly as received: no decode, no re-encode.
        header = part10_header(sop_class, sop_instance, transfer_syntax, calling_ae)
        data = b"".join((header, request.DataSet.getvalue()))
        return self._deliver(
            id(assoc), calling_ae, peer, sop_class, sop_instance, transfer_syntax, data
        )

    def _deliver(
        self,
        association_id: int,
        calling_ae: str,
        peer: str,
        sop_class: str,
        sop_instance: str,
        transfer_syntax: str,
        data: bytes | memoryview,
    ) -> int:
        """Hand a received Part 10 file to the store callback; report it; its DIMSE status.

        ``data`` may be a view of the fast acceptor's buffer: the callback gets bytes of its
        own."""
        data = bytes(data)  # no copy when it is bytes already
        started = time.perf_counter()
        status = self._call_store(data, calling_ae, peer, sop_instance)
        seconds = time.perf_counter() - started
        self._report_instance(ReceivedInstance(association_id, calling_ae, peer, sop_class,
                                               sop_instance, transfer_syntax, len(data), status,
                                               seconds))  # fmt: skip
        return status

    def _open_stream(
        self, association_id: int, calling_ae: str, peer: str, sop_class: str,
        sop_instance: str, transfer_syntax: str,
    ) -> StoreSink | None:  # fmt: skip
        """The fast acceptor's ``open_store``: the stream callback's sink, reported as the
        store callback's instances are."""
        assert self._stream is not None
        sink = self._stream(calling_ae, peer)
        if sink is None:
            return None
        received = ReceivedInstance(association_id, calling_ae, peer, sop_class, sop_instance,
                                    transfer_syntax, 0, 0, 0.0)  # fmt: skip
        return _ReportedSink(self, sink, received)

    def _report_instance(self, received: ReceivedInstance) -> None:
        with self._lock:
            stats = self._stats.get(received.association_id)
            if stats is not None:
                stats.store_seconds += received.seconds
                if received.ok:
                    stats.received += 1
                    stats.size += received.size
                else:
                    stats.failed += 1
        self._emit(received)

    def _call_store(self, data: bytes, calling_ae: str, peer: str, sop_instance: str) -> int:
        return _status_of(lambda: self._store(data, calling_ae, peer), "store callback",
                          calling_ae, peer, sop_instance)  # fmt: skip


def _status_of(
    call: Callable[[], object], what: str, calling_ae: str, peer: str, sop_instance: str
) -> int:
    """The DIMSE status a store callback or sink gives: ``OSError`` (``ArchiveWriteError``,
    ENOSPC, EACCES, ...) is Out of Resources; any other exception, or a value that is not a
    status, is Processing Failure (a bug in the callback, logged)."""
    try:
        status = call()
    except OSError as exc:
        log.error("C-STORE %s from %s@%s not stored: %s", sop_instance, calling_ae, peer, exc)
        return OUT_OF_RESOURCES
    except Exception:
        log.exception("C-STORE %s from %s@%s: %s failed", sop_instance, calling_ae, peer, what)
        return PROCESSING_FAILURE
    if not isinstance(status, int) or not 0 <= status <= 0xFFFF:
        log.error("%s returned %r for %s, not a DIMSE status", what, status, sop_instance)
        return PROCESSING_FAILURE
    return status


class _ReportedSink:
    """A stream callback's sink, counted and reported by its listener like a stored instance
    (``seconds``: the time spent in the sink). What the sink raises is answered as for the store
    callback (:func:`_status_of`): after a failed write it gets nothing more and is abandoned."""

    def __init__(self, listener: StorageListener, sink: StoreSink, received: ReceivedInstance):
        self._listener = listener
        self._sink = sink
        self._received = received
        self._size = 0
        self._seconds = 0.0
        self._failed = 0  # the status of a write that raised

    def write(self, data: memoryview) -> None:
        if self._failed:
            return
        started = time.perf_counter()
        self._size += len(data)
        self._failed = self._call(lambda: self._sink.write(data) or SUCCESS)
        if self._failed:
            self.abandon()
        self._seconds += time.perf_counter() - started

    def finish(self) -> int:
        started = time.perf_counter()
        status = self._failed or self._call(self._sink.finish)
        seconds = self._seconds + time.perf_counter() - started
        self._listener._report_instance(  # noqa: SLF001 - its own helper
            replace(self._received, size=self._size, status=status, seconds=seconds)
        )
        return status

    def abandon(self) -> None:
        self._call(lambda: self._sink.abandon() or SUCCESS)

    def _call(self, call: Callable[[], object]) -> int:
        r = self._received
        return _status_of(call, "store sink", r.calling_ae, r.peer, r.sop_instance_uid)
