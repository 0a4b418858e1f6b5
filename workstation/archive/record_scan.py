"""The index record of an instance read straight from the bytes of its Part 10 file.

Every received instance is indexed by the spool ingester, on a thread beside the one that answers
the sender's C-STOREs. Reading its record through pydicom (the lean header reader, then ~20 values
of a Dataset of ~100 raw elements) held the GIL for ~0.23 ms per CT image, and that wait sat on the
path of every C-STORE answer (in an ablation, a C-MOVE into the archive ran at 0.63-0.70x DCMTK's
rate with it and 0.81-0.91x without it). :func:`scan_header` walks the top-level elements with
``struct`` over the bytes and keeps only the raw values the index needs; nested sequences are
stepped over, not parsed. The values are then decoded exactly as
:func:`~workstation.archive.attributes.record_from_dataset` decodes raw values, and whatever that
would hand to pydicom (a character set other than the default, Latin-1 or UTF-8; bytes that do not
decode) still goes to pydicom, on a Dataset read only then.

It takes what pydicom reads without heuristics: preamble and ``DICM``, an explicit VR little
endian file meta, a little endian transfer syntax that is not deflated (implicit or explicit VR,
native or encapsulated pixel data) whose data set agrees with it, known VRs, well-formed items
and delimiters. Anything else (a big endian or deflated file, a DICOMDIR, a truncated element, a
command set) returns None and the caller reads the file the general way.
``tests/archive/test_record_scan.py`` checks that both give the same record for every corpus file.
"""

from __future__ import annotations

from dataclasses import dataclass
from struct import Struct

from pydicom.datadict import tag_for_keyword
from pydicom.uid import UID
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, VR

#: The top-level attributes an index record is made of (``attributes.record_from_dataset``); one
#: it reads and this list lacks is read through pydicom (slower, never wrong).
RECORD_KEYWORDS = (
    "SpecificCharacterSet", "SOPClassUID", "SOPInstanceUID", "StudyDate", "StudyTime",
    "AccessionNumber", "Modality", "ReferringPhysicianName", "StudyDescription",
    "SeriesDescription", "PatientName", "PatientID", "PatientBirthDate", "PatientSex",
    "BodyPartExamined", "StudyInstanceUID", "SeriesInstanceUID", "StudyID", "SeriesNumber",
    "InstanceNumber", "NumberOfFrames",
)  # fmt: skip
RECORD_TAGS = frozenset(tag_for_keyword(k) for k in RECORD_KEYWORDS)
_PIXEL_DATA = 0x7FE00010
_DIRECTORY_RECORDS = 0x00041220
_TRANSFER_SYNTAX = 0x00020010
_MEDIA_SOP_CLASS = 0x00020002
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQUENCE_END = 0xE000, 0xE00D, 0xE0DD

_EXPLICIT = Struct("<HH2sH").unpack_from  # group, element, VR, short length
_TAG = Struct("<HH").unpack_from
_IMPLICIT = Struct("<HHL").unpack_from  # group, element, long length (items and delimiters too)
_LONG = Struct("<L").unpack_from
#: the two bytes of each known VR: whether a 4-byte length follows
_VRS = {v.value.encode(): v in EXPLICIT_VR_LENGTH_32 for v in VR if len(v) == 2}


class _NotPlain(Exception):
    """The bytes need pydicom's general reader."""


@dataclass(frozen=True)
class HeaderScan:
    """What :func:`scan_header` found.

    Attributes
    ----------
    values : dict of int to bytes
        The raw values (as written, padding included) of the top-level elements among
        ``wanted`` present in the data set, by tag.
    wanted : frozenset of int
        The tags scanned for: one outside it was not looked for (absent from ``values`` says
        nothing about the data set).
    transfer_syntax : str
        The file meta's Transfer Syntax UID.
    media_sop_class : str
        The file meta's Media Storage SOP Class UID.
    has_pixel_data : bool
        Whether the data set has a top-level Pixel Data element.
    """

    values: dict[int, bytes]
    wanted: frozenset[int]
    transfer_syntax: str
    media_sop_class: str
    has_pixel_data: bool


def scan_header(data: bytes, wanted: frozenset[int] = RECORD_TAGS) -> HeaderScan | None:
    """Scan a Part 10 file held in memory for the raw values of the ``wanted`` top-level tags;
    None when it is not the plain case (see the module)."""
    if len(data) < 144 or data[128:132] != b"DICM":
        return None
    try:
        meta: dict[int, bytes] = {}
        pos = _walk(data, 132, False, meta, _META_WANTED, _META)[0]
        syntax = _uid(meta.get(_TRANSFER_SYNTAX, b""))
        try:
            ts = UID(syntax)
            if not ts.is_transfer_syntax or not ts.is_little_endian or ts.is_deflated:
                return None
            implicit = ts.is_implicit_VR
        except ValueError:  # a private transfer syntax pydicom does not know
            return None
        if pos + 8 > len(data):
            return None  # no data set
        b4, b5 = data[pos + 4], data[pos + 5]
        if (not (0x40 < b4 < 0x5B and 0x40 < b5 < 0x5B)) != implicit:
            return None  # the data set disagrees with its transfer syntax: pydicom's heuristics
        values: dict[int, bytes] = {}
        has_pixels = _walk(data, pos, implicit, values, wanted, _DATA_SET)[1]
    except (_NotPlain, RecursionError):
        return None
    media_class = _uid(meta.get(_MEDIA_SOP_CLASS, b""))
    return HeaderScan(values, wanted, syntax, media_class, has_pixels)


_META_WANTED = frozenset((_TRANSFER_SYNTAX, _MEDIA_SOP_CLASS))


def _uid(raw: bytes) -> str:
    return raw.decode("ascii", "replace").rstrip("\0 ")


def _header(data: bytes, pos: int, implicit: bool) -> tuple[int, int, bytes, int, int]:
    """The element header at ``pos``: group, element, VR bytes (empty in implicit VR and for
    items and delimiters), value length and the offset of the value."""
    if implicit:
        group, element, length = _IMPLICIT(data, pos)
        return group, element, b"", length, pos + 8
    group, element, raw_vr, length = _EXPLICIT(data, pos)
    if group == 0xFFFE:  # an item or a delimiter: no VR, a 4-byte length
        return group, element, b"", _LONG(data, pos + 4)[0], pos + 8
    long = _VRS.get(raw_vr)
    if long is None:
        raise _NotPlain  # unknown VR, or a switch to implicit VR
    if not long:
        return group, element, raw_vr, length, pos + 8
    if pos + 12 > len(data):
        raise _NotPlain
    return group, element, raw_vr, _LONG(data, pos + 8)[0], pos + 12


_META, _DATA_SET, _ITEM_BODY = "meta", "data set", "item"


def _walk(
    data: bytes, pos: int, implicit: bool, out: dict[int, bytes], wanted: frozenset[int],
    part: str,
) -> tuple[int, bool]:  # fmt: skip
    """Elements from ``pos``: the raw values of ``wanted`` tags into ``out``.

    ``part`` is what is walked: the file meta (up to the end of group 0002), the data set (up
    to its Pixel Data, else the end of the bytes) or an undefined length item (up to its
    delimiter). Returns where it stopped and whether that is at the Pixel Data.
    """
    end = len(data)
    while pos + 8 <= end:
        if part is _META and _TAG(data, pos)[0] != 2:
            return pos, False
        group, element, raw_vr, length, pos = _header(data, pos, implicit)
        if group == 0xFFFE:
            if part is _ITEM_BODY and element == _ITEM_END:
                return pos, False
            raise _NotPlain  # a stray delimiter: pydicom's special cases
        tag = group << 16 | element
        if part is not _ITEM_BODY:
            if group == 0 or (group == 2) != (part is _META) or tag == _DIRECTORY_RECORDS:
                raise _NotPlain  # a command set, meta elements in the data set, a DICOMDIR
            if tag == _PIXEL_DATA and part is _DATA_SET:  # nothing after it is needed...
                if length == _UNDEFINED:  # ...once it is known whole
                    _skip_sequence(data, pos, implicit)  # its fragments, up to the delimiter
                elif pos + length > end:
                    raise _NotPlain
                return pos, True
        if length == _UNDEFINED:
            if tag in wanted:
                raise _NotPlain
            pos = _skip_sequence(data, pos, implicit or raw_vr == b"UN")  # UN: PS3.5 6.2.2
            continue
        if pos + length > end:
            raise _NotPlain  # truncated: pydicom's warnings and errors
        if tag in wanted:
            out[tag] = data[pos : pos + length]
        pos += length
    if part is _ITEM_BODY:
        raise _NotPlain  # the bytes end inside the item
    return pos, False


def _skip_sequence(data: bytes, pos: int, implicit: bool) -> int:
    """Step over the items of an undefined length sequence; the offset after its delimiter."""
    end = len(data)
    while pos + 8 <= end:
        group, element, length = _IMPLICIT(data, pos)
        pos += 8
        if group != 0xFFFE:
            break
        if element == _SEQUENCE_END:
            return pos
        if element != _ITEM:
            break
        if length == _UNDEFINED:
            pos = _walk(data, pos, implicit, {}, frozenset(), _ITEM_BODY)[0]
        elif pos + length > end:
            break
        else:
            pos += length
    raise _NotPlain
