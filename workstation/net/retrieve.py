"""C-MOVE and C-GET: retrieve a study, a series or a list of instances from a node.

:func:`move` asks the node to send the instances to a destination AE (our listener, which must
be running and known to the node); :func:`get` receives them on the same association (no
inbound port), handing each one to a store callback as a complete Part 10 file whose data set
is byte-for-byte what the node sent.

Both run on the lean requestor of :mod:`workstation.net.requestor`: the calling thread reads
the node's responses (and a C-GET's C-STORE sub-operations, answering each once the store
callback returns); no pynetdicom reactor thread.

Progress: each pending response's sub-operation counts (remaining, completed, failed, warning)
go to ``on_progress`` as a frozen :class:`RetrieveProgress`, on the calling thread (for C-GET
also after every received instance).
Cancel: the :class:`~workstation.net.cancel.CancelToken` sends C-CANCEL at once (within 0.1 s
on a TLS association, where the reading thread sends it); the node then
answers "cancelled" with its counts, and the result says ``cancelled``.

A retrieve that breaks off raises :class:`~workstation.net.errors.PeerAborted` or
:class:`~workstation.net.errors.OperationTimeout` carrying the partial :class:`RetrieveResult`;
whatever arrived before is the caller's (the archive keeps it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from workstation.net import sop_classes, ul_pdu
from workstation.net.association import Context
from workstation.net.cancel import CancelToken
from workstation.net.errors import (
    MoveDestinationUnknown,
    NetError,
    OperationTimeout,
    PeerAborted,
    RetrieveFailed,
)
from workstation.net.find import query_contexts
from workstation.net.nodes import LocalIdentity, RemoteNode
from workstation.net.part10 import part10_header
from workstation.net.requestor import LeanAssociation, Message, identifier_bytes, lean_association

log = logging.getLogger(__name__)

PENDING = (0xFF00, 0xFF01)
SUCCESS = 0x0000
WARNING = 0xB000
CANCELLED = 0xFE00
MOVE_DESTINATION_UNKNOWN = 0xA801
OUT_OF_RESOURCES = 0xA700
CANNOT_UNDERSTAND = 0xC000

#: Transfer syntaxes accepted for C-GET, each in its own presentation context where the
#: 128-context limit allows, so the node can send every instance as it is stored.
STORAGE_SYNTAXES = (
    ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGLosslessSV1, JPEGLSLossless,
    JPEG2000Lossless, RLELossless, JPEGBaseline8Bit, JPEGExtended12Bit, JPEG2000,
    JPEGLSNearLossless, DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian,
)  # fmt: skip

#: ``store(data, calling_ae, peer) -> DIMSE status`` for C-GET: ``data`` is a Part 10 file.
StoreCallback = Callable[[bytes, str, str], int]
ProgressCallback = Callable[["RetrieveProgress"], None]


@dataclass(frozen=True)
class RetrieveTarget:
    """What to retrieve: a study, one series of it, or instances of one series.

    Attributes
    ----------
    study_instance_uid : str
    series_instance_uid : str
        Empty: the whole study.
    sop_instance_uids : tuple of str
        Non-empty: these instances (IMAGE level; ``series_instance_uid`` required).
    patient_id : str
        Needed by nodes that only have Patient Root (from the C-FIND result).
    """

    study_instance_uid: str
    series_instance_uid: str = ""
    sop_instance_uids: tuple[str, ...] = ()
    patient_id: str = ""

    def __post_init__(self) -> None:
        if not self.study_instance_uid:
            raise ValueError("retrieve: a study instance UID is required")
        if self.sop_instance_uids and not self.series_instance_uid:
            raise ValueError("retrieve: instances are retrieved within a series: give its UID")

    @property
    def level(self) -> str:
        if self.sop_instance_uids:
            return "IMAGE"
        return "SERIES" if self.series_instance_uid else "STUDY"

    def identifier(self, patient_root: bool = False) -> Dataset:
        ds = Dataset()
        ds.QueryRetrieveLevel = self.level
        if patient_root:
            ds.PatientID = self.patient_id
        ds.StudyInstanceUID = self.study_instance_uid
        if self.series_instance_uid:
            ds.SeriesInstanceUID = self.series_instance_uid
        if self.sop_instance_uids:
            ds.SOPInstanceUID = list(self.sop_instance_uids)
        return ds

    def describe(self) -> str:
        if self.sop_instance_uids:
            return f"{len(self.sop_instance_uids)} instance(s) of series {self.series_instance_uid}"
        if self.series_instance_uid:
            return f"series {self.series_instance_uid}"
        return f"study {self.study_instance_uid}"


@dataclass(frozen=True)
class RetrieveProgress:
    """Where a retrieve stands (from the node's pending responses).

    Attributes
    ----------
    node, method : str
    remaining : int or None
        Sub-operations left (None until the node says).
    completed, failed, warning : int
        Sub-operations done, as the node counts them.
    received : int
        Instances that reached our store callback (C-GET only; 0 for C-MOVE).
    seconds : float
        Since the retrieve started.
    """

    node: str
    method: str
    remaining: int | None = None
    completed: int = 0
    failed: int = 0
    warning: int = 0
    received: int = 0
    seconds: float = 0.0

    @property
    def done(self) -> int:
        return self.completed + self.failed + self.warning

    @property
    def total(self) -> int | None:
        """All sub-operations (None until the node gave a remaining count)."""
        return None if self.remaining is None else self.remaining + self.done


@dataclass(frozen=True)
class RetrieveResult:
    """How a C-MOVE or C-GET ended.

    Attributes
    ----------
    node, method : str
    target : RetrieveTarget
    status : int or None
        The final DIMSE status (None when the association broke off).
    completed, failed, warning : int
        Sub-operations, as the node counted them.
    remaining : int or None
        Left undone (after a cancel or a break).
    received : int
        Instances stored by our callback (C-GET).
    failed_sop_instance_uids : tuple of str
        What the node listed as failed (Failed SOP Instance UID List).
    cancelled : bool
    seconds : float
    comment : str
        The node's Error Comment, or why it broke off.
    """

    node: str
    method: str
    target: RetrieveTarget
    status: int | None
    completed: int = 0
    failed: int = 0
    warning: int = 0
    remaining: int | None = None
    received: int = 0
    failed_sop_instance_uids: tuple[str, ...] = ()
    cancelled: bool = False
    seconds: float = 0.0
    comment: str = ""

    @property
    def ok(self) -> bool:
        """Everything asked for was sent (success, no failed sub-operation)."""
        return self.status == SUCCESS and self.failed == 0 and not self.cancelled


@dataclass
class _State:
    node: str
    method: str
    started: float = field(default_factory=time.monotonic)
    remaining: int | None = None
    completed: int = 0
    failed: int = 0
    warning: int = 0
    received: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def update(self, status: Mapping[str, Any]) -> None:
        with self.lock:
            remaining = status.get("NumberOfRemainingSuboperations")
            if remaining is not None:
                self.remaining = int(remaining)
            for attr, key in (("completed", "NumberOfCompletedSuboperations"),
                              ("failed", "NumberOfFailedSuboperations"),
                              ("warning", "NumberOfWarningSuboperations")):  # fmt: skip
                value = status.get(key)
                if value is not None:
                    setattr(self, attr, int(value))

    def progress(self) -> RetrieveProgress:
        with self.lock:
            return RetrieveProgress(self.node, self.method, self.remaining, self.completed,
                                    self.failed, self.warning, self.received,
                                    time.monotonic() - self.started)  # fmt: skip

    def result(self, target: RetrieveTarget, status: int | None, **extra: Any) -> RetrieveResult:
        with self.lock:
            return RetrieveResult(self.node, self.method, target, status, self.completed,
                                  self.failed, self.warning, self.remaining, self.received,
                                  seconds=time.monotonic() - self.started, **extra)  # fmt: skip


def _notify(on_progress: ProgressCallback | None, progress: RetrieveProgress) -> None:
    if on_progress is None:
        return
    try:
        on_progress(progress)
    except Exception:  # a progress bar's bug must not break the retrieve
        log.exception("retrieve progress callback failed")


def _failed_uids(identifier: Dataset | None) -> tuple[str, ...]:
    if identifier is None or "FailedSOPInstanceUIDList" not in identifier:
        return ()
    value = identifier.FailedSOPInstanceUIDList
    if isinstance(value, str):
        return tuple(v for v in value.split("\\") if v)
    return tuple(str(v) for v in value if v)


def _drive(
    assoc: LeanAssociation,
    context_id: int,
    node: RemoteNode,
    target: RetrieveTarget,
    state: _State,
    responses: Iterable[tuple[Mapping[str, Any], Dataset | None]],
    on_progress: ProgressCallback | None,
    cancel: CancelToken | None,
    destination: str = "",
) -> RetrieveResult:
    """Read a C-MOVE/C-GET's responses (to our request 1) to the end; the result, or an
    exception with it."""
    cancelled = False

    def send_cancel() -> None:
        nonlocal cancelled
        cancelled = True
        assoc.cancel(context_id, 1, min(node.dimse_timeout, 30.0))

    remove = cancel.add_hook(send_cancel) if cancel else None
    try:
        for status, identifier in responses:
            code = status.get("Status") if status else None
            if code is None:
                if cancelled:
                    return state.result(target, None, cancelled=True,
                                        comment="cancelled; the node did not confirm")  # fmt: skip
                if assoc.ended_by == "silence":
                    raise OperationTimeout(
                        node.label,
                        f"{state.method}: no response within {node.dimse_timeout:g} s; "
                        "association aborted",
                        state.result(target, None, comment="timed out"),
                    )
                raise PeerAborted(
                    node.label,
                    f"the peer aborted the association during the {state.method} "
                    f"({state.completed} sub-operation(s) completed)",
                    state.result(target, None, comment="aborted by the peer"),
                )
            state.update(status)
            if code in (SUCCESS, WARNING) and "NumberOfRemainingSuboperations" not in status:
                with state.lock:  # optional in a final response: nothing is left
                    state.remaining = 0
            if code in PENDING:
                _notify(on_progress, state.progress())
                continue
            comment = str(status.get("ErrorComment", "") or "")
            result = state.result(target, code, failed_sop_instance_uids=_failed_uids(identifier),
                                  cancelled=cancelled or code == CANCELLED,
                                  comment=comment)  # fmt: skip
            _notify(on_progress, state.progress())
            if code in (SUCCESS, WARNING, CANCELLED) or (code & 0xF000) == 0xB000:
                return result
            if code == MOVE_DESTINATION_UNKNOWN:
                raise MoveDestinationUnknown(node.label, destination, comment)
            if destination and not state.completed:  # Orthanc answers 0xC000 for 0xA801
                comment = "; ".join(filter(None, (comment, (
                    f"does the node know the move destination {destination!r} (our AE title, "
                    "address and listener port)? C-GET needs no destination"))))  # fmt: skip
            raise RetrieveFailed(node.label, code, comment, result)
        raise PeerAborted(node.label, f"{state.method}: the node sent no final response",
                          state.result(target, None))  # fmt: skip
    finally:
        if remove:
            remove()


def _check_patient_root(model: str, patient_uid: str, target: RetrieveTarget, node: RemoteNode):
    if model == patient_uid and not target.patient_id:
        raise NetError(node.label, "this node only has Patient Root: the retrieve needs the "
                       "patient ID (from the C-FIND result)")  # fmt: skip


def move(
    identity: LocalIdentity,
    node: RemoteNode,
    target: RetrieveTarget,
    *,
    destination: str | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> RetrieveResult:
    """C-MOVE ``target`` from ``node`` to ``destination`` (default: our AE title).

    The destination (our listener) must be running and known to the node.

    Raises
    ------
    MoveDestinationUnknown
        The node does not know ``destination`` (status 0xA801).
    RetrieveFailed
        Another failure status (with the partial result).
    PeerAborted, OperationTimeout
        It broke off (with the partial result).
    NodeUnreachable, AssociationRejected, NoPresentationContext, TlsError
        It did not start.
    """
    destination = destination or identity.ae_title
    study, patient = (StudyRootQueryRetrieveInformationModelMove,
                      PatientRootQueryRetrieveInformationModelMove)  # fmt: skip
    contexts = query_contexts(node, study, patient)
    with lean_association(identity, node, contexts,
                          required=[c.abstract_syntax for c in contexts],
                          service="Query/Retrieve MOVE (Study or Patient Root)") as assoc:  # fmt: skip
        model = study if study in assoc.accepted else patient
        _check_patient_root(model, patient, target, node)
        context_id, syntax = assoc.accepted[model]
        state = _State(node.label, "C-MOVE")
        identifier = identifier_bytes(target.identifier(model == patient), syntax)
        assoc.send(context_id, ul_pdu.encode_move_rq(model, 1, destination), identifier)
        return _drive(assoc, context_id, node, target, state,
                      assoc.responses(1, ul_pdu.C_MOVE_RSP, syntax), on_progress,
                      cancel, destination)  # fmt: skip


def storage_contexts(classes: Sequence[str] = (), budget: int = 127) -> list[Context]:
    """Storage presentation contexts for a C-GET of instances of ``classes``.

    One context per (SOP class, transfer syntax) where ``budget`` allows, so that the node can
    send every instance in the syntax it has it in; otherwise one context per class with all
    syntaxes. No classes: the common storage classes of :mod:`workstation.net.sop_classes`.
    """
    wanted = list(dict.fromkeys(c for c in classes if c)) or list(sop_classes.COMMON)
    if len(wanted) * len(STORAGE_SYNTAXES) <= budget:
        return [Context(c, (ts,)) for c in wanted for ts in STORAGE_SYNTAXES]
    if len(wanted) * 2 <= budget:  # uncompressed alone, and everything else
        return [ctx for c in wanted for ctx in (Context(c, STORAGE_SYNTAXES[:2]),
                                                Context(c, STORAGE_SYNTAXES[2:]))]  # fmt: skip
    return [Context(c, STORAGE_SYNTAXES) for c in wanted[:budget]]


def _store_status(store: StoreCallback, data: bytes, calling: str, peer: str, uid: str) -> int:
    try:
        status = store(data, calling, peer)
    except OSError as exc:
        log.error("C-GET: instance %s from %s not stored: %s", uid, calling, exc)
        return OUT_OF_RESOURCES
    except Exception:
        log.exception("C-GET: store callback failed for %s", uid)
        return CANNOT_UNDERSTAND
    return status if isinstance(status, int) and 0 <= status <= 0xFFFF else CANNOT_UNDERSTAND


def get(
    identity: LocalIdentity,
    node: RemoteNode,
    target: RetrieveTarget,
    store: StoreCallback,
    *,
    sop_class_uids: Sequence[str] = (),
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> RetrieveResult:
    """C-GET ``target`` from ``node``; each instance goes to ``store`` as it arrives.

    Parameters
    ----------
    store : StoreCallback
        Called on the calling thread with each Part 10 file (the data set exactly as
        received); returns the C-STORE status to answer (``OSError`` answers 0xA700).
    sop_class_uids : sequence of str
        The SOP classes to accept (from an image-level C-FIND); default: the common ones.

    Raises
    ------
    The same as :func:`move`, except :class:`MoveDestinationUnknown`.
    """
    study, patient = (StudyRootQueryRetrieveInformationModelGet,
                      PatientRootQueryRetrieveInformationModelGet)  # fmt: skip
    query = query_contexts(node, study, patient)
    storage = storage_contexts(sop_class_uids, 128 - len(query))
    roles = [(uid, 0, 1) for uid in dict.fromkeys(c.abstract_syntax for c in storage)]
    state = _State(node.label, "C-GET")
    peer = f"{node.host}:{node.port}"
    with lean_association(identity, node, [*query, *storage], roles=roles,
                          required=[c.abstract_syntax for c in query],
                          service="Query/Retrieve GET (Study or Patient Root)") as assoc:  # fmt: skip

        def on_store(message: Message) -> None:
            fields = message.command
            sop_class, uid = fields.text(0x0002), fields.text(0x1000)
            context = assoc.contexts.get(message.context_id)
            if message.data_set is None or context is None or not uid:
                status = CANNOT_UNDERSTAND
            else:
                header = part10_header(sop_class, uid, context[1], node.ae_title)
                data = b"".join((header, message.data_set))
                status = _store_status(store, data, node.ae_title, peer, uid)
            if status == SUCCESS or (status & 0xF000) == 0xB000:
                with state.lock:
                    state.received += 1
            rsp = ul_pdu.encode_store_rsp(fields.us(0x0110) or 0, sop_class, uid, status)
            assoc.send(message.context_id, rsp)
            _notify(on_progress, state.progress())

        model = study if study in assoc.accepted else patient
        _check_patient_root(model, patient, target, node)
        context_id, syntax = assoc.accepted[model]
        state.started = time.monotonic()
        identifier = identifier_bytes(target.identifier(model == patient), syntax)
        assoc.send(context_id, ul_pdu.encode_get_rq(model, 1), identifier)
        responses = assoc.responses(1, ul_pdu.C_GET_RSP, syntax, on_store)
        return _drive(assoc, context_id, node, target, state, responses, on_progress,
                      cancel)  # fmt: skip


def split_instances(
    target: RetrieveTarget, uids: Sequence[str], chunk: int = 500
) -> Iterator[RetrieveTarget]:
    """IMAGE-level targets of at most ``chunk`` instances each (long UID lists make long
    identifiers; some nodes limit them)."""
    for start in range(0, len(uids), chunk):
        yield replace(target, sop_instance_uids=tuple(uids[start : start + chunk]))
