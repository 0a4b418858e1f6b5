"""SeriesLoader with a full /dev/shm: a clear SharedMemoryFull, never a SIGBUS.

Shared segments are allocated page by page on first access; when the tmpfs behind them is full
that access kills the process with SIGBUS (a container's /dev/shm is 64 MB by default). The
test runs a child in its own mount namespace with an 8 MB tmpfs on /dev/shm (real kernel, real
file system: ``unshare --mount``, as root) and checks that every load that does not fit fails
cleanly, including when /dev/shm fills up in the middle of a load, and that the loader works
again once there is room.
"""

from __future__ import annotations

import json
from pathlib import Path

from small_shm import needs_namespaces, run_child

CHILD = Path(__file__).with_name("shm_full_child.py")


@needs_namespaces
def test_loads_that_do_not_fit_dev_shm_fail_cleanly(tmp_path: Path) -> None:
    run = run_child(CHILD, tmp_path, env={"WORKSTATION_FORBID_GUI": "1"})
    assert run.returncode == 0, run.stderr[-3000:]  # 135 would be the SIGBUS
    assert "Bus error" not in run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    for case in ("too_big", "too_big_layouts"):
        assert out[case]["raised"] == "SharedMemoryFull", out[case]
        assert (
            "/dev/shm is too small for this 12 MB volume (8 MB free of 8 MB" in out[case]["message"]
        )
    assert out["filled_bytes"] > 0
    assert out["filled_during_load"]["raised"] == "SharedMemoryFull", out["filled_during_load"]
    assert out["after"] == {"loaded": 12, "failures": 0, "equal": True}
    assert out["staging_dead"]
