"""Applying a presentation state to a view, and capturing a view as one: pure functions.

:func:`view_from_presentation` turns what a GSPS says about one image into the
:class:`~workstation.core.view_state.ViewState` values to set (window, zoom and pan from the
displayed area for a given viewport size, rotation, flip, invert);
:func:`presentation_from_view` goes back: a ViewState and viewport size give the displayed area
(and the rest) to write.

Order of rotation and flip: a GSPS rotates first and flips after (PS3.3 C.10.6, as DCMTK and
dciodvfy read it); the viewer's ViewState flips first. :func:`view_rotation` converts.

Polarity: a GSPS's Presentation LUT Shape replaces the image's own; INVERSE shows low values
bright. The viewer's ``invert`` is relative to the file (MONOCHROME1 or an INVERSE shape in the
image already inverts), so ``invert = shape_inverse != inverted_by_file``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from workstation.core.annotations import Annotation, ImageRef, Layer
from workstation.core.view_state import (
    ImageGeometry,
    ViewState,
    display_transform,
    effective_scale,
    fit_scale,
)
from workstation.core.voi import VoiLut, Window
from workstation.pstate.model import DisplayedArea, ImagePresentation, Shutter


def view_rotation(gsps_rotation: int, flip: bool) -> int:
    """The viewer's rotation (flip first, then rotate) for a GSPS Image Rotation (rotate first,
    then flip): flipping after a clockwise turn equals flipping first and turning back."""
    return (-gsps_rotation) % 360 if flip else gsps_rotation % 360


def gsps_rotation(view_rotation: int, flip: bool) -> int:
    """The GSPS Image Rotation for a viewer rotation (the same involution)."""
    return (-view_rotation) % 360 if flip else view_rotation % 360


def _scale_for_area(
    area: DisplayedArea, rotation: int, geo: ImageGeometry, viewport: tuple[float, float],
    screen_px_per_mm: float | None,
) -> tuple[str, float]:  # fmt: skip
    """(zoom mode, screen px per aspect-corrected image px) the displayed area asks for."""
    if area.size_mode == "MAGNIFY":
        return "free", float(area.magnification or 1.0)
    if area.size_mode == "TRUE SIZE":
        spacing = area.pixel_spacing or geo.spacing
        if spacing is not None and screen_px_per_mm:
            return "free", min(spacing) * screen_px_per_mm
        # no screen size known: fall through to scale to fit
    ph, pw = geo.pixel_shape()
    w, h = area.size
    w, h = w * pw, h * ph
    if rotation % 180:
        w, h = h, w
    vw, vh = viewport
    if w <= 0 or h <= 0 or vw <= 0 or vh <= 0:
        return "fit", 1.0
    return "free", min(vw / w, vh / h)


def identity_window(ds) -> Window:
    """The window equal to "no VOI transformation": the whole range of modality values the
    image can hold (Bits Stored, Pixel Representation, Rescale Slope/Intercept) mapped linearly
    onto the output, as DCMTK renders a state without a Softcopy VOI LUT."""
    bits = int(ds.get("BitsStored", 16) or 16)
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    try:
        slope = float(ds.get("RescaleSlope", 1) or 1)
        intercept = float(ds.get("RescaleIntercept", 0) or 0)
    except (TypeError, ValueError):
        slope, intercept = 1.0, 0.0
    a, b = sorted((lo * slope + intercept, hi * slope + intercept))
    return Window((a + b) / 2, max(b - a, 1e-6), "LINEAR_EXACT", "no VOI in the state")


def _whole_image(area: DisplayedArea, geo: ImageGeometry) -> bool:
    return area.size_mode == "SCALE TO FIT" and area.bounds == (
        -0.5,
        -0.5,
        geo.cols - 0.5,
        geo.rows - 0.5,
    )


def view_from_presentation(
    p: ImagePresentation,
    geo: ImageGeometry,
    viewport: tuple[float, float],
    *,
    inverted_by_file: bool = False,
    base: ViewState | None = None,
    screen_px_per_mm: float | None = None,
    no_voi: Window | None = None,
) -> ViewState:
    """The view a presentation state asks for on one image.

    Parameters
    ----------
    p : ImagePresentation
    geo : ImageGeometry
        The image's size and spacing.
    viewport : (width, height)
        Logical pixels of the viewport (or output picture).
    inverted_by_file : bool
        Whether the image itself asks for inversion (MONOCHROME1, INVERSE shape).
    base : ViewState, optional
        The current view (its index is kept; window kept when the state has none).
    screen_px_per_mm : float, optional
        For TRUE SIZE.
    no_voi : Window, optional
        The window to use when the state has no VOI for the image (the state then asks for
        none: :func:`identity_window` of the image); None keeps ``base``'s window.
    """
    base = base or ViewState()
    voi = base.voi
    label = base.voi_label
    if p.voi_lut is not None:
        voi = VoiLut(int(p.voi_lut_first), int(p.voi_lut_bits), np.asarray(p.voi_lut),
                     p.voi_explanation)  # fmt: skip
        label = "presentation state"
    elif p.voi is not None:
        voi = Window(float(p.voi[0]), float(p.voi[1]), p.voi_function, p.voi_explanation)
        label = "presentation state"
    elif no_voi is not None:
        voi, label = no_voi, "presentation state"
    state = replace(
        base,
        voi=voi,
        voi_label=label,
        rotation=view_rotation(int(p.rotation), bool(p.flip)),
        flip=bool(p.flip),
        invert=bool(p.invert) != bool(inverted_by_file),
        zoom_mode="fit",
        zoom=1.0,
        pan=(0.0, 0.0),
    )
    area = p.displayed_area
    if area is None or _whole_image(area, geo):
        return state
    mode, scale = _scale_for_area(area, p.rotation, geo, viewport, screen_px_per_mm)
    if mode == "fit":
        return state
    state = replace(state, zoom_mode="free", zoom=scale)
    m = display_transform(state, geo, viewport, 1.0, screen_px_per_mm)
    x, y, _ = m @ np.array([area.centre[0], area.centre[1], 1.0])
    return replace(state, pan=(viewport[0] / 2 - float(x), viewport[1] / 2 - float(y)))


def displayed_area_from_view(
    state: ViewState,
    geo: ImageGeometry,
    viewport: tuple[float, float],
    *,
    device_pixel_ratio: float = 1.0,
    screen_px_per_mm: float | None = None,
) -> DisplayedArea:
    """The displayed area that reproduces ``state`` in a viewport of this size.

    ``fit`` gives the whole image, SCALE TO FIT; ``one_to_one`` MAGNIFY 1; ``true_size`` TRUE
    SIZE with the image spacing; ``free`` the part of the image the viewport shows, SCALE TO FIT
    (so another screen shows the same anatomy), to the nearest pixel.
    """
    spacing = geo.spacing
    if state.zoom_mode == "fit":
        return DisplayedArea((0.0, 0.0), (geo.cols - 1.0, geo.rows - 1.0), "SCALE TO FIT",
                             pixel_spacing=spacing)  # fmt: skip
    m = display_transform(state, geo, viewport, device_pixel_ratio, screen_px_per_mm)
    inv = np.linalg.inv(m)
    vw, vh = viewport
    corners = np.array([[0, 0, 1], [vw, 0, 1], [vw, vh, 1], [0, vh, 1]], dtype=float).T
    img = inv @ corners
    left, right = float(img[0].min()), float(img[0].max())
    top, bottom = float(img[1].min()), float(img[1].max())
    # whole pixels: the corner pixels whose centres lie nearest inside the shown edges
    c0, c1 = round(left + 0.5), round(right - 0.5)
    r0, r1 = round(top + 0.5), round(bottom - 0.5)
    c1, r1 = max(c1, c0), max(r1, r0)
    if state.zoom_mode == "one_to_one":
        scale = effective_scale(state, geo, viewport, device_pixel_ratio, screen_px_per_mm)
        return DisplayedArea((c0, r0), (c1, r1), "MAGNIFY", magnification=scale,
                             pixel_spacing=spacing)  # fmt: skip
    if state.zoom_mode == "true_size" and spacing is not None and screen_px_per_mm:
        return DisplayedArea((c0, r0), (c1, r1), "TRUE SIZE", pixel_spacing=spacing)
    return DisplayedArea((c0, r0), (c1, r1), "SCALE TO FIT", pixel_spacing=spacing)


def presentation_from_view(
    state: ViewState,
    image: ImageRef,
    geo: ImageGeometry,
    viewport: tuple[float, float],
    *,
    inverted_by_file: bool = False,
    voi: Window | VoiLut | None = None,
    annotations: tuple[Annotation, ...] = (),
    layers: dict[str, Layer] | None = None,
    shutter: Shutter | None = None,
    overlays_on: tuple[int, ...] = (),
    device_pixel_ratio: float = 1.0,
    screen_px_per_mm: float | None = None,
) -> ImagePresentation:
    """What to write for one image shown with ``state``.

    ``voi`` is the VOI actually applied (the frame's default when ``state.voi`` is None): a
    state always carries its VOI, since the image's own does not apply under a state.
    """
    window = state.voi if state.voi is not None else voi
    lut = window if isinstance(window, VoiLut) else None
    return ImagePresentation(
        voi_lut=None if lut is None else np.asarray(lut.data),
        voi_lut_first=0 if lut is None else int(lut.first_mapped),
        voi_lut_bits=16 if lut is None else int(lut.bits),
        image=image,
        voi=(window.center, window.width) if isinstance(window, Window) else None,
        voi_function=window.function if isinstance(window, Window) else "LINEAR",
        voi_explanation=(getattr(window, "explanation", "") or "")[:64],
        displayed_area=displayed_area_from_view(
            state,
            geo,
            viewport,
            device_pixel_ratio=device_pixel_ratio,
            screen_px_per_mm=screen_px_per_mm,
        ),  # fmt: skip
        rotation=gsps_rotation(state.rotation, state.flip),
        flip=state.flip,
        invert=bool(state.invert) != bool(inverted_by_file),
        shutter=shutter,
        overlays_on=tuple(overlays_on),
        annotations=tuple(annotations),
        layers=dict(layers or {}),
    )


def area_transform(
    p: ImagePresentation, geo: ImageGeometry, viewport: tuple[float, float],
    *, inverted_by_file: bool = False, screen_px_per_mm: float | None = None,
    no_voi: Window | None = None,
) -> tuple[ViewState, np.ndarray]:  # fmt: skip
    """The view and its image-to-viewport matrix (for the headless render)."""
    view = view_from_presentation(
        p, geo, viewport, inverted_by_file=inverted_by_file, screen_px_per_mm=screen_px_per_mm,
        no_voi=no_voi,
    )  # fmt: skip
    return view, display_transform(view, geo, viewport, 1.0, screen_px_per_mm)


__all__ = [
    "area_transform",
    "gsps_rotation",
    "identity_window",
    "view_rotation",
    "displayed_area_from_view",
    "fit_scale",
    "presentation_from_view",
    "view_from_presentation",
]
