"""Guard against a Qt binding that leaks references to None (PySide6 6.12.0 on Python 3.11).

That release takes one reference from None on every call of a method returning void; a viewport
makes dozens per paint, so the program died with "none_dealloc" after about 60 repaints.
"""

from __future__ import annotations

import sys

import pytest
from PySide6.QtGui import QColor, QImage, QPainter


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None is immortal from Python 3.12 on")
def test_void_calls_do_not_leak_references_to_none(qapp) -> None:
    image = QImage(64, 64, QImage.Format.Format_RGB32)
    painter = QPainter(image)
    try:
        before = sys.getrefcount(None)
        for _ in range(2000):
            painter.setPen(QColor(10, 20, 30))
        lost = before - sys.getrefcount(None)
    finally:
        painter.end()
    assert lost < 100, f"the Qt binding lost {lost} references to None in 2000 calls"
