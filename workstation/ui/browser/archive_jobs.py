"""The study browser's worker jobs on the archive: run a search, list a study's series.

Plain functions (no Qt) that run on worker threads and return frozen values; the archive's
``find`` opens a read connection per thread, so they never wait on the writer.
"""

from __future__ import annotations

from workstation.archive.archive import Archive
from workstation.archive.errors import QueryError
from workstation.ui.browser.values import (
    QueryResult,
    SeriesEntry,
    StudyDetail,
    StudyQuery,
    StudyRow,
    series_order,
)

#: At most this many studies are listed; a search narrower than "everything" finds the rest.
MAX_STUDIES = 5000


def run_query(archive: Archive, query: StudyQuery, token: int) -> QueryResult:
    """The studies matching ``query`` (an error in the keys is returned, not raised)."""
    try:
        rows = tuple(
            StudyRow.from_archive(r)
            for r in archive.find("STUDY", query.to_keys(), limit=MAX_STUDIES)
        )
    except QueryError as exc:
        return QueryResult(token, query, (), error=str(exc))
    return QueryResult(token, query, rows)


def load_study_detail(archive: Archive, study_uid: str, patient: str) -> StudyDetail:
    """Every series of a study with its files' absolute paths, in series-number order."""
    series: dict[str, dict] = {}
    try:
        for row in archive.find("IMAGE", {"StudyInstanceUID": study_uid}):
            uid = str(row.get("SeriesInstanceUID") or "")
            entry = series.get(uid)
            if entry is None:
                entry = series[uid] = {
                    "number": row.get("SeriesNumber"),
                    "modality": str(row.get("Modality") or ""),
                    "description": str(row.get("SeriesDescription") or ""),
                    "paths": [],
                    "frames": 0,
                }
            entry["paths"].append(str(archive.path_of(row["rel_path"])))
            entry["frames"] += max(1, int(row.get("NumberOfFrames") or 1))
    except QueryError as exc:
        return StudyDetail(study_uid, patient, (), error=str(exc))
    entries = [
        SeriesEntry(
            series_uid=uid,
            study_uid=study_uid,
            number=_number(e["number"]),
            modality=e["modality"],
            description=e["description"],
            paths=tuple(e["paths"]),  # the IMAGE query orders by instance number
            frames=e["frames"],
        )
        for uid, e in series.items()
    ]
    return StudyDetail(study_uid, patient, tuple(sorted(entries, key=series_order)))


def _number(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
