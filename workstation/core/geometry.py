"""Image-plane geometry in the DICOM patient coordinate system (LPS), pure numpy.

Conventions
-----------
* Patient coordinates are DICOM LPS: +x towards the patient's Left, +y Posterior, +z Head.
* ``row_dir`` is ImageOrientationPatient[0:3], the direction in which the *column index*
  increases along a row (towards the right edge of the displayed image); ``col_dir`` is
  ImageOrientationPatient[3:6], the direction in which the *row index* increases (towards the
  bottom edge).
* ``spacing_rc`` is PixelSpacing as stored: (distance between rows, distance between columns), so a
  step of one column moves ``spacing_rc[1]`` mm along ``row_dir``.
* Pixel coordinates are ``(col, row)`` with (0, 0) the centre of the top-left pixel, which is where
  ImagePositionPatient lies. The image area spans ``-0.5 .. cols - 0.5`` by ``-0.5 .. rows - 0.5``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from workstation.core.frame_attributes import frame_attribute

#: Obliquity limit of :func:`classify_orientation`: a plane whose normal is within this many
#: degrees of a patient axis is called axial, coronal or sagittal.
OBLIQUE_THRESHOLD_DEG = 30.0


def _vec(values: Any, n: int) -> np.ndarray | None:
    """``values`` as a finite float64 vector of length ``n``, else None."""
    try:
        arr = np.asarray([float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        return None
    return arr


def _readonly(arr: np.ndarray) -> np.ndarray:
    arr = np.array(arr, dtype=np.float64)
    arr.setflags(write=False)
    return arr


#: Normalised direction pairs by their stored cosines: the slices of a series share them, and
#: working them out with numpy took half the time of building a 400-slice display set.
_DIRECTIONS: dict[tuple[float, ...], tuple[np.ndarray, np.ndarray]] = {}
_DIRECTIONS_MAX = 1024


def _unit_directions(row_dir: Any, col_dir: Any) -> tuple[np.ndarray, np.ndarray]:
    """``row_dir`` and ``col_dir`` normalised, as read-only arrays (shared between planes).

    Raises
    ------
    ValueError
        When a direction has zero length or the two are parallel.
    """
    try:
        key = (*(float(v) for v in row_dir), *(float(v) for v in col_dir))
    except (TypeError, ValueError):
        key = None
    hit = _DIRECTIONS.get(key) if key is not None else None
    if hit is not None:
        return hit
    row = np.asarray(row_dir, dtype=np.float64)
    col = np.asarray(col_dir, dtype=np.float64)
    nr, nc = np.linalg.norm(row), np.linalg.norm(col)
    if nr < 1e-6 or nc < 1e-6:
        raise ValueError("ImagePlane: zero-length direction vector")
    if np.linalg.norm(np.cross(row / nr, col / nc)) < 1e-3:
        raise ValueError("ImagePlane: row and column directions are parallel")
    pair = (_readonly(row / nr), _readonly(col / nc))
    if key is not None:
        if len(_DIRECTIONS) >= _DIRECTIONS_MAX:
            _DIRECTIONS.clear()
        _DIRECTIONS[key] = pair
    return pair


@dataclass(frozen=True, eq=False)
class ImagePlane:
    """The plane of one image (or one frame) in patient space.

    Parameters
    ----------
    origin : numpy.ndarray
        Patient position (mm) of the centre of pixel (col 0, row 0): ImagePositionPatient.
    row_dir : numpy.ndarray
        Unit vector in which the column index increases: ImageOrientationPatient[0:3].
    col_dir : numpy.ndarray
        Unit vector in which the row index increases: ImageOrientationPatient[3:6].
    spacing_rc : tuple[float, float]
        PixelSpacing: (between rows, between columns) in mm.
    rows, cols : int
        Matrix size.

    Notes
    -----
    The direction vectors are normalised on construction; arrays are stored read-only. Two
    planes compare by identity; use :meth:`same_orientation` to compare geometry.
    """

    origin: np.ndarray
    row_dir: np.ndarray
    col_dir: np.ndarray
    spacing_rc: tuple[float, float]
    rows: int
    cols: int

    def __post_init__(self) -> None:
        row, col = _unit_directions(self.row_dir, self.col_dir)
        sr, sc = (float(s) for s in self.spacing_rc)
        if not (sr > 0 and sc > 0):
            raise ValueError(f"ImagePlane: pixel spacing must be positive, got {self.spacing_rc}")
        object.__setattr__(self, "origin", _readonly(self.origin))
        object.__setattr__(self, "row_dir", row)
        object.__setattr__(self, "col_dir", col)
        object.__setattr__(self, "spacing_rc", (sr, sc))
        object.__setattr__(self, "rows", int(self.rows))
        object.__setattr__(self, "cols", int(self.cols))

    @cached_property
    def normal(self) -> np.ndarray:
        """Unit normal ``row_dir x col_dir`` (points away from a viewer looking at the image)."""
        n = np.cross(self.row_dir, self.col_dir)
        return _readonly(n / np.linalg.norm(n))

    @property
    def position_along_normal(self) -> float:
        """``dot(origin, normal)``: the signed position of the plane along its normal, mm."""
        return float(np.dot(self.origin, self.normal))

    def _axes(self) -> np.ndarray:
        """3x3 matrix whose columns map (col, row, distance) to an offset from the origin."""
        sr, sc = self.spacing_rc
        return np.column_stack([self.row_dir * sc, self.col_dir * sr, self.normal])

    @cached_property
    def _from_patient(self) -> np.ndarray:
        """Inverse of :meth:`_axes` (asked for at every paint: worked out once per plane)."""
        return _readonly(np.linalg.inv(self._axes()))

    def pixel_to_patient(self, col: Any, row: Any) -> np.ndarray:
        """Patient position (mm) of pixel coordinates; broadcasts, result shape ``(..., 3)``.

        Parameters
        ----------
        col, row : float or array_like
            Pixel coordinates, (0, 0) being the centre of the top-left pixel.
        """
        c = np.asarray(col, dtype=np.float64)[..., None]
        r = np.asarray(row, dtype=np.float64)[..., None]
        sr, sc = self.spacing_rc
        return self.origin + c * sc * self.row_dir + r * sr * self.col_dir

    def patient_to_pixel(self, xyz: Any) -> tuple[Any, Any, Any]:
        """Pixel coordinates of patient points and their signed distance from the plane.

        Parameters
        ----------
        xyz : array_like, shape (3,) or (..., 3)

        Returns
        -------
        col, row, distance : float or numpy.ndarray
            The point projected along the normal onto the plane, in pixel units, and its signed
            distance (mm) along :attr:`normal`. Exact for non-orthogonal orientations too.
        """
        p = np.asarray(xyz, dtype=np.float64)
        sol = ((p - self.origin).reshape(-1, 3)) @ self._from_patient.T
        sol = sol.reshape(p.shape)
        if p.ndim == 1:
            return float(sol[0]), float(sol[1]), float(sol[2])
        return sol[..., 0], sol[..., 1], sol[..., 2]

    def corners(self) -> np.ndarray:
        """Patient positions of the four outer corners of the image area, shape (4, 3).

        Order: top-left, top-right, bottom-right, bottom-left (pixel edges, not centres).
        """
        c = np.array([-0.5, self.cols - 0.5, self.cols - 0.5, -0.5])
        r = np.array([-0.5, -0.5, self.rows - 0.5, self.rows - 0.5])
        return self.pixel_to_patient(c, r)

    def same_orientation(self, other: ImagePlane, tol: float = 1e-3) -> bool:
        """Whether both direction vectors agree within ``tol`` (per component)."""
        return bool(
            np.allclose(self.row_dir, other.row_dir, atol=tol)
            and np.allclose(self.col_dir, other.col_dir, atol=tol)
        )

    def intersection_with(
        self, other: ImagePlane, clip_to_other: bool = False
    ) -> tuple[tuple[float, float], tuple[float, float]] | None:
        """Segment where ``other``'s plane crosses this image, in this image's pixel coordinates.

        This is the reference line of ``other`` drawn on this image. The infinite line is clipped
        to this image's area (and, with ``clip_to_other``, to the part that lies within the
        extent of ``other``'s image too).

        Returns
        -------
        ((c0, r0), (c1, r1)) or None
            None when the planes are parallel (within ~0.06 degrees) or the line misses the image.
        """
        n2 = other.normal
        sr, sc = self.spacing_rc
        # signed distance to other's plane at (c, r) is a*c + b*r + e
        a = float(np.dot(n2, self.row_dir) * sc)
        b = float(np.dot(n2, self.col_dir) * sr)
        e = float(np.dot(n2, self.origin - other.origin))
        if np.hypot(np.dot(n2, self.row_dir), np.dot(n2, self.col_dir)) < 1e-3:
            return None
        k = a * a + b * b
        p0 = np.array([-e * a / k, -e * b / k])
        d = np.array([-b, a]) / np.sqrt(k)
        lo, hi = -np.inf, np.inf
        bounds = ((-0.5, self.cols - 0.5), (-0.5, self.rows - 0.5))
        for axis in (0, 1):
            lo, hi = _clip_param(p0[axis], d[axis], *bounds[axis], lo, hi)
        if clip_to_other and lo < hi:
            pts = self.pixel_to_patient(
                p0[0] + d[0] * np.array([0.0, 1.0]), p0[1] + d[1] * np.array([0.0, 1.0])
            )
            oc, orow, _ = other.patient_to_pixel(pts)
            obounds = ((-0.5, other.cols - 0.5), (-0.5, other.rows - 0.5))
            for vals, (bmin, bmax) in zip((oc, orow), obounds, strict=True):
                lo, hi = _clip_param(vals[0], vals[1] - vals[0], bmin, bmax, lo, hi)
        if not np.isfinite(lo) or not np.isfinite(hi) or hi - lo < 1e-9:
            return None
        s, t = p0 + lo * d, p0 + hi * d
        return (float(s[0]), float(s[1])), (float(t[0]), float(t[1]))


def _clip_param(
    p: float, d: float, vmin: float, vmax: float, lo: float, hi: float
) -> tuple[float, float]:
    """Liang-Barsky step: restrict ``t`` so that ``vmin <= p + t*d <= vmax``."""
    if abs(d) < 1e-12:
        return (lo, hi) if vmin <= p <= vmax else (np.inf, -np.inf)
    t0, t1 = (vmin - p) / d, (vmax - p) / d
    if t0 > t1:
        t0, t1 = t1, t0
    return max(lo, t0), min(hi, t1)


def plane_from_dataset(ds: Dataset, frame_index: int | None = None) -> ImagePlane | None:
    """The :class:`ImagePlane` of an image or of one frame of an enhanced multi-frame object.

    Enhanced objects are read from Plane Position / Plane Orientation / Pixel Measures in the
    per-frame then shared functional groups, with the top level as a fallback. RT Dose frames are
    offset along the normal by GridFrameOffsetVector. Other classic multi-frame objects give the
    top-level plane for every frame.

    Returns
    -------
    ImagePlane or None
        None (never an exception) when position, orientation, pixel spacing or matrix size is
        absent or invalid.
    """
    try:
        ipp = _vec(
            frame_attribute(ds, frame_index, "PlanePositionSequence", "ImagePositionPatient") or (),
            3,
        )
        iop = _vec(
            frame_attribute(ds, frame_index, "PlaneOrientationSequence", "ImageOrientationPatient")
            or (),
            6,
        )
        ps = _vec(
            frame_attribute(ds, frame_index, "PixelMeasuresSequence", "PixelSpacing") or (), 2
        )
        rows, cols = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
    except (TypeError, ValueError, AttributeError):
        return None
    if ipp is None or iop is None or ps is None or rows <= 0 or cols <= 0:
        return None
    try:
        plane = ImagePlane(ipp, iop[:3], iop[3:], (ps[0], ps[1]), rows, cols)
    except ValueError:
        return None
    offsets = ds.get("GridFrameOffsetVector")
    if frame_index and offsets is not None and "PerFrameFunctionalGroupsSequence" not in ds:
        try:
            off = float(list(offsets)[frame_index]) - float(list(offsets)[0])
        except (IndexError, TypeError, ValueError):
            return None
        plane = ImagePlane(ipp + off * plane.normal, iop[:3], iop[3:], (ps[0], ps[1]), rows, cols)
    return plane


_LETTERS = (("R", "L"), ("A", "P"), ("F", "H"))  # (negative, positive) per LPS axis


def _direction_letters(v: np.ndarray, min_component: float) -> str:
    order = np.argsort(-np.abs(v), kind="stable")
    return "".join(_LETTERS[i][int(v[i] > 0)] for i in order if abs(v[i]) > min_component)


_PATIENT_AXES = {"L": (0, 1.0), "R": (0, -1.0), "P": (1, 1.0), "A": (1, -1.0),
                 "H": (2, 1.0), "F": (2, -1.0)}  # fmt: skip


def patient_orientation_axes(value: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """Row and column directions (patient LPS, unit vectors) from Patient Orientation (0020,0020).

    For projection images (CR, DX, MG, XA...) that have no Image Orientation (Patient): the first
    value is the direction of the rows (increasing column), the second of the columns. A value
    of several letters is oblique with the first letter dominant (``FR``: mostly foot, some
    right), so the letters get decreasing weights. None when absent or not two values of the
    letters A, P, R, L, H, F.
    """
    if value is None or isinstance(value, str | bytes):
        return None
    try:
        parts = [str(x).strip().upper() for x in value]
    except TypeError:
        return None
    if len(parts) != 2:
        return None
    out = []
    for text in parts:
        if not text or any(ch not in _PATIENT_AXES for ch in text):
            return None
        vec = np.zeros(3)
        for k, ch in enumerate(text[:3]):
            axis, sign = _PATIENT_AXES[ch]
            vec[axis] += sign * 0.5**k
        norm = np.linalg.norm(vec)
        if norm == 0:
            return None
        out.append(vec / norm)
    return out[0], out[1]


def orientation_labels(row_dir: Any, col_dir: Any, min_component: float = 1e-4) -> dict[str, str]:
    """Patient-direction letters for the four edges of an image.

    Each edge is labelled with the direction it points towards: the right edge with ``row_dir``,
    the bottom edge with ``col_dir``. Oblique directions get up to three letters, the largest
    component first (D. Clunie's convention, as DCMTK and OsiriX use), dropping components not
    above ``min_component``.

    Returns
    -------
    dict
        Keys ``left``, ``right``, ``top``, ``bottom``; e.g. axial ``R``, ``L``, ``A``, ``P``.
    """
    r = np.asarray(row_dir, dtype=np.float64)
    c = np.asarray(col_dir, dtype=np.float64)
    return {
        "left": _direction_letters(-r, min_component),
        "right": _direction_letters(r, min_component),
        "top": _direction_letters(-c, min_component),
        "bottom": _direction_letters(c, min_component),
    }


def classify_orientation(
    row_dir: Any, col_dir: Any, oblique_threshold_deg: float = OBLIQUE_THRESHOLD_DEG
) -> str:
    """``'axial'``, ``'coronal'``, ``'sagittal'`` or ``'oblique'``, from the plane normal.

    The dominant component of the normal names the plane (z axial, y coronal, x sagittal) when
    the normal lies within ``oblique_threshold_deg`` (default 30 degrees) of that axis; otherwise
    the plane is ``'oblique'``. An 18.5 degree gantry tilt is therefore still axial.
    """
    n = np.cross(np.asarray(row_dir, dtype=np.float64), np.asarray(col_dir, dtype=np.float64))
    norm = np.linalg.norm(n)
    if norm < 1e-6:
        return "oblique"
    n = np.abs(n / norm)
    axis = int(np.argmax(n))
    if n[axis] < np.cos(np.radians(oblique_threshold_deg)):
        return "oblique"
    return ("sagittal", "coronal", "axial")[axis]


def _sorted(planes: Sequence[ImagePlane]) -> list[ImagePlane]:
    normal = planes[0].normal
    return sorted(planes, key=lambda p: float(np.dot(p.origin, normal)))


def gantry_tilt_deg(planes: Sequence[ImagePlane]) -> float:
    """Angle (degrees, 0..90) between the slice normal and the line joining slice origins.

    The planes are sorted along the normal of the first; the median angle over successive steps
    longer than 1 micrometre is returned (0.0 for fewer than two distinct origins). A stack whose
    origins move straight along the normal gives 0.
    """
    if len(planes) < 2:
        return 0.0
    ordered = _sorted(planes)
    normal = ordered[0].normal
    angles = []
    for a, b in zip(ordered[:-1], ordered[1:], strict=True):
        step = b.origin - a.origin
        length = np.linalg.norm(step)
        if length > 1e-3:
            cosang = min(1.0, abs(float(np.dot(step, normal))) / length)
            angles.append(np.degrees(np.arccos(cosang)))
    return float(np.median(angles)) if angles else 0.0


@dataclass(frozen=True)
class SpacingReport:
    """Slice positions and spacing of a stack, sorted along the normal of its first plane.

    Attributes
    ----------
    positions : tuple[float, ...]
        Ascending positions along the normal, mm.
    spacings : tuple[float, ...]
        Differences between successive positions (slice spacing along the normal), mm.
    origin_steps : tuple[float, ...]
        Distances between successive slice origins, mm (larger than ``spacings`` under tilt).
    regular : bool
        Whether all spacings agree within ``max(0.01 mm, 1 % of the mean)``.
    min_spacing, max_spacing : float or None
        None for fewer than two planes.
    """

    positions: tuple[float, ...]
    spacings: tuple[float, ...]
    origin_steps: tuple[float, ...]
    regular: bool
    min_spacing: float | None
    max_spacing: float | None


def spacing_report(planes: Sequence[ImagePlane]) -> SpacingReport:
    """Sorted positions along the normal, the spacings between them and whether they are regular."""
    if not planes:
        return SpacingReport((), (), (), True, None, None)
    ordered = _sorted(planes)
    normal = ordered[0].normal
    pos = np.array([float(np.dot(p.origin, normal)) for p in ordered])
    sp = np.diff(pos)
    steps = np.array(
        [
            np.linalg.norm(b.origin - a.origin)
            for a, b in zip(ordered[:-1], ordered[1:], strict=True)
        ]
    )
    if sp.size == 0:
        return SpacingReport(tuple(pos.tolist()), (), (), True, None, None)
    tol = max(0.01, 0.01 * float(np.mean(np.abs(sp))))
    regular = bool(float(sp.max() - sp.min()) <= tol)
    return SpacingReport(
        tuple(pos.tolist()),
        tuple(sp.tolist()),
        tuple(steps.tolist()),
        regular,
        float(sp.min()),
        float(sp.max()),
    )
