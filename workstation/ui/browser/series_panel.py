"""The series of the selected study as tiles: thumbnail, number, modality, description, count.

:class:`SeriesListModel` holds the frozen :class:`SeriesEntry` values and the thumbnails the
browser hands it; :class:`SeriesPanel` is the icon view. Placeholders are drawn in the palette's
colours, so the panel follows a dark or a light theme.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QImage, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListView, QWidget

from workstation.ui.browser.values import SeriesEntry, Thumbnail

ENTRY_ROLE = Qt.ItemDataRole.UserRole + 1  # the SeriesEntry of a tile
THUMB_SIZE = 112  # logical pixels; times the device pixel ratio when rendered


def tile_text(entry: SeriesEntry) -> str:
    """Three short lines under a thumbnail."""
    head = " · ".join(
        p for p in ("" if entry.number is None else f"#{entry.number}", entry.modality) if p
    )
    count = entry.image_count
    if entry.frames > count:
        amount = f"{entry.frames} frames"
    else:
        amount = f"{count} image{'s' if count != 1 else ''}"
    if entry.missing:
        amount += f", {entry.missing} missing"
    return "\n".join((head or "Series", entry.description or "(no description)", amount))


def thumbnail_pixmap(thumb: Thumbnail, size: int, dpr: float) -> QPixmap | None:
    """A ``size`` x ``size`` (logical) pixmap with the thumbnail centred on a transparent
    square, so that tiles of wide and tall images line up; None when it has no image."""
    if not thumb.data:
        return None
    fmt = QImage.Format.Format_RGB888 if thumb.channels == 3 else QImage.Format.Format_Grayscale8
    image = QImage(thumb.data, thumb.width, thumb.height, thumb.width * thumb.channels, fmt)
    side = max(round(size * dpr), thumb.width, thumb.height)
    pixmap = QPixmap(side, side)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.drawImage((side - thumb.width) // 2, (side - thumb.height) // 2, image)
    painter.end()  # drawn: the QImage no longer needs the bytes
    pixmap.setDevicePixelRatio(dpr)
    return pixmap


def placeholder_pixmap(text: str, size: int, dpr: float, palette: QPalette) -> QPixmap:
    """A square in the palette's colours with a word in the middle (loading, no image)."""
    pixmap = QPixmap(round(size * dpr), round(size * dpr))
    pixmap.setDevicePixelRatio(dpr)
    pixmap.fill(palette.color(QPalette.ColorRole.AlternateBase))
    painter = QPainter(pixmap)
    painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
    painter.drawRect(QRect(0, 0, size - 1, size - 1))
    painter.drawText(QRect(0, 0, size, size), Qt.AlignmentFlag.AlignCenter, text)
    painter.end()
    return pixmap


class SeriesListModel(QAbstractListModel):
    """Series tiles; thumbnails are set as they arrive."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._entries: list[SeriesEntry] = []
        self._pixmaps: dict[str, QPixmap] = {}
        self._placeholders: dict[str, QPixmap] = {}
        self._tooltips: dict[str, str] = {}

    def set_entries(self, entries: Sequence[SeriesEntry]) -> None:
        self.beginResetModel()
        self._entries = list(entries)
        self._pixmaps = {}
        self._placeholders = {}
        self._tooltips = {}
        self.endResetModel()

    def entries(self) -> list[SeriesEntry]:
        return list(self._entries)

    def set_placeholder(self, series_uid: str, pixmap: QPixmap, note: str = "") -> None:
        self._placeholders[series_uid] = pixmap
        if note:
            self._tooltips[series_uid] = note
        self._changed(series_uid)

    def set_thumbnail(self, series_uid: str, pixmap: QPixmap) -> None:
        self._pixmaps[series_uid] = pixmap
        self._changed(series_uid)

    def thumbnail(self, series_uid: str) -> QPixmap | None:
        return self._pixmaps.get(series_uid)

    def _changed(self, series_uid: str) -> None:
        for row, entry in enumerate(self._entries):
            if entry.series_uid == series_uid:
                index = self.index(row)
                self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._entries)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = 0) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._entries):
            return None
        entry = self._entries[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return tile_text(entry)
        if role == Qt.ItemDataRole.DecorationRole:
            uid = entry.series_uid
            return self._pixmaps.get(uid) or self._placeholders.get(uid)
        if role == Qt.ItemDataRole.ToolTipRole:
            lines = [entry.label, tile_text(entry).split("\n")[-1]]
            if entry.paths:
                lines.append(entry.paths[0].rsplit("/", 1)[0])
            note = self._tooltips.get(entry.series_uid)
            if note:
                lines.append(note)
            return "\n".join(lines)
        if role == ENTRY_ROLE:
            return entry
        return None


class SeriesPanel(QListView):
    """The tiles, wrapping left to right; double-click or Enter emits :attr:`entry_activated`."""

    entry_activated = Signal(object)  # SeriesEntry

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SeriesPanel")
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(True)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setWordWrap(True)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
        line = self.fontMetrics().lineSpacing()
        self.setGridSize(QSize(THUMB_SIZE + 28, THUMB_SIZE + 3 * line + 16))
        self.setSpacing(4)
        self.activated.connect(self._activated)

    def _activated(self, index: QModelIndex) -> None:
        entry = index.data(ENTRY_ROLE)
        if entry is not None:
            self.entry_activated.emit(entry)
