"""Initial column widths from sample contents, so dates and counts are not cut short whatever
the font size or the style sheet's cell padding."""

from __future__ import annotations

from collections.abc import Mapping

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHeaderView


def fit_columns(header: QHeaderView, samples: Mapping[int, str]) -> None:
    """Size each column to its widest of sample text and title, plus margins and sort arrow."""
    metrics = header.fontMetrics()
    pad = 2 * metrics.height() + 8
    model = header.model()
    for column, sample in samples.items():
        title = str(model.headerData(column, Qt.Orientation.Horizontal) or "") if model else ""
        widest = max(metrics.horizontalAdvance(sample), metrics.horizontalAdvance(title))
        header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(column, widest + pad)
