"""What the window's hanging-protocol controller needs from the archive and the nodes.

:class:`HangingBackend` gives :class:`workstation.ui.hanging_controller.HangingController` its
three callables, each run in a worker thread:

* :meth:`prepare`: the study's display sets and facts from the local archive, and the patient's
  other local studies; the display sets of those priors that the best protocol shows are read too
  (only those: a patient with many studies must not cost every header of every study);
* :meth:`find_remote`: the patient's studies on the configured nodes (C-FIND by Patient ID);
* :meth:`retrieve`: bring the priors a protocol asks for into the archive (C-MOVE / C-GET).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from workstation.app.hanging_facts import (
    facts_from_display_sets,
    load_app_protocols,
    local_studies_of_patient,
    user_protocol_dir,
)
from workstation.app.node_settings import NodeSettings
from workstation.app.priors import PriorSearch, PriorService
from workstation.archive.archive import Archive
from workstation.archive.errors import NotFoundError
from workstation.core.atomic_file import write_text_atomic
from workstation.core.display_sets import build_display_sets, read_header_records
from workstation.hanging import ProtocolSet, StudyFacts, match_protocols
from workstation.ui.hanging_controller import HangingInputs

log = logging.getLogger(__name__)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


class HangingBackend:
    """The archive- and network-facing half of hanging a study.

    Parameters
    ----------
    archive : Archive
    home : Path
        Where the user's protocols (``hanging_protocols/``) and node settings live.
    retrieve_service : RetrieveService, optional
        The application's (with its listener); default: one made by :class:`PriorService`.
    """

    def __init__(self, archive: Archive, home: Path, retrieve_service=None) -> None:
        self.archive = archive
        self.home = Path(home)
        self.retrieve_service = retrieve_service
        self._lock = threading.Lock()
        self._search: PriorSearch | None = None
        self._protocols: ProtocolSet | None = None

    # --- protocols ------------------------------------------------------------------------------
    def protocols(self) -> ProtocolSet:
        """Built-in and user protocols, read again when :meth:`reload_protocols` was called."""
        with self._lock:
            if self._protocols is None:
                self._protocols = load_app_protocols(self.home)
                for error in self._protocols.errors:
                    log.warning("hanging protocol: %s", error)
            return self._protocols

    def reload_protocols(self) -> ProtocolSet:
        with self._lock:
            self._protocols = None
        return self.protocols()

    def save_protocol(self, name: str, text: str) -> Path:
        """Write a user protocol ``NAME.yaml`` (replacing one of that name) and reload them.

        Raises
        ------
        ValueError
            For a name that is not a plain file name.
        """
        if not _NAME.fullmatch(name):
            raise ValueError(
                f"protocol name {name!r}: use letters, digits, '-' and '_' (at most 64)"
            )
        path = user_protocol_dir(self.home) / f"{name}.yaml"
        write_text_atomic(path, text)
        self.reload_protocols()
        return path

    # --- the local archive ----------------------------------------------------------------------
    def _read_study(self, study_uid: str, sets: dict, problems: list[str]) -> StudyFacts | None:
        rows = list(self.archive.find("IMAGE", {"StudyInstanceUID": study_uid}))
        if not rows:
            return None
        records, failed = read_header_records([self.archive.path_of(r["rel_path"]) for r in rows])
        problems += [f"{path}: {why}" for path, why in failed]
        headers = {r.path: r.ds for r in records}
        display_sets = [d for d in build_display_sets(records) if d.study_uid == study_uid]
        facts = facts_from_display_sets(display_sets, headers, "local")
        for d in display_sets:
            sets[d.uid] = (d, {f.path: headers[f.path] for f in d.frames if f.path in headers})
        return facts[0] if facts else None

    def prepare(self, study_uid: str) -> HangingInputs:
        """The study (with display sets), the patient's other local studies, and the display
        sets of the local priors that the best protocol shows.

        Raises
        ------
        NotFoundError
            When the study is not in the archive.
        """
        sets: dict = {}
        problems: list[str] = []
        current = self._read_study(study_uid, sets, problems)
        if current is None:
            raise NotFoundError(f"study {study_uid} has no images in the archive")
        others = [
            s
            for s in local_studies_of_patient(self.archive, current.patient_id)
            if s.study_uid != study_uid and current.same_patient(s)
        ]
        ranked = match_protocols(current, others, self.protocols())
        wanted = {f.study_uid for m in ranked[:1] for f in m.wanted_priors()}
        candidates = []
        for s in others:
            if s.study_uid in wanted:
                full = self._read_study(s.study_uid, sets, problems)
                if full is not None:
                    s = replace(full, issuer_of_patient_id=s.issuer_of_patient_id or "")
            candidates.append(s)
        return HangingInputs(current, tuple(candidates), sets, tuple(problems))

    # --- the nodes ------------------------------------------------------------------------------
    def _service(self) -> PriorService:
        book = NodeSettings(self.home).load()
        return PriorService(self.archive, book, self.retrieve_service)

    def find_remote(self, current: StudyFacts) -> list[StudyFacts]:
        """The patient's studies on the configured nodes that are not in the archive."""
        try:
            service = self._service()
        except ValueError as exc:  # a damaged node settings file
            log.warning("priors: %s", exc)
            return []
        if not list(service.book.nodes):
            return []
        search = service.find_priors(current)
        with self._lock:
            self._search = search
        for error in search.errors:
            log.warning("priors: %s", error)
        return [c.facts for c in search.candidates if not c.local]

    def retrieve(self, studies: Sequence[StudyFacts], progress: Callable[[str], None]) -> None:
        """Retrieve ``studies`` (found by :meth:`find_remote`) into the archive."""
        with self._lock:
            search = self._search
        if search is None:
            return
        service = self._service()

        def relay(p) -> None:
            progress(f"Prior {p.index + 1}/{p.total} from {p.node}: {p.message}")

        reports = service.retrieve_priors(studies, search, on_progress=relay)
        for r in reports:
            if not r.complete:
                progress(f"Prior retrieve incomplete: {r.message}")
