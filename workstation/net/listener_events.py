"""What the storage listener reports: frozen values, so they may cross threads (DESIGN rule 2)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

SUCCESS = 0x0000


@dataclass(frozen=True)
class ReceivedInstance:
    """One C-STORE request that was answered (successfully or not).

    Attributes
    ----------
    association_id : int
        Identifies the association within this listener (same value in its report).
    calling_ae, peer : str
        Who sent it: the calling AE title and ``"host:port"``.
    sop_class_uid, sop_instance_uid, transfer_syntax_uid : str
        From the C-STORE request and the presentation context.
    size : int
        Bytes of the Part 10 file handed to the store callback.
    status : int
        The DIMSE status we answered.
    seconds : float
        Time spent in the store callback.
    """

    association_id: int
    calling_ae: str
    peer: str
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    size: int
    status: int
    seconds: float

    @property
    def ok(self) -> bool:
        """True for success and warning statuses (the peer considers the instance stored)."""
        return self.status == SUCCESS or (self.status & 0xF000) == 0xB000


@dataclass(frozen=True)
class AssociationReport:
    """What one association did, sent when it ends.

    Attributes
    ----------
    association_id : int
    calling_ae, peer : str
    outcome : str
        ``"released"``, ``"aborted"``, ``"closed"`` (connection lost) or ``"rejected"``.
    received, failed : int
        C-STORE requests answered with success, and with a failure status.
    size : int
        Bytes received in successfully stored instances.
    seconds : float
        From acceptance to the end.
    store_seconds : float
        Of which spent in the store callback (the archive): the rest is the network's.
    reason : str
        Why it was rejected; empty otherwise.
    """

    association_id: int
    calling_ae: str
    peer: str
    outcome: str
    received: int = 0
    failed: int = 0
    size: int = 0
    seconds: float = 0.0
    store_seconds: float = 0.0
    reason: str = ""


ListenerEvent = ReceivedInstance | AssociationReport
Observer = Callable[[ListenerEvent], None]
