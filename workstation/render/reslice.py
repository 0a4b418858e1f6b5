"""Reformatting a :class:`~workstation.render.volume_image.VolumeImage`: planes, slabs, MPR planes.

A :class:`ReslicePlane` is an output image placed in patient space (LPS, mm): its centre, the
patient directions of increasing column and row, the pixel size and the matrix. The
:class:`Reslicer` samples the volume on it with ``vtkImageReslice`` (thin plane) or over a slab
along the plane's normal, combined by maximum (MIP), minimum (MinIP) or mean.

A slab whose pixels fall on voxel centres (the axial slab of an axial acquisition) is a plain
max / min / mean of the voxel planes within it, made in numpy (:mod:`workstation.render.grid_slab`:
20 mm MIP of 512x512x400 ~1.4 ms against ~9 ms for vtkImageReslice). A slab that vtkImageReslice
maps by a permutation of the axes (the coronal and sagittal slabs of an axial stack) is sampled by
vtkImageReslice's fast path; any other linear slab (oblique, double-oblique, turned in plane) by
the compiled kernel of :mod:`workstation.render.slab_kernel`, which samples where its rays cross
the voxel planes (20 mm double-oblique MIP of 512x512x400: ~30 ms against ~65 ms). Thin planes,
nearest and cubic interpolation and a chosen sample spacing are vtkImageReslice's.

Pixel ``(col, row)`` of the output lies at
``centre + (col - (cols - 1) / 2) * pixel_mm * x_axis + (row - (rows - 1) / 2) * pixel_mm * y_axis``
and row 0 of the returned array is the top row of the image on screen.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from vtkmodules.util import numpy_support
from vtkmodules.util.vtkConstants import VTK_FLOAT
from vtkmodules.vtkCommonDataModel import vtkImageData
from vtkmodules.vtkImagingCore import vtkImageReslice

from workstation.render import slab_kernel
from workstation.render.grid_slab import GridSlab, bilinear, linear_axis
from workstation.render.volume_image import VolumeImage, _matrix, _vtk_index_image

MODES = ("mip", "minip", "mean")
INTERPOLATIONS = ("nearest", "linear", "cubic")
MAX_SLAB_MM = 100.0
_ORTHO_TOL = 1e-4
_GRID_TOL = 1e-6  # off-axis index steps below this share of the main one: on the grid


@dataclass(frozen=True)
class ReslicePlane:
    """An output image in patient space.

    Parameters
    ----------
    centre : tuple[float, float, float]
        Patient point at the centre of the output image.
    x_axis : tuple[float, float, float]
        Unit vector: direction of increasing output column (screen right).
    y_axis : tuple[float, float, float]
        Unit vector: direction of increasing output row (screen down); orthogonal to ``x_axis``.
    pixel_mm : float
        Output pixel size, mm.
    size : tuple[int, int]
        ``(cols, rows)``.
    """

    centre: tuple[float, float, float]
    x_axis: tuple[float, float, float]
    y_axis: tuple[float, float, float]
    pixel_mm: float
    size: tuple[int, int]

    def __post_init__(self) -> None:
        x = np.asarray(self.x_axis, np.float64)
        y = np.asarray(self.y_axis, np.float64)
        nx, ny = np.linalg.norm(x), np.linalg.norm(y)
        if nx < 1e-9 or ny < 1e-9:
            raise ValueError("ReslicePlane: zero-length axis")
        x, y = x / nx, y / ny
        if abs(float(np.dot(x, y))) > _ORTHO_TOL:
            raise ValueError(f"ReslicePlane: axes are not orthogonal (dot {np.dot(x, y):.2e})")
        if not (self.pixel_mm > 0 and math.isfinite(self.pixel_mm)):
            raise ValueError(f"ReslicePlane: pixel size must be positive, got {self.pixel_mm}")
        cols, rows = (int(n) for n in self.size)
        if cols < 1 or rows < 1:
            raise ValueError(f"ReslicePlane: empty size {self.size}")
        object.__setattr__(self, "centre", tuple(float(v) for v in self.centre))
        object.__setattr__(self, "x_axis", tuple(float(v) for v in x))
        object.__setattr__(self, "y_axis", tuple(float(v) for v in y))
        object.__setattr__(self, "pixel_mm", float(self.pixel_mm))
        object.__setattr__(self, "size", (cols, rows))

    @property
    def normal(self) -> np.ndarray:
        """``x_axis x y_axis`` (points away from the viewer)."""
        return np.cross(self.x_axis, self.y_axis)

    def _frame(self) -> np.ndarray:
        """4x4 mapping plane coordinates (x mm, y mm, z mm along the normal, 1) to patient."""
        m = np.eye(4)
        m[:3, 0], m[:3, 1], m[:3, 2] = self.x_axis, self.y_axis, self.normal
        m[:3, 3] = self.centre
        return m

    def pixel_to_patient(self, col: float, row: float) -> np.ndarray:
        """Patient position of pixel ``(col, row)``; pixel centres are at integers."""
        cols, rows = self.size
        x = (col - (cols - 1) / 2) * self.pixel_mm
        y = (row - (rows - 1) / 2) * self.pixel_mm
        return np.asarray(self.centre) + x * np.asarray(self.x_axis) + y * np.asarray(self.y_axis)

    def patient_to_pixel(self, xyz: Sequence[float] | np.ndarray) -> tuple[float, float, float]:
        """``(col, row, distance along the normal in mm)`` of a patient point."""
        d = np.asarray(xyz, np.float64) - np.asarray(self.centre)
        cols, rows = self.size
        col = float(np.dot(d, self.x_axis)) / self.pixel_mm + (cols - 1) / 2
        row = float(np.dot(d, self.y_axis)) / self.pixel_mm + (rows - 1) / 2
        return col, row, float(np.dot(d, self.normal))

    def moved_to(self, point: Sequence[float]) -> ReslicePlane:
        """The same plane shifted along its normal so that it passes through ``point``."""
        n = self.normal
        shift = float(np.dot(np.asarray(point, np.float64) - self.centre, n))
        return ReslicePlane(
            tuple(np.asarray(self.centre) + shift * n), self.x_axis, self.y_axis,
            self.pixel_mm, self.size,
        )  # fmt: skip

    def rotated(self, axis: Sequence[float], degrees: float) -> ReslicePlane:
        """The plane rotated by ``degrees`` about a patient-space ``axis`` through its centre."""
        r = rotation_matrix(axis, degrees)
        return ReslicePlane(
            self.centre, tuple(r @ self.x_axis), tuple(r @ self.y_axis), self.pixel_mm, self.size
        )


def rotation_matrix(axis: Sequence[float], degrees: float) -> np.ndarray:
    """3x3 right-handed rotation by ``degrees`` about ``axis`` (Rodrigues)."""
    a = np.asarray(axis, np.float64)
    a = a / np.linalg.norm(a)
    t = math.radians(degrees)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + math.sin(t) * k + (1 - math.cos(t)) * (k @ k)


class Reslicer:
    """Samples one :class:`VolumeImage` on planes and slabs.

    Parameters
    ----------
    volume : VolumeImage
        The volume; its voxels are shared, not copied.

    Notes
    -----
    Each thread gets its own ``vtkImageReslice`` over its own shallow copy of the input, so
    :meth:`reslice` may be called from worker threads at the same time.
    """

    def __init__(self, volume: VolumeImage) -> None:
        self.volume = volume
        self._index_from_patient = np.linalg.inv(volume.patient_from_index)
        self._input = _vtk_index_image(volume.values)
        self._local = threading.local()

    def voxel_step_mm(self, direction: Sequence[float]) -> float:
        """The distance along ``direction`` that moves at most one voxel along every axis."""
        d = np.asarray(direction, np.float64)
        d = np.abs(np.linalg.solve(self.volume.patient_from_index[:3, :3], d / np.linalg.norm(d)))
        return float(1.0 / max(float(d.max()), 1e-9))

    def slab_sampling(
        self, slab_mm: float, spacing_mm: float | None = None, normal: Sequence[float] | None = None
    ) -> tuple[int, float]:
        """``(samples, spacing_mm)`` used for a slab of ``slab_mm``.

        Samples are spaced at most ``spacing_mm`` apart (default: one voxel step along the slab
        ``normal``, see :meth:`voxel_step_mm`; the smallest voxel size without a normal), the
        first and last exactly at the two faces of the slab.
        """
        if spacing_mm and spacing_mm > 0:
            step = spacing_mm
        elif normal is not None:
            step = self.voxel_step_mm(normal)
        else:
            step = min(self.volume.spacing_mm)
        n = max(2, math.ceil(slab_mm / step - 1e-6) + 1)
        return n, slab_mm / (n - 1)

    def grid_slab(self, plane: ReslicePlane, slab_mm: float) -> GridSlab | None:
        """How a slab on ``plane`` lines up with the voxel grid, or None when it does not.

        It does when the plane normal runs along one volume axis and the image axes along the
        other two, and at least two voxel planes lie within the slab; the slab is then the voxel
        planes whose centres lie within ``slab_mm / 2`` of the plane (clipped to the volume).
        """
        if slab_mm <= 0:
            return None
        frame = self._index_from_patient[:3, :3] @ np.column_stack(
            (plane.x_axis, plane.y_axis, plane.normal)
        )  # index steps (rows i, j, k) per mm along the plane's x, y and normal
        axes = _grid_axes(frame)
        if axes is None:
            return None
        ax_x, ax_y, ax_n = axes
        centre = self._index_from_patient @ np.array([*plane.centre, 1.0])
        per_mm = float(frame[ax_n, 2])
        half = 0.5 * slab_mm * abs(per_mm)
        kc = float(centre[ax_n])
        first, last = math.ceil(kc - half - 1e-6), math.floor(kc + half + 1e-6)
        if last - first < 1:
            return None  # thinner than the voxel spacing: sampled instead
        depth = self.volume.values.shape[2 - ax_n]
        first, last = max(first, 0), min(last, depth - 1)
        cols, rows = plane.size
        px = plane.pixel_mm
        col_step, row_step = float(frame[ax_x, 0]) * px, float(frame[ax_y, 1]) * px
        return GridSlab(
            normal_axis=2 - ax_n,
            first=first,
            last=last,
            col_axis=2 - ax_x,
            col0=float(centre[ax_x]) - (cols - 1) / 2 * col_step,
            col_step=col_step,
            row_axis=2 - ax_y,
            row0=float(centre[ax_y]) - (rows - 1) / 2 * row_step,
            row_step=row_step,
        )

    def _filter(self) -> vtkImageReslice:
        reslice = getattr(self._local, "reslice", None)
        if reslice is None:
            own = vtkImageData()
            own.ShallowCopy(self._input)
            reslice = vtkImageReslice()
            reslice.SetInputData(own)
            reslice.SetOutputScalarType(VTK_FLOAT)
            reslice.SetBackgroundLevel(float("nan"))
            reslice.SetSplitModeToBeam()
            self._local.reslice = reslice
            self._local.input = own
        return reslice

    def reslice(
        self,
        plane: ReslicePlane,
        *,
        slab_mm: float = 0.0,
        mode: str = "mip",
        interpolation: str = "linear",
        slab_spacing_mm: float | None = None,
        preview: bool = False,
    ) -> np.ndarray:
        """Sample the volume on ``plane``; over a slab centred on it when ``slab_mm`` > 0.

        Parameters
        ----------
        plane : ReslicePlane
        slab_mm : float
            Slab thickness along the plane normal, 0 to 100 mm (0: a thin plane).
        mode : str
            ``'mip'``, ``'minip'`` or ``'mean'`` (used when ``slab_mm`` > 0).
        interpolation : str
            ``'nearest'``, ``'linear'`` or ``'cubic'``.
        slab_spacing_mm : float, optional
            Largest distance between slab samples (default: one voxel step along the normal). A larger
            spacing is faster and may miss thin bright structures in a MIP.
        preview : bool
            For slabs while the user drags: a slab lined up with the voxel grid whose voxel
            planes are not the volume's columns (the coronal slab of an axial stack) is reduced
            over its voxel planes first, then interpolated (:meth:`GridSlab.draft`; 512x512x400,
            20 mm MIP: 9 ms against 15-17 for the half-resolution one); any other is sampled at
            half the resolution (a quarter of the rays) and scaled back up bilinearly, softer.
            (Reducing over columns, the sagittal slab, is a short reduction per voxel row in
            numpy: 39 ms, slower than sampling.) Thin planes and slabs whose pixels fall on voxel
            centres ignore it (their exact slab is cheaper).

        Returns
        -------
        numpy.ndarray
            float32 ``(rows, cols)`` modality values; np.nan outside the volume.
        """
        if mode not in MODES:
            raise ValueError(f"slab mode must be one of {MODES}, got {mode!r}")
        if interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}"
            )
        if not 0.0 <= slab_mm <= MAX_SLAB_MM:
            raise ValueError(f"slab thickness must be 0 to {MAX_SLAB_MM:g} mm, got {slab_mm}")
        cols, rows = plane.size
        grid = self.grid_slab(plane, slab_mm) if slab_mm > 0 and not slab_spacing_mm else None
        if grid is not None and grid.exact:  # cheaper than any preview
            return grid.combine(self.volume.values, mode, rows, cols)
        if preview and grid is not None and grid.normal_axis != 2:  # reduced, then interpolated
            return grid.draft(self.volume.values, mode, rows, cols)
        if preview and slab_mm > 0 and cols >= 4 and rows >= 4:
            return self._preview(plane, slab_mm, mode, interpolation, slab_spacing_mm)
        return self._sample(plane, slab_mm, mode, interpolation, slab_spacing_mm)

    def _exact_slab(
        self, plane: ReslicePlane, slab_mm: float, mode: str, slab_spacing_mm: float | None
    ) -> np.ndarray | None:
        """The slab combined from the voxel planes it holds when its pixels fall on voxel
        centres (:class:`GridSlab`, exact); None for a thin plane or any other slab."""
        if slab_mm <= 0 or slab_spacing_mm:
            return None
        grid = self.grid_slab(plane, slab_mm)
        if grid is None or not grid.exact:
            return None
        cols, rows = plane.size
        return grid.combine(self.volume.values, mode, rows, cols)

    def _sample(
        self,
        plane: ReslicePlane,
        slab_mm: float,
        mode: str,
        interpolation: str,
        slab_spacing_mm: float | None,
    ) -> np.ndarray:
        """The plane or slab sampled: a linear slab at one sample per voxel step on the voxel
        planes its rays cross (:mod:`workstation.render.slab_kernel`), anything else (or that
        slab where the kernel cannot run) by vtkImageReslice."""
        cols, rows = plane.size
        index_from_plane = self._index_from_patient @ plane._frame()
        if (
            slab_mm > 0
            and interpolation == "linear"
            and not slab_spacing_mm
            and _grid_axes(index_from_plane) is None  # else vtkImageReslice's fast path
        ):
            out = slab_kernel.slab(
                self.volume.values, index_from_plane, plane.size, plane.pixel_mm, slab_mm, mode
            )
            if out is not None:
                return out
        r = self._filter()
        r.SetResliceAxes(_matrix(index_from_plane))
        px = plane.pixel_mm
        if slab_mm > 0:
            n, step = self.slab_sampling(slab_mm, slab_spacing_mm, plane.normal)
            r.SetSlabNumberOfSlices(n)
            {"mip": r.SetSlabModeToMax, "minip": r.SetSlabModeToMin, "mean": r.SetSlabModeToMean}[
                mode
            ]()
        else:
            n, step = 1, 1.0
            r.SetSlabNumberOfSlices(1)
        r.SetOutputSpacing(px, px, step)
        r.SetOutputOrigin(-(cols - 1) / 2 * px, -(rows - 1) / 2 * px, 0.0)
        r.SetOutputExtent(0, cols - 1, 0, rows - 1, 0, 0)
        {"nearest": r.SetInterpolationModeToNearestNeighbor,
         "linear": r.SetInterpolationModeToLinear,
         "cubic": r.SetInterpolationModeToCubic}[interpolation]()  # fmt: skip
        r.Update()
        out = numpy_support.vtk_to_numpy(r.GetOutput().GetPointData().GetScalars())
        return np.array(out.reshape(rows, cols), dtype=np.float32)

    def _preview(
        self,
        plane: ReslicePlane,
        slab_mm: float,
        mode: str,
        interpolation: str,
        slab_spacing_mm: float | None,
    ) -> np.ndarray:
        cols, rows = plane.size
        half = ReslicePlane(
            plane.centre,
            plane.x_axis,
            plane.y_axis,
            plane.pixel_mm * 2,
            ((cols + 1) // 2, (rows + 1) // 2),
        )
        small = self._exact_slab(half, slab_mm, mode, slab_spacing_mm)
        if small is None:
            small = self._sample(half, slab_mm, mode, interpolation, slab_spacing_mm)
        return _upsample2(
            small,
            rows,
            cols,
            (cols - 1) / 2 - 2 * (half.size[0] - 1) / 2,
            (rows - 1) / 2 - 2 * (half.size[1] - 1) / 2,
        )


def _grid_axes(frame: np.ndarray) -> tuple[int, int, int] | None:
    """The volume axis each column of the 3x3 ``frame`` (index steps per plane axis) runs
    along, when each runs along one and no two along the same; else None."""
    axes = []
    for col in frame[:3, :3].T:
        big = int(np.argmax(np.abs(col)))
        if np.abs(np.delete(col, big)).max() > _GRID_TOL * abs(col[big]):
            return None
        axes.append(big)
    return (axes[0], axes[1], axes[2]) if len(set(axes)) == 3 else None


def _upsample2(small: np.ndarray, rows: int, cols: int, off_c: float, off_r: float) -> np.ndarray:
    """Bilinear 2x upsampling of ``small`` onto ``rows`` x ``cols``: full pixel ``(c, r)`` is read
    at small pixel ``((c - off_c) / 2, (r - off_r) / 2)``, clamped to the edge. NaN (outside)
    spreads to the full pixels that touch it."""
    sr, sc = small.shape
    _, *at_rows = linear_axis(-off_r / 2, 0.5, rows, sr)
    _, *at_cols = linear_axis(-off_c / 2, 0.5, cols, sc)
    return bilinear(small, at_rows, at_cols)


def orthogonal_planes(
    volume: VolumeImage, point: Sequence[float] | None = None
) -> dict[str, ReslicePlane]:
    """Axial, coronal and sagittal planes through ``point`` (default: the volume centre).

    Radiological convention: axial seen from the feet (patient left on screen right, anterior
    up), coronal from the front (patient left on screen right, head up), sagittal from the
    patient's left (anterior on screen left, head up). Each image is centred on the volume centre
    projected onto the plane (so moving ``point`` only moves the plane along its normal), with the
    smallest in-plane voxel size and a size covering the whole volume.
    """
    vc = volume.centre_patient()
    p = vc if point is None else np.asarray(point, np.float64)
    pixel = min(volume.spacing_mm[0], volume.spacing_mm[1])
    corners = volume.bounds_patient()
    out = {}
    for name, x, y in (
        ("axial", (1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
        ("coronal", (1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),
        ("sagittal", (0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
    ):
        xa, ya = np.asarray(x), np.asarray(y)
        n = np.cross(xa, ya)
        centre = vc + float(np.dot(p - vc, n)) * n
        d = corners - vc
        width = float(np.ptp(d @ xa))
        height = float(np.ptp(d @ ya))
        # (rounding must not add a pixel: the pixels would fall between voxel centres)
        size = (int(math.ceil(width / pixel - 1e-6)) + 1, int(math.ceil(height / pixel - 1e-6)) + 1)
        out[name] = ReslicePlane(tuple(centre), x, y, pixel, size)
    return out


def oblique_plane(
    volume: VolumeImage,
    base: str,
    rx_deg: float,
    ry_deg: float,
    point: Sequence[float] | None = None,
) -> ReslicePlane:
    """An orthogonal plane (``base``) tilted about its own screen axes, through ``point``.

    ``rx_deg`` rotates about the plane's horizontal (x) axis, then ``ry_deg`` about its vertical
    (y) axis, both through the centre. The size grows to cover the whole volume.
    """
    plane = orthogonal_planes(volume, point)[base]
    plane = plane.rotated(plane.x_axis, rx_deg)
    plane = plane.rotated(plane.y_axis, ry_deg)
    corners = volume.bounds_patient() - np.asarray(plane.centre)
    cols = int(math.ceil(2 * np.abs(corners @ plane.x_axis).max() / plane.pixel_mm)) + 1
    rows = int(math.ceil(2 * np.abs(corners @ plane.y_axis).max() / plane.pixel_mm)) + 1
    plane = ReslicePlane(plane.centre, plane.x_axis, plane.y_axis, plane.pixel_mm, (cols, rows))
    if point is not None:
        plane = plane.moved_to(point)
    return plane
