"""Joins retrieve (``workstation.net``) to the archive: studies fetched from a node land in it.

:meth:`RetrieveService.retrieve` fetches a study (or one series) by C-MOVE or C-GET:

1. What the archive already has of it is looked up. When it has some, or for C-GET, the node is
   asked at IMAGE level what it has (C-FIND); only the missing instances are fetched: whole
   series at SERIES level, the rest at IMAGE level (lists of SOP Instance UIDs). A retrieve
   that broke off is thus resumed by asking again.
2. C-MOVE: the instances arrive on our listener -- the running :class:`ArchiveReceiver` when
   the application has one, otherwise a temporary one on our identity's port that accepts
   the node's AE title. C-GET: they arrive on the same association. Either way they are
   spooled and indexed exactly as the listener does (byte-for-byte, see
   :mod:`workstation.app.listener`).
3. Afterwards the archive is asked again: the report says ``complete`` only when everything
   the node listed (or, without a listing, everything the node counted) is indexed;
   otherwise ``partial`` (what arrived is kept), ``cancelled`` or ``failed``, with the
   error. Every retrieve is appended to ``retrieve_journal.jsonl`` under the home directory.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from workstation.app.listener import ArchiveReceiver, ListenerSettings
from workstation.archive.ingest_process import IngestProcess, spool_ingester
from workstation.archive.store import PartFile
from workstation.net.cancel import CancelToken
from workstation.net.errors import NetError
from workstation.net.find import find
from workstation.net.nodes import LocalIdentity, RemoteNode
from workstation.net.retrieve import (
    RetrieveProgress,
    RetrieveResult,
    RetrieveTarget,
    get,
    move,
    split_instances,
)
from workstation.net.storage_scp import OUT_OF_RESOURCES, SUCCESS, ReceivedInstance

log = logging.getLogger(__name__)
audit = logging.getLogger("workstation.audit")

OUTCOMES = ("complete", "partial", "cancelled", "failed")
INDEX_WAIT = 60.0  # seconds to wait for a shared receiver to index what arrived


class RetrieveArchive(Protocol):
    """What retrieving needs of the archive (``workstation.archive.archive.Archive``)."""

    def find(self, level: str, keys: Any = None, limit: int | None = None) -> Any: ...

    def spool_bytes(
        self, data: bytes | memoryview, *, sync: bool = False, part: PartFile | None = None
    ) -> str: ...

    def new_spool_part(self) -> PartFile: ...

    def prepare_spooled(self, item: Any) -> Any: ...

    def index_spooled(self, items: Any, prepared: Any = None) -> Any: ...

    def add_bytes(self, data: bytes, source: str) -> Any: ...


@dataclass(frozen=True)
class RemoteInstance:
    """One instance the node listed (image-level C-FIND)."""

    sop_instance_uid: str
    series_instance_uid: str
    sop_class_uid: str = ""


@dataclass(frozen=True)
class RetrieveReport:
    """What one :meth:`RetrieveService.retrieve` did.

    Attributes
    ----------
    node, method : str
    study_instance_uid, series_instance_uid : str
    outcome : str
        ``complete``, ``partial`` (some missing: retrieve again to fetch only those),
        ``cancelled`` or ``failed`` (nothing could be fetched; see ``message``).
    on_node : int or None
        Instances the node has (its image-level listing, or its sub-operation count).
    already_local : int
        Instances the archive had before.
    arrived : int
        Instances received in this retrieve.
    missing : tuple of str
        SOP Instance UIDs still missing afterwards (when the node listed them).
    failed_sop_instance_uids : tuple of str
        What the node reported as failed.
    message : str
        One line for the user.
    error : NetError or None
        What broke it off, if anything.
    results : tuple of RetrieveResult
        Each C-MOVE/C-GET issued.
    seconds : float
    """

    node: str
    method: str
    study_instance_uid: str
    series_instance_uid: str
    outcome: str
    on_node: int | None
    already_local: int
    arrived: int
    missing: tuple[str, ...] = ()
    failed_sop_instance_uids: tuple[str, ...] = ()
    message: str = ""
    error: NetError | None = None
    results: tuple[RetrieveResult, ...] = ()
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return self.outcome == "complete"

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "method": self.method,
            "study_instance_uid": self.study_instance_uid,
            "series_instance_uid": self.series_instance_uid,
            "outcome": self.outcome,
            "on_node": self.on_node,
            "already_local": self.already_local,
            "arrived": self.arrived,
            "missing": len(self.missing),
            "failed_sop_instance_uids": list(self.failed_sop_instance_uids),
            "message": self.message,
            "error": type(self.error).__name__ if self.error else None,
            "operations": [
                {
                    "level": r.target.level,
                    "status": r.status,
                    "completed": r.completed,
                    "failed": r.failed,
                    "warning": r.warning,
                    "cancelled": r.cancelled,
                }
                for r in self.results
            ],  # fmt: skip
            "seconds": round(self.seconds, 3),
        }


class _Arrivals:
    """Counts instances as they arrive (association threads) and feeds the progress callback."""

    def __init__(self, on_progress: Callable[[RetrieveProgress], None] | None,
                 calling_aes: tuple[str, ...]) -> None:  # fmt: skip
        self.lock = threading.Lock()
        self.uids: set[str] = set()
        self.failed = 0
        self.on_progress = on_progress
        self.calling_aes = calling_aes
        self.base = (0, 0, 0)  # completed, failed, warning of earlier operations
        self.last: RetrieveProgress | None = None

    def add(self, uid: str, ok: bool) -> None:
        with self.lock:
            if ok:
                self.uids.add(uid)
            else:
                self.failed += 1
            last = self.last
        if last is not None:
            self.progress(last)

    def observe(self, event: Any) -> None:
        if isinstance(event, ReceivedInstance) and event.calling_ae in self.calling_aes:
            self.add(event.sop_instance_uid, event.ok)

    def progress(self, p: RetrieveProgress) -> None:
        with self.lock:
            self.last = p
            done = self.base
            received = len(self.uids)
        if self.on_progress is None:
            return
        total = replace(p, completed=p.completed + done[0], failed=p.failed + done[1],
                        warning=p.warning + done[2], received=received)  # fmt: skip
        try:
            self.on_progress(total)
        except Exception:
            log.exception("retrieve progress callback failed")

    def finished(self, result: RetrieveResult) -> None:
        with self.lock:
            c, f, w = self.base
            self.base = (c + result.completed, f + result.failed, w + result.warning)
            self.last = None


class RetrieveService:
    """Retrieves studies from remote nodes into the archive.

    Parameters
    ----------
    archive : Archive
        The local archive (``Services.archive``).
    identity : LocalIdentity
        Our AE title (the C-MOVE destination) and listener port.
    receiver : ArchiveReceiver, optional
        The application's running listener; without one, C-MOVE starts a temporary listener on
        ``identity.port`` for the duration of each retrieve.
    journal : Path, optional
        A JSON-lines file each retrieve's report is appended to.
    ingest : IngestProcess, optional
        Index what arrives in this child process (``Services.ingest``) rather than on a thread
        of this one (a temporary listener's and C-GET's instances; a given ``receiver`` has its
        own).
    """

    def __init__(
        self,
        archive: RetrieveArchive,
        identity: LocalIdentity,
        *,
        receiver: ArchiveReceiver | None = None,
        journal: Path | None = None,
        ingest: IngestProcess | None = None,
    ) -> None:
        self.archive = archive
        self.identity = identity
        self.receiver = receiver
        self.journal = journal
        self.ingest = ingest

    # --- what is where ------------------------------------------------------------------------
    def local_instances(self, study_uid: str, series_uid: str = "") -> set[str]:
        """SOP Instance UIDs of the study (or series) in the archive."""
        keys = {"StudyInstanceUID": study_uid, "SOPInstanceUID": ""}
        if series_uid:
            keys["SeriesInstanceUID"] = series_uid
        return {str(row["SOPInstanceUID"]) for row in self.archive.find("IMAGE", keys)}

    def remote_instances(
        self, node: RemoteNode, study_uid: str, series_uid: str = "",
        cancel: CancelToken | None = None,
    ) -> dict[str, RemoteInstance]:  # fmt: skip
        """What ``node`` has of the study (or series): image-level C-FIND, series by series."""
        if series_uid:
            series = [series_uid]
        else:
            series = [r.series_instance_uid for r in find(
                self.identity, node, "SERIES", {"StudyInstanceUID": study_uid},
                return_keys=("SeriesInstanceUID",), cancel=cancel)]  # fmt: skip
        out: dict[str, RemoteInstance] = {}
        for uid in dict.fromkeys(series):
            if cancel is not None and cancel.cancelled:
                break
            for r in find(self.identity, node, "IMAGE",
                          {"StudyInstanceUID": study_uid, "SeriesInstanceUID": uid},
                          return_keys=("SOPInstanceUID", "SOPClassUID"), cancel=cancel):  # fmt: skip
                if r.sop_instance_uid:
                    out[r.sop_instance_uid] = RemoteInstance(
                        r.sop_instance_uid, r.series_instance_uid or uid, r.get("SOPClassUID")
                    )
        return out

    def study_sop_classes(
        self, node: RemoteNode, study_uid: str, cancel: CancelToken | None = None
    ) -> list[str] | None:
        """The SOP classes of a study on ``node``, from one study-level C-FIND: SOP Classes in
        Study (0008,0062) says what a C-GET must offer to receive, in one answer where an
        image-level listing takes one per instance (400 of them: ~210 ms from Orthanc).

        Returns [] when the node does not have the study, None when it does not return the
        attribute (DCMTK's dcmqrscp does not): the caller lists the images instead.
        """
        found = False
        classes: set[str] = set()
        for r in find(self.identity, node, "STUDY", {"StudyInstanceUID": study_uid},
                      return_keys=("StudyInstanceUID", "SOPClassesInStudy"), cancel=cancel):  # fmt: skip
            found = True
            classes.update(v.strip(" \0") for v in r.get("SOPClassesInStudy").split("\\"))
        classes.discard("")
        if not found:
            return []
        return sorted(classes) or None

    # --- retrieving ---------------------------------------------------------------------------
    def retrieve(
        self,
        node: RemoteNode,
        study_uid: str,
        series_uid: str = "",
        *,
        method: str | None = None,
        patient_id: str = "",
        on_progress: Callable[[RetrieveProgress], None] | None = None,
        cancel: CancelToken | None = None,
    ) -> RetrieveReport:
        """Fetch what the archive lacks of a study (or series) from ``node``.

        Parameters
        ----------
        node : RemoteNode
        study_uid, series_uid : str
        method : str, optional
            ``"C-MOVE"`` or ``"C-GET"``; default: the node's.
        patient_id : str
            For nodes that only have Patient Root.
        on_progress : callable, optional
            Gets :class:`RetrieveProgress` values (``received`` counts instances that reached
            us) from worker threads.
        cancel : CancelToken, optional

        Returns
        -------
        RetrieveReport
            Network failures are reported in it (``outcome`` and ``error``), not raised.
        """
        method = (method or node.retrieve_method).upper()
        if method not in ("C-MOVE", "C-GET"):
            raise ValueError(f"retrieve method {method!r} is not C-MOVE or C-GET")
        started = time.monotonic()
        cancel = cancel or CancelToken()
        local_before = self.local_instances(study_uid, series_uid)
        remote: dict[str, RemoteInstance] | None = None
        results: list[RetrieveResult] = []
        arrivals = _Arrivals(on_progress, node.sends_as)
        error: NetError | None = None
        try:
            classes: list[str] | None = None
            if method == "C-GET" and not local_before and not series_uid:
                classes = self.study_sop_classes(node, study_uid, cancel)
                if classes == []:
                    remote = {}  # the node does not have the study
            if (local_before or method == "C-GET") and classes is None:
                remote = self.remote_instances(node, study_uid, series_uid, cancel)
            if cancel.cancelled:
                remote = None  # a listing cut short is not what the node has
            targets = self._targets(study_uid, series_uid, patient_id, local_before, remote)
            if targets and not cancel.cancelled:
                if method == "C-GET":
                    if classes is None:
                        classes = sorted({r.sop_class_uid for r in (remote or {}).values()} - {""})
                    self._get(node, targets, classes, arrivals, results, cancel)
                else:
                    self._move(node, targets, arrivals, results, cancel)
        except NetError as exc:
            error = exc
            partial = getattr(exc, "partial", None)
            if partial is not None:
                results.append(partial)
        report = self._report(node, method, study_uid, series_uid, local_before, remote,
                              arrivals, results, error, cancel.cancelled, started)  # fmt: skip
        self._record(report)
        return report

    def _targets(
        self, study_uid: str, series_uid: str, patient_id: str, local: set[str],
        remote: dict[str, RemoteInstance] | None,
    ) -> list[RetrieveTarget]:  # fmt: skip
        whole = RetrieveTarget(study_uid, series_uid, patient_id=patient_id)
        if remote is None or not local:
            return [whole] if remote is None or remote else []
        missing = {uid: r for uid, r in remote.items() if uid not in local}
        if not missing:
            return []
        by_series: dict[str, list[str]] = defaultdict(list)
        count: dict[str, int] = defaultdict(int)
        for r in remote.values():
            count[r.series_instance_uid] += 1
        for uid, r in missing.items():
            by_series[r.series_instance_uid].append(uid)
        targets: list[RetrieveTarget] = []
        for series, uids in by_series.items():
            base = RetrieveTarget(study_uid, series, patient_id=patient_id)
            if len(uids) == count[series]:
                targets.append(base)
            else:
                targets.extend(split_instances(base, sorted(uids)))
        return targets

    def _move(self, node: RemoteNode, targets: list[RetrieveTarget], arrivals: _Arrivals,
              results: list[RetrieveResult], cancel: CancelToken) -> None:  # fmt: skip
        receiver, own = self.receiver, False
        if receiver is None:
            settings = ListenerSettings(
                ae_title=self.identity.ae_title, port=self.identity.port,
                bind_address=self.identity.bind_address, allowed_calling_aes=node.sends_as,
                tls=self.identity.tls,
            )  # fmt: skip
            receiver = ArchiveReceiver(self.archive, settings, ingest=self.ingest)  # type: ignore[arg-type]
            own = True
            try:
                receiver.start()
            except OSError as exc:
                receiver.stop()  # its ingester
                raise NetError(node.label, f"cannot receive the C-MOVE: {exc} (is another "
                               "listener using our port? use it, or retrieve with C-GET)") from exc  # fmt: skip
        remove = receiver.listener.add_observer(arrivals.observe)
        try:
            for target in targets:
                if cancel.cancelled:
                    break
                result = move(self.identity, node, target, on_progress=arrivals.progress,
                              cancel=cancel)  # fmt: skip
                arrivals.finished(result)
                results.append(result)
        finally:
            if own:
                receiver.stop()  # drains the ingester: everything that arrived is indexed
            remove()
        if not own:
            self._wait_indexed(arrivals)

    def _get(self, node: RemoteNode, targets: list[RetrieveTarget], classes: list[str],
             arrivals: _Arrivals, results: list[RetrieveResult],
             cancel: CancelToken) -> None:  # fmt: skip
        ingester = spool_ingester(self.archive, process=self.ingest)
        source = f"c-get from {node.ae_title}@{node.host}:{node.port}"

        def store(data: bytes, calling_ae: str, peer: str) -> int:
            try:
                path = self.archive.spool_bytes(data, part=ingester.take_part())
            except OSError as exc:
                audit.error("not stored (out of resources): %s: %s", source, exc)
                return OUT_OF_RESOURCES
            ingester.submit(path, data, source)
            uid = _sop_instance_uid(data)
            arrivals.add(uid, True)
            return SUCCESS

        try:
            for target in targets:
                if cancel.cancelled:
                    break
                result = get(self.identity, node, target, store, sop_class_uids=classes,
                             on_progress=arrivals.progress, cancel=cancel)  # fmt: skip
                arrivals.finished(result)
                results.append(result)
        finally:
            ingester.close()

    def _wait_indexed(self, arrivals: _Arrivals) -> None:
        """A shared receiver indexes in the background: wait (bounded) until it has."""
        with arrivals.lock:
            wanted = set(arrivals.uids)
        deadline = time.monotonic() + INDEX_WAIT
        while wanted and time.monotonic() < deadline:
            uids = "\\".join(sorted(wanted))
            found = {str(r["SOPInstanceUID"]) for r in self.archive.find(
                "IMAGE", {"SOPInstanceUID": uids})}  # fmt: skip
            wanted -= found
            if wanted:
                time.sleep(0.05)

    def _report(
        self, node: RemoteNode, method: str, study_uid: str, series_uid: str,
        local_before: set[str], remote: dict[str, RemoteInstance] | None,
        arrivals: _Arrivals, results: list[RetrieveResult], error: NetError | None,
        cancelled: bool, started: float,
    ) -> RetrieveReport:  # fmt: skip
        local_after = self.local_instances(study_uid, series_uid)
        failed_uids = tuple(u for r in results for u in r.failed_sop_instance_uids)
        arrived = len(local_after - local_before)
        if remote is not None:
            on_node: int | None = len(remote)
            missing = tuple(sorted(set(remote) - local_after))
            done = not missing and bool(remote)
        else:
            counted = [r.completed + r.failed + r.warning + (r.remaining or 0) for r in results]
            on_node = sum(counted) if results else None
            missing = ()
            done = bool(results) and all(r.ok for r in results) and error is None
            done = done and on_node is not None and len(local_after) >= on_node
        if done:
            outcome = "complete"
        elif cancelled:
            outcome = "cancelled"
        elif arrived or (error is None and results):
            outcome = "partial"
        else:
            outcome = "failed"
        what = f"series {series_uid}" if series_uid else f"study {study_uid}"
        if remote is not None and not remote and error is None:
            outcome = "failed"
            message = f"{node.label} has no instances of {what}"
        elif outcome == "complete":
            message = (f"{what}: complete, {len(local_after)} instance(s) in the archive "
                       f"({arrived} retrieved, {len(local_before)} already there)")  # fmt: skip
        else:
            lacking = (f"{len(missing)} still missing" if remote is not None
                       else "the node's list could not be checked")  # fmt: skip
            message = f"{what}: {outcome}, {arrived} retrieved, {lacking}"
            if failed_uids:
                message += f", {len(failed_uids)} failed on the node"
            if error is not None:
                message += f"; {error}"
            elif results and results[-1].comment:
                message += f"; {results[-1].comment}"
            if outcome in ("partial", "cancelled"):
                message += "; retrieve again to fetch only what is missing"
        return RetrieveReport(
            node.label, method, study_uid, series_uid, outcome, on_node, len(local_before),
            arrived, missing, failed_uids, message, error, tuple(results),
            time.monotonic() - started,
        )  # fmt: skip

    def _record(self, report: RetrieveReport) -> None:
        log_fn = audit.info if report.complete else audit.warning
        log_fn("retrieve %s from %s by %s: %s", report.study_instance_uid, report.node,
               report.method, report.message)  # fmt: skip
        if self.journal is None:
            return
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **report.to_json()}
        try:
            self.journal.parent.mkdir(parents=True, exist_ok=True)
            with open(self.journal, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry) + "\n")
        except OSError as exc:
            log.warning("cannot write the retrieve journal %s: %s", self.journal, exc)


def _sop_instance_uid(data: bytes) -> str:
    """(0002,0003) Media Storage SOP Instance UID from a Part 10 header we built."""
    offset = 132
    end = min(len(data), 4096)
    while offset + 8 <= end:
        group = int.from_bytes(data[offset : offset + 2], "little")
        if group != 2:
            break
        element = int.from_bytes(data[offset + 2 : offset + 4], "little")
        vr = data[offset + 4 : offset + 6]
        if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT"):
            length = int.from_bytes(data[offset + 8 : offset + 12], "little")
            value_at = offset + 12
        else:
            length = int.from_bytes(data[offset + 6 : offset + 8], "little")
            value_at = offset + 8
        if element == 0x0003:
            return data[value_at : value_at + length].rstrip(b"\x00 ").decode("ascii", "replace")
        offset = value_at + length
    return ""


__all__ = ["OUTCOMES", "RemoteInstance", "RetrieveReport", "RetrieveService"]
