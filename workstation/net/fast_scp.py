"""A lean DICOM acceptor for Storage and Verification: one thread per association.

pynetdicom's acceptor runs a DUL thread that polls, passes every PDU through event queues and
decodes it into objects: it tops out at ~300 images/s here even when the data is discarded.
This one does the acceptor's part of the PS3.8 state machine directly on the socket, with the
PDUs and command sets of :mod:`workstation.net.ul_pdu`:

* a listening thread accepts connections (TCP_NODELAY, optional TLS) and starts one thread per
  association, up to ``maximum_associations`` (beyond it: A-ASSOCIATE-RJ, local limit exceeded);
* the A-ASSOCIATE-RQ is validated (protocol version, application context, called AE title,
  calling AE title through :attr:`AcceptorHooks.calling_allowed`) and answered with -AC or -RJ;
* P-DATA-TF PDUs are read with ``recv_into``: a data set's fragments go straight into one
  buffer behind the Part 10 header of its C-STORE request, which :attr:`AcceptorHooks.store`
  is handed as a view (no copy); its status is the C-STORE-RSP's. Where the owner streams
  (:attr:`AcceptorHooks.open_store` gives a :class:`StoreSink`), each fragment goes to the sink
  as it arrives instead, and only one PDU is ever held in memory; C-ECHO answers success;
* A-RELEASE-RQ is answered; an A-ABORT, a closed connection, ``network_timeout`` of silence or a
  malformed PDU ends the association as ``"aborted"`` (we send A-ABORT where the peer may still
  listen), and an instance not received completely is never stored.
"""

from __future__ import annotations

import logging
import selectors
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from workstation.net import ul_pdu
from workstation.net.part10 import part10_header
from workstation.net.tcp import recv_exact_into
from workstation.net.ul_pdu import AcceptedContext, AssociateRQ, PDUError

__all__ = ["AcceptorHooks", "FastAcceptor", "StoreSink"]

log = logging.getLogger(__name__)

_MAX_ASSOCIATE_RQ = 1 << 20  # an A-ASSOCIATE-RQ larger than this is not a DICOM peer's
#: Seconds we wait for the requestor to close the connection after our A-ASSOCIATE-RJ or
#: A-RELEASE-RP (the ARTIM timer of PS3.8 state 13): closing first could reset the connection
#: before the peer has read our answer.
_ARTIM = 2.0
_PDU_HEADER = struct.Struct(">BBI")
_PDV_HEADER = struct.Struct(">IBB")
_UNRECOGNIZED_OPERATION = 0x0211
_PROCESSING_FAILURE = 0x0110


class _Closed(Exception):
    """The peer closed the connection."""


class StoreSink(Protocol):
    """Where one streamed instance goes, piece by piece, on its association's thread.

    The Part 10 header comes first, then each data set fragment as it arrives. A sink keeps its
    own I/O errors (a failed write is answered by :meth:`finish`'s status); what it raises is a
    bug, answered 0x0110 (processing failure).
    """

    def write(self, data: memoryview) -> None:
        """The next bytes of the file (a view of a buffer reused once this returns)."""

    def finish(self) -> int:
        """The instance is whole: keep it; the DIMSE status to answer."""

    def abandon(self) -> None:
        """The association ended before the instance was whole: drop what was written."""


class _Refused:
    """The sink of an instance whose sink failed: takes the rest and answers a failure."""

    def write(self, data: memoryview) -> None:
        pass

    def finish(self) -> int:
        return _PROCESSING_FAILURE

    def abandon(self) -> None:
        pass


_REFUSED = _Refused()


@dataclass(frozen=True)
class AcceptorHooks:
    """What the acceptor asks of and tells its owner (called on association threads).

    Attributes
    ----------
    calling_allowed : callable
        ``(calling_ae) -> bool``: whether to accept an association from this AE title.
    accepted : callable
        ``(association_id, calling_ae, peer)`` once the A-ASSOCIATE-AC is sent.
    rejected : callable
        ``(association_id, calling_ae, peer, reason)`` once the A-ASSOCIATE-RJ is sent.
    store : callable
        ``(association_id, calling_ae, peer, sop_class, sop_instance, transfer_syntax, data)
        -> status``: ``data`` is the complete Part 10 file, a read-only ``memoryview`` of the
        association's buffer valid only until the hook returns (copy what is kept).
    ended : callable
        ``(association_id, outcome)`` when an accepted association ends: ``"released"`` or
        ``"aborted"``.
    open_store : callable, optional
        ``(association_id, calling_ae, peer, sop_class, sop_instance, transfer_syntax)
        -> StoreSink or None``, called as a C-STORE request's command arrives: a sink streams
        the instance (``store`` is not called for it); None: ``store`` gets it whole.
    """

    calling_allowed: Callable[[str], bool]
    accepted: Callable[[int, str, str], None]
    rejected: Callable[[int, str, str, str], None]
    store: Callable[[int, str, str, str, str, str, memoryview], int]
    ended: Callable[[int, str], None]
    open_store: Callable[[int, str, str, str, str, str], StoreSink | None] | None = None


class _Association(threading.Thread):
    """One association, acceptor side, on its own thread."""

    def __init__(self, server: FastAcceptor, sock: socket.socket, peer: str) -> None:
        super().__init__(name=f"dicom-assoc-{peer}", daemon=True)
        self.server = server
        self.socket = sock
        self.peer = peer
        self.calling_ae = ""
        self.established = False
        self.association_id = id(self)  # unique while it runs and until its report is out
        self._send_lock = threading.Lock()
        self._header = bytearray(6)
        self._header_view = memoryview(self._header)
        self._peer_max_pdu = 0
        self._contexts: dict[int, tuple[str, str]] = {}  # accepted id -> (abstract, syntax)
        self._buffer = bytearray(1 << 20)  # a data set, behind its Part 10 header
        self._used = 0
        self._pending_refusal = b""  # the answer to an unsupported request with a data set
        self._wait_all = False  # blocking reads with MSG_WAITALL (see _set_network_timeout)
        self._sink: StoreSink | None = None  # the instance being streamed
        self._timeout: float | None = None

    # --- socket ----------------------------------------------------------------------------------
    def _recv_into(self, view: memoryview) -> int:
        """Receive into all of ``view``; fewer bytes when the peer closed first.

        Raises
        ------
        TimeoutError
            Nothing came for the network timeout.
        """
        try:
            return recv_exact_into(self.socket, view, socket.MSG_WAITALL if self._wait_all else 0)
        except BlockingIOError as exc:  # SO_RCVTIMEO passed in silence
            raise TimeoutError(f"no data for {self._timeout} s") from exc

    def _fill(self, buffer: bytearray, start: int, size: int) -> None:
        """Receive exactly ``size`` bytes into ``buffer[start:]``."""
        if self._recv_into(memoryview(buffer)[start : start + size]) < size:
            raise _Closed

    def _read_pdu_header(self) -> tuple[int, int]:
        if self._recv_into(self._header_view) < 6:
            raise _Closed
        pdu_type, _, length = _PDU_HEADER.unpack(self._header)
        return pdu_type, length

    def _read_body(self, length: int) -> bytearray:
        body = bytearray(length)
        self._fill(body, 0, length)
        return body

    def _send(self, data: bytes) -> None:
        with self._send_lock:
            try:
                self.socket.sendall(data)
            except BlockingIOError as exc:  # SO_SNDTIMEO: the peer stopped reading
                raise TimeoutError(f"could not send for {self._timeout} s") from exc

    def abort(self, reason: int = 0) -> None:
        """Send A-ABORT (service provider) and close: this association's thread then ends."""
        if isinstance(self.socket, ssl.SSLSocket) and threading.current_thread() is not self:
            self._close()  # no TLS write while this association's thread may be reading
            return
        try:
            if self._send_lock.acquire(timeout=1.0):
                try:
                    self.socket.sendall(ul_pdu.encode_abort(2, reason))
                finally:
                    self._send_lock.release()
        except OSError:
            pass  # the peer is gone already
        self._close()

    def _await_close(self) -> None:
        """Wait (at most :data:`_ARTIM` seconds) for the peer to close the connection."""
        try:
            self.socket.settimeout(_ARTIM)
            while self.socket.recv(4096):
                pass
        except OSError:
            pass

    def _close(self) -> None:
        try:
            self.socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.socket.close()

    # --- the association -------------------------------------------------------------------------
    def run(self) -> None:
        outcome = "aborted"
        try:
            if not self._negotiate():
                return
            outcome = self._serve()
        except _Closed:
            if self.established:
                log.warning("association from %s@%s: connection closed by the peer%s",
                            self.calling_ae, self.peer,
                            " mid-instance" if self._used else "")  # fmt: skip
        except PDUError as exc:
            log.warning("association from %s@%s aborted: malformed PDU: %s",
                        self.calling_ae or "?", self.peer, exc)  # fmt: skip
            self.abort(exc.abort_reason)
        except TimeoutError:
            log.warning("association from %s@%s aborted: no data for %s s",
                        self.calling_ae or "?", self.peer, self._timeout)  # fmt: skip
            self.abort()
        except (OSError, ssl.SSLError) as exc:
            log.warning("association from %s@%s: %s", self.calling_ae or "?", self.peer, exc)
        except Exception:  # a bug here must end this association, never the listener
            log.exception("association from %s@%s failed", self.calling_ae or "?", self.peer)
            self.abort()
        finally:
            self._close()
            if self._sink is not None:  # ended before the instance was whole
                self._call_sink(self._sink.abandon)
            self.server._forget(self)  # noqa: SLF001 - the owner's bookkeeping
            if self.established:
                self.server.hooks.ended(self.association_id, outcome)

    def _negotiate(self) -> bool:
        server = self.server
        self._timeout = server.acse_timeout
        self.socket.settimeout(server.acse_timeout)
        if server.ssl_context is not None and not self._tls_handshake():
            return False
        pdu_type, length = self._read_pdu_header()
        if pdu_type != ul_pdu.A_ASSOCIATE_RQ:
            raise PDUError(
                f"PDU type 0x{pdu_type:02X} before A-ASSOCIATE-RQ", ul_pdu.ABORT_UNEXPECTED_PDU
            )
        if length > _MAX_ASSOCIATE_RQ:
            raise PDUError(f"A-ASSOCIATE-RQ of {length} bytes")
        rq = ul_pdu.decode_associate_rq(bytes(self._read_body(length)))
        self.calling_ae = rq.calling_ae
        refusal = server.refusal(rq)
        if refusal is not None:
            (result, source, reason), why = refusal
            self._send(ul_pdu.encode_associate_rj(result, source, reason))
            log.info("rejected association from %s@%s: %s", rq.calling_ae, self.peer, why)
            server.hooks.rejected(self.association_id, rq.calling_ae, self.peer, why)
            self._await_close()
            return False
        results = server.negotiate(rq.contexts)
        self._contexts = {
            cx.context_id: (cx.abstract_syntax, cx.transfer_syntax)
            for cx in results
            if cx.result == ul_pdu.ACCEPTANCE
        }
        self._peer_max_pdu = rq.max_pdu
        self.established = True  # counted before the peer can read the AC and call again
        self._send(ul_pdu.encode_associate_ac(rq, results, server.max_pdu))
        server.hooks.accepted(self.association_id, rq.calling_ae, self.peer)
        self._set_network_timeout(server.network_timeout)
        return True

    def _set_network_timeout(self, timeout: float | None) -> None:
        """Bound each wait for data by ``timeout`` seconds of silence.

        A plain TCP socket becomes blocking, with the timeout in the kernel (``SO_RCVTIMEO``,
        ``SO_SNDTIMEO``), and is read with ``MSG_WAITALL``: one system call and one release of
        the GIL per PDU piece instead of a ``poll`` and a ``recv`` per piece of the kernel's
        buffer, which Python's socket timeout costs. A TLS socket keeps Python's timeout.
        """
        self._timeout = timeout
        if isinstance(self.socket, ssl.SSLSocket):
            self.socket.settimeout(timeout)
            return
        self.socket.settimeout(None)
        if timeout is not None:
            seconds = int(timeout)
            value = struct.pack("@ll", seconds, int((timeout - seconds) * 1e6))
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)
        self._wait_all = True

    def _tls_handshake(self) -> bool:
        """Wrap the socket in TLS and handshake (within the ACSE timeout); False: refused."""
        context = self.server.ssl_context
        assert context is not None
        self.socket = context.wrap_socket(self.socket, server_side=True,
                                          do_handshake_on_connect=False)  # fmt: skip
        try:
            self.socket.do_handshake()  # type: ignore[attr-defined]
        except (ssl.SSLError, TimeoutError, ConnectionError) as exc:
            reason = f"TLS handshake failed: {getattr(exc, 'reason', None) or exc}"
            log.info("refused connection from %s: %s", self.peer, reason)
            self.server.hooks.rejected(self.association_id, "", self.peer, reason)
            return False
        return True

    def _serve(self) -> str:
        command = bytearray()
        request: ul_pdu.CommandSet | None = None
        context_id = 0
        receiving = False  # a data set is expected
        pdv_header = bytearray(6)
        while True:
            pdu_type, length = self._read_pdu_header()
            if pdu_type == ul_pdu.P_DATA_TF:
                remaining = length
                while remaining:
                    if remaining < 6:
                        raise PDUError(f"P-DATA-TF with {remaining} bytes left, no PDV fits")
                    self._fill(pdv_header, 0, 6)
                    pdv_length, pdv_context, control = _PDV_HEADER.unpack(pdv_header)
                    size = pdv_length - 2
                    remaining -= 4 + pdv_length
                    if size < 0 or remaining < 0:
                        raise PDUError(f"PDV of length {pdv_length} does not fit its PDU")
                    if control & 1:  # a command fragment
                        if receiving:
                            raise PDUError("a command fragment in the middle of a data set")
                        start = len(command)
                        command.extend(bytes(size))
                        self._fill(command, start, size)
                        if control & 2:
                            context_id = pdv_context
                            request = ul_pdu.decode_command(command)
                            command = bytearray()
                            receiving = self._on_command(context_id, request)
                    else:
                        if not receiving or pdv_context != context_id:
                            raise PDUError("a data set fragment without its command")
                        self._take_data(size)
                        if control & 2:
                            receiving = False
                            self._on_data_set(context_id, request)  # type: ignore[arg-type]
            elif pdu_type == ul_pdu.A_RELEASE_RQ:
                self._fill(bytearray(length), 0, length)
                self._send(ul_pdu.encode_release_rp())
                if receiving:
                    log.warning("association from %s@%s released mid-instance: not stored",
                                self.calling_ae, self.peer)  # fmt: skip
                self._await_close()
                return "released"
            elif pdu_type == ul_pdu.A_ABORT:
                log.info("association from %s@%s aborted by the peer", self.calling_ae, self.peer)
                return "aborted"
            else:
                raise PDUError(
                    f"unexpected PDU type 0x{pdu_type:02X} on an established association",
                    ul_pdu.ABORT_UNEXPECTED_PDU
                    if pdu_type in (ul_pdu.A_ASSOCIATE_RQ, ul_pdu.A_RELEASE_RP)
                    else ul_pdu.ABORT_UNRECOGNIZED_PDU,
                )

    def _take_data(self, size: int) -> None:
        if self._sink is not None:  # streamed: one fragment at a time through the buffer
            if size > len(self._buffer):
                self._buffer = bytearray(size)
            self._fill(self._buffer, 0, size)
            with memoryview(self._buffer) as view:
                self._to_sink(view[:size])
            return
        need = self._used + size
        if need > len(self._buffer):  # a new buffer: a view a store hook kept pins the old one
            grown = bytearray(max(need, 2 * len(self._buffer)))
            grown[: self._used] = memoryview(self._buffer)[: self._used]
            self._buffer = grown
        self._fill(self._buffer, self._used, size)
        self._used = need

    def _on_command(self, context_id: int, request: ul_pdu.CommandSet) -> bool:
        """Answer or prepare for a request; True when its data set follows."""
        context = self._contexts.get(context_id)
        if context is None:
            raise PDUError(f"a command on presentation context {context_id}, not accepted")
        if request.command_field == ul_pdu.C_STORE_RQ and request.has_data_set:
            if not request.sop_class_uid or not request.sop_instance_uid:
                raise PDUError("C-STORE-RQ without its Affected SOP Class or Instance UID")
            header = part10_header(
                request.sop_class_uid, request.sop_instance_uid, context[1], self.calling_ae
            )
            self._used = 0
            if self._open_sink(request, context[1]):
                self._to_sink(memoryview(header))
                return True
            self._buffer[: len(header)] = header
            self._used = len(header)
            return True
        if request.command_field == ul_pdu.C_ECHO_RQ:
            rsp = ul_pdu.encode_echo_rsp(request.message_id, request.sop_class_uid or context[0])
            self._send_command(context_id, rsp)
            return False
        log.warning("association from %s@%s: command 0x%04X not supported",
                    self.calling_ae, self.peer, request.command_field)  # fmt: skip
        if request.command_field & 0x8000:  # a response we never asked for
            raise PDUError(f"unexpected DIMSE response 0x{request.command_field:04X}")
        self._used = 0
        rsp = ul_pdu.encode_refusal_rsp(request.command_field, request.message_id,
                                        request.sop_class_uid or context[0],
                                        _UNRECOGNIZED_OPERATION)  # fmt: skip
        if request.has_data_set:  # answered once its data set is in (and dropped)
            self._pending_refusal = rsp
            return True
        self._send_command(context_id, rsp)
        return False

    def _open_sink(self, request: ul_pdu.CommandSet, syntax: str) -> bool:
        """Whether the owner streams this instance (then ``_sink`` is its sink)."""
        open_store = self.server.hooks.open_store
        if open_store is None:
            return False
        try:
            self._sink = open_store(self.association_id, self.calling_ae, self.peer,
                                    request.sop_class_uid, request.sop_instance_uid, syntax)  # fmt: skip
        except Exception:
            log.exception("C-STORE %s from %s@%s: open_store hook failed",
                          request.sop_instance_uid, self.calling_ae, self.peer)  # fmt: skip
            self._sink = _REFUSED
        return self._sink is not None

    def _to_sink(self, data: memoryview) -> None:
        assert self._sink is not None
        if not self._call_sink(self._sink.write, data):
            self._call_sink(self._sink.abandon)
            self._sink = _REFUSED  # the rest is read and dropped; a failure is answered

    def _call_sink(self, method: Callable[..., object], *args: object) -> bool:
        """Call a sink method; False (logged) when it raised: a bug in the owner's sink."""
        try:
            method(*args)
        except Exception:
            log.exception("association from %s@%s: store sink failed", self.calling_ae, self.peer)
            return False
        return True

    def _on_data_set(self, context_id: int, request: ul_pdu.CommandSet) -> None:
        if self._sink is None and request.command_field != ul_pdu.C_STORE_RQ:
            self._used = 0
            self._send_command(context_id, self._pending_refusal)
            return
        try:
            status = self._stored(context_id, request)
        except Exception:
            log.exception("C-STORE %s from %s@%s: store hook failed",
                          request.sop_instance_uid, self.calling_ae, self.peer)  # fmt: skip
            status = _PROCESSING_FAILURE
        rsp = ul_pdu.encode_store_rsp(
            request.message_id, request.sop_class_uid, request.sop_instance_uid, status
        )
        self._send_command(context_id, rsp)

    def _stored(self, context_id: int, request: ul_pdu.CommandSet) -> int:
        """The owner's status for a whole instance: its sink's, or the store hook's (handed a
        view of the buffer, released once it returns)."""
        if self._sink is not None:
            sink, self._sink = self._sink, None
            try:
                return sink.finish()
            except Exception:
                self._call_sink(sink.abandon)
                raise
        with memoryview(self._buffer) as buffer, buffer[: self._used].toreadonly() as data:
            self._used = 0
            return self.server.hooks.store(
                self.association_id,
                self.calling_ae,
                self.peer,
                request.sop_class_uid,
                request.sop_instance_uid,
                self._contexts[context_id][1],
                data,
            )

    def _send_command(self, context_id: int, command: bytes) -> None:
        self._send(b"".join(ul_pdu.encode_pdata(context_id, command, True, self._peer_max_pdu)))


class FastAcceptor:
    """Listens for associations and runs each on its own thread.

    Parameters
    ----------
    ae_title : str
        Our AE title: an A-ASSOCIATE-RQ calling another is rejected.
    address : tuple of (str, int)
        Where to listen; port 0 picks a free one (see :attr:`server_address`).
    hooks : AcceptorHooks
        The owner's side.
    abstract_syntaxes : collection of str
        SOP classes accepted (storage classes and Verification).
    transfer_syntaxes : sequence of str
        Accepted transfer syntaxes in order of preference: the first one a context proposes wins.
    max_pdu : int
        The largest PDU we receive, advertised in the A-ASSOCIATE-AC (0: unlimited).
    acse_timeout, network_timeout : float or None
        Seconds to wait for the A-ASSOCIATE-RQ, and for any data once associated.
    maximum_associations : int
        Simultaneous associations; more are rejected (transient, local limit exceeded).
    ssl_context : ssl.SSLContext or None
        Wrap each accepted connection (server side) in TLS.
    """

    def __init__(
        self,
        ae_title: str,
        address: tuple[str, int],
        hooks: AcceptorHooks,
        *,
        abstract_syntaxes: Collection[str],
        transfer_syntaxes: Sequence[str],
        max_pdu: int = 1_048_576,
        acse_timeout: float | None = 30.0,
        network_timeout: float | None = 60.0,
        maximum_associations: int = 10,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.ae_title = ae_title
        self.hooks = hooks
        self.abstract_syntaxes = frozenset(abstract_syntaxes)
        self.transfer_syntaxes = tuple(transfer_syntaxes)
        self.max_pdu = max_pdu
        self.acse_timeout = acse_timeout
        self.network_timeout = network_timeout
        self.maximum_associations = maximum_associations
        self.ssl_context = ssl_context
        self._lock = threading.Lock()
        self._associations: list[_Association] = []
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._socket.bind(address)
            self._socket.listen(64)
        except OSError:
            self._socket.close()
            raise
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(
            target=self._accept_loop, name=f"dicom-listen-{ae_title}", daemon=True
        )
        self._thread.start()

    @property
    def server_address(self) -> tuple[str, int]:
        """The ``(host, port)`` listened on."""
        host, port = self._socket.getsockname()[:2]
        return str(host), int(port)

    @property
    def active_associations(self) -> list[_Association]:
        """The associations running now (negotiating or established)."""
        with self._lock:
            return list(self._associations)

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._socket, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                ready = {key.fileobj for key, _ in selector.select()}
                if self._wake_r in ready:
                    return
                try:
                    sock, address = self._socket.accept()
                except OSError as exc:  # e.g. out of file descriptors: keep listening
                    log.warning("listener %s: accept failed: %s", self.ae_title, exc)
                    time.sleep(0.05)
                    continue
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                association = _Association(self, sock, f"{address[0]}:{address[1]}")
                with self._lock:
                    self._associations.append(association)
                association.start()

    def _forget(self, association: _Association) -> None:
        with self._lock:
            if association in self._associations:
                self._associations.remove(association)

    def refusal(self, rq: AssociateRQ) -> tuple[tuple[int, int, int], str] | None:
        """Why ``rq`` is rejected, as ((result, source, reason), text); None to accept it."""
        if not rq.protocol_version & 1:
            return (1, 2, 2), f"protocol version 0x{rq.protocol_version:04X} not supported"
        if rq.application_context != ul_pdu.APPLICATION_CONTEXT:
            return (1, 1, 2), f"application context {rq.application_context!r} not supported"
        if rq.called_ae != self.ae_title:
            return (1, 1, 7), f"called AE title {rq.called_ae!r} not recognised"
        if not self.hooks.calling_allowed(rq.calling_ae):
            return (1, 1, 3), f"calling AE title {rq.calling_ae!r} not recognised"
        with self._lock:
            busy = sum(1 for a in self._associations if a.established)
        if busy >= self.maximum_associations:
            return (2, 3, 2), "too many associations"
        return None

    def negotiate(self, proposed: Sequence[ul_pdu.ProposedContext]) -> list[AcceptedContext]:
        """Answer each proposed presentation context (PS3.8 9.3.3.2), in context ID order.

        Accepted: a supported abstract syntax with the first of our transfer syntaxes that the
        context proposes. Otherwise abstract syntax (3) or transfer syntaxes (4) not supported,
        with the context's first proposed transfer syntax, as pynetdicom answers.
        """
        results = []
        for cx in sorted(proposed, key=lambda c: c.context_id):
            if cx.abstract_syntax not in self.abstract_syntaxes:
                result, syntax = ul_pdu.ABSTRACT_SYNTAX_NOT_SUPPORTED, cx.transfer_syntaxes[0]
            else:
                chosen = [ts for ts in self.transfer_syntaxes if ts in cx.transfer_syntaxes]
                if chosen:
                    result, syntax = ul_pdu.ACCEPTANCE, chosen[0]
                else:
                    result = ul_pdu.TRANSFER_SYNTAXES_NOT_SUPPORTED
                    syntax = cx.transfer_syntaxes[0]
            results.append(AcceptedContext(cx.context_id, result, syntax, cx.abstract_syntax))
        return results

    def shutdown(self, grace: float = 5.0) -> None:
        """Stop accepting; give established associations ``grace`` seconds, abort the rest."""
        self._wake_w.send(b"x")
        self._thread.join()
        self._socket.close()
        self._wake_r.close()
        self._wake_w.close()
        deadline = time.monotonic() + grace
        for association in self.active_associations:
            if association.established:
                association.join(max(0.0, deadline - time.monotonic()))
            if association.is_alive():
                log.info("listener %s: aborting association from %s",
                         self.ae_title, association.peer)  # fmt: skip
                association.abort()
                association.join(5.0)
