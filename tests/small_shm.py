"""Run a test's child script with an 8 MB /dev/shm of its own (``unshare --mount`` and a tmpfs,
as root): how the program behaves when shared memory runs out, on the real kernel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SIZE = "8m"


def _available() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode == 0


needs_namespaces = pytest.mark.skipif(
    not _available(), reason="needs root and unshare --mount (a private /dev/shm)"
)


def run_child(child: Path, *args: str | Path, env: dict[str, str] | None = None):
    """``python child args...`` with /dev/shm an 8 MB tmpfs; the CompletedProcess."""
    quoted = " ".join(f'"{a}"' for a in (sys.executable, child, *args))
    return subprocess.run(
        [
            "unshare",
            "--mount",
            "sh",
            "-c",
            f"mount -t tmpfs -o size={SIZE} tmpfs /dev/shm && exec {quoted}",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, **(env or {})},
    )
