"""A write that fails on the ack path, for real: the listener's process may not grow a file past
a limit (RLIMIT_FSIZE), so the spool file of an instance larger than that fails mid-write with
EFBIG, as it would on a full disk. That instance is answered Out of Resources (0xA700) and leaves
nothing behind; the instances before and after it are stored and indexed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CHILD = Path(__file__).with_name("write_limit_child.py")
LIMIT = 256 * 1024  # bytes: the index and its journal stay well below it


def test_an_instance_that_cannot_be_written_is_refused_and_the_rest_kept(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, str(CHILD), str(tmp_path / "archive"), str(LIMIT)],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    small, large, small_again = got["sent"]
    assert got["statuses"] == [0x0000, 0xA700, 0x0000]
    assert sorted(got["indexed"]) == sorted([small, small_again])
    assert got["store"] == sorted([f"{small}.dcm", f"{small_again}.dcm"])
    assert got["spool"] == [] and got["tmp"] == []  # no partial file, no part left over
    assert "File too large" in run.stderr  # the reason is logged (the audit log's error)
