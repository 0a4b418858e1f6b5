"""A minimal PNG writer (standard library only) for 8-bit grey and RGB images."""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(pixels: np.ndarray, level: int = 6) -> bytes:
    """Encode a uint8 (rows, cols) or (rows, cols, 3) array as PNG bytes."""
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3):
        raise ValueError(f"expected uint8 grey or RGB pixels, got {pixels.dtype} {pixels.shape}")
    if pixels.ndim == 3 and pixels.shape[2] != 3:
        raise ValueError(f"expected 3 samples per pixel, got {pixels.shape[2]}")
    rows, cols = pixels.shape[:2]
    colour_type = 2 if pixels.ndim == 3 else 0
    raw = np.ascontiguousarray(pixels).reshape(rows, -1)
    filtered = np.zeros((rows, raw.shape[1] + 1), np.uint8)  # filter type 0 per row
    filtered[:, 1:] = raw
    header = struct.pack(">IIBBBBB", cols, rows, 8, colour_type, 0, 0, 0)
    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(filtered.tobytes(), level)),
            _chunk(b"IEND", b""),
        ]
    )


def write_png(path: str | os.PathLike[str], pixels: np.ndarray) -> None:
    """Write ``pixels`` to ``path`` atomically (temporary file, then rename)."""
    path = os.fspath(path)
    tmp = f"{path}.part"
    with open(tmp, "wb") as fh:
        fh.write(encode_png(pixels))
    os.replace(tmp, path)


def read_png(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a PNG written by :func:`write_png` (8-bit grey or RGB, no interlace, filter 0 only)."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG file")
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, _depth, colour_type = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    channels = 3 if colour_type == 2 else 1
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, width * channels + 1)
    if rows[:, 0].any():
        raise ValueError(f"{path}: PNG row filters other than 0 are not supported here")
    pixels = rows[:, 1:]
    return pixels.reshape(height, width, 3) if channels == 3 else pixels.reshape(height, width)
