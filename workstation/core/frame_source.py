"""The frames of one display set as a viewport scrolls them: headers, planes and renderers.

A :class:`FrameSource` is shared by every viewport showing the same display set. Frames come from
two places, both kept in a :class:`~workstation.core.frame_cache.FrameCache` (the memory budget):

* a **volume** filled in the background by
  :class:`~workstation.core.series_loader.SeriesLoader` (stacks of single-frame greyscale files of
  one matrix size: CT, MR, PET...); :meth:`FrameSource.slice_arrived` marks each slice as it lands;
* **per-frame decoding** (:meth:`FrameSource.decode`, blocking: call it off the GUI thread) for
  everything else (multi-frame, colour, single images) and for a slice the volume has not reached.

Display order: axial stacks are shown head first (the order they are read in; the display set is
sorted feet to head along the normal); other orientations keep the display set's order.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping

import numpy as np
from pydicom.dataset import Dataset

from workstation.core.calibration import calibration_for
from workstation.core.decoders import DecoderRegistry
from workstation.core.dicom_file import LOSSY_SYNTAXES, DicomFile, read_dataset
from workstation.core.display_sets import DisplaySet, FrameRef
from workstation.core.frame_cache import FrameCache
from workstation.core.geometry import ImagePlane
from workstation.core.modality_lut import modality_transform
from workstation.core.pipeline import FrameRenderer
from workstation.core.pixel_layout import PixelLayout, pixel_layouts
from workstation.core.view_state import ImageGeometry

_COLOR_PHOTOMETRIC = ("RGB", "YBR", "PALETTE")
_SAMPLES, _PHOTOMETRIC, _ROWS, _COLUMNS = 0x00280002, 0x00280004, 0x00280010, 0x00280011


def image_geometry(ds: Dataset, frame_index: int | None) -> ImageGeometry:
    """Size and calibration of an image (frame) for the display transform: the calibrated pixel
    spacing when there is one, else Pixel Aspect Ratio for the shape of the pixels."""
    cal = calibration_for(ds, frame_index)
    spacing = (cal.row_mm, cal.col_mm) if cal.calibrated else None
    aspect = (1.0, 1.0)
    par = ds.get("PixelAspectRatio")
    if par is not None and spacing is None:
        try:
            v, h = float(par[0]), float(par[1])
            if v > 0 and h > 0:
                aspect = (v, h)
        except (TypeError, ValueError, IndexError):
            pass
    return ImageGeometry(int(ds.Rows), int(ds.Columns), spacing, aspect)


class FrameSource:
    """One display set, ready for viewports.

    Parameters
    ----------
    display_set : DisplaySet
        The sorted frames.
    headers : mapping of path to Dataset
        Headers already read (``read_header_records``); missing ones are read on demand.
    cache : FrameCache
        The memory budget shared by every source.
    registry : DecoderRegistry, optional
        Fallback decoders for :class:`~workstation.core.dicom_file.DicomFile`.
    """

    def __init__(
        self,
        display_set: DisplaySet,
        headers: Mapping[str, Dataset],
        cache: FrameCache,
        registry: DecoderRegistry | None = None,
    ) -> None:
        frames = list(display_set.frames)
        if display_set.orientation == "axial" and display_set.geometry_ok:
            frames.reverse()
        self.display_set = display_set
        self.frames: tuple[FrameRef, ...] = tuple(frames)
        self.uid = display_set.uid
        self.cache = cache
        self.registry = registry or DecoderRegistry()
        self._headers = dict(headers)
        self._files: dict[str, DicomFile] = {}
        self._lock = threading.Lock()
        #: Frames that can be shown without waiting (the scroll bar draws it).
        self.loaded = np.zeros(len(frames), dtype=bool)
        self._in_volume = np.zeros(len(frames), dtype=bool)
        self._volume_ref: weakref.ref | None = None
        self._geometry: dict[int, ImageGeometry] = {}
        self.volume_failures: tuple[tuple[str, str], ...] = ()
        self._volume_size: tuple[int, int] | None = None  # (0, 0): cannot be one volume
        self._layouts: list[PixelLayout | None] | None = None

    def __len__(self) -> int:
        return len(self.frames)

    # --- header facts -------------------------------------------------------------------------
    def header(self, i: int) -> Dataset:
        """The header of frame ``i``'s file (no pixel data)."""
        path = self.frames[i].path
        ds = self._headers.get(path)
        if ds is None:
            ds, _ = read_dataset(path, header_only=True)
            self._headers[path] = ds
        return ds

    def plane(self, i: int) -> ImagePlane | None:
        return self.frames[i].plane

    def frame_index(self, i: int) -> int:
        """The frame number inside the file (0 for single-frame files)."""
        return self.frames[i].frame_index or 0

    def geometry(self, i: int) -> ImageGeometry:
        """Size and calibration of frame ``i`` for the display transform (worked out once: it is
        asked for on every paint)."""
        geo = self._geometry.get(i)
        if geo is None:
            geo = self._geometry[i] = self._work_out_geometry(i)
        return geo

    def _work_out_geometry(self, i: int) -> ImageGeometry:
        return image_geometry(self.header(i), self.frames[i].frame_index)

    def is_lossy(self, i: int) -> bool:
        """Whether frame ``i`` is (or once was) lossy compressed."""
        ds = self.header(i)
        if str(ds.get("LossyImageCompression", "00")).strip() == "01":
            return True
        meta = getattr(ds, "file_meta", None)
        ts = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
        return ts in LOSSY_SYNTAXES

    def nearest_to(self, point: np.ndarray) -> int | None:
        """The frame whose plane is closest to the patient ``point`` (None without geometry)."""
        best, best_d = None, np.inf
        for i, f in enumerate(self.frames):
            if f.plane is None:
                continue
            d = abs(float(np.dot(np.asarray(point) - f.plane.origin, f.plane.normal)))
            if d < best_d:
                best, best_d = i, d
        return best

    # --- the volume path ------------------------------------------------------------------------
    def volume_paths(self) -> list[str] | None:
        """The files to load as one volume, in display order; None when this set cannot be one.

        A volume needs single-frame greyscale files of one matrix size without overlay bits in
        the pixel data, and must fit the memory budget.
        """
        if self._volume_size is None:
            self._volume_size = self._common_size()
        rows, cols = self._volume_size
        if not rows or not self.cache.fits(len(self.frames) * rows * cols * 2):
            return None
        return [f.path for f in self.frames]

    def _common_size(self) -> tuple[int, int]:
        """The one matrix size of a set that can be a volume, else (0, 0) (worked out once)."""
        if len(self.frames) < 2 or any(f.frame_index is not None for f in self.frames):
            return 0, 0
        sizes = set()
        for i in range(len(self.frames)):
            ds = self.header(i)  # by tag: a quarter of the cost of ds.get(keyword), per slice
            photometric = str(ds[_PHOTOMETRIC].value if _PHOTOMETRIC in ds else "").upper()
            samples = ds[_SAMPLES].value if _SAMPLES in ds else 1
            if int(samples or 1) != 1 or photometric.startswith(_COLOR_PHOTOMETRIC):
                return 0, 0
            keys = ds.keys()
            if any(t.group & 0xFF01 == 0x6000 and t.element == 0x0102 for t in keys):
                if not any(t.group & 0xFF01 == 0x6000 and t.element == 0x3000 for t in keys):
                    return 0, 0  # overlay bits live in the pixel data
            rows = ds[_ROWS].value if _ROWS in ds else 0
            cols = ds[_COLUMNS].value if _COLUMNS in ds else 0
            sizes.add((int(rows or 0), int(cols or 0)))
        return sizes.pop() if len(sizes) == 1 else (0, 0)

    def volume_layouts(self) -> list[PixelLayout | None]:
        """Where each frame's uncompressed pixels lie in its file, in display order (None for a
        frame whose file must be decoded): the loader then reads the files without parsing them
        again. Only for headers read with the pixel data deferred (as the viewer reads them)."""
        if self._layouts is None:
            headers = [self.header(i) for i in range(len(self.frames))]
            self._layouts = pixel_layouts(headers, self.registry)
        return list(self._layouts)

    def slice_arrived(self, volume: np.ndarray, i: int) -> None:
        """Called (from the loading thread) when ``volume[i]`` holds frame ``i``'s values."""
        with self._lock:
            current = self._volume_ref() if self._volume_ref is not None else None
            if current is not volume:
                self.cache.put((self.uid, "volume"), volume, volume.nbytes)
                self._volume_ref = weakref.ref(volume)
            # frame i's own renderer is superseded by the volume's slice now, and not before:
            # the frame a viewport shows stays cached while the rest of the volume arrives
            self.cache.discard((self.uid, i))
            self._in_volume[i] = True
            self.loaded[i] = True

    def volume_done(self, failures: tuple[tuple[str, str], ...]) -> None:
        """The load finished; slices that failed are decoded per frame (and fail visibly)."""
        bad = {p for p, _ in failures}
        self.volume_failures = failures
        for i, f in enumerate(self.frames):
            if f.path in bad:
                self._in_volume[i] = False
                self.loaded[i] = False

    def _volume(self) -> np.ndarray | None:
        vol = self.cache.get((self.uid, "volume"))
        if vol is None and self._in_volume.any():
            self.loaded[self._in_volume] = False  # evicted: back to per-frame decoding
            self._in_volume[:] = False
        return vol

    # --- renderers -------------------------------------------------------------------------------
    def cached(self, i: int) -> FrameRenderer | None:
        """Frame ``i``'s renderer if it can be had without decoding (never blocks on disk)."""
        r = self.cache.get((self.uid, i))
        if r is not None:
            return r
        if self._in_volume[i]:
            vol = self._volume()
            if vol is not None:
                ds = self.header(i)
                fi = self.frame_index(i)
                r = FrameRenderer.from_values(
                    ds, fi, vol[i], modality_transform(ds, fi), (self.frames[i].path, fi), "loader"
                )
                self.cache.put((self.uid, i), r, r.nbytes + 4096)
                return r
        return None

    def decode(self, i: int) -> FrameRenderer:
        """Frame ``i``'s renderer, decoding it if needed (blocking: not on the GUI thread).

        Raises
        ------
        DicomError
            When the frame cannot be read or decoded (the message names the file).
        """
        r = self.cached(i)
        if r is not None:
            return r
        ref = self.frames[i]
        with self._lock:
            f = self._files.get(ref.path)
            if f is None:
                f = DicomFile.open(ref.path, self.registry)
                if ref.frame_index is not None:
                    self._files[ref.path] = f  # multi-frame: keep the parsed file
        r = FrameRenderer(f, ref.frame_index or 0)
        if ref.frame_index is None:
            f.release()
        self.cache.put((self.uid, i), r, r.nbytes + 4096)
        self.loaded[i] = True
        return r

    def close(self) -> None:
        """Forget everything this source holds in the cache."""
        self.cache.discard((self.uid, "volume"))
        self.cache.discard_prefix(self.uid)
        self._files.clear()
