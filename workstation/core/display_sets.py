"""Group DICOM instances into display sets: the stacks a radiologist scrolls through.

Rules
-----
Which objects count
    An object is an image when it has a Rows and Columns value (the Image Pixel module), is not
    a media directory (DICOMDIR, Philips DIRFILE) and, where known, has a pixel data element. The
    header is read with ``stop_before_pixels=True``, so (7FE0,0010) is not in it; whether the file
    goes on into it is recorded in ``HeaderRecord.has_pixel_data`` (None for an unknown, e.g.
    deflated, file: Rows/Columns decide). SR, presentation states, KO, RT Structure Set / Plan and
    waveforms have no Rows and are ignored. See :func:`image_exclusion_reason`.
Classic single-frame images (and enhanced objects holding one frame)
    Grouped by SeriesInstanceUID, then split by: localizer or not (ImageType contains
    LOCALIZER, SCOUT, TOPOGRAM, SURVIEW or REF_SURVIEW; or an orientation shared by at most 3
    images and at most a quarter as many as the main orientation of the series), matrix size,
    orientation (both direction cosines within 0.01), EchoNumbers; then, only where positions
    repeat, by TemporalPositionIdentifier and then AcquisitionNumber. A group whose frames all lie
    at one position (e.g. an fMRI mosaic time series) is not split but noted.
Enhanced multi-frame objects (more than one frame)
    Each file is split on its own into stacks by the Dimension Index Values that are not
    spatial (everything but In-Stack Position Number and Image Position Patient: StackID,
    TemporalPositionIndex, segment number, private image type, ...), or by StackID and Temporal
    Position Index when there is no dimension index, and by orientation and localizer frame type.
Classic multi-frame objects
    One display set per file: kind ``'cine'`` (US, XA, RF cine loops, ...) or
    ``'multiframe-stack'`` for cross-sectional modalities (RT Dose frames are placed along the normal
    by GridFrameOffsetVector).
Frame order
    Ascending position along the plane normal ``row_dir x col_dir`` (for a standard axial
    stack, IOP 1\\0\\0\\0\\1\\0: feet to head; coronal 1\\0\\0\\0\\0\\-1: anterior to posterior;
    sagittal 0\\1\\0\\0\\0\\-1: left to right). Without complete geometry: InstanceNumber, then
    frame index, then path.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import Any

import numpy as np
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset

from workstation.core.dicom_file import _DEFER, PIXEL_TAGS, read_dataset
from workstation.core.errors import DicomError, TruncatedPixelDataError
from workstation.core.frame_attributes import frame_attribute
from workstation.core.frame_attributes import frame_item as functional_group_item
from workstation.core.geometry import (
    ImagePlane,
    classify_orientation,
    gantry_tilt_deg,
    plane_from_dataset,
    spacing_report,
)
from workstation.core.lean_header import read_header_lean
from workstation.core.raw_values import decimals as _decimals
from workstation.core.raw_values import get_value as _get
from workstation.core.raw_values import int_value as _number
from workstation.core.raw_values import raw_element, tag_of
from workstation.core.raw_values import text_value as _text
from workstation.core.raw_values import to_int as _int

LOCALIZER_TOKENS = frozenset({"LOCALIZER", "SCOUT", "TOPOGRAM", "SURVIEW", "REF_SURVIEW"})
CROSS_SECTIONAL = frozenset({"CT", "MR", "PT", "NM", "RTDOSE", "SEG"})
_DIRECTORY_SOP = "1.2.840.10008.1.3.10"
_DEFLATED = "1.2.840.10008.1.2.1.99"
_SPATIAL_DIMENSIONS = {0x00209057, 0x00200032}  # InStackPositionNumber, ImagePositionPatient
_FRAME_TYPE_MACROS = tuple(f"{m}FrameTypeSequence" for m in ("MRImage", "CTImage", "XRay"))
_IDENTIFYING = (
    "SOPClassUID",
    "SOPInstanceUID",
    "SeriesInstanceUID",
    "StudyInstanceUID",
    "Modality",
)
_ORIENTATION_TOL = 0.01
_PLAIN_CS = re.compile(rb"[A-Z0-9_]+(?:\\[A-Z0-9_]+)* ?")  # code strings, no padding inside
_PIXEL_TAGS = tuple(tag_for_keyword(k) for k in PIXEL_TAGS)  # ``tag in ds``: no keyword look-up
_IPP, _IOP, _PIXEL_SPACING = 0x00200032, 0x00200037, 0x00280030
_ROWS, _COLUMNS = 0x00280010, 0x00280011
_DIRECTORY_RECORDS, _PER_FRAME = 0x00041220, 0x52009230
#: Where :func:`plane_from_dataset` looks beyond the three top-level elements.
_PLANE_ELSEWHERE = (0x52009229, 0x52009230, 0x3004000C)  # functional groups, GridFrameOffsetVector
_POSITION_TOL = 0.01  # mm


@dataclass(frozen=True)
class HeaderRecord:
    """One file's header, read with ``pydicom.dcmread(path, stop_before_pixels=True)``.

    ``has_pixel_data`` is whether the file goes on past the header into (7FE0,0010) (or float
    pixel data); None when unknown (e.g. a header from an index), in which case Rows/Columns
    decide.
    """

    path: str
    ds: Dataset = field(repr=False, compare=False)
    has_pixel_data: bool | None = None


@dataclass(frozen=True)
class FrameRef:
    """One displayable frame: a single-frame file (``frame_index`` None) or a frame of a file."""

    path: str
    frame_index: int | None
    instance_number: int | None
    plane: ImagePlane | None = field(compare=False)
    sop_instance_uid: str | None


@dataclass(frozen=True)
class DisplaySet:
    """A sorted stack (or cine loop, or single image) shown in one viewport.

    ``kind`` is ``'stack'``, ``'single'``, ``'cine'``, ``'localizer'`` or ``'multiframe-stack'``;
    ``orientation`` is ``'axial'``, ``'coronal'``, ``'sagittal'``, ``'oblique'`` or None when the
    frames carry no geometry. ``geometry_ok`` is True when every frame has a plane, all share
    orientation, matrix and pixel spacing, and no two share a position (uneven spacing and gantry
    tilt are allowed and described in ``notes``); otherwise ``geometry_problem`` says why.
    """

    uid: str
    series_uid: str
    label: str
    kind: str
    frames: tuple[FrameRef, ...]
    orientation: str | None
    is_localizer: bool
    notes: tuple[str, ...]
    geometry_ok: bool
    geometry_problem: str | None
    modality: str = ""
    series_number: int | None = None
    study_uid: str = ""


def image_exclusion_reason(ds: Dataset, has_pixel_data: bool | None = None) -> str | None:
    """None when ``ds`` is an image; otherwise why it gets no display set.

    An image has Rows and Columns, is not a media directory and, when ``has_pixel_data`` is
    known, has a pixel data element.
    """
    sop = _text(ds, "SOPClassUID")
    if sop == _DIRECTORY_SOP or _DIRECTORY_RECORDS in ds:
        return "media storage directory (DICOMDIR / DIRFILE)"
    if not (_number(ds, "Rows") or 0) or not (_number(ds, "Columns") or 0):
        name = getattr(ds.get("SOPClassUID"), "name", sop) or "unknown SOP class"
        return f"no Image Pixel module (Rows/Columns) - {name}"
    if has_pixel_data is False:
        return "no Pixel Data element"
    return None


def _iter_files(paths: Iterable[str | os.PathLike[str]]) -> Iterable[str]:
    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for name in sorted(files):
                    yield os.path.join(root, name)
        else:
            yield p


def read_header_records(
    paths: Iterable[str | os.PathLike[str]],
    on_record: Callable[[HeaderRecord], None] | None = None,
) -> tuple[list[HeaderRecord], list[tuple[str, str]]]:
    """Read headers (no pixel data) of files, and of every file under directories given.

    Files without the preamble / DICM prefix are retried with ``force=True`` and kept when they
    hold an SOP, Series or Study UID or a Modality (old ACR-NEMA style files have no UIDs).
    ``on_record``, when given, is called with each record as soon as it is read (the series
    opener has the loader's workers read the pixels then).

    Returns
    -------
    (records, problems)
        ``problems`` lists ``(path, reason)`` for unreadable or non-DICOM files, which are skipped.
    """
    records: list[HeaderRecord] = []
    problems: list[tuple[str, str]] = []
    for path in _iter_files(paths):
        try:  # the usual file: a lean read (no warnings to silence), else pydicom's general one
            ds = read_header_lean(path, _DEFER)
        except Exception:  # noqa: BLE001 - unreadable or odd: the general reader says why
            ds = None
        if ds is not None:
            records.append(HeaderRecord(path, ds, any(t in ds for t in _PIXEL_TAGS)))
            if on_record is not None:
                on_record(records[-1])
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # large values (pixel data) stay on disk; the pixel element's presence is known
                ds, _inferred = read_dataset(path, header_only=True, try_lean=False)
        except TruncatedPixelDataError as exc:  # listed with its series; decoding will say why
            records.append(HeaderRecord(path, exc.header, True))
            if on_record is not None:
                on_record(records[-1])
            continue
        except DicomError as exc:
            problems.append((path, exc.reason))
            continue
        except Exception as exc:  # noqa: BLE001 - report and skip, never crash
            problems.append((path, f"unreadable header: {type(exc).__name__}: {exc}"))
            continue
        records.append(HeaderRecord(path, ds, any(t in ds for t in _PIXEL_TAGS)))
        if on_record is not None:
            on_record(records[-1])
    return records, problems


@dataclass
class _Frame:
    ref: FrameRef
    rec: HeaderRecord
    localizer: bool
    key: tuple = ()


def _image_type_localizer(values: Any) -> bool:
    try:
        tokens = {values.upper()} if isinstance(values, str) else {str(v).upper() for v in values}
    except TypeError:
        return False
    return bool(tokens & LOCALIZER_TOKENS)


def _frame_is_localizer(ds: Dataset, index: int | None) -> bool:
    """Frame Type of an enhanced frame, else Image Type, names a localizer."""
    if index is not None:
        for macro in _FRAME_TYPE_MACROS:
            item = functional_group_item(ds, index, macro)
            if item is not None and item.get("FrameType"):
                return _image_type_localizer(item.FrameType)
    elem = raw_element(ds, tag_of("ImageType"))
    if elem is not None and elem.VR == "CS" and _PLAIN_CS.fullmatch(elem.value):
        return not LOCALIZER_TOKENS.isdisjoint(elem.value.rstrip(b" ").decode().split("\\"))
    return _image_type_localizer(_get(ds, "ImageType", ()))


def _safe_plane(ds: Dataset, index: int | None) -> ImagePlane | None:
    if index is None:
        plane = _classic_plane(ds)
        if plane is not False:
            return plane
    try:
        return plane_from_dataset(ds, index)
    except Exception:  # noqa: BLE001
        return None


def _classic_plane(ds: Dataset) -> ImagePlane | None | bool:
    """The plane of a classic single-frame header, as :func:`plane_from_dataset` gives it; False
    when the general path must decide (functional groups, RT Dose offsets, unusual values)."""
    if any(t in ds for t in _PLANE_ELSEWHERE):
        return False
    ipp, iop = _decimals(ds, _IPP, 3), _decimals(ds, _IOP, 6)
    ps = _decimals(ds, _PIXEL_SPACING, 2)
    if ipp is None or iop is None or ps is None:
        return False
    try:
        rows, cols = int(ds[_ROWS].value or 0), int(ds[_COLUMNS].value or 0)
    except (KeyError, TypeError, ValueError):
        return False
    if rows <= 0 or cols <= 0:
        return None
    try:
        return ImagePlane(np.array(ipp), iop[:3], iop[3:], (ps[0], ps[1]), rows, cols)
    except ValueError:
        return None


def _ref(rec: HeaderRecord, index: int | None, plane: ImagePlane | None) -> FrameRef:
    ds = rec.ds
    number = _number(ds, "InstanceNumber")
    return FrameRef(rec.path, index, number, plane, _text(ds, "SOPInstanceUID") or None)


def _orientation_clusters(frames: list[_Frame]) -> list[int]:
    """Cluster id per frame by direction cosines (-1 without geometry)."""
    reps: list[ImagePlane] = []
    ids = []
    known: dict[bytes, int] = {}  # the same cosines again (the usual case): no comparisons
    for f in frames:
        p = f.ref.plane
        if p is None:
            ids.append(-1)
            continue
        cosines = p.row_dir.tobytes() + p.col_dir.tobytes()
        if cosines in known:
            ids.append(known[cosines])
            continue
        for i, r in enumerate(reps):
            if p.same_orientation(r, _ORIENTATION_TOL):
                ids.append(i)
                break
        else:
            reps.append(p)
            ids.append(len(reps) - 1)
        known[cosines] = ids[-1]
    return ids


def _group(frames: list[_Frame], keyfunc) -> list[list[_Frame]]:
    groups: dict[Any, list[_Frame]] = defaultdict(list)
    for f in frames:
        groups[keyfunc(f)].append(f)
    return list(groups.values())


def _duplicate_count(frames: list[_Frame]) -> tuple[int, int]:
    """(frames sharing a position with another, distinct positions); (0, 0) without geometry."""
    planes = [f.ref.plane for f in frames]
    if not planes or any(p is None for p in planes):
        return 0, 0
    n = planes[0].normal
    order = sorted(planes, key=lambda p: float(np.dot(p.origin, n)))
    same = [np.linalg.norm(b.origin - a.origin) < _POSITION_TOL for a, b in pairwise(order)]
    dup = {j for i, s in enumerate(same) if s for j in (i, i + 1)}
    return len(dup), len(order) - int(sum(same))


def _split_repeats(
    frames: list[_Frame], keys: tuple[str, ...], tags: tuple = ()
) -> list[tuple[list[_Frame], tuple]]:
    """Split by the first key that varies, only while positions repeat and are not all one.

    Returns (frames, ((key, value), ...)) pairs naming the values each part was split by.
    """
    dups, distinct = _duplicate_count(frames)
    if not dups or distinct <= 1 or not keys:
        return [(frames, tags)]
    key, rest = keys[0], keys[1:]
    if len({str(_get(f.rec.ds, key, "")) for f in frames}) <= 1:
        return _split_repeats(frames, rest, tags)
    out = []
    for sub in _group(frames, lambda f: str(_get(f.rec.ds, key, ""))):
        out.extend(_split_repeats(sub, rest, tags + ((key, str(_get(sub[0].rec.ds, key, ""))),)))
    return out


def _enhanced_keys(ds: Dataset, n: int) -> list[tuple]:
    """Non-spatial stack key of each frame of an enhanced object."""
    dims = _get(ds, "DimensionIndexSequence", []) or []
    pointers = [_int(getattr(d, "DimensionIndexPointer", None)) for d in dims]

    def content(i: int, keyword: str) -> Any:
        return frame_attribute(ds, i, "FrameContentSequence", keyword)

    keys = []
    for i in range(n):
        vals = content(i, "DimensionIndexValues")
        vals = [vals] if vals is None or isinstance(vals, (int, str)) else list(vals)
        if pointers and len(vals) == len(pointers):
            pairs = zip(vals, pointers, strict=True)
            keys.append(tuple(str(v) for v, p in pairs if p not in _SPATIAL_DIMENSIONS))
        else:
            keys.append(
                (str(content(i, "StackID") or ""), str(content(i, "TemporalPositionIndex") or ""))
            )
    if n > 1 and len(set(keys)) == n:  # every frame its own "stack": not a stack key
        keys = [(str(content(i, "StackID") or ""),) for i in range(n)]
        if len(set(keys)) == n:
            keys = [()] * n
    return keys


def _label(
    ds: Dataset, kind: str, orientation: str | None, frames: list[_Frame], extra: str
) -> str:
    number = _get(ds, "SeriesNumber")
    modality = str(_get(ds, "Modality", "") or "")
    parts = [f"Series {number}" if number is not None else "Series ?", modality]
    if kind == "localizer":
        parts.append("localizer")
    elif kind == "cine":
        parts.append(f"cine {len(frames)} frames")
    else:
        parts.append(orientation or "image" + ("s" if len(frames) > 1 else ""))
        thick = frame_attribute(
            ds, frames[0].ref.frame_index, "PixelMeasuresSequence", "SliceThickness"
        )
        with contextlib.suppress(TypeError, ValueError):
            if orientation and float(thick) > 0:
                parts.append(f"{float(thick):.1f} mm")
    if extra:
        parts.append(extra)
    desc = _get(ds, "SeriesDescription")
    label = " ".join(p for p in parts if p)
    return f"{label} ({desc})" if desc else label


def _sort(frames: list[_Frame]) -> list[_Frame]:
    def fallback(f: _Frame) -> tuple:
        number = f.ref.instance_number
        return (number if number is not None else 1 << 62, f.ref.frame_index or 0, f.ref.path)

    if frames and all(f.ref.plane is not None for f in frames):
        n = frames[0].ref.plane.normal
        return sorted(
            frames, key=lambda f: (round(float(np.dot(f.ref.plane.origin, n)), 4), fallback(f))
        )
    return sorted(frames, key=fallback)


def _assess(frames: list[_Frame]) -> tuple[list[str], bool, str | None]:
    """Notes, geometry_ok and problem for a sorted group of frames."""
    planes = [f.ref.plane for f in frames]
    missing = sum(p is None for p in planes)
    if missing:
        return [], False, f"{missing} of {len(frames)} frames have no position/orientation/spacing"
    notes: list[str] = []
    spacing = np.array([p.spacing_rc for p in planes])
    if len({(p.rows, p.cols) for p in planes}) > 1 or not np.allclose(
        spacing, spacing[0], rtol=1e-4
    ):
        return notes, False, "matrix size or pixel spacing varies between frames"
    if len(planes) < 2:
        return notes, True, None
    dups, distinct = _duplicate_count(frames)
    if distinct == 1:
        return [f"{len(frames)} frames at one position"], False, "all frames share one position"
    tilt = gantry_tilt_deg(planes)
    if tilt > 0.5:
        notes.append(f"gantry tilt {tilt:.1f}°")
    rep = spacing_report(planes)
    if dups:
        return notes, False, f"{dups} frames share a position with another frame"
    if not rep.regular:
        note = f"uneven spacing {rep.min_spacing:.2f}–{rep.max_spacing:.2f} mm"
        if tilt > 0.5:
            note += f" along the normal ({min(rep.origin_steps):.2f}–{max(rep.origin_steps):.2f} mm between slice origins)"
        notes.append(note)
    return notes, True, None


def _make(
    series_uid: str, kind: str, frames: list[_Frame], localizer: bool, key: tuple, extra: str = ""
) -> DisplaySet:
    frames = _sort(frames)
    ds = frames[0].rec.ds
    plane = next((f.ref.plane for f in frames if f.ref.plane is not None), None)
    orientation = classify_orientation(plane.row_dir, plane.col_dir) if plane is not None else None
    notes, ok, problem = _assess(frames)
    if localizer:
        kind = "localizer"
    elif kind == "stack" and len(frames) == 1:
        kind = "single"
    digest = hashlib.sha1(repr(key).encode()).hexdigest()[:10]
    label = _label(ds, kind, orientation, frames, extra)
    refs = tuple(f.ref for f in frames)
    modality, study = str(_get(ds, "Modality", "")), str(_get(ds, "StudyInstanceUID", ""))
    return DisplaySet(
        f"{series_uid}#{digest}", series_uid, label, kind, refs, orientation, localizer,
        tuple(notes), ok, problem, modality, _int(_get(ds, "SeriesNumber")), study,
    )  # fmt: skip


def _series_uid(rec: HeaderRecord) -> str:
    uid = _text(rec.ds, "SeriesInstanceUID")
    return str(uid) if uid else f"no-series-uid:{os.path.dirname(os.path.abspath(rec.path))}"


def _from_single_frames(series_uid: str, frames: list[_Frame]) -> list[DisplaySet]:
    clusters = _orientation_clusters(frames)
    sizes = Counter(c for c in clusters if c >= 0)
    if len(sizes) > 1:
        main = max(sizes.values())
        for f, c in zip(frames, clusters, strict=True):
            if c >= 0 and sizes[c] <= 3 and sizes[c] * 4 <= main:
                f.localizer = True
    for f, c in zip(frames, clusters, strict=True):
        p, ds = f.ref.plane, f.rec.ds
        iop = None if p is None else tuple(np.round(np.r_[p.row_dir, p.col_dir], 2).tolist())
        size = (_number(ds, "Rows"), _number(ds, "Columns"))
        f.key = (f.localizer, size, c, iop, str(_get(ds, "EchoNumbers", "")))
    echoes = {f.key[4] for f in frames}
    out = []
    for group in _group(frames, lambda f: f.key):
        base = group[0].key
        for sub, tags in _split_repeats(group, ("TemporalPositionIdentifier", "AcquisitionNumber")):
            extra = [f"echo {base[4]}"] if base[4] and len(echoes) > 1 else []
            extra += [f"{'acq' if k == 'AcquisitionNumber' else 't'} {v}" for k, v in tags]
            key = base[:2] + base[3:] + tags  # the cluster id depends on input order: leave it out
            out.append(_make(series_uid, "stack", sub, base[0], key, " ".join(extra)))
    return out


def _from_multiframe(series_uid: str, rec: HeaderRecord, n: int) -> list[DisplaySet]:
    ds = rec.ds
    sop = str(_get(ds, "SOPInstanceUID", rec.path))
    enhanced = "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds
    if not enhanced:
        has_grid = _get(ds, "GridFrameOffsetVector") is not None
        frames = [
            _Frame(_ref(rec, i, _safe_plane(ds, i) if has_grid else None), rec, False)
            for i in range(n)
        ]
        modality = str(_get(ds, "Modality", "") or "")
        kind = "multiframe-stack" if (has_grid or modality in CROSS_SECTIONAL) else "cine"
        dset = _make(series_uid, kind, frames, False, (sop,))
        if not has_grid and kind == "multiframe-stack":
            why = "classic multi-frame object without per-frame geometry"
            dset = replace(dset, geometry_ok=False, geometry_problem=why)
        return [dset]
    frames = [
        _Frame(_ref(rec, i, _safe_plane(ds, i)), rec, _frame_is_localizer(ds, i)) for i in range(n)
    ]
    keys = _enhanced_keys(ds, n)
    clusters = _orientation_clusters(frames)
    for f, k, c in zip(frames, keys, clusters, strict=True):
        f.key = (sop, k, c, f.localizer)
    groups = _group(frames, lambda f: f.key)
    out = []
    for i, g in enumerate(sorted(groups, key=lambda g: g[0].ref.frame_index or 0)):
        extra = f"stack {i + 1}/{len(groups)}" if len(groups) > 1 else ""
        out.append(_make(series_uid, "multiframe-stack", g, g[0].localizer, g[0].key, extra))
    return out


def build_display_sets(records: Iterable[HeaderRecord]) -> list[DisplaySet]:
    """Group image headers into display sets (see the module docstring for the rules).

    Non-image objects are ignored. Each frame of each image lands in exactly one display set.
    The result is ordered by study, series number, series UID, localizers first, then by the
    lowest instance number.
    """
    singles: dict[str, list[_Frame]] = defaultdict(list)
    out: list[DisplaySet] = []
    for rec in records:
        ds = rec.ds
        if image_exclusion_reason(ds, rec.has_pixel_data) is not None:
            continue
        series_uid = _series_uid(rec)
        n = _number(ds, "NumberOfFrames") or 1
        if n > 1:
            out.extend(_from_multiframe(series_uid, rec, n))
        else:
            enhanced = _PER_FRAME in ds
            index = 0 if enhanced else None
            singles[series_uid].append(
                _Frame(
                    _ref(rec, index, _safe_plane(ds, index)), rec, _frame_is_localizer(ds, index)
                )
            )
    for series_uid, frames in singles.items():
        out.extend(_from_single_frames(series_uid, frames))
    seen: dict[str, int] = defaultdict(int)
    unique = []
    for d in out:
        seen[d.uid] += 1
        if seen[d.uid] > 1:
            d = replace(d, uid=f"{d.uid}.{seen[d.uid]}")
        unique.append(d)

    def order(d: DisplaySet) -> tuple:
        inst = min(
            (f.instance_number for f in d.frames if f.instance_number is not None), default=0
        )
        sn = d.series_number if d.series_number is not None else 1 << 30
        return (d.study_uid, sn, d.series_uid, not d.is_localizer, inst)

    return sorted(unique, key=order)
