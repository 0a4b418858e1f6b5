"""Small synthetic DICOM datasets with exactly known pixel values."""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid


def image_dataset(
    stored: np.ndarray,
    *,
    bits_stored: int | None = None,
    signed: bool | None = None,
    photometric: str = "MONOCHROME2",
    modality: str = "CT",
    **attrs,
) -> FileDataset:
    """A single-frame grayscale image whose pixel data is exactly ``stored``."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("synthetic.dcm", Dataset(), file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = stored.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = int(stored.dtype.kind == "i" if signed is None else signed)
    ds.PixelData = np.ascontiguousarray(stored).tobytes()
    for key, value in attrs.items():
        setattr(ds, key, value)
    return ds


def save(ds: FileDataset, path) -> str:
    ds.save_as(path, enforce_file_format=True)
    return str(path)
