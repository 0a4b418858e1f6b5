"""The numbers behind the measuring tools: lengths, angles, region statistics and the point probe.

Every function works in image coordinates ``(col, row)`` with pixel centres at integers (see
:mod:`workstation.core.annotations`). Distances and areas use the calibration's row and column
spacing separately, so anisotropic pixels measure right; an uncalibrated image measures in pixels
and the result says so.

Region statistics count a pixel when its centre lies inside the outline (on the outline counts as
inside for rectangles, circles and ellipses; polygons use the even-odd rule with half-open edges,
so two polygons sharing an edge never both count a pixel). The standard deviation is the
population one (divided by ``n``), the value a pixel-by-pixel check of the region gives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from pydicom.dataset import Dataset

from workstation.core.annotations import ROI_KINDS, Annotation, ellipse_axes
from workstation.core.calibration import SOURCE_NONE, Calibration
from workstation.core.geometry import ImagePlane

Point = tuple[float, float]


@dataclass(frozen=True)
class Measurement:
    """What a measuring annotation measures.

    Attributes
    ----------
    lines : tuple of str
        Text to show beside the graphic, e.g. ``("12.3 mm",)`` or the three ROI lines.
    values : dict
        Machine-readable values: ``length_mm`` | ``length_px``, ``angle_deg``, ``area_mm2`` |
        ``area_px``, ``mean``, ``sd``, ``min``, ``max``, ``n``, ``value`` (probe), ``x_mm``,
        ``y_mm``, ``z_mm`` (probe patient point).
    unit : str
        ``'mm'``, ``'px'``, ``'deg'`` or the modality unit of the statistics (``'HU'``, ``''``).
    calibration_source : str
        :attr:`Calibration.source` (``'none'`` = measured in pixels).
    note : str
        ``"uncalibrated: pixels"`` or the calibration detail.
    """

    lines: tuple[str, ...]
    values: dict[str, float] = field(hash=False)
    unit: str
    calibration_source: str
    note: str = ""


# ---------------------------------------------------------------------------------------------
# geometry helpers


def _scale(cal: Calibration) -> tuple[float, float, bool]:
    """(mm per column step, mm per row step, calibrated)."""
    if cal.calibrated:
        return float(cal.col_mm), float(cal.row_mm), True  # type: ignore[arg-type]
    return 1.0, 1.0, False


def _length(cal: Calibration, p0: Point, p1: Point) -> float:
    sx, sy, _ = _scale(cal)
    return math.hypot((p1[0] - p0[0]) * sx, (p1[1] - p0[1]) * sy)


def _vector(cal: Calibration, p0: Point, p1: Point) -> tuple[float, float]:
    sx, sy, _ = _scale(cal)
    return (p1[0] - p0[0]) * sx, (p1[1] - p0[1]) * sy


def _angle_between(u: tuple[float, float], v: tuple[float, float]) -> float:
    """Angle between two vectors, degrees in [0, 180]; 0 when either is degenerate."""
    nu, nv = math.hypot(*u), math.hypot(*v)
    if nu == 0 or nv == 0:
        return 0.0
    cos = (u[0] * v[0] + u[1] * v[1]) / (nu * nv)
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


def shape_area_px(annotation: Annotation) -> float:
    """Geometric area of an ROI outline in square pixels (not the pixel count)."""
    pts = annotation.points
    if annotation.kind == "rectangle":
        (c0, r0), (c1, r1) = pts
        return abs(c1 - c0) * abs(r1 - r0)
    if annotation.kind == "circle":
        return math.pi * math.dist(pts[0], pts[1]) ** 2
    if annotation.kind == "ellipse":
        _, a, b, _ = ellipse_axes(pts)
        return math.pi * a * b
    if annotation.kind == "polygon":
        xs = np.array([p[0] for p in pts])
        ys = np.array([p[1] for p in pts])
        return float(abs(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1))) / 2)
    raise ValueError(f"{annotation.kind} has no area")


def points_in_polygon(
    cols: np.ndarray, rows: np.ndarray, polygon: tuple[Point, ...] | list[Point]
) -> np.ndarray:
    """Even-odd test of points against a closed polygon (half-open edges), vectorised."""
    inside = np.zeros(np.broadcast(cols, rows).shape, dtype=bool)
    n = len(polygon)
    for i in range(n):
        x0, y0 = polygon[i]
        x1, y1 = polygon[(i + 1) % n]
        if y0 == y1:
            continue
        crosses = (y0 > rows) != (y1 > rows)
        x_at = x0 + (rows - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (cols < x_at)
    return inside


def _bbox(points: tuple[Point, ...], shape: tuple[int, int], pad: float = 0.0):
    rows, cols = shape
    cs = [p[0] for p in points]
    rs = [p[1] for p in points]
    c0 = max(0, math.floor(min(cs) - pad))
    c1 = min(cols - 1, math.ceil(max(cs) + pad))
    r0 = max(0, math.floor(min(rs) - pad))
    r1 = min(rows - 1, math.ceil(max(rs) + pad))
    return r0, r1, c0, c1


def roi_mask(annotation: Annotation, shape: tuple[int, int]) -> np.ndarray:
    """Pixels whose centre lies inside an ROI outline.

    Parameters
    ----------
    annotation : Annotation
        An ``ellipse``, ``circle``, ``rectangle`` or ``polygon``.
    shape : (rows, cols)
        The image size.

    Returns
    -------
    numpy.ndarray
        Boolean ``(rows, cols)``.
    """
    if annotation.kind not in ROI_KINDS:
        raise ValueError(f"{annotation.kind} is not a region (one of {sorted(ROI_KINDS)})")
    rows, cols = int(shape[0]), int(shape[1])
    mask = np.zeros((rows, cols), dtype=bool)
    pts = annotation.points
    eps = 1e-9
    if annotation.kind == "circle":
        radius = math.dist(pts[0], pts[1])
        r0, r1, c0, c1 = _bbox((pts[0],), (rows, cols), radius + 1)
    elif annotation.kind == "ellipse":
        centre, a, _, _ = ellipse_axes(pts)
        r0, r1, c0, c1 = _bbox((centre,), (rows, cols), a + 1)
    else:
        r0, r1, c0, c1 = _bbox(pts, (rows, cols), 1)
    if r0 > r1 or c0 > c1:
        return mask
    rr, cc = np.mgrid[r0 : r1 + 1, c0 : c1 + 1].astype(np.float64)
    if annotation.kind == "rectangle":
        (pc0, pr0), (pc1, pr1) = pts
        sub = (
            (cc >= min(pc0, pc1) - eps)
            & (cc <= max(pc0, pc1) + eps)
            & (rr >= min(pr0, pr1) - eps)
            & (rr <= max(pr0, pr1) + eps)
        )
    elif annotation.kind == "circle":
        radius = math.dist(pts[0], pts[1])
        sub = (cc - pts[0][0]) ** 2 + (rr - pts[0][1]) ** 2 <= radius**2 + eps
    elif annotation.kind == "ellipse":
        centre, a, b, angle = ellipse_axes(pts)
        if a <= 0 or b <= 0:
            return mask
        dx, dy = cc - centre[0], rr - centre[1]
        u = dx * math.cos(angle) + dy * math.sin(angle)
        v = -dx * math.sin(angle) + dy * math.cos(angle)
        sub = (u / a) ** 2 + (v / b) ** 2 <= 1 + eps
    else:
        sub = points_in_polygon(cc, rr, pts)
    mask[r0 : r1 + 1, c0 : c1 + 1] = sub
    return mask


# ---------------------------------------------------------------------------------------------
# units and formatting


def modality_unit(ds: Dataset) -> str:
    """The unit of the modality values (after the Modality LUT) of an image.

    ``'HU'`` for CT whose Rescale Type is HU or unspecified; PET's ``Units`` (e.g. ``BQML``);
    otherwise the Rescale Type when present (``US`` "unspecified" gives ``''``), else ``''``.
    """
    modality = str(ds.get("Modality") or "").upper()
    rescale_type = str(ds.get("RescaleType") or "").strip()
    if modality == "CT" and rescale_type.upper() in ("", "HU"):
        return "HU"
    if modality == "PT" and ds.get("Units"):
        return str(ds.Units).strip()
    if rescale_type and rescale_type.upper() != "US":
        return rescale_type
    return ""


def _num(value: float) -> str:
    """A value with precision fitting its size (1 decimal below 1000, none above)."""
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 1000:
        return f"{value:.0f}"
    return f"{value:.1f}"


def _with_unit(value: float, unit: str) -> str:
    return f"{_num(value)} {unit}" if unit else _num(value)


def _note(cal: Calibration) -> str:
    return "uncalibrated: pixels" if not cal.calibrated else cal.detail


# ---------------------------------------------------------------------------------------------
# per kind


def _length_measurement(a: Annotation, cal: Calibration) -> Measurement:
    value = _length(cal, *a.points)
    unit = "mm" if cal.calibrated else "px"
    return Measurement(
        (f"{value:.1f} {unit}",), {f"length_{unit}": value}, unit, cal.source, _note(cal)
    )


def _angle_measurement(a: Annotation, cal: Calibration) -> Measurement:
    p0, vertex, p1 = a.points
    angle = _angle_between(_vector(cal, vertex, p0), _vector(cal, vertex, p1))
    return Measurement((f"{angle:.1f}°",), {"angle_deg": angle}, "deg", cal.source, _note(cal))


def _cobb_measurement(a: Annotation, cal: Calibration) -> Measurement:
    p0, p1, q0, q1 = a.points
    angle = _angle_between(_vector(cal, p0, p1), _vector(cal, q0, q1))
    if angle > 90:
        angle = 180 - angle
    return Measurement((f"Cobb {angle:.1f}°",), {"angle_deg": angle}, "deg", cal.source, _note(cal))


def _roi_measurement(
    a: Annotation, cal: Calibration, values: np.ndarray | None, value_unit: str
) -> Measurement:
    sx, sy, calibrated = _scale(cal)
    area_px = shape_area_px(a)
    out: dict[str, float] = {}
    if calibrated:
        area_mm2 = area_px * sx * sy
        out["area_mm2"] = area_mm2
        area_text = (
            f"Area {area_mm2 / 100:.2f} cm²" if area_mm2 >= 100 else f"Area {area_mm2:.1f} mm²"
        )
    else:
        out["area_px"] = area_px
        area_text = f"Area {area_px:.1f} px²"
    lines: list[str] = []
    if values is not None:
        vals = np.asarray(values)
        if vals.ndim != 2:
            raise ValueError(f"ROI statistics need a 2-D frame of values, got shape {vals.shape}")
        inside = vals[roi_mask(a, vals.shape)].astype(np.float64)
        n = int(inside.size)
        out["n"] = float(n)
        if n:
            mean, sd = float(inside.mean()), float(inside.std())
            lo, hi = float(inside.min()), float(inside.max())
            out.update(mean=mean, sd=sd, min=lo, max=hi)
            u = f" {value_unit}" if value_unit else ""
            lines.append(f"Mean {_num(mean)}{u}  SD {_num(sd)}")
            lines.append(f"Min {_num(lo)}{u}  Max {_num(hi)}{u}")
        else:
            lines.append("no pixel centre inside")
        area_text += f"  n={n}"
    lines.append(area_text)
    return Measurement(tuple(lines), out, value_unit, cal.source, _note(cal))


def _probe_measurement(
    a: Annotation,
    cal: Calibration,
    values: np.ndarray | None,
    value_unit: str,
    plane: ImagePlane | None,
) -> Measurement:
    (c, r) = a.points[0]
    ci, ri = int(math.floor(c + 0.5)), int(math.floor(r + 0.5))
    out: dict[str, float] = {}
    lines: list[str] = []
    if values is not None:
        vals = np.asarray(values)
        if 0 <= ri < vals.shape[0] and 0 <= ci < vals.shape[1]:
            v = float(vals[ri, ci])
            out["value"] = v
            lines.append(_with_unit(v, value_unit))
        else:
            lines.append("outside the image")
    if plane is not None:
        x, y, z = (float(t) for t in plane.pixel_to_patient(ci, ri))
        out.update(x_mm=x, y_mm=y, z_mm=z)
        lines.append(f"({x:.1f}, {y:.1f}, {z:.1f}) mm")
    lines.append(f"pixel ({ci}, {ri})")
    return Measurement(tuple(lines), out, value_unit, cal.source, _note(cal))


def measure(
    annotation: Annotation,
    calibration: Calibration,
    *,
    values: np.ndarray | None = None,
    value_unit: str = "",
    plane: ImagePlane | None = None,
) -> Measurement | None:
    """Measure one annotation.

    Parameters
    ----------
    annotation : Annotation
        Any kind; ``arrow`` and ``text`` measure nothing.
    calibration : Calibration
        From :func:`workstation.core.calibration.calibration_for`.
    values : numpy.ndarray, optional
        The frame's modality values ``(rows, cols)`` (HU on CT), for ROI statistics and the probe.
    value_unit : str
        Unit of ``values`` (see :func:`modality_unit`).
    plane : ImagePlane, optional
        The frame's plane, for the probe's patient coordinate.

    Returns
    -------
    Measurement or None
        None for kinds that measure nothing.
    """
    kind = annotation.kind
    if kind == "length":
        return _length_measurement(annotation, calibration)
    if kind == "angle":
        return _angle_measurement(annotation, calibration)
    if kind == "cobb":
        return _cobb_measurement(annotation, calibration)
    if kind in ROI_KINDS:
        return _roi_measurement(annotation, calibration, values, value_unit)
    if kind == "point":
        return _probe_measurement(annotation, calibration, values, value_unit, plane)
    return None


__all__ = [
    "SOURCE_NONE",
    "Measurement",
    "measure",
    "modality_unit",
    "points_in_polygon",
    "roi_mask",
    "shape_area_px",
]
