"""Lazy access to one DICOM file: the header first, each frame decoded on demand.

``DicomFile.open`` parses the header only (pixel data is not read). ``frame(i)`` decodes frame
``i`` with the best decoder for the transfer syntax (see :mod:`workstation.core.decoders`) and
returns a frozen :class:`DecodedFrame` that records which decoder produced it.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from io import BytesIO
from typing import BinaryIO

import numpy as np
import pydicom
from pydicom import uid as _uid
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import pixel_array

from workstation.core.decoders import (
    LOSSY_SYNTAXES,
    DecoderRegistry,
    is_supported_by_pydicom,
    plugin_order,
)
from workstation.core.errors import (
    DecodeError,
    DicomReadError,
    NoPixelDataError,
    NotDicomError,
    TruncatedPixelDataError,
)
from workstation.core.lean_header import read_header_lean

log = logging.getLogger(__name__)

_DEFER = 4096
PIXEL_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_REQUIRED_PIXEL_MODULE = ("Rows", "Columns", "BitsAllocated", "SamplesPerPixel")


@dataclass(frozen=True)
class DecodedFrame:
    """One decoded frame: stored values (before the modality LUT), read-only.

    Attributes
    ----------
    key : tuple[str, int]
        (file path, frame index): lets a consumer drop a late answer for another frame.
    stored : numpy.ndarray
        (rows, cols) for grayscale, (rows, cols, 3) RGB for colour (YBR converted to RGB).
    decoder : str
        Which decoder produced the frame: ``native``, a pydicom plugin name, or a fallback.
    """

    key: tuple[str, int]
    stored: np.ndarray = field(repr=False)
    decoder: str


def _infer_transfer_syntax(ds: Dataset) -> str | None:
    """Guess the transfer syntax of a file without file meta from how pydicom parsed it."""
    encoding = getattr(ds, "original_encoding", None)
    if not encoding or encoding[0] is None:
        return None
    implicit, little = encoding
    if implicit and little:
        return _uid.ImplicitVRLittleEndian
    if not implicit and little:
        return _uid.ExplicitVRLittleEndian
    if not implicit and not little:
        return _uid.ExplicitVRBigEndian
    return None


def _has_standard_elements(ds: Dataset) -> bool:
    """True when a file without preamble holds identifying elements a DICOM object must have."""
    return any(t.group in (0x0008, 0x0010, 0x0020, 0x0028) and t.element != 0 for t in ds.keys())


def _raise_if_truncated_pixels(path: str, source: str | BinaryIO | None = None) -> None:
    """pydicom returns an empty dataset when a file ends inside encapsulated pixel data; tell that
    apart from a non-DICOM file by reading the header alone."""
    source = path if source is None else source
    try:
        if not isinstance(source, str):
            source.seek(0)
        header = pydicom.dcmread(source, stop_before_pixels=True, force=True)
    except Exception:
        return
    if len(header) and (header.get("preamble") is not None or _has_standard_elements(header)):
        size = os.path.getsize(source) if isinstance(source, str) else source.seek(0, 2)
        raise TruncatedPixelDataError(
            path,
            f"pixel data truncated: the file ({size} bytes) ends inside its encapsulated pixel "
            "data, before the sequence delimiter",
            header,
        )


def read_dataset(
    path: str | os.PathLike[str] | BinaryIO,
    *,
    header_only: bool,
    name: str = "",
    try_lean: bool = True,
) -> tuple[Dataset, bool]:
    """Read a file with pydicom, tolerating a missing preamble or file meta.

    ``path`` may also be a seekable binary buffer (a file received over the network, still in
    memory); ``name`` then says what it is in error messages. ``header_only`` reads take the
    lean reader first (:func:`~workstation.core.lean_header.read_header_lean`, the same Dataset
    for the usual file); ``try_lean=False`` when the caller has tried it already.

    Returns the dataset and whether the transfer syntax had to be inferred.

    Raises
    ------
    NotDicomError
        When the file is not DICOM.
    TruncatedPixelDataError
        When the header is intact but the file ends inside the pixel data (carries the header).
    DicomReadError
        When the header cannot be parsed.
    """
    source: str | BinaryIO
    if isinstance(path, str | os.PathLike):
        source = path = os.fspath(path)
    else:
        source, path = path, name or getattr(path, "name", "") or "<in memory>"
    ds = _read_lean(source) if header_only and try_lean else None
    try:
        # header_only: large values (pixel data among them) are left on disk until accessed, so
        # the pixel element's presence is known without reading its bytes.
        if ds is None:
            ds = pydicom.dcmread(source, defer_size=_DEFER if header_only else None, force=True)
    except InvalidDicomError as exc:
        raise NotDicomError(path, f"not a DICOM file ({exc})") from exc
    except (OSError, EOFError) as exc:
        raise DicomReadError(path, f"cannot read the file: {exc}") from exc
    except Exception as exc:  # pydicom raises many kinds on damaged headers
        raise DicomReadError(path, f"damaged DICOM header: {type(exc).__name__}: {exc}") from exc
    if len(ds) == 0:
        _raise_if_truncated_pixels(path, source)
        raise NotDicomError(path, "not a DICOM file (empty, or truncated before the first element)")
    if getattr(ds, "preamble", None) is None and not _has_standard_elements(ds):
        raise NotDicomError(path, "not a DICOM file (no preamble and no standard DICOM elements)")
    inferred = False
    if "TransferSyntaxUID" not in getattr(ds, "file_meta", Dataset()):
        guessed = _infer_transfer_syntax(ds)
        if guessed is None:
            raise DicomReadError(
                path, "no transfer syntax in the file meta and none can be inferred"
            )
        if not hasattr(ds, "file_meta") or ds.file_meta is None:
            ds.file_meta = pydicom.dataset.FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = guessed
        inferred = True
    return ds, inferred


def _read_lean(source: str | BinaryIO) -> Dataset | None:
    """The header by :func:`~workstation.core.lean_header.read_header_lean` (the same Dataset
    at a third of the cost) for a path or an in-memory file of the plain kind; None otherwise,
    the in-memory file rewound for pydicom's general reader."""
    if not isinstance(source, str | BytesIO):
        return None
    try:
        ds = read_header_lean(source, _DEFER)
    except Exception:  # unreadable or damaged: the general reader says what is wrong
        ds = None
    if ds is None and isinstance(source, BytesIO):
        source.seek(0)
    return ds


class DicomFile:
    """One DICOM file, opened lazily.

    Parameters
    ----------
    path : str
        The file.
    header : pydicom.dataset.Dataset
        The header (large values such as pixel data not yet read).
    registry : DecoderRegistry
        Fallback decoders tried after pydicom's plugins.
    transfer_syntax_inferred : bool
        True when the file has no file meta and the syntax was guessed.
    """

    def __init__(
        self,
        path: str,
        header: Dataset,
        registry: DecoderRegistry | None = None,
        transfer_syntax_inferred: bool = False,
    ) -> None:
        self.path = path
        self.header = header
        self.registry = registry or DecoderRegistry()
        self.transfer_syntax_inferred = transfer_syntax_inferred
        self._full: Dataset | None = None
        self._lock = threading.Lock()
        self._last_decoder: str | None = None
        #: What was repaired in the header to decode it (reported by ``workstation info``).
        self.repairs: list[str] = []
        #: Set when the file ends inside its pixel data.
        self.truncated: TruncatedPixelDataError | None = None

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], registry: DecoderRegistry | None = None
    ) -> DicomFile:
        """Parse the header of ``path`` (large values such as pixel data stay on disk).

        A file whose pixel data is cut short still opens (its header is listed); decoding any
        of its frames then raises :class:`TruncatedPixelDataError`.
        """
        try:
            header, inferred = read_dataset(path, header_only=True)
        except TruncatedPixelDataError as exc:
            f = cls(os.fspath(path), exc.header, registry, False)
            f.truncated = exc
            return f
        return cls(os.fspath(path), header, registry, inferred)

    # --- header facts -------------------------------------------------------------------------
    @property
    def transfer_syntax(self) -> str:
        return str(self.header.file_meta.TransferSyntaxUID)

    @property
    def has_pixels(self) -> bool:
        return self.truncated is not None or any(t in self.header for t in PIXEL_TAGS)

    @property
    def number_of_frames(self) -> int:
        ds = self._full if self._full is not None else self.header
        try:
            return max(1, int(ds.get("NumberOfFrames", 1) or 1))
        except (TypeError, ValueError):
            return 1

    @property
    def is_lossy(self) -> bool:
        """True when the pixels are, or once were, lossy-compressed."""
        if str(self.header.get("LossyImageCompression", "00")).strip() == "01":
            return True
        return self.transfer_syntax in LOSSY_SYNTAXES

    @property
    def is_color(self) -> bool:
        return int(self.header.get("SamplesPerPixel", 1) or 1) > 1 or str(
            self.header.get("PhotometricInterpretation", "")
        ).startswith("PALETTE")

    @property
    def last_decoder(self) -> str | None:
        """The decoder that produced the most recent frame."""
        return self._last_decoder

    # --- pixels -----------------------------------------------------------------------------------
    def dataset(self) -> Dataset:
        """The whole dataset including pixel data (read once, then kept)."""
        if self.truncated is not None:
            raise self.truncated
        with self._lock:
            if self._full is None:
                full, _ = read_dataset(self.path, header_only=False)
                if self.transfer_syntax_inferred:
                    full.file_meta.TransferSyntaxUID = self.transfer_syntax
                self.repairs = repair_pixel_module(full)
                for note in self.repairs:
                    log.warning("%s: %s", self.path, note)
                self._full = full
            return self._full

    def release(self) -> None:
        """Forget the cached dataset (the header stays)."""
        with self._lock:
            self._full = None

    def frame(self, index: int = 0) -> DecodedFrame:
        """Decode frame ``index`` (0-based) to stored values.

        Raises
        ------
        NoPixelDataError
            When the object has no pixel data.
        DecodeError
            When every decoder failed; the message lists why each failed.
        """
        ds = self.dataset()
        if not any(t in ds for t in PIXEL_TAGS):
            raise NoPixelDataError(self.path, f"no pixel data ({_sop_name(ds)})")
        missing = [k for k in _REQUIRED_PIXEL_MODULE if k not in ds]
        if missing:
            raise DecodeError(self.path, f"pixel module incomplete: missing {', '.join(missing)}")
        nframes = self.number_of_frames
        if not 0 <= index < nframes:
            raise IndexError(f"{self.path}: frame {index} out of range (0..{nframes - 1})")
        arr, decoder = self._decode(ds, index)
        arr.flags.writeable = False
        self._last_decoder = decoder
        return DecodedFrame(key=(self.path, index), stored=arr, decoder=decoder)

    def _decode(self, ds: Dataset, index: int) -> tuple[np.ndarray, str]:
        ts = self.transfer_syntax
        errors: list[str] = []
        first = self.registry.preferred(ts, ds)
        for fallback in first:
            try:
                return fallback.decode(self.path, index, ds), fallback.name
            except Exception as exc:
                errors.append(f"{fallback.name}: {_short(exc)}")
        plugins = plugin_order(ts)
        if not plugins and is_supported_by_pydicom(ts):
            try:
                return _single(pixel_array(ds, index=index)), "native"
            except Exception as exc:
                errors.append(f"native: {_short(exc)}")
        for plugin in plugins:
            try:
                return _single(pixel_array(ds, index=index, decoding_plugin=plugin)), plugin
            except Exception as exc:
                errors.append(f"{plugin}: {_short(exc).removeprefix(plugin + ': ')}")
        for fallback in self.registry.fallbacks:
            if fallback in first:
                continue
            try:
                return fallback.decode(self.path, index, ds), fallback.name
            except Exception as exc:
                errors.append(f"{fallback.name}: {_short(exc)}")
        ts_name = getattr(_uid.UID(ts), "name", ts)
        if not errors:
            errors.append("no decoder is installed for this transfer syntax")
        raise DecodeError(self.path, f"cannot decode {ts_name}: " + "; ".join(errors))


def repair_pixel_module(ds: Dataset) -> list[str]:
    """Fill in what old or damaged files omit from the Image Pixel module, where it is unambiguous.

    Returns one note per repair. Only repairs with a single sensible answer are made: a missing
    Samples per Pixel or Photometric Interpretation on a one-sample image (ACR-NEMA era files),
    a missing Pixel Representation (unsigned), and an unreadable Number of Frames that the length
    of uncompressed pixel data determines.
    """
    notes: list[str] = []
    if "PixelData" not in ds or "Rows" not in ds or "Columns" not in ds:
        return notes
    if "SamplesPerPixel" not in ds:
        ds.SamplesPerPixel = 1
        notes.append("Samples per Pixel missing: assumed 1")
    if "PhotometricInterpretation" not in ds and ds.SamplesPerPixel == 1:
        ds.PhotometricInterpretation = "MONOCHROME2"
        notes.append("Photometric Interpretation missing: assumed MONOCHROME2")
    if "PixelRepresentation" not in ds:
        ds.PixelRepresentation = 0
        notes.append("Pixel Representation missing: assumed unsigned")
    if "NumberOfFrames" in ds:
        try:
            int(ds.NumberOfFrames)
        except (TypeError, ValueError):
            raw = ds["NumberOfFrames"].value
            elem = ds["PixelData"]
            frame_bytes = (
                int(ds.Rows)
                * int(ds.Columns)
                * int(ds.SamplesPerPixel)
                * int(ds.BitsAllocated)
                // 8
            )
            if not elem.is_undefined_length and frame_bytes and len(elem.value) % frame_bytes == 0:
                ds.NumberOfFrames = len(elem.value) // frame_bytes
                notes.append(
                    f"Number of Frames {raw!r} is not a number: {ds.NumberOfFrames} frames "
                    "taken from the length of the pixel data"
                )
    return notes


def _single(arr: np.ndarray) -> np.ndarray:
    """pydicom returns (rows, cols[, samples]) for one frame; copy so the frame owns its memory."""
    return np.ascontiguousarray(arr)


def _short(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    if len(lines) > 1 and lines[0].startswith("Unable to decode as exceptions were raised"):
        lines = lines[1:]  # pydicom's wrapper line; the plugin's own reason follows
    return (" / ".join(lines) if lines else type(exc).__name__)[:200]


def _sop_name(ds: Dataset) -> str:
    sop = ds.get("SOPClassUID")
    return getattr(sop, "name", str(sop)) if sop else "unknown SOP class"
