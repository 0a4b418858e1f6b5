"""A display set's voxels as a ``vtkImageData`` whose VTK world coordinates are patient coordinates.

The volume is built once per display set and shared by the MPR views and the 3D view. Two kinds of
acquisition do not give a regular grid and are resampled here, never shown sheared or stretched:

* **Uneven slice spacing** (a scanner skipping positions, a series joined from two acquisitions):
  the stack is resampled along its slice direction to an even spacing (the smallest step, but at
  least a quarter of the median step), each new slice linearly blended from its two neighbours,
  and :attr:`VolumeImage.uneven_spacing` says so in one sentence.
* **Gantry tilt** (slice origins step along the table, not along the slice normal): the sheared
  stack is resampled by trilinear interpolation onto an orthogonal grid whose slice axis is the
  table direction, so that the reformatted images have no shear and the axial slices are de-tilted;
  :attr:`VolumeImage.resampled_for_tilt_deg` holds the angle.

Voxel index order is ``(col, row, slice)`` throughout, and ``values`` is ``(slices, rows, cols)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from vtkmodules.util import numpy_support
from vtkmodules.vtkCommonDataModel import vtkImageData
from vtkmodules.vtkCommonMath import vtkMatrix4x4
from vtkmodules.vtkImagingCore import vtkImageReslice

from workstation.core.geometry import ImagePlane, spacing_report
from workstation.core.volume import volume_geometry_from_planes

#: A stack whose origins drift sideways (off the slice normal) by less than this fraction of an
#: in-plane pixel over its whole length is treated as untilted (rounding in the headers).
_TILT_DRIFT_PIXELS = 0.1


@dataclass(frozen=True, eq=False)
class VolumeImage:
    """A volume of modality values on a regular grid in patient space (LPS, mm).

    Attributes
    ----------
    image : vtkImageData
        Scalars are the modality values (int16 or float32); spacing, origin and direction
        matrix are set so that VTK world coordinates are patient coordinates. It shares its
        memory with :attr:`values`.
    values : numpy.ndarray
        The same voxels, ``(slices, rows, cols)``, read-only.
    patient_from_index : numpy.ndarray
        4x4 mapping ``(col, row, slice, 1)`` to patient ``(x, y, z, 1)``.
    spacing_mm : tuple[float, float, float]
        Voxel size along col, row and slice.
    resampled_for_tilt_deg : float or None
        The gantry tilt that was resampled away; None when the stack was not tilted.
    uneven_spacing : str or None
        One sentence when slice spacing was uneven and resampled, else None.
    notes : tuple[str, ...]
        Everything done to the voxels on the way, one sentence each.
    """

    image: vtkImageData
    values: np.ndarray
    patient_from_index: np.ndarray
    spacing_mm: tuple[float, float, float]
    resampled_for_tilt_deg: float | None
    uneven_spacing: str | None
    notes: tuple[str, ...]

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(slices, rows, cols)``."""
        return tuple(int(n) for n in self.values.shape)  # type: ignore[return-value]

    @property
    def direction(self) -> np.ndarray:
        """3x3 whose columns are the unit vectors along col, row and slice."""
        m = self.patient_from_index[:3, :3]
        return m / np.linalg.norm(m, axis=0)

    def index_to_patient(self, ijk: Sequence[float] | np.ndarray) -> np.ndarray:
        """Patient position of voxel index ``(col, row, slice)`` or an ``(..., 3)`` array of them."""
        p = np.asarray(ijk, dtype=np.float64)
        return p @ self.patient_from_index[:3, :3].T + self.patient_from_index[:3, 3]

    def patient_to_index(self, xyz: Sequence[float] | np.ndarray) -> np.ndarray:
        """Continuous voxel index ``(col, row, slice)`` of patient points, shape like ``xyz``."""
        p = np.asarray(xyz, dtype=np.float64)
        inv = np.linalg.inv(self.patient_from_index)
        return p @ inv[:3, :3].T + inv[:3, 3]

    def bounds_patient(self) -> np.ndarray:
        """The 8 corners of the volume (centres of the corner voxels), shape (8, 3)."""
        s, r, c = (n - 1 for n in self.values.shape)
        idx = np.array([[i, j, k] for k in (0, s) for j in (0, r) for i in (0, c)], np.float64)
        return self.index_to_patient(idx)

    def centre_patient(self) -> np.ndarray:
        """Patient position of the centre of the volume."""
        return self.index_to_patient((np.array(self.values.shape[::-1], np.float64) - 1) / 2)

    def value_range(self) -> tuple[float, float]:
        """Lowest and highest modality value."""
        return float(self.values.min()), float(self.values.max())


def build_volume_image(
    values: np.ndarray, planes: Sequence[ImagePlane], *, modality: str = ""
) -> VolumeImage:
    """Build the :class:`VolumeImage` of a stack of parallel slices.

    Parameters
    ----------
    values : numpy.ndarray
        ``(slices, rows, cols)`` modality values in the order of ``planes``.
    planes : sequence of ImagePlane
        One plane per slice, in ascending or descending order along the slice normal.
    modality : str, optional
        The modality (``CT``, ``MR``...), kept in the notes only.

    Returns
    -------
    VolumeImage

    Raises
    ------
    ValueError
        When ``values`` and ``planes`` disagree in count or matrix size, or the planes cannot form
        a volume (the reason of :func:`workstation.core.volume.volume_geometry_from_planes`).
    """
    values = np.asarray(values)
    if values.ndim != 3:
        raise ValueError(f"expected (slices, rows, cols) values, got shape {values.shape}")
    if len(planes) != values.shape[0]:
        raise ValueError(f"{len(planes)} planes for {values.shape[0]} slices")
    geometry = volume_geometry_from_planes(list(planes))
    if not geometry.ok:
        raise ValueError(f"not a volume: {geometry.reason}")
    first = planes[0]
    if (first.rows, first.cols) != values.shape[1:]:
        raise ValueError(f"planes are {first.rows}x{first.cols}, values {values.shape[1:]}")
    dtype = np.int16 if values.dtype == np.int16 else np.float32
    notes: list[str] = []
    if modality:
        notes.append(f"{modality} volume of {values.shape[0]} slices")
    normal = first.normal
    origins = np.array([p.origin for p in planes], np.float64)
    positions = origins @ normal
    if positions[-1] < positions[0]:
        values, origins, positions = values[::-1], origins[::-1], positions[::-1]
        notes.append("slices were in descending order along the normal: reversed")
    stack = np.ascontiguousarray(values, dtype=dtype)

    uneven: str | None = None
    report = spacing_report(list(planes))
    if not report.regular and report.min_spacing is not None and report.max_spacing is not None:
        steps = np.diff(positions)
        step = max(float(steps.min()), 0.25 * float(np.median(steps)))
        stack, origins, positions = _resample_even(stack, origins, positions, step)
        uneven = (
            f"uneven slice spacing {report.min_spacing:.2f}-{report.max_spacing:.2f} mm was "
            f"resampled to an even {step:.2f} mm ({len(positions)} slices)"
        )
        notes.append(uneven)
    slice_spacing = float(positions[1] - positions[0]) if len(positions) > 1 else 1.0

    sr, sc = first.spacing_rc
    step_vec = (origins[-1] - origins[0]) / max(len(origins) - 1, 1)
    drift = np.linalg.norm(step_vec - np.dot(step_vec, normal) * normal) * (len(origins) - 1)
    tilt: float | None = None
    if drift > _TILT_DRIFT_PIXELS * min(sr, sc):
        tilt = float(
            np.degrees(np.arccos(min(1.0, np.dot(step_vec, normal) / np.linalg.norm(step_vec))))
        )
        stack, affine = _resample_tilt(stack, first, origins[0], step_vec, slice_spacing)
        notes.append(
            f"gantry tilt {tilt:.1f} deg: resampled onto a regular grid ({stack.shape[0]} slices "
            f"of {stack.shape[1]}x{stack.shape[2]}), not sheared"
        )
    else:
        affine = np.eye(4)
        affine[:3, 0] = first.row_dir * sc
        affine[:3, 1] = first.col_dir * sr
        affine[:3, 2] = normal * slice_spacing
        affine[:3, 3] = origins[0]
    stack.setflags(write=False)
    affine.setflags(write=False)
    spacing = tuple(float(np.linalg.norm(affine[:3, i])) for i in range(3))
    image = _vtk_image(stack, affine, spacing)
    return VolumeImage(
        image=image,
        values=stack,
        patient_from_index=affine,
        spacing_mm=spacing,  # type: ignore[arg-type]
        resampled_for_tilt_deg=tilt,
        uneven_spacing=uneven,
        notes=tuple(notes),
    )


def _resample_even(
    stack: np.ndarray, origins: np.ndarray, positions: np.ndarray, step: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resample slices at ascending ``positions`` to an even ``step`` by linear blending."""
    count = int(np.floor((positions[-1] - positions[0]) / step + 1e-6)) + 1
    new_pos = positions[0] + step * np.arange(count)
    new_pos[-1] = min(new_pos[-1], positions[-1])
    upper = np.clip(np.searchsorted(positions, new_pos, side="right"), 1, len(positions) - 1)
    lower = upper - 1
    frac = (new_pos - positions[lower]) / (positions[upper] - positions[lower])
    out = np.empty((count, *stack.shape[1:]), stack.dtype)
    for m in range(count):
        f = float(frac[m])
        blend = stack[lower[m]].astype(np.float32) * (1 - f) + stack[upper[m]] * f
        out[m] = np.rint(blend) if out.dtype == np.int16 else blend
    new_origins = origins[lower] + (origins[upper] - origins[lower]) * frac[:, None]
    return out, new_origins, new_pos


def _resample_tilt(
    stack: np.ndarray,
    first: ImagePlane,
    origin: np.ndarray,
    step_vec: np.ndarray,
    slice_spacing: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Trilinear resampling of a sheared stack onto an orthogonal grid; returns (voxels, affine).

    The new slice axis is the table direction (the step between slice origins), the column axis
    the original row direction made orthogonal to it; the new slice spacing is the original one
    measured along the normal.
    """
    sr, sc = first.spacing_rc
    sheared = np.eye(4)
    sheared[:3, 0] = first.row_dir * sc
    sheared[:3, 1] = first.col_dir * sr
    sheared[:3, 2] = step_vec
    sheared[:3, 3] = origin
    w = step_vec / np.linalg.norm(step_vec)
    u = first.row_dir - np.dot(first.row_dir, w) * w
    u /= np.linalg.norm(u)
    v = np.cross(w, u)
    n, rows, cols = stack.shape
    corners = np.array(
        [[i, j, k] for i in (0, cols - 1) for j in (0, rows - 1) for k in (0, n - 1)], np.float64
    )
    pts = corners @ sheared[:3, :3].T + origin
    frame = np.column_stack([u, v, w])
    local = pts @ frame  # coordinates along u, v, w
    lo, hi = local.min(axis=0), local.max(axis=0)
    spacing = np.array([sc, sr, slice_spacing])
    dims = (np.floor((hi - lo) / spacing + 1e-6) + 1).astype(int)
    grid = np.eye(4)
    grid[:3, :3] = frame * spacing
    grid[:3, 3] = frame @ lo
    to_input = np.linalg.inv(sheared) @ grid
    src = _vtk_index_image(stack)
    reslice = vtkImageReslice()
    reslice.SetInputData(src)
    reslice.SetResliceAxes(_matrix(to_input))
    reslice.SetOutputOrigin(0.0, 0.0, 0.0)
    reslice.SetOutputSpacing(1.0, 1.0, 1.0)
    reslice.SetOutputExtent(0, int(dims[0]) - 1, 0, int(dims[1]) - 1, 0, int(dims[2]) - 1)
    reslice.SetInterpolationModeToLinear()
    reslice.SetBackgroundLevel(float(stack.min()))
    reslice.Update()
    out = numpy_support.vtk_to_numpy(reslice.GetOutput().GetPointData().GetScalars())
    voxels = np.array(out.reshape(int(dims[2]), int(dims[1]), int(dims[0])), dtype=stack.dtype)
    return voxels, grid


def _matrix(m: np.ndarray) -> vtkMatrix4x4:
    out = vtkMatrix4x4()
    for i in range(4):
        for j in range(4):
            out.SetElement(i, j, float(m[i, j]))
    return out


def _vtk_index_image(values: np.ndarray) -> vtkImageData:
    """A vtkImageData over ``values`` (no copy) in index space: origin 0, spacing 1, no rotation."""
    values = np.ascontiguousarray(values)
    image = vtkImageData()
    image.SetDimensions(values.shape[2], values.shape[1], values.shape[0])
    array = numpy_support.numpy_to_vtk(values.reshape(-1), deep=False)
    array.SetName("values")
    image.GetPointData().SetScalars(array)
    image._numpy_values = values  # keep the buffer alive as long as the image
    return image


def _vtk_image(values: np.ndarray, affine: np.ndarray, spacing: Sequence[float]) -> vtkImageData:
    """A vtkImageData over ``values`` (no copy) whose world coordinates are patient coordinates."""
    image = _vtk_index_image(values)
    image.SetSpacing(*spacing)
    image.SetOrigin(*affine[:3, 3])
    direction = affine[:3, :3] / np.asarray(spacing)
    image.SetDirectionMatrix(*direction.reshape(-1).tolist())
    return image
