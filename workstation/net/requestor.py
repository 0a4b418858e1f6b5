"""A lean association requestor for C-FIND, C-MOVE and C-GET: the calling thread reads the
node's answers itself.

pynetdicom's requestor runs a DUL thread that polls the socket and passes every PDU through its
state machine, event queues and a pydicom decoding of each command set: a C-MOVE of a 400-image
study, which brings 400 pending responses, cost ~0.65 ms of CPU per image on that thread and
~0.1-0.3 ms more on the caller's (``/work/notes/s10/thread_cpu.py``), on the two cores where
the node and our listener also run. This requestor does the requestor's part of the PS3.8
state machine directly on a blocking socket, with the PDUs of :mod:`workstation.net.ul_pdu`:

* TCP connection within ``connect_timeout`` (TCP_NODELAY), TLS when the node asks for it;
* A-ASSOCIATE-RQ, answered within ``acse_timeout`` by -AC (the accepted contexts and the
  node's maximum PDU length), -RJ (:class:`~workstation.net.errors.AssociationRejected`) or
  A-ABORT; every failure raises the same exception as :func:`association.open_association
  <workstation.net.association.open_association>` would;
* messages (a command set and an optional data set) sent fragmented to the node's maximum
  length, and read back as :class:`Message`; silence beyond the wait given raises
  :class:`Silence`, an A-ABORT or a closed connection :class:`Ended`;
* :meth:`LeanAssociation.responses`: the answers to one request as status fields and decoded
  identifiers, C-STORE sub-operations on the same association (C-GET) handed to a callback;
* A-RELEASE-RQ answered by -RP within ``acse_timeout``, else A-ABORT.

Another thread may call :meth:`LeanAssociation.send` (a C-CANCEL, under a lock) and
:meth:`LeanAssociation.abort`. On a TLS socket, where OpenSSL forbids a write beside a read
in another thread, a send from another thread is queued and goes out from the reading thread
within :data:`_TLS_WAKE` seconds.
"""

from __future__ import annotations

import logging
import select
import socket
import ssl
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset
from pydicom.uid import ImplicitVRLittleEndian

from workstation.net import ul_pdu
from workstation.net.association import (
    Context,
    connect_failure,
    negotiation_failure,
    require_contexts,
    tls_failure,
)
from workstation.net.cancel import CANCEL_RESEND_S, CANCEL_TRIES
from workstation.net.errors import PeerAborted
from workstation.net.nodes import LocalIdentity, RemoteNode
from workstation.net.tcp import recv_exact_into, set_nodelay
from workstation.net.tls import client_context

__all__ = [
    "Ended",
    "LeanAssociation",
    "Message",
    "Silence",
    "identifier_bytes",
    "lean_association",
]

log = logging.getLogger(__name__)

_PDU_HEADER = struct.Struct(">BBI")
_MAX_NEGOTIATION_PDU = 1 << 20
#: How often a reading thread on a TLS socket looks for a send queued by another thread.
_TLS_WAKE = 0.1


_PENDING = (0xFF00, 0xFF01)
_COUNTS = {
    0x1020: "NumberOfRemainingSuboperations",
    0x1021: "NumberOfCompletedSuboperations",
    0x1022: "NumberOfFailedSuboperations",
    0x1023: "NumberOfWarningSuboperations",
}


class Ended(Exception):
    """The node aborted the association or closed the connection."""

    def __init__(self, how: str) -> None:
        super().__init__(how)
        self.how = how


class Silence(Exception):
    """Nothing arrived within the wait given."""


@dataclass(frozen=True)
class Message:
    """One DIMSE message received: its context, command set fields and data set (bytes, or a
    view of the one PDU that carried it whole; valid until the next :meth:`receive`)."""

    context_id: int
    command: ul_pdu.CommandFields
    data_set: bytes | memoryview | None


class LeanAssociation:
    """An established association, requestor side (see the module docstring).

    Attributes
    ----------
    contexts : dict
        Context ID -> (abstract syntax, transfer syntax) of each accepted context.
    accepted : dict
        Abstract syntax -> (context ID, transfer syntax) of its first accepted context.
    peer_max_pdu : int
        The node's maximum PDU length (0: no limit).
    """

    def __init__(self, node: RemoteNode, sock: socket.socket, ac: ul_pdu.AssociateAC) -> None:
        self.node = node
        self.socket = sock
        self.peer_max_pdu = ac.max_pdu
        self.contexts = {
            cx.context_id: (cx.abstract_syntax, cx.transfer_syntax)
            for cx in ac.contexts
            if cx.result == ul_pdu.ACCEPTANCE and cx.abstract_syntax
        }
        self.accepted: dict[str, tuple[int, str]] = {}
        for context_id, (abstract, syntax) in self.contexts.items():
            self.accepted.setdefault(abstract, (context_id, syntax))
        self._tls = isinstance(sock, ssl.SSLSocket)
        self._reader: threading.Thread | None = None
        self._send_lock = threading.Lock()
        self._queued: list[bytes] = []
        self._pdvs: deque[tuple[int, int, memoryview]] = deque()
        self._closed = False
        #: message ID -> (context ID, when C-CANCEL went out, the abort timer); see cancel()
        self._cancels: dict[int, tuple[int, list[float], threading.Timer]] = {}
        #: why :meth:`responses` stopped: "silence" (dimse_timeout, aborted here), "aborted",
        #: "closed", "released" or "malformed"; empty while it runs
        self.ended_by = ""

    @property
    def established(self) -> bool:
        """Not yet released, aborted or closed."""
        return not self._closed

    # --- sending -----------------------------------------------------------------------------
    def send(self, context_id: int, command: bytes, data_set: bytes | None = None) -> None:
        """Send a message: ``command`` (an encoded command set), then ``data_set`` if given.

        From another thread than the reading one on a TLS socket, the message is queued and
        sent by the reading thread (see the module docstring).
        """
        pdus = ul_pdu.encode_pdata(context_id, command, True, self.peer_max_pdu)
        if data_set is not None:
            pdus += ul_pdu.encode_pdata(context_id, data_set, False, self.peer_max_pdu)
        payload = b"".join(pdus)
        if (
            self._tls
            and self._reader is not None
            and threading.current_thread() is not self._reader
        ):
            with self._send_lock:
                self._queued.append(payload)
            return
        self._sendall(payload)

    def _sendall(self, payload: bytes) -> None:
        try:
            with self._send_lock:
                self.socket.sendall(payload)
        except OSError as exc:  # the node closed or reset the connection
            self._end()
            raise PeerAborted(
                self.node.label, f"the connection broke while sending: {exc}"
            ) from exc

    def _flush_queued(self) -> None:
        with self._send_lock:
            queued, self._queued = self._queued, []
        for payload in queued:
            self._sendall(payload)

    # --- receiving ---------------------------------------------------------------------------
    def _recv_exact(self, size: int) -> bytearray:
        buffer = bytearray(size)
        if recv_exact_into(self.socket, memoryview(buffer)) < size:
            raise Ended("closed")
        return buffer

    def _wait_readable(self, timeout: float) -> bool:
        """Whether a PDU starts arriving within ``timeout`` seconds (sending what another
        thread queued meanwhile, on TLS)."""
        deadline = time.monotonic() + timeout
        while True:
            if self._tls:
                try:
                    self._flush_queued()
                except PeerAborted as exc:
                    raise Ended("closed") from exc
                if self.socket.pending():  # type: ignore[attr-defined]
                    return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            wait = min(left, _TLS_WAKE) if self._tls else left
            try:
                ready, _, _ = select.select([self.socket], [], [], wait)
            except (OSError, ValueError) as exc:  # closed by abort() from another thread
                raise Ended("closed") from exc
            if ready:
                return True
            if self._closed:
                raise Ended("closed")

    def _read_pdu(self, timeout: float) -> tuple[int, bytearray]:
        self._reader = threading.current_thread()
        if not self._wait_readable(timeout):
            raise Silence
        self.socket.settimeout(self.node.network_timeout)
        try:
            pdu_type, _, length = _PDU_HEADER.unpack(self._recv_exact(6))
            return pdu_type, self._recv_exact(length)
        except TimeoutError as exc:  # started, then stalled mid-PDU for the network timeout
            raise Silence from exc
        except (OSError, ValueError) as exc:
            if isinstance(exc, ssl.SSLError) or not self._closed:
                log.debug("%s: connection error: %s", self.node.label, exc)
            raise Ended("closed") from exc

    def receive(self, timeout: float) -> Message:
        """The next message, within ``timeout`` seconds of silence.

        Raises
        ------
        Silence
            Nothing arrived in time (the association is still up: abort it or wait again).
        Ended
            The node aborted (``how`` ``"aborted"``) or closed the connection, or asked to
            release (``"released"``, answered).
        ul_pdu.PDUError
            A malformed PDU (the association is aborted).
        """
        command = bytearray()
        data = bytearray()
        fields: ul_pdu.CommandFields | None = None
        context = 0
        while True:
            if not self._pdvs:
                self._pdvs = self._next_pdvs(timeout)
            while self._pdvs:
                context_id, control, value = self._pdvs.popleft()
                context = context_id
                if control & 1:
                    command += value
                    if control & 2:
                        fields = ul_pdu.command_fields(command)
                        if fields.us(0x0800) == ul_pdu.NO_DATA_SET:
                            return Message(context, fields, None)
                else:
                    if fields is None:
                        self.abort(ul_pdu.ABORT_UNEXPECTED_PDU)
                        raise ul_pdu.PDUError("a data set fragment before its command")
                    if control & 2 and not data:  # whole in one fragment: no copy
                        return Message(context, fields, value)
                    data += value
                    if control & 2:
                        return Message(context, fields, bytes(data))

    def responses(
        self,
        message_id: int,
        answer: int,
        syntax: str,
        on_store: Callable[[Message], None] | None = None,
    ) -> Iterator[tuple[dict[str, Any], Dataset | None]]:
        """The responses (command field ``answer``) to our request ``message_id``, each as
        (status fields by keyword, identifier decoded from ``syntax``), until the caller stops.

        An empty status means the association broke off: the node aborted or closed it, a
        malformed PDU came, or ``dimse_timeout`` passed in silence (aborted here). C-STORE
        requests on the association (a C-GET's sub-operations) go to ``on_store``, which
        answers them; any other message is logged and skipped.
        """
        self.ended_by = ""
        try:
            yield from self._responses(message_id, answer, syntax, on_store)
        finally:
            cancelled = self._cancels.pop(message_id, None)
            if cancelled is not None:
                cancelled[2].cancel()

    def _responses(
        self,
        message_id: int,
        answer: int,
        syntax: str,
        on_store: Callable[[Message], None] | None,
    ) -> Iterator[tuple[dict[str, Any], Dataset | None]]:
        node = self.node
        while True:
            try:
                message = self.receive(node.dimse_timeout)
            except Silence:
                self.ended_by = "silence"
                self.abort()
                yield {}, None
                return
            except Ended as ended:
                log.info("%s: association %s during an operation", node.label, ended.how)
                self.ended_by = ended.how
                yield {}, None
                return
            except ul_pdu.PDUError as exc:
                log.warning("%s: malformed PDU: %s", node.label, exc)
                self.ended_by = "malformed"
                self.abort()
                yield {}, None
                return
            fields = message.command
            command = fields.us(0x0100)
            if command == ul_pdu.C_STORE_RQ and on_store is not None:
                try:
                    on_store(message)  # answers it
                except PeerAborted:  # the node went away before our answer
                    self.ended_by = "closed"
                    yield {}, None
                    return
                continue
            if command != answer or fields.us(0x0120) != message_id:
                log.warning("%s: ignored a message (command 0x%04X) that answers no request "
                            "of ours", node.label, command or 0)  # fmt: skip
                continue
            status: dict[str, Any] = {"Status": fields.us(0x0900)}
            if status["Status"] in _PENDING:
                self._cancel_again(message_id)
            for element, keyword in _COUNTS.items():
                value = fields.us(element)
                if value is not None:
                    status[keyword] = value
            if 0x0902 in fields:
                status["ErrorComment"] = fields.text_latin1(0x0902)
            identifier = None
            if message.data_set:
                try:
                    identifier = read_dataset(
                        BytesIO(message.data_set), syntax == ImplicitVRLittleEndian, True
                    )
                except Exception:
                    log.warning("%s: unreadable identifier in a response", node.label)
            yield status, identifier

    def cancel(self, context_id: int, message_id: int, abort_after: float) -> None:
        """C-CANCEL the request ``message_id`` (any thread; a no-op once ended).

        While the node goes on answering it, :meth:`responses` sends it again every
        :data:`~workstation.net.cancel.CANCEL_RESEND_S` seconds, :data:`~workstation.net.
        cancel.CANCEL_TRIES` times in all: some nodes drop a C-CANCEL that arrives before they
        have started the operation (pynetdicom's SCP clears them then). A node that has not
        ended it ``abort_after`` seconds later gets the association aborted.
        """
        if not self.established or message_id in self._cancels:
            return
        timer = threading.Timer(abort_after, self.abort)
        timer.daemon = True
        self._cancels[message_id] = (context_id, [time.monotonic()], timer)
        self.send(context_id, ul_pdu.encode_cancel_rq(message_id))
        timer.start()

    def _cancel_again(self, message_id: int) -> None:
        """A pending answer to ``message_id``: send its C-CANCEL again when due."""
        entry = self._cancels.get(message_id)
        if entry is None:
            return
        context_id, sent, _ = entry
        now = time.monotonic()
        if len(sent) < CANCEL_TRIES and now - sent[-1] >= CANCEL_RESEND_S:
            sent.append(now)
            self.send(context_id, ul_pdu.encode_cancel_rq(message_id))

    def _next_pdvs(self, timeout: float) -> deque[tuple[int, int, memoryview]]:
        """The PDVs of the next P-DATA-TF (a PDU may end one message and start the next: what
        a message does not use waits in ``_pdvs`` for the next :meth:`receive`)."""
        pdu_type, body = self._read_pdu(timeout)
        if pdu_type == ul_pdu.A_ABORT:
            self._end()
            raise Ended("aborted")
        if pdu_type == ul_pdu.A_RELEASE_RQ:
            try:
                self._sendall(ul_pdu.encode_release_rp())
            except PeerAborted:
                pass
            self._end()
            raise Ended("released")
        if pdu_type != ul_pdu.P_DATA_TF:
            self.abort(ul_pdu.ABORT_UNEXPECTED_PDU)
            raise ul_pdu.PDUError(f"unexpected PDU type 0x{pdu_type:02X} during an operation")
        return deque(ul_pdu.decode_pdata(body))

    # --- ending ------------------------------------------------------------------------------
    def release(self) -> None:
        """A-RELEASE-RQ, waiting (``acse_timeout``) for -RP; abort when it does not come."""
        if not self.established:
            return
        try:
            self._sendall(ul_pdu.encode_release_rq())
            deadline = time.monotonic() + self.node.acse_timeout
            while True:
                pdu_type, _ = self._read_pdu(max(0.0, deadline - time.monotonic()))
                if pdu_type == ul_pdu.A_RELEASE_RP:
                    break
                if pdu_type == ul_pdu.A_RELEASE_RQ:  # release collision (PS3.8 9.2.9): answer
                    self._sendall(ul_pdu.encode_release_rp())
                    break
                if pdu_type == ul_pdu.A_ABORT:
                    break
                # a late response (P-DATA) before the RP: read past it
        except (Silence, Ended, PeerAborted, OSError):
            self.abort()
            return
        self._end()

    def abort(self, reason: int = 0) -> None:
        """Send A-ABORT (service user) and close; safe from any thread."""
        if self._closed:
            return
        if not self._tls or threading.current_thread() is self._reader or self._reader is None:
            try:
                if self._send_lock.acquire(timeout=1.0):
                    try:
                        self.socket.sendall(ul_pdu.encode_abort(0 if not reason else 2, reason))
                    finally:
                        self._send_lock.release()
            except OSError:
                pass
        self._end()

    def close(self) -> None:
        """Close the socket (after :meth:`release` or :meth:`abort`), on the reading thread."""
        self._end()
        self.socket.close()

    def _end(self) -> None:
        self._closed = True
        for _, _, timer in list(self._cancels.values()):
            timer.cancel()
        try:
            self.socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        if self._reader is None or threading.current_thread() is self._reader:
            self.socket.close()


def _connect(node: RemoteNode) -> socket.socket:
    started = time.monotonic()
    try:
        sock = socket.create_connection((node.host, node.port), timeout=node.connect_timeout)
    except OSError as exc:
        raise connect_failure(node, exc, time.monotonic() - started) from exc
    set_nodelay(sock)
    if not node.tls.enabled:
        return sock
    context = client_context(node.tls, node.label)
    try:
        return context.wrap_socket(
            sock, server_hostname=node.host if context.check_hostname else None
        )
    except (ssl.SSLError, OSError) as exc:
        sock.close()
        raise tls_failure(node, exc) from exc


def open_lean(
    identity: LocalIdentity,
    node: RemoteNode,
    contexts: Sequence[Context],
    *,
    required: Sequence[str] = (),
    service: str = "",
    roles: Sequence[tuple[str, int, int]] = (),
) -> LeanAssociation:
    """Request an association with ``node`` and return it established.

    The same contract as :func:`workstation.net.association.open_association`; ``roles`` are
    SCP/SCU role selection items ``(SOP class UID, SCU role, SCP role)`` (C-GET: ``(class, 0,
    1)``, we take the SCP role for its C-STORE sub-operations).

    Raises
    ------
    NodeUnreachable, TlsError, AssociationRejected, PeerAborted, OperationTimeout,
    NoPresentationContext
    """
    if len(contexts) > 128:
        raise ValueError(f"{len(contexts)} presentation contexts proposed; at most 128")
    proposed = [
        ul_pdu.ProposedContext(2 * i + 1, cx.abstract_syntax, tuple(cx.transfer_syntaxes))
        for i, cx in enumerate(contexts)
    ]
    sock = _connect(node)
    try:
        sock.settimeout(node.acse_timeout)
        sock.sendall(
            ul_pdu.encode_associate_rq(
                node.ae_title, identity.ae_title, proposed, node.max_pdu, roles
            )
        )
        header = bytearray()
        while len(header) < 6:
            chunk = sock.recv(6 - len(header))
            if not chunk:
                raise negotiation_failure(node, "closed")
            header += chunk
        pdu_type, _, length = _PDU_HEADER.unpack(header)
        if length > _MAX_NEGOTIATION_PDU:
            raise PeerAborted(node.label, f"an answer of {length} bytes to the association request")
        body = bytearray()
        while len(body) < length:
            chunk = sock.recv(min(65536, length - len(body)))
            if not chunk:
                raise negotiation_failure(node, "closed")
            body += chunk
    except TimeoutError as exc:
        sock.close()
        raise negotiation_failure(node, "timeout") from exc
    except OSError as exc:  # reset, or a TLS alert (the node refused our certificate)
        sock.close()
        raise negotiation_failure(node, "closed", exc) from exc
    except BaseException:
        sock.close()
        raise
    if pdu_type == ul_pdu.A_ASSOCIATE_RJ and length >= 4:
        sock.close()
        raise negotiation_failure(node, "rejected", rejection=(body[1], body[2], body[3]))
    if pdu_type != ul_pdu.A_ASSOCIATE_AC:
        sock.close()
        raise negotiation_failure(node, "aborted" if pdu_type == ul_pdu.A_ABORT else "closed")
    try:
        ac = ul_pdu.decode_associate_ac(bytes(body), proposed)
    except ul_pdu.PDUError as exc:
        sock.close()
        raise PeerAborted(node.label, f"malformed A-ASSOCIATE-AC: {exc}") from exc
    assoc = LeanAssociation(node, sock, ac)
    require_contexts(node, assoc.accepted, required or [contexts[0].abstract_syntax], service,
                     assoc.release)  # fmt: skip
    return assoc


@contextmanager
def lean_association(
    identity: LocalIdentity, node: RemoteNode, contexts: Sequence[Context], **options: object
) -> Iterator[LeanAssociation]:
    """:func:`open_lean` as a context manager: released on exit (bounded by the ACSE
    timeout), aborted when the block raised."""
    assoc = open_lean(identity, node, contexts, **options)  # type: ignore[arg-type]
    try:
        yield assoc
    except BaseException:
        assoc.abort()
        raise
    else:
        assoc.release()
    finally:
        assoc.close()


def identifier_bytes(identifier: Dataset, syntax: str) -> bytes:
    """A request's identifier encoded in the transfer syntax of its context."""
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = syntax == ImplicitVRLittleEndian
    write_dataset(fp, identifier)
    return fp.getvalue()
