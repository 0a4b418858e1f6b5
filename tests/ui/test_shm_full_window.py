"""The reading window with a /dev/shm too small for a series' volume (a container's default is
64 MB): the series still opens, every frame decodes one by one with exact values, and the status
bar says why and what to enlarge. Runs the window in a child process in its own mount namespace
with an 8 MB tmpfs on /dev/shm (``unshare --mount``, as root)."""

from __future__ import annotations

import json
from pathlib import Path

from small_shm import needs_namespaces, run_child

CHILD = Path(__file__).with_name("shm_full_window_child.py")


@needs_namespaces
def test_series_too_big_for_dev_shm_opens_frame_by_frame(tmp_path: Path) -> None:
    run = run_child(CHILD, tmp_path, tmp_path / "window.png", env={"QT_QPA_PLATFORM": "offscreen"})
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["message"].startswith(
        "Frames decode one by one: /dev/shm is too small for this 12 MB"
    )
    assert "--shm-size" in out["message"]
    assert out["status"] == out["message"]  # shown in the status bar
    assert out["loaded"] == out["frames"] == 24
    assert out["equal"]  # every frame, decoded one by one, has the file's modality values
    assert (tmp_path / "window.png").stat().st_size > 0
