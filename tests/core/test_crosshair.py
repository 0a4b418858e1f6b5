"""The MPR crosshair model: point, orthogonal planes, rotations (oblique, double oblique), slab."""

from __future__ import annotations

import numpy as np
import pytest

from workstation.core.crosshair import (
    VIEWS,
    CrosshairModel,
    PlaneAxes,
    default_axes,
    rotation_about,
)
from workstation.core.geometry import classify_orientation, orientation_labels


def normals(m: CrosshairModel) -> np.ndarray:
    return np.array([m.normal(v) for v in VIEWS])


def test_default_axes_are_the_radiological_planes():
    axes = default_axes()
    # axial from the feet: patient left on the right, anterior up -> normal towards the head
    assert orientation_labels(axes["axial"].x_axis, axes["axial"].y_axis) == {
        "left": "R",
        "right": "L",
        "top": "A",
        "bottom": "P",
    }
    assert orientation_labels(axes["coronal"].x_axis, axes["coronal"].y_axis)["top"] == "H"
    sag = orientation_labels(axes["sagittal"].x_axis, axes["sagittal"].y_axis)
    assert (sag["left"], sag["right"], sag["top"]) == ("A", "P", "H")
    for v in VIEWS:
        assert classify_orientation(axes[v].x_axis, axes[v].y_axis) == v


def test_listeners_hear_point_axes_and_slab_changes_once():
    m = CrosshairModel((0, 0, 0))
    heard = []
    unsubscribe = m.subscribe(lambda model, what: heard.append(what))
    m.set_point((1, 2, 3))
    m.set_point((1, 2, 3))  # no change, no notification
    m.rotate("axial", 0.2)
    m.set_slab(10, "minip")
    m.set_slab(10, "minip")
    assert heard == ["point", "axes", "slab"]
    unsubscribe()
    m.set_point((0, 0, 0))
    assert heard == ["point", "axes", "slab"]


def test_scrolling_a_view_moves_the_point_only_along_its_normal():
    m = CrosshairModel((10.0, -20.0, 30.0))
    m.move_along_normal("coronal", 5.0)  # coronal normal is +y (posterior)
    np.testing.assert_allclose(m.point, (10.0, 5.0, 30.0))
    m.move_along_normal("axial", -100.0)
    np.testing.assert_allclose(m.point, (10.0, 5.0, -100.0))


def test_rotating_in_the_axial_view_turns_coronal_and_sagittal_about_the_head_feet_axis():
    m = CrosshairModel((0, 0, 0))
    axial_before = m.axes["axial"]
    m.rotate("axial", np.radians(30))
    assert m.axes["axial"] is axial_before  # the view rotated in keeps its plane
    assert m.is_oblique and not m.view_is_oblique("axial") and m.view_is_oblique("coronal")
    # right-handed about +z, i.e. from the axial x axis (L) towards its y axis (P)
    c = np.radians(30)
    np.testing.assert_allclose(m.axes["coronal"].x_axis, (np.cos(c), np.sin(c), 0), atol=1e-12)
    np.testing.assert_allclose(m.axes["coronal"].y_axis, (0, 0, -1), atol=1e-12)
    np.testing.assert_allclose(normals(m) @ normals(m).T, np.eye(3), atol=1e-12)
    # the coronal plane is now oblique: its right edge points left and posterior
    labels = orientation_labels(m.axes["coronal"].x_axis, m.axes["coronal"].y_axis)
    assert labels["right"] == "LP" and labels["left"] == "RA" and labels["top"] == "H"


def test_double_oblique_keeps_the_planes_orthogonal_and_reset_restores_them():
    m = CrosshairModel((5, 5, 5))
    m.rotate("axial", 0.4)
    m.rotate("coronal", -0.3)  # tilts the axial plane too now
    assert m.view_is_oblique("axial") and m.view_is_oblique("sagittal")
    for _ in range(200):  # many small drags: no drift from orthogonality or unit length
        m.rotate("sagittal", 0.01)
        m.rotate("sagittal", -0.01)
    n = normals(m)
    np.testing.assert_allclose(n @ n.T, np.eye(3), atol=1e-9)
    d = m.line_direction("axial", "coronal")
    assert abs(np.dot(d, m.normal("axial"))) < 1e-9 and abs(np.dot(d, m.normal("coronal"))) < 1e-9
    m.set_point((50, 60, 70))
    m.reset()
    assert not m.is_oblique
    np.testing.assert_allclose(m.point, (5, 5, 5))


def test_rotation_matrix_is_right_handed():
    r = rotation_about((0, 0, 1), np.pi / 2)
    np.testing.assert_allclose(r @ np.array([1.0, 0, 0]), (0, 1, 0), atol=1e-12)


def test_bad_input_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="slab thickness"):
        CrosshairModel((0, 0, 0), slab_mm=150)
    m = CrosshairModel((0, 0, 0))
    with pytest.raises(ValueError, match="slab mode"):
        m.set_slab(5, "average")
    with pytest.raises(ValueError, match="3 finite"):
        m.set_point((0, np.nan, 0))
    with pytest.raises(ValueError, match="unknown view"):
        m.rotate("oblique", 0.1)
    with pytest.raises(ValueError, match="parallel"):
        PlaneAxes(np.array([1.0, 0, 0]), np.array([2.0, 0, 0]))
    with pytest.raises(ValueError, match="axes for"):
        CrosshairModel((0, 0, 0), axes={"axial": default_axes()["axial"]})
