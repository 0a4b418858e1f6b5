"""The study list as a Qt table model over frozen :class:`StudyRow` values, sorted in the model
(the view's header clicks call :meth:`StudyTableModel.sort`; the selection follows the rows).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
)

from workstation.ui.browser.values import StudyRow, format_date, format_person_name, format_time

ROW_ROLE = Qt.ItemDataRole.UserRole + 1  # the StudyRow of a line


@dataclass(frozen=True)
class Column:
    title: str
    text: Callable[[StudyRow], str]
    key: Callable[[StudyRow], Any]
    align: Qt.AlignmentFlag = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
    tooltip: Callable[[StudyRow], str] | None = None


def _modalities(row: StudyRow) -> str:
    return ", ".join(m for m in row.modalities.split("\\") if m)


_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter

COLUMNS: tuple[Column, ...] = (
    Column("Patient name", lambda r: format_person_name(r.patient_name),
           lambda r: format_person_name(r.patient_name).upper(),
           tooltip=lambda r: r.patient_name),
    Column("Patient ID", lambda r: r.patient_id, lambda r: r.patient_id),
    Column("Birth date", lambda r: format_date(r.birth_date), lambda r: r.birth_date),
    Column("Study date", lambda r: format_date(r.study_date),
           lambda r: (r.study_date, r.study_time),
           tooltip=lambda r: " ".join(p for p in (format_date(r.study_date),
                                                  format_time(r.study_time)) if p)),
    Column("Modalities", _modalities, _modalities),
    Column("Description", lambda r: r.description, lambda r: r.description.upper()),
    Column("Accession", lambda r: r.accession, lambda r: r.accession),
    Column("Images", lambda r: str(r.num_images), lambda r: r.num_images, _RIGHT,
           tooltip=lambda r: f"{r.num_images} images in {r.num_series} series"),
)  # fmt: skip
STUDY_DATE_COLUMN = 3


class StudyTableModel(QAbstractTableModel):
    """Studies, one per row; ``data(index, ROW_ROLE)`` gives the :class:`StudyRow`."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._rows: list[StudyRow] = []
        self._sort: tuple[int, Qt.SortOrder] | None = None

    # --- contents -----------------------------------------------------------------------------
    def set_rows(self, rows: Sequence[StudyRow]) -> None:
        """Replace the rows (the current sort order is kept)."""
        self.beginResetModel()
        self._rows = list(rows)
        if self._sort is not None:
            self._sort_rows(*self._sort)
        self.endResetModel()

    def rows(self) -> list[StudyRow]:
        """The rows in display order."""
        return list(self._rows)

    def row_of(self, study_uid: str) -> int:
        """The row showing ``study_uid``, or -1."""
        for i, row in enumerate(self._rows):
            if row.study_uid == study_uid:
                return i
        return -1

    def study(self, row: int) -> StudyRow | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    # --- Qt model -----------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(COLUMNS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section].title
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return COLUMNS[section].align
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = 0) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        column = COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return column.text(row)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return column.align
        if role == Qt.ItemDataRole.ToolTipRole:
            return column.tooltip(row) if column.tooltip else column.text(row) or None
        if role == ROW_ROLE:
            return row
        return None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort by a column (stable: equal keys keep their order)."""
        if not 0 <= column < len(COLUMNS):
            return
        self._sort = (column, order)
        self.layoutAboutToBeChanged.emit()
        old = self.persistentIndexList()
        uids = [self._rows[i.row()].study_uid if i.row() < len(self._rows) else "" for i in old]
        self._sort_rows(column, order)
        where = {r.study_uid: i for i, r in enumerate(self._rows)}
        new = [
            self.index(where[u], i.column()) if u in where else QModelIndex()
            for u, i in zip(uids, old, strict=True)
        ]
        self.changePersistentIndexList(old, new)
        self.layoutChanged.emit()

    def _sort_rows(self, column: int, order: Qt.SortOrder) -> None:
        key = COLUMNS[column].key
        self._rows.sort(key=key, reverse=order == Qt.SortOrder.DescendingOrder)
