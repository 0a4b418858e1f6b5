"""Writes a :class:`~workstation.pstate.model.PresentationState` as a DICOM Grayscale Softcopy
Presentation State (GSPS), with highdicom's ``pr`` module wrapped here and nowhere else.

highdicom builds the identification, relationship, graphic annotation/layer/group, VOI and
presentation LUT modules; this module then adds, one module at a time and validating first, what
highdicom lacks: the displayed area per image, the spatial transformation, display and bitmap
shutters and overlay activation.

How annotations are encoded (so that our states re-open as editable measurements and other
viewers still see the graphics and the values):

* Every :class:`~workstation.core.annotations.Annotation` becomes one **graphic group** (Graphic
  Group Module, PS3.3 C.10.7): Graphic Group Label = the kind (``length``, ``angle`` ...) and
  Graphic Group Description = a JSON object ``{"ws": 1, "kind": ..., "uid": ..., "text": ...,
  "extra": [[key, value], ...]}``. Every graphic and text object of the annotation carries that
  Graphic Group ID. A reader that knows nothing of this sees ordinary graphics and text.
* The graphics, in PIXEL units (image coordinates + 0.5), first object(s) carrying the points:
  ``length`` POLYLINE (2), ``angle`` POLYLINE (3: end, vertex, end), ``cobb`` two POLYLINEs,
  ``ellipse`` ELLIPSE (4), ``circle`` CIRCLE (2), ``rectangle`` closed POLYLINE (5, corners
  0 and 2 are the annotation's), ``polygon`` closed POLYLINE (n + 1), ``point`` POINT, ``arrow``
  POLYLINE tail-head then a POLYLINE arrow head, ``text`` a TextObject at its anchor.
* The measured value (and the annotation's own label) is a TextObject anchored beside the
  graphic, lines separated by CR LF; on reading our own states it is recomputed, not parsed.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

import highdicom as hd
import numpy as np
from highdicom.color import CIELabColor
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import generate_uid

from workstation import __version__
from workstation.core.annotations import Annotation, Layer
from workstation.core.measurements import Measurement
from workstation.pstate.model import DisplayedArea, ImagePresentation, PresentationState, Shutter

GSPS_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.11.1"
GROUP_TAG = "ws"
#: characters kept as they are in the group description; others (%, ", backslash, control
#: characters, non-ASCII) are percent-encoded (UTF-8), so the ST value has no backslash
_SAFE = " !#$&'()*+,-./:;<=>?@[]^_`{|}~"
_CS_RE = re.compile(r"^[A-Z0-9 _]{1,16}$")


class GspsWriteError(ValueError):
    """The state cannot be written as a GSPS; the message says which part and why."""


@dataclass(frozen=True)
class WriterInfo:
    """Who writes the state (General Equipment of the GSPS)."""

    manufacturer: str = "workstation"
    model_name: str = "workstation"
    software_version: str = __version__
    device_serial_number: str = "0"
    institution_name: str | None = None


def layer_name_ok(name: str) -> bool:
    """Whether ``name`` is a valid Graphic Layer (CS: 1-16 of A-Z, 0-9, space, underscore)."""
    return bool(_CS_RE.match(name))


def content_label(text: str) -> str:
    """A valid Content Label (CS) from free text: upper case, other characters as ``_``."""
    label = re.sub(r"[^A-Z0-9 _]", "_", text.upper())[:16].strip()
    return label or "UNNAMED"


# ---------------------------------------------------------------------------------------------
# annotations -> graphic and text objects


def _pixel(points: Sequence[tuple[float, float]]) -> np.ndarray:
    return np.array([(c + 0.5, r + 0.5) for c, r in points], dtype=np.float64)


def _graphic(kind: str, points, group: hd.pr.GraphicGroup, closed: bool = False):
    data = _pixel(points)
    safe = np.clip(data, 0.0, None)  # highdicom refuses negative PIXEL values
    obj = hd.pr.GraphicObject(kind, safe, "PIXEL", is_filled=False, graphic_group=group)
    if not np.array_equal(safe, data):
        # a point beyond the top/left edge: keep it exactly (PS3.3 does not forbid it)
        obj.GraphicData = [float(v) for v in data.flatten()]
    return obj


def _st(text: str) -> str:
    """A Short Text value: no backslash (the value separator), at most 1024 characters."""
    return text.replace("\\", "/")[:1024]


def _arrow_head(tail, head) -> list[tuple[float, float]]:
    length = math.dist(tail, head)
    if length == 0:
        return [head, head]
    size = min(max(length * 0.2, 3.0), 20.0)
    ux, uy = (head[0] - tail[0]) / length, (head[1] - tail[1]) / length
    wing = math.radians(25)
    pts = []
    for s in (1, -1):
        ca, sa = math.cos(s * wing), math.sin(s * wing)
        dx, dy = ux * ca - uy * sa, ux * sa + uy * ca
        pts.append((head[0] - size * dx, head[1] - size * dy))
    return [pts[0], head, pts[1]]


def _value_anchor(a: Annotation) -> tuple[float, float]:
    """Where the value text goes: right of the rightmost point."""
    c, r = max(a.points, key=lambda p: p[0])
    if a.kind == "circle":
        centre, edge = a.points
        radius = math.dist(centre, edge)
        c, r = centre[0] + radius, centre[1]
    return c + 4.0, r


def _objects_for(
    a: Annotation, group: hd.pr.GraphicGroup, measurement: Measurement | None
) -> tuple[list, list]:
    g: list = []
    t: list = []
    p = a.points
    if a.kind in ("length", "angle"):
        g.append(_graphic("POLYLINE", p, group))
    elif a.kind == "cobb":
        g.append(_graphic("POLYLINE", p[:2], group))
        g.append(_graphic("POLYLINE", p[2:], group))
    elif a.kind == "ellipse":
        g.append(_graphic("ELLIPSE", p, group))
    elif a.kind == "circle":
        g.append(_graphic("CIRCLE", p, group))
    elif a.kind == "rectangle":
        (c0, r0), (c1, r1) = p
        g.append(_graphic("POLYLINE", [(c0, r0), (c1, r0), (c1, r1), (c0, r1), (c0, r0)], group))
    elif a.kind == "polygon":
        g.append(_graphic("POLYLINE", [*p, p[0]], group))
    elif a.kind == "point":
        g.append(_graphic("POINT", p, group))
    elif a.kind == "arrow":
        g.append(_graphic("POLYLINE", p, group))
        g.append(_graphic("POLYLINE", _arrow_head(*p), group))
    if a.kind == "text":
        (c, r) = _pixel(p)[0]
        t.append(
            hd.pr.TextObject(
                _st(a.text) or " ",
                "PIXEL",
                anchor_point=(max(float(c), 0.0), max(float(r), 0.0)),
                anchor_point_visible=False,
                graphic_group=group,
            )
        )
        return g, t
    lines = ([a.text] if a.text else []) + (list(measurement.lines) if measurement else [])
    if lines:
        (c, r) = _pixel([_value_anchor(a)])[0]
        t.append(
            hd.pr.TextObject(
                _st("\r\n".join(lines)),
                "PIXEL",
                anchor_point=(max(float(c), 0.0), max(float(r), 0.0)),
                anchor_point_visible=False,
                graphic_group=group,
            )
        )
    return g, t


def _group_for(a: Annotation, group_id: int) -> hd.pr.GraphicGroup:
    description = json.dumps(
        {
            GROUP_TAG: 1,
            "kind": a.kind,
            "uid": quote(a.uid, safe=_SAFE),
            "text": quote(a.text, safe=_SAFE),
            "extra": [[quote(k, safe=_SAFE), quote(v, safe=_SAFE)] for k, v in a.extra],
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )
    if len(description) > 1024:
        raise GspsWriteError(
            f"annotation {a.uid} ({a.kind}): its text is too long for a graphic group "
            f"description ({len(description)} > 1024 characters)"
        )
    return hd.pr.GraphicGroup(group_id, a.kind, description)


def _layer(layer: Layer) -> hd.pr.GraphicLayer:
    colour = CIELabColor.from_rgb(*layer.colour)
    out = hd.pr.GraphicLayer(
        layer.name, int(layer.order), layer.description or None, display_color=colour
    )
    r, g, b = layer.colour
    out.GraphicLayerRecommendedDisplayGrayscaleValue = int(
        round((0.2126 * r + 0.7152 * g + 0.0722 * b) / 255 * 0xFFFF)
    )
    return out


# ---------------------------------------------------------------------------------------------
# modules highdicom does not write


def _ref_item(ds: Dataset, frame: int | None) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = ds.SOPClassUID
    item.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    if frame is not None:
        item.ReferencedFrameNumber = [int(frame)]
    return item


def _area_item(area: DisplayedArea, rotation: int, flip: bool, geo_rows: int) -> Dataset:
    item = Dataset()
    left, top, right, bottom = area.bounds
    # corners as 1-based pixel numbers; TLHC is the pixel that lands top left after the
    # spatial transformation (PS3.3 C.10.4), BRHC the one bottom right
    c0, c1 = int(round(left + 0.5)) + 1, int(round(right - 0.5)) + 1
    r0, r1 = int(round(top + 0.5)) + 1, int(round(bottom - 0.5)) + 1
    corners = {(0, 0): (c0, r0), (1, 0): (c1, r0), (1, 1): (c1, r1), (0, 1): (c0, r1)}
    screen = {}
    for (i, j), px in corners.items():
        x, y = i, j
        for _ in range(rotation // 90):  # clockwise rotation first ...
            x, y = 1 - y, x
        if flip:  # ... then the horizontal flip (PS3.3 C.10.6)
            x = 1 - x
        screen[(x, y)] = px
    item.DisplayedAreaTopLeftHandCorner = list(screen[(0, 0)])
    item.DisplayedAreaBottomRightHandCorner = list(screen[(1, 1)])
    item.PresentationSizeMode = area.size_mode
    if area.size_mode == "MAGNIFY":
        item.PresentationPixelMagnificationRatio = float(area.magnification or 1.0)
    if area.pixel_spacing is not None:
        item.PresentationPixelSpacing = [f"{v:.10g}" for v in area.pixel_spacing]
    else:
        if area.size_mode == "TRUE SIZE":
            raise GspsWriteError("TRUE SIZE displayed area needs Presentation Pixel Spacing")
        aspect = area.pixel_aspect or (1, 1)
        item.PresentationPixelAspectRatio = [int(round(v)) for v in aspect]
    return item


def _add_displayed_areas(out: Dataset, entries: list[tuple[Dataset, ImagePresentation]]) -> None:
    groups: dict[tuple, list[tuple[Dataset, ImagePresentation]]] = {}
    for ds, p in entries:
        area = p.displayed_area or DisplayedArea(
            (0.0, 0.0), (float(ds.Columns) - 1, float(ds.Rows) - 1)
        )
        key = (area.tlhc, area.brhc, area.size_mode, area.magnification, area.pixel_spacing,
               area.pixel_aspect)  # fmt: skip
        groups.setdefault(key, []).append((ds, p if p.displayed_area else _with_area(p, area)))
    items = []
    for members in groups.values():
        first = members[0][1]
        assert first.displayed_area is not None
        item = _area_item(first.displayed_area, first.rotation, first.flip, int(members[0][0].Rows))
        if len(groups) > 1:
            item.ReferencedImageSequence = DicomSequence(
                [_ref_item(ds, p.image.frame_number) for ds, p in members]
            )
        items.append(item)
    out.DisplayedAreaSelectionSequence = DicomSequence(items)


def _with_area(p: ImagePresentation, area: DisplayedArea) -> ImagePresentation:
    from dataclasses import replace

    return replace(p, displayed_area=area)


def _voi_item(members: list[tuple[Dataset, ImagePresentation]]):
    refs = hd.ReferencedImageSequence(referenced_images=[ds for ds, _ in members])
    for item, (_, p) in zip(refs, members, strict=True):
        if p.image.frame_number is not None:
            item.ReferencedFrameNumber = [int(p.image.frame_number)]
    p = members[0][1]
    if p.voi_lut is not None:
        data = np.asarray(p.voi_lut)
        bits = int(p.voi_lut_bits)
        if data.min() < 0 or data.max() >= 2**bits:
            raise GspsWriteError(f"VOI LUT values outside 0..2^{bits}-1")
        lut = hd.VOILUT(int(p.voi_lut_first), data.astype(np.uint16 if bits > 8 else np.uint8),
                        p.voi_explanation or None)  # fmt: skip
        lut.LUTDescriptor = [len(data) if len(data) < 65536 else 0, int(p.voi_lut_first), bits]
        return hd.pr.SoftcopyVOILUTTransformation(voi_luts=[lut], referenced_images=refs)
    centre, width = p.voi  # type: ignore[misc]
    if not width > 0 or (p.voi_function == "LINEAR" and width < 1):
        raise GspsWriteError(f"window width {width} is not valid for VOI function {p.voi_function}")
    return hd.pr.SoftcopyVOILUTTransformation(
        window_center=float(centre),
        window_width=float(width),
        window_explanation=p.voi_explanation or None,
        voi_lut_function=p.voi_function,
        referenced_images=refs,
    )


def _add_laterality(out: Dataset, images: list[Dataset]) -> None:
    """General Series Laterality (Type 2C): the images' own when they agree on R or L, else
    empty (unknown to the state; dciodvfy warns that empty means unknown)."""
    values = {
        str(ds.get("Laterality") or ds.get("ImageLaterality") or "").strip().upper()
        for ds in images
    }
    out.Laterality = values.pop() if len(values) == 1 and values <= {"R", "L"} else ""


def _add_shutter(out: Dataset, shutter: Shutter) -> None:
    value = int(round(shutter.grey * 0xFFFF))
    if "BITMAP" in shutter.shapes:
        if len(shutter.shapes) > 1:
            raise GspsWriteError(
                "a bitmap shutter cannot be combined with other shutter shapes in one GSPS "
                "(Display Shutter and Bitmap Display Shutter modules are exclusive)"
            )
        bitmap = np.asarray(shutter.bitmap, dtype=bool)
        group = 0x6000
        out.ShutterShape = "BITMAP"
        out.ShutterOverlayGroup = group
        out.ShutterPresentationValue = value
        rows, cols = bitmap.shape
        out.add_new((group, 0x0010), "US", rows)
        out.add_new((group, 0x0011), "US", cols)
        out.add_new((group, 0x0040), "CS", "G")
        out.add_new((group, 0x0050), "SS", [1, 1])
        out.add_new((group, 0x0100), "US", 1)
        out.add_new((group, 0x0102), "US", 0)
        packed = np.packbits(bitmap.ravel(), bitorder="little").tobytes()
        if len(packed) % 2:
            packed += b"\0"
        out.add_new((group, 0x3000), "OW", packed)
    else:
        out.ShutterShape = list(shutter.shapes) if len(shutter.shapes) > 1 else shutter.shapes[0]
        if "RECTANGULAR" in shutter.shapes:
            left, right, upper, lower = shutter.rect  # type: ignore[misc]
            if not (left < right and upper < lower):
                raise GspsWriteError(f"rectangular shutter {shutter.rect} is empty")
            out.ShutterLeftVerticalEdge = int(left)
            out.ShutterRightVerticalEdge = int(right)
            out.ShutterUpperHorizontalEdge = int(upper)
            out.ShutterLowerHorizontalEdge = int(lower)
        if "CIRCULAR" in shutter.shapes:
            c, r = shutter.centre  # type: ignore[misc]
            out.CenterOfCircularShutter = [int(round(r)) + 1, int(round(c)) + 1]
            out.RadiusOfCircularShutter = int(round(shutter.radius or 0))
        if "POLYGONAL" in shutter.shapes:
            verts: list[int] = []
            for c, r in shutter.polygon or ():
                verts += [int(round(r)) + 1, int(round(c)) + 1]
            out.VerticesOfThePolygonalShutter = verts
        out.ShutterPresentationValue = value
    # Shutter Presentation Color CIELab Value belongs to colour presentation states only
    # (PS3.3 C.11.12, Type 1C): a GSPS gives the grey value alone, so ``shutter.colour`` is dropped


# ---------------------------------------------------------------------------------------------


_CODECS = {"": "ascii", "ISO_IR 6": "ascii", "ISO_IR 100": "latin_1", "ISO_IR 192": "utf_8"}


def _charset(image: Dataset, state: PresentationState, measurements: Mapping) -> object:
    """The image's Specific Character Set when it can encode every text we add, else UTF-8."""
    current = image.get("SpecificCharacterSet") or ""
    texts = [state.label, state.description, state.creator]
    for p in state.images.values():
        texts += [a.text for a in p.annotations]
        texts += [layer.description for layer in p.layers.values()]
    for m in measurements.values():
        texts += list(m.lines)
    if all(t.isascii() for t in texts):
        return current or None
    codec = _CODECS.get(str(current) if isinstance(current, str) else "")
    if codec:
        try:
            for t in texts:
                t.encode(codec)
            if codec != "ascii":
                return current
        except UnicodeEncodeError:
            pass
    return "ISO_IR 192"


#: Type 2 attributes highdicom copies from the referenced image (empty when the image lacks them)
_COPIED_TYPE2 = ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "AccessionNumber",
                 "StudyID", "StudyDate", "StudyTime", "ReferringPhysicianName")  # fmt: skip


def image_header(ds: Dataset) -> Dataset:
    """The image's attributes without pixel data, with the Type 2 ones highdicom needs."""
    out = Dataset()
    for elem in ds:
        if elem.tag.group != 0x7FE0:
            out.add(elem)
    for keyword in _COPIED_TYPE2:
        if keyword not in out:
            setattr(out, keyword, "")
    if int(out.get("NumberOfFrames", 1) or 1) > 1 and "SharedFunctionalGroupsSequence" not in out:
        # highdicom looks for the modality LUT of a multi-frame image in the shared functional
        # groups; a multi-frame image without them (not "enhanced") then has none to copy
        out.SharedFunctionalGroupsSequence = DicomSequence([Dataset()])
    for keyword in ("StudyDate", "PatientBirthDate", "StudyTime"):
        out[keyword].value = _date_or_time(keyword, out[keyword].value)
    return out


def _date_or_time(keyword: str, value: object) -> str:
    """A conformant DA/TM from what the image has ("2003.02.01", "09:11:56" occur), else ""."""
    text = str(value or "").strip()
    if keyword.endswith("Date"):
        digits = re.sub(r"[.\-/]", "", text)
        return digits if re.fullmatch(r"\d{8}", digits) else ""
    clean = text.replace(":", "")
    return clean if re.fullmatch(r"\d{2,6}(\.\d{1,6})?", clean) else ""


def _same(values: list, what: str) -> object:
    first = values[0]
    for v in values[1:]:
        if v != first:
            raise GspsWriteError(
                f"one GSPS has one {what} for all its images; got {first!r} and {v!r} "
                "(save the images separately)"
            )
    return first


def write_gsps(
    state: PresentationState,
    images: Sequence[Dataset],
    *,
    measurements: Mapping[str, Measurement] | None = None,
    series_number: int = 900,
    writer: WriterInfo | None = None,
) -> Dataset:
    """Build the GSPS dataset of ``state``.

    Parameters
    ----------
    state : PresentationState
        What to save; ``state.images`` says which images (frames) it applies to and how.
    images : sequence of pydicom.dataset.Dataset
        The headers of the referenced images (pixel data not needed), one per SOP instance.
    measurements : mapping of annotation uid to Measurement, optional
        Values written as text beside their graphics (what other viewers show).
    series_number : int
        Series Number of the presentation state's series.
    writer : WriterInfo, optional
        Equipment identification.

    Returns
    -------
    pydicom.dataset.Dataset
        A complete GSPS (with file meta), ready for ``save_as``.

    Raises
    ------
    GspsWriteError
        When the state cannot be expressed (an image header missing, a transform that differs
        between images, an invalid layer name, both a bitmap and a geometric shutter...).
    """
    writer = writer or WriterInfo()
    if not state.images:
        raise GspsWriteError("the presentation state references no image")
    by_uid = {str(ds.SOPInstanceUID): ds for ds in images}
    entries: list[tuple[Dataset, ImagePresentation]] = []
    for (uid, _frame), p in state.images.items():
        ds = by_uid.get(uid)
        if ds is None:
            raise GspsWriteError(f"no header given for referenced image {uid}")
        if int(ds.get("SamplesPerPixel", 1)) != 1:
            raise GspsWriteError(f"image {uid} is colour; a GSPS applies to grey images only")
        entries.append((ds, p))
    presentations = [p for _, p in entries]
    rotation = _same([p.rotation for p in presentations], "rotation")
    flip = _same([p.flip for p in presentations], "flip")
    invert = _same([p.invert for p in presentations], "presentation LUT shape")
    shutter = _same([p.shutter for p in presentations], "shutter")
    overlays = sorted({g for p in presentations for g in p.overlays_on})
    for g in overlays:
        if not (0x6000 <= g <= 0x601E and g % 2 == 0):
            raise GspsWriteError(f"overlay group {g:#06x} is not a repeating group 60xx")

    referenced = [
        image_header(ds) for ds in {str(ds.SOPInstanceUID): ds for ds, _ in entries}.values()
    ]
    entries = [(image_header(ds), p) for ds, p in entries]

    # graphic layers
    layers: dict[str, Layer] = {}
    for p in presentations:
        for name, layer in p.layers.items():
            layers.setdefault(name, layer)
        for a in p.annotations:
            layers.setdefault(a.layer, Layer(a.layer, order=len(layers) + 1))
    if overlays and "OVERLAYS" not in layers:
        layers["OVERLAYS"] = Layer("OVERLAYS", order=len(layers) + 1, colour=(255, 255, 255))
    for name in layers:
        if not layer_name_ok(name):
            raise GspsWriteError(
                f"graphic layer {name!r} is not a valid name (1-16 of A-Z, 0-9, space, _)"
            )
    hd_layers = {name: _layer(layer) for name, layer in layers.items()}

    # graphic groups and annotations, one GraphicAnnotation per (image, frame, layer)
    groups: list[hd.pr.GraphicGroup] = []
    annotations: list[hd.pr.GraphicAnnotation] = []
    measurements = measurements or {}
    for ds, p in entries:
        per_layer: dict[str, tuple[list, list]] = {}
        for a in p.annotations:
            if a.image.sop_instance_uid != str(ds.SOPInstanceUID):
                raise GspsWriteError(
                    f"annotation {a.uid} lies on image {a.image.sop_instance_uid}, "
                    f"not on {ds.SOPInstanceUID} where it is listed"
                )
            group = _group_for(a, len(groups) + 1)
            groups.append(group)
            g, t = _objects_for(a, group, measurements.get(a.uid))
            bucket = per_layer.setdefault(a.layer, ([], []))
            bucket[0].extend(g)
            bucket[1].extend(t)
        for name, (g, t) in per_layer.items():
            annotations.append(
                hd.pr.GraphicAnnotation(
                    referenced_images=[ds],
                    graphic_layer=hd_layers[name],
                    referenced_frame_number=p.image.frame_number,
                    graphic_objects=g or None,
                    text_objects=t or None,
                )
            )

    # softcopy VOI, grouped by identical windows (a VOI LUT is written per image)
    voi_groups: dict[tuple, list[tuple[Dataset, ImagePresentation]]] = {}
    for ds, p in entries:
        if p.voi_lut is not None:
            voi_groups.setdefault(("lut", id(p)), []).append((ds, p))
        elif p.voi is not None:
            voi_groups.setdefault((p.voi, p.voi_function, p.voi_explanation), []).append((ds, p))
    vois = [_voi_item(members) for members in voi_groups.values()]

    created = state.created
    kwargs: dict = {"specific_character_set": _charset(referenced[0], state, measurements)}
    if writer.institution_name:
        kwargs["institution_name"] = writer.institution_name
    with warnings.catch_warnings():
        # highdicom warns about the image's patient name form; the value is copied as it is
        warnings.simplefilter("ignore", UserWarning)
        out = hd.pr.GrayscaleSoftcopyPresentationState(
            referenced_images=referenced,
            series_instance_uid=state.series_uid or generate_uid(),
            series_number=int(series_number),
            sop_instance_uid=state.sop_instance_uid or generate_uid(),
            instance_number=int(state.instance_number),
            manufacturer=writer.manufacturer,
            manufacturer_model_name=writer.model_name,
            software_versions=writer.software_version,
            device_serial_number=writer.device_serial_number,
            content_label=content_label(state.label),
            content_description=(state.description or None),
            graphic_annotations=annotations or None,
            graphic_layers=list(hd_layers.values()) or None,
            graphic_groups=groups or None,
            content_creator_name=state.creator or None,
            voi_lut_transformations=vois or None,
            presentation_lut_transformation=hd.PresentationLUTTransformation(
                presentation_lut_shape="INVERSE" if invert else "IDENTITY"
            ),
            **kwargs,
        )
    if not vois and "SoftcopyVOILUTSequence" in out:
        del out.SoftcopyVOILUTSequence  # highdicom copied the images' windows: not asked for
    if created is not None:
        out.PresentationCreationDate = created.strftime("%Y%m%d")
        out.PresentationCreationTime = created.strftime("%H%M%S")

    _add_laterality(out, referenced)
    _add_displayed_areas(out, entries)
    out.ImageRotation = int(rotation)  # type: ignore[arg-type]
    out.ImageHorizontalFlip = "Y" if flip else "N"
    if shutter is not None:
        _add_shutter(out, shutter)  # type: ignore[arg-type]
    for g in overlays:
        out.add_new((g, 0x1001), "CS", "OVERLAYS")
    return out


__all__ = [
    "GSPS_SOP_CLASS",
    "GspsWriteError",
    "WriterInfo",
    "content_label",
    "image_header",
    "layer_name_ok",
    "write_gsps",
]
