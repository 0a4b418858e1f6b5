"""Attribute look-up that understands enhanced multi-frame functional groups.

For frame ``i`` of an enhanced object an attribute may sit in the Per-frame Functional Groups
Sequence item ``i``, in the Shared Functional Groups Sequence, or (classic objects) at the top
level. :func:`frame_item` returns the first item of a functional-group macro for a frame.
"""

from __future__ import annotations

from typing import Any

from pydicom.dataset import Dataset


def frame_item(ds: Dataset, frame_index: int | None, macro: str) -> Dataset | None:
    """The first item of functional-group macro ``macro`` for a frame, per-frame before shared."""
    if frame_index is not None:
        per_frame = ds.get("PerFrameFunctionalGroupsSequence")
        if per_frame is not None and 0 <= frame_index < len(per_frame):
            seq = per_frame[frame_index].get(macro)
            if seq:
                return seq[0]
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        seq = shared[0].get(macro)
        if seq:
            return seq[0]
    return None


def frame_attribute(ds: Dataset, frame_index: int | None, macro: str, keyword: str) -> Any:
    """``keyword`` from a frame's functional-group ``macro``, else from the top level, else None.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
    frame_index : int or None
        0-based frame; None means frame 0 for enhanced objects.
    macro : str
        Functional-group sequence keyword, e.g. ``"PixelMeasuresSequence"``.
    keyword : str
        Attribute inside the macro item (and at the top level for classic objects).
    """
    if "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds:
        item = frame_item(ds, 0 if frame_index is None else frame_index, macro)
        if item is not None and keyword in item and item[keyword].value is not None:
            return item[keyword].value
    elem = ds.get(keyword)
    return elem if elem not in ("", None) else None
