"""The annotation painter draws each kind where the transform puts it, at a zoom-independent width,
with text kept on screen, and a shutter that covers exactly the pixels outside it."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize
from PySide6.QtGui import QColor, QImage, QPainter

from workstation.core.annotation_shapes import hit, outlines, with_handle
from workstation.core.annotations import ImageRef, Layer, ellipse_from_box, new_annotation
from workstation.core.measurements import Measurement
from workstation.core.view_state import ImageGeometry, ViewState, display_transform, to_screen
from workstation.pstate.model import Shutter
from workstation.ui.annotation_painter import paint_annotations, paint_shutter

REF = ImageRef("1.2.3", None)
RED = Layer("RED", 2, (255, 0, 0))


def canvas(w=200, h=200) -> QImage:
    img = QImage(w, h, QImage.Format.Format_RGB32)
    img.fill(QColor(128, 128, 128))
    return img


def paint(img: QImage, matrix, annotations, **kw) -> dict:
    p = QPainter(img)
    boxes = paint_annotations(p, matrix, annotations, **kw)
    p.end()
    return boxes


def rgb(img: QImage, x: float, y: float) -> tuple[int, int, int]:
    c = img.pixelColor(int(round(x)), int(round(y)))
    return c.red(), c.green(), c.blue()


def is_red(c) -> bool:
    return c[0] > 150 and c[1] < 90 and c[2] < 90


def pixels(img: QImage) -> np.ndarray:
    """(h, w, 3) RGB of an RGB32 image."""
    img = img.convertToFormat(QImage.Format.Format_RGB32)
    a = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine() // 4, 4)
    return a[:, : img.width(), 2::-1].copy()


def red_mask(img: QImage) -> np.ndarray:
    a = pixels(img).astype(int)
    return (a[..., 0] > 150) & (a[..., 1] < 90) & (a[..., 2] < 90)


def red_near(img: QImage, x: float, y: float, r: int = 1) -> bool:
    mask = red_mask(img)
    xi, yi = int(x), int(y)
    return bool(mask[max(yi - r, 0) : yi + r + 1, max(xi - r, 0) : xi + r + 1].any())


def test_length_drawn_along_its_points_in_the_layer_colour(qapp) -> None:
    m = display_transform(ViewState(), ImageGeometry(100, 100), (200.0, 200.0))  # 2 px per pixel
    a = new_annotation("length", [(20, 50), (80, 50)], REF, layer="RED")
    img = canvas()
    paint(img, m, [a], layers={"RED": RED})
    y = to_screen(m, 50, 50)[1]
    for col in (25, 50, 75):
        assert is_red(rgb(img, to_screen(m, col, 50)[0], y))
    # the line is thin at any zoom: 4 screen px off it is untouched grey
    assert rgb(img, to_screen(m, 50, 50)[0], y + 5) == (128, 128, 128)
    # end ticks cross the line at both ends (5 px each side)
    assert is_red(rgb(img, to_screen(m, 20, 50)[0], y - 3))
    assert is_red(rgb(img, to_screen(m, 80, 50)[0], y + 3))


def test_width_does_not_follow_zoom(qapp) -> None:
    geo = ImageGeometry(100, 100)
    a = new_annotation("length", [(10, 50), (90, 50)], REF, layer="RED")
    widths = []
    for zoom in (1.0, 6.0):
        st = ViewState(zoom_mode="free", zoom=zoom)
        m = display_transform(st, geo, (200.0, 200.0))
        img = canvas()
        paint(img, m, [a], layers={"RED": RED})
        x, y = to_screen(m, 50, 50)
        widths.append(sum(is_red(rgb(img, x, y + d)) for d in range(-10, 11)))
    assert widths[0] == widths[1] and 1 <= widths[0] <= 3


def test_rotation_and_flip_put_the_graphic_where_the_image_is(qapp) -> None:
    geo = ImageGeometry(100, 160)
    a = new_annotation("rectangle", [(10, 10), (40, 30)], REF, layer="RED")
    for st in (ViewState(rotation=90), ViewState(flip=True, rotation=270)):
        m = display_transform(st, geo, (200.0, 200.0))
        img = canvas()
        paint(img, m, [a], layers={"RED": RED})
        for corner in ((10, 10), (40, 30), (25, 10), (40, 20)):
            x, y = to_screen(m, *corner)
            assert red_near(img, x, y), (st, corner)
        x, y = to_screen(m, 25, 20)  # inside: not filled
        assert rgb(img, x, y) == (128, 128, 128)


def test_measurement_text_is_drawn_outlined_and_kept_on_screen(qapp) -> None:
    m = display_transform(ViewState(), ImageGeometry(100, 100), (200.0, 200.0))
    a = new_annotation("length", [(80, 10), (99, 10)], REF, layer="RED")  # at the right edge
    meas = Measurement(("123.4 mm",), {"length_mm": 123.4}, "mm", "PixelSpacing")
    img = canvas()
    boxes = paint(img, m, [a], layers={"RED": RED}, measurements={a.uid: meas})
    box = boxes[a.uid]
    assert box.width() > 30 and 0 <= box.left() and box.right() <= 200 and box.top() >= 0
    inside = [
        rgb(img, x, y)
        for x in range(int(box.left()), int(box.right()))
        for y in range(int(box.top()), int(box.bottom()))
    ]
    assert any(is_red(c) for c in inside)  # the text colour
    assert any(max(c) < 40 for c in inside)  # the dark outline around it


def test_uncalibrated_measurement_says_so(qapp) -> None:
    m = display_transform(ViewState(), ImageGeometry(100, 100), (400.0, 400.0))
    a = new_annotation("length", [(20, 50), (40, 50)], REF)
    plain = Measurement(("20.0 px",), {"length_px": 20.0}, "px", "none", "uncalibrated: pixels")
    one = canvas(400, 400)
    boxes = paint(one, m, [a], measurements={a.uid: plain})
    calibrated = Measurement(("20.0 mm",), {"length_mm": 20.0}, "mm", "PixelSpacing")
    two = canvas(400, 400)
    boxes2 = paint(two, m, [a], measurements={a.uid: calibrated})
    assert boxes[a.uid].height() > boxes2[a.uid].height() * 1.6  # a second line: the note


def test_every_kind_paints_and_selection_adds_handles(qapp) -> None:
    m = display_transform(ViewState(), ImageGeometry(100, 100), (300.0, 300.0))
    kinds = {
        "length": [(10, 10), (30, 10)],
        "angle": [(10, 40), (20, 30), (35, 40)],
        "cobb": [(50, 10), (70, 14), (50, 30), (70, 24)],
        "ellipse": list(ellipse_from_box((60, 40), (90, 60))),
        "circle": [(20, 70), (30, 70)],
        "rectangle": [(40, 60), (55, 80)],
        "polygon": [(70, 70), (90, 72), (80, 90)],
        "point": [(50, 50)],
        "arrow": [(10, 90), (30, 80)],
        "text": [(5, 55)],
    }
    for kind, pts in kinds.items():
        a = new_annotation(kind, pts, REF, text="note" if kind == "text" else "", layer="RED")
        img = canvas(300, 300)
        paint(img, m, [a], layers={"RED": RED})
        assert red_mask(img).sum() > 20, kind
        sel = canvas(300, 300)
        paint(sel, m, [a], layers={"RED": RED}, selected=a.uid)
        x, y = to_screen(m, *pts[0])
        assert rgb(sel, x, y) == (255, 255, 255) or rgb(sel, x + 1, y + 1) == (255, 255, 255), kind


def test_ellipse_outline_passes_through_its_axis_ends(qapp) -> None:
    m = display_transform(ViewState(), ImageGeometry(100, 100), (400.0, 400.0))
    a = new_annotation("ellipse", ellipse_from_box((20, 30), (80, 60)), REF, layer="RED")
    img = canvas(400, 400)
    paint(img, m, [a], layers={"RED": RED})
    for pt in a.points:
        assert is_red(rgb(img, *to_screen(m, *pt)))
    assert rgb(img, *to_screen(m, 50, 45)) == (128, 128, 128)


def test_shutter_covers_exactly_the_pixels_outside(qapp) -> None:
    m = display_transform(ViewState(), ImageGeometry(20, 20), (200.0, 200.0))  # 10 px per pixel
    sh = Shutter(("CIRCULAR",), centre=(9.5, 9.5), radius=6.0, grey=1.0)
    img = canvas()
    p = QPainter(img)
    paint_shutter(p, m, sh, QSize(20, 20))
    p.end()
    shown = sh.mask(20, 20)
    for r in range(20):
        for c in range(20):
            got = rgb(img, *to_screen(m, c, r))
            assert got == ((128,) * 3 if shown[r, c] else (255,) * 3), (c, r)


def test_hit_testing_finds_handles_then_bodies(qapp) -> None:
    m = display_transform(
        ViewState(zoom_mode="free", zoom=3.0), ImageGeometry(100, 100), (300.0, 300.0)
    )
    line = new_annotation("length", [(10, 10), (40, 10)], REF)
    roi = new_annotation("rectangle", [(50, 50), (70, 70)], REF)
    x, y = to_screen(m, 40, 10)
    assert hit([line, roi], m, x + 3, y - 2) == (line, 1)
    x, y = to_screen(m, 25, 10)
    assert hit([line, roi], m, x, y + 4) == (line, None)
    assert hit([line, roi], m, x, y + 9) is None
    x, y = to_screen(m, 60, 60)  # inside the ROI grabs its body
    assert hit([line, roi], m, x, y) == (roi, None)
    x, y = to_screen(m, 70, 50)  # a corner that is not stored
    got, h = hit([line, roi], m, x, y)
    assert got is roi and h == 2
    moved = with_handle(roi, 2, (75, 45))
    assert moved.points == ((50.0, 45.0), (75.0, 70.0))
    assert outlines(moved)[0][0].shape == (4, 2)


def test_scale_thickens_lines_for_large_renders(qapp) -> None:
    m = display_transform(ViewState(), ImageGeometry(100, 100), (200.0, 200.0))
    a = new_annotation("length", [(10, 50), (90, 50)], REF, layer="RED")
    counts = []
    for scale in (1.0, 3.0):
        img = canvas()
        paint(img, m, [a], layers={"RED": RED}, scale=scale)
        counts.append(int(red_mask(img)[:, 60:140].sum()))
    assert counts[1] >= 2 * counts[0] > 0
