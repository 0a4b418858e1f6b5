"""Frozen values of the study browser (they cross from workers to the GUI thread), and how
DICOM values are shown to a reader (person names, dates).

Nothing here imports Qt: the values are built on worker threads from archive rows.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workstation.ui.series_request import SeriesRequest


def format_person_name(value: Any) -> str:
    """A DICOM PN as a reader reads it: ``"FAMILY, Given Middle"``.

    Prefix and suffix follow (``"Dr"``, ``"Jr"``); the alphabetic group is used, or the first
    non-empty group (ideographic, phonetic) when it is empty.
    """
    text = str(value or "").strip()
    if not text:
        return ""
    groups = [g for g in text.split("=") if g.strip("^ ")]
    if not groups:
        return ""
    parts = [p.strip() for p in groups[0].split("^")] + [""] * 5
    family, given, middle, prefix, suffix = parts[:5]
    first = " ".join(p for p in (prefix, given, middle) if p)
    shown = f"{family}, {first}" if family and first else family or first
    return f"{shown} {suffix}" if suffix else shown


def format_date(value: Any) -> str:
    """``YYYYMMDD`` (or ``YYYY.MM.DD``) as ``YYYY-MM-DD``; anything else as given."""
    text = str(value or "").strip().replace(".", "")
    if len(text) == 8 and text.isdigit():
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return text


def format_time(value: Any) -> str:
    """``HHMMSS.ffffff`` as ``HH:MM``; empty when absent."""
    text = str(value or "").strip().replace(":", "")
    if len(text) >= 4 and text[:4].isdigit():
        return f"{text[:2]}:{text[2:4]}"
    return ""


def dicom_date(day: _dt.date) -> str:
    """A ``datetime.date`` as a DICOM DA value."""
    return day.strftime("%Y%m%d")


def _text(row: Mapping[str, Any], key: str) -> str:
    value = row.get(key)
    return "" if value is None else str(value).strip()


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


@dataclass(frozen=True)
class StudyQuery:
    """What the search row asks for (empty fields match everything).

    ``patient_name`` without a wildcard matches as a prefix (``smi`` finds ``Smith^John``),
    ``description`` without one as a substring; ``patient_id`` and ``accession`` match exactly
    unless they hold ``*`` or ``?``. Dates are ``datetime.date`` (inclusive bounds).
    """

    patient_name: str = ""
    patient_id: str = ""
    date_from: _dt.date | None = None
    date_to: _dt.date | None = None
    modality: str = ""
    accession: str = ""
    description: str = ""

    def to_keys(self) -> dict[str, str]:
        """The C-FIND keys for :meth:`workstation.archive.archive.Archive.find` at STUDY level."""
        keys: dict[str, str] = {}
        name = self.patient_name.strip()
        if name:
            keys["PatientName"] = name if _has_wildcard(name) else name + "*"
        if self.patient_id.strip():
            keys["PatientID"] = self.patient_id.strip()
        if self.date_from or self.date_to:
            low = dicom_date(self.date_from) if self.date_from else ""
            high = dicom_date(self.date_to) if self.date_to else ""
            keys["StudyDate"] = low if low and low == high else f"{low}-{high}"
        if self.modality.strip():
            keys["ModalitiesInStudy"] = self.modality.strip().upper()
        if self.accession.strip():
            keys["AccessionNumber"] = self.accession.strip()
        desc = self.description.strip()
        if desc:
            keys["StudyDescription"] = desc if _has_wildcard(desc) else f"*{desc}*"
        return keys


def _has_wildcard(text: str) -> bool:
    return "*" in text or "?" in text


@dataclass(frozen=True)
class StudyRow:
    """One line of the study list."""

    study_uid: str
    patient_name: str  # as stored (PN)
    patient_id: str
    birth_date: str  # DA
    study_date: str  # DA
    study_time: str  # TM
    modalities: str  # "CT\\SR"
    description: str
    accession: str
    num_series: int
    num_images: int

    @classmethod
    def from_archive(cls, row: Mapping[str, Any]) -> StudyRow:
        """From a STUDY-level row of ``Archive.find``."""
        return cls(
            study_uid=_text(row, "StudyInstanceUID"),
            patient_name=_text(row, "PatientName"),
            patient_id=_text(row, "PatientID"),
            birth_date=_text(row, "PatientBirthDate"),
            study_date=_text(row, "StudyDate"),
            study_time=_text(row, "StudyTime"),
            modalities=_text(row, "ModalitiesInStudy"),
            description=_text(row, "StudyDescription"),
            accession=_text(row, "AccessionNumber"),
            num_series=_int(row.get("NumberOfStudyRelatedSeries")),
            num_images=_int(row.get("NumberOfStudyRelatedInstances")),
        )

    @property
    def patient_label(self) -> str:
        """Name and ID as a reader reads them (the viewer's window title)."""
        name = format_person_name(self.patient_name) or "(no name)"
        return f"{name} ({self.patient_id})" if self.patient_id else name


@dataclass(frozen=True)
class QueryResult:
    """The answer to one search; ``token`` says which search (a stale one is dropped)."""

    token: int
    query: StudyQuery
    rows: tuple[StudyRow, ...]
    error: str = ""


@dataclass(frozen=True)
class SeriesEntry:
    """One series of a study, with its files (absolute paths, in instance-number order)."""

    series_uid: str
    study_uid: str
    number: int | None
    modality: str
    description: str
    paths: tuple[str, ...]
    frames: int = 0  # total frames (a multi-frame file counts its frames); 0 when unknown
    missing: int = 0  # files a DICOMDIR lists that are absent

    @property
    def image_count(self) -> int:
        return len(self.paths)

    @property
    def label(self) -> str:
        """``"CT 3: Chest 1.25 mm"``."""
        head = " ".join(p for p in (self.modality, "" if self.number is None else str(self.number)))
        head = head.strip() or "Series"
        return f"{head}: {self.description}" if self.description else head

    def request(self, patient: str) -> SeriesRequest:
        """The hand-off to the viewer."""
        return SeriesRequest(
            paths=self.paths,
            series_uid=self.series_uid,
            study_uid=self.study_uid,
            label=self.label,
            patient=patient,
        )


def series_order(entry: SeriesEntry) -> tuple:
    """Series-number order; series without a number last, then by description and UID."""
    return (entry.number is None, entry.number or 0, entry.description, entry.series_uid)


@dataclass(frozen=True)
class StudyDetail:
    """The series of one study (what the series panel shows)."""

    study_uid: str
    patient: str
    series: tuple[SeriesEntry, ...]
    error: str = ""

    def requests(self) -> list[SeriesRequest]:
        """One request per series, in series-number order."""
        return [s.request(self.patient) for s in self.series]


@dataclass(frozen=True)
class Thumbnail:
    """A downscaled rendering of a series' middle image (uint8 grey or RGB bytes)."""

    series_uid: str
    width: int
    height: int
    channels: int
    data: bytes
    source: str  # the file rendered
    error: str = ""  # why there is no image (no pixel data, cannot decode)
