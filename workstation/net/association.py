"""Opening an association with a node, and saying plainly why it did not open.

pynetdicom returns an unestablished association without saying why; :func:`open_association`
turns each case into its own exception (:mod:`workstation.net.errors`): no TCP connection
(refused, timed out, no route), a TLS handshake that failed (and why), a rejection (and its
reason), a peer that aborted or said nothing within the ACSE timeout, and an accepted association
that lacks every presentation context the operation needs.

Every wait is bounded by the node's timeouts: ``connect_timeout`` for TCP and TLS,
``acse_timeout`` for the answer, ``dimse_timeout`` for each response afterwards,
``network_timeout`` for silence.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.pdu_primitives import A_ASSOCIATE

from workstation.net.errors import (
    AssociationRejected,
    NodeUnreachable,
    NoPresentationContext,
    OperationTimeout,
    PeerAborted,
    TlsError,
)
from workstation.net.nodes import LocalIdentity, RemoteNode
from workstation.net.tcp import set_nodelay_on_open, use_fast_recv
from workstation.net.tls import client_context

log = logging.getLogger(__name__)

#: Transfer syntaxes proposed for query/retrieve and verification contexts.
QUERY_SYNTAXES = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
#: pynetdicom polls its DUL every 1 ms when idle; a PDU arriving then waits for the next poll,
#: once per C-STORE in a C-GET. 0.2 ms (as the listener uses) for ~7% of a core while idle.
POLL_INTERVAL = 0.0002

__all__ = [
    "QUERY_SYNTAXES",
    "Context",
    "association",
    "connect_failure",
    "negotiation_failure",
    "open_association",
    "require_contexts",
    "tls_failure",
]


@dataclass(frozen=True)
class Context:
    """A presentation context to propose: an abstract syntax and its transfer syntaxes."""

    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...] = QUERY_SYNTAXES


def _on_conn_open(event: Any) -> None:
    set_nodelay_on_open(event)
    use_fast_recv(event)
    dul = event.assoc.dul
    if hasattr(dul, "_run_loop_delay"):  # pynetdicom's poll knob (a private attribute)
        dul._run_loop_delay = POLL_INTERVAL
    event.assoc._ws_connected = True


def keep_answers_from_reactor(assoc: Association) -> Association:
    """Keep a requestor's reactor thread from taking the peer's answers off the DIMSE queue.

    pynetdicom's ``send_c_*`` methods pause the association's reactor thread with a check
    that can pass while the reactor is between its pause point and its non-blocking read of
    the queue (pynetdicom issue #875). A peer that answers within that window has its response
    read by the reactor, logged as an unexpected message and dropped, and the sender waits out
    the whole DIMSE timeout. Our associations are requestors only: every message they receive
    is an answer read by a ``send_c_*`` call (C-GET's C-STORE sub-operations included, which
    ``send_c_get`` reads itself), so the reactor's non-blocking reads are made to find nothing.
    Release and abort handling by the reactor is unaffected.
    """
    get_msg = assoc.dimse.get_msg

    def answers_only(block: bool = False):  # noqa: ANN202 - pynetdicom's _QueueItem
        return get_msg(block) if block else (None, None)

    assoc.dimse.get_msg = answers_only  # type: ignore[method-assign]
    return assoc


def open_association(
    identity: LocalIdentity,
    node: RemoteNode,
    contexts: Sequence[Context],
    *,
    required: Sequence[str] = (),
    service: str = "",
    roles: Sequence[Any] = (),
    handlers: Sequence[tuple[Any, Any]] = (),
) -> Association:
    """Request an association with ``node`` and return it established.

    Parameters
    ----------
    identity : LocalIdentity
        Our AE title (the calling AE title).
    node : RemoteNode
        Who to talk to, with its timeouts and TLS settings.
    contexts : sequence of Context
        Presentation contexts to propose (at most 128).
    required : sequence of str
        Abstract syntaxes of which at least one must be accepted; otherwise the association is
        released and :class:`NoPresentationContext` raised. Default: the first context's.
    service : str
        Words for the service, used in that error.
    roles : sequence
        SCP/SCU role selection items (``pynetdicom.build_role``), e.g. for C-GET.
    handlers : sequence of (event, handler)
        More pynetdicom event handlers (e.g. ``EVT_C_STORE`` for C-GET).

    Raises
    ------
    NodeUnreachable, TlsError, AssociationRejected, PeerAborted, OperationTimeout,
    NoPresentationContext
    """
    if len(contexts) > 128:
        raise ValueError(f"{len(contexts)} presentation contexts proposed; at most 128")
    ae = AE(ae_title=identity.ae_title)
    ae.connection_timeout = node.connect_timeout
    ae.acse_timeout = node.acse_timeout
    ae.dimse_timeout = node.dimse_timeout
    ae.network_timeout = node.network_timeout
    ae.maximum_pdu_size = node.max_pdu
    for ctx in contexts:
        ae.add_requested_context(ctx.abstract_syntax, list(ctx.transfer_syntaxes))
    tls_args = None
    if node.tls.enabled:
        context = client_context(node.tls, node.label)
        tls_args = (context, node.host if context.check_hostname else None)
    started = time.monotonic()
    assoc = ae.associate(
        node.host,
        node.port,
        ae_title=node.ae_title,
        ext_neg=list(roles) or None,
        evt_handlers=[(evt.EVT_CONN_OPEN, _on_conn_open), *handlers],
        tls_args=tls_args,
    )
    if not assoc.is_established:
        raise _why_not(assoc, node, time.monotonic() - started)
    keep_answers_from_reactor(assoc)
    accepted = {str(c.abstract_syntax) for c in assoc.accepted_contexts}
    require_contexts(node, accepted, required or [contexts[0].abstract_syntax], service,
                     assoc.release)  # fmt: skip
    return assoc


def require_contexts(
    node: RemoteNode,
    accepted: Collection[str],
    wanted: Sequence[str],
    service: str,
    release: Callable[[], object],
) -> None:
    """Release (``release``) and raise :class:`NoPresentationContext` unless one of the
    ``wanted`` abstract syntaxes was ``accepted``."""
    if not set(accepted).intersection(wanted):
        release()
        raise NoPresentationContext(node.label, service or wanted[0])


@contextmanager
def association(
    identity: LocalIdentity, node: RemoteNode, contexts: Sequence[Context], **options: Any
) -> Iterator[Association]:
    """:func:`open_association` as a context manager: released on exit (bounded by the ACSE
    timeout), aborted when the block raised or the release did not complete."""
    assoc = open_association(identity, node, contexts, **options)
    try:
        yield assoc
    except BaseException:
        if assoc.is_established:
            assoc.abort()
        raise
    finally:
        close(assoc)


def close(assoc: Association) -> None:
    """Release an association (abort it when the release is not answered in time)."""
    if assoc.is_established:
        assoc.release()
    if assoc.is_alive():
        assoc.abort()


def _why_not(assoc: Association, node: RemoteNode, elapsed: float) -> Exception:
    """The exception for an association that was not established."""
    rsp = assoc.acceptor.primitive if assoc.is_rejected else unread_rejection(assoc)
    if rsp is not None:
        rejection = (
            int(getattr(rsp, "result", 1) or 1),
            int(getattr(rsp, "result_source", 1) or 1),
            int(getattr(rsp, "diagnostic", 1) or 1),
        )
        return negotiation_failure(node, "rejected", rejection=rejection)
    if not getattr(assoc, "_ws_connected", False):
        return _diagnose_connect(node, elapsed)
    error = getattr(getattr(assoc.dul, "socket", None), "recv_error", None)
    if elapsed >= node.acse_timeout * 0.95:
        return negotiation_failure(node, "timeout", error)
    return negotiation_failure(node, "closed", error)


def negotiation_failure(
    node: RemoteNode,
    how: str,
    error: BaseException | None = None,
    rejection: tuple[int, int, int] | None = None,
) -> Exception:
    """The exception for an association request that got no acceptance.

    Parameters
    ----------
    how : str
        ``"rejected"`` (with ``rejection``: result, source, diagnostic), ``"timeout"`` (no
        answer within the ACSE timeout), ``"aborted"`` or ``"closed"``.
    error : exception, optional
        What the socket raised, if anything (a TLS alert says why a node ended it).
    """
    label = node.label
    if how == "rejected" and rejection is not None:
        return AssociationRejected(label, *rejection)
    tls_error = _tls_alert(error, node)
    if tls_error is not None:
        return tls_error
    if how == "timeout":
        return OperationTimeout(
            label,
            f"connected, but no answer to the association request within {node.acse_timeout:g} s "
            "(is it a DICOM port? does the node expect TLS?)",
        )
    return PeerAborted(
        label,
        "the peer aborted or closed the connection during association negotiation"
        + ("" if node.tls.enabled else " (a TLS-only port?)"),
    )


#: TLS alerts a node ends the connection with after the handshake (TLS 1.3 checks the client's
#: certificate then), and what to do about them.
_TLS_ALERTS = {
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "the node requires a client certificate: give the "
    "node our certificate and key (--cert, --key)",
    "SSLV3_ALERT_BAD_CERTIFICATE": "the node did not accept our client certificate (is it "
    "signed by a CA the node trusts?)",
    "TLSV1_ALERT_UNKNOWN_CA": "the node does not trust the CA that signed our client certificate",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "the node says our client certificate has expired",
}


def _tls_alert(error: BaseException | None, node: RemoteNode) -> TlsError | None:
    """A TlsError for a TLS alert that ended the association (kept by ``tcp._recv_exact``)."""
    if not node.tls.enabled or not isinstance(error, ssl.SSLError):
        return None
    reason = error.reason or str(error)
    advice = _TLS_ALERTS.get(reason, "the node ended the TLS connection")
    return TlsError(node.label, f"{advice} (TLS alert {reason})")


def unread_rejection(assoc: Association) -> A_ASSOCIATE | None:
    """The A-ASSOCIATE-RJ that pynetdicom received but did not hand over, if there is one.

    A race in pynetdicom 3.0 (``ACSE._negotiate_as_requestor``): the requesting thread sends the
    A-ASSOCIATE-RQ, waits for the transport to be ready and then reads
    ``AssociationSocket._is_connected`` to decide whether the TCP connection was made. The DUL
    thread meanwhile may already have received the peer's A-ASSOCIATE-RJ and run action AE-4,
    which queues the rejection for the user *and closes the socket* (``_is_connected`` becomes
    False). When the requesting thread is descheduled for that long (a loaded machine, or a
    peer that answers within microseconds on loopback), it takes the closed socket for a failed
    connection, aborts, and never reads the rejection: ``is_rejected`` stays False and the
    rejection is left in ``dul.to_user_queue``. Measured with a busy loop on each core: 34 of 200
    echoes and 34 of 200 C-FINDs to an unknown called AE of dcmqrscp, 15 of 200 calls (echo and
    C-FIND) to Orthanc came back "aborted"; none of 600 after this fix.

    AE-4 queues the primitive before it closes the socket, so when the closed socket was seen
    the rejection is already in the queue: reading it (without taking it) is deterministic.

    Parameters
    ----------
    assoc : pynetdicom.association.Association
        An association that was not established.

    Returns
    -------
    A_ASSOCIATE or None
        The rejection primitive (result 1 or 2), or None when the peer did not reject.
    """
    pending = getattr(getattr(assoc, "dul", None), "to_user_queue", None)
    if pending is None:
        return None
    with pending.mutex:
        primitives = list(pending.queue)
    for primitive in primitives:
        if isinstance(primitive, A_ASSOCIATE) and primitive.result in (0x01, 0x02):
            return primitive
    return None


def _diagnose_connect(node: RemoteNode, elapsed: float) -> Exception:
    """Why the TCP (or TLS) connection failed: pynetdicom only logs it, so ask the socket.

    A timeout is known from the elapsed time (no second wait); otherwise a second connection
    gives the operating system's answer at once (refused, no route) or the TLS error.
    """
    label = node.label
    timeout = node.connect_timeout
    if elapsed >= timeout * 0.95:
        return connect_failure(node, TimeoutError(), elapsed)
    try:
        sock = socket.create_connection((node.host, node.port), timeout=timeout)
    except OSError as exc:
        return connect_failure(node, exc, elapsed)
    with sock:
        if not node.tls.enabled:
            return PeerAborted(label, "the connection was closed as soon as it was opened")
        context = client_context(node.tls, label)
        sock.settimeout(timeout)
        try:
            with context.wrap_socket(
                sock, server_hostname=node.host if context.check_hostname else None
            ):
                pass
        except (ssl.SSLError, OSError) as exc:
            return tls_failure(node, exc)
    return TlsError(label, "the TLS connection failed (the handshake succeeded on a retry)")


def connect_failure(node: RemoteNode, exc: OSError, elapsed: float) -> NodeUnreachable:
    """The exception for a TCP connection to ``node`` that failed with ``exc``."""
    label = node.label
    timeout = node.connect_timeout
    if isinstance(exc, TimeoutError) or elapsed >= timeout * 0.95:
        return NodeUnreachable(
            label,
            f"no answer from {node.host}:{node.port} within {timeout:g} s (connect timeout): "
            "is the node on, and is the address right?",
            "timeout",
        )
    if isinstance(exc, socket.gaierror):
        return NodeUnreachable(label, f"unknown host {node.host!r}: {exc.strerror}", "unknown-host")
    if isinstance(exc, ConnectionRefusedError):
        return NodeUnreachable(
            label,
            f"connection refused by {node.host}:{node.port}: nothing is listening on that port "
            "(is the node's DICOM service running? is the port right?)",
            "refused",
        )
    return NodeUnreachable(label, f"cannot connect: {exc.strerror or exc}", "unreachable")


def tls_failure(node: RemoteNode, exc: BaseException) -> TlsError:
    """The exception for a TLS handshake with ``node`` that failed with ``exc``."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return TlsError(
            node.label,
            f"the node's TLS certificate was not accepted: {exc.verify_message or exc}; "
            "check the node's CA file (and its host name)",
        )
    return TlsError(node.label, f"TLS handshake failed: {exc} (does the node speak TLS here?)")
