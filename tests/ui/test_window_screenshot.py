"""The whole window, opened as a user would, captured under Xvfb (``workstation open --screenshot``)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PySide6.QtGui import QImage

pytestmark = pytest.mark.corpus


def _grey(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_Grayscale8)
    w, h, bpl = image.width(), image.height(), image.bytesPerLine()
    return np.frombuffer(image.constBits(), np.uint8).reshape(h, bpl)[:, :w].copy()


def test_ct_series_in_a_2x2_layout_under_xvfb(qapp, corpus_dir, tmp_path) -> None:
    display = os.environ.get("DISPLAY")
    if not display:
        pytest.skip("no X display (pytest-xvfb starts one when Xvfb is installed)")
    series = corpus_dir / "ct_series" / "ge_hispeed_dual_tilt_variable_spacing"
    out = tmp_path / "window.png"  # kept by pytest under its basetemp for looking at
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb", "WORKSTATION_HOME": str(tmp_path / "home")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "workstation",
            "open",
            str(series),
            "--layout",
            "2x2",
            "--screenshot",
            str(out),
            "--size",
            "1400",
            "900",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    image = QImage(str(out))
    assert (image.width(), image.height()) == (1400, 900)
    grey = _grey(image)
    # the right part of the window is the viewer; the first viewport (top left of the grid)
    # holds the CT: many grey levels, not a black or flat area
    viewer = grey[60:450, 500:950]
    assert len(np.unique(viewer)) > 50
    assert (viewer > 200).mean() > 0.01 and (viewer < 20).mean() > 0.2
