"""Synthetic chest radiographs (PA and left lateral, DX) for the archive and interop tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

DX_CLASS = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation
VIEWS = (("PA", "postero-anterior", "399348003", ["L", "F"], 1),
         ("LL", "left lateral", "399173006", ["P", "F"], 2))  # fmt: skip


def chest_study(folder: Path, date: str, *, patient_id: str = "CHEST1", issuer: str = "HOSP",
                study_uid: str | None = None, fill: int = 100) -> tuple[str, list[Path]]:  # fmt: skip
    """Write a PA and a lateral radiograph of one study; returns (study UID, paths)."""
    from core.synthetic import image_dataset, save

    study_uid = study_uid or generate_uid()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for view, meaning, code_value, orientation, number in VIEWS:
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = code_value, "SCT", meaning
        pixels = np.full((16, 12), fill + number, np.uint16)
        ds = image_dataset(pixels, modality="DX", PatientID=patient_id, PatientName="TEST^CHEST",
                           IssuerOfPatientID=issuer, StudyInstanceUID=study_uid,
                           SeriesInstanceUID=generate_uid(), StudyDate=date, StudyTime="101500",
                           StudyDescription="XR CHEST 2 VIEWS", SeriesNumber=number,
                           SeriesDescription=f"CHEST {view}", ViewPosition=view,
                           ViewCodeSequence=Sequence([code]), PatientOrientation=orientation,
                           ImageLaterality="U", BodyPartExamined="CHEST", InstanceNumber=1,
                           AccessionNumber=f"A{date}")  # fmt: skip
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = DX_CLASS
        paths.append(Path(save(ds, folder / f"{date}_{view}.dcm")))
    return study_uid, paths
