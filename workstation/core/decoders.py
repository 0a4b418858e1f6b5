"""Choice of pixel decoders per transfer syntax, and the fallback registry.

pydicom's own decoder plugins (pylibjpeg, pyjpegls, gdcm, pillow, pydicom's RLE) are tried in an
order chosen per transfer syntax: the fastest measured decoder first (see DESIGN.md: GDCM for JPEG
lossless, pyjpegls for JPEG-LS, pylibjpeg-rle for RLE). When every pydicom plugin fails, decoders
registered as *fallbacks* are tried; they live outside ``core`` (e.g. SimpleITK/GDCM in
``workstation.codecs``) and are handed in by the application, so ``core`` stays free of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from pydicom import uid as _uid
from pydicom.pixels import get_decoder

#: Plugin order per transfer syntax, fastest first. Syntaxes not listed use pydicom's default order.
PREFERRED_PLUGINS: dict[str, tuple[str, ...]] = {
    _uid.JPEGLosslessSV1: ("gdcm", "pylibjpeg"),
    _uid.JPEGLossless: ("gdcm", "pylibjpeg"),
    _uid.JPEGLSLossless: ("pyjpegls", "gdcm", "pylibjpeg"),
    _uid.JPEGLSNearLossless: ("pyjpegls", "gdcm", "pylibjpeg"),
    _uid.RLELossless: ("pylibjpeg", "pydicom", "gdcm"),
    _uid.JPEG2000Lossless: ("pylibjpeg", "gdcm", "pillow"),
    _uid.JPEG2000: ("pylibjpeg", "gdcm", "pillow"),
    # GDCM's IJG-derived decoder reproduces DCMTK's IDCT exactly; pylibjpeg differs by +-1.
    _uid.JPEGBaseline8Bit: ("gdcm", "pylibjpeg", "pillow"),
    _uid.JPEGExtended12Bit: ("pylibjpeg", "gdcm", "pillow"),
}

#: Transfer syntaxes whose pixel data is lossy-compressed.
LOSSY_SYNTAXES: frozenset[str] = frozenset(
    {
        _uid.JPEGBaseline8Bit,
        _uid.JPEGExtended12Bit,
        "1.2.840.10008.1.2.4.53",
        "1.2.840.10008.1.2.4.55",
        _uid.JPEGLSNearLossless,
        _uid.JPEG2000,
        "1.2.840.10008.1.2.4.92",
        "1.2.840.10008.1.2.4.100",
        "1.2.840.10008.1.2.4.101",
        "1.2.840.10008.1.2.4.102",
        "1.2.840.10008.1.2.4.103",
        "1.2.840.10008.1.2.4.104",
        "1.2.840.10008.1.2.4.105",
        "1.2.840.10008.1.2.4.106",
        "1.2.840.10008.1.2.4.107",
        "1.2.840.10008.1.2.4.108",
    }
)


class FallbackDecoder(Protocol):
    """A decoder outside pydicom, used when every pydicom plugin fails.

    ``decode`` returns the *stored* values of one frame (before any modality LUT), shaped
    (rows, cols) or (rows, cols, samples). ``preferred_for`` says whether this decoder should be
    tried *before* pydicom's plugins for a dataset (because it is known to be more faithful).
    """

    name: str

    def decode(self, path: str, frame_index: int, ds: object) -> np.ndarray: ...

    def preferred_for(self, transfer_syntax: str, ds: object) -> bool: ...


def plugin_order(transfer_syntax: str) -> tuple[str, ...]:
    """Return the pydicom plugins to try for ``transfer_syntax``, best first.

    Only plugins that are installed are returned; an empty tuple means a native (uncompressed)
    syntax, decoded by pydicom itself.
    """
    try:
        decoder = get_decoder(transfer_syntax)
    except NotImplementedError:
        return ()
    available = set(decoder.available_plugins)
    if not decoder.is_encapsulated:
        return ()
    preferred = [p for p in PREFERRED_PLUGINS.get(transfer_syntax, ()) if p in available]
    rest = sorted(available - set(preferred))
    return tuple(preferred + rest)


def is_supported_by_pydicom(transfer_syntax: str) -> bool:
    """True when pydicom has at least one decoder plugin (or native support) for the syntax."""
    try:
        decoder = get_decoder(transfer_syntax)
    except NotImplementedError:
        return False
    return not decoder.is_encapsulated or bool(decoder.available_plugins)


@dataclass(frozen=True)
class DecoderRegistry:
    """The fallback decoders in the order they are tried (constructed by the application)."""

    fallbacks: Sequence[FallbackDecoder] = field(default_factory=tuple)

    def preferred(self, transfer_syntax: str, ds: object) -> list[FallbackDecoder]:
        """Fallbacks to try before pydicom's plugins for this dataset."""
        return [f for f in self.fallbacks if f.preferred_for(transfer_syntax, ds)]
