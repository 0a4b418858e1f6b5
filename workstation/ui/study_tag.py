"""The CURRENT / PRIOR band drawn across the top of a viewport when several studies of one patient
are on screen (see :mod:`workstation.core.comparison`). The corner text starts below it."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPen
from PySide6.QtWidgets import QWidget

from workstation.core.comparison import StudyTag

_PRIOR = QColor(255, 176, 32)
_CURRENT = QColor(64, 190, 160)


def _font(widget: QWidget) -> QFont:
    font = QFont(widget.font())
    font.setBold(True)
    font.setPointSizeF(max(8.0, min(11.0, widget.height() / 55)))
    return font


def study_tag_height(widget: QWidget) -> float:
    """Height of the band, so the corner text can start below it."""
    return QFontMetricsF(_font(widget)).height() + 6


def draw_study_tag(p: QPainter, widget: QWidget, tag: StudyTag) -> None:
    """A band across the top edge in a colour that differs for current (teal) and prior
    (amber), with the label centred in dark text."""
    colour = _PRIOR if tag.is_prior else _CURRENT
    p.save()
    p.setFont(_font(widget))
    rect = QRectF(0, 0, widget.width(), study_tag_height(widget))
    p.fillRect(rect, colour)
    p.setPen(QPen(QColor(10, 10, 10)))
    text = p.fontMetrics().elidedText(tag.text, Qt.TextElideMode.ElideRight, widget.width() - 12)
    p.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
    p.restore()
