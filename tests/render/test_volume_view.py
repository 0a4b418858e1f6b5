"""The Qt 3D view under an X server: every preset draws, the clipping box clips, a transfer-function
drag changes the picture, a mouse drag draws previews and the still frame only after it (screen
grabs of a subprocess; VTK needs a real GL surface)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("volume_view_shot.py")


def test_volume_view_presets_clip_and_transfer_function(tmp_path):
    if not os.environ.get("DISPLAY"):
        pytest.skip("no X display (pytest-xvfb starts one when Xvfb is installed)")
    pytest.importorskip("PySide6")
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb"}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("ct-bone", "ct-soft-tissue", "ct-angiography", "mr-default", "mip"):
        assert result[key] > 2.0, (key, result)  # not a black frame
        assert (tmp_path / f"{key}.png").stat().st_size > 2000
    # soft tissue shows the body too: most of the cylinder, where bone shows the rod and sphere
    assert result["ct-soft-tissue_cover"] > 3 * result["ct-bone_cover"], result
    assert result["clipped"] < result["ct-bone"]  # half of the rod and the sphere are gone
    assert result["tf_drag"] < result["ct-soft-tissue"]  # tissue pushed out of the opacity ramp
    assert result["mapped_shift"] > 0
    drag = result["drag"]  # progressive: preview while dragging, the still frame after calm
    assert drag["camera_moved_mm"] > 1.0
    assert drag["interactive_while_dragging"] and drag["interactive_after_release"]
    assert drag["still_pending_after_release"]
    assert not drag["interactive_after_wait"] and drag["last_still_s"] > 0
