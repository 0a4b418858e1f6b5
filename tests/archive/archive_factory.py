"""Small synthetic DICOM instances for the archive tests."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid


def instance(
    *,
    study: str | None = None,
    series: str | None = None,
    sop: str | None = None,
    patient_name: str = "DOE^JANE",
    patient_id: str = "PID1",
    study_date: str = "20240102",
    study_time: str = "101500",
    modality: str = "CT",
    accession: str = "ACC1",
    description: str = "CHEST",
    instance_number: int = 1,
    size: int = 16,
    pixel_value: int = 0,
    implementation: str = "WS_TEST",
    **extra: object,
) -> Dataset:
    """A small CT-like instance with a file meta header."""
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop or generate_uid()
    ds.StudyInstanceUID = study or generate_uid()
    ds.SeriesInstanceUID = series or generate_uid()
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "F"
    ds.StudyDate = study_date
    ds.StudyTime = study_time
    ds.AccessionNumber = accession
    ds.StudyDescription = description
    ds.ReferringPhysicianName = "WHO^DOCTOR"
    ds.Modality = modality
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.SeriesDescription = "AXIAL"
    ds.InstanceNumber = instance_number
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = np.full((size, size), pixel_value, np.uint16).tobytes()
    for key, value in extra.items():
        setattr(ds, key, value)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationVersionName = implementation
    ds.file_meta = meta
    ds.preamble = b"\0" * 128
    return ds


def write(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def to_bytes(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def series_folder(folder: Path, n: int, **kw: object) -> list[Path]:
    """``n`` instances of one series under ``folder`` (names carry no UIDs)."""
    study, series = generate_uid(), generate_uid()
    return [
        write(instance(study=study, series=series, instance_number=i + 1, **kw), folder / f"f{i}")
        for i in range(n)
    ]
