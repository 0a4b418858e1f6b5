"""Run DCMTK's command-line tools and read what they write (PGM/PPM)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


def read_pnm(path: Path) -> np.ndarray:
    """Read a binary PGM (P5) or PPM (P6) as uint8 (rows, cols) or (rows, cols, 3)."""
    data = path.read_bytes()
    fields: list[bytes] = []
    pos = 0
    while len(fields) < 4:
        while data[pos : pos + 1].isspace():
            pos += 1
        if data[pos : pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        end = pos
        while not data[end : end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    pos += 1  # the single whitespace after maxval
    magic, width, height, maxval = fields[0], int(fields[1]), int(fields[2]), int(fields[3])
    if maxval > 255:
        raise ValueError(f"{path}: 16-bit PNM not expected")
    channels = 3 if magic == b"P6" else 1
    arr = np.frombuffer(data, np.uint8, count=width * height * channels, offset=pos)
    return arr.reshape(height, width, channels) if channels == 3 else arr.reshape(height, width)


def dcmj2pnm(src: Path, out: Path, *options: str) -> tuple[bool, str]:
    """Render ``src`` with dcmj2pnm; returns (ok, stderr)."""
    res = subprocess.run(
        ["dcmj2pnm", *options, str(src), str(out)], capture_output=True, text=True, timeout=120
    )
    return res.returncode == 0 and out.exists(), res.stderr.strip()
