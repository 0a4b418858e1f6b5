"""The MPR crosshair: one patient point, three mutually orthogonal planes through it, a slab.

Pure numpy, no Qt and no VTK: the MPR views draw this model and turn mouse drags into calls on it
(DESIGN rule 1). Listeners are called as ``listener(model, what)`` where ``what`` is ``'point'``
(the crosshair moved), ``'axes'`` (a rotation turned one or more planes) or ``'slab'``
(thickness or mode changed).

Conventions
-----------
Coordinates are DICOM patient coordinates (LPS, mm). Each view has an ``x_axis`` (patient
direction of increasing image column, towards the screen's right) and a ``y_axis`` (increasing
row, towards the screen's bottom); its normal is ``x_axis x y_axis``. The default axes are the
radiological ones: axial seen from the feet, coronal from the front, sagittal from the patient's
left (:data:`ORTHOGONAL_AXES`).

Rotating "in" a view turns the *other two* planes about that view's normal through the
crosshair point; the view's own plane stays, and only the crosshair lines drawn on it turn. A
second rotation in another view tilts the first view's plane too: double oblique. The three
normals stay mutually orthogonal whatever the sequence of rotations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

VIEWS = ("axial", "coronal", "sagittal")
SLAB_MODES = ("mip", "minip", "mean")
MAX_SLAB_MM = 100.0

#: (x_axis, y_axis) per view, radiological convention (patient LPS).
ORTHOGONAL_AXES: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "axial": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    "coronal": ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),
    "sagittal": ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
}

Listener = Callable[["CrosshairModel", str], None]


@dataclass(frozen=True, eq=False)
class PlaneAxes:
    """The in-plane axes of one view (unit, orthogonal), stored read-only.

    Parameters
    ----------
    x_axis, y_axis : numpy.ndarray
        Patient directions of increasing column and increasing row.
    """

    x_axis: np.ndarray
    y_axis: np.ndarray

    def __post_init__(self) -> None:
        x = np.asarray(self.x_axis, dtype=np.float64).reshape(3)
        y = np.asarray(self.y_axis, dtype=np.float64).reshape(3)
        nx = np.linalg.norm(x)
        if nx < 1e-9:
            raise ValueError("PlaneAxes: zero-length x axis")
        x = x / nx
        y = y - np.dot(y, x) * x  # re-orthogonalise: rotations accumulate rounding
        ny = np.linalg.norm(y)
        if ny < 1e-6:
            raise ValueError("PlaneAxes: x and y axes are parallel")
        y = y / ny
        x.setflags(write=False)
        y.setflags(write=False)
        object.__setattr__(self, "x_axis", x)
        object.__setattr__(self, "y_axis", y)

    @property
    def normal(self) -> np.ndarray:
        """``x_axis x y_axis`` (unit)."""
        return np.cross(self.x_axis, self.y_axis)

    def rotated(self, rotation: np.ndarray) -> PlaneAxes:
        """These axes turned by the 3x3 rotation matrix ``rotation``."""
        return PlaneAxes(rotation @ self.x_axis, rotation @ self.y_axis)

    def is_parallel_to(self, other: PlaneAxes, tol: float = 1e-6) -> bool:
        """Whether both axes agree within ``tol`` (per component)."""
        return bool(
            np.allclose(self.x_axis, other.x_axis, atol=tol)
            and np.allclose(self.y_axis, other.y_axis, atol=tol)
        )


def rotation_about(axis: Sequence[float], angle_rad: float) -> np.ndarray:
    """3x3 matrix of a right-handed rotation by ``angle_rad`` about the unit ``axis`` (Rodrigues)."""
    k = np.asarray(axis, dtype=np.float64)
    k = k / np.linalg.norm(k)
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle_rad) * kx + (1.0 - np.cos(angle_rad)) * (kx @ kx)


def default_axes() -> dict[str, PlaneAxes]:
    """The orthogonal radiological axes of :data:`ORTHOGONAL_AXES`."""
    return {v: PlaneAxes(np.array(x), np.array(y)) for v, (x, y) in ORTHOGONAL_AXES.items()}


class CrosshairModel:
    """The crosshair point, the three view planes and the slab, with change notifications.

    Parameters
    ----------
    point : sequence of 3 floats
        The initial crosshair point (patient mm), usually the volume's centre.
    axes : mapping of view name to PlaneAxes, optional
        The initial (reset) axes; default :func:`default_axes`.
    slab_mm : float
        Slab thickness, 0 for a thin slice (at most :data:`MAX_SLAB_MM`).
    mode : str
        One of :data:`SLAB_MODES`.
    """

    def __init__(
        self,
        point: Sequence[float],
        axes: Mapping[str, PlaneAxes] | None = None,
        slab_mm: float = 0.0,
        mode: str = "mip",
    ) -> None:
        self._home_point = _point(point)
        self._home_axes = dict(axes) if axes is not None else default_axes()
        if set(self._home_axes) != set(VIEWS):
            raise ValueError(
                f"CrosshairModel: axes for {VIEWS} needed, got {sorted(self._home_axes)}"
            )
        self.point: np.ndarray = self._home_point.copy()
        self.axes: dict[str, PlaneAxes] = dict(self._home_axes)
        self.slab_mm = 0.0
        self.mode = "mip"
        self._check_slab(slab_mm, mode)
        self.slab_mm, self.mode = float(slab_mm), mode
        self._listeners: list[Listener] = []

    # --- notifications ------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(model, what)`` on every change; returns an unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _notify(self, what: str) -> None:
        for listener in list(self._listeners):
            listener(self, what)

    # --- queries --------------------------------------------------------------------------------
    def normal(self, view: str) -> np.ndarray:
        """The unit normal of ``view``'s plane."""
        return self.axes[view].normal

    @property
    def is_oblique(self) -> bool:
        """Whether any plane differs from its reset orientation."""
        return any(not self.axes[v].is_parallel_to(self._home_axes[v]) for v in VIEWS)

    def view_is_oblique(self, view: str) -> bool:
        """Whether ``view``'s plane differs from its reset orientation."""
        return not self.axes[view].is_parallel_to(self._home_axes[view])

    def line_direction(self, view: str, other: str) -> np.ndarray:
        """Unit patient direction of ``other``'s plane where it crosses ``view``'s plane."""
        d = np.cross(self.normal(view), self.normal(other))
        n = np.linalg.norm(d)
        if n < 1e-9:
            raise ValueError(f"the {view} and {other} planes are parallel")
        return d / n

    # --- changes --------------------------------------------------------------------------------
    def set_point(self, point: Sequence[float]) -> None:
        """Move the crosshair to ``point`` (patient mm)."""
        p = _point(point)
        if not np.allclose(p, self.point, atol=1e-9):
            self.point = p
            self._notify("point")

    def move_along_normal(self, view: str, position_mm: float) -> None:
        """Put the crosshair at signed position ``position_mm`` along ``view``'s normal (what
        scrolling ``view`` does); the in-plane part of the point stays."""
        n = self.normal(view)
        self.set_point(self.point + n * (float(position_mm) - float(np.dot(self.point, n))))

    def rotate(self, view: str, angle_rad: float) -> None:
        """Turn the other two planes by ``angle_rad`` about ``view``'s normal (through the point).

        The turn is right-handed about the normal, i.e. from ``view``'s x axis towards its y
        axis: the direction in which ``atan2(row, col)`` grows in ``view``'s image, which is
        clockwise on a screen showing the image unflipped (y down).
        """
        if view not in VIEWS:
            raise ValueError(f"unknown view {view!r}: one of {VIEWS}")
        if abs(angle_rad) < 1e-12:
            return
        r = rotation_about(self.normal(view), float(angle_rad))
        for v in VIEWS:
            if v != view:
                self.axes[v] = self.axes[v].rotated(r)
        self._notify("axes")

    def set_slab(self, slab_mm: float, mode: str | None = None) -> None:
        """Set the slab thickness (0..100 mm; 0 is a thin slice) and optionally its mode."""
        mode = self.mode if mode is None else mode
        self._check_slab(slab_mm, mode)
        if (float(slab_mm), mode) != (self.slab_mm, self.mode):
            self.slab_mm, self.mode = float(slab_mm), mode
            self._notify("slab")

    def reset(self, point: Sequence[float] | None = None) -> None:
        """Orthogonal planes again, through ``point`` (default: the initial point); slab kept."""
        self.axes = dict(self._home_axes)
        self.point = self._home_point.copy() if point is None else _point(point)
        self._notify("axes")
        self._notify("point")

    def rehome(self, point: Sequence[float], axes: Mapping[str, PlaneAxes] | None = None) -> None:
        """New reset point and axes (another volume), and go there; the slab stays."""
        home_axes = dict(axes) if axes is not None else default_axes()
        if set(home_axes) != set(VIEWS):
            raise ValueError(f"CrosshairModel: axes for {VIEWS} needed, got {sorted(home_axes)}")
        self._home_point = _point(point)
        self._home_axes = home_axes
        self.reset()

    @staticmethod
    def _check_slab(slab_mm: float, mode: str) -> None:
        if mode not in SLAB_MODES:
            raise ValueError(f"slab mode {mode!r}: one of {SLAB_MODES}")
        if not 0.0 <= float(slab_mm) <= MAX_SLAB_MM:
            raise ValueError(f"slab thickness {slab_mm} mm: 0 to {MAX_SLAB_MM:g} mm")


def _point(point: Sequence[float]) -> np.ndarray:
    p = np.asarray(point, dtype=np.float64).reshape(-1)
    if p.shape != (3,) or not np.all(np.isfinite(p)):
        raise ValueError(f"a patient point needs 3 finite coordinates, got {point!r}")
    return p
