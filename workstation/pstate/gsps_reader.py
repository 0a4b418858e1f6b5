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

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from workstation.core.annotations import ImageRef, Layer
from workstation.pstate.gsps_graphics import (
    FOREIGN,
    DisplayFrame,
    Key,
    annotations_for,
    applies,
    float_pair,
    refs,
)
from workstation.pstate.model import (
    DisplayedArea,
    ImagePresentation,
    PresentationState,
    Shutter,
)

GSPS_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.11.1"


class GspsReadError(ValueError):
    """The file is not a usable GSPS; the message names the file and the attribute."""


# ---------------------------------------------------------------------------------------------
# references


def _keys(ds: Dataset) -> dict[Key, str]:
    """Every (SOP Instance UID, frame) the state applies to -> SOP Class UID.

    A whole multi-frame image is ``(uid, None)``; frames that a VOI, displayed area or graphic
    annotation item names get their own ``(uid, frame)`` entry besides it.
    """
    keys: dict[Key, str] = {}
    for series in ds.get("ReferencedSeriesSequence") or []:
        for uid, cls, frames in refs(series):
            if frames:
                for f in frames:
                    keys[(uid, f)] = cls
            else:
                keys[(uid, None)] = cls
    for keyword in ("SoftcopyVOILUTSequence", "DisplayedAreaSelectionSequence",
                    "GraphicAnnotationSequence"):  # fmt: skip
        for item in ds.get(keyword) or []:
            for uid, _cls, frames in refs(item):
                if (uid, None) in keys:
                    for f in frames or ():
                        keys.setdefault((uid, f), keys[(uid, None)])
    return keys


# ---------------------------------------------------------------------------------------------
# per-image modules


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
        if not applies(item, key):
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
        if not applies(item, key):
            continue
        tl = float_pair(item.get("DisplayedAreaTopLeftHandCorner"))
        br = float_pair(item.get("DisplayedAreaBottomRightHandCorner"))
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
        spacing = float_pair(item.get("PresentationPixelSpacing"))
        aspect = float_pair(item.get("PresentationPixelAspectRatio"))
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
        frame = DisplayFrame(
            area, size[0] if size else None, size[1] if size else None, rotation, flip
        )
        anns = annotations_for(ds, key, cls_uid, frame, groups, warnings)
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
