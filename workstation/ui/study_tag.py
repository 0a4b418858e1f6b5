"""The CURRENT / PRIOR tag drawn at the top of a viewport when several studies of one patient are
on screen (see :mod:`workstation.core.comparison`)."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QWidget

from workstation.core.comparison import StudyTag

_PRIOR = QColor(255, 176, 32)
_CURRENT = QColor(64, 190, 160)


def draw_study_tag(p: QPainter, widget: QWidget, tag: StudyTag) -> None:
    """A filled label centred under the top orientation letter, and for a prior a strip along the
    top edge, in a colour that differs for current and prior."""
    colour = _PRIOR if tag.is_prior else _CURRENT
    font = QFont(widget.font())
    font.setBold(True)
    font.setPointSizeF(max(8.0, min(11.0, widget.height() / 55)))
    p.save()
    p.setFont(font)
    fm = p.fontMetrics()
    w = min(fm.horizontalAdvance(tag.text) + 16, widget.width() - 8)
    h = fm.height() + 6
    top = fm.height() * 1.9
    rect = QRectF((widget.width() - w) / 2, top, w, h)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(colour)
    p.drawRoundedRect(rect, 4, 4)
    p.setPen(QPen(QColor(10, 10, 10)))
    text = fm.elidedText(tag.text, Qt.TextElideMode.ElideRight, int(w - 12))
    p.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
    if tag.is_prior:
        p.fillRect(QRectF(0, 0, widget.width(), 4), colour)
    p.restore()
