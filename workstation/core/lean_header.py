"""A lean reader of the usual Part 10 header: the same Dataset pydicom reads, at a third of the cost.

Opening a series reads every file's header (the display order comes from them), and pydicom's
general reader (``dcmread(path, defer_size=..., force=True)``) spends ~0.35 ms per CT header in
its element generator, file-object calls and dataset set-up. :func:`read_header_lean` reads the
first bytes of the file in one call and walks the elements with ``struct.unpack_from`` over that
buffer, building exactly what pydicom builds: a :class:`~pydicom.dataset.FileDataset` of
unconverted :class:`~pydicom.dataelem.RawDataElement` s (same tags, VRs, lengths, raw values and
file offsets; values longer than ``defer_size`` left on disk as deferred elements, the pixel data
among them), its file meta, preamble, encodings, file name and time stamp.

It takes only the plain case: preamble and ``DICM``, an explicit VR little endian file meta, an
uncompressed little endian transfer syntax whose first element agrees with it, known VRs, no
command set, no undefined length value other than sequences (those are parsed by pydicom's own
``read_sequence`` over the same bytes). Anything else returns None and the caller reads the file
the general way (:func:`~workstation.core.dicom_file.read_dataset`);
``tests/core/test_lean_header.py`` checks both give equal datasets for every corpus file.
"""

from __future__ import annotations

import os
import stat
from io import BytesIO
from struct import Struct

from pydicom import config
from pydicom.charset import convert_encodings, default_encoding
from pydicom.datadict import _dictionary_vr_fast
from pydicom.dataelem import (
    DataElement,
    RawDataElement,
    convert_raw_data_element,
    empty_value_for_VR,
)
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.filereader import read_sequence
from pydicom.tag import BaseTag
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, VR

_IMPLICIT_LE, _EXPLICIT_LE = "1.2.840.10008.1.2", "1.2.840.10008.1.2.1"
_CHUNK = 16384
_EXPLICIT = Struct("<HH2sH").unpack_from
_IMPLICIT = Struct("<HHL").unpack_from
_LONG = Struct("<L").unpack_from
_TAG = Struct("<HH").unpack_from
#: the two bytes of each known VR: (its name, whether a 4-byte length follows)
_VRS = {v.value.encode(): (str(v.value), v in EXPLICIT_VR_LENGTH_32) for v in VR if len(v) == 2}
_CHARSET = 0x00080005
_UNDEFINED = 0xFFFFFFFF


class _NotPlain(Exception):
    """The file needs pydicom's general reader."""


class _Reader:
    """The file's bytes, read in as far as the elements need them."""

    def __init__(self, f, size: int) -> None:
        self.f, self.size = f, size
        self.buf = f.read(_CHUNK)
        self.base = 0  # file offset of buf[0]

    def need(self, pos: int, n: int) -> None:
        """Make ``buf`` hold the file's bytes ``pos`` .. ``pos + n``."""
        end = pos + n
        if pos >= self.base and end <= self.base + len(self.buf):
            return
        if end > self.size:
            raise _NotPlain  # a value that runs past the end of the file
        if self.base <= pos <= self.base + len(self.buf) and self.base == 0:
            self.buf += self.f.read(max(end - len(self.buf), _CHUNK))
        else:
            self.f.seek(pos)
            self.buf, self.base = self.f.read(max(n, _CHUNK)), pos
        if end > self.base + len(self.buf):
            raise _NotPlain


def _elements(
    r: _Reader, pos: int, implicit: bool, defer: int | None, meta: bool
) -> tuple[dict, int]:
    """Raw elements from file offset ``pos`` to the end of the file (of group 0002 when
    ``meta``); the offset where reading stopped."""
    out: dict = {}
    encoding: str | list[str] = default_encoding
    size, buf, base = r.size, r.buf, r.base
    while pos + 8 <= size:
        at = pos - base
        if at < 0 or at + 12 > len(buf):
            r.need(pos, min(12, size - pos))
            buf, base = r.buf, r.base
            at = pos - base
        if implicit:
            group, elem, length = _IMPLICIT(buf, at)
            vr, tell = None, pos + 8
        else:
            group, elem, raw_vr, length = _EXPLICIT(buf, at)
            if meta and group != 2:
                break
            known = _VRS.get(raw_vr)
            if known is None:
                raise _NotPlain  # unknown VR, or a switch to implicit VR: pydicom's heuristics
            vr, long = known
            if long:
                if at + 12 > len(buf):
                    raise _NotPlain  # the file ends inside the element's header
                length = _LONG(buf, at + 8)[0]
                tell = pos + 12
            else:
                tell = pos + 8
        if group == 0 or group == 0xFFFE:
            raise _NotPlain  # a command set or a stray delimiter: pydicom's special cases
        t = group << 16 | elem
        tag = BaseTag(t)
        if length == _UNDEFINED:
            pos = _undefined_sequence(r, out, tag, vr, tell, implicit, encoding)
            buf, base = r.buf, r.base
            continue
        pos = tell + length
        if pos > size:
            raise _NotPlain  # truncated: pydicom's warnings and errors
        if defer is not None and length > defer and t != _CHARSET:
            value = None
        elif length > 0:
            if pos - base > len(buf) or tell < base:
                r.need(tell, length)
                buf, base = r.buf, r.base
            value = buf[tell - base : pos - base]
        else:
            value = empty_value_for_VR(vr, raw=True)
        out[tag] = elem = RawDataElement(tag, vr, length, value, tell, implicit, True)
        if t == _CHARSET:
            encoding = convert_encodings(convert_raw_data_element(elem).value)
    return out, pos


def _undefined_sequence(
    r: _Reader, out: dict, tag: int, vr: str | None, tell: int, implicit: bool, encoding
) -> int:
    """An undefined length sequence, read as pydicom reads it; the offset after it."""
    if r.base != 0:
        raise _NotPlain
    r.need(0, r.size)  # it may go anywhere: the whole file in (offsets stay file offsets)
    if vr == "UN":
        vr = "SQ"  # PS3.5 6.2.2 (pydicom's infer_sq_for_un_vr, checked by the caller)
    elif vr is None:
        try:
            vr = _dictionary_vr_fast(tag)
        except KeyError:
            if tell + 4 <= r.size and _TAG(r.buf, tell) == (0xFFFE, 0xE000):
                vr = "SQ"
    if vr != "SQ":
        raise _NotPlain  # encapsulated pixel data, undefined length UN...
    fp = BytesIO(r.buf)
    fp.seek(tell)
    seq = read_sequence(fp, implicit, True, _UNDEFINED, encoding)
    out[BaseTag(tag)] = DataElement(BaseTag(tag), vr, seq, tell, is_undefined_length=True)
    return fp.tell()


def read_header_lean(path: str | BytesIO, defer_size: int | None) -> FileDataset | None:
    """The header of ``path`` as ``pydicom.dcmread(path, defer_size=defer_size, force=True)``
    reads it, or None when the file is not the plain case this reader takes (see the module).

    ``path`` may also be a file received over the network, still in memory (a ``BytesIO``).
    Anything but a regular file (a FIFO, a device) is left to the general reader unopened:
    its bytes can be read only once.

    Raises
    ------
    OSError
        When the file cannot be opened or read.
    """
    if config.debugging or not config.settings.infer_sq_for_un_vr:
        return None  # pydicom configured differently from what this reader assumes
    if isinstance(path, BytesIO):
        return _read(path, path.getbuffer().nbytes, path, defer_size)
    if not stat.S_ISREG(os.stat(path).st_mode):
        return None  # a FIFO or device: read once, by the general reader (not even opened here)
    with open(path, "rb", buffering=0) as f:
        return _read(f, os.fstat(f.fileno()).st_size, path, defer_size)


def _read(f, size: int, path: str | BytesIO, defer_size: int | None) -> FileDataset | None:  # noqa: ANN001
    """:func:`read_header_lean` on an open binary file of ``size`` bytes."""
    r = _Reader(f, size)
    if len(r.buf) < 144 or r.buf[128:132] != b"DICM":
        return None
    preamble = r.buf[:128]
    try:
        if not (0x40 < r.buf[136] < 0x5B and 0x40 < r.buf[137] < 0x5B):
            return None  # an implicit VR file meta
        meta_raw, pos = _elements(r, 132, False, None, meta=True)
        meta = FileMetaDataset(meta_raw)
        meta.set_original_encoding(False, True, default_encoding)
        ts = meta_raw.get(BaseTag(0x00020010))
        syntax = ts.value.rstrip(b"\x00 ").decode("ascii", "replace") if ts else ""
        if syntax not in (_IMPLICIT_LE, _EXPLICIT_LE) or pos + 8 > size:
            return None
        implicit = syntax == _IMPLICIT_LE
        r.need(pos, 8)
        b4, b5 = r.buf[pos - r.base + 4], r.buf[pos - r.base + 5]
        if (not (0x40 < b4 < 0x5B and 0x40 < b5 < 0x5B)) != implicit:
            return None  # the data set disagrees with its transfer syntax
        raw, _ = _elements(r, pos, implicit, defer_size, meta=False)
    except _NotPlain:
        return None
    ds = FileDataset(path, raw, preamble, meta, implicit, True)
    ds.set_original_encoding(implicit, True, ds._character_set)
    return ds
