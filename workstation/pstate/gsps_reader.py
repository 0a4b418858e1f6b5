"""Reads any Grayscale Softcopy Presentation State into a
:class:`~workstation.pstate.model.PresentationState`.

Ours and other software's (DCMTK ``dcmpsmk``, highdicom, PACS viewers): referenced images and
frames, softcopy VOI (window or LUT) per image, displayed area per image, spatial transformation,
presentation LUT (shape or explicit table), shutters (rectangular, circular, polygonal, bitmap from
an overlay in the state), overlay activation, graphic layers with their order and recommended
colour, graphic groups and graphic annotations: POINT, POLYLINE, INTERPOLATED, CIRCLE, ELLIPSE and
text (bounding box and/or anchor) in PIXEL or DISPLAY units (DISPLAY is relative to the displayed
area after the spatial transformation).

Our own annotations (graphic groups whose description carries ``{"ws": 1, ...}``, see
:mod:`workstation.pstate.gsps_writer`) come back as the same kind with the same uid and points, so
they stay editable measurements. Foreign graphics map to the nearest kind: a closed polyline to a
``polygon``, an open one to ``length`` segments, text to ``text`` (a visible anchor adds an
``arrow`` from the text to the anchor); such annotations carry ``("source", "gsps")`` in
``extra``.

A graphic that cannot be read (an odd number of coordinates, a count that disagrees with the data,
an unknown type) is skipped and named in :attr:`PresentationState.warnings`; nothing else is lost.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from workstation.core.annotations import Annotation, ImageRef, Layer
from workstation.pstate.model import (
    DisplayedArea,
    ImagePresentation,
    PresentationState,
    Shutter,
)

GSPS_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.11.1"
FOREIGN = ("source", "gsps")

Key = tuple[str, "int | None"]


class GspsReadError(ValueError):
    """The file is not a usable GSPS; the message names the file and the attribute."""


# ---------------------------------------------------------------------------------------------
# references


def _refs(item: Dataset) -> list[tuple[str, str, tuple[int, ...] | None]]:
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


def _keys(ds: Dataset) -> dict[Key, str]:
    """Every (SOP Instance UID, frame) the state applies to -> SOP Class UID.

    A whole multi-frame image is ``(uid, None)``; frames that a VOI, displayed area or graphic
    annotation item names get their own ``(uid, frame)`` entry besides it.
    """
    keys: dict[Key, str] = {}
    for series in ds.get("ReferencedSeriesSequence") or []:
        for uid, cls, frames in _refs(series):
            if frames:
                for f in frames:
                    keys[(uid, f)] = cls
            else:
                keys[(uid, None)] = cls
    for keyword in ("SoftcopyVOILUTSequence", "DisplayedAreaSelectionSequence",
                    "GraphicAnnotationSequence"):  # fmt: skip
        for item in ds.get(keyword) or []:
            for uid, _cls, frames in _refs(item):
                if (uid, None) in keys:
                    for f in frames or ():
                        keys.setdefault((uid, f), keys[(uid, None)])
    return keys


def _applies(item: Dataset, key: Key) -> bool:
    refs = _refs(item)
    if not refs:
        return True
    uid, frame = key
    for ruid, _, frames in refs:
        if ruid != uid:
            continue
        if frames is None or (frame is not None and frame in frames):
            return True
    return False


# ---------------------------------------------------------------------------------------------
# per-image modules


def _float_pair(value) -> tuple[float, float] | None:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return a, b


def _first(value) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, (list, tuple)) or hasattr(value, "__len__") and not isinstance(value, str):
        value = value[0] if len(value) else None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _voi(ds: Dataset, key: Key, p: dict, warnings: list[str]) -> None:
    for item in ds.get("SoftcopyVOILUTSequence") or []:
        if not _applies(item, key):
            continue
        centre, width = _first(item.get("WindowCenter")), _first(item.get("WindowWidth"))
        if centre is not None and width is not None:
            p["voi"] = (centre, width)
            fn = str(item.get("VOILUTFunction", "LINEAR") or "LINEAR").upper()
            p["voi_function"] = fn if fn in ("LINEAR", "LINEAR_EXACT", "SIGMOID") else "LINEAR"
            p["voi_explanation"] = str(_first_str(item.get("WindowCenterWidthExplanation")))
        luts = item.get("VOILUTSequence") or []
        if luts:
            lut = luts[0]
            try:
                n, first, bits = (int(v) for v in lut.LUTDescriptor)
                data = _lut_data(lut, bits)
                if n == 0:
                    n = 65536
                p["voi_lut"] = data[:n]
                p["voi_lut_first"] = first
                p["voi_lut_bits"] = bits
                p["voi_explanation"] = str(lut.get("LUTExplanation", "") or "")
            except (AttributeError, TypeError, ValueError) as exc:
                warnings.append(f"VOI LUT of {key[0]} unreadable ({exc}); window kept")
        return


def _first_str(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return str(value[0]) if len(value) else ""
    except TypeError:
        return str(value)


def _lut_data(item: Dataset, bits: int) -> np.ndarray:
    raw = item.LUTData
    if isinstance(raw, (bytes, bytearray)):
        dtype = np.uint8 if bits <= 8 and len(raw) and item["LUTData"].VR == "OB" else np.uint16
        return np.frombuffer(raw, dtype=dtype).astype(np.int64)
    vals = raw if isinstance(raw, Iterable) else [raw]
    return np.asarray([int(v) for v in vals], dtype=np.int64)


def _area(ds: Dataset, key: Key, warnings: list[str]) -> DisplayedArea | None:
    for item in ds.get("DisplayedAreaSelectionSequence") or []:
        if not _applies(item, key):
            continue
        tl = _float_pair(item.get("DisplayedAreaTopLeftHandCorner"))
        br = _float_pair(item.get("DisplayedAreaBottomRightHandCorner"))
        if tl is None or br is None:
            warnings.append(f"displayed area of {key[0]} without corners: ignored")
            return None
        mode = str(item.get("PresentationSizeMode", "SCALE TO FIT") or "SCALE TO FIT").upper()
        mag = _first(item.get("PresentationPixelMagnificationRatio"))
        if mode == "MAGNIFY" and not (mag and mag > 0):
            warnings.append(f"MAGNIFY displayed area of {key[0]} without a ratio: 1.0 used")
            mag = 1.0
        if mode not in ("SCALE TO FIT", "TRUE SIZE", "MAGNIFY"):
            warnings.append(f"unknown Presentation Size Mode {mode!r}: SCALE TO FIT used")
            mode = "SCALE TO FIT"
        spacing = _float_pair(item.get("PresentationPixelSpacing"))
        aspect = _float_pair(item.get("PresentationPixelAspectRatio"))
        # corners as image coordinates; they may come in any order (the standard's TLHC is the
        # pixel shown top left after rotation/flip), DisplayedArea.bounds sorts them
        return DisplayedArea(
            (tl[0] - 1, tl[1] - 1),
            (br[0] - 1, br[1] - 1),
            mode,
            mag if mode == "MAGNIFY" else None,
            spacing,
            aspect,
        )
    return None


def _overlay_bitmap(ds: Dataset, group: int) -> np.ndarray | None:
    rows, cols = ds.get((group, 0x0010)), ds.get((group, 0x0011))
    data = ds.get((group, 0x3000))
    if rows is None or cols is None or data is None:
        return None
    r, c = int(rows.value), int(cols.value)
    bits = np.unpackbits(np.frombuffer(data.value, np.uint8), bitorder="little")[: r * c]
    if bits.size < r * c:
        return None
    bitmap = bits.reshape(r, c).astype(bool)
    origin = ds.get((group, 0x0050))
    if origin is not None and list(origin.value) != [1, 1]:
        oy, ox = (int(v) - 1 for v in origin.value)
        full = np.zeros((r + max(oy, 0), c + max(ox, 0)), dtype=bool)
        full[max(oy, 0) :, max(ox, 0) :] = bitmap[max(-oy, 0) :, max(-ox, 0) :][
            : full.shape[0] - max(oy, 0), : full.shape[1] - max(ox, 0)
        ]
        bitmap = full
    return bitmap


def _shutter(ds: Dataset, warnings: list[str]) -> Shutter | None:
    shape_value = ds.get("ShutterShape")
    if not shape_value:
        return None
    shapes = [shape_value] if isinstance(shape_value, str) else list(shape_value)
    shapes = [str(s).strip().upper() for s in shapes]
    value = ds.get("ShutterPresentationValue")
    grey = float(value) / 0xFFFF if value is not None else 0.0
    colour = None
    lab = ds.get("ShutterPresentationColorCIELabValue")
    if lab is not None:
        colour = _lab_to_rgb(lab)
    kw: dict = {}
    kept = []
    for s in shapes:
        try:
            if s == "RECTANGULAR":
                kw["rect"] = (
                    int(ds.ShutterLeftVerticalEdge),
                    int(ds.ShutterRightVerticalEdge),
                    int(ds.ShutterUpperHorizontalEdge),
                    int(ds.ShutterLowerHorizontalEdge),
                )
            elif s == "CIRCULAR":
                r, c = (float(v) for v in ds.CenterOfCircularShutter)
                kw["centre"] = (c - 1, r - 1)
                kw["radius"] = float(ds.RadiusOfCircularShutter)
            elif s == "POLYGONAL":
                v = [float(x) for x in ds.VerticesOfThePolygonalShutter]
                if len(v) % 2 or len(v) < 6:
                    raise ValueError(f"{len(v)} values, need row/column pairs for 3+ vertices")
                kw["polygon"] = tuple((v[i + 1] - 1, v[i] - 1) for i in range(0, len(v), 2))
            elif s == "BITMAP":
                group = int(ds.get("ShutterOverlayGroup", 0x6000))
                bitmap = _overlay_bitmap(ds, group)
                if bitmap is None:
                    raise ValueError(
                        f"overlay group {group:04X} of the bitmap shutter is not in the state"
                    )
                kw["bitmap"] = bitmap
                kw["bitmap_group"] = group
            else:
                raise ValueError("unknown shape")
            kept.append(s)
        except (AttributeError, TypeError, ValueError) as exc:
            warnings.append(f"{s} shutter skipped: {exc}")
    if not kept:
        return None
    return Shutter(tuple(kept), grey=min(max(grey, 0.0), 1.0), colour=colour, **kw)


def _lab_to_rgb(value) -> tuple[int, int, int] | None:
    try:
        from highdicom.color import CIELabColor

        r, g, b = CIELabColor.from_dicom_value([int(v) for v in value]).to_rgb(clip=True)
        return int(r), int(g), int(b)
    except (ImportError, TypeError, ValueError):
        return None


def _layers(ds: Dataset) -> dict[str, Layer]:
    out: dict[str, Layer] = {}
    for i, item in enumerate(ds.get("GraphicLayerSequence") or []):
        name = str(item.get("GraphicLayer", "") or f"LAYER{i + 1}")
        colour: tuple[int, int, int] | None = None
        lab = item.get("GraphicLayerRecommendedDisplayCIELabValue")
        if lab is not None:
            colour = _lab_to_rgb(lab)
        rgb = item.get("GraphicLayerRecommendedDisplayRGBValue")
        if colour is None and rgb is not None:
            vals = [int(v) for v in rgb]
            scale = 255 / 65535 if max(vals) > 255 else 1
            colour = tuple(int(round(v * scale)) for v in vals[:3])  # type: ignore[assignment]
        grey = item.get("GraphicLayerRecommendedDisplayGrayscaleValue")
        if colour is None and grey is not None:
            g = int(round(int(grey) / 0xFFFF * 255))
            colour = (g, g, g)
        try:
            order = int(item.get("GraphicLayerOrder", i + 1))
        except (TypeError, ValueError):
            order = i + 1
        out[name] = Layer(
            name,
            order,
            colour or (255, 255, 0),
            str(item.get("GraphicLayerDescription", "") or ""),
        )
    return out


# ---------------------------------------------------------------------------------------------
# graphics


class _Frame:
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


def _points(obj: Dataset, units_key: str, frame: _Frame, what: str) -> list[tuple[float, float]]:
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


def _annotations(ds: Dataset, key: Key, cls: str, frame: _Frame, groups: dict,
                 warnings: list[str]) -> list[Annotation]:  # fmt: skip
    image = ImageRef(key[0], key[1], cls)
    out: list[Annotation] = []
    n_foreign = 0
    for ai, item in enumerate(ds.get("GraphicAnnotationSequence") or []):
        if not _applies(item, key):
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


def _text_point(obj: Dataset, keyword: str, units: str, frame: _Frame) -> tuple[float, float]:
    value = obj.get(keyword)
    pair = _float_pair(value)
    if pair is None:
        raise ValueError(f"{keyword} is not a (column, row) pair")
    tmp = Dataset()
    tmp.GraphicData = list(pair)
    tmp.NumberOfGraphicPoints = 1
    tmp.Units = obj.get(units, "PIXEL")
    return _points(tmp, "Units", frame, keyword)[0]


# ---------------------------------------------------------------------------------------------


def _created(ds: Dataset) -> datetime | None:
    date = str(ds.get("PresentationCreationDate", "") or "")
    time = str(ds.get("PresentationCreationTime", "") or "").split(".")[0]
    try:
        return datetime.strptime(date + time.ljust(6, "0")[:6], "%Y%m%d%H%M%S")
    except ValueError:
        return None


def read_gsps(
    source: str | Path | Dataset,
    *,
    image_sizes: dict[str, tuple[int, int]] | None = None,
) -> PresentationState:
    """Read a GSPS file or dataset.

    Parameters
    ----------
    source : path or pydicom.dataset.Dataset
    image_sizes : dict of SOP Instance UID to (rows, cols), optional
        Needed only for DISPLAY-unit graphics of an image whose displayed area is not given.

    Returns
    -------
    PresentationState
        Skipped parts are listed in ``warnings``.

    Raises
    ------
    GspsReadError
        Not a GSPS, unreadable, or referencing no image.
    """
    name = (
        str(source)
        if not isinstance(source, Dataset)
        else str(getattr(source, "filename", None) or "dataset")
    )
    if isinstance(source, Dataset):
        ds = source
    else:
        try:
            ds = pydicom.dcmread(str(source))
        except Exception as exc:
            raise GspsReadError(f"{name}: not a readable DICOM file ({exc})") from exc
    cls = str(ds.get("SOPClassUID", ""))
    if cls != GSPS_SOP_CLASS:
        raise GspsReadError(
            f"{name}: SOP Class {cls or '(none)'} is not Grayscale Softcopy Presentation State"
        )
    keys = _keys(ds)
    if not keys:
        raise GspsReadError(f"{name}: Referenced Series Sequence names no image")
    warnings: list[str] = []
    try:
        rotation = int(ds.get("ImageRotation", 0) or 0) % 360
    except (TypeError, ValueError):
        rotation = 0
    if rotation not in (0, 90, 180, 270):
        warnings.append(f"Image Rotation {rotation} is not a multiple of 90: ignored")
        rotation = 0
    flip = str(ds.get("ImageHorizontalFlip", "N") or "N").upper() == "Y"
    plut = None
    invert = str(ds.get("PresentationLUTShape", "IDENTITY") or "IDENTITY").upper() == "INVERSE"
    plut_bits = 12
    seq = ds.get("PresentationLUTSequence")
    if seq:
        try:
            n, _first_mapped, plut_bits = (int(v) for v in seq[0].LUTDescriptor)
            plut = _lut_data(seq[0], plut_bits)
            invert = bool(plut[0] > plut[-1])
        except (AttributeError, TypeError, ValueError) as exc:
            warnings.append(f"Presentation LUT unreadable ({exc}): IDENTITY used")
            plut = None
    shutter = _shutter(ds, warnings)
    overlays = tuple(
        g for g in range(0x6000, 0x6020, 2) if (g, 0x1001) in ds and ds[(g, 0x1001)].value
    )
    layers = _layers(ds)
    groups = {
        int(item.GraphicGroupID): (
            str(item.get("GraphicGroupLabel", "") or ""),
            str(item.get("GraphicGroupDescription", "") or ""),
        )
        for item in ds.get("GraphicGroupSequence") or []
        if "GraphicGroupID" in item
    }
    images: dict[Key, ImagePresentation] = {}
    for key, cls_uid in keys.items():
        p: dict = {}
        _voi(ds, key, p, warnings)
        area = _area(ds, key, warnings)
        size = (image_sizes or {}).get(key[0])
        frame = _Frame(area, size[0] if size else None, size[1] if size else None, rotation, flip)
        anns = _annotations(ds, key, cls_uid, frame, groups, warnings)
        used = {a.layer for a in anns}
        img_layers = {n: layer for n, layer in layers.items() if n in used or not anns}
        for n in used - set(img_layers):
            img_layers[n] = Layer(n, len(img_layers) + 1)
        images[key] = ImagePresentation(
            image=ImageRef(key[0], key[1], cls_uid),
            displayed_area=area,
            rotation=rotation,
            flip=flip,
            invert=invert,
            shutter=shutter,
            overlays_on=overlays,
            annotations=tuple(anns),
            layers=dict(layers) if layers else img_layers,
            presentation_lut=plut,
            presentation_lut_bits=plut_bits,
            **p,
        )
    series = ds.get("ReferencedSeriesSequence") or []
    return PresentationState(
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
        series_uid=str(ds.get("SeriesInstanceUID", "")),
        study_uid=str(ds.get("StudyInstanceUID", "")),
        label=str(ds.get("ContentLabel", "") or ""),
        description=str(ds.get("ContentDescription", "") or ""),
        creator=str(ds.get("ContentCreatorName", "") or ""),
        created=_created(ds),
        images=images,
        warnings=tuple(dict.fromkeys(warnings)),
        instance_number=int(ds.get("InstanceNumber", 1) or 1),
        series_instance_number=len(series),
    )


__all__ = ["FOREIGN", "GSPS_SOP_CLASS", "GspsReadError", "read_gsps"]
