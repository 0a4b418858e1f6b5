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


_ORIENTATIONS = {
    "axial": ((1, 0, 0), (0, 1, 0)),
    "coronal": ((1, 0, 0), (0, 0, -1)),
    "sagittal": ((0, 1, 0), (0, 0, -1)),
}


def stack_files(
    folder,
    orientation: str = "axial",
    n: int = 10,
    rows: int = 32,
    cols: int = 32,
    spacing: float = 2.0,
    pixel_mm: float = 1.0,
    for_uid: str | None = None,
    study_uid: str | None = None,
    series_number: int = 1,
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> list[str]:
    """A series of ``n`` CT slices through a cube centred on the origin (plus ``offset``, mm),
    one file each.

    Slice ``k`` (in acquisition order along the normal) holds ``100 * k + col`` in every row, so a
    pixel tells which slice and column it is. Returns the paths in acquisition order.
    """
    import os

    row_dir, col_dir = (np.array(v, float) for v in _ORIENTATIONS[orientation])
    normal = np.cross(row_dir, col_dir)
    for_uid = for_uid or generate_uid()
    study_uid = study_uid or generate_uid()
    series_uid = generate_uid()
    os.makedirs(folder, exist_ok=True)
    paths = []
    half = np.array([cols - 1, rows - 1]) * pixel_mm / 2
    for k in range(n):
        stored = (100 * k + np.arange(cols, dtype=np.int16))[None, :].repeat(rows, 0)
        origin = -half[0] * row_dir - half[1] * col_dir + (k - (n - 1) / 2) * spacing * normal
        origin = origin + np.asarray(offset, dtype=float)
        ds = image_dataset(
            stored.astype(np.int16),
            RescaleSlope=1,
            RescaleIntercept=0,
            WindowCenter=500,
            WindowWidth=1000,
            PatientName="TEST^STACK",
            PatientID="STACK1",
            StudyInstanceUID=study_uid,
            SeriesInstanceUID=series_uid,
            FrameOfReferenceUID=for_uid,
            SeriesNumber=series_number,
            InstanceNumber=k + 1,
            ImageOrientationPatient=[*row_dir, *col_dir],
            ImagePositionPatient=[float(x) for x in origin],
            PixelSpacing=[pixel_mm, pixel_mm],
            SliceThickness=spacing,
        )
        paths.append(save(ds, os.path.join(folder, f"{orientation}_{k:03d}.dcm")))
    return paths
