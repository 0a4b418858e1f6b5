"""The study list of a remote node's tab: C-FIND matches appended as they arrive, with a column
saying what has been retrieved of each."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from workstation.net.find import FindResult
from workstation.ui.browser.values import format_date, format_person_name

_Index = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True)
class RemoteColumn:
    title: str
    keyword: str  # the FindResult attribute shown ("" for the local state)


COLUMNS = (
    RemoteColumn("Patient name", "PatientName"),
    RemoteColumn("Patient ID", "PatientID"),
    RemoteColumn("Birth date", "PatientBirthDate"),
    RemoteColumn("Study date", "StudyDate"),
    RemoteColumn("Modalities", "ModalitiesInStudy"),
    RemoteColumn("Description", "StudyDescription"),
    RemoteColumn("Accession", "AccessionNumber"),
    RemoteColumn("Images", "NumberOfStudyRelatedInstances"),
    RemoteColumn("Local", ""),
)
LOCAL_COLUMN = len(COLUMNS) - 1


def _shown(result: FindResult, keyword: str) -> str:
    value = result.get(keyword)
    if keyword == "PatientName":
        return format_person_name(value)
    if keyword.endswith("Date"):
        return format_date(value)
    if keyword == "ModalitiesInStudy":
        return ", ".join(m for m in value.split("\\") if m)
    return value


class RemoteStudyModel(QAbstractTableModel):
    """Study-level matches of one query, in order of arrival."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._rows: list[FindResult] = []
        self._local: dict[str, str] = {}  # study UID -> local state text

    # --- contents ---------------------------------------------------------------------------------
    def clear(self) -> None:
        self.beginResetModel()
        self._rows = []
        self.endResetModel()

    def append(self, result: FindResult) -> None:
        """Add one match at the end."""
        n = len(self._rows)
        self.beginInsertRows(QModelIndex(), n, n)
        self._rows.append(result)
        self.endInsertRows()

    def rows(self) -> list[FindResult]:
        return list(self._rows)

    def result(self, row: int) -> FindResult:
        return self._rows[row]

    def row_of(self, study_uid: str) -> int:
        """The row of a study, -1 when it is not listed."""
        for i, r in enumerate(self._rows):
            if r.study_instance_uid == study_uid:
                return i
        return -1

    def set_local_state(self, study_uid: str, text: str) -> None:
        """What the "Local" column says of a study ("retrieving 12/40", "in archive"...)."""
        self._local[study_uid] = text
        row = self.row_of(study_uid)
        if row >= 0:
            index = self.index(row, LOCAL_COLUMN)
            self.dataChanged.emit(index, index)

    def local_state(self, study_uid: str) -> str:
        return self._local.get(study_uid, "")

    # --- Qt model -------------------------------------------------------------------------------------
    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt API
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802, B008 - Qt API
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation, role: int = Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section].title if 0 <= section < len(COLUMNS) else None
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        result = self._rows[index.row()]
        column = COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            if index.column() == LOCAL_COLUMN:
                return self._local.get(result.study_instance_uid, "")
            return _shown(result, column.keyword)
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"Study Instance UID {result.study_instance_uid}"
        if role == Qt.ItemDataRole.TextAlignmentRole and column.keyword.startswith("Number"):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None
