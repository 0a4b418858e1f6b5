"""3D volume rendering of a :class:`~workstation.render.volume_image.VolumeImage` (no Qt).

:class:`VolumeScene` owns a ``vtkRenderer`` with the volume, a preset's transfer functions, a
window/level-like shift and scale of them, a clipping box in patient coordinates and camera moves.
The Qt widget (``ui/volume_view.py``) and the headless command line put the renderer in their
render window.

Speed on a CPU (Mesa llvmpipe; ``benchmarks/mpr.py`` compares the options side by side): the
OpenGL GPU ray caster pays per ray sample in emulated fragment shaders, with an on-the-fly
gradient (six more texture fetches) per sample when shading, and skips no empty space; a shaded
512x512 frame of a 256^3 CT took seconds. VTK's multi-threaded CPU ray caster
(``vtkFixedPointVolumeRayCastMapper``) computes gradients once, leaps over transparent space
and stops rays when opaque: the same frame takes a tenth to a twentieth of the time. So the
default ``engine='cpu'`` uses it; ``engine='gpu'`` (for a hardware GPU) keeps the OpenGL one.

Two mappers of that engine share the actor's property: the *still* mapper on the full volume
(rays for every pixel, one sample per smallest voxel edge) and the *preview* mapper on a block-
averaged copy of at most :data:`PREVIEW_VOXELS` voxels. While the user drags
(:meth:`VolumeScene.set_interactive`) the preview draws, casting rays for fewer pixels
(``ImageSampleDistance``) adapted after each frame by :meth:`VolumeScene.frame_rendered`
towards :attr:`VolumeScene.target_frame_s`; the still frame follows when the drag ends.

Both mappers see the voxels in a local frame (origin 0, no rotation) placed in patient space by
the actor's matrix, because the CPU ray caster ignores a ``vtkImageData`` direction matrix.

Presets are data: ``workstation/resources/volume_presets.yaml`` (see its header).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from vtkmodules.util import numpy_support
from vtkmodules.vtkCommonCore import vtkDoubleArray, vtkPoints
from vtkmodules.vtkCommonDataModel import vtkImageData, vtkPiecewiseFunction, vtkPlanes
from vtkmodules.vtkRenderingCore import (
    vtkColorTransferFunction,
    vtkRenderer,
    vtkVolume,
    vtkVolumeProperty,
)
from vtkmodules.vtkRenderingVolume import vtkFixedPointVolumeRayCastMapper, vtkVolumeMapper
from vtkmodules.vtkRenderingVolumeOpenGL2 import vtkOpenGLGPUVolumeRayCastMapper

from workstation.render.volume_image import VolumeImage, _matrix

PRESET_FILE = "volume_presets.yaml"
#: Rendering engines of :class:`VolumeScene`: CPU ray casting (fast on software OpenGL) or the
#: OpenGL GPU ray caster (for a hardware GPU).
ENGINES = ("cpu", "gpu")
#: Most voxels of the block-averaged copy drawn while the user drags (128^3).
PREVIEW_VOXELS = 128**3
#: Camera directions (from the volume centre towards the camera) and view-up, in LPS.
VIEWS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "anterior": ((0.0, -1.0, 0.0), (0.0, 0.0, 1.0)),
    "posterior": ((0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
    "left": ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
    "right": ((-1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
    "superior": ((0.0, 0.0, 1.0), (0.0, -1.0, 0.0)),
    "inferior": ((0.0, 0.0, -1.0), (0.0, -1.0, 0.0)),
}


class PresetError(ValueError):
    """A volume preset file or entry is invalid; the message names the file and the preset."""


@dataclass(frozen=True)
class VolumePreset:
    """Transfer functions and lighting of one rendering style.

    Attributes
    ----------
    key, label : str
        Identifier (``ct-bone``) and the name shown to users (``CT bone``).
    units : str
        ``'modality'`` (points in modality units) or ``'relative'`` (fractions of the volume's
        1st..99.5th percentile range).
    blend : str
        ``'composite'`` or ``'mip'``.
    opacity : tuple of (value, opacity)
    colour : tuple of (value, r, g, b)
    shade : bool
    ambient, diffuse, specular, specular_power : float
    """

    key: str
    label: str
    units: str
    blend: str
    opacity: tuple[tuple[float, float], ...]
    colour: tuple[tuple[float, float, float, float], ...]
    shade: bool = True
    ambient: float = 0.2
    diffuse: float = 0.8
    specular: float = 0.2
    specular_power: float = 10.0


def _preset(key: str, entry: Any, source: str) -> VolumePreset:
    where = f"{source}: preset {key!r}"
    if not isinstance(entry, Mapping):
        raise PresetError(f"{where}: expected a mapping")
    try:
        opacity = tuple((float(v), float(a)) for v, a in entry["opacity"])
        colour = tuple((float(v), float(r), float(g), float(b)) for v, r, g, b in entry["colour"])
        preset = VolumePreset(
            key=key,
            label=str(entry.get("label", key)),
            units=str(entry.get("units", "modality")),
            blend=str(entry.get("blend", "composite")),
            opacity=opacity,
            colour=colour,
            shade=bool(entry.get("shade", True)),
            ambient=float(entry.get("ambient", 0.2)),
            diffuse=float(entry.get("diffuse", 0.8)),
            specular=float(entry.get("specular", 0.2)),
            specular_power=float(entry.get("specular_power", 10.0)),
        )
    except KeyError as exc:
        raise PresetError(f"{where}: missing {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        raise PresetError(f"{where}: {exc}") from None
    if preset.units not in ("modality", "relative"):
        raise PresetError(f"{where}: units must be 'modality' or 'relative', not {preset.units!r}")
    if preset.blend not in ("composite", "mip"):
        raise PresetError(f"{where}: blend must be 'composite' or 'mip', not {preset.blend!r}")
    if len(opacity) < 2 or len(colour) < 1:
        raise PresetError(f"{where}: needs at least 2 opacity and 1 colour points")
    for name, pts in (("opacity", opacity), ("colour", colour)):
        xs = [p[0] for p in pts]
        if xs != sorted(xs):
            raise PresetError(f"{where}: {name} values must ascend")
        if any(not 0.0 <= c <= 1.0 for p in pts for c in p[1:]):
            raise PresetError(f"{where}: {name} components must lie in 0..1")
    return preset


def load_presets(user_file: str | os.PathLike[str] | None = None) -> dict[str, VolumePreset]:
    """The shipped presets, overridden or extended by ``user_file`` (same layout) when given.

    Raises
    ------
    PresetError
        When a file is not valid YAML or an entry is invalid.
    """
    shipped = resources.files("workstation.resources").joinpath(PRESET_FILE)
    sources = [(str(shipped), shipped.read_text(encoding="utf-8"))]
    if user_file is not None:
        sources.append((os.fspath(user_file), Path(user_file).read_text(encoding="utf-8")))
    out: dict[str, VolumePreset] = {}
    for name, text in sources:
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise PresetError(f"{name}: not valid YAML: {exc}") from None
        if not isinstance(data, Mapping):
            raise PresetError(f"{name}: expected a mapping of presets")
        for key, entry in data.items():
            out[str(key)] = _preset(str(key), entry, name)
    return out


class VolumeScene:
    """A volume in a ``vtkRenderer`` with presets, transfer-function shift/scale, clipping, camera.

    Parameters
    ----------
    volume : VolumeImage
        The data; its vtkImageData is shared.
    presets : mapping, optional
        Preset key -> :class:`VolumePreset` (default :func:`load_presets`).
    preset : str
        Initial preset key.
    engine : str
        ``'cpu'`` (multi-threaded CPU ray casting; the fast choice on software OpenGL) or
        ``'gpu'`` (OpenGL GPU ray casting, for a hardware GPU). See :data:`ENGINES`.
    preview_voxels : int
        Voxel budget of the block-averaged copy drawn while the user drags.
    """

    def __init__(
        self,
        volume: VolumeImage,
        presets: Mapping[str, VolumePreset] | None = None,
        preset: str = "ct-bone",
        engine: str = "cpu",
        preview_voxels: int = PREVIEW_VOXELS,
    ) -> None:
        self.volume = volume
        self.presets = dict(presets or load_presets())
        sample = volume.values[:: max(1, volume.values.shape[0] // 64), ::4, ::4]
        self.robust_range = (
            float(np.percentile(sample, 1.0)),
            float(np.percentile(sample, 99.5)),
        )
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        self.engine = engine
        local, patient_from_local = _local_image(volume.values, volume.patient_from_index)
        preview, factors = _block_mean(volume.values, volume.spacing_mm, preview_voxels)
        self.preview_factors = factors
        self._images = (local, preview)  # their numpy buffers live as long as the scene
        self.mapper = _mapper(engine, local)
        self.preview_mapper = _mapper(engine, preview) if factors != (1, 1, 1) else self.mapper
        self.still_sample_mm = min(volume.spacing_mm)
        self.interactive_sample_mm = min(
            s * f for s, f in zip(volume.spacing_mm, factors, strict=True)
        )
        self.still_image_sample = 1.0
        self.interactive_image_sample = 1.5 if engine == "cpu" else 2.0
        self.target_frame_s = 0.06
        self.interactive = False
        self.property = vtkVolumeProperty()
        self.property.SetInterpolationTypeToLinear()
        self.actor = vtkVolume()
        self.actor.SetUserMatrix(_matrix(patient_from_local))
        self.actor.SetMapper(self.mapper)
        self.actor.SetProperty(self.property)
        self.renderer = vtkRenderer()
        self.renderer.SetBackground(0.0, 0.0, 0.0)
        self.renderer.AddVolume(self.actor)
        self.shift = 0.0
        self.scale = 1.0
        self.clipping_box: tuple[float, ...] | None = None
        self.preset = self.presets[preset] if preset in self.presets else None
        self.set_preset(preset)
        self.set_interactive(False)
        self.reset_camera()

    @property
    def mappers(self) -> tuple[vtkVolumeMapper, ...]:
        """The still mapper, then the preview one when it is a different mapper."""
        if self.preview_mapper is self.mapper:
            return (self.mapper,)
        return (self.mapper, self.preview_mapper)

    # -- quality -----------------------------------------------------------------------------------
    def set_interactive(self, on: bool) -> None:
        """Fast frames while the user drags (True: the preview volume, rays for fewer pixels);
        full quality for the still frame (False: the full volume, a ray per pixel)."""
        self.interactive = bool(on)
        mapper = self.preview_mapper if on else self.mapper
        if on:
            mapper.SetImageSampleDistance(self.interactive_image_sample)
            mapper.SetSampleDistance(self.interactive_sample_mm)
        else:
            mapper.SetImageSampleDistance(self.still_image_sample)
            mapper.SetSampleDistance(self.still_sample_mm)
        if self.actor.GetMapper() is not mapper:
            self.actor.SetMapper(mapper)

    def frame_rendered(self, seconds: float) -> None:
        """Report how long an interactive frame took; the next one casts rays for more or fewer
        pixels to approach :attr:`target_frame_s` (image sample distance 1 to 6)."""
        if not self.interactive or seconds <= 0:
            return
        ratio = float(np.sqrt(seconds / self.target_frame_s))
        isd = float(np.clip(self.interactive_image_sample * ratio, 1.0, 6.0))
        self.interactive_image_sample = isd
        self.preview_mapper.SetImageSampleDistance(isd)

    # -- transfer functions ------------------------------------------------------------------------
    def set_preset(self, key: str) -> None:
        """Use preset ``key``; resets the shift and scale."""
        if key not in self.presets:
            raise KeyError(f"no volume preset {key!r}; known: {', '.join(sorted(self.presets))}")
        self.preset = self.presets[key]
        self.shift, self.scale = 0.0, 1.0
        p = self.preset
        for mapper in self.mappers:
            if p.blend == "mip":
                mapper.SetBlendModeToMaximumIntensity()
            else:
                mapper.SetBlendModeToComposite()
        self.property.SetShade(bool(p.shade))
        self.property.SetAmbient(p.ambient)
        self.property.SetDiffuse(p.diffuse)
        self.property.SetSpecular(p.specular)
        self.property.SetSpecularPower(p.specular_power)
        self._apply_functions()

    def preset_values(self) -> tuple[float, float]:
        """Modality values of the preset's first and last opacity points, before shift/scale."""
        xs = [self._to_modality(v) for v, _ in self.preset.opacity]
        return xs[0], xs[-1]

    def _to_modality(self, v: float) -> float:
        if self.preset.units == "relative":
            lo, hi = self.robust_range
            return lo + v * (hi - lo)
        return v

    def mapped_value(self, v: float) -> float:
        """Where a preset point ``v`` lands after unit conversion, scale and shift (modality)."""
        centre = self._centre()
        return centre + (self._to_modality(v) - centre) * self.scale + self.shift

    def _centre(self) -> float:
        pts = [self._to_modality(v) for v, a in self.preset.opacity if a > 0]
        return float(np.mean(pts)) if pts else 0.0

    def _apply_functions(self) -> None:
        opacity = vtkPiecewiseFunction()
        for v, a in self.preset.opacity:
            opacity.AddPoint(self.mapped_value(v), a)
        colour = vtkColorTransferFunction()
        for v, r, g, b in self.preset.colour:
            colour.AddRGBPoint(self.mapped_value(v), r, g, b)
        self.property.SetScalarOpacity(opacity)
        self.property.SetColor(colour)

    def set_window(self, shift: float, scale: float) -> None:
        """Window/level-like control: points move by ``shift`` and spread by ``scale`` about the
        centre of the preset's visible points (scale 1, shift 0 is the preset)."""
        self.shift = float(shift)
        self.scale = float(min(max(scale, 0.02), 50.0))
        self._apply_functions()

    def drag_window(self, dx: float, dy: float, sensitivity: float | None = None) -> None:
        """Mouse drag of ``dx``, ``dy`` pixels: right widens, up raises (like 2D window/level)."""
        lo, hi = self.preset_values()
        step = sensitivity if sensitivity is not None else max(hi - lo, 1.0) / 500.0
        self.set_window(self.shift - dy * step, self.scale * float(np.exp(dx / 300.0)))

    # -- clipping ----------------------------------------------------------------------------------
    def set_clipping_box(self, bounds: Sequence[float] | None) -> None:
        """Clip to ``(xmin, xmax, ymin, ymax, zmin, zmax)`` in patient mm; None removes it."""
        if bounds is None:
            self.set_clipping_planes(None)
            return
        b = [float(v) for v in bounds]
        if len(b) != 6 or b[0] >= b[1] or b[2] >= b[3] or b[4] >= b[5]:
            raise ValueError(f"clipping box must be xmin<xmax, ymin<ymax, zmin<zmax; got {bounds}")
        self.clipping_box = tuple(b)
        points = vtkPoints()
        normals = []
        for axis in range(3):
            for side, sign in ((0, -1.0), (1, 1.0)):
                p = [0.0, 0.0, 0.0]
                p[axis] = b[2 * axis + side]
                points.InsertNextPoint(*p)
                n = [0.0, 0.0, 0.0]
                n[axis] = -sign  # the mapper keeps the side the normal points to: inwards
                normals.append(n)
        self.set_clipping_planes(_planes(points, normals))

    def set_clipping_planes(self, planes: vtkPlanes | None) -> None:
        """Clip with arbitrary planes (a box widget's ``GetPlanes``); None removes them."""
        if planes is None:
            self.clipping_box = None
        for mapper in self.mappers:
            mapper.RemoveAllClippingPlanes()
            if planes is not None:
                mapper.SetClippingPlanes(planes)

    # -- camera ------------------------------------------------------------------------------------
    def reset_camera(self, view: str = "anterior") -> None:
        """Look at the whole volume from ``view`` (see :data:`VIEWS`); patient left is screen
        right in the anterior view."""
        if view not in VIEWS:
            raise ValueError(f"view must be one of {', '.join(VIEWS)}, got {view!r}")
        towards, up = VIEWS[view]
        centre = self.volume.centre_patient()
        radius = float(np.linalg.norm(np.ptp(self.volume.bounds_patient(), axis=0))) / 2
        cam = self.renderer.GetActiveCamera()
        cam.SetFocalPoint(*centre)
        cam.SetPosition(*(centre + np.asarray(towards) * radius * 4))
        cam.SetViewUp(*up)
        cam.SetViewAngle(30.0)
        self.renderer.ResetCamera()
        cam.Zoom(1.4)  # ResetCamera fits the bounding sphere: the box corners are mostly air
        self.renderer.ResetCameraClippingRange()

    def rotate(self, azimuth: float, elevation: float) -> None:
        """Orbit the camera by degrees about the view-up and the horizontal axes."""
        cam = self.renderer.GetActiveCamera()
        cam.Azimuth(azimuth)
        cam.Elevation(elevation)
        cam.OrthogonalizeViewUp()
        self.renderer.ResetCameraClippingRange()

    def zoom(self, factor: float) -> None:
        """Magnify by ``factor`` (> 1 enlarges)."""
        self.renderer.GetActiveCamera().Zoom(factor)
        self.renderer.ResetCameraClippingRange()

    def pan(self, dx_mm: float, dy_mm: float) -> None:
        """Move the view by millimetres along screen right and screen up."""
        cam = self.renderer.GetActiveCamera()
        up = np.asarray(cam.GetViewUp())
        forward = np.asarray(cam.GetFocalPoint()) - np.asarray(cam.GetPosition())
        right = np.cross(forward, up)
        right /= np.linalg.norm(right)
        shift = -(right * dx_mm + up * dy_mm)
        cam.SetFocalPoint(*(np.asarray(cam.GetFocalPoint()) + shift))
        cam.SetPosition(*(np.asarray(cam.GetPosition()) + shift))
        self.renderer.ResetCameraClippingRange()


def _planes(points: vtkPoints, normals: list[list[float]]) -> vtkPlanes:
    arr = vtkDoubleArray()
    arr.SetNumberOfComponents(3)
    for n in normals:
        arr.InsertNextTuple3(*n)
    planes = vtkPlanes()
    planes.SetPoints(points)
    planes.SetNormals(arr)
    return planes


def _mapper(engine: str, image: vtkImageData) -> vtkVolumeMapper:
    mapper: vtkVolumeMapper
    if engine == "cpu":
        mapper = vtkFixedPointVolumeRayCastMapper()
        mapper.SetNumberOfThreads(max(1, os.cpu_count() or 1))
    else:
        mapper = vtkOpenGLGPUVolumeRayCastMapper()
    mapper.SetAutoAdjustSampleDistances(0)
    mapper.SetInputData(image)
    return mapper


def _vtk_local(
    values: np.ndarray, spacing: Sequence[float], origin: Sequence[float]
) -> vtkImageData:
    values = np.ascontiguousarray(values)
    image = vtkImageData()
    image.SetDimensions(values.shape[2], values.shape[1], values.shape[0])
    image.SetSpacing(*spacing)
    image.SetOrigin(*origin)
    array = numpy_support.numpy_to_vtk(values.reshape(-1), deep=False)
    array.SetName("values")
    image.GetPointData().SetScalars(array)
    image._numpy_values = values  # keep the buffer alive as long as the image
    return image


def _local_image(
    values: np.ndarray, patient_from_index: np.ndarray
) -> tuple[vtkImageData, np.ndarray]:
    """The voxels (no copy) in a local frame: origin 0, the true spacing, no rotation; and the
    4x4 matrix placing that frame in patient space (for the actor)."""
    spacing = np.linalg.norm(patient_from_index[:3, :3], axis=0)
    patient_from_local = patient_from_index.copy()
    patient_from_local[:3, :3] = patient_from_index[:3, :3] / spacing
    return _vtk_local(values, spacing, (0.0, 0.0, 0.0)), patient_from_local


def _block_mean(
    values: np.ndarray, spacing_mm: Sequence[float], budget: int
) -> tuple[vtkImageData, tuple[int, int, int]]:
    """A copy of at most ``budget`` voxels averaged over blocks of whole voxels (in the local
    frame of :func:`_local_image`) and the block size along (col, row, slice).

    The blocks are nearly cubic in millimetres; a block's value lies at its centre.
    """
    spacing = np.asarray(spacing_mm, np.float64)
    n = np.array(values.shape[::-1])  # col, row, slice
    factors = np.ones(3, int)
    if n.prod() > budget:
        edge = (np.prod(n * spacing) / budget) ** (1.0 / 3.0)  # mm of a cubic block
        factors = np.maximum(1, np.round(edge / spacing)).astype(int)
        while np.prod(n // factors) > budget:
            factors[np.argmin(factors * spacing)] += 1
    f = tuple(int(v) for v in factors)
    spacing_out = spacing * factors
    origin = (factors - 1) / 2.0 * spacing
    if f == (1, 1, 1):
        return _vtk_local(values, spacing, origin), f
    fx, fy, fz = f
    nx, ny, nz = (n // factors).tolist()
    out = np.empty((nz, ny, nx), values.dtype)
    for k in range(nz):  # one slab of slices at a time: no full-size float copy
        slab = values[k * fz : (k + 1) * fz, : ny * fy, : nx * fx].astype(np.float32)
        mean = slab.reshape(fz, ny, fy, nx, fx).mean(axis=(0, 2, 4))
        out[k] = np.rint(mean) if np.issubdtype(values.dtype, np.integer) else mean
    return _vtk_local(out, spacing_out, origin), f
