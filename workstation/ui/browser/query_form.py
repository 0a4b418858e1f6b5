"""The query form of a remote node's tab: patient name, patient ID, accession, study date range,
modality, description. Unlike the local search row it never queries while the user types (each
query is a C-FIND on someone else's PACS): only Search, Enter or a quick date choice do.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from workstation.ui.browser.search_form import (
    CUSTOM,
    MODALITIES,
    StudyQueryFields,
    _qdate,
)


class RemoteQueryForm(StudyQueryFields, QWidget):
    """The fields of a remote query; emits :attr:`submitted` with a :class:`StudyQuery`.

    Parameters
    ----------
    today : callable returning datetime.date
        The clock for the quick date choices.
    """

    submitted = Signal(object)  # StudyQuery

    def __init__(
        self, today: Callable[[], _dt.date] = _dt.date.today, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._today = today
        self.name = self._line("Name: smith* or doe^j*", "PatientName")
        self.patient_id = self._line("Patient ID", "PatientID")
        self.accession = self._line("Accession", "AccessionNumber")
        self.description = self._line("Study description", "StudyDescription")
        self.modality = QComboBox(editable=True, objectName="Modality")
        self.modality.addItems(list(MODALITIES))
        self.modality.lineEdit().setPlaceholderText("Any")
        self.modality.lineEdit().returnPressed.connect(self.submit)
        self.modality.setMinimumContentsLength(4)
        self._make_date_fields(today)
        self.date_choice.currentTextChanged.connect(self._show_custom_dates)
        self.search_button = QPushButton("Search", toolTip="Query the node (Enter)")
        self.search_button.clicked.connect(self.submit)
        clear = QPushButton("Clear", toolTip="Empty the fields")
        clear.clicked.connect(self.clear)

        dates = QHBoxLayout()
        dates.setSpacing(4)
        dates.addWidget(self.date_choice)
        dates.addWidget(self.date_from)
        dates.addWidget(self.date_to)
        dates.addStretch(1)
        modality = QHBoxLayout()
        modality.setSpacing(4)
        modality.addWidget(QLabel("Modality"))
        modality.addWidget(self.modality, 1)
        buttons = QHBoxLayout()
        buttons.setSpacing(4)
        buttons.addWidget(self.search_button)
        buttons.addWidget(clear)
        # Name | Patient ID | Accession | Search Clear
        # Dates            | Modality  | Description
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(4)
        grid.addWidget(self.name, 0, 0)
        grid.addWidget(self.patient_id, 0, 1)
        grid.addWidget(self.accession, 0, 2)
        grid.addLayout(buttons, 0, 3)
        grid.addLayout(dates, 1, 0)
        grid.addLayout(modality, 1, 1)
        grid.addWidget(self.description, 1, 2, 1, 2)
        for column, stretch in enumerate((3, 2, 2, 0)):
            grid.setColumnStretch(column, stretch)

    def _line(self, placeholder: str, name: str) -> QLineEdit:
        edit = QLineEdit(placeholderText=placeholder, objectName=name, clearButtonEnabled=True)
        edit.setToolTip(placeholder + " (* and ? are wildcards)")
        edit.returnPressed.connect(self.submit)
        return edit

    # --- reading and setting ------------------------------------------------------------------
    def set_range(self, low: _dt.date, high: _dt.date) -> None:
        """Show a custom study date range (inclusive)."""
        self.date_from.setDate(_qdate(low))
        self.date_to.setDate(_qdate(high))
        self.date_choice.setCurrentText(CUSTOM)

    def _show_custom_dates(self, *_: object) -> None:
        custom = self.date_choice.currentText() == CUSTOM
        self.date_from.setVisible(custom)
        self.date_to.setVisible(custom)

    def submit(self) -> None:
        """Emit the query now."""
        self.submitted.emit(self.query())

    def clear(self) -> None:
        """Empty every field (does not query)."""
        for edit in (self.name, self.patient_id, self.accession, self.description):
            edit.clear()
        self.modality.setCurrentText("")
        self.date_choice.setCurrentText("Any date")
