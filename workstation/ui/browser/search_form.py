"""The search row of the study browser: patient name (wildcards), ID, study date range with
quick choices, modality, accession, description. It only produces a :class:`StudyQuery`; the
browser runs it.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable

from PySide6.QtCore import QDate, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDateEdit,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from workstation.ui.browser.values import StudyQuery

#: Quick date choices: label -> (days back for the start, days back for the end); None = open.
DATE_CHOICES: dict[str, tuple[int, int] | None] = {
    "Any date": None,
    "Today": (0, 0),
    "Yesterday": (1, 1),
    "Last 7 days": (6, 0),
    "Last 30 days": (29, 0),
    "Custom range": None,
}
CUSTOM = "Custom range"
MODALITIES = ("", "CT", "MR", "CR", "DX", "MG", "US", "NM", "PT", "XA", "RF", "OT", "SR", "SEG")
_DEBOUNCE_MS = 300
_NARROW_CHARS = 100  # below this width (in average characters) the fields take three rows


def _qdate(day: _dt.date) -> QDate:
    return QDate(day.year, day.month, day.day)


def _pydate(day: QDate) -> _dt.date:
    return _dt.date(day.year(), day.month(), day.day())


class StudyQueryFields:
    """What the local search row and a remote node's query form share: the fields ``name``,
    ``patient_id``, ``modality``, ``accession``, ``description``, the date choice and range,
    and ``_today``, read into a :class:`StudyQuery`."""

    def _make_date_fields(self, today: Callable[[], _dt.date]) -> None:
        """The date choice and the custom range (hidden until "Custom range" is chosen)."""
        self.date_choice = QComboBox(objectName="DateChoice")
        self.date_choice.addItems(list(DATE_CHOICES))
        today_q = _qdate(today())
        self.date_from = QDateEdit(today_q.addDays(-7), calendarPopup=True)
        self.date_to = QDateEdit(today_q, calendarPopup=True)
        for edit in (self.date_from, self.date_to):
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.setVisible(False)

    def query(self) -> StudyQuery:
        """The query the fields describe now."""
        low, high = self._date_range()
        return StudyQuery(
            patient_name=self.name.text(),
            patient_id=self.patient_id.text(),
            date_from=low,
            date_to=high,
            modality=self.modality.currentText(),
            accession=self.accession.text(),
            description=self.description.text(),
        )

    def _date_range(self) -> tuple[_dt.date | None, _dt.date | None]:
        choice = self.date_choice.currentText()
        if choice == CUSTOM:
            low, high = _pydate(self.date_from.date()), _pydate(self.date_to.date())
            return (low, high) if low <= high else (high, low)
        span = DATE_CHOICES.get(choice)
        if span is None:
            return None, None
        today = self._today()
        return today - _dt.timedelta(days=span[0]), today - _dt.timedelta(days=span[1])


class SearchForm(StudyQueryFields, QWidget):
    """The search fields; emits :attr:`query_changed` (debounced while typing).

    Parameters
    ----------
    today : callable returning datetime.date
        The clock for the quick date choices (``datetime.date.today`` by default).
    """

    query_changed = Signal(object)  # StudyQuery

    def __init__(
        self,
        today: Callable[[], _dt.date] = _dt.date.today,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._today = today
        self._timer = QTimer(self, singleShot=True, interval=_DEBOUNCE_MS)
        self._timer.timeout.connect(self.submit)

        self.name = self._line("Name: smith* or doe^j*", "PatientName")
        self.patient_id = self._line("Patient ID", "PatientID")
        self.accession = self._line("Accession", "AccessionNumber")
        self.description = self._line("Study description", "StudyDescription")
        self.modality = QComboBox(editable=True, objectName="Modality")
        self.modality.addItems(list(MODALITIES))
        self.modality.lineEdit().setPlaceholderText("Any")
        self.modality.setToolTip("Studies with a series of this modality")
        self.modality.setMinimumContentsLength(4)
        self.modality.currentTextChanged.connect(self._soon)

        self._make_date_fields(today)
        self.date_choice.currentTextChanged.connect(self._date_choice_changed)
        for edit in (self.date_from, self.date_to):
            edit.dateChanged.connect(self._soon)

        search = QPushButton("Search", toolTip="Search now (Enter)")
        search.clicked.connect(self.submit)
        clear = QPushButton("Clear", toolTip="Show every study")
        clear.clicked.connect(self.clear)

        self._dates = QWidget()
        dates = QHBoxLayout(self._dates)
        dates.setContentsMargins(0, 0, 0, 0)
        dates.setSpacing(4)
        dates.addWidget(self.date_choice)
        dates.addWidget(self.date_from)
        dates.addWidget(self.date_to)
        dates.addStretch(1)
        self._mod = QWidget()
        mod = QHBoxLayout(self._mod)
        mod.setContentsMargins(0, 0, 0, 0)
        mod.setSpacing(4)
        mod.addWidget(QLabel("Modality"))
        mod.addWidget(self.modality, 1)
        self._buttons = QWidget()
        buttons = QHBoxLayout(self._buttons)
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.setSpacing(4)
        buttons.addWidget(search)
        buttons.addWidget(clear)
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setHorizontalSpacing(6)
        self._grid.setVerticalSpacing(4)
        self._narrow: bool | None = None
        self._arrange(narrow=False)

    # --- layout: two rows when wide, three in a narrow side panel -----------------------------
    def _arrange(self, narrow: bool) -> None:
        if narrow == self._narrow:
            return
        self._narrow = narrow
        grid = self._grid
        placed = (self.name, self.patient_id, self.accession, self.description, self._dates,
                  self._mod, self._buttons)  # fmt: skip
        for w in placed:
            grid.removeWidget(w)
        if narrow:
            cells = [(self.name, 0, 0, 1, 2), (self.patient_id, 0, 2, 1, 1),
                     (self._dates, 1, 0, 1, 2), (self.accession, 1, 2, 1, 1),
                     (self._mod, 2, 0, 1, 1), (self.description, 2, 1, 1, 1),
                     (self._buttons, 2, 2, 1, 1)]  # fmt: skip
            stretches = (1, 2, 1, 0, 0)
        else:
            cells = [(self.name, 0, 0, 1, 2), (self.patient_id, 0, 2, 1, 1),
                     (self.accession, 0, 3, 1, 1), (self._buttons, 0, 4, 1, 1),
                     (self._dates, 1, 0, 1, 2), (self._mod, 1, 2, 1, 1),
                     (self.description, 1, 3, 1, 1)]  # fmt: skip
            stretches = (2, 1, 1, 2, 0)
        for w, row, column, rows, columns in cells:
            grid.addWidget(w, row, column, rows, columns)
        for column, stretch in enumerate(stretches):
            grid.setColumnStretch(column, stretch)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._arrange(
            narrow=event.size().width() < _NARROW_CHARS * self.fontMetrics().averageCharWidth()
        )

    def _line(self, placeholder: str, name: str) -> QLineEdit:
        edit = QLineEdit(placeholderText=placeholder, objectName=name, clearButtonEnabled=True)
        edit.setToolTip(placeholder + " (* and ? are wildcards)")
        edit.textEdited.connect(self._soon)
        edit.returnPressed.connect(self.submit)
        return edit

    # --- reading and setting ------------------------------------------------------------------
    def set_query(self, query: StudyQuery) -> None:
        """Fill the fields from ``query`` (a date range becomes a custom range) and search."""
        blockers = [self.name, self.patient_id, self.accession, self.description, self.modality,
                    self.date_choice, self.date_from, self.date_to]  # fmt: skip
        for w in blockers:
            w.blockSignals(True)
        try:
            self.name.setText(query.patient_name)
            self.patient_id.setText(query.patient_id)
            self.accession.setText(query.accession)
            self.description.setText(query.description)
            self.modality.setCurrentText(query.modality)
            if query.date_from or query.date_to:
                far = _dt.date(1900, 1, 1)
                self.date_from.setDate(_qdate(query.date_from or far))
                self.date_to.setDate(_qdate(query.date_to or self._today()))
                self.date_choice.setCurrentText(CUSTOM)
            else:
                self.date_choice.setCurrentText("Any date")
            self._show_custom_dates()
        finally:
            for w in blockers:
                w.blockSignals(False)
        self.submit()

    # --- events -------------------------------------------------------------------------------
    def _soon(self, *_: object) -> None:
        self._timer.start()

    def _date_choice_changed(self, _: str) -> None:
        self._show_custom_dates()
        self.submit()

    def _show_custom_dates(self) -> None:
        custom = self.date_choice.currentText() == CUSTOM
        self.date_from.setVisible(custom)
        self.date_to.setVisible(custom)

    def submit(self) -> None:
        """Emit the query now."""
        self._timer.stop()
        self.query_changed.emit(self.query())

    def clear(self) -> None:
        """Empty every field and search for everything."""
        self.set_query(StudyQuery())
