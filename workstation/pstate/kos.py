"""Key Object Selection documents (key images): written with highdicom's ``ko`` module, read back
as the list of images they mark.

A KOS (PS3.3 A.35.4, template TID 2010) names the marked images in its content tree and, per
series, in the Current Requested Procedure Evidence Sequence; :func:`read_kos` reads the evidence
(every KOS has it) and the content tree's IMAGE items (in their order, with frame numbers).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import highdicom as hd
import pydicom
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from workstation.core.annotations import ImageRef
from workstation.pstate.gsps_writer import WriterInfo, image_header

KOS_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.88.59"

#: Document titles of CID 7010 offered to the user, by short name.
TITLES = {
    "of_interest": codes.DCM.OfInterest,
    "for_teaching": codes.DCM.ForTeaching,
    "for_referring_provider": codes.DCM.ForReferringProvider,
    "for_surgery": codes.DCM.ForSurgery,
    "quality_issue": codes.DCM.QualityIssue,
}


class KosError(ValueError):
    """A KOS cannot be written or read; the message says why."""


@dataclass(frozen=True)
class KeyImage:
    """One image marked in a KOS."""

    image: ImageRef
    series_uid: str
    study_uid: str


@dataclass(frozen=True)
class KeyObjectDocument:
    """What a KOS says: its identity, title, description and the images it marks (in order)."""

    sop_instance_uid: str
    study_uid: str
    series_uid: str
    title: str
    description: str
    created: datetime | None
    images: tuple[KeyImage, ...]
    #: Who made it: the observer named in the content (person, else device), else the
    #: document's Manufacturer; "" when none is given.
    creator: str = ""

    @property
    def sop_instance_uids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(k.image.sop_instance_uid for k in self.images))


def write_kos(
    images: Sequence[Dataset],
    *,
    title: str = "of_interest",
    description: str = "",
    series_uid: str | None = None,
    series_number: int = 901,
    sop_instance_uid: str | None = None,
    instance_number: int = 1,
    writer: WriterInfo | None = None,
    creator: str = "",
) -> Dataset:
    """A Key Object Selection document marking ``images`` (their headers; one study), in the
    order given. ``creator`` (a person's name) goes in the observer context when given.

    Raises
    ------
    KosError
        No image, images of several studies, an unknown title.
    """
    if not images:
        raise KosError("a key object selection needs at least one image")
    studies = {str(ds.StudyInstanceUID) for ds in images}
    if len(studies) != 1:
        raise KosError(f"key images must be of one study, got {len(studies)}")
    code = TITLES.get(title)
    if code is None:
        raise KosError(f"unknown KOS title {title!r} (known: {', '.join(TITLES)})")
    if len(description) > 1024:
        raise KosError(f"description too long ({len(description)} > 1024 characters)")
    writer = writer or WriterInfo()
    images = [image_header(ds) for ds in images]
    person = None
    if creator:
        person = hd.sr.ObserverContext(
            observer_type=codes.DCM.Person,
            observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(creator),
        )
    content = hd.ko.KeyObjectSelection(
        document_title=code,
        referenced_objects=list(images),
        observer_person_context=person,
        description=description or None,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # patient name form copied from the image
        doc = hd.ko.KeyObjectSelectionDocument(
            evidence=list(images),
            content=content,
            series_instance_uid=series_uid or generate_uid(),
            series_number=int(series_number),
            sop_instance_uid=sop_instance_uid or generate_uid(),
            instance_number=int(instance_number),
            manufacturer=writer.manufacturer,
            institution_name=writer.institution_name,
        )
    # what the study browser's series tile says (Series Description, Type 3)
    doc.SeriesDescription = f"Key images: {description}"[:64] if description else "Key images"
    return doc


def _content_images(items, out: list[tuple[str, str, int | None]]) -> None:
    for item in items or []:
        if str(item.get("ValueType", "")) == "IMAGE":
            for ref in item.get("ReferencedSOPSequence") or []:
                frames = ref.get("ReferencedFrameNumber")
                frame_list = (
                    [int(f) for f in frames]
                    if isinstance(frames, Sequence) and not isinstance(frames, str)
                    else ([int(frames)] if frames not in (None, "") else [None])
                )
                for f in frame_list:
                    out.append(
                        (str(ref.ReferencedSOPInstanceUID), str(ref.ReferencedSOPClassUID), f)
                    )
        _content_images(item.get("ContentSequence"), out)


_PERSON_OBSERVER_NAME = "121008"
_DEVICE_OBSERVER_NAME = "121013"


def _observer(items) -> str:
    """The person observer's name in the document's observer context, else the device's."""
    found: dict[str, str] = {}
    for item in items or []:
        concept = item.get("ConceptNameCodeSequence")
        code = str(concept[0].get("CodeValue", "")) if concept else ""
        if code == _PERSON_OBSERVER_NAME and item.get("PersonName"):
            found.setdefault(code, str(item.PersonName).replace("^", " ").strip())
        elif code == _DEVICE_OBSERVER_NAME and item.get("TextValue"):
            found.setdefault(code, str(item.TextValue))
    return found.get(_PERSON_OBSERVER_NAME) or found.get(_DEVICE_OBSERVER_NAME, "")


def read_kos(source: str | Path | Dataset) -> KeyObjectDocument:
    """Read a Key Object Selection document.

    Raises
    ------
    KosError
        Not a KOS, or unreadable.
    """
    name = str(source) if not isinstance(source, Dataset) else "dataset"
    try:
        ds = source if isinstance(source, Dataset) else pydicom.dcmread(str(source))
    except Exception as exc:
        raise KosError(f"{name}: not a readable DICOM file ({exc})") from exc
    if str(ds.get("SOPClassUID", "")) != KOS_SOP_CLASS:
        raise KosError(f"{name}: SOP Class {ds.get('SOPClassUID')} is not Key Object Selection")
    where: dict[str, tuple[str, str]] = {}
    classes: dict[str, str] = {}
    for study in ds.get("CurrentRequestedProcedureEvidenceSequence") or []:
        for series in study.get("ReferencedSeriesSequence") or []:
            for ref in series.get("ReferencedSOPSequence") or []:
                uid = str(ref.ReferencedSOPInstanceUID)
                where[uid] = (str(series.SeriesInstanceUID), str(study.StudyInstanceUID))
                classes[uid] = str(ref.get("ReferencedSOPClassUID", ""))
    ordered: list[tuple[str, str, int | None]] = []
    _content_images(ds.get("ContentSequence"), ordered)
    seen = {u for u, _, _ in ordered}
    ordered += [(u, classes[u], None) for u in where if u not in seen]
    images = tuple(
        KeyImage(ImageRef(uid, frame, cls), *where.get(uid, ("", str(ds.StudyInstanceUID))))
        for uid, cls, frame in ordered
    )
    title = ""
    concept = ds.get("ConceptNameCodeSequence")
    if concept:
        title = str(concept[0].get("CodeMeaning", ""))
    description = ""
    for item in ds.get("ContentSequence") or []:
        if str(item.get("ValueType", "")) == "TEXT":
            description = str(item.get("TextValue", ""))
    creator = _observer(ds.get("ContentSequence")) or str(ds.get("Manufacturer", "") or "")
    created = None
    try:
        created = datetime.strptime(
            str(ds.get("ContentDate", "")) + str(ds.get("ContentTime", "")).split(".")[0][:6],
            "%Y%m%d%H%M%S",
        )
    except ValueError:
        pass
    return KeyObjectDocument(
        sop_instance_uid=str(ds.SOPInstanceUID),
        study_uid=str(ds.StudyInstanceUID),
        series_uid=str(ds.SeriesInstanceUID),
        title=title,
        description=description,
        created=created,
        images=images,
        creator=creator,
    )


__all__ = [
    "KOS_SOP_CLASS",
    "TITLES",
    "KeyImage",
    "KeyObjectDocument",
    "KosError",
    "read_kos",
    "write_kos",
]
