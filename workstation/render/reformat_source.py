"""A reformatted plane family shown by the 2D viewport: one frame per slice position.

:class:`ReformatSource` has the interface a :class:`~workstation.ui.viewport.Viewport` shows (the
one of :class:`~workstation.core.frame_source.FrameSource`): frame ``i`` is the plane of a fixed
orientation at the ``i``-th position along its normal, resliced from a shared
:class:`~workstation.render.volume_image.VolumeImage` when it is first asked for (in the decoder
thread). Its header is a synthetic dataset carrying what the corner text, the calibration and
the window need, so window/level, zoom, pan, measurements, orientation labels and reference
lines work as on acquired images; its Series Description starts with ``MPR`` so the user always
knows the image is a reformat.

A source never changes: another orientation, slab thickness or mode is another source with
another ``uid`` (late frames of the old one are dropped, DESIGN rule 2). The ``frames[i].path``
stays the same for one view across such versions (``mpr://VOLUME/VIEW``), which lets the viewport
keep the previous image up until the new one arrives.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset

from workstation.core.display_sets import DisplaySet, FrameRef
from workstation.core.frame_cache import FrameCache
from workstation.core.frame_source import FrameSource
from workstation.core.geometry import ImagePlane, classify_orientation
from workstation.core.modality_lut import ModalityTransform
from workstation.core.pipeline import FrameRenderer
from workstation.core.view_state import ImageGeometry
from workstation.render.reslice import ReslicePlane, Reslicer
from workstation.render.volume_image import VolumeImage, build_volume_image

MODE_NAMES = {"mip": "MIP", "minip": "MinIP", "mean": "Mean"}
_COPIED = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "InstitutionName",
    "StudyInstanceUID",
    "StudyDescription",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "StudyID",
    "Manufacturer",
    "ManufacturerModelName",
    "SeriesNumber",
    "BodyPartExamined",
    "FrameOfReferenceUID",
    "PhotometricInterpretation",
    "WindowCenter",
    "WindowWidth",
    "WindowCenterWidthExplanation",
    "VOILUTFunction",
    "VOILUTSequence",
    "RescaleType",
    "LossyImageCompression",
    "LossyImageCompressionRatio",
    "LossyImageCompressionMethod",
)
_HEADERS_KEPT = 64
_ids = itertools.count(1)


@dataclass(frozen=True)
class ReformatSpec:
    """What a reformat shows: a view name, its in-plane axes, the slab and the output grid.

    Attributes
    ----------
    view : str
        ``axial``, ``coronal``, ``sagittal`` (the plane family, named after its reset
        orientation) or any label; the header says ``oblique`` when the axes are.
    x_axis, y_axis : tuple of 3 floats
        Unit patient directions of increasing column and row.
    slab_mm : float
        Slab thickness (0: a thin slice).
    mode : str
        ``mip``, ``minip`` or ``mean``.
    pixel_mm : float
        Output pixel size.
    size : (int, int)
        Output (cols, rows).
    """

    view: str
    x_axis: tuple[float, float, float]
    y_axis: tuple[float, float, float]
    slab_mm: float = 0.0
    mode: str = "mip"
    pixel_mm: float = 1.0
    size: tuple[int, int] = (256, 256)

    @property
    def normal(self) -> np.ndarray:
        n = np.cross(np.asarray(self.x_axis, float), np.asarray(self.y_axis, float))
        return n / np.linalg.norm(n)

    @property
    def orientation(self) -> str:
        """``axial``/``coronal``/``sagittal`` within 1 degree of a patient plane, else ``oblique``."""
        return classify_orientation(self.x_axis, self.y_axis, oblique_threshold_deg=1.0)

    def description(self) -> str:
        """``MPR coronal``, ``MPR oblique 3 mm MIP``..."""
        text = f"MPR {self.orientation}"
        if self.slab_mm > 0:
            text += f" {self.slab_mm:g} mm {MODE_NAMES.get(self.mode, self.mode)}"
        return text


def step_along(volume: VolumeImage, normal: Sequence[float]) -> float:
    """Distance (mm) between successive grid planes of the volume along ``normal``.

    The voxel spacing for a normal along a volume axis; in between, ``1/|M^-1 n|`` where ``M`` maps
    voxel index steps to patient millimetres (e.g. 0.81 mm at 45 degrees between 0.7 mm and
    1 mm axes).
    """
    m = np.asarray(volume.patient_from_index, float)[:3, :3]
    n = np.asarray(normal, float) / np.linalg.norm(normal)
    return float(1.0 / np.linalg.norm(np.linalg.solve(m, n)))


def cover_size(
    volume: VolumeImage,
    x_axis: Sequence[float],
    y_axis: Sequence[float],
    pixel_mm: float,
    quantum: int = 1,
) -> tuple[int, int]:
    """(cols, rows) of an image centred on the volume centre that covers the whole volume in the
    plane of ``x_axis``/``y_axis``, rounded up to a multiple of ``quantum``."""
    corners = volume.bounds_patient() - volume.centre_patient()
    out = []
    for axis in (x_axis, y_axis):
        extent = 2 * float(np.max(np.abs(corners @ np.asarray(axis, float))))
        n = int(math.ceil(extent / pixel_mm - 1e-6)) + 1
        out.append(int(math.ceil(n / quantum) * quantum))
    return out[0], out[1]


def make_spec(
    volume: VolumeImage,
    view: str,
    x_axis: Sequence[float],
    y_axis: Sequence[float],
    *,
    slab_mm: float = 0.0,
    mode: str = "mip",
    pixel_mm: float | None = None,
    quantum: int = 1,
    min_size: tuple[int, int] = (1, 1),
) -> ReformatSpec:
    """A :class:`ReformatSpec` covering the whole volume in the plane of ``x_axis``/``y_axis``.

    ``pixel_mm`` defaults to the smallest in-plane voxel size (as
    :func:`~workstation.render.reslice.orthogonal_planes`); the size is :func:`cover_size` rounded up to
    ``quantum`` and at least ``min_size`` (so that a plane being turned keeps its matrix).
    """
    mm = float(pixel_mm) if pixel_mm else float(min(volume.spacing_mm[:2]))
    cols, rows = cover_size(volume, x_axis, y_axis, mm, quantum)
    return ReformatSpec(
        view,
        tuple(float(v) for v in x_axis),  # type: ignore[arg-type]
        tuple(float(v) for v in y_axis),  # type: ignore[arg-type]
        float(slab_mm),
        mode,
        mm,
        (max(cols, int(min_size[0])), max(rows, int(min_size[1]))),
    )


class _Frames(Sequence):
    """The frames of a reformat, made when asked for (a rotation makes new sources often)."""

    def __init__(self, source: ReformatSource) -> None:
        self._source = source
        self._made: dict[int, FrameRef] = {}

    def __len__(self) -> int:
        return self._source.count

    def __getitem__(self, i):  # noqa: ANN001 - Sequence protocol
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"reformat frame {i} of {n}")
        ref = self._made.get(i)
        if ref is None:
            # not a stored instance: a key of its own, deliberately not a UID, so annotations
            # stay on their frame and nothing can reference it in a saved object by mistake
            key = f"{self._source.uid}#{i}"
            ref = FrameRef(self._source.path, None, i + 1, self._source.plane(i), key)
            if len(self._made) > 4 * _HEADERS_KEPT:
                self._made.clear()
            self._made[i] = ref
        return ref


class ReformatSource:
    """One plane family of a volume as a stack of frames (duck-types ``FrameSource``).

    Parameters
    ----------
    volume : VolumeImage
        The shared volume.
    reslicer : Reslicer
        Its reslicer (shared: it is thread-safe).
    template : Dataset
        A header of the source series (patient, study, window...).
    spec : ReformatSpec
        Orientation, slab and output grid.
    centre : sequence of 3 floats, optional
        Patient point whose projection is the centre of every frame (default: the volume centre).
    lossy : bool
        Whether the source series is (or was) lossy compressed: the viewport marks it.
    cache : FrameCache, optional
        Where resliced frames are kept (default: a small private budget).
    volume_key : str
        Names the volume in ``frames[i].path`` (``mpr://VOLUME/VIEW``).
    """

    def __init__(
        self,
        volume: VolumeImage,
        reslicer: Reslicer,
        template: Dataset,
        spec: ReformatSpec,
        *,
        centre: Sequence[float] | None = None,
        lossy: bool = False,
        cache: FrameCache | None = None,
        volume_key: str = "volume",
    ) -> None:
        if spec.mode not in MODE_NAMES:
            raise ValueError(f"slab mode {spec.mode!r}: one of {tuple(MODE_NAMES)}")
        self.volume = volume
        self.reslicer = reslicer
        self.spec = spec
        self.uid = f"mpr:{volume_key}:{spec.view}:{next(_ids)}"
        self.path = f"mpr://{volume_key}/{spec.view}"
        self.cache = cache if cache is not None else FrameCache(64 * 1024 * 1024)
        #: Slabs made quickly at half resolution while set (see :meth:`decode`).
        self.draft = False
        self._lossy = bool(lossy)
        n = spec.normal
        self.normal = n
        self._x = np.asarray(spec.x_axis, float)
        self._y = np.asarray(spec.y_axis, float)
        c = np.asarray(centre if centre is not None else volume.centre_patient(), float)
        self._centre = c - n * float(np.dot(c, n))  # in-plane part; the normal part is per frame
        proj = volume.bounds_patient() @ n
        self.step_mm = step_along(volume, n)
        lo, hi = float(proj.min()), float(proj.max())
        self.count = int(math.floor((hi - lo) / self.step_mm + 1e-6)) + 1
        # axial families are shown head first, like FrameSource; others along their normal
        head_first = classify_orientation(spec.x_axis, spec.y_axis) == "axial"
        self._sign = -float(np.sign(n[2]) or 1.0) if head_first else 1.0
        self._first = hi if self._sign < 0 else lo
        self.loaded = np.ones(self.count, dtype=bool)
        self.volume_failures: tuple[tuple[str, str], ...] = ()
        self._base = reformat_header(template, spec, self.step_mm)
        self._headers: OrderedDict[int, Dataset] = OrderedDict()
        self._planes: dict[int, ImagePlane] = {}  # asked for several times per paint
        self._lock = threading.Lock()
        self.frames = _Frames(self)
        self.display_set = DisplaySet(
            uid=self.uid,
            series_uid=str(template.get("SeriesInstanceUID", "") or ""),
            label=spec.description(),
            kind="stack",
            frames=self.frames,  # type: ignore[arg-type] - a lazy sequence of FrameRef
            orientation=spec.orientation,
            is_localizer=False,
            notes=tuple(volume.notes),
            geometry_ok=True,
            geometry_problem=None,
            modality=str(template.get("Modality", "") or ""),
            series_number=None,
            study_uid=str(template.get("StudyInstanceUID", "") or ""),
        )
        fill = float(np.nanmin(volume.values)) if volume.values.size else 0.0
        self._fill = fill

    def __len__(self) -> int:
        return self.count

    # --- positions ------------------------------------------------------------------------------
    def position(self, i: int) -> float:
        """Signed position (mm) of frame ``i`` along :attr:`normal`."""
        return self._first + self._sign * i * self.step_mm

    def nearest_to(self, point: Sequence[float]) -> int:
        """The frame whose plane is closest to the patient ``point`` (clamped to the volume)."""
        d = float(np.dot(np.asarray(point, float).reshape(3), self.normal))
        i = round((d - self._first) / (self._sign * self.step_mm))
        return int(min(max(i, 0), self.count - 1))

    def reslice_plane(self, i: int) -> ReslicePlane:
        """The output plane of frame ``i``."""
        centre = self._centre + self.normal * self.position(i)
        return ReslicePlane(
            tuple(float(v) for v in centre),
            tuple(float(v) for v in self._x),
            tuple(float(v) for v in self._y),
            float(self.spec.pixel_mm),
            (int(self.spec.size[0]), int(self.spec.size[1])),
        )

    # --- FrameSource interface -------------------------------------------------------------------
    def plane(self, i: int) -> ImagePlane:
        made = self._planes.get(i)
        if made is not None:
            return made
        p = self.reslice_plane(i)
        cols, rows = p.size
        origin = np.asarray(p.pixel_to_patient(0.0, 0.0), float)
        made = ImagePlane(origin, self._x, self._y, (p.pixel_mm, p.pixel_mm), rows, cols)
        if len(self._planes) >= 1024:
            self._planes.clear()
        self._planes[i] = made
        return made

    def header(self, i: int) -> Dataset:
        """The synthetic header of frame ``i`` (position and instance number per frame)."""
        with self._lock:
            ds = self._headers.get(i)
            if ds is not None:
                self._headers.move_to_end(i)
                return ds
        ds = Dataset()
        ds.update(self._base)
        ds.file_meta = self._base.file_meta
        plane = self.plane(i)
        ds.ImagePositionPatient = [round(float(v), 4) for v in plane.origin]
        ds.InstanceNumber = i + 1
        with self._lock:
            self._headers[i] = ds
            while len(self._headers) > _HEADERS_KEPT:
                self._headers.popitem(last=False)
        return ds

    def frame_index(self, i: int) -> int:
        return 0

    def geometry(self, i: int) -> ImageGeometry:
        cols, rows = self.spec.size
        mm = float(self.spec.pixel_mm)
        return ImageGeometry(int(rows), int(cols), (mm, mm))

    def is_lossy(self, i: int) -> bool:
        return self._lossy

    def cached(self, i: int) -> FrameRenderer | None:
        """Frame ``i``'s renderer when already resliced (never blocks); while :attr:`draft`,
        the draft one when the full-quality one is not made yet."""
        r = self.cache.get((self.uid, i))
        if r is None and self.draft:
            r = self.cache.get((self.uid, "draft", i))
        return r

    def decode(self, i: int) -> FrameRenderer:
        """Reslice frame ``i`` (blocking: the decoder thread calls it).

        While :attr:`draft` is set (the user is moving through a slab reformat), a slab is
        made at half resolution and scaled back up (:meth:`Reslicer.reslice`'s ``preview``,
        about 3.5x faster) and kept apart from the full-quality frames, which are made once
        ``draft`` is cleared and the view asks again.
        """
        if not 0 <= i < self.count:
            raise IndexError(f"{self.path}: frame {i} of {self.count}")
        r = self.cached(i)
        if r is not None:
            return r
        draft = self.draft and self.spec.slab_mm > 0
        values = self.reslicer.reslice(
            self.reslice_plane(i), slab_mm=self.spec.slab_mm, mode=self.spec.mode, preview=draft
        )
        values = np.asarray(values, dtype=np.float32)
        outside = np.isnan(values)
        has_outside = bool(outside.any())
        if has_outside:
            if not values.flags.writeable:
                values = values.copy()
            values[outside] = self._fill
        values.flags.writeable = False
        r = FrameRenderer.from_values(
            self.header(i), 0, values, ModalityTransform(), (self.path, i), "reslice"
        )
        r.padding = outside if has_outside else None  # outside the volume: not in auto windows
        key = (self.uid, "draft", i) if draft else (self.uid, i)
        self.cache.put(key, r, r.nbytes + (outside.nbytes if has_outside else 0))
        return r

    def close(self) -> None:
        """Forget the frames this source resliced."""
        self.cache.discard_prefix(self.uid)


def reformat_header(template: Dataset, spec: ReformatSpec, step_mm: float) -> Dataset:
    """The header shared by every frame of a reformat (position and number are per frame).

    Patient, study, equipment, Frame of Reference and window come from ``template``; the plane
    (Image Orientation, Pixel Spacing, matrix), the slab as Slice Thickness and a Series
    Description beginning with ``MPR`` describe the reformat; values are modality values
    already (no rescale).
    """
    ds = Dataset()
    for keyword in _COPIED:
        if keyword in template:
            ds.add(template[keyword])
    ds.Modality = str(template.get("Modality", "OT") or "OT")
    original = str(template.get("SeriesDescription", "") or "").strip()
    ds.SeriesDescription = spec.description() + (f" · {original}" if original else "")
    ds.ImageType = ["DERIVED", "SECONDARY", "MPR"]
    ds.SamplesPerPixel = 1
    if "PhotometricInterpretation" not in ds:
        ds.PhotometricInterpretation = "MONOCHROME2"
    cols, rows = spec.size
    ds.Rows, ds.Columns = int(rows), int(cols)
    mm = round(float(spec.pixel_mm), 6)
    ds.PixelSpacing = [mm, mm]
    ds.ImageOrientationPatient = [round(float(v), 6) for v in (*spec.x_axis, *spec.y_axis)]
    ds.SliceThickness = round(float(spec.slab_mm if spec.slab_mm > 0 else step_mm), 3)
    ds.file_meta = Dataset()
    return ds


def volume_from_frame_source(source: FrameSource) -> VolumeImage:
    """The :class:`VolumeImage` of a loaded stack (blocking: call it off the GUI thread).

    Uses the volume the series loader filled when it is still in the cache.

    Raises
    ------
    ValueError
        When the display set is not a loaded volume of slices with geometry (the message says
        which).
    """
    ds = source.display_set
    if not ds.geometry_ok:
        raise ValueError(f"{ds.label}: cannot be reformatted: {ds.geometry_problem}")
    planes = [source.plane(i) for i in range(len(source))]
    if len(planes) < 2 or any(p is None for p in planes):
        raise ValueError(f"{ds.label}: a reformat needs at least two slices with a position")
    if source.volume_failures:
        path, why = source.volume_failures[0]
        raise ValueError(f"{ds.label}: {len(source.volume_failures)} slices failed ({path}: {why})")
    values = source.cache.get((source.uid, "volume"))
    if values is None or not source.loaded.all():
        raise ValueError(f"{ds.label}: the volume is not loaded (yet)")
    return build_volume_image(values, planes, modality=ds.modality)
