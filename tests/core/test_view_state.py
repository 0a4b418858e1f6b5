"""The display transform: where image pixels land on the screen, and back."""

from __future__ import annotations

import numpy as np
import pytest

from workstation.core.geometry import orientation_labels
from workstation.core.view_state import (
    ImageGeometry,
    ViewState,
    display_transform,
    effective_scale,
    screen_axes_in_patient,
    to_image,
    to_screen,
    zoom_about,
)

GEO = ImageGeometry(rows=100, cols=200, spacing=(0.5, 0.5))
VIEW = (400.0, 400.0)


def corners(state: ViewState, geo: ImageGeometry = GEO) -> dict[str, tuple[float, float]]:
    m = display_transform(state, geo, VIEW)
    return {
        "top_left": to_screen(m, -0.5, -0.5),
        "top_right": to_screen(m, geo.cols - 0.5, -0.5),
        "bottom_left": to_screen(m, -0.5, geo.rows - 0.5),
    }


def test_fit_fills_the_limiting_dimension_and_centres() -> None:
    c = corners(ViewState())
    # 200 x 100 pixels into 400 x 400: scale 2, so 400 x 200 centred vertically
    assert c["top_left"] == pytest.approx((0.0, 100.0))
    assert c["top_right"] == pytest.approx((400.0, 100.0))
    assert c["bottom_left"] == pytest.approx((0.0, 300.0))


def test_rotation_clockwise_moves_the_top_left_corner_to_the_top_right() -> None:
    c = corners(ViewState(rotation=90))
    # rotated image is 100 wide, 200 high -> scale 2, so it spans x 100..300, y 0..400
    assert c["top_left"] == pytest.approx((300.0, 0.0))
    assert c["bottom_left"] == pytest.approx((100.0, 0.0))


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
@pytest.mark.parametrize("flip", [False, True])
def test_screen_flips_mirror_the_screen_whatever_the_rotation(rotation: int, flip: bool) -> None:
    s = ViewState(rotation=rotation, flip=flip)
    m0 = display_transform(s, GEO, VIEW)
    mh = display_transform(s.flipped_horizontally(), GEO, VIEW)
    mv = display_transform(s.flipped_vertically(), GEO, VIEW)
    for col, row in ((0, 0), (150, 20), (199, 99)):
        x0, y0 = to_screen(m0, col, row)
        assert to_screen(mh, col, row) == pytest.approx((400 - x0, y0))
        assert to_screen(mv, col, row) == pytest.approx((x0, 400 - y0))
    # twice is the identity
    assert s.flipped_horizontally().flipped_horizontally() == s


def test_to_image_inverts_to_screen() -> None:
    s = ViewState(rotation=270, flip=True, zoom_mode="free", zoom=3.0, pan=(12.0, -7.0))
    m = display_transform(s, GEO, VIEW)
    x, y = to_screen(m, 37.0, 81.0)
    assert to_image(m, x, y) == pytest.approx((37.0, 81.0))


def test_zoom_about_keeps_the_anchor_fixed() -> None:
    s = ViewState()
    m = display_transform(s, GEO, VIEW)
    anchor = (310.0, 180.0)
    under = to_image(m, *anchor)
    z = zoom_about(s, 2.5, anchor, GEO, VIEW)
    assert z.zoom_mode == "free"
    assert z.zoom == pytest.approx(2.0 * 2.5)
    assert to_screen(display_transform(z, GEO, VIEW), *under) == pytest.approx(anchor)


def test_non_square_pixels_keep_their_physical_aspect() -> None:
    geo = ImageGeometry(rows=100, cols=100, spacing=(1.0, 0.5))  # rows 1 mm apart, columns 0.5 mm
    m = display_transform(ViewState(), geo, VIEW)
    w = to_screen(m, 99.5, 0)[0] - to_screen(m, -0.5, 0)[0]
    h = to_screen(m, 0, 99.5)[1] - to_screen(m, 0, -0.5)[1]
    assert h / w == pytest.approx(2.0)


def test_one_to_one_and_true_size() -> None:
    assert effective_scale(ViewState(zoom_mode="one_to_one"), GEO, VIEW, 2.0) == 0.5
    # 0.5 mm pixels on a screen of 4 logical px per mm: 2 px per image pixel
    assert effective_scale(ViewState(zoom_mode="true_size"), GEO, VIEW, 1.0, 4.0) == 2.0
    uncal = ImageGeometry(rows=100, cols=200)
    fit = effective_scale(ViewState(), uncal, VIEW)
    assert effective_scale(ViewState(zoom_mode="true_size"), uncal, VIEW, 1.0, 4.0) == fit


def test_orientation_labels_follow_rotation_and_flip() -> None:
    row_dir, col_dir = np.array([1.0, 0, 0]), np.array([0, 1.0, 0])  # axial

    def labels(state: ViewState) -> dict[str, str]:
        m = display_transform(state, GEO, VIEW)
        return orientation_labels(*screen_axes_in_patient(m, row_dir, col_dir))

    assert labels(ViewState()) == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    assert labels(ViewState(rotation=90)) == {"left": "P", "right": "A", "top": "R", "bottom": "L"}
    assert labels(ViewState().flipped_horizontally()) == {
        "left": "L",
        "right": "R",
        "top": "A",
        "bottom": "P",
    }


@pytest.mark.parametrize(
    ("align", "left_x", "top_y"),
    [((1, 0), 0.0, 100.0), ((-1, 0), 0.0, 100.0), ((0, -1), 0.0, 0.0), ((0, 1), 0.0, 200.0)],
)
def test_align_holds_the_fitted_image_against_an_edge(align, left_x, top_y) -> None:
    # 200 x 100 fitted into 400 x 400 fills the width: only the vertical alignment moves it
    c = corners(ViewState(align=align))
    assert c["top_left"] == pytest.approx((left_x, top_y))


def test_align_right_puts_a_tall_image_against_the_right_edge_after_flip_and_rotation() -> None:
    geo = ImageGeometry(rows=300, cols=100, spacing=(0.1, 0.1))  # a mammogram: tall and narrow
    for state in (ViewState(align=(1, 0)), ViewState(align=(1, 0), flip=True)):
        m = display_transform(state, geo, VIEW)
        xs = [to_screen(m, c, r)[0] for c in (-0.5, 99.5) for r in (-0.5, 299.5)]
        assert max(xs) == pytest.approx(400.0) and min(xs) == pytest.approx(400 - 400 / 3)
    m = display_transform(ViewState(align=(-1, 0)), geo, VIEW)
    xs = [to_screen(m, c, r)[0] for c in (-0.5, 99.5) for r in (-0.5, 299.5)]
    assert min(xs) == pytest.approx(0.0)
    # a pan still moves it, and a free zoom about a point keeps that point in place
    panned = display_transform(ViewState(align=(1, 0), pan=(-10.0, 0.0)), geo, VIEW)
    assert to_screen(panned, 99.5, 0)[0] == pytest.approx(390.0)
    s = ViewState(align=(1, 0))
    anchor = (380.0, 200.0)
    under = to_image(display_transform(s, geo, VIEW), *anchor)
    z = zoom_about(s, 2.0, anchor, geo, VIEW)
    assert to_screen(display_transform(z, geo, VIEW), *under) == pytest.approx(anchor)
