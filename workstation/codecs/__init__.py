"""Decoders outside pydicom, handed to the core as fallbacks by the application."""

from __future__ import annotations

from workstation.core.decoders import DecoderRegistry


def default_registry() -> DecoderRegistry:
    """The fallback decoders this installation has, in the order they are tried."""
    from workstation.codecs.libjpeg_turbo_decoder import LibjpegTurboDecoder
    from workstation.codecs.simpleitk_decoder import SimpleITKDecoder

    return DecoderRegistry(fallbacks=(LibjpegTurboDecoder(), SimpleITKDecoder()))
