"""Which of the studies on screen is the current one and which are priors, so that the viewer can
label every viewport and a prior is never read as the current study.

Among the viewports showing one patient, the study with the latest date and time is CURRENT; each
older one is PRIOR with its date and how long before the current it was acquired. Viewports of a
patient with a single study on screen get no tag: there is nothing to confuse.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class ShownStudy:
    """What one viewport shows: the key identifies the viewport."""

    key: Hashable
    patient_id: str
    study_uid: str
    study_date: str  # DICOM DA, YYYYMMDD (may be empty)
    study_time: str = ""  # DICOM TM


@dataclass(frozen=True)
class StudyTag:
    text: str
    is_prior: bool


def _parse(da: str) -> date | None:
    da = (da or "").strip()
    if len(da) != 8 or not da.isdigit():
        return None
    try:
        return date(int(da[:4]), int(da[4:6]), int(da[6:]))
    except ValueError:
        return None


def _shown_date(da: str) -> str:
    d = _parse(da)
    return d.isoformat() if d else "date unknown"


def interval_text(earlier: str, later: str) -> str:
    """'3 days', '5 months', '2 y 3 mo' between two DICOM dates ('' when either is unknown)."""
    a, b = _parse(earlier), _parse(later)
    if a is None or b is None:
        return ""
    days = (b - a).days
    if days < 0:
        return ""
    if days == 0:
        return "same day"
    if days < 62:
        return f"{days} day{'s' if days != 1 else ''}"
    months = (b.year - a.year) * 12 + (b.month - a.month) - (1 if b.day < a.day else 0)
    if months < 24:
        return f"{months} months"
    return f"{months // 12} y {months % 12} mo"


def study_tags(shown: Sequence[ShownStudy]) -> dict[Hashable, StudyTag]:
    """The tag of each viewport key whose patient has more than one study on screen."""
    by_patient: dict[str, list[ShownStudy]] = {}
    for s in shown:
        if s.study_uid:
            by_patient.setdefault(s.patient_id, []).append(s)
    tags: dict[Hashable, StudyTag] = {}
    for items in by_patient.values():
        studies = {s.study_uid: s for s in items}
        if len(studies) < 2:
            continue
        newest = max(studies.values(), key=lambda s: (s.study_date or "", s.study_time or ""))
        for s in items:
            if s.study_uid == newest.study_uid:
                tags[s.key] = StudyTag(f"CURRENT  {_shown_date(s.study_date)}", False)
            else:
                gap = interval_text(s.study_date, newest.study_date)
                suffix = f"  ({gap} earlier)" if gap and gap != "same day" else ""
                if gap == "same day":
                    suffix = "  (same day, earlier)"
                tags[s.key] = StudyTag(f"PRIOR  {_shown_date(s.study_date)}{suffix}", True)
    return tags
