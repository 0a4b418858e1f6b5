"""Key Object Selection documents written by other software read back: a KOS made with highdicom
directly (not through our writer), marking images of two series in an order of its own, with a
person observer and a description; frame numbers of a multi-frame image; and our own KOS's
creator and series description."""

from __future__ import annotations

import sys
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from synthetic import image_dataset  # noqa: E402

from workstation.pstate.kos import KosError, read_kos, write_kos  # noqa: E402


def _series(study: str, n: int, number: int) -> list:
    series = generate_uid()
    return [
        image_dataset(
            np.full((8, 8), k, np.int16),
            StudyInstanceUID=study,
            SeriesInstanceUID=series,
            SeriesNumber=number,
            InstanceNumber=k + 1,
            PatientName="KEY^IMAGES",
            PatientID="KOS1",
            StudyDate="20250102",
            StudyTime="101010",
            AccessionNumber="A1",
            ReferringPhysicianName="",
            StudyID="1",
            PatientBirthDate="",
            PatientSex="O",
        )  # fmt: skip
        for k in range(n)
    ]


def _foreign_kos(images, *, observer: str = "Smith^Jane") -> pydicom.Dataset:
    person = hd.sr.ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(observer),
    )
    content = hd.ko.KeyObjectSelection(
        document_title=codes.DCM.ForTeaching,
        referenced_objects=images,
        observer_person_context=person,
        description="teaching file: lesion and comparison",
    )
    return hd.ko.KeyObjectSelectionDocument(
        evidence=images, content=content, series_instance_uid=generate_uid(), series_number=77,
        sop_instance_uid=generate_uid(), instance_number=1, manufacturer="OtherVendor",
    )  # fmt: skip


def test_a_highdicom_kos_reads_in_its_order_across_series(tmp_path) -> None:
    study = generate_uid()
    a, b = _series(study, 4, 1), _series(study, 3, 2)
    marked = [a[3], b[0], a[1], b[2]]  # not in file or series order
    path = tmp_path / "foreign_kos.dcm"
    _foreign_kos(marked).save_as(path, enforce_file_format=True)
    doc = read_kos(path)
    assert doc.sop_instance_uids == tuple(str(d.SOPInstanceUID) for d in marked)
    assert [k.series_uid for k in doc.images] == [str(d.SeriesInstanceUID) for d in marked]
    assert {k.study_uid for k in doc.images} == {study}
    assert [k.image.frame_number for k in doc.images] == [None] * 4
    assert all(k.image.sop_class_uid == str(marked[0].SOPClassUID) for k in doc.images)
    assert doc.title == "For Teaching"
    assert doc.description == "teaching file: lesion and comparison"
    assert doc.creator == "Smith Jane"
    assert doc.study_uid == study and doc.created is not None


def test_frame_numbers_and_evidence_only_images(tmp_path) -> None:
    study = generate_uid()
    a = _series(study, 3, 1)
    ds = _foreign_kos(a)
    # a third-party KOS may name frames of an image (TID 2010 IMAGE items with frame numbers)
    items = [i for i in ds.ContentSequence if i.ValueType == "IMAGE"]
    items[0].ReferencedSOPSequence[0].ReferencedFrameNumber = [2, 5]
    # and an image only in the evidence (no content item): still one of the marked images
    del ds.ContentSequence[[i for i, x in enumerate(ds.ContentSequence) if x is items[2]][0]]
    doc = read_kos(ds)
    got = [(k.image.sop_instance_uid, k.image.frame_number) for k in doc.images]
    uids = [str(d.SOPInstanceUID) for d in a]
    assert got == [(uids[0], 2), (uids[0], 5), (uids[1], None), (uids[2], None)]


def test_our_kos_names_its_creator_and_series(tmp_path) -> None:
    images = _series(generate_uid(), 2, 1)
    ds = write_kos(images, description="for the tumour board", creator="Doe^John")
    assert ds.SeriesDescription == "Key images: for the tumour board"
    doc = read_kos(ds)
    assert doc.creator == "Doe John"
    assert read_kos(write_kos(images)).creator == "workstation"  # the Manufacturer otherwise


def test_not_a_kos_names_the_file(tmp_path) -> None:
    path = tmp_path / "image.dcm"
    _series(generate_uid(), 1, 1)[0].save_as(path, enforce_file_format=True)
    with pytest.raises(KosError, match="image.dcm.*not Key Object Selection"):
        read_kos(path)
