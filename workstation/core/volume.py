"""A display set as a 3-D volume: the voxel-to-patient affine, and the stacked frames.

Voxel index ``(i, j, k)`` is (column, row, slice); slices follow the display set's order
(ascending position along the normal). The affine maps ``[i, j, k, 1]`` to patient LPS millimetres.
The geometry is refused (``ok`` False with a ``reason``, never an exception) when the frames cannot
form a volume; uneven spacing and gantry tilt are accepted and described in ``problems``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from workstation.core.display_sets import DisplaySet, FrameRef
from workstation.core.geometry import ImagePlane, gantry_tilt_deg, spacing_report

_ORIENTATION_TOL = 1e-3
_SPACING_RTOL = 1e-4


@dataclass(frozen=True, eq=False)
class VolumeGeometry:
    """Geometry of a stack of parallel frames, or why there is none.

    Attributes
    ----------
    ok : bool
        Whether the frames form a volume.
    reason : str or None
        Why not, when ``ok`` is False.
    affine : numpy.ndarray or None
        4x4; columns are ``row_dir * col_spacing``, ``col_dir * row_spacing``, the slice step
        vector, and the first slice's origin. The slice step is the mean step between successive
        slice origins: along the normal for a normal stack, oblique to it (a sheared affine)
        under gantry tilt.
    spacing : tuple[float, float, float] or None
        Voxel size along i, j, k in mm: column spacing, row spacing, mean slice spacing measured
        along the normal.
    direction : numpy.ndarray or None
        3x3 whose columns are unit vectors along i, j and k (k is the unit slice step, so not
        orthogonal to the others under tilt).
    shape : tuple[int, int, int] or None
        ``(slices, rows, cols)``, the shape of the assembled array.
    regular : bool
        Whether slice spacing is even (within 1 %, or 0.01 mm).
    sheared : bool
        Whether the slice step is not along the normal (gantry tilt above 0.01 degrees).
    tilt_deg : float
        Gantry tilt, degrees.
    slice_origins : numpy.ndarray or None
        ``(slices, 3)`` the true origin of every slice: exact even where spacing is uneven.
    problems : tuple[str, ...]
        Accepted irregularities (uneven spacing, shear), each one sentence.
    """

    ok: bool
    reason: str | None = None
    affine: np.ndarray | None = None
    spacing: tuple[float, float, float] | None = None
    direction: np.ndarray | None = None
    shape: tuple[int, int, int] | None = None
    regular: bool = False
    sheared: bool = False
    tilt_deg: float = 0.0
    slice_origins: np.ndarray | None = None
    problems: tuple[str, ...] = ()

    def index_to_patient(self, ijk: Sequence[float] | np.ndarray) -> np.ndarray:
        """Patient position of voxel index ``(i, j, k)`` (or an ``(..., 3)`` array) via the affine."""
        if self.affine is None:
            raise ValueError(f"no volume geometry: {self.reason}")
        p = np.asarray(ijk, dtype=np.float64)
        return p @ self.affine[:3, :3].T + self.affine[:3, 3]


def _refuse(reason: str) -> VolumeGeometry:
    return VolumeGeometry(ok=False, reason=reason)


def volume_geometry_from_planes(planes: Sequence[ImagePlane | None]) -> VolumeGeometry:
    """Volume geometry of planes already in slice order (see :class:`VolumeGeometry`).

    Refused when: fewer than 2 planes, a plane is missing, orientation, matrix size or pixel
    spacing varies, two slices share a position, or the order is not monotonic along the normal.
    """
    if len(planes) < 2:
        return _refuse(f"a volume needs at least 2 frames, got {len(planes)}")
    missing = sum(p is None for p in planes)
    if missing:
        return _refuse(f"{missing} of {len(planes)} frames have no position/orientation/spacing")
    first = planes[0]
    assert first is not None
    for p in planes[1:]:
        assert p is not None
        if not p.same_orientation(first, _ORIENTATION_TOL):
            return _refuse("orientation varies between frames")
        if (p.rows, p.cols) != (first.rows, first.cols):
            return _refuse(f"matrix size varies: {first.rows}x{first.cols} and {p.rows}x{p.cols}")
        if not np.allclose(p.spacing_rc, first.spacing_rc, rtol=_SPACING_RTOL):
            return _refuse(f"pixel spacing varies: {first.spacing_rc} and {p.spacing_rc}")
    origins = np.array([p.origin for p in planes])  # type: ignore[union-attr]
    normal = first.normal
    pos = origins @ normal
    steps = np.diff(pos)
    if np.any(np.abs(steps) < 1e-3):
        return _refuse(f"{int(np.sum(np.abs(steps) < 1e-3))} slices share a position with the next")
    if not (np.all(steps > 0) or np.all(steps < 0)):
        return _refuse("slices are not in monotonic order along the normal")
    rep = spacing_report(list(planes))  # type: ignore[arg-type]
    tilt = gantry_tilt_deg(list(planes))  # type: ignore[arg-type]
    n = len(planes)
    step = (origins[-1] - origins[0]) / (n - 1)
    sheared = tilt > 0.01
    problems = []
    if not rep.regular:
        problems.append(
            f"uneven slice spacing {rep.min_spacing:.2f}–{rep.max_spacing:.2f} mm: the affine uses "
            f"the mean step {abs(float(np.mean(steps))):.3f} mm; use slice_origins for exact positions"
        )
    if sheared:
        problems.append(
            f"gantry tilt {tilt:.1f}°: the affine is sheared (slice step not along the normal)"
        )
    sr, sc = first.spacing_rc
    affine = np.eye(4)
    affine[:3, 0] = first.row_dir * sc
    affine[:3, 1] = first.col_dir * sr
    affine[:3, 2] = step
    affine[:3, 3] = first.origin
    direction = np.column_stack([first.row_dir, first.col_dir, step / np.linalg.norm(step)])
    for arr in (affine, direction, origins):
        arr.setflags(write=False)
    return VolumeGeometry(
        ok=True,
        affine=affine,
        spacing=(sc, sr, abs(float(np.mean(steps)))),
        direction=direction,
        shape=(n, first.rows, first.cols),
        regular=rep.regular,
        sheared=sheared,
        tilt_deg=tilt,
        slice_origins=origins,
        problems=tuple(problems),
    )


def volume_geometry(display_set: DisplaySet) -> VolumeGeometry:
    """Volume geometry of a display set's frames, in the display set's order."""
    return volume_geometry_from_planes([f.plane for f in display_set.frames])


def assemble_volume(
    display_set: DisplaySet, frame_loader: Callable[[FrameRef], np.ndarray]
) -> tuple[np.ndarray, VolumeGeometry]:
    """Stack a display set's frames into a ``(slices, rows, cols)`` float32 array.

    Parameters
    ----------
    display_set : DisplaySet
    frame_loader : callable
        ``frame_loader(frame_ref) -> 2-D array`` of modality values (the caller decodes).

    Returns
    -------
    (volume, geometry)

    Raises
    ------
    ValueError
        When the geometry is refused (the message is ``geometry.reason``) or a loaded frame does
        not have the expected ``(rows, cols)`` shape. Check :func:`volume_geometry` first to avoid
        loading pixels for a stack that cannot be a volume.
    """
    geometry = volume_geometry(display_set)
    if not geometry.ok or geometry.shape is None:
        raise ValueError(f"{display_set.label}: not a volume: {geometry.reason}")
    out = np.empty(geometry.shape, dtype=np.float32)
    for k, ref in enumerate(display_set.frames):
        frame = np.asarray(frame_loader(ref))
        if frame.shape != geometry.shape[1:]:
            raise ValueError(
                f"{ref.path} frame {ref.frame_index}: loader returned shape {frame.shape}, "
                f"expected {geometry.shape[1:]}"
            )
        out[k] = frame
    return out, geometry
