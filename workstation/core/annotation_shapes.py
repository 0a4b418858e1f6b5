"""The geometry of drawn annotations: outlines, handles, handle edits and hit testing.

Pure numpy, shared by the painter (what to draw), the tools (what the mouse grabs) and tests.
Outlines are in image coordinates ``(col, row)``; hit testing is done in screen pixels through the
3x3 image-to-screen matrix of :func:`workstation.core.view_state.display_transform`, so a tolerance
of a few pixels means the same at every zoom.
"""

from __future__ import annotations

import math

import numpy as np

from workstation.core.annotations import Annotation, Point, ellipse_axes

#: Segments used to draw an ellipse or a circle.
CURVE_SEGMENTS = 96


def outlines(a: Annotation) -> list[tuple[np.ndarray, bool]]:
    """The polylines of an annotation in image coordinates, each ``(points (n, 2), closed)``.

    Text and points have no outline (empty list); an angle is one open polyline through its three
    points; a Cobb angle two separate lines.
    """
    pts = np.asarray(a.points, dtype=np.float64)
    if a.kind in ("length", "arrow", "angle"):
        return [(pts, False)]
    if a.kind == "cobb":
        return [(pts[:2], False), (pts[2:], False)]
    if a.kind == "polygon":
        return [(pts, True)]
    if a.kind == "rectangle":
        (c0, r0), (c1, r1) = a.points
        return [(np.array([(c0, r0), (c1, r0), (c1, r1), (c0, r1)], dtype=np.float64), True)]
    if a.kind == "ellipse":
        (cx, cy), sa, sb, angle = ellipse_axes(a.points)
        return [(_ellipse_points(cx, cy, sa, sb, angle), True)]
    if a.kind == "circle":
        (cx, cy), rim = a.points
        radius = math.dist((cx, cy), rim)
        return [(_ellipse_points(cx, cy, radius, radius, 0.0), True)]
    return []


def _ellipse_points(cx: float, cy: float, sa: float, sb: float, angle: float) -> np.ndarray:
    t = np.linspace(0.0, 2.0 * math.pi, CURVE_SEGMENTS, endpoint=False)
    ca, sn = math.cos(angle), math.sin(angle)
    x, y = sa * np.cos(t), sb * np.sin(t)
    return np.stack([cx + x * ca - y * sn, cy + x * sn + y * ca], axis=1)


def handles(a: Annotation) -> list[Point]:
    """The points a user can drag to reshape ``a`` (image coordinates).

    A rectangle has four corner handles (the two stored corners first); every other kind uses its
    stored points (a circle: centre and rim point).
    """
    if a.kind == "rectangle":
        (c0, r0), (c1, r1) = a.points
        return [(c0, r0), (c1, r1), (c1, r0), (c0, r1)]
    return list(a.points)


def with_handle(a: Annotation, i: int, point: Point) -> Annotation:
    """``a`` with handle ``i`` (an index into :func:`handles`) dragged to ``point``.

    Rectangle corners 2 and 3 (the corners not stored) move one coordinate of each stored corner;
    a circle's centre handle moves the whole circle; an ellipse keeps its axes perpendicular.
    """
    col, row = float(point[0]), float(point[1])
    if a.kind == "rectangle":
        (c0, r0), (c1, r1) = a.points
        if i == 0:
            c0, r0 = col, row
        elif i == 1:
            c1, r1 = col, row
        elif i == 2:
            c1, r0 = col, row
        else:
            c0, r1 = col, row
        return Annotation(a.uid, a.kind, ((c0, r0), (c1, r1)), a.image, a.text, a.layer, a.extra)
    if a.kind == "circle" and i == 0:
        (cx, cy), _ = a.points
        return a.moved(col - cx, row - cy)
    return a.with_point(i, (col, row))


def to_screen_points(matrix: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Image points ``(n, 2)`` -> screen points ``(n, 2)`` through a 3x3 affine matrix."""
    pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    return pts @ matrix[:2, :2].T + matrix[:2, 2]


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    ab = b - a
    denom = float(ab @ ab)
    t = 0.0 if denom == 0 else min(max(float((p - a) @ ab) / denom, 0.0), 1.0)
    return float(np.linalg.norm(p - (a + t * ab)))


def _inside(p: np.ndarray, poly: np.ndarray) -> bool:
    """Even-odd rule point-in-polygon."""
    x, y = p
    inside = False
    n = len(poly)
    for k in range(n):
        x0, y0 = poly[k]
        x1, y1 = poly[(k + 1) % n]
        if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
            inside = not inside
    return inside


def screen_distance(a: Annotation, matrix: np.ndarray, x: float, y: float) -> float:
    """Distance in screen pixels from ``(x, y)`` to the drawn annotation.

    Inside a closed outline (an ROI) the distance is 0, so the body can be grabbed anywhere.
    A point or a text anchor counts as a small disc around the anchor.
    """
    p = np.array([x, y], dtype=np.float64)
    best = math.inf
    for pts, closed in outlines(a):
        s = to_screen_points(matrix, pts)
        if closed and len(s) >= 3 and _inside(p, s):
            return 0.0
        ends = list(zip(s[:-1], s[1:], strict=False))
        if closed:
            ends.append((s[-1], s[0]))
        for u, v in ends:
            best = min(best, _segment_distance(p, u, v))
    if a.kind in ("point", "text"):
        s = to_screen_points(matrix, np.asarray(a.points))[0]
        best = min(best, max(float(np.linalg.norm(p - s)) - 4.0, 0.0))
    return best


def handle_at(
    a: Annotation, matrix: np.ndarray, x: float, y: float, tolerance: float = 6.0
) -> int | None:
    """The index of the handle of ``a`` within ``tolerance`` screen pixels of ``(x, y)`` (the
    nearest), or None."""
    hs = handles(a)
    if not hs:
        return None
    s = to_screen_points(matrix, np.asarray(hs))
    d = np.hypot(s[:, 0] - x, s[:, 1] - y)
    i = int(np.argmin(d))
    return i if d[i] <= tolerance else None


def hit(
    annotations: list[Annotation] | tuple[Annotation, ...],
    matrix: np.ndarray,
    x: float,
    y: float,
    tolerance: float = 6.0,
    selected: str | None = None,
) -> tuple[Annotation, int | None] | None:
    """What a press at screen ``(x, y)`` grabs: ``(annotation, handle index or None for the
    body)``, or None.

    Handles of the selected annotation win, then any handle, then the nearest body (the last
    drawn wins a tie, as it is drawn on top).
    """
    ordered = sorted(annotations, key=lambda a: a.uid != selected)
    for a in ordered:
        h = handle_at(a, matrix, x, y, tolerance)
        if h is not None:
            return a, h
    best: tuple[float, Annotation] | None = None
    for a in annotations:
        d = screen_distance(a, matrix, x, y)
        if d <= tolerance and (best is None or d <= best[0]):
            best = (d, a)
    return (best[1], None) if best is not None else None
