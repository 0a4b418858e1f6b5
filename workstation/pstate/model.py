"""What a presentation state says, as plain frozen values: no pydicom, no Qt.

A :class:`PresentationState` holds, per referenced image (and frame), an
:class:`ImagePresentation`: the window, displayed area, rotation/flip, invert, shutter, overlay
activation and the annotations in their layers. The GSPS reader builds one from any Grayscale
Softcopy Presentation State; the writer turns one back into DICOM; :mod:`workstation.pstate.apply`
maps one to and from a viewport's :class:`~workstation.core.view_state.ViewState`.

Coordinates are image coordinates ``(col, row)`` with pixel centres at integers, as everywhere in
the viewer; DICOM's 1-based values are converted at the reader and writer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from workstation.core.annotations import Annotation, ImageRef, Layer, Point
from workstation.core.measurements import points_in_polygon

SHUTTER_SHAPES = ("RECTANGULAR", "CIRCULAR", "POLYGONAL", "BITMAP")
SIZE_MODES = ("SCALE TO FIT", "TRUE SIZE", "MAGNIFY")


@dataclass(frozen=True, eq=False)
class Shutter:
    """A display shutter: what lies outside it is painted in the shutter value.

    Attributes
    ----------
    shapes : tuple of str
        Any of ``RECTANGULAR``, ``CIRCULAR``, ``POLYGONAL``, ``BITMAP``. With several, only what
        every shape lets through is shown.
    rect : (left col, right col, upper row, lower row) or None
        DICOM's 1-based, inclusive edge values (Shutter Left/Right Vertical Edge, Upper/Lower
        Horizontal Edge).
    centre : (col, row) or None
        Centre of the circular shutter in image coordinates.
    radius : float or None
        Radius of the circular shutter in pixels.
    polygon : tuple of (col, row) or None
        Vertices of the polygonal shutter in image coordinates.
    bitmap : numpy.ndarray or None
        Boolean ``(rows, cols)``, True where the bitmap (overlay) shutter HIDES the image.
    grey : float
        Shutter Presentation Value as a fraction of full scale (0 black .. 1 white).
    colour : (r, g, b) or None
        Shutter Presentation Color (8-bit sRGB), if given.
    bitmap_group : int or None
        Overlay group (0x6000..0x601E) the bitmap shutter came from.
    """

    shapes: tuple[str, ...]
    rect: tuple[int, int, int, int] | None = None
    centre: tuple[float, float] | None = None
    radius: float | None = None
    polygon: tuple[Point, ...] | None = None
    bitmap: np.ndarray | None = field(default=None, repr=False)
    grey: float = 0.0
    colour: tuple[int, int, int] | None = None
    bitmap_group: int | None = None

    def __post_init__(self) -> None:
        for s in self.shapes:
            if s not in SHUTTER_SHAPES:
                raise ValueError(
                    f"unknown shutter shape {s!r} (known: {', '.join(SHUTTER_SHAPES)})"
                )
        need = {
            "RECTANGULAR": self.rect,
            "CIRCULAR": self.centre if self.radius is not None else None,
            "POLYGONAL": self.polygon,
            "BITMAP": self.bitmap,
        }
        for s in self.shapes:
            if need[s] is None:
                raise ValueError(f"{s} shutter without its geometry")
        if self.polygon is not None and len(self.polygon) < 3:
            raise ValueError(f"polygonal shutter needs 3 or more vertices, got {len(self.polygon)}")
        if not (0.0 <= self.grey <= 1.0):
            raise ValueError(f"shutter grey must be within 0..1, got {self.grey}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Shutter):
            return NotImplemented
        same_bitmap = (self.bitmap is None and other.bitmap is None) or (
            self.bitmap is not None
            and other.bitmap is not None
            and np.array_equal(self.bitmap, other.bitmap)
        )
        return (
            self.shapes == other.shapes
            and self.rect == other.rect
            and self.centre == other.centre
            and self.radius == other.radius
            and self.polygon == other.polygon
            and same_bitmap
            and math.isclose(self.grey, other.grey, abs_tol=1e-6)
            and self.colour == other.colour
        )

    __hash__ = None  # type: ignore[assignment]

    def mask(self, rows: int, cols: int) -> np.ndarray:
        """Boolean ``(rows, cols)``: True where the image is SHOWN (pixel centre inside every
        shape)."""
        shown = np.ones((rows, cols), dtype=bool)
        rr, cc = np.mgrid[0:rows, 0:cols]
        if "RECTANGULAR" in self.shapes and self.rect is not None:
            left, right, upper, lower = self.rect
            shown &= (cc + 1 >= left) & (cc + 1 <= right) & (rr + 1 >= upper) & (rr + 1 <= lower)
        if "CIRCULAR" in self.shapes and self.centre is not None and self.radius is not None:
            c0, r0 = self.centre
            shown &= (cc - c0) ** 2 + (rr - r0) ** 2 <= self.radius**2 + 1e-9
        if "POLYGONAL" in self.shapes and self.polygon is not None:
            shown &= points_in_polygon(cc.astype(float), rr.astype(float), self.polygon)
        if "BITMAP" in self.shapes and self.bitmap is not None:
            bm = np.asarray(self.bitmap, dtype=bool)
            hide = np.zeros((rows, cols), dtype=bool)
            h, w = min(rows, bm.shape[0]), min(cols, bm.shape[1])
            hide[:h, :w] = bm[:h, :w]
            shown &= ~hide
        return shown


@dataclass(frozen=True)
class DisplayedArea:
    """The Displayed Area Selection of one image.

    Attributes
    ----------
    tlhc, brhc : (col, row)
        Image coordinates of the centres of the top-left and bottom-right pixels of the area,
        i.e. DICOM's 1-based Displayed Area Top Left / Bottom Right Hand Corner minus 1. The area
        covers ``[tlhc - 0.5, brhc + 0.5]`` and may extend beyond the image. Both are in the
        image's own pixel grid (before the spatial transformation).
    size_mode : str
        ``SCALE TO FIT``, ``TRUE SIZE`` or ``MAGNIFY``.
    magnification : float or None
        Presentation Pixel Magnification Ratio (MAGNIFY only): screen pixels per image pixel.
    pixel_spacing : (row mm, col mm) or None
        Presentation Pixel Spacing (needed for TRUE SIZE).
    pixel_aspect : (vertical, horizontal) or None
        Presentation Pixel Aspect Ratio, when no spacing is given.
    """

    tlhc: tuple[float, float]
    brhc: tuple[float, float]
    size_mode: str = "SCALE TO FIT"
    magnification: float | None = None
    pixel_spacing: tuple[float, float] | None = None
    pixel_aspect: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.size_mode not in SIZE_MODES:
            raise ValueError(
                f"unknown Presentation Size Mode {self.size_mode!r} (known: {', '.join(SIZE_MODES)})"
            )
        if self.size_mode == "MAGNIFY" and not (self.magnification and self.magnification > 0):
            raise ValueError("MAGNIFY displayed area needs a positive magnification ratio")

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, top, right, bottom)`` edges in image coordinates (sorted)."""
        (c0, r0), (c1, r1) = self.tlhc, self.brhc
        return (
            min(c0, c1) - 0.5,
            min(r0, r1) - 0.5,
            max(c0, c1) + 0.5,
            max(r0, r1) + 0.5,
        )

    @property
    def centre(self) -> tuple[float, float]:
        """Centre of the area in image coordinates."""
        (c0, r0), (c1, r1) = self.tlhc, self.brhc
        return (c0 + c1) / 2, (r0 + r1) / 2

    @property
    def size(self) -> tuple[float, float]:
        """(width, height) of the area in image pixels."""
        left, top, right, bottom = self.bounds
        return right - left, bottom - top


@dataclass(frozen=True)
class ImagePresentation:
    """What one presentation state says about one image (frame).

    Attributes
    ----------
    image : ImageRef
    voi : (centre, width) or None
        Softcopy VOI window in modality units. With neither ``voi`` nor ``voi_lut`` the state
        has no VOI transformation for the image: identity (the image's own windows do NOT
        apply; PS3.4 N.2), see :func:`workstation.pstate.apply.identity_window`.
    voi_function : str
        VOI LUT Function (``LINEAR``, ``LINEAR_EXACT``, ``SIGMOID``).
    displayed_area : DisplayedArea or None
    rotation : int
        Image Rotation: clockwise, 0/90/180/270, applied BEFORE ``flip`` (PS3.3 C.10.6; the
        viewer's :class:`~workstation.core.view_state.ViewState` flips first, see
        :mod:`workstation.pstate.apply` for the conversion).
    flip : bool
        Image Horizontal Flip, applied after the rotation.
    invert : bool
        Presentation LUT Shape INVERSE (or an explicit presentation LUT that decreases).
    shutter : Shutter or None
    overlays_on : tuple of int
        Overlay groups (0x6000...) activated by the state.
    annotations : tuple of Annotation
    layers : dict of str to Layer
    voi_lut : numpy.ndarray or None
        An explicit VOI LUT (modality value - ``voi_lut_first`` -> index) when the state has one.
    voi_lut_first : int
        First value mapped by ``voi_lut``.
    voi_lut_bits : int
        Bits per entry of ``voi_lut`` (its output range is ``0 .. 2**bits - 1``).
    presentation_lut : numpy.ndarray or None
        An explicit Presentation LUT (P-values), when the state has one instead of a shape.
    presentation_lut_bits : int
        Bits per entry of ``presentation_lut``.
    voi_explanation : str
        Window Center & Width Explanation or the LUT explanation.
    """

    image: ImageRef
    voi: tuple[float, float] | None = None
    voi_function: str = "LINEAR"
    displayed_area: DisplayedArea | None = None
    rotation: int = 0
    flip: bool = False
    invert: bool = False
    shutter: Shutter | None = None
    overlays_on: tuple[int, ...] = ()
    annotations: tuple[Annotation, ...] = ()
    layers: dict[str, Layer] = field(default_factory=dict, hash=False)
    voi_lut: np.ndarray | None = field(default=None, repr=False, compare=False, hash=False)
    voi_lut_first: int = 0
    voi_lut_bits: int = 16
    presentation_lut: np.ndarray | None = field(default=None, repr=False, compare=False, hash=False)
    presentation_lut_bits: int = 12
    voi_explanation: str = ""

    def __post_init__(self) -> None:
        if self.rotation not in (0, 90, 180, 270):
            raise ValueError(f"rotation must be 0, 90, 180 or 270, got {self.rotation}")


@dataclass(frozen=True)
class PresentationState:
    """One presentation state (a GSPS instance) as the viewer uses it.

    ``images`` is keyed by ``(SOP Instance UID, frame number)``; the frame number is None for a
    single-frame image or for a reference to every frame of a multi-frame image.
    """

    sop_instance_uid: str
    series_uid: str
    study_uid: str
    label: str
    description: str = ""
    creator: str = ""
    created: datetime | None = None
    images: dict[tuple[str, int | None], ImagePresentation] = field(
        default_factory=dict, hash=False
    )
    #: problems met while reading (skipped graphics, unsupported items), for the user
    warnings: tuple[str, ...] = ()
    instance_number: int = 1
    series_instance_number: int = 1

    def for_image(self, sop_uid: str, frame_number: int | None) -> ImagePresentation | None:
        """The presentation of one image (frame): the exact frame entry, else the entry for the
        whole image (frame None), else None when the state does not reference it."""
        hit = self.images.get((sop_uid, frame_number))
        if hit is None and frame_number is not None:
            hit = self.images.get((sop_uid, None))
        if hit is None and frame_number is None:
            # a single-frame request matches a state that names frame 1
            hit = self.images.get((sop_uid, 1))
        return hit

    @property
    def referenced_sop_uids(self) -> tuple[str, ...]:
        """The SOP Instance UIDs the state applies to, in order, without repeats."""
        return tuple(dict.fromkeys(uid for uid, _ in self.images))

    @property
    def all_annotations(self) -> tuple[Annotation, ...]:
        """Every annotation over every image."""
        return tuple(a for p in self.images.values() for a in p.annotations)


__all__ = [
    "SHUTTER_SHAPES",
    "SIZE_MODES",
    "DisplayedArea",
    "ImagePresentation",
    "ImageRef",
    "Layer",
    "PresentationState",
    "Shutter",
]
