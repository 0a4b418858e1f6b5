"""Drawing of annotations, measurements and shutters: the one code used by the viewport and by the
headless ``workstation render IMAGE --gsps STATE --out PNG``.

Everything is drawn in screen coordinates: points go through the image-to-screen matrix, so line
widths, handles, arrow heads and text keep their size at every zoom (``scale`` multiplies them,
for a render larger than a screen). Text is drawn with a dark outline so it reads on white bone as
well as on black air. A measurement's text is placed beside its graphic, on the side away from
the image centre, and moved back inside the painter's window when it would leave it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetricsF,
    QImage,
    QPainter,
    QPainterPath,
    QPen,
    QPolygonF,
    QTransform,
)

from workstation.core.annotation_shapes import handles, outlines, to_screen_points
from workstation.core.annotations import Annotation, Layer

if TYPE_CHECKING:  # engineer A's models; only their attributes are used here
    from workstation.core.measurements import Measurement
    from workstation.pstate.model import Shutter

DEFAULT_COLOUR = (255, 220, 60)
_OUTLINE = QColor(0, 0, 0, 190)
_HANDLE_FILL = QColor(255, 255, 255)
_NOTE = QColor(200, 200, 190)
_SHORT_SOURCE = {
    "PixelSpacing": "Pixel Spacing",
    "ImagerPixelSpacing": "detector spacing",
    "ImagerPixelSpacing corrected by EstimatedRadiographicMagnificationFactor": "detector ÷ ERMF",
    "NominalScannedPixelSpacing": "scanned film",
    "UltrasoundRegion": "US region",
    "none": "uncalibrated: pixels",
}


def calibration_label(source: str) -> str:
    """A short label for a calibration source (``'none'`` -> ``'uncalibrated: pixels'``)."""
    return _SHORT_SOURCE.get(source, source)


def _qcolour(rgb: tuple[int, int, int], alpha: int = 255) -> QColor:
    return QColor(int(rgb[0]), int(rgb[1]), int(rgb[2]), alpha)


def _pen(colour: QColor, width: float, style=Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(colour)
    pen.setWidthF(width)
    pen.setStyle(style)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    pen.setCosmetic(True)
    return pen


def _stroke(painter: QPainter, path: QPainterPath, colour: QColor, width: float) -> None:
    """Stroke ``path`` with a dark halo under it, so a thin line reads on any grey."""
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.setPen(_pen(_OUTLINE, width + 2.0))
    painter.drawPath(path)
    painter.setPen(_pen(colour, width))
    painter.drawPath(path)


def _polyline(s: np.ndarray, closed: bool) -> QPainterPath:
    path = QPainterPath(QPointF(*s[0]))
    for x, y in s[1:]:
        path.lineTo(float(x), float(y))
    if closed:
        path.closeSubpath()
    return path


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-9 else np.array([1.0, 0.0])


def _tick(path: QPainterPath, at: np.ndarray, along: np.ndarray, half: float) -> None:
    """A short stroke through ``at`` perpendicular to ``along`` (screen vectors)."""
    u = _unit(along)
    n = np.array([-u[1], u[0]]) * half
    path.moveTo(QPointF(*(at - n)))
    path.lineTo(QPointF(*(at + n)))


def _angle_arc(path: QPainterPath, vertex: np.ndarray, a: np.ndarray, b: np.ndarray, k: float):
    """An arc at ``vertex`` between the arms towards ``a`` and ``b`` (screen), inside the angle."""
    ra, rb = float(np.linalg.norm(a - vertex)), float(np.linalg.norm(b - vertex))
    radius = min(24.0 * k, 0.4 * min(ra, rb))
    if radius < 3:
        return
    t0 = math.atan2(a[1] - vertex[1], a[0] - vertex[0])
    t1 = math.atan2(b[1] - vertex[1], b[0] - vertex[0])
    sweep = (t1 - t0 + math.pi) % (2 * math.pi) - math.pi  # the interior angle, signed
    steps = max(4, int(abs(sweep) / 0.08))
    for j in range(steps + 1):
        t = t0 + sweep * j / steps
        p = QPointF(vertex[0] + radius * math.cos(t), vertex[1] + radius * math.sin(t))
        if j == 0:
            path.moveTo(p)
        else:
            path.lineTo(p)


def _arrow_head(tail: np.ndarray, head: np.ndarray, k: float) -> QPolygonF:
    u = _unit(head - tail)
    n = np.array([-u[1], u[0]])
    length = min(14.0 * k, 0.5 * float(np.linalg.norm(head - tail)) + 4.0 * k)
    base = head - u * length
    half = length * 0.42
    return QPolygonF([QPointF(*head), QPointF(*(base + n * half)), QPointF(*(base - n * half))])


def _graphic_path(a: Annotation, m: np.ndarray, k: float) -> QPainterPath:
    """The strokes of ``a`` in screen coordinates (no text, no arrow head fill)."""
    path = QPainterPath()
    s_pts = to_screen_points(m, np.asarray(a.points)) if a.points else np.zeros((0, 2))
    for pts, closed in outlines(a):
        if len(pts) >= 2:
            path.addPath(_polyline(to_screen_points(m, pts), closed))
    if a.kind in ("length", "cobb"):
        for i0 in range(0, len(s_pts) - 1, 2):
            p, q = s_pts[i0], s_pts[i0 + 1]
            _tick(path, p, q - p, 5.0 * k)
            _tick(path, q, q - p, 5.0 * k)
        if a.kind == "cobb":
            mid0, mid1 = (s_pts[0] + s_pts[1]) / 2, (s_pts[2] + s_pts[3]) / 2
            dash = QPainterPath()
            steps = max(1, int(np.linalg.norm(mid1 - mid0) / (6 * k)))
            for j in range(0, steps, 2):
                dash.moveTo(QPointF(*(mid0 + (mid1 - mid0) * j / steps)))
                dash.lineTo(QPointF(*(mid0 + (mid1 - mid0) * min(j + 1, steps) / steps)))
            path.addPath(dash)
    elif a.kind == "angle":
        _angle_arc(path, s_pts[1], s_pts[0], s_pts[2], k)
    elif a.kind == "point":
        c = s_pts[0]
        for dx, dy in ((1, 0), (0, 1)):
            d = np.array([dx, dy]) * k
            path.moveTo(QPointF(*(c - 9 * d)))
            path.lineTo(QPointF(*(c - 3 * d)))
            path.moveTo(QPointF(*(c + 3 * d)))
            path.lineTo(QPointF(*(c + 9 * d)))
    return path


def _text_lines(a: Annotation, measurement: Any, selected: bool) -> list[tuple[str, bool]]:
    """``(line, is_note)`` to show beside ``a``: its label, the measurement, the calibration note."""
    lines: list[tuple[str, bool]] = []
    if a.text and a.kind != "text":
        lines.append((a.text, False))
    if measurement is not None:
        lines.extend((line, False) for line in measurement.lines)
        if a.kind == "point":  # a probe reads a value and a position: no calibration involved
            return lines
        source = getattr(measurement, "calibration_source", "")
        if source == "none" or (selected and source):
            note = getattr(measurement, "note", "") if source == "none" else ""
            lines.append((note or calibration_label(source), True))
        elif source and source != "PixelSpacing":
            lines.append((calibration_label(source), True))
    return lines


class _TextBlock:
    """Lines of outlined text: measured once, placed, then drawn."""

    def __init__(self, lines: list[tuple[str, bool]], font: QFont) -> None:
        self.lines = lines
        self.font = font
        self.small = QFont(font)
        self.small.setPointSizeF(font.pointSizeF() * 0.85)
        fm, fms = QFontMetricsF(font), QFontMetricsF(self.small)
        self.metrics = [fms if note else fm for _, note in lines]
        self.heights = [m.height() for m in self.metrics]
        self.widths = [
            m.horizontalAdvance(t) for m, (t, _) in zip(self.metrics, lines, strict=True)
        ]
        self.width, self.height = max(self.widths), sum(self.heights)

    def draw(self, painter: QPainter, box: QRectF, colour: QColor, align_left: bool) -> None:
        path_main, path_note = QPainterPath(), QPainterPath()
        top = box.top()
        for (text, note), m, lh, lw in zip(
            self.lines, self.metrics, self.heights, self.widths, strict=True
        ):
            dx = 0.0 if align_left else self.width - lw
            target = path_note if note else path_main
            target.addText(
                QPointF(box.left() + dx, top + m.ascent()), self.small if note else self.font, text
            )
            top += lh
        for path, c in ((path_main, colour), (path_note, _NOTE)):
            if path.isEmpty():
                continue
            painter.setPen(_pen(_OUTLINE, 3.0))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPath(path)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QBrush(c))
            painter.drawPath(path)


def _candidates(
    a: Annotation, s_pts: np.ndarray, bounds: QRectF, block: _TextBlock, centre: QPointF, k: float
) -> list[tuple[QRectF, bool]]:
    """Boxes where the text of ``a`` may go, best first, each with its alignment (left or right).

    Beside the graphic on the side away from the window centre, then the other side, then below
    and above; an arrow's text sits at its tail, an angle's outside the vertex.
    """
    w, h, gap = block.width, block.height, 8.0 * k

    def at(x: float, y: float, left: bool) -> tuple[QRectF, bool]:
        return QRectF(x if left else x - w, y - h / 2, w, h), left

    if a.kind == "arrow":
        tail, head = s_pts[0], s_pts[1]
        u = _unit(tail - head)
        p = tail + u * gap
        return [at(p[0], p[1], u[0] >= 0), at(p[0], p[1], u[0] < 0)]
    if a.kind == "angle":
        v = s_pts[1]
        bis = _unit(_unit(s_pts[0] - v) + _unit(s_pts[2] - v))
        p = v - bis * (gap + 6 * k)
        out = [at(p[0], p[1], bis[0] <= 0), at(p[0], p[1], bis[0] > 0)]
    else:
        out = []
    cy = bounds.center().y()
    right = (bounds.right() + gap, cy, True)
    left = (bounds.left() - gap, cy, False)
    sides = [right, left] if bounds.center().x() >= centre.x() else [left, right]
    out += [at(*sides[0]), at(*sides[1])]
    cx = bounds.center().x() - w / 2
    out.append((QRectF(cx, bounds.bottom() + gap / 2, w, h), True))
    out.append((QRectF(cx, bounds.top() - gap / 2 - h, w, h), True))
    for x, _, left in sides:  # beside, level with the top or the bottom of the graphic
        out.append(at(x, bounds.top() + h / 2, left))
        out.append(at(x, bounds.bottom() - h / 2, left))
    return out


def _extent(a: Annotation, m: np.ndarray) -> QRectF:
    """Screen bounding box of the graphic of ``a``."""
    s = to_screen_points(m, np.asarray(a.points))
    for pts, _ in outlines(a):
        s = np.vstack([s, to_screen_points(m, pts)])
    (x0, y0), (x1, y1) = s.min(axis=0), s.max(axis=0)
    return QRectF(x0, y0, x1 - x0, y1 - y0).adjusted(-3, -3, 3, 3)


def _overlap(a: QRectF, b: QRectF) -> float:
    r = a.intersected(b)
    return r.width() * r.height() if not r.isEmpty() else 0.0


def _place(
    candidates: list[tuple[QRectF, bool]],
    window: QRectF,
    taken: list[QRectF],
    graphics: list[QRectF],
) -> tuple[QRectF, bool]:
    """The candidate inside ``window`` that covers the least of the text already placed (weighed
    heavily) and of the other graphics; the earlier on a tie. With none inside, the first one
    moved back inside the window."""
    inner = window.adjusted(2, 2, -2, -2)
    best: tuple[float, int] | None = None
    for i, (box, _) in enumerate(candidates):
        if not inner.contains(box):
            continue
        cost = 10.0 * sum(_overlap(box, t) for t in taken)
        cost += sum(_overlap(box, g) for g in graphics)
        if best is None or (cost, i) < best:
            best = (cost, i)
    if best is not None:
        return candidates[best[1]]
    box, left = candidates[0]
    x = min(max(box.left(), inner.left()), inner.right() - box.width())
    y = min(max(box.top(), inner.top()), inner.bottom() - box.height())
    return QRectF(x, y, box.width(), box.height()), left


def _font(painter: QPainter, k: float) -> QFont:
    font = QFont(painter.font())
    font.setPointSizeF(10.0 * k)
    return font


def paint_annotations(
    painter: QPainter,
    image_to_screen: np.ndarray,
    annotations: Sequence[Annotation],
    *,
    layers: Mapping[str, Layer] | None = None,
    measurements: Mapping[str, Measurement] | None = None,
    selected: str | None = None,
    scale: float = 1.0,
    bounds: QRectF | None = None,
    avoid: Sequence[QRectF] = (),
) -> dict[str, QRectF]:
    """Draw ``annotations`` (image coordinates) on ``painter`` (screen coordinates).

    Parameters
    ----------
    painter : QPainter
        Active painter on the viewport or a QImage; its window is the area text is kept inside.
    image_to_screen : numpy.ndarray
        3x3 affine matrix from :func:`workstation.core.view_state.display_transform`.
    annotations : sequence of Annotation
        What to draw; drawn by layer order (lower first), then in the given order.
    layers : mapping of layer name to Layer, optional
        Colour and order per layer; annotations of an unknown layer are drawn in yellow.
    measurements : mapping of annotation uid to Measurement, optional
        Text shown beside each graphic (``Measurement.lines`` and the calibration note).
    selected : str, optional
        The uid of the selected annotation: drawn thicker with square handles.
    scale : float
        Multiplies line widths, handle and text sizes (1.0 on a screen).
    bounds : QRectF, optional
        The area text must stay inside (default: the painter's window).
    avoid : sequence of QRectF
        Screen areas text should keep clear of (the viewport's corner text, its scale bar).

    Returns
    -------
    dict of uid to QRectF
        The screen box of each annotation's text (for hit testing of text annotations).
    """
    layers = layers or {}
    measurements = measurements or {}
    m = np.asarray(image_to_screen, dtype=np.float64)
    k = float(scale)
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    painter.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
    painter.setTransform(QTransform())
    window = QRectF(bounds) if bounds is not None else QRectF(painter.window())
    font = _font(painter, k)
    boxes: dict[str, QRectF] = {}
    taken: list[QRectF] = list(avoid)

    def order(a: Annotation) -> tuple[int, bool]:
        layer = layers.get(a.layer)
        return (layer.order if layer is not None else 0, a.uid == selected)

    ordered = sorted(annotations, key=order)
    extents = {a.uid: _extent(a, m) for a in ordered if a.points}
    for a in ordered:
        others = [r for uid, r in extents.items() if uid != a.uid]
        layer = layers.get(a.layer)
        colour = _qcolour(layer.colour if layer is not None else DEFAULT_COLOUR)
        is_sel = a.uid == selected
        width = (2.0 if is_sel else 1.4) * k
        if not a.points:
            continue
        s_pts = to_screen_points(m, np.asarray(a.points))
        path = _graphic_path(a, m, k)
        if not path.isEmpty():
            _stroke(painter, path, colour, width)
        if a.kind == "arrow":
            head = _arrow_head(s_pts[0], s_pts[1], k)
            painter.setPen(_pen(_OUTLINE, 1.5 * k))
            painter.setBrush(QBrush(colour))
            painter.drawPolygon(head)
        elif a.kind in ("point", "text"):
            painter.setPen(_pen(_OUTLINE, 1.0))
            painter.setBrush(QBrush(colour))
            r = 2.2 * k if a.kind == "point" else 1.8 * k
            painter.drawEllipse(QPointF(*s_pts[0]), r, r)
        if a.kind == "text":
            if a.text:
                block = _TextBlock([(t, False) for t in a.text.splitlines() or [a.text]], font)
                x, y = s_pts[0][0] + 5 * k, s_pts[0][1]
                cands = [(QRectF(x, y - block.height / 2, block.width, block.height), True)]
                box, left = _place(cands, window, taken, others)
                block.draw(painter, box, colour, left)
                boxes[a.uid] = box
                taken.append(box)
        else:
            lines = _text_lines(a, measurements.get(a.uid), is_sel)
            if lines:
                bounds = path.boundingRect() if not path.isEmpty() else QRectF()
                if a.kind == "point":
                    bounds = QRectF(QPointF(*s_pts[0]), QPointF(*s_pts[0])).adjusted(
                        -9 * k, -9 * k, 9 * k, 9 * k
                    )
                block = _TextBlock(lines, font)
                cands = _candidates(a, s_pts, bounds, block, window.center(), k)
                box, left = _place(cands, window, taken, others)
                block.draw(painter, box, colour, left)
                boxes[a.uid] = box
                taken.append(box)
        if is_sel:
            _draw_handles(painter, a, m, k)
    painter.restore()
    return boxes


def _draw_handles(painter: QPainter, a: Annotation, m: np.ndarray, k: float) -> None:
    painter.setPen(_pen(QColor(0, 0, 0), 1.0))
    painter.setBrush(QBrush(_HANDLE_FILL))
    half = 3.5 * k
    for x, y in to_screen_points(m, np.asarray(handles(a))):
        painter.drawRect(QRectF(x - half, y - half, 2 * half, 2 * half))


_MASK_CACHE: dict[int, tuple[Any, tuple[int, int], QImage]] = {}


def _shutter_image(shutter: Shutter, rows: int, cols: int) -> QImage:
    """An ARGB image the size of the frame: the shutter colour where hidden, clear where shown.

    Kept for the last shutter drawn (a shutter is frozen; painting it every frame must not
    rebuild the mask).
    """
    cached = _MASK_CACHE.get(id(shutter))
    if cached is not None and cached[0] is shutter and cached[1] == (rows, cols):
        return cached[2]
    shown = np.asarray(shutter.mask(rows, cols), dtype=bool)
    colour = getattr(shutter, "colour", None)
    if colour is None:
        g = int(round(float(getattr(shutter, "grey", 0.0) or 0.0) * 255))
        colour = (g, g, g)
    argb = np.zeros((rows, cols, 4), np.uint8)  # B, G, R, A in memory (little endian ARGB32)
    hidden = ~shown
    argb[hidden] = (int(colour[2]), int(colour[1]), int(colour[0]), 255)
    img = QImage(argb.data, cols, rows, 4 * cols, QImage.Format.Format_ARGB32).copy()
    _MASK_CACHE.clear()
    _MASK_CACHE[id(shutter)] = (shutter, (rows, cols), img)
    return img


def paint_shutter(painter: QPainter, image_to_screen: np.ndarray, shutter: Shutter, size: QSize):
    """Cover the image outside ``shutter`` with its presentation colour.

    Parameters
    ----------
    painter : QPainter
        Active painter (screen coordinates).
    image_to_screen : numpy.ndarray
        3x3 image-to-screen matrix.
    shutter : Shutter
        Engineer A's model: ``mask(rows, cols)`` is True where the image is shown; ``colour``
        (RGB) or ``grey`` (0..1 presentation value) is what covers the rest.
    size : QSize
        The image size: width = columns, height = rows.

    Notes
    -----
    The shutter is applied per pixel (a pixel whose centre is outside is covered), drawn through
    the same transform as the image without smoothing, so it matches the pixel grid exactly.
    """
    rows, cols = size.height(), size.width()
    if rows <= 0 or cols <= 0:
        return
    img = _shutter_image(shutter, rows, cols)
    m = np.asarray(image_to_screen, dtype=np.float64)
    painter.save()
    painter.setTransform(QTransform(m[0, 0], m[1, 0], m[0, 1], m[1, 1], m[0, 2], m[1, 2]))
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
    painter.drawImage(QRectF(-0.5, -0.5, cols, rows), img)
    painter.restore()
