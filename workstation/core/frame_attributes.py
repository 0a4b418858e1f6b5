"""Attribute look-up that understands enhanced multi-frame functional groups.

For frame ``i`` of an enhanced object an attribute may sit in the Per-frame Functional Groups
Sequence item ``i``, in the Shared Functional Groups Sequence, or (classic objects) at the top
level. :func:`frame_item` returns the first item of a functional-group macro for a frame.
"""

from __future__ import annotations

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


def frame_value(ds: Dataset, frame_index: int | None, macro: str, keyword: str, default=None):
    """``keyword`` from the frame's functional-group macro, else from the top level."""
    item = frame_item(ds, frame_index, macro)
    if item is not None and keyword in item:
        return item.get(keyword)
    return ds.get(keyword, default)
