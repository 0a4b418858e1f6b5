import math

import pytest

from workstation.core.annotations import (
    ImageRef,
    ellipse_axes,
    ellipse_from_box,
    new_annotation,
)

REF = ImageRef("1.2.3", frame_number=2)


def test_point_counts_are_checked():
    with pytest.raises(ValueError, match="length needs 2 points"):
        new_annotation("length", [(0, 0)], REF)
    with pytest.raises(ValueError, match="polygon needs at least 3"):
        new_annotation("polygon", [(0, 0), (1, 1)], REF)
    with pytest.raises(ValueError, match="unknown annotation kind"):
        new_annotation("blob", [(0, 0)], REF)
    with pytest.raises(ValueError, match="not finite"):
        new_annotation("point", [(math.nan, 0)], REF)


def test_edits_keep_uid_and_make_new_objects():
    a = new_annotation("length", [(1, 2), (3, 4)], REF, text="x")
    b = a.moved(10, -1)
    assert b.uid == a.uid and b.points == ((11, 1), (13, 3)) and a.points == ((1, 2), (3, 4))
    c = a.with_point(1, (5, 5))
    assert c.points == ((1, 2), (5, 5))
    assert a.with_text("y").text == "y"


def test_ellipse_from_box_puts_major_axis_first():
    wide = ellipse_from_box((0, 0), (10, 4))
    assert wide == ((0, 2), (10, 2), (5, 0), (5, 4))
    tall = ellipse_from_box((0, 0), (4, 10))
    centre, a, b, _ = ellipse_axes(tall)
    assert centre == (2, 5) and a == 5 and b == 2


def test_dragging_an_ellipse_handle_keeps_axes_perpendicular():
    e = new_annotation("ellipse", ellipse_from_box((0, 0), (10, 4)), REF)
    rotated = e.with_point(1, (8, 0))
    centre, a, b, angle = ellipse_axes(rotated.points)
    assert centre == pytest.approx((5, 2))
    assert a == pytest.approx(math.hypot(3, 2)) and b == pytest.approx(2)
    (a0, a1, b0, b1) = rotated.points
    major = (a1[0] - a0[0], a1[1] - a0[1])
    minor = (b1[0] - b0[0], b1[1] - b0[1])
    assert major[0] * minor[0] + major[1] * minor[1] == pytest.approx(0, abs=1e-9)
    wider = e.with_point(3, (5, 5))
    assert ellipse_axes(wider.points)[2] == pytest.approx(3)
