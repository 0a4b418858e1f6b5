"""The reading window's benchmarks still run to their figures (``--quick``).

They drive the viewport's and the window's own code, so a rename there breaks them silently: the
scroll benchmark did, when the corner text moved to ``ui/viewport_text.py``. Only that they run
and report is checked here; their targets are for the benchmarks themselves (timings are not
asserted in tests).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str) -> dict:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_scroll_benchmark_reports_each_case() -> None:
    out = _run("scroll.py")
    for case in ("ct", "mg"):
        for kind in ("first", "again"):
            figures = out["cases"][case][kind]
            assert figures["frames"] > 0 and figures["fps"] > 0, (case, kind)
            assert set(figures["parts_median_ms"]) == {
                "renderer",
                "w/l",
                "drawImage",
                "text",
                "rest",
            }
            assert figures["parts_median_ms"]["text"] > 0  # the corner text was timed


def test_open_series_benchmark_reports_each_figure() -> None:
    out = _run("open_series.py")
    assert out["first_image_ms"]["cached"] > 0
    scroll = out["scrollable_ms"]
    assert all(scroll[k] > 0 for k in ("ours_cold", "loader_cold", "ours_warm", "loader_warm"))
    assert out["memory"]["cache_entries"] > 0
