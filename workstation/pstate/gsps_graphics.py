"""Graphic and text objects of a GSPS -> annotations (used by :mod:`gsps_reader`).

Our own annotations (graphic groups whose description carries ``{"ws": 1, ...}``, written by
:mod:`workstation.pstate.gsps_writer`) come back as the same kind, uid and points. Foreign
graphics map to the nearest kind: POINT, CIRCLE, ELLIPSE as themselves, a closed POLYLINE or
INTERPOLATED to a ``polygon``, an open one to ``length`` segments, text to ``text`` (the bounding
box in ``extra``; a visible anchor adds an ``arrow`` from the box to the anchor); they carry
``FOREIGN`` in ``extra``. DISPLAY units are fractions of the displayed area after the spatial
transformation.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from urllib.parse import unquote

from pydicom.dataset import Dataset

from workstation.core.annotations import Annotation, ImageRef
from workstation.pstate.model import DisplayedArea

FOREIGN = ("source", "gsps")

Key = tuple[str, "int | None"]


def refs(item: Dataset) -> list[tuple[str, str, tuple[int, ...] | None]]:
    """(SOP Instance UID, SOP Class UID, frames or None) of an item's Referenced Image Sequence."""
    out = []
    for ref in item.get("ReferencedImageSequence") or []:
        uid = str(ref.get("ReferencedSOPInstanceUID", ""))
        if not uid:
            continue
        frames = ref.get("ReferencedFrameNumber")
        if frames is not None and frames != "":
            vals = (
                frames if isinstance(frames, Iterable) and not isinstance(frames, str) else [frames]
            )
            fr: tuple[int, ...] | None = tuple(int(f) for f in vals)
        else:
            fr = None
        out.append((uid, str(ref.get("ReferencedSOPClassUID", "")), fr))
    return out


def applies(item: Dataset, key: Key) -> bool:
    """Whether an item (VOI, displayed area, graphic annotation) applies to ``key``: it does when
    it names no image, or names the image (and the frame, or all frames)."""
    named = refs(item)
    if not named:
        return True
    uid, frame = key
    for ruid, _, frames in named:
        if ruid != uid:
            continue
        if frames is None or (frame is not None and frame in frames):
            return True
    return False


def float_pair(value) -> tuple[float, float] | None:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return a, b


class DisplayFrame:
    """Maps DISPLAY units (fractions of the displayed area after rotation/flip) to image coords."""

    def __init__(self, area: DisplayedArea | None, rows: int | None, cols: int | None,
                 rotation: int, flip: bool) -> None:  # fmt: skip
        if area is not None:
            self.bounds = area.bounds
        elif rows and cols:
            self.bounds = (-0.5, -0.5, cols - 0.5, rows - 0.5)
        else:
            self.bounds = None
        self.rotation, self.flip = rotation, flip

    def to_image(self, u: float, v: float) -> tuple[float, float]:
        if self.bounds is None:
            raise ValueError("DISPLAY units without a displayed area or image size")
        x, y = (1 - u if self.flip else u), v  # undo the flip (applied last) ...
        for _ in range((360 - self.rotation) % 360 // 90):  # ... then the clockwise rotation
            x, y = 1 - y, x
        left, top, right, bottom = self.bounds
        return left + x * (right - left), top + y * (bottom - top)


def _points(
    obj: Dataset, units_key: str, frame: DisplayFrame, what: str
) -> list[tuple[float, float]]:
    data = obj.get("GraphicData")
    if data is None:
        raise ValueError(f"{what}: no Graphic Data")
    vals = [float(v) for v in (data if isinstance(data, Iterable) else [data])]
    dims = int(obj.get("GraphicDimensions", 2) or 2)
    if dims != 2:
        raise ValueError(f"{what}: Graphic Dimensions {dims} (only 2 is defined)")
    if len(vals) % 2:
        raise ValueError(f"{what}: odd number of coordinates ({len(vals)}) in Graphic Data")
    n = obj.get("NumberOfGraphicPoints")
    if n is not None and int(n) * 2 != len(vals):
        raise ValueError(
            f"{what}: Number of Graphic Points {int(n)} but {len(vals) // 2} points of data"
        )
    if not all(math.isfinite(v) for v in vals):
        raise ValueError(f"{what}: non-finite coordinate")
    units = str(obj.get(units_key, "PIXEL") or "PIXEL").upper()
    pts = [(vals[i], vals[i + 1]) for i in range(0, len(vals), 2)]
    if units == "DISPLAY":
        return [frame.to_image(u, v) for u, v in pts]
    if units not in ("PIXEL", "MATRIX"):
        raise ValueError(f"{what}: unknown annotation units {units!r}")
    return [(c - 0.5, r - 0.5) for c, r in pts]


def _foreign_graphic(gtype: str, pts, closed_ok: bool) -> list[tuple[str, list]]:
    """(kind, points) for a graphic of another application."""
    if gtype == "POINT":
        return [("point", pts[:1])] if len(pts) >= 1 else []
    if gtype == "CIRCLE" and len(pts) == 2:
        return [("circle", pts)]
    if gtype == "ELLIPSE" and len(pts) == 4:
        return [("ellipse", pts)]
    if gtype in ("POLYLINE", "INTERPOLATED"):
        if len(pts) >= 4 and pts[0] == pts[-1]:
            return [("polygon", pts[:-1])]
        return [("length", [pts[i], pts[i + 1]]) for i in range(len(pts) - 1)]
    raise ValueError(f"graphic type {gtype!r} with {len(pts)} points")


def _ours(group: tuple[str, str] | None) -> dict | None:
    if group is None:
        return None
    try:
        meta = json.loads(group[1])
    except (TypeError, ValueError):
        return None
    if isinstance(meta, dict) and meta.get("ws") == 1 and isinstance(meta.get("kind"), str):
        return meta
    return None


def _rebuild(meta: dict, graphics: list[tuple[str, list]], texts: list, image: ImageRef,
             layer: str) -> Annotation:  # fmt: skip
    kind = meta["kind"]
    first = graphics[0][1] if graphics else []
    if kind == "cobb":
        pts = graphics[0][1] + graphics[1][1]
    elif kind == "rectangle":
        pts = [first[0], first[2]]
    elif kind == "polygon":
        pts = first[:-1] if len(first) > 3 and first[0] == first[-1] else first
    elif kind == "arrow":
        pts = first[:2]
    elif kind == "text":
        pts = [texts[0][1]] if texts else []
    else:
        pts = first
    extra = tuple(
        (unquote(str(k)), unquote(str(v)))
        for kv in meta.get("extra") or []
        if len(kv) == 2
        for k, v in [kv]
    )
    text = unquote(str(meta.get("text") or ""))
    if kind == "text" and not text and texts and texts[0][0].strip():
        text = texts[0][0]
    return Annotation(unquote(str(meta.get("uid"))), kind, tuple(pts), image, text, layer, extra)  # type: ignore[arg-type]


def annotations_for(ds: Dataset, key: Key, cls: str, frame: DisplayFrame, groups: dict,
                 warnings: list[str]) -> list[Annotation]:  # fmt: skip
    image = ImageRef(key[0], key[1], cls)
    out: list[Annotation] = []
    n_foreign = 0
    for ai, item in enumerate(ds.get("GraphicAnnotationSequence") or []):
        if not applies(item, key):
            continue
        layer = str(item.get("GraphicLayer", "") or "GSPS")
        mine: dict[int, tuple[dict, list, list]] = {}
        for gi, obj in enumerate(item.get("GraphicObjectSequence") or []):
            what = f"graphic annotation {ai + 1}, graphic object {gi + 1}"
            gtype = str(obj.get("GraphicType", "") or "").upper()
            try:
                pts = _points(obj, "GraphicAnnotationUnits", frame, what)
                gid = obj.get("GraphicGroupID")
                meta = _ours(groups.get(int(gid))) if gid is not None else None
                if meta is not None:
                    mine.setdefault(int(gid), (meta, [], []))[1].append((gtype, pts))
                    continue
                for kind, kp in _foreign_graphic(gtype, pts, True):
                    n_foreign += 1
                    out.append(
                        Annotation(
                            f"gsps-{ai}-{gi}-{len(out)}",
                            kind,
                            tuple(kp),
                            image,
                            "",
                            layer,
                            (FOREIGN,),
                        )  # fmt: skip
                    )
            except ValueError as exc:
                warnings.append(f"{what} ({gtype or 'no type'}) skipped: {exc}")
        for ti, obj in enumerate(item.get("TextObjectSequence") or []):
            what = f"graphic annotation {ai + 1}, text object {ti + 1}"
            text = str(obj.get("UnformattedTextValue", "") or "")
            try:
                anchor = None
                if "AnchorPoint" in obj:
                    anchor = _text_point(obj, "AnchorPoint", "AnchorPointAnnotationUnits", frame)
                box = None
                if "BoundingBoxTopLeftHandCorner" in obj:
                    tl = _text_point(
                        obj, "BoundingBoxTopLeftHandCorner", "BoundingBoxAnnotationUnits", frame
                    )
                    br = _text_point(
                        obj, "BoundingBoxBottomRightHandCorner", "BoundingBoxAnnotationUnits", frame
                    )
                    box = (tl, br)
                if anchor is None and box is None:
                    raise ValueError("neither an anchor point nor a bounding box")
                gid = obj.get("GraphicGroupID")
                meta = _ours(groups.get(int(gid))) if gid is not None else None
                if meta is not None:
                    mine.setdefault(int(gid), (meta, [], []))[2].append((text, anchor or box[0]))
                    continue
                extra: list[tuple[str, str]] = [FOREIGN]
                where = anchor
                if box is not None:
                    (c0, r0), (c1, r1) = box
                    extra.append(("box", f"{c0:.6g},{r0:.6g},{c1:.6g},{r1:.6g}"))
                    just = str(obj.get("BoundingBoxTextHorizontalJustification", "") or "")
                    if just:
                        extra.append(("justification", just))
                    where = (min(c0, c1), min(r0, r1))
                out.append(
                    Annotation(
                        f"gsps-{ai}-t{ti}", "text", (where,), image, text, layer, tuple(extra)
                    )  # fmt: skip
                )
                if (
                    anchor is not None
                    and box is not None
                    and str(obj.get("AnchorPointVisible", "N")).upper() == "Y"
                ):
                    (c0, r0), (c1, r1) = box
                    tail = (min(max(anchor[0], min(c0, c1)), max(c0, c1)),
                            min(max(anchor[1], min(r0, r1)), max(r0, r1)))  # fmt: skip
                    if tail != anchor:
                        out.append(
                            Annotation(
                                f"gsps-{ai}-t{ti}-anchor",
                                "arrow",
                                (tail, anchor),
                                image,
                                "",
                                layer,
                                (FOREIGN,),
                            )  # fmt: skip
                        )
            except (ValueError, TypeError) as exc:
                warnings.append(f"{what} skipped: {exc}")
        for gid, (meta, graphics, texts) in mine.items():
            try:
                out.append(_rebuild(meta, graphics, texts, image, layer))
            except (ValueError, TypeError, IndexError) as exc:
                warnings.append(
                    f"graphic annotation {ai + 1}, group {gid} ({meta.get('kind')}) skipped: {exc}"
                )
    return out


def _text_point(obj: Dataset, keyword: str, units: str, frame: DisplayFrame) -> tuple[float, float]:
    value = obj.get(keyword)
    pair = float_pair(value)
    if pair is None:
        raise ValueError(f"{keyword} is not a (column, row) pair")
    tmp = Dataset()
    tmp.GraphicData = list(pair)
    tmp.NumberOfGraphicPoints = 1
    tmp.Units = obj.get(units, "PIXEL")
    return _points(tmp, "Units", frame, keyword)[0]


__all__ = ["FOREIGN", "DisplayFrame", "Key", "annotations_for", "applies", "float_pair", "refs"]
