"""The Part 10 file header (preamble, ``DICM``, File Meta Information) for a received data set."""

from __future__ import annotations

import struct

from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION


def _element(group_element: int, vr: bytes, value: bytes) -> bytes:
    """One explicit VR little endian element of group 2 (short-length VRs, or OB)."""
    tag = struct.pack("<HH", 0x0002, group_element)
    if vr == b"OB":
        return tag + vr + b"\x00\x00" + struct.pack("<I", len(value)) + value
    return tag + vr + struct.pack("<H", len(value)) + value


def _text(value: str, pad: bytes) -> bytes:
    raw = value.encode("ascii", "replace")
    return raw + pad if len(raw) % 2 else raw


def part10_header(
    sop_class_uid: str, sop_instance_uid: str, transfer_syntax_uid: str, source_ae: str
) -> bytes:
    """Preamble, ``DICM`` and file meta information for a received data set.

    Encoded directly (a few microseconds) rather than through a pydicom ``FileMetaDataset``,
    whose validating attribute access costs more than a millisecond per instance.

    Parameters
    ----------
    sop_class_uid, sop_instance_uid : str
        From the C-STORE request (Media Storage SOP Class/Instance UID).
    transfer_syntax_uid : str
        The presentation context's transfer syntax: the one the data set is encoded in.
    source_ae : str
        The calling AE title, kept as (0002,0016) Source Application Entity Title.
    """
    body = b"".join(
        (
            _element(0x0001, b"OB", b"\x00\x01"),
            _element(0x0002, b"UI", _text(sop_class_uid, b"\x00")),
            _element(0x0003, b"UI", _text(sop_instance_uid, b"\x00")),
            _element(0x0010, b"UI", _text(transfer_syntax_uid, b"\x00")),
            _element(0x0012, b"UI", _text(PYNETDICOM_IMPLEMENTATION_UID, b"\x00")),
            _element(0x0013, b"SH", _text(PYNETDICOM_IMPLEMENTATION_VERSION, b" ")),
            _element(0x0016, b"AE", _text(source_ae, b" ")),
        )
    )
    group_length = _element(0x0000, b"UL", struct.pack("<I", len(body)))
    return b"".join((b"\x00" * 128, b"DICM", group_length, body))
