"""What can go wrong talking to a remote node: one exception type per thing a user must tell apart.

Every message names the node (``name (AE@host:port)``) and says what to check. All derive from
:class:`NetError`, so a caller that only wants "it failed, and why" catches that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workstation.net.retrieve import RetrieveResult


class NetError(Exception):
    """A DICOM network operation failed.

    Attributes
    ----------
    node : str
        The node it was talking to, as ``name (AE@host:port)``.
    """

    def __init__(self, node: str, message: str) -> None:
        super().__init__(f"{node}: {message}")
        self.node = node


class NodeUnreachable(NetError):
    """No TCP connection: refused, timed out, no route, unknown host.

    Attributes
    ----------
    reason : str
        ``"refused"``, ``"timeout"``, ``"unreachable"`` or ``"unknown-host"``.
    """

    def __init__(self, node: str, message: str, reason: str) -> None:
        super().__init__(node, message)
        self.reason = reason


class TlsError(NetError):
    """The TCP connection was made but the TLS handshake failed (certificate not verified,
    hostname mismatch, the peer does not speak TLS, or TLS settings that cannot be loaded)."""


class AssociationRejected(NetError):
    """The peer answered A-ASSOCIATE-RJ.

    Attributes
    ----------
    result, source, diagnostic : int
        From the rejection (PS3.8 Table 9-21); ``reason`` says it in words.
    permanent : bool
        False for a transient rejection (retrying later may work).
    """

    def __init__(self, node: str, result: int, source: int, diagnostic: int) -> None:
        self.result, self.source, self.diagnostic = result, source, diagnostic
        self.permanent = result == 1
        self.reason = rejection_reason(source, diagnostic)
        kind = "permanently" if self.permanent else "transiently"
        super().__init__(node, f"association rejected {kind}: {self.reason}")


class NoPresentationContext(NetError):
    """The association was accepted but none of the presentation contexts the operation needs.

    Attributes
    ----------
    service : str
        What we asked for (e.g. ``"Study Root Query/Retrieve - FIND"``).
    """

    def __init__(self, node: str, service: str, detail: str = "") -> None:
        self.service = service
        super().__init__(
            node,
            f"the peer does not support {service}"
            + (f" ({detail})" if detail else "")
            + "; check the node's configuration (query model, retrieve method)",
        )


class PeerAborted(NetError):
    """The peer aborted the association (A-ABORT) or closed the connection in the middle.

    Attributes
    ----------
    partial : RetrieveResult or None
        For a retrieve: what was done before it broke off (what arrived is kept).
    """

    def __init__(self, node: str, message: str, partial: RetrieveResult | None = None) -> None:
        super().__init__(node, message)
        self.partial = partial


class OperationTimeout(NetError):
    """The peer stopped answering within the node's timeout; the association was aborted.

    Attributes
    ----------
    partial : RetrieveResult or None
        For a retrieve: what was done before the wait ran out.
    """

    def __init__(self, node: str, message: str, partial: RetrieveResult | None = None) -> None:
        super().__init__(node, message)
        self.partial = partial


class QueryFailed(NetError):
    """A C-FIND answered with a failure status.

    Attributes
    ----------
    status : int
        The DIMSE status (e.g. 0xA700 out of resources, 0xA900 identifier does not match).
    """

    def __init__(self, node: str, status: int, comment: str = "") -> None:
        self.status = status
        text = STATUS_TEXT.get(status) or _status_class(status)
        super().__init__(
            node,
            f"C-FIND failed with status 0x{status:04X} ({text})"
            + (f": {comment}" if comment else ""),
        )


class RetrieveFailed(NetError):
    """A C-MOVE or C-GET answered with a failure status and nothing was retrieved.

    Attributes
    ----------
    status : int
    partial : RetrieveResult or None
    """

    def __init__(
        self, node: str, status: int, comment: str = "", partial: RetrieveResult | None = None
    ) -> None:
        self.status = status
        self.partial = partial
        text = STATUS_TEXT.get(status) or _status_class(status)
        super().__init__(
            node,
            f"retrieve failed with status 0x{status:04X} ({text})"
            + (f": {comment}" if comment else ""),
        )


class MoveDestinationUnknown(RetrieveFailed):
    """C-MOVE status 0xA801: the peer does not know our AE title as a move destination.

    The peer's administrator must add our AE title, host and listener port to its list of
    destinations (or use C-GET, which needs no inbound connection).
    """

    def __init__(self, node: str, destination: str, comment: str = "") -> None:
        self.destination = destination
        super().__init__(node, 0xA801, comment)
        self.args = (
            f"{node}: the peer does not know the move destination {destination!r} (status "
            f"0xA801); add AE {destination!r} with this computer's address and listener port to "
            "the peer's destinations, or retrieve with C-GET",
        )


#: Words for the DIMSE statuses of Query/Retrieve (PS3.4 C.4).
STATUS_TEXT: dict[int, str] = {
    0x0000: "success",
    0xFF00: "pending",
    0xFF01: "pending, optional keys not supported",
    0xFE00: "cancelled",
    0xB000: "warning: sub-operations completed with failures",
    0xA700: "refused: out of resources",
    0xA701: "refused: out of resources, unable to calculate number of matches",
    0xA702: "refused: out of resources, unable to perform sub-operations",
    0xA801: "refused: move destination unknown",
    0xA900: "identifier does not match SOP class",
    0x0122: "SOP class not supported",
    0x0211: "unrecognised operation",
}


def _status_class(status: int) -> str:
    if 0xC000 <= status <= 0xCFFF:
        return "unable to process"
    if (status & 0xF000) == 0xA000:
        return "refused"
    return "failure"


_REJECT_REASONS = {
    (1, 1): "no reason given",
    (1, 2): "application context name not supported",
    (1, 3): "calling AE title not recognised: the peer does not know our AE title; add it there",
    (1, 7): "called AE title not recognised: check the node's AE title",
    (2, 1): "no reason given (ACSE)",
    (2, 2): "protocol version not supported",
    (3, 1): "temporary congestion: try again later",
    (3, 2): "local limit exceeded: the peer has too many associations; try again later",
}


def rejection_reason(source: int, diagnostic: int) -> str:
    """Words for an A-ASSOCIATE-RJ (source, reason/diagnostic) pair."""
    return _REJECT_REASONS.get((source, diagnostic), f"source {source}, reason {diagnostic}")
