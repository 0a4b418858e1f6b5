"""The display pipeline: stored values -> modality -> VOI -> presentation -> 8-bit grey or RGB.

One code path serves the viewer and ``workstation render``. :class:`FrameRenderer` keeps the
per-frame work (decode, modality transform, padding mask) so that re-windowing touches only the
VOI step, into preallocated buffers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import apply_color_lut
from pydicom.uid import ExplicitVRLittleEndian

from workstation.core.dicom_file import DicomFile
from workstation.core.errors import DicomError, RenderError
from workstation.core.modality_lut import (
    ModalityTransform,
    modality_transform,
    padding_in_values,
    padding_mask,
)
from workstation.core.overlays import OverlayPlane, burn_in, overlay_planes
from workstation.core.voi import (
    Voi,
    VoiLut,
    Window,
    apply_voi_lut,
    apply_window,
    minmax_window,
    voi_choices,
)


@dataclass(frozen=True)
class RenderedImage:
    """A display-ready frame: uint8 (rows, cols) grey or (rows, cols, 3) RGB."""

    key: tuple[str, int]
    pixels: np.ndarray = field(repr=False)
    voi: Voi | None
    inverted: bool
    decoder: str
    overlays: tuple[int, ...] = ()


def is_inverted_by_file(ds: Dataset) -> bool:
    """Whether the file asks for low values to be shown bright.

    MONOCHROME1 inverts. On MONOCHROME2, a Presentation LUT Shape of INVERSE inverts. On
    MONOCHROME1 an INVERSE shape is what PS3.3 C.8.11.6 requires of DX images and states the
    same inversion; it does not undo it.
    """
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    shape = str(ds.get("PresentationLUTShape", "IDENTITY") or "IDENTITY").strip().upper()
    if photometric == "MONOCHROME1":
        return True
    return shape == "INVERSE"


_PALETTE_KEYWORDS = tuple(
    f"{c}PaletteColorLookupTable{part}"
    for c in ("Red", "Green", "Blue")
    for part in ("Descriptor", "Data")
) + tuple(f"Segmented{c}PaletteColorLookupTableData" for c in ("Red", "Green", "Blue"))


def _palette_source(ds: Dataset) -> Dataset:
    """The palette attributes in little-endian form.

    pydicom's ``apply_color_lut`` reads OW LUT data as little endian whatever the transfer
    syntax; in Explicit VR Big Endian files the words must be swapped first (DCMTK does).
    """
    if ds.file_meta.get("TransferSyntaxUID") != "1.2.840.10008.1.2.2":
        return ds
    out = Dataset()
    out.file_meta = FileMetaDataset()
    out.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out.PhotometricInterpretation = ds.PhotometricInterpretation
    for keyword in _PALETTE_KEYWORDS:
        if keyword not in ds:
            continue
        value = ds[keyword].value
        if keyword.endswith("Data") and isinstance(value, (bytes, bytearray)):
            value = np.frombuffer(value, ">u2").astype("<u2").tobytes()
        setattr(out, keyword, value)
    return out


def _color_to_rgb8(ds: Dataset, stored: np.ndarray) -> np.ndarray:
    photometric = str(ds.get("PhotometricInterpretation", "")).strip()
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(stored, _palette_source(ds))
        desc = ds.get("RedPaletteColorLookupTableDescriptor")
        bits = int(desc[2]) if desc is not None else (16 if rgb.max() > 255 else 8)
        if bits > 8 or rgb.max() > 255:
            return (rgb.astype(np.uint32) >> 8).astype(np.uint8)
        return rgb.astype(np.uint8)
    bits = int(ds.get("BitsStored", 8) or 8)
    if stored.dtype == np.uint8 or bits <= 8:
        return stored.astype(np.uint8, copy=False)
    return np.clip(np.rint(stored.astype(np.float32) * (255.0 / (2**bits - 1))), 0, 255).astype(
        np.uint8
    )


class FrameRenderer:
    """Renders one frame of one file; cheap to re-render with another window.

    Parameters
    ----------
    dicom_file : DicomFile
        The opened file.
    frame_index : int
        0-based frame.
    """

    def __init__(self, dicom_file: DicomFile, frame_index: int = 0) -> None:
        try:
            self._prepare(dicom_file, frame_index)
        except (DicomError, IndexError):
            raise
        except Exception as exc:  # a damaged attribute deep in a LUT, say: name the file
            raise RenderError(
                dicom_file.path, f"cannot prepare frame {frame_index}: {type(exc).__name__}: {exc}"
            ) from exc

    def _prepare(self, dicom_file: DicomFile, frame_index: int) -> None:
        self.file = dicom_file
        self.frame_index = frame_index
        frame = dicom_file.frame(frame_index)
        self.decoder = frame.decoder
        self.key = frame.key
        ds = dicom_file.dataset()
        self.ds = ds
        stored = frame.stored
        self.is_color = stored.ndim == 3 or str(ds.get("PhotometricInterpretation", "")).startswith(
            "PALETTE"
        )
        self.shape = stored.shape[:2]
        self.overlay_planes: list[OverlayPlane] = overlay_planes(ds, frame_index, self.shape)
        if self.is_color:
            self.rgb = _color_to_rgb8(ds, stored)
            self.transform = ModalityTransform()
            self.modality = None
            self.padding = None
            self.choices: list[Voi] = []
            return
        self.transform = modality_transform(ds, frame_index)
        self.modality = self.transform.apply(stored)
        self.modality.flags.writeable = False
        self.padding = padding_mask(ds, stored)
        self.choices = voi_choices(ds, frame_index)
        self._scratch: np.ndarray | None = None

    @classmethod
    def from_values(
        cls,
        ds: Dataset,
        frame_index: int,
        values: np.ndarray,
        transform: ModalityTransform,
        key: tuple[str, int],
        decoder: str,
    ) -> FrameRenderer:
        """A renderer over modality values decoded elsewhere (a slice of a loaded volume).

        ``ds`` is the frame's header (pixel data not needed; overlays in 60xx groups are drawn,
        bits embedded in the pixel data are not available here); ``values`` is kept, not copied.
        """
        self = cls.__new__(cls)
        self.file = None
        self.frame_index = frame_index
        self.decoder = decoder
        self.key = key
        self.ds = ds
        self.is_color = False
        self.shape = values.shape[:2]
        try:
            self.overlay_planes = overlay_planes(ds, frame_index, self.shape)
        except Exception:  # an overlay that needs the pixel data: not drawn on this path
            self.overlay_planes = []
        self.transform = transform
        self.modality = values
        self._lazy_padding = (ds, values, transform)  # built on first use (min-max, auto window)
        self.choices = voi_choices(ds, frame_index)
        self._scratch = None
        return self

    @property
    def padding(self) -> np.ndarray | None:
        """True where the pixel is padding (Pixel Padding Value / Range Limit), else None."""
        lazy = self.__dict__.get("_lazy_padding")
        if lazy is not None:
            self.__dict__["_padding"] = padding_in_values(*lazy)
            self.__dict__["_lazy_padding"] = None
        return self.__dict__.get("_padding")

    @padding.setter
    def padding(self, value: np.ndarray | None) -> None:
        self.__dict__["_padding"] = value
        self.__dict__["_lazy_padding"] = None

    @property
    def nbytes(self) -> int:
        """Memory held by this renderer's own arrays (a volume slice it views counts as 0)."""
        if self.is_color:
            return int(self.rgb.nbytes)
        own = self.modality.nbytes if self.modality.base is None else 0
        mask = self.__dict__.get("_padding")
        return int(own + (mask.nbytes if mask is not None else 0))

    @property
    def inverted_by_file(self) -> bool:
        return not self.is_color and is_inverted_by_file(self.ds)

    def default_voi(self) -> Voi | None:
        """The file's first window, else its first VOI LUT, else min-max without padding."""
        if self.is_color:
            return None
        if self.choices:
            return self.choices[0]
        return minmax_window(self.modality, self.padding)

    def render(
        self,
        voi: Voi | None = None,
        invert: bool = False,
        overlays: bool = True,
        out: np.ndarray | None = None,
        scratch: np.ndarray | None = None,
    ) -> RenderedImage:
        """Render with ``voi`` (default: :meth:`default_voi`); ``invert`` toggles the file's polarity.

        ``out`` may be a preallocated uint8 buffer of the image shape (and ``scratch`` a float32
        one); when omitted the returned pixels are a fresh array the caller owns.
        """
        if self.is_color:
            pixels = self.rgb.copy()
            inverted = invert
            if invert:
                np.subtract(255, pixels, out=pixels)
            used: Voi | None = None
        else:
            used = voi if voi is not None else self.default_voi()
            target = out if out is not None else np.empty(self.shape, np.uint8)
            if isinstance(used, VoiLut):
                apply_voi_lut(self.modality, used, out=target)
            else:
                if scratch is None:
                    if self._scratch is None:
                        self._scratch = np.empty(self.shape, np.float32)
                    scratch = self._scratch
                apply_window(self.modality, used, out=target, scratch=scratch)
            inverted = self.inverted_by_file != invert
            if inverted:
                np.subtract(255, target, out=target)
            pixels = target
        shown: tuple[int, ...] = ()
        if overlays and self.overlay_planes:
            burn_in(pixels, self.overlay_planes)
            shown = tuple(p.group for p in self.overlay_planes)
        return RenderedImage(self.key, pixels, used, inverted, self.decoder, shown)


def render_frame(
    dicom_file: DicomFile,
    frame_index: int = 0,
    window: tuple[float, float] | None = None,
    voi_index: int | None = None,
    invert: bool = False,
    overlays: bool = True,
) -> RenderedImage:
    """Render one frame the way the viewer shows it (no annotations).

    ``window`` (centre, width) overrides the file's VOI; ``voi_index`` picks one of the file's
    VOIs (windows first, then VOI LUTs).
    """
    renderer = FrameRenderer(dicom_file, frame_index)
    voi: Voi | None = None
    if window is not None:
        voi = Window(float(window[0]), float(window[1]), "LINEAR", "user")
    elif voi_index is not None:
        if not 0 <= voi_index < len(renderer.choices):
            raise IndexError(
                f"{dicom_file.path}: VOI {voi_index} does not exist "
                f"({len(renderer.choices)} in the file)"
            )
        voi = renderer.choices[voi_index]
    return renderer.render(voi=voi, invert=invert, overlays=overlays)
