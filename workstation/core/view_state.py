"""The state of one viewport and the maths that places the image on the screen.

A :class:`ViewState` is a frozen value: the frame shown, the window, zoom, pan, rotation, flip and
invert. :func:`display_transform` turns it into the affine map from image pixel coordinates
``(col, row)`` to viewport coordinates (logical pixels, y down), the one the widget paints with
and the one mouse positions are mapped back through.

The view holds a horizontal flip applied first, then a clockwise rotation; every combination of
the user's "flip horizontally", "flip vertically" and "rotate" is one of those eight. The GSPS
Spatial Transformation Module (PS3.3 C.10.6) orders them the other way (rotation, then flip), so
:func:`workstation.pstate.apply.view_rotation` / ``gsps_rotation`` convert between the two when a
presentation state is read or written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from workstation.core.voi import Voi

ZOOM_MODES = ("fit", "free", "one_to_one", "true_size")
MIN_ZOOM, MAX_ZOOM = 0.02, 64.0


@dataclass(frozen=True)
class ViewState:
    """What a viewport shows and how.

    Attributes
    ----------
    index : int
        Position in the display order of the frame source.
    voi : Window or VoiLut or None
        The window in modality units; None means the frame's own default.
    voi_label : str
        Where the window came from, for the annotation ("file", "preset lung", "user", "auto").
    zoom_mode : str
        ``fit`` (the image fills the viewport), ``free`` (``zoom`` applies), ``one_to_one``
        (one image pixel per screen pixel) or ``true_size`` (millimetres as on the patient).
    zoom : float
        Screen pixels per image pixel in ``free`` mode.
    pan : (float, float)
        Offset of the image centre from the viewport centre, in viewport pixels.
    rotation : int
        Clockwise rotation in degrees, 0, 90, 180 or 270 (applied after the flip).
    flip : bool
        Horizontal flip of the image (applied before the rotation).
    invert : bool
        Invert the grey scale relative to what the file asks for.
    align : (int, int)
        Where the image sits in the viewport when it is not zoomed freely (``fit``,
        ``one_to_one``, ``true_size``): horizontally -1 against the left edge, 0 centred, 1
        against the right edge; vertically -1 top, 0 centred, 1 bottom (the Hanging Protocol
        IOD's Display Set Horizontal / Vertical Justification; mammograms hang with the chest
        wall against the middle of the screen). ``pan`` is added to it.
    """

    index: int = 0
    voi: Voi | None = None
    voi_label: str = "file"
    zoom_mode: str = "fit"
    zoom: float = 1.0
    pan: tuple[float, float] = (0.0, 0.0)
    rotation: int = 0
    flip: bool = False
    invert: bool = False
    align: tuple[int, int] = (0, 0)

    def rotated(self, quarter_turns: int) -> ViewState:
        """Rotate the displayed image clockwise by ``quarter_turns`` x 90 degrees."""
        return replace(self, rotation=(self.rotation + 90 * quarter_turns) % 360)

    def flipped_horizontally(self) -> ViewState:
        """Mirror what is on the screen left to right (whatever the rotation)."""
        return replace(self, rotation=(-self.rotation) % 360, flip=not self.flip)

    def flipped_vertically(self) -> ViewState:
        """Mirror what is on the screen top to bottom (whatever the rotation)."""
        return replace(self, rotation=(180 - self.rotation) % 360, flip=not self.flip)


@dataclass(frozen=True)
class ImageGeometry:
    """What the transform needs to know of the image: its size and its pixel spacing.

    ``spacing`` is (row spacing, column spacing) in mm, or None when uncalibrated (square pixels
    then, or ``aspect`` from Pixel Aspect Ratio as (vertical, horizontal)).
    """

    rows: int
    cols: int
    spacing: tuple[float, float] | None = None
    aspect: tuple[float, float] = (1.0, 1.0)

    def pixel_shape(self) -> tuple[float, float]:
        """(height, width) of one pixel relative to the smaller of the two."""
        if self.spacing is not None:
            v, h = self.spacing
        else:
            v, h = self.aspect
        m = min(v, h) if min(v, h) > 0 else 1.0
        return v / m, h / m


def _rotation_matrix(degrees: int) -> np.ndarray:
    """Clockwise on a screen whose y axis points down."""
    t = math.radians(degrees)
    c, s = round(math.cos(t)), round(math.sin(t))
    return np.array([[c, -s], [s, c]], dtype=np.float64)


def _linear(state: ViewState, geo: ImageGeometry) -> np.ndarray:
    """The 2x2 part without the zoom: pixel aspect, flip, rotation."""
    ph, pw = geo.pixel_shape()
    m = np.diag([pw, ph])
    if state.flip:
        m = np.diag([-1.0, 1.0]) @ m
    return _rotation_matrix(state.rotation) @ m


def fit_scale(state: ViewState, geo: ImageGeometry, viewport: tuple[float, float]) -> float:
    """Screen pixels per (aspect-corrected) image pixel that fits the image in ``viewport``."""
    ph, pw = geo.pixel_shape()
    w, h = geo.cols * pw, geo.rows * ph
    if state.rotation % 180:
        w, h = h, w
    vw, vh = viewport
    if w <= 0 or h <= 0 or vw <= 0 or vh <= 0:
        return 1.0
    return min(vw / w, vh / h)


def effective_scale(
    state: ViewState,
    geo: ImageGeometry,
    viewport: tuple[float, float],
    device_pixel_ratio: float = 1.0,
    screen_px_per_mm: float | None = None,
) -> float:
    """The scale the state asks for, in logical screen pixels per aspect-corrected image pixel.

    ``one_to_one`` shows one image pixel on one physical screen pixel; ``true_size`` needs the
    screen's pixels per millimetre (logical) and a calibrated image, else it falls back to fit.
    """
    if state.zoom_mode == "free":
        return state.zoom
    if state.zoom_mode == "one_to_one":
        return 1.0 / max(device_pixel_ratio, 1e-6)
    if state.zoom_mode == "true_size" and geo.spacing is not None and screen_px_per_mm:
        return min(geo.spacing) * screen_px_per_mm
    return fit_scale(state, geo, viewport)


def display_transform(
    state: ViewState,
    geo: ImageGeometry,
    viewport: tuple[float, float],
    device_pixel_ratio: float = 1.0,
    screen_px_per_mm: float | None = None,
) -> np.ndarray:
    """The 3x3 affine matrix from image ``(col, row, 1)`` to viewport ``(x, y, 1)``.

    Pixel centres are at integer coordinates; the image covers ``[-0.5, cols - 0.5]`` by
    ``[-0.5, rows - 0.5]`` and its centre lands on the viewport centre plus ``state.pan``.
    """
    s = effective_scale(state, geo, viewport, device_pixel_ratio, screen_px_per_mm)
    lin = s * _linear(state, geo)
    centre = np.array([geo.cols / 2 - 0.5, geo.rows / 2 - 0.5])
    target = np.array([viewport[0] / 2 + state.pan[0], viewport[1] / 2 + state.pan[1]])
    if state.zoom_mode != "free" and state.align != (0, 0):
        # the image's on-screen extent; the spare room (negative when it overflows) moves it
        # against the edge asked for
        extent = np.abs(lin) @ np.array([float(geo.cols), float(geo.rows)])
        spare = np.array([viewport[0], viewport[1]], dtype=np.float64) - extent
        target = target + np.array(state.align, dtype=np.float64) * spare / 2
    m = np.eye(3)
    m[:2, :2] = lin
    m[:2, 2] = target - lin @ centre
    return m


def to_image(matrix: np.ndarray, x: float, y: float) -> tuple[float, float]:
    """Viewport point -> image ``(col, row)`` through the inverse of ``matrix``."""
    inv = np.linalg.inv(matrix)
    c, r, _ = inv @ np.array([x, y, 1.0])
    return float(c), float(r)


def to_screen(matrix: np.ndarray, col: float, row: float) -> tuple[float, float]:
    """Image ``(col, row)`` -> viewport point."""
    x, y, _ = matrix @ np.array([col, row, 1.0])
    return float(x), float(y)


def screen_axes_in_patient(
    matrix: np.ndarray, row_dir: np.ndarray, col_dir: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Patient directions of the screen's +x (right) and +y (down) axes.

    ``row_dir`` is the patient direction of increasing column, ``col_dir`` of increasing row
    (Image Orientation (Patient)). Used for the orientation labels on the four edges.
    """
    inv = np.linalg.inv(matrix[:2, :2])
    right = inv @ np.array([1.0, 0.0])
    down = inv @ np.array([0.0, 1.0])
    r = right[0] * np.asarray(row_dir) + right[1] * np.asarray(col_dir)
    d = down[0] * np.asarray(row_dir) + down[1] * np.asarray(col_dir)
    return r / (np.linalg.norm(r) or 1.0), d / (np.linalg.norm(d) or 1.0)


def zoom_about(
    state: ViewState,
    factor: float,
    anchor: tuple[float, float],
    geo: ImageGeometry,
    viewport: tuple[float, float],
    device_pixel_ratio: float = 1.0,
    screen_px_per_mm: float | None = None,
) -> ViewState:
    """Zoom by ``factor`` keeping the image point under ``anchor`` (viewport px) in place."""
    s0 = effective_scale(state, geo, viewport, device_pixel_ratio, screen_px_per_mm)
    s1 = min(max(s0 * factor, MIN_ZOOM), MAX_ZOOM)
    k = s1 / s0
    m = display_transform(state, geo, viewport, device_pixel_ratio, screen_px_per_mm)
    cx, cy = to_screen(m, geo.cols / 2 - 0.5, geo.rows / 2 - 0.5)  # alignment included
    ax, ay = anchor
    new_centre = (ax + (cx - ax) * k, ay + (cy - ay) * k)
    pan = (new_centre[0] - viewport[0] / 2, new_centre[1] - viewport[1] / 2)
    return replace(state, zoom_mode="free", zoom=s1, pan=pan)
