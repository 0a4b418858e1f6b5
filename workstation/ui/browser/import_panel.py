"""Importing into the archive from the GUI: the importer runs on a worker, its per-file
progress (frozen :class:`ImportProgress`) drives a progress bar with rate and ETA and a Cancel
button, and the frozen :class:`ImportReport` becomes a summary with the reasons for what was
not imported. Cancelling keeps what was already imported (the importer commits what is in
flight).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from workstation.archive.importer import Importer, ImportProgress, ImportReport
from workstation.archive.results import AddStatus
from workstation.ui.browser.tasks import TaskRunner, emit_from_worker

log = logging.getLogger(__name__)

_PROGRESS_INTERVAL_S = 0.1  # at most ten progress updates a second reach the GUI


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def progress_text(p: ImportProgress) -> str:
    """``"120 / 400 files · 850 files/s · about 3 s left"``."""
    parts = [f"{p.done} / {p.total} files"]
    if p.rate > 0:
        parts.append(f"{p.rate:.0f} files/s")
    eta = p.eta_s
    if eta is not None and p.done < p.total:
        parts.append(f"about {_duration(eta)} left")
    return " · ".join(parts)


def summary_text(report: ImportReport) -> str:
    """One or two lines: what was imported, what was not, whether it was cancelled."""
    counts = [
        f"{report.count(AddStatus.IMPORTED)} imported",
        f"{report.count(AddStatus.DUPLICATE)} already there",
        f"{report.count(AddStatus.CONFLICT)} conflicts",
        f"{report.count(AddStatus.REJECTED)} rejected",
    ]
    text = " · ".join(counts)
    done = len(report.results)
    if report.cancelled:
        text = f"Cancelled after {done} of {report.total} files (kept): " + text
    elif report.total == 0 and not report.plan.refused:
        text = "Nothing to import: no files found"
    missing = len(report.plan.missing)
    if missing:
        text += f"\n{missing} files listed by the DICOMDIR are missing from the media"
    if report.plan.refused:
        text += "\nRefused: " + "; ".join(f"{p}: {r}" for p, r in report.plan.refused[:3])
    return text


def details_text(report: ImportReport) -> str:
    """Every reason, then every file not imported (for the details box)."""
    lines: list[str] = []
    reasons = report.rejected_reasons
    if reasons:
        lines.append("Rejected:")
        lines += [f"  {n} × {reason}" for reason, n in reasons.items()]
    for path, reason in report.plan.refused:
        lines.append(f"Refused {path}: {reason}")
    conflicts = [r for r in report.results if r.status is AddStatus.CONFLICT]
    if conflicts:
        lines.append("Conflicts (same SOP Instance UID, other content; kept aside):")
        lines += [f"  {r.source}: {r.reason}" for r in conflicts]
    rejected = [r for r in report.results if r.status is AddStatus.REJECTED]
    if rejected:
        lines.append("Rejected files:")
        lines += [f"  {r.source}: {r.reason}" for r in rejected]
    if report.plan.missing:
        lines.append("Missing from the media:")
        lines += [f"  {m}" for m in report.plan.missing]
    return "\n".join(lines)


class ImportPanel(QWidget):
    """Progress, Cancel and the summary of imports; :meth:`start` queues one.

    Parameters
    ----------
    importer : Importer
        Does the work (its archive is the destination).
    """

    started = Signal()
    progressed = Signal(object)  # ImportProgress (throttled)
    finished = Signal(object)  # ImportReport

    def __init__(self, importer: Importer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.importer = importer
        self._runner = TaskRunner(1, "import", self)
        self._runner.finished.connect(self._done)
        self._runner.failed.connect(self._failed)
        self.progressed.connect(self._on_progress)
        self._cancel: threading.Event | None = None
        self._queue: list[list[str]] = []
        self.last_report: ImportReport | None = None

        self.bar = QProgressBar(objectName="ImportProgress", textVisible=True)
        self.bar.setFormat("%p%")
        self.rate = QLabel(objectName="ImportRate")
        self.cancel_button = QPushButton("Cancel", toolTip="Stop; what is imported is kept")
        self.cancel_button.clicked.connect(self.cancel)
        self.summary = QLabel(objectName="ImportSummary", wordWrap=True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details_button = QToolButton(text="Details", checkable=True)
        self.details_button.setToolTip("Reasons for every file not imported")
        self.details = QPlainTextEdit(readOnly=True, objectName="ImportDetails")
        self.details.setMaximumHeight(140)
        self.details_button.toggled.connect(self._show_details)

        running = QHBoxLayout()
        running.setContentsMargins(0, 0, 0, 0)
        running.addWidget(self.bar, 2)
        running.addWidget(self.rate, 3)
        running.addWidget(self.cancel_button)
        done = QHBoxLayout()
        done.setContentsMargins(0, 0, 0, 0)
        done.addWidget(self.summary, 1)
        done.addWidget(self.details_button, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(running)
        layout.addLayout(done)
        layout.addWidget(self.details)
        self._show_running(False)
        self.summary.setVisible(False)
        self.details_button.setVisible(False)
        self.details.setVisible(False)

    # --- control ------------------------------------------------------------------------------
    @property
    def is_running(self) -> bool:
        return self._cancel is not None

    def start(self, paths: Sequence[str]) -> None:
        """Import ``paths`` (files, folders, zips, DICOMDIRs); queued while one runs."""
        paths = [str(p) for p in paths]
        if not paths:
            return
        if self.is_running:
            self._queue.append(paths)
            return
        self._cancel = threading.Event()
        self.bar.setRange(0, 0)  # busy until the plan is known
        self.rate.setText("Looking for files…")
        self._show_running(True)
        self.started.emit()
        self._runner.submit(self._work, paths, self._cancel)

    def cancel(self) -> None:
        """Stop submitting files; what is in flight is committed, everything done is kept."""
        if self._cancel is not None:
            self._cancel.set()
            self.rate.setText("Cancelling: finishing the files in flight…")
            self.cancel_button.setEnabled(False)
            self._queue.clear()

    def shutdown(self) -> None:
        """Cancel and wait for the worker (closing the window)."""
        self._queue.clear()
        if self._cancel is not None:
            self._cancel.set()
        self._runner.shutdown()

    # --- worker side --------------------------------------------------------------------------
    def _work(self, paths: list[str], cancel: threading.Event) -> ImportReport:
        last = 0.0

        def on_progress(p: ImportProgress) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= _PROGRESS_INTERVAL_S or p.done == p.total:
                last = now
                emit_from_worker(self, "progressed", p)  # queued to the GUI thread

        return self.importer.import_paths(paths, on_progress=on_progress, cancel=cancel)

    # --- GUI side -----------------------------------------------------------------------------
    def _show_running(self, running: bool) -> None:
        self.bar.setVisible(running)
        self.rate.setVisible(running)
        self.cancel_button.setVisible(running)
        self.cancel_button.setEnabled(running)

    def _on_progress(self, p: ImportProgress) -> None:
        if self._cancel is None:
            return
        self.bar.setRange(0, max(1, p.total))
        self.bar.setValue(p.done)
        if not self._cancel.is_set():
            self.rate.setText(progress_text(p))

    def _done(self, _token: int, report: ImportReport) -> None:
        self._cancel = None
        self.last_report = report
        self._show_running(False)
        self.summary.setText(summary_text(report))
        self.summary.setVisible(True)
        details = details_text(report)
        self.details.setPlainText(details)
        self.details_button.setVisible(bool(details))
        self._show_details(self.details_button.isChecked())
        self.finished.emit(report)
        if self._queue:
            self.start(self._queue.pop(0))

    def _show_details(self, on: bool) -> None:
        self.details.setVisible(on and bool(self.details.toPlainText()))

    def _failed(self, _token: int, message: str) -> None:
        self._cancel = None
        self._show_running(False)
        self.summary.setText(f"Import failed: {message}")
        self.summary.setVisible(True)
        if self._queue:
            self.start(self._queue.pop(0))
