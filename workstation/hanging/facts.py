"""The facts a hanging protocol is matched against: frozen values, built by ``workstation.app``
from the local archive, from files opened in place or from C-FIND answers.

:class:`StudyFacts` describes one study (and, when its images are at hand, its display sets);
:class:`DisplaySetFacts` describes one display set (a stack, cine loop or single image) with the
attributes selectors test: modality, body part, descriptions, laterality, view, number of images,
stack orientation, contrast and localizer. Nothing here reads files.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field

#: Abbreviations of mammography and radiography views by the meaning of their View Code
#: (PS3.16 CID 4014 and CID 4010), used when View Position (0018,5101) is empty.
_VIEW_MEANINGS: dict[str, str] = {
    "cranio-caudal": "CC",
    "medio-lateral oblique": "MLO",
    "medio-lateral": "ML",
    "latero-medial": "LM",
    "latero-medial oblique": "LMO",
    "caudo-cranial (from below)": "FB",
    "exaggerated cranio-caudal": "XCC",
    "cleavage": "CV",
    "axillary tail": "AT",
    "postero-anterior": "PA",
    "antero-posterior": "AP",
    "left lateral": "LL",
    "right lateral": "RL",
    "lateral": "LAT",
}


def view_abbreviation(view_position: str, view_code_meaning: str = "") -> str:
    """The view as an abbreviation: View Position when given, else from the View Code meaning.

    >>> view_abbreviation("", "cranio-caudal")
    'CC'
    """
    if view_position.strip():
        return view_position.strip().upper()
    return _VIEW_MEANINGS.get(view_code_meaning.strip().lower(), view_code_meaning.strip().upper())


def parse_date(text: str) -> _dt.date | None:
    """A DICOM DA value (``YYYYMMDD``, or ``YYYY.MM.DD``) as a date; None when absent or bad."""
    digits = str(text or "").replace(".", "").replace("-", "").strip()
    if len(digits) != 8 or not digits.isdigit():
        return None
    try:
        return _dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None


@dataclass(frozen=True)
class DisplaySetFacts:
    """What selectors know about one display set.

    Attributes
    ----------
    uid : str
        The display set's UID (``workstation.core.display_sets.DisplaySet.uid``).
    series_uid, study_uid : str
    label : str
        What the viewer calls it ("Series 2 CT axial 2.5 mm (CHEST)").
    modality, body_part, series_description : str
    series_number : int or None
    image_laterality : str
        Image Laterality (0020,0062), else Laterality (0020,0060): ``R``, ``L``, ``B``, ``U``
        or empty.
    view_position : str
        View Position (0018,5101) as written (``PA``, ``LL``, ``CC``, ``MLO``...).
    view_code, view_code_meaning : str
        The first item of View Code Sequence (0054,0220): code value and meaning.
    patient_orientation : tuple of str
        Patient Orientation (0020,0020): the patient directions of the rows and the columns
        (e.g. ``("A", "R")``); empty when absent.
    number_of_images : int
        Frames in the display set.
    orientation : str
        ``axial``, ``coronal``, ``sagittal``, ``oblique`` or empty (no geometry).
    contrast : bool
        Contrast/Bolus Agent (0018,0010) has a value.
    localizer : bool
    kind : str
        ``stack``, ``single``, ``cine``, ``localizer`` or ``multiframe-stack``.
    image_type : tuple of str
    """

    uid: str
    series_uid: str = ""
    study_uid: str = ""
    label: str = ""
    modality: str = ""
    body_part: str = ""
    series_description: str = ""
    series_number: int | None = None
    image_laterality: str = ""
    view_position: str = ""
    view_code: str = ""
    view_code_meaning: str = ""
    patient_orientation: tuple[str, ...] = ()
    number_of_images: int = 0
    orientation: str = ""
    contrast: bool = False
    localizer: bool = False
    kind: str = ""
    image_type: tuple[str, ...] = ()

    @property
    def view(self) -> str:
        """The view abbreviation (``CC``, ``MLO``, ``PA``, ``LL``...), see
        :func:`view_abbreviation`."""
        return view_abbreviation(self.view_position, self.view_code_meaning)


@dataclass(frozen=True)
class StudyFacts:
    """What protocols and prior rules know about one study.

    Attributes
    ----------
    study_uid : str
    patient_id, issuer_of_patient_id, patient_name : str
    study_date : datetime.date or None
    study_time : str
        ``HHMMSS`` (may be empty); orders studies of one day.
    modalities : tuple of str
        Modalities in the study.
    description : str
        Study Description.
    body_part : str
        Body Part Examined (the most common value of its series), may be empty.
    accession : str
    display_sets : tuple of DisplaySetFacts
        Empty when the study's images are not at hand (a study only known from a C-FIND).
    source : str
        Where it was found: ``"local"`` (the archive), ``"files"`` or a node's name.
    """

    study_uid: str
    patient_id: str = ""
    issuer_of_patient_id: str = ""
    patient_name: str = ""
    study_date: _dt.date | None = None
    study_time: str = ""
    modalities: tuple[str, ...] = ()
    description: str = ""
    body_part: str = ""
    accession: str = ""
    display_sets: tuple[DisplaySetFacts, ...] = field(default=(), repr=False)
    source: str = "local"

    @property
    def number_of_images(self) -> int:
        return sum(d.number_of_images for d in self.display_sets)

    @property
    def when(self) -> tuple[_dt.date, str]:
        """Sort key: date then time (no date sorts first, as the oldest)."""
        return (self.study_date or _dt.date.min, self.study_time or "")

    def same_patient(self, other: StudyFacts) -> bool:
        """Same Patient ID, and the same issuer when both name one."""
        if not self.patient_id or self.patient_id != other.patient_id:
            return False
        mine, theirs = self.issuer_of_patient_id, other.issuer_of_patient_id
        return not (mine and theirs and mine != theirs)
