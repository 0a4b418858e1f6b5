"""Priors: find a patient's other studies in the local archive and on the configured nodes,
rank them, retrieve those a hanging protocol asks for, and hang the study with them.

Everything here blocks (C-FIND, C-MOVE/C-GET, reading headers): the window runs it in a worker
thread. Progress comes through callbacks (called from worker and association threads); a
:class:`~workstation.net.cancel.CancelToken` stops queries and retrieves (C-CANCEL).

Patient identity: C-FIND at STUDY level by Patient ID, asking for Issuer of Patient ID as a
return key; an answer whose issuer differs from the current study's (both present) is dropped
here rather than matched by the peer, since peers differ in how they match that key and a
prior without an issuer must still be found.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workstation.app.hanging_facts import (
    facts_from_archive,
    local_studies_of_patient,
    study_from_row,
)
from workstation.hanging import (
    ProtocolMatch,
    ProtocolSet,
    RankedPrior,
    StudyFacts,
    evaluate_protocol,
    match_protocols,
    rank_priors,
)

if TYPE_CHECKING:
    from workstation.app.node_settings import NodeBook
    from workstation.app.retrieve_service import RetrieveReport, RetrieveService
    from workstation.archive.archive import Archive
    from workstation.net.cancel import CancelToken
    from workstation.net.retrieve import RetrieveProgress

log = logging.getLogger(__name__)

STUDY_KEYS = ("PatientName", "PatientID", "IssuerOfPatientID", "StudyInstanceUID", "StudyDate",
              "StudyTime", "AccessionNumber", "StudyDescription", "ModalitiesInStudy",
              "NumberOfStudyRelatedInstances")  # fmt: skip


@dataclass(frozen=True)
class PriorCandidate:
    """Another study of the patient: where it is (``local``, and the nodes that listed it)."""

    facts: StudyFacts
    local: bool
    nodes: tuple[str, ...] = ()


@dataclass(frozen=True)
class PriorSearch:
    """The result of :meth:`PriorService.find_priors`.

    Attributes
    ----------
    current : StudyFacts
    candidates : tuple of PriorCandidate
        Every other study of the patient found (including later ones), local first.
    ranking : tuple of RankedPrior
        The priors (earlier studies) ranked for comparison.
    errors : tuple of str
        Nodes that could not be asked, and why.
    cancelled : bool
    """

    current: StudyFacts
    candidates: tuple[PriorCandidate, ...]
    ranking: tuple[RankedPrior, ...]
    errors: tuple[str, ...] = ()
    cancelled: bool = False

    def facts(self) -> list[StudyFacts]:
        """The candidates' facts, as the matcher takes them."""
        return [c.facts for c in self.candidates]

    def candidate(self, study_uid: str) -> PriorCandidate | None:
        return next((c for c in self.candidates if c.facts.study_uid == study_uid), None)


@dataclass(frozen=True)
class PriorProgress:
    """Progress of retrieving one prior (``index`` of ``total``); ``retrieve`` is the
    C-MOVE/C-GET's own progress when there is one."""

    study_uid: str
    node: str
    index: int
    total: int
    message: str
    retrieve: RetrieveProgress | None = None


@dataclass(frozen=True)
class HangingResult:
    """What :meth:`PriorService.hang` worked out: the protocol applied, all protocols ranked,
    the prior search and the retrieves made."""

    match: ProtocolMatch | None
    ranked: tuple[ProtocolMatch, ...]
    search: PriorSearch
    retrieves: tuple[RetrieveReport, ...] = field(default=())


class PriorService:
    """Finds, ranks and retrieves priors (a plain-Python API for a worker thread).

    Parameters
    ----------
    archive : Archive
    book : NodeBook
        Our identity and the nodes to ask (``NodeSettings(home).load()``).
    retrieve : RetrieveService, optional
        Default: one on ``archive`` and ``book.local`` (C-MOVE starts a temporary listener; pass
        the application's service when it runs a listener).
    """

    def __init__(self, archive: Archive, book: NodeBook, retrieve: RetrieveService | None = None,
                 *, journal: Path | None = None) -> None:  # fmt: skip
        self.archive = archive
        self.book = book
        self._retrieve = retrieve
        self._journal = journal

    @property
    def retrieve_service(self) -> RetrieveService:
        if self._retrieve is None:
            from workstation.app.retrieve_service import RetrieveService

            self._retrieve = RetrieveService(self.archive, self.book.local, journal=self._journal)
        return self._retrieve

    # --- finding -------------------------------------------------------------------------------
    def find_priors(
        self,
        current: StudyFacts,
        *,
        nodes: Sequence[str] | None = None,
        cancel: CancelToken | None = None,
        on_node: Callable[[str, str], None] | None = None,
    ) -> PriorSearch:
        """The patient's other studies here and on ``nodes`` (default: every node; ``()``:
        the archive only), ranked.

        ``on_node(name, message)`` is called as each node answers or fails. A node that fails is
        listed in ``errors``; the others still count.
        """
        from workstation.net.errors import NetError
        from workstation.net.find import find

        found: dict[str, PriorCandidate] = {}
        for facts in local_studies_of_patient(self.archive, current.patient_id):
            if facts.study_uid != current.study_uid and current.same_patient(facts):
                found[facts.study_uid] = PriorCandidate(facts, True)
        errors: list[str] = []
        chosen = list(self.book.nodes) if nodes is None else [self.book.get(n) for n in nodes]
        for node in chosen if current.patient_id else []:
            if cancel is not None and cancel.cancelled:
                break
            count = 0
            try:
                for r in find(self.book.local, node, "STUDY", {"PatientID": current.patient_id},
                              return_keys=STUDY_KEYS, cancel=cancel):  # fmt: skip
                    facts = study_from_row(r.as_dict(), node.name)
                    if facts.study_uid == current.study_uid or not current.same_patient(facts):
                        continue
                    count += 1
                    known = found.get(facts.study_uid)
                    if known is None:
                        found[facts.study_uid] = PriorCandidate(facts, False, (node.name,))
                    else:
                        found[facts.study_uid] = replace(known, nodes=(*known.nodes, node.name))
            except NetError as exc:
                errors.append(f"{node.name}: {exc}")
                log.warning("priors: %s: %s", node.name, exc)
                if on_node:
                    on_node(node.name, f"failed: {exc}")
                continue
            if on_node:
                on_node(node.name, f"{count} other stud{'y' if count == 1 else 'ies'}")
        candidates = sorted(
            found.values(), key=lambda c: (not c.local, c.facts.when), reverse=False
        )
        ranking = rank_priors(current, [c.facts for c in candidates])
        return PriorSearch(current, tuple(candidates), tuple(ranking), tuple(errors),
                           bool(cancel is not None and cancel.cancelled))  # fmt: skip

    # --- retrieving ----------------------------------------------------------------------------
    def retrieve_priors(
        self,
        studies: Sequence[StudyFacts],
        search: PriorSearch,
        *,
        on_progress: Callable[[PriorProgress], None] | None = None,
        cancel: CancelToken | None = None,
    ) -> tuple[RetrieveReport, ...]:
        """Retrieve each of ``studies`` the archive lacks from a node that listed it (the next
        node when one fails). Studies already local are skipped."""
        todo = []
        for s in studies:
            c = search.candidate(s.study_uid)
            if c is not None and not c.local and c.nodes:
                todo.append(c)
        reports = []
        for i, c in enumerate(todo):
            uid = c.facts.study_uid
            for name in c.nodes:
                if cancel is not None and cancel.cancelled:
                    return tuple(reports)
                node = self.book.get(name)

                def relay(p: Any, uid: str = uid, name: str = name, i: int = i) -> None:
                    if on_progress:
                        on_progress(PriorProgress(uid, name, i, len(todo),
                                                  f"{max(p.done, p.received)}"
                                                  f"{'/' + str(p.total) if p.total else ''} "
                                                  "images", p))  # fmt: skip

                if on_progress:
                    on_progress(PriorProgress(uid, name, i, len(todo), "retrieving"))
                report = self.retrieve_service.retrieve(node, uid, patient_id=c.facts.patient_id,
                                                        on_progress=relay, cancel=cancel)  # fmt: skip
                reports.append(report)
                if on_progress:
                    on_progress(PriorProgress(uid, name, i + 1, len(todo), report.message))
                if report.complete or report.outcome == "cancelled":
                    break
        return tuple(reports)

    def with_images(self, studies: Sequence[StudyFacts]) -> list[StudyFacts]:
        """The facts (with display sets) of those ``studies`` that are in the archive now."""
        from workstation.archive.errors import NotFoundError

        out = []
        for s in studies:
            try:
                out.append(facts_from_archive(self.archive, s.study_uid))
            except NotFoundError:
                continue
        return out

    # --- all together --------------------------------------------------------------------------
    def hang(
        self,
        current: StudyFacts,
        protocols: ProtocolSet,
        *,
        protocol: str | None = None,
        nodes: Sequence[str] | None = None,
        retrieve: bool = True,
        on_node: Callable[[str, str], None] | None = None,
        on_progress: Callable[[PriorProgress], None] | None = None,
        cancel: CancelToken | None = None,
    ) -> HangingResult:
        """Find priors, choose the protocol (the best, or the one called ``protocol``),
        retrieve the priors it wants (when ``retrieve``), read their display sets and
        judge the protocol again with them: the stages then hold current and prior."""
        search = self.find_priors(current, nodes=nodes, cancel=cancel, on_node=on_node)
        candidates = search.facts()
        ranked = match_protocols(current, candidates, protocols)
        if protocol is not None:
            chosen = evaluate_protocol(protocols.get(protocol), current, candidates)
        else:
            chosen = ranked[0] if ranked and ranked[0].matched else None
        if chosen is None:
            return HangingResult(None, tuple(ranked), search)
        wanted = chosen.wanted_priors()
        reports: tuple[RetrieveReport, ...] = ()
        if retrieve and wanted:
            reports = self.retrieve_priors(wanted, search, on_progress=on_progress,
                                           cancel=cancel)  # fmt: skip
        full = self.with_images(wanted)
        final = evaluate_protocol(chosen.protocol, current, [*full, *candidates])
        ranked = [final if m.protocol is chosen.protocol else m for m in ranked]
        return HangingResult(final, tuple(ranked), search, reports)
