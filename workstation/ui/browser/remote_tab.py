"""A remote node's tab in the study browser: query form, study list filled as C-FIND matches
arrive, Retrieve (C-MOVE or C-GET, as the node is set up) with progress and Cancel.

Queries and retrieves run on worker threads (DESIGN rule 3); matches and progress come back as
signals, and a match of a query that has since been replaced is dropped (rule 2). A node that
refuses, hangs up, times out or does not know our AE title is reported in the tab's message line
in words, never raised. The retrieve itself is the application's
(:class:`workstation.app.retrieve_service.RetrieveService`), passed in as a callable, so the
studies land in the local archive; :attr:`RemoteTab.study_retrieved` then tells the local list.
"""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from workstation.net.cancel import CancelToken
from workstation.net.errors import NetError
from workstation.net.find import FindResult, find
from workstation.net.nodes import LocalIdentity, RemoteNode
from workstation.net.retrieve import RetrieveProgress
from workstation.ui.browser.column_widths import fit_columns
from workstation.ui.browser.query_form import RemoteQueryForm
from workstation.ui.browser.remote_model import COLUMNS, RemoteStudyModel
from workstation.ui.browser.tasks import TaskRunner, emit_from_worker
from workstation.ui.browser.values import StudyQuery

log = logging.getLogger(__name__)

#: ``query(node, keys, cancel)``: study-level matches as they arrive.
QueryFunction = Callable[[RemoteNode, Mapping[str, str], CancelToken], Iterable[FindResult]]

_ERROR_STYLE = "color: #ff8a80;"
#: Sample contents that set the initial column widths (the description takes what is left).
_WIDTH_SAMPLES = {
    0: "Smithers-Jones, Waylon",
    1: "PACSMAN12345",
    2: "0000-00-00",
    3: "0000-00-00",
    4: "CT, MR, SR",
    6: "ACC12345678",
    7: "000000",
    8: "retrieving 000/000",
}
_DESCRIPTION_COLUMN = 5


class RetrieveFunction(Protocol):
    """``RetrieveService.retrieve``: fetch a study into the archive, report what happened."""

    def __call__(
        self,
        node: RemoteNode,
        study_uid: str,
        series_uid: str = "",
        *,
        patient_id: str = "",
        on_progress: Callable[[RetrieveProgress], None] | None = None,
        cancel: CancelToken | None = None,
    ) -> Any: ...


@dataclass(frozen=True)
class QueryOutcome:
    """How one query ended: matches counted, or why it failed."""

    seq: int
    count: int
    error: str = ""
    cancelled: bool = False


@dataclass(frozen=True)
class RetrieveOutcome:
    """How one study's retrieve ended (the service's report, read as text)."""

    study_uid: str
    outcome: str  # complete, partial, cancelled, failed
    message: str
    arrived: int


def study_query_function(identity: LocalIdentity) -> QueryFunction:
    """A :data:`QueryFunction` doing study-level C-FINDs as ``identity``."""

    def query(node: RemoteNode, keys: Mapping[str, str], cancel: CancelToken):
        return find(identity, node, "STUDY", keys, cancel=cancel)

    return query


def describe_failure(node: RemoteNode, exc: BaseException) -> str:
    """One line for the user: what went wrong with ``node`` and what to check."""
    if isinstance(exc, NetError):
        return str(exc)
    if isinstance(exc, ValueError):
        return f"The query was not sent: {exc}"
    return f"{node.label}: {type(exc).__name__}: {exc}"


class RemoteTab(QWidget):
    """The query/retrieve panel of one remote node.

    Parameters
    ----------
    node : RemoteNode
    query : QueryFunction
        Runs a study-level C-FIND (:func:`study_query_function` of our identity).
    retrieve : RetrieveFunction or None
        Fetches a study into the local archive; None hides the Retrieve button.
    today : callable returning datetime.date
    on_manage_nodes : callable, optional
        Opens the node list (a "Nodes…" button is shown when given).

    Signals
    -------
    query_finished(QueryOutcome)
        A query ended (the list holds its matches).
    retrieve_finished(RetrieveOutcome)
        One study's retrieve ended.
    study_retrieved(str)
        A study's instances reached the local archive (complete or partial).
    """

    query_finished = Signal(object)
    retrieve_finished = Signal(object)
    study_retrieved = Signal(str)
    _matched = Signal(int, object)  # query seq, FindResult (from the worker)
    _progressed = Signal(str, object)  # study UID, RetrieveProgress (from the worker)
    _retrieved = Signal(object)  # RetrieveOutcome (from the worker)

    def __init__(
        self,
        node: RemoteNode,
        query: QueryFunction,
        retrieve: RetrieveFunction | None = None,
        *,
        today: Callable[[], _dt.date] = _dt.date.today,
        on_manage_nodes: Callable[[], None] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName(f"RemoteTab:{node.name}")
        self.node = node
        self._query_fn = query
        self._retrieve_fn = retrieve
        self._queries = TaskRunner(1, f"query {node.name}", self)
        self._retrieves = TaskRunner(1, f"retrieve {node.name}", self)
        self._queries.finished.connect(self._query_done)
        self._queries.failed.connect(self._query_failed)
        self._retrieves.finished.connect(self._retrieve_done)
        self._retrieves.failed.connect(self._retrieve_failed)
        self._matched.connect(self._add_match)
        self._progressed.connect(self._show_progress)
        self._retrieved.connect(self._one_retrieved)
        self._seq = 0
        self._query_cancel: CancelToken | None = None
        self._retrieve_cancel: CancelToken | None = None
        self._retrieving: list[str] = []
        self._closed = False

        self.form = RemoteQueryForm(today, self)
        self.form.submitted.connect(self.search)
        title = QLabel(f"<b>{node.name}</b> &nbsp; {node.ae_title}@{node.host}:{node.port}"
                       f" &nbsp; retrieve by {node.retrieve_method}")  # fmt: skip
        title.setTextFormat(Qt.TextFormat.RichText)
        head = QHBoxLayout()
        head.addWidget(title, 1)
        if on_manage_nodes is not None:
            nodes = QPushButton("Nodes…", toolTip="Add, edit, remove or test remote nodes")
            nodes.clicked.connect(on_manage_nodes)
            head.addWidget(nodes)

        self.model = RemoteStudyModel(self)
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setHighlightSections(False)
        header.setStretchLastSection(False)
        fit_columns(header, _WIDTH_SAMPLES)
        header.setSectionResizeMode(_DESCRIPTION_COLUMN, QHeaderView.ResizeMode.Stretch)
        self.table.doubleClicked.connect(lambda _index: self.retrieve_selected())
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)

        self.message = QLabel("", wordWrap=True, objectName="RemoteMessage")
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.stop_button = QPushButton("Stop", toolTip="Stop the query (C-CANCEL)")
        self.stop_button.clicked.connect(self.stop_query)
        self.retrieve_button = QPushButton("Retrieve", toolTip="Fetch the selected studies "
                                           f"into the local archive ({node.retrieve_method})")  # fmt: skip
        self.retrieve_button.clicked.connect(self.retrieve_selected)
        self.retrieve_button.setVisible(retrieve is not None)
        self.cancel_button = QPushButton("Cancel", toolTip="Stop the retrieve (what arrived stays)")
        self.cancel_button.clicked.connect(self.cancel_retrieve)
        self.progress = QProgressBar(self)
        self.progress.setTextVisible(True)
        self.progress.hide()
        actions = QHBoxLayout()
        actions.addWidget(self.progress, 1)
        actions.addStretch(0)
        actions.addWidget(self.stop_button)
        actions.addWidget(self.retrieve_button)
        actions.addWidget(self.cancel_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        layout.addLayout(head)
        layout.addWidget(self.form)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.message)  # its own row: a node's error wraps at full width
        layout.addLayout(actions)
        self._set_message("Enter search keys and press Search (nothing is asked until then).")
        self._update_buttons()

    # --- state ------------------------------------------------------------------------------------
    @property
    def querying(self) -> bool:
        return self._query_cancel is not None

    @property
    def retrieving(self) -> bool:
        return self._retrieve_cancel is not None

    def _set_message(self, text: str, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet(_ERROR_STYLE if error else "")
        self.message.setProperty("error", error)

    def _update_buttons(self, *_: object) -> None:
        selected = bool(self.table.selectionModel().selectedRows())
        self.stop_button.setVisible(self.querying)
        self.retrieve_button.setEnabled(selected and not self.retrieving)
        self.cancel_button.setVisible(self.retrieving)

    # --- querying ---------------------------------------------------------------------------------
    def search(self, query: StudyQuery | None = None) -> None:
        """Query the node (the form's fields by default); the list fills as matches arrive."""
        if self._closed:
            return
        query = query if query is not None else self.form.query()
        self.stop_query()
        self._seq += 1
        self.model.clear()
        cancel = self._query_cancel = CancelToken()
        self._set_message(f"Querying {self.node.label}…")
        self._queries.submit(self._run_query, self._seq, query.to_keys(), cancel)
        self._update_buttons()

    def _run_query(self, seq: int, keys: dict[str, str], cancel: CancelToken) -> QueryOutcome:
        """On the worker: stream the matches to the GUI thread."""
        count = 0
        try:
            for result in self._query_fn(self.node, keys, cancel):
                if cancel.cancelled or self._closed:
                    break
                emit_from_worker(self, "_matched", seq, result)
                count += 1
        except Exception as exc:  # noqa: BLE001 - every failure is shown in the tab
            if not isinstance(exc, NetError | ValueError):
                log.exception("query of %s", self.node.label)
            return QueryOutcome(seq, count, describe_failure(self.node, exc), cancel.cancelled)
        return QueryOutcome(seq, count, "", cancel.cancelled)

    def _add_match(self, seq: int, result: FindResult) -> None:
        if seq == self._seq:
            self.model.append(result)
            n = self.model.rowCount()
            self._set_message(f"Querying {self.node.label}… {n} stud{'y' if n == 1 else 'ies'}")

    def _query_done(self, _token: int, outcome: QueryOutcome) -> None:
        if outcome.seq != self._seq:
            return  # a newer query replaced it
        self._query_cancel = None
        n = self.model.rowCount()
        found = f"{n} stud{'y' if n == 1 else 'ies'} on {self.node.name}"
        if outcome.error:
            text = outcome.error if not n else f"{found}, then: {outcome.error}"
            self._set_message(text, error=True)
        elif outcome.cancelled:
            self._set_message(f"{found} (stopped)")
        else:
            self._set_message(found)
        self._update_buttons()
        self.query_finished.emit(outcome)

    def stop_query(self) -> None:
        """Cancel the running query (C-CANCEL); what arrived stays listed."""
        if self._query_cancel is not None:
            self._query_cancel.cancel()

    # --- retrieving -------------------------------------------------------------------------------
    def selected_studies(self) -> list[FindResult]:
        rows = sorted(i.row() for i in self.table.selectionModel().selectedRows())
        return [self.model.result(r) for r in rows]

    def retrieve_selected(self) -> None:
        """Retrieve the selected studies, one after the other."""
        studies = [r for r in self.selected_studies() if r.study_instance_uid]
        if self._retrieve_fn is None or self.retrieving or not studies or self._closed:
            return
        cancel = self._retrieve_cancel = CancelToken()
        for r in studies:
            self.model.set_local_state(r.study_instance_uid, "waiting")
        self.progress.setRange(0, 0)
        self.progress.setFormat("connecting…")
        self.progress.show()
        self._set_message(f"Retrieving {len(studies)} stud{'y' if len(studies) == 1 else 'ies'}"
                          f" from {self.node.name} by {self.node.retrieve_method}…")  # fmt: skip
        wanted = [(r.study_instance_uid, r.get("PatientID")) for r in studies]
        self._retrieving = [uid for uid, _ in wanted]
        self._retrieves.submit(self._run_retrieve, wanted, cancel)
        self._update_buttons()

    def _run_retrieve(self, studies: list[tuple[str, str]], cancel: CancelToken) -> list:
        """On the worker: each study in turn; progress and outcomes go to the GUI thread."""
        outcomes = []
        for study_uid, patient_id in studies:
            if self._closed:
                break
            if cancel.cancelled:  # not started: say so, the row shows it
                outcome = RetrieveOutcome(study_uid, "cancelled", f"study {study_uid}: "
                                          "cancelled before it was asked for", 0)  # fmt: skip
                outcomes.append(outcome)
                emit_from_worker(self, "_retrieved", outcome)
                continue

            def relay(p: RetrieveProgress, uid: str = study_uid) -> None:
                emit_from_worker(self, "_progressed", uid, p)

            emit_from_worker(self, "_progressed", study_uid, None)
            try:
                report = self._retrieve_fn(self.node, study_uid, patient_id=patient_id,
                                           on_progress=relay, cancel=cancel)  # fmt: skip
                outcome = RetrieveOutcome(study_uid, str(report.outcome), str(report.message),
                                          int(report.arrived))  # fmt: skip
            except Exception as exc:  # noqa: BLE001 - shown in the tab
                log.exception("retrieve of %s from %s", study_uid, self.node.label)
                outcome = RetrieveOutcome(study_uid, "failed", describe_failure(self.node, exc), 0)
            outcomes.append(outcome)
            emit_from_worker(self, "_retrieved", outcome)
        return outcomes

    def _show_progress(self, study_uid: str, p: RetrieveProgress | None) -> None:
        if p is None:
            self.model.set_local_state(study_uid, "retrieving")
            return
        total = p.total
        done = max(p.done, p.received)
        if total:
            self.progress.setRange(0, total)
            self.progress.setValue(min(done, total))
            self.progress.setFormat(f"{done}/{total}")
            self.model.set_local_state(study_uid, f"retrieving {done}/{total}")
        else:
            self.progress.setRange(0, 0)
            self.progress.setFormat(f"{done} received" if done else "waiting for the node…")

    def _one_retrieved(self, outcome: RetrieveOutcome) -> None:
        state = {"complete": "in archive", "partial": "partial", "cancelled": "cancelled"}
        self.model.set_local_state(outcome.study_uid, state.get(outcome.outcome, "failed"))
        self._set_message(outcome.message, error=outcome.outcome == "failed")
        if outcome.arrived or outcome.outcome == "complete":
            self.study_retrieved.emit(outcome.study_uid)
        self.retrieve_finished.emit(outcome)

    def _retrieve_done(self, _token: int, outcomes: list) -> None:
        self._retrieve_cancel = None
        self.progress.hide()
        for uid in self._retrieving:
            if self.model.local_state(uid) == "waiting":
                self.model.set_local_state(uid, "")
        self._retrieving = []
        if len(outcomes) > 1:
            good = sum(o.outcome == "complete" for o in outcomes)
            bad = [o for o in outcomes if o.outcome != "complete"]
            text = f"{good} of {len(outcomes)} studies retrieved completely"
            self._set_message(text + (f"; {bad[-1].message}" if bad else ""), error=bool(bad))
        self._update_buttons()

    def cancel_retrieve(self) -> None:
        """Stop the retrieve (C-CANCEL); the instances that arrived stay in the archive."""
        if self._retrieve_cancel is not None:
            self._retrieve_cancel.cancel()
            self._set_message("Cancelling the retrieve…")

    def _query_failed(self, _token: int, message: str) -> None:
        self._query_cancel = None
        self._set_message(f"{self.node.label}: {message}", error=True)
        self._update_buttons()

    def _retrieve_failed(self, token: int, message: str) -> None:
        self._retrieve_done(token, [])
        self._set_message(f"{self.node.label}: {message}", error=True)

    # --- life -------------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Cancel what runs and wait for the workers (nothing is emitted afterwards)."""
        self._closed = True
        for token in (self._query_cancel, self._retrieve_cancel):
            if token is not None:
                token.cancel()
        self._queries.shutdown()
        self._retrieves.shutdown()


__all__ = ["COLUMNS", "QueryOutcome", "RemoteTab", "RetrieveOutcome", "study_query_function"]
