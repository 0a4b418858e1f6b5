"""Open a CD/DVD or a folder *without importing*: browse Patient -> Study -> Series and read
the files in place, or import the media into the archive.

The scan (a DICOMDIR, or the headers of every file) runs on a worker with progress and a
Cancel button; an unreadable or refused DICOMDIR, or a folder without DICOM files, is said in
the panel. Series whose files the DICOMDIR lists but the media lacks are flagged.
"""

from __future__ import annotations

import os
import threading
import time

from PySide6.QtCore import QModelIndex, Qt, Signal, Slot
from PySide6.QtGui import QCloseEvent, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QStyle,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from workstation.archive.importer import Importer, ImportReport
from workstation.ui.browser.column_widths import fit_columns
from workstation.ui.browser.import_panel import ImportPanel
from workstation.ui.browser.media_scan import MediaPatient, MediaScan, MediaStudy, scan_path
from workstation.ui.browser.tasks import TaskRunner, emit_from_worker
from workstation.ui.browser.values import (
    SeriesEntry,
    format_date,
    format_person_name,
    format_time,
)

ITEM_ROLE = Qt.ItemDataRole.UserRole + 1  # MediaPatient, MediaStudy or SeriesEntry
PATIENT_ROLE = Qt.ItemDataRole.UserRole + 2  # the patient label of a study or series
COLUMNS = ("Patient / Study / Series", "Date", "Modality", "Images", "Missing")
_PROGRESS_INTERVAL_S = 0.1


def patient_label(p: MediaPatient) -> str:
    name = format_person_name(p.name) or "(no name)"
    return f"{name} ({p.patient_id})" if p.patient_id else name


class MediaBrowser(QWidget):
    """A CD/DVD or folder, read in place.

    Parameters
    ----------
    importer : Importer or None
        For "Import this media"; without one the button is hidden.
    parent : QWidget or None

    Signals
    -------
    series_activated(SeriesRequest)
        A series was double-clicked: its files where they are (nothing copied).
    study_activated(str, list)
        A study was double-clicked: its UID and a SeriesRequest per series that has files.
    scan_finished(MediaScan)
        The tree now shows this scan (or its error).
    import_finished(ImportReport)
    """

    series_activated = Signal(object)
    study_activated = Signal(str, list)
    scan_finished = Signal(object)
    import_finished = Signal(object)
    _scan_progress = Signal(int, int, int)  # token, done, total (from the worker)

    def __init__(self, importer: Importer | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("MediaBrowser")
        self._runner = TaskRunner(1, "media scan", self)
        self._runner.finished.connect(self._scan_done)
        self._runner.failed.connect(self._scan_failed)
        self._scan_progress.connect(self._on_progress)
        self._token = 0
        self._cancel: threading.Event | None = None
        self._closed = False
        self.scan: MediaScan | None = None

        self.title = QLabel("Open a CD/DVD or a folder to browse it without importing",
                            objectName="MediaTitle", wordWrap=True)  # fmt: skip
        self.bar = QProgressBar(textVisible=True)
        self.bar.setFormat("%v / %m files")
        self.cancel_button = QPushButton("Cancel", toolTip="Stop reading this folder")
        self.cancel_button.clicked.connect(self.cancel_scan)
        self.message = QLabel(objectName="MediaMessage", wordWrap=True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.model = QStandardItemModel(0, len(COLUMNS), self)
        self.model.setHorizontalHeaderLabels(list(COLUMNS))
        self.tree = QTreeView(objectName="MediaTree")
        self.tree.setModel(self.model)
        self.tree.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.tree.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.tree.setAlternatingRowColors(True)
        self.tree.setUniformRowHeights(True)
        self.tree.activated.connect(self._activated)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        fit_columns(header, {1: "0000-00-00 00:00", 2: "CT, MR", 3: "00000", 4: "00000"})

        self.import_button = QPushButton("Import this media", objectName="ImportMedia")
        self.import_button.setToolTip("Copy these studies into the local archive")
        self.import_button.clicked.connect(self.import_media)
        self.import_button.setEnabled(False)
        self.import_panel = ImportPanel(importer, self) if importer is not None else None
        if self.import_panel is None:
            self.import_button.setVisible(False)
        else:
            self.import_panel.finished.connect(self.import_finished)

        scanning = QHBoxLayout()
        scanning.addWidget(self.bar, 1)
        scanning.addWidget(self.cancel_button)
        bottom = QHBoxLayout()
        bottom.addStretch(1)
        bottom.addWidget(self.import_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        layout.addWidget(self.title)
        layout.addLayout(scanning)
        layout.addWidget(self.message)
        layout.addWidget(self.tree, 1)
        layout.addLayout(bottom)
        if self.import_panel is not None:
            layout.addWidget(self.import_panel)
        self._show_scanning(False)
        self.message.setVisible(False)

    # --- scanning -----------------------------------------------------------------------------
    @Slot(str)
    def open_path(self, path: str | os.PathLike[str]) -> None:
        """Read ``path`` (a CD/DVD root, a folder, a DICOMDIR) on a worker and show its tree."""
        if self._closed:
            return
        if self._cancel is not None:
            self._cancel.set()  # the scan before this one is no longer wanted
        path = os.fspath(path)
        self._cancel = threading.Event()
        self.scan = None
        self.model.removeRows(0, self.model.rowCount())
        self.import_button.setEnabled(False)
        self.title.setText(f"Reading {path}…")
        self.message.setVisible(False)
        self.bar.setRange(0, 0)
        self._show_scanning(True)
        self._token += 1
        self._runner.submit(self._work, path, self._cancel, self._token)

    def _work(self, path: str, cancel: threading.Event, token: int) -> tuple[int, MediaScan]:
        last = 0.0

        def progress(done: int, total: int) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= _PROGRESS_INTERVAL_S or done == total:
                last = now
                emit_from_worker(self, "_scan_progress", token, done, total)

        return token, scan_path(path, progress, cancel)

    @Slot()
    def cancel_scan(self) -> None:
        """Stop reading headers; what was read so far is shown."""
        if self._cancel is not None:
            self._cancel.set()

    def _on_progress(self, token: int, done: int, total: int) -> None:
        if token == self._token:
            self.bar.setRange(0, max(1, total))
            self.bar.setValue(done)

    def _scan_done(self, _token: int, value: tuple[int, MediaScan]) -> None:
        token, scan = value
        if token != self._token:  # another path was opened since
            return
        self._cancel = None
        self._show_scanning(False)
        self.scan = scan
        self._show(scan)
        self.scan_finished.emit(scan)

    def _scan_failed(self, _token: int, message: str) -> None:
        self._cancel = None
        self._show_scanning(False)
        self._say(f"Cannot read this folder: {message}")

    def _show_scanning(self, on: bool) -> None:
        self.bar.setVisible(on)
        self.cancel_button.setVisible(on)

    def _say(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))

    # --- the tree -----------------------------------------------------------------------------
    def _show(self, scan: MediaScan) -> None:
        source = "DICOMDIR" if scan.dicomdir else "folder (headers read)"
        self.title.setText(f"{scan.root} · {source}")
        notes = []
        if scan.error:
            notes.append(scan.error)
        if scan.cancelled:
            notes.append(f"Stopped: only part of the {scan.files_seen} files were read")
        if scan.missing:
            notes.append(
                f"{len(scan.missing)} of the {scan.files_seen} files the DICOMDIR lists are "
                "missing from the media; their series are flagged"
            )
        if scan.problems:
            notes.append(f"{len(scan.problems)} files skipped (not DICOM or unreadable)")
        self._say("\n".join(notes))
        warn = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        for patient in scan.patients:
            label = patient_label(patient)
            born = format_date(patient.birth_date)
            p_item = self._row(self.model.invisibleRootItem(), patient, label,
                               [label + (f" · born {born}" if born else ""), "", "",
                                str(sum(s.image_count for s in patient.studies)),
                                _missing(sum(s.missing for s in patient.studies))])  # fmt: skip
            for study in patient.studies:
                s_item = self._row(p_item, study, label, [
                    study.description or "(no description)",
                    " ".join(p for p in (format_date(study.date), format_time(study.time)) if p),
                    ", ".join(dict.fromkeys(s.modality for s in study.series if s.modality)),
                    str(study.image_count), _missing(study.missing),
                ])  # fmt: skip
                for entry in study.series:
                    e_item = self._row(s_item, entry, label, [
                        entry.label, "", entry.modality, str(entry.image_count),
                        _missing(entry.missing),
                    ])  # fmt: skip
                    if entry.missing:
                        self._flag(e_item, warn, f"{entry.missing} of "
                                   f"{entry.missing + entry.image_count} files of this series "
                                   "are missing from the media")  # fmt: skip
                if study.missing:
                    self._flag(s_item, warn, f"{study.missing} files of this study are missing")
        self.tree.expandToDepth(1)
        self.import_button.setEnabled(bool(scan.patients) and not scan.error)

    def _flag(self, item: QStandardItem, icon, tip: str) -> None:
        """The warning sign in the Missing column (the names stay aligned)."""
        parent = item.parent() or self.model.invisibleRootItem()
        missing = parent.child(item.row(), 4)
        missing.setIcon(icon)
        missing.setToolTip(tip)
        item.setToolTip(tip)

    def _row(self, parent: QStandardItem, value, patient: str, texts: list[str]) -> QStandardItem:
        items = [QStandardItem(t) for t in texts]
        for column, item in enumerate(items):
            item.setData(value, ITEM_ROLE)
            item.setData(patient, PATIENT_ROLE)
            if column >= 3:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if column:
                item.setToolTip(texts[column])
        items[0].setToolTip(texts[0])
        parent.appendRow(items)
        return items[0]

    def _activated(self, index: QModelIndex) -> None:
        value = index.data(ITEM_ROLE)
        patient = index.data(PATIENT_ROLE) or ""
        if isinstance(value, SeriesEntry):
            if not value.paths:
                self._say(f"{value.label}: none of its files are on the media")
                return
            self.series_activated.emit(value.request(patient))
        elif isinstance(value, MediaStudy):
            requests = [s.request(patient) for s in value.series if s.paths]
            if requests:
                self.study_activated.emit(value.study_uid, requests)

    # --- importing ----------------------------------------------------------------------------
    @Slot()
    def import_media(self) -> None:
        """Import what is open (through its DICOMDIR when it has one)."""
        if self.import_panel is None or self.scan is None:
            return
        self.import_panel.start([self.scan.dicomdir or self.scan.root])

    def last_import(self) -> ImportReport | None:
        return self.import_panel.last_report if self.import_panel else None

    # --- lifetime -----------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop the scan and an import, wait for the workers."""
        if self._closed:
            return
        self._closed = True
        if self._cancel is not None:
            self._cancel.set()
        self._runner.shutdown()
        if self.import_panel is not None:
            self.import_panel.shutdown()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self.shutdown()
        super().closeEvent(event)


def _missing(n: int) -> str:
    return str(n) if n else ""
