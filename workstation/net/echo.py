"""C-ECHO: is the node there, does it accept us, and if not, why."""

from __future__ import annotations

import time
from dataclasses import dataclass

from pynetdicom.sop_class import Verification

from workstation.net.association import Context, association
from workstation.net.errors import (
    AssociationRejected,
    NetError,
    NodeUnreachable,
    NoPresentationContext,
    OperationTimeout,
    PeerAborted,
    TlsError,
)
from workstation.net.nodes import LocalIdentity, RemoteNode


@dataclass(frozen=True)
class EchoResult:
    """The answer to "test this node".

    Attributes
    ----------
    node : str
        The node's label.
    outcome : str
        ``"ok"``; ``"refused"`` (association rejected, or no Verification context);
        ``"unreachable"`` (no TCP connection: refused port, no route, unknown host);
        ``"timeout"``; ``"tls"`` (handshake or certificate); ``"aborted"``; ``"failed"`` (the
        echo answered a non-success status).
    message : str
        What happened, in words (what to check when it failed).
    status : int or None
        The C-ECHO status, when there was one.
    seconds : float
        From the connection attempt to the release.
    """

    node: str
    outcome: str
    message: str
    status: int | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


def _outcome(exc: NetError) -> str:
    if isinstance(exc, NodeUnreachable):
        return "timeout" if exc.reason == "timeout" else "unreachable"
    if isinstance(exc, TlsError):
        return "tls"
    if isinstance(exc, AssociationRejected | NoPresentationContext):
        return "refused"
    if isinstance(exc, OperationTimeout):
        return "timeout"
    if isinstance(exc, PeerAborted):
        return "aborted"
    return "failed"


def echo(identity: LocalIdentity, node: RemoteNode) -> EchoResult:
    """Send a C-ECHO to ``node`` and say what happened; never raises for network failures.

    Every wait is bounded by the node's timeouts (connect, ACSE, DIMSE).
    """
    started = time.monotonic()
    try:
        with association(
            identity, node, [Context(Verification)], service="Verification (C-ECHO)"
        ) as assoc:
            status = assoc.send_c_echo()
            aborted = assoc.is_aborted
    except NetError as exc:
        return EchoResult(node.label, _outcome(exc), str(exc), None, time.monotonic() - started)
    seconds = time.monotonic() - started
    value = status.get("Status") if status else None
    if value is None:
        if aborted:
            return EchoResult(node.label, "aborted", f"{node.label}: the peer aborted the "
                              "association instead of answering the C-ECHO", None, seconds)  # fmt: skip
        return EchoResult(
            node.label,
            "timeout",
            f"{node.label}: no answer to the C-ECHO within {node.dimse_timeout:g} s",
            None,
            seconds,
        )
    if value != 0x0000:
        return EchoResult(node.label, "failed", f"{node.label}: C-ECHO answered status "
                          f"0x{value:04X}", value, seconds)  # fmt: skip
    return EchoResult(
        node.label, "ok", f"{node.label}: C-ECHO answered in {seconds * 1000:.0f} ms", 0, seconds
    )
