"""Facts for the hanging protocols (``workstation.hanging``), built from the local archive, from
display sets opened from files, and from study-level rows (archive index, C-FIND answers).

The index knows studies and series (date, description, modalities, body part); what selectors
also test (laterality, view, Patient Orientation, contrast, localizer, stack orientation) comes
from the stored headers: a study's files are read without their pixel data and grouped into
display sets by :func:`workstation.core.display_sets.build_display_sets`, and each display set's
first frame's header gives its attributes.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydicom.dataset import Dataset

from workstation.core.display_sets import (
    DisplaySet,
    HeaderRecord,
    build_display_sets,
    read_header_records,
)
from workstation.hanging import DisplaySetFacts, ProtocolSet, StudyFacts, load_protocols, parse_date

if TYPE_CHECKING:
    from workstation.archive.archive import Archive

log = logging.getLogger(__name__)

USER_PROTOCOL_DIR = "hanging_protocols"


def user_protocol_dir(home: Path) -> Path:
    """Where the user's protocols live: ``HOME/hanging_protocols``."""
    return Path(home) / USER_PROTOCOL_DIR


def load_app_protocols(home: Path, extra_dirs: Sequence[str | Path] = ()) -> ProtocolSet:
    """The built-ins, then the user's directory, then ``extra_dirs`` (later ones win)."""
    return load_protocols([user_protocol_dir(home), *extra_dirs])


def _text(ds: Dataset | None, keyword: str) -> str:
    if ds is None:
        return ""
    try:
        value = ds.get(keyword)
    except Exception:  # noqa: BLE001 - a malformed value reads as absent
        return ""
    if value is None:
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def _values(ds: Dataset | None, keyword: str) -> tuple[str, ...]:
    text = _text(ds, keyword)
    return tuple(v.strip() for v in text.split("\\") if v.strip()) if text else ()


def _view_code(ds: Dataset | None) -> tuple[str, str]:
    try:
        seq = ds.get("ViewCodeSequence") if ds is not None else None
        item = seq[0] if seq else None
    except Exception:  # noqa: BLE001
        item = None
    if item is None:
        return "", ""
    return _text(item, "CodeValue"), _text(item, "CodeMeaning")


def display_set_facts(d: DisplaySet, header: Dataset | None) -> DisplaySetFacts:
    """The facts of one display set; ``header`` is its first frame's (None: what the display
    set itself knows)."""
    code, meaning = _view_code(header)
    return DisplaySetFacts(
        uid=d.uid, series_uid=d.series_uid, study_uid=d.study_uid, label=d.label,
        modality=d.modality or _text(header, "Modality"),
        body_part=_text(header, "BodyPartExamined"),
        series_description=_text(header, "SeriesDescription"),
        series_number=d.series_number,
        image_laterality=_text(header, "ImageLaterality") or _text(header, "Laterality"),
        view_position=_text(header, "ViewPosition"), view_code=code, view_code_meaning=meaning,
        patient_orientation=_values(header, "PatientOrientation"),
        number_of_images=len(d.frames), orientation=d.orientation or "",
        contrast=bool(_text(header, "ContrastBolusAgent")), localizer=d.is_localizer,
        kind=d.kind, image_type=_values(header, "ImageType"),
    )  # fmt: skip


def _study_from_headers(
    study_uid: str, sets: list[DisplaySetFacts], header: Dataset | None, source: str
) -> StudyFacts:
    parts = Counter(d.body_part.upper() for d in sets if d.body_part)
    return StudyFacts(
        study_uid=study_uid, patient_id=_text(header, "PatientID"),
        issuer_of_patient_id=_text(header, "IssuerOfPatientID"),
        patient_name=_text(header, "PatientName"),
        study_date=parse_date(_text(header, "StudyDate")),
        study_time=_text(header, "StudyTime").replace(":", ""),
        modalities=tuple(sorted({d.modality for d in sets if d.modality})),
        description=_text(header, "StudyDescription"),
        body_part=parts.most_common(1)[0][0] if parts else "",
        accession=_text(header, "AccessionNumber"), display_sets=tuple(sets), source=source,
    )  # fmt: skip


def facts_from_display_sets(
    display_sets: Iterable[DisplaySet],
    headers: Mapping[str, Dataset] | None = None,
    source: str = "files",
) -> list[StudyFacts]:
    """Facts of the studies of display sets opened from files (one per Study Instance UID).

    Parameters
    ----------
    display_sets : iterable of DisplaySet
    headers : mapping of path -> Dataset, optional
        Headers already read (e.g. the records the display sets were built from); a first
        frame's header not in it is read from its file (without pixel data).
    source : str
    """
    headers = dict(headers or {})
    by_study: dict[str, list[tuple[DisplaySet, Dataset | None]]] = {}
    for d in display_sets:
        path = d.frames[0].path if d.frames else ""
        if path and path not in headers:
            records, problems = read_header_records([path])
            for p, why in problems:
                log.warning("hanging facts: %s: %s", p, why)
            if records:
                headers[path] = records[0].ds
        by_study.setdefault(d.study_uid, []).append((d, headers.get(path)))
    out = []
    for study_uid, items in by_study.items():
        sets = [display_set_facts(d, h) for d, h in items]
        first = next((h for _, h in items if h is not None), None)
        out.append(_study_from_headers(study_uid, sets, first, source))
    return out


def facts_from_records(records: Sequence[HeaderRecord], source: str = "files") -> list[StudyFacts]:
    """Facts of the studies in header records (grouped into display sets here)."""
    headers = {r.path: r.ds for r in records}
    return facts_from_display_sets(build_display_sets(records), headers, source)


def facts_from_archive(archive: Archive, study_uid: str) -> StudyFacts:
    """A stored study's facts with its display sets (its headers are read, not its pixels).

    Raises
    ------
    workstation.archive.errors.NotFoundError
        When the study is not in the archive.
    """
    from workstation.archive.errors import NotFoundError

    rows = list(archive.find("IMAGE", {"StudyInstanceUID": study_uid}))
    if not rows:
        raise NotFoundError(f"no study with UID {study_uid} in the archive at {archive.root}")
    records, problems = read_header_records([archive.path_of(r["rel_path"]) for r in rows])
    for path, why in problems:
        log.warning("hanging facts: %s: %s", path, why)
    facts = [f for f in facts_from_records(records, "local") if f.study_uid == study_uid]
    row = rows[0]
    base = study_from_row(row, "local", body_part=_series_body_part(archive, study_uid))
    if not facts:  # no images (only SR, KO...): the study without display sets
        return base
    f = facts[0]
    return replace(f, modalities=base.modalities or f.modalities,
                   body_part=f.body_part or base.body_part)  # fmt: skip


def _series_body_part(archive: Archive, study_uid: str) -> str:
    parts = Counter(
        str(r.get("BodyPartExamined") or "").upper()
        for r in archive.find("SERIES", {"StudyInstanceUID": study_uid, "BodyPartExamined": ""})
    )  # fmt: skip
    parts.pop("", None)
    return parts.most_common(1)[0][0] if parts else ""


def study_from_row(row: Mapping[str, Any], source: str, *, body_part: str = "",
                   issuer: str = "") -> StudyFacts:  # fmt: skip
    """Study-level facts (no display sets) from an archive STUDY/IMAGE row or a C-FIND
    answer's values (DICOM keywords)."""

    def get(key: str) -> str:
        value = row.get(key)
        return "" if value is None else str(value).strip()

    modalities = tuple(m for m in get("ModalitiesInStudy").split("\\") if m)
    return StudyFacts(
        study_uid=get("StudyInstanceUID"), patient_id=get("PatientID"),
        issuer_of_patient_id=issuer or get("IssuerOfPatientID"),
        patient_name=get("PatientName"), study_date=parse_date(get("StudyDate")),
        study_time=get("StudyTime").replace(":", ""), modalities=modalities,
        description=get("StudyDescription"), body_part=body_part or get("BodyPartExamined"),
        accession=get("AccessionNumber"), source=source,
    )  # fmt: skip


def local_studies_of_patient(archive: Archive, patient_id: str) -> list[StudyFacts]:
    """Study-level facts of every stored study with this Patient ID, with its body part and
    (read from one stored header) its Issuer of Patient ID."""
    if not patient_id:
        return []
    out = []
    for row in list(archive.find("STUDY", {"PatientID": patient_id})):
        uid = str(row["StudyInstanceUID"])
        issuer = ""
        first = list(archive.find("IMAGE", {"StudyInstanceUID": uid}, limit=1))
        if first:
            records, _ = read_header_records([archive.path_of(first[0]["rel_path"])])
            issuer = _text(records[0].ds, "IssuerOfPatientID") if records else ""
        out.append(study_from_row(row, "local", body_part=_series_body_part(archive, uid),
                                  issuer=issuer))  # fmt: skip
    return out
