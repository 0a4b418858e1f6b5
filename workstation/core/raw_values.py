"""Header values read cheaply: by tag, and straight from a raw element's bytes when plain.

pydicom converts an element's raw bytes on first access; for the few attributes that grouping
series and working out pixel layouts need, that conversion costs more than the rest of the work.
These helpers look values up by tag (``ds.get(keyword)`` costs a keyword look-up each time) and
read plain single values -- UIDs, code strings, short texts, US and IS integers -- straight
from the raw bytes of an explicit VR little endian element. Anything else (implicit VR, big
endian, several values, escapes, odd padding) goes through pydicom's own conversion, so the
result is always what the converted value gives (tested on every corpus file).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable
from typing import Any

from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

_PLAIN_TEXT = re.compile(rb"[0-9A-Za-z._]+[ \x00]?")  # one value, no inner spaces or escapes
_PLAIN_IS = re.compile(rb" *[+-]?[0-9]{1,10} *")
_TEXT_VRS = frozenset({"UI", "CS", "SH", "LO", "AE"})


@functools.cache
def tag_of(keyword: str) -> int | None:
    """The tag of a dictionary keyword (cached)."""
    return tag_for_keyword(keyword)


def get_value(ds: Dataset, keyword: str, default: Any = None) -> Any:
    """``ds.keyword`` tolerating malformed values (looked up by tag: ``ds.get(keyword)`` costs
    more than the value's conversion); ``default`` when absent, empty or broken."""
    tag = tag_of(keyword)
    try:
        if tag is None:
            value = ds.get(keyword, default)
        else:
            value = ds[tag].value if tag in ds else default
    except Exception:  # noqa: BLE001 - a broken value must not stop grouping
        return default
    return default if value in (None, "") else value


def raw_element(ds: Dataset, tag: int | None) -> RawDataElement | None:
    """The element while it is still raw, explicit VR little endian, with a value; else None."""
    elem = ds._dict.get(tag)
    if type(elem) is not RawDataElement or elem.value is None or elem.is_implicit_VR:
        return None
    return elem if elem.is_little_endian else None


def raw_int(ds: Dataset, tag: int | None) -> int | None:
    """A plain US or IS value straight from its raw bytes; None when the element is absent,
    converted already, or not plainly one such integer (the caller converts it then)."""
    elem = raw_element(ds, tag)
    if elem is not None:
        value = elem.value
        if elem.VR == "US" and len(value) == 2:
            return value[0] | value[1] << 8
        if elem.VR == "IS" and _PLAIN_IS.fullmatch(value):
            return int(value)
    return None


def to_int(value: Any) -> int | None:
    """``int(value)``, or None when it is not an integer."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def text_value(ds: Dataset, keyword: str, default: str = "") -> str:
    """``str(get_value(ds, keyword, default))``; a plain single value straight from its bytes."""
    elem = raw_element(ds, tag_of(keyword))
    if elem is not None and elem.VR in _TEXT_VRS and _PLAIN_TEXT.fullmatch(elem.value):
        return elem.value.rstrip(b" \x00").decode("ascii")
    return str(get_value(ds, keyword, default))


def int_value(ds: Dataset, keyword: str) -> int | None:
    """``to_int(get_value(ds, keyword))``; a plain US or IS value straight from its bytes."""
    fast = raw_int(ds, tag_of(keyword))
    return fast if fast is not None else to_int(get_value(ds, keyword))


def decimals(ds: Dataset, tag: int, n: int) -> list[float] | None:
    """The ``n`` numbers of a DS element, parsed from its raw bytes when it is still raw (a
    quarter of the cost of pydicom's DSfloat conversion); None when absent or not plainly ``n``
    finite decimals."""
    if tag not in ds:
        return None
    elem = ds.get_item(tag, keep_deferred=True)
    value = elem.value
    try:
        if isinstance(value, bytes):
            out = [float(v) for v in value.split(b"\\")]
        elif value is None or isinstance(value, str):
            return None  # deferred or odd: the general path decides
        else:
            out = [float(v) for v in (value if isinstance(value, Iterable) else [value])]
    except (TypeError, ValueError):
        return None
    return out if len(out) == n and all(math.isfinite(v) for v in out) else None
