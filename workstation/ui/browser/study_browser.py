"""The local archive's study browser: search row, sortable study list, series tiles with
thumbnails, import buttons with progress; hands series and studies to the viewer as
:class:`~workstation.ui.series_request.SeriesRequest` values.

Every archive read, thumbnail rendering and import runs on a worker (DESIGN rule 3); answers
are frozen values, and one for a search, a study or a thumbnail that is no longer wanted is
dropped (rule 2).
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import time
from collections.abc import Callable, Sequence

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QStorageInfo, Qt, Signal, Slot
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from workstation.archive.archive import Archive
from workstation.archive.importer import Importer, ImportProgress, ImportReport
from workstation.ui.browser.archive_jobs import MAX_STUDIES, load_study_detail, run_query
from workstation.ui.browser.column_widths import fit_columns
from workstation.ui.browser.import_panel import ImportPanel
from workstation.ui.browser.search_form import SearchForm
from workstation.ui.browser.series_panel import (
    THUMB_SIZE,
    SeriesListModel,
    SeriesPanel,
    placeholder_pixmap,
    thumbnail_pixmap,
)
from workstation.ui.browser.study_model import STUDY_DATE_COLUMN, StudyTableModel
from workstation.ui.browser.tasks import TaskRunner
from workstation.ui.browser.thumbnails import ThumbnailCache, render_thumbnail
from workstation.ui.browser.values import (
    QueryResult,
    SeriesEntry,
    StudyDetail,
    StudyQuery,
    Thumbnail,
)

log = logging.getLogger(__name__)

_LIVE_REFRESH_S = 2.0  # how often the list is refreshed while an import runs

#: Sample contents that set the initial column widths (the description takes what is left).
_WIDTH_SAMPLES = {
    0: "Smithers-Jones, Waylon",
    1: "PACSMAN12345",
    2: "0000-00-00",
    3: "0000-00-00",
    4: "CT, MR, SR",
    6: "ACC12345678",
    7: "000000",
}


class StudyBrowser(QWidget):
    """The archive's studies and series.

    Parameters
    ----------
    archive : Archive
        Queried on worker threads (``find`` reads through a connection per thread).
    importer : Importer or None
        Runs the imports (default ``Importer(archive)``).
    today : callable returning datetime.date
        The clock for "Today" / "Last 7 days".
    parent : QWidget or None

    Signals
    -------
    series_activated(SeriesRequest)
        A series tile was double-clicked (or Enter).
    study_activated(str, list)
        A study was double-clicked: its UID and one SeriesRequest per series, in series-number
        order.
    search_finished(QueryResult)
        The study list now shows this answer.
    series_listed(StudyDetail)
        The series panel now shows this study.
    thumbnail_ready(str)
        The thumbnail of this series UID is shown (or its "no image" placeholder).
    import_finished(ImportReport)
        An import ended (also when cancelled); the list has been refreshed.
    """

    series_activated = Signal(object)
    study_activated = Signal(str, list)
    search_finished = Signal(object)
    series_listed = Signal(object)
    thumbnail_ready = Signal(str)
    import_finished = Signal(object)

    def __init__(
        self,
        archive: Archive,
        importer: Importer | None = None,
        *,
        today: Callable[[], _dt.date] = _dt.date.today,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("StudyBrowser")
        self.archive = archive
        self._queries = TaskRunner(1, "study query", self)
        self._details = TaskRunner(1, "study detail", self)
        self._thumbs = TaskRunner(1, "thumbnail", self)
        self._queries.finished.connect(self._query_done)
        self._queries.failed.connect(self._job_failed)
        self._details.finished.connect(self._detail_done)
        self._details.failed.connect(self._job_failed)
        self._thumbs.finished.connect(self._thumbnail_done)
        self._query = StudyQuery()
        self._query_seq = 0
        self._detail_token = 0
        self._detail: StudyDetail | None = None
        self._pending_activation = ""
        self._cache = ThumbnailCache()
        self._closed = False
        #: How many answers were dropped because a newer search had been asked for.
        self.stale_dropped = 0

        self.form = SearchForm(today, self)
        self.form.query_changed.connect(self.search)

        self.model = StudyTableModel(self)
        self.table = QTableView(objectName="StudyTable")
        self.table.setModel(self.model)
        self._setup_table()

        self.series_model = SeriesListModel(self)
        self.series_panel = SeriesPanel()
        self.series_panel.setModel(self.series_model)
        self.series_panel.entry_activated.connect(self._series_entry_activated)

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(self.series_panel)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setChildrenCollapsible(False)

        self.import_panel = ImportPanel(importer or Importer(archive), self)
        self.import_panel.finished.connect(self._import_done)
        self.import_panel.progressed.connect(self._import_progressed)
        self._last_refresh = 0.0
        self.status = QLabel(objectName="BrowserStatus")
        buttons = QHBoxLayout()
        buttons.setSpacing(4)
        buttons.addWidget(QLabel("Import:"))
        for text, tip, slot in (
            ("Folder…", "Import every DICOM file under a folder", self._import_folder),
            ("Files…", "Import DICOM files", self._import_files),
            ("Zip…", "Import the DICOM files of zip archives", self._import_zip),
            ("CD/DVD…", "Import a CD or DVD through its DICOMDIR", self._import_media),
        ):
            button = QPushButton(text, toolTip=tip)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.status)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        layout.addWidget(self.form)
        layout.addWidget(splitter, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.import_panel)
        self.search()

    def _setup_table(self) -> None:
        t = self.table
        t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        t.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        t.setAlternatingRowColors(True)
        t.setWordWrap(False)
        t.setTextElideMode(Qt.TextElideMode.ElideRight)
        t.setShowGrid(False)
        t.verticalHeader().setVisible(False)
        t.verticalHeader().setDefaultSectionSize(t.fontMetrics().height() + 8)
        header = t.horizontalHeader()
        header.setHighlightSections(False)
        header.setStretchLastSection(False)
        fit_columns(header, _WIDTH_SAMPLES)
        header.setSectionResizeMode(5, QHeaderView.ResizeMode.Stretch)
        header.setSortIndicator(STUDY_DATE_COLUMN, Qt.SortOrder.DescendingOrder)
        t.setSortingEnabled(True)
        t.selectionModel().currentRowChanged.connect(self._current_changed)
        t.activated.connect(self._study_index_activated)

    # --- searching ----------------------------------------------------------------------------
    @Slot()
    @Slot(object)
    def search(self, query: StudyQuery | None = None) -> None:
        """Run ``query`` (default: what the search row says) on a worker."""
        if self._closed:
            return
        self._query = query if isinstance(query, StudyQuery) else self.form.query()
        self._query_seq += 1
        self._queries.submit(run_query, self.archive, self._query, self._query_seq)

    @Slot()
    def refresh(self) -> None:
        """Search again with the current query and re-list the selected study's series
        (after an import, or when the listener received images)."""
        self.search(self._query)

    def set_query(self, query: StudyQuery) -> None:
        """Fill the search row and search."""
        self.form.set_query(query)

    def current_query(self) -> StudyQuery:
        return self._query

    def _query_done(self, _token: int, result: QueryResult) -> None:
        if result.token != self._query_seq:  # a newer search was asked for: drop this one
            self.stale_dropped += 1
            return
        selected = self.selected_study_uid()
        self.model.set_rows(result.rows)
        row = self.model.row_of(selected) if selected else -1
        if row >= 0:
            self.table.selectionModel().setCurrentIndex(
                self.model.index(row, 0),
                QItemSelectionModel.SelectionFlag.ClearAndSelect
                | QItemSelectionModel.SelectionFlag.Rows,
            )
        elif selected:
            self._show_detail(None)
        self._show_status(result)
        self.search_finished.emit(result)

    def _show_status(self, result: QueryResult) -> None:
        n = len(result.rows)
        if result.error:
            text = f"Search not possible: {result.error}"
        elif n == 0 and not result.query.to_keys():
            text = "The archive is empty: import a folder, files, a zip or a CD/DVD"
        elif n == 0:
            text = "No study matches"
        else:
            text = f"{n} stud{'y' if n == 1 else 'ies'}"
            if n >= MAX_STUDIES:
                text += f" (the first {MAX_STUDIES}: narrow the search)"
        self.status.setText(text)

    def _job_failed(self, _token: int, message: str) -> None:
        self.status.setText(f"Archive error: {message}")

    # --- the selected study -------------------------------------------------------------------
    def selected_study_uid(self) -> str:
        row = self.model.study(self.table.currentIndex().row())
        return row.study_uid if row else ""

    def select_study(self, study_uid: str) -> bool:
        """Make ``study_uid`` the current study (lists its series); False when not listed."""
        row = self.model.row_of(study_uid)
        if row < 0:
            return False
        self.table.selectRow(row)
        self.table.setCurrentIndex(self.model.index(row, 0))
        return True

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        row = self.model.study(current.row())
        if row is None:
            self._show_detail(None)
            return
        self._load_detail(row.study_uid, row.patient_label)

    def _load_detail(self, study_uid: str, patient: str) -> None:
        self._thumbs.clear()  # thumbnails of the study left behind are no longer wanted
        self._detail_token = self._details.submit(
            load_study_detail, self.archive, study_uid, patient
        )

    def _detail_done(self, token: int, detail: StudyDetail) -> None:
        if token != self._detail_token or detail.study_uid != self.selected_study_uid():
            self.stale_dropped += 1
            return
        self._show_detail(detail)
        if self._pending_activation == detail.study_uid:
            self._pending_activation = ""
            self.study_activated.emit(detail.study_uid, detail.requests())

    def _show_detail(self, detail: StudyDetail | None) -> None:
        self._detail = detail
        entries = detail.series if detail else ()
        self.series_model.set_entries(entries)
        if detail is None:
            return
        if detail.error:
            self.status.setText(f"Cannot list the series: {detail.error}")
        dpr = self.devicePixelRatioF()
        px = round(THUMB_SIZE * dpr)
        for entry in entries:
            key = (entry.series_uid, entry.image_count, px)
            cached = self._cache.get(key)
            if cached is not None:
                self._apply_thumbnail(entry.series_uid, *cached)
                continue
            self.series_model.set_placeholder(
                entry.series_uid, placeholder_pixmap("…", THUMB_SIZE, dpr, self.palette())
            )
            self._thumbs.submit(self._thumbnail_job, entry, px, dpr)
        self.series_listed.emit(detail)

    @staticmethod
    def _thumbnail_job(entry: SeriesEntry, px: int, dpr: float) -> tuple:
        thumb = render_thumbnail(entry.series_uid, entry.paths, px)
        return (entry.series_uid, entry.image_count, px), thumb, dpr

    def _thumbnail_done(self, _token: int, value: tuple) -> None:
        key, thumb, dpr = value
        thumb: Thumbnail
        pixmap = thumbnail_pixmap(thumb, THUMB_SIZE, dpr)
        self._cache.put(key, (pixmap, thumb.error))
        if self._detail and any(s.series_uid == key[0] for s in self._detail.series):
            self._apply_thumbnail(key[0], pixmap, thumb.error)

    def _apply_thumbnail(self, series_uid: str, pixmap, error: str) -> None:
        if pixmap is not None:
            self.series_model.set_thumbnail(series_uid, pixmap)
        else:
            dpr = self.devicePixelRatioF()
            self.series_model.set_placeholder(
                series_uid,
                placeholder_pixmap("no image", THUMB_SIZE, dpr, self.palette()),
                note=error,
            )
        self.thumbnail_ready.emit(series_uid)

    # --- activation ---------------------------------------------------------------------------
    def _study_index_activated(self, index: QModelIndex) -> None:
        row = self.model.study(index.row())
        if row is None:
            return
        if self._detail is not None and self._detail.study_uid == row.study_uid:
            self.study_activated.emit(row.study_uid, self._detail.requests())
            return
        self._pending_activation = row.study_uid  # sent when its series are listed
        if self.selected_study_uid() != row.study_uid:
            self.select_study(row.study_uid)

    def _series_entry_activated(self, entry: SeriesEntry) -> None:
        patient = self._detail.patient if self._detail else ""
        self.series_activated.emit(entry.request(patient))

    # --- importing ----------------------------------------------------------------------------
    @Slot(list)
    def import_paths(self, paths: Sequence[str]) -> None:
        """Import files, folders, zips or DICOMDIRs (drag and drop lands here)."""
        self.import_panel.start([os.fspath(p) for p in paths])

    def _import_progressed(self, progress: ImportProgress) -> None:
        """During a long import, show the studies as they arrive (every few seconds)."""
        now = time.monotonic()
        if progress.imported and now - self._last_refresh >= _LIVE_REFRESH_S:
            self._last_refresh = now
            self.refresh()

    def _import_done(self, report: ImportReport) -> None:
        self.refresh()
        self.import_finished.emit(report)

    def _import_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Import a folder")
        if folder:
            self.import_paths([folder])

    def _import_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Import DICOM files")
        if files:
            self.import_paths(files)

    def _import_zip(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Import zip files", "", "Zip (*.zip)")
        if files:
            self.import_paths(files)

    def _import_media(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Import a CD/DVD", optical_media_root())
        if folder:
            self.import_paths([folder])

    # --- lifetime -----------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Cancel an import and wait for the workers (call before closing the archive)."""
        if self._closed:
            return
        self._closed = True
        self.import_panel.shutdown()
        for runner in (self._queries, self._details, self._thumbs):
            runner.shutdown()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self.shutdown()
        super().closeEvent(event)


def optical_media_root() -> str:
    """Where a CD/DVD is mounted (the first ISO 9660 / UDF volume), else the home folder."""
    for volume in QStorageInfo.mountedVolumes():
        fs = bytes(volume.fileSystemType().data()).decode(errors="replace").lower()
        if volume.isValid() and volume.isReady() and fs in ("iso9660", "udf"):
            return volume.rootPath()
    return os.path.expanduser("~")
