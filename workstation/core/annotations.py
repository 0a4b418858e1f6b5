"""Annotations and measurements drawn on an image: the model shared by the viewer's tools, the
measurement maths and the presentation-state writer and reader.

Coordinates are image coordinates ``(column, row)`` with pixel centres at integers, as in
:mod:`workstation.core.view_state` (the image covers ``[-0.5, cols - 0.5]``). A DICOM Graphic
Annotation in PIXEL units puts the top-left corner of the image at ``0.0\\0.0``, so a writer adds
0.5 to both and a reader subtracts it.

Points of each kind:

=========== ===============================================================================
kind        points
=========== ===============================================================================
length      2: the two ends
angle       3: end, vertex, end
cobb        4: two lines (first two points, last two points); the angle between them
ellipse     4: the ends of the major axis, then the ends of the minor axis (as GSPS ELLIPSE)
circle      2: centre, a point on the circumference (as GSPS CIRCLE)
rectangle   2: opposite corners (sides along the image rows and columns)
polygon     3 or more: a closed outline (a freehand ROI is a polygon with many points)
point       1: the probed pixel
arrow       2: tail, head (the head points at the finding)
text        1: the anchor; the words are in ``text``
=========== ===============================================================================
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field, replace

KINDS: tuple[str, ...] = (
    "length",
    "angle",
    "cobb",
    "ellipse",
    "circle",
    "rectangle",
    "polygon",
    "point",
    "arrow",
    "text",
)

#: Kinds whose area gives region statistics.
ROI_KINDS = frozenset({"ellipse", "circle", "rectangle", "polygon"})

_FIXED_COUNT = {
    "length": 2,
    "angle": 3,
    "cobb": 4,
    "ellipse": 4,
    "circle": 2,
    "rectangle": 2,
    "point": 1,
    "arrow": 2,
    "text": 1,
}

DEFAULT_LAYER = "MEASUREMENTS"

Point = tuple[float, float]


@dataclass(frozen=True)
class ImageRef:
    """The image (and frame) an annotation lies on.

    ``frame_number`` is the 1-based frame of a multi-frame image, None for a single-frame image.
    """

    sop_instance_uid: str
    frame_number: int | None = None
    sop_class_uid: str = ""


@dataclass(frozen=True)
class Layer:
    """A graphic layer: annotations are drawn in layer order (lower first) in the layer's colour."""

    name: str
    order: int = 1
    colour: tuple[int, int, int] = (255, 255, 0)
    description: str = ""


@dataclass(frozen=True)
class Annotation:
    """One annotation or measurement on one image; immutable (edits make a new one with the
    same ``uid``)."""

    uid: str
    kind: str
    points: tuple[Point, ...]
    image: ImageRef
    text: str = ""
    layer: str = DEFAULT_LAYER
    extra: tuple[tuple[str, str], ...] = field(default=())

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown annotation kind {self.kind!r} (known: {', '.join(KINDS)})")
        pts = tuple((float(c), float(r)) for c, r in self.points)
        for c, r in pts:
            if not (math.isfinite(c) and math.isfinite(r)):
                raise ValueError(f"{self.kind}: point ({c}, {r}) is not finite")
        want = _FIXED_COUNT.get(self.kind)
        if want is not None and len(pts) != want:
            raise ValueError(f"{self.kind} needs {want} points, got {len(pts)}")
        if self.kind == "polygon" and len(pts) < 3:
            raise ValueError(f"polygon needs at least 3 points, got {len(pts)}")
        object.__setattr__(self, "points", pts)

    def moved(self, dx: float, dy: float) -> Annotation:
        """The same annotation shifted by ``(dx, dy)`` image pixels."""
        return replace(self, points=tuple((c + dx, r + dy) for c, r in self.points))

    def with_point(self, i: int, point: Point) -> Annotation:
        """The annotation with point ``i`` moved to ``point`` (a handle drag).

        An ellipse keeps its shape consistent: moving an end of one axis moves the opposite end
        symmetrically about the centre, and the other axis stays perpendicular.
        """
        pts = list(self.points)
        if self.kind == "ellipse":
            return _ellipse_with_point(self, i, point)
        pts[i] = (float(point[0]), float(point[1]))
        return replace(self, points=tuple(pts))

    def with_text(self, text: str) -> Annotation:
        return replace(self, text=text)


def new_annotation(
    kind: str,
    points: tuple[Point, ...] | list[Point],
    image: ImageRef,
    *,
    text: str = "",
    layer: str = DEFAULT_LAYER,
) -> Annotation:
    """A new annotation with a fresh ``uid``."""
    return Annotation(uuid.uuid4().hex, kind, tuple(points), image, text, layer)


def ellipse_from_box(p0: Point, p1: Point) -> tuple[Point, Point, Point, Point]:
    """The four GSPS ellipse points of the ellipse inscribed in the axis-aligned box ``p0``-``p1``
    (major axis first)."""
    (c0, r0), (c1, r1) = p0, p1
    cc, rc = (c0 + c1) / 2, (r0 + r1) / 2
    horizontal = ((min(c0, c1), rc), (max(c0, c1), rc))
    vertical = ((cc, min(r0, r1)), (cc, max(r0, r1)))
    if abs(c1 - c0) >= abs(r1 - r0):
        return (*horizontal, *vertical)
    return (*vertical, *horizontal)


def ellipse_axes(points: tuple[Point, ...]) -> tuple[Point, float, float, float]:
    """Centre, semi-major, semi-minor (pixels) and the major axis angle (radians, image x axis
    towards +row) of a four-point ellipse."""
    (a0, a1, b0, b1) = points
    centre = ((a0[0] + a1[0]) / 2, (a0[1] + a1[1]) / 2)
    semi_a = math.dist(a0, a1) / 2
    semi_b = math.dist(b0, b1) / 2
    angle = math.atan2(a1[1] - a0[1], a1[0] - a0[0])
    return centre, semi_a, semi_b, angle


def _ellipse_with_point(a: Annotation, i: int, point: Point) -> Annotation:
    centre, semi_a, semi_b, angle = ellipse_axes(a.points)
    dx, dy = point[0] - centre[0], point[1] - centre[1]
    radius = math.hypot(dx, dy)
    if i in (0, 1):
        theta = math.atan2(dy, dx) if i == 1 else math.atan2(-dy, -dx)
        semi_a = radius
    else:
        semi_b = radius
        theta = angle
    ux, uy = math.cos(theta), math.sin(theta)
    vx, vy = -uy, ux
    cx, cy = centre
    pts = (
        (cx - semi_a * ux, cy - semi_a * uy),
        (cx + semi_a * ux, cy + semi_a * uy),
        (cx - semi_b * vx, cy - semi_b * vy),
        (cx + semi_b * vx, cy + semi_b * vy),
    )
    return replace(a, points=pts)
