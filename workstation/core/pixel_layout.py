"""Where a file's uncompressed pixel values lie, known from a header read without its pixel data.

The viewer reads every header of a series to sort it (``read_header_records`` defers the pixel
data, so its file offset is known). A :class:`PixelLayout` carries that offset, the stored
value type and the modality transform to the loader's workers, which then read just the pixel
bytes into the volume: each file is read and parsed once, not parsed again by the loader.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from pydicom import uid as _uid
from pydicom.dataset import Dataset

from workstation.core.decoders import DecoderRegistry
from workstation.core.modality_lut import ModalityTransform, modality_transform
from workstation.core.raw_values import raw_int

NATIVE_SYNTAXES = (_uid.ExplicitVRLittleEndian, _uid.ImplicitVRLittleEndian)
_PIXEL_DATA = 0x7FE00010
# by tag: ``ds[tag]`` costs a quarter of ``ds.get(keyword)`` (the layout is asked for each slice)
_SAMPLES, _ROWS, _COLUMNS, _FRAMES = 0x00280002, 0x00280010, 0x00280011, 0x00280008
_BITS_ALLOCATED, _BITS_STORED, _PIXEL_REPRESENTATION = 0x00280100, 0x00280101, 0x00280103
_INTERCEPT, _SLOPE, _TYPE, _MODALITY = 0x00281052, 0x00281053, 0x00281054, 0x00080060
#: What makes :func:`modality_transform` look beyond the rescale attributes.
_TRANSFORM_ELSEWHERE = (0x00283000, 0x52009229, 0x52009230)  # Modality LUT, functional groups


@dataclass(frozen=True)
class PixelLayout:
    """The stored values of a single-frame, uncompressed, little endian greyscale file.

    Attributes
    ----------
    offset : int
        File offset of the first pixel byte (the value of (7FE0,0010)).
    dtype : str
        numpy type string of the stored values: ``'u1'``, ``'i1'``, ``'<u2'`` or ``'<i2'``.
    rows, cols : int
        The matrix.
    transform : ModalityTransform
        Stored values to modality values, as :func:`modality_transform` gives it for the file.
    """

    offset: int
    dtype: str
    rows: int
    cols: int
    transform: ModalityTransform

    @property
    def nbytes(self) -> int:
        """Bytes of pixel data to read."""
        return self.rows * self.cols * np.dtype(self.dtype).itemsize


def _value(ds: Dataset, tag: int) -> object:
    return ds[tag].value if tag in ds else None


def _raw(ds: Dataset, tag: int) -> object:
    """The element's value without converting it (bytes when not read yet), None when absent."""
    return ds.get_item(tag, keep_deferred=True).value if tag in ds else None


def _int(ds: Dataset, tag: int, default: int) -> int:
    fast = raw_int(ds, tag)  # a plain raw US or IS value: straight from its bytes
    if fast is not None:
        return fast
    value = _value(ds, tag)
    try:
        return default if value is None or value == "" else int(value)
    except (TypeError, ValueError):
        return -1


class _Transforms:
    """:func:`modality_transform` once per distinct rescale of a series, not once per slice."""

    def __init__(self) -> None:
        self._seen: dict[tuple, ModalityTransform] = {}

    def __call__(self, ds: Dataset) -> ModalityTransform:
        if any(tag in ds for tag in _TRANSFORM_ELSEWHERE):
            return modality_transform(ds, 0)
        # the raw bytes while they are raw: converting DS values costs more than the rest
        key = tuple(repr(_raw(ds, t)) for t in (_SLOPE, _INTERCEPT, _TYPE, _MODALITY))
        key += (int(_SAMPLES in ds and _int(ds, _SAMPLES, 1) != 1), _SLOPE in ds)
        found = self._seen.get(key)
        if found is None:
            found = self._seen[key] = modality_transform(ds, 0)
        return found


def pixel_layouts(
    headers: list[Dataset], registry: DecoderRegistry | None = None
) -> list[PixelLayout | None]:
    """:func:`pixel_layout` of each header (of one series: modality transforms are shared)."""
    layout = layout_reader(registry)
    return [layout(ds) for ds in headers]


def layout_reader(
    registry: DecoderRegistry | None = None,
) -> Callable[[Dataset], PixelLayout | None]:
    """:func:`pixel_layout` for one header at a time, the modality transforms of a series shared
    (for the headers of one series as they are read)."""
    transforms = _Transforms()
    return lambda ds: pixel_layout(ds, registry, transforms)


def pixel_layout(
    ds: Dataset,
    registry: DecoderRegistry | None = None,
    transforms: Callable[[Dataset], ModalityTransform] = lambda ds: modality_transform(ds, 0),
) -> PixelLayout | None:
    """The layout of ``ds``'s pixel data when a plain read of its bytes gives the stored values.

    Parameters
    ----------
    ds : Dataset
        A header read with the pixel data deferred (``read_dataset(path, header_only=True)``):
        the element's value must not have been read, so its file offset is known.
    registry : DecoderRegistry, optional
        When it prefers a decoder of its own for the file, None is returned (that decoder goes
        first, as in :class:`~workstation.core.series_loader.SeriesLoader`).
    transforms : callable, optional
        Gives the file's modality transform (:func:`pixel_layouts` shares them in a series).

    Returns
    -------
    PixelLayout or None
        None for compressed, big endian, colour, multi-frame, bit-packed or sign-extended data,
        a modality LUT, or a pixel data element that was read into memory or is too short.
    """
    meta = getattr(ds, "file_meta", None)
    ts = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if ts not in NATIVE_SYNTAXES or _PIXEL_DATA not in ds:
        return None
    if registry is not None and registry.preferred(ts, ds):
        return None
    raw = ds.get_item(_PIXEL_DATA, keep_deferred=True)
    value_tell = getattr(raw, "value_tell", None)
    if getattr(raw, "value", b"") is not None or value_tell is None:
        return None  # not a deferred element: the offset is unknown
    bits = _int(ds, _BITS_ALLOCATED, 0)
    signed = _int(ds, _PIXEL_REPRESENTATION, 0) == 1
    if bits not in (8, 16) or (signed and _int(ds, _BITS_STORED, 0) != bits):
        return None  # bit unpacking or sign extension: the loader's own path does it
    if _int(ds, _SAMPLES, 1) != 1 or _int(ds, _FRAMES, 1) != 1:
        return None
    rows, cols = _int(ds, _ROWS, 0), _int(ds, _COLUMNS, 0)
    if rows <= 0 or cols <= 0 or int(raw.length) < rows * cols * bits // 8:
        return None
    transform = transforms(ds)
    if transform.lut is not None:
        return None
    kind = "i" if signed else "u"
    dtype = f"{kind}1" if bits == 8 else f"<{kind}2"
    return PixelLayout(int(value_tell), dtype, rows, cols, transform)


def read_stored(path: str, layout: PixelLayout, out: np.ndarray | None = None) -> np.ndarray:
    """The stored values at ``layout`` in ``path``: read into ``out`` when given (its dtype and
    shape must be the layout's), else into a new array.

    Raises
    ------
    OSError
        When the file cannot be read or ends before the pixel data does.
    """
    dtype = np.dtype(layout.dtype)
    if out is None:
        out = np.empty((layout.rows, layout.cols), dtype)
    elif (
        out.dtype != dtype or out.shape != (layout.rows, layout.cols) or not out.flags.c_contiguous
    ):
        raise ValueError("out must be a contiguous array of the layout's type and shape")
    view = memoryview(out.reshape(-1).view(np.uint8))
    with open(path, "rb", buffering=0) as f:
        f.seek(layout.offset)
        got = 0
        while got < len(view):
            n = f.readinto(view[got:])
            if not n:
                raise OSError(f"the file ends {len(view) - got} bytes before its pixel data does")
            got += n
    return out
