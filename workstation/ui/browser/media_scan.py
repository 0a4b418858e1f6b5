"""Reading a CD/DVD or a folder *in place* (nothing copied): Patient -> Study -> Series.

With a DICOMDIR at the top, its directory records give the tree (no image header is read, which
matters on optical media); :func:`workstation.archive.media.read_dicomdir` vets it first (it
refuses references that escape the media root and lists the missing files, which are counted
per series here). Without one, the headers of every file are read in chunks, reporting progress
and honouring a cancel flag. Plain functions returning frozen values: they run on a worker.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from workstation.archive.errors import MediaError
from workstation.archive.media import find_dicomdir, read_dicomdir
from workstation.core.display_sets import read_header_records
from workstation.ui.browser.values import SeriesEntry, series_order

_DIRECTORY_SOP = "1.2.840.10008.1.3.10"
_CHUNK = 32  # headers read between two progress reports
_RANK = {"PATIENT": 0, "STUDY": 1, "SERIES": 2}

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class MediaStudy:
    study_uid: str
    date: str
    time: str
    description: str
    accession: str
    series: tuple[SeriesEntry, ...]

    @property
    def image_count(self) -> int:
        return sum(s.image_count for s in self.series)

    @property
    def missing(self) -> int:
        return sum(s.missing for s in self.series)


@dataclass(frozen=True)
class MediaPatient:
    name: str  # PN as stored
    patient_id: str
    birth_date: str
    studies: tuple[MediaStudy, ...]


@dataclass(frozen=True)
class MediaScan:
    """What a CD or folder holds.

    Attributes
    ----------
    root : str
        The folder opened (the DICOMDIR's folder for media).
    dicomdir : str
        The DICOMDIR read, or empty when the folder was scanned file by file.
    patients : tuple of MediaPatient
    missing : tuple of str
        File IDs a DICOMDIR references that are absent.
    problems : tuple of (path, reason)
        Files that were skipped (not DICOM, unreadable).
    files_seen : int
        Files looked at (a scanned folder) or referenced (a DICOMDIR).
    error : str
        Why nothing can be shown (an unreadable or refused DICOMDIR, no DICOM found).
    cancelled : bool
    """

    root: str
    dicomdir: str = ""
    patients: tuple[MediaPatient, ...] = ()
    missing: tuple[str, ...] = ()
    problems: tuple[tuple[str, str], ...] = ()
    files_seen: int = 0
    error: str = ""
    cancelled: bool = False

    @property
    def image_count(self) -> int:
        return sum(st.image_count for p in self.patients for st in p.studies)


def scan_path(
    path: str | os.PathLike[str],
    on_progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> MediaScan:
    """Read ``path`` (a folder, a DICOMDIR file, or one DICOM file) without importing it."""
    p = Path(path)
    if not p.exists():
        return MediaScan(str(p), error=f"{p} does not exist")
    if p.is_file() and p.name.upper().startswith("DICOMDIR"):
        return scan_dicomdir(p)
    if p.is_dir():
        dicomdir = find_dicomdir(p)
        if dicomdir is not None:
            return scan_dicomdir(dicomdir)
    return scan_files(p, on_progress, cancel)


# --- DICOMDIR -------------------------------------------------------------------------------
def _record_tree(ds: Dataset) -> list[tuple[Dataset, list]]:
    """The directory records as (record, children) following the offsets; in sequence order
    by record level when the offsets do not lead anywhere (damaged or rewritten DICOMDIRs)."""
    records = list(ds.DirectoryRecordSequence)
    by_offset = {r.seq_item_tell: r for r in records if getattr(r, "seq_item_tell", None)}
    seen: set[int] = set()

    def chain(offset: int) -> list[tuple[Dataset, list]]:
        out = []
        while offset and offset in by_offset and offset not in seen:
            seen.add(offset)
            rec = by_offset[offset]
            lower = int(rec.get("OffsetOfReferencedLowerLevelDirectoryEntity") or 0)
            out.append((rec, chain(lower)))
            offset = int(rec.get("OffsetOfTheNextDirectoryRecord") or 0)
        return out

    first = int(ds.get("OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity") or 0)
    tree = chain(first)
    if tree and len(seen) == len(records):
        return tree
    # fall back on the order of the sequence: each record belongs to the last one above it
    roots: list[tuple[Dataset, list]] = []
    stack: list[tuple[int, list]] = [(-1, roots)]
    for rec in records:
        rank = _RANK.get(str(rec.get("DirectoryRecordType", "")).strip(), 3)
        while stack[-1][0] >= rank:
            stack.pop()
        node: tuple[Dataset, list] = (rec, [])
        stack[-1][1].append(node)
        stack.append((rank, node[1]))
    return roots


def _leaves(children: list[tuple[Dataset, list]]) -> Iterator[Dataset]:
    for rec, sub in children:
        if "ReferencedFileID" in rec:
            yield rec
        yield from _leaves(sub)


def _file_id(rec: Dataset) -> list[str]:
    value = rec.ReferencedFileID
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value]


class _Resolver:
    """Paths of File IDs: as written, else case-insensitively (discs written elsewhere)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._folded: dict[str, str] | None = None

    def __call__(self, parts: list[str]) -> str | None:
        path = self.root.joinpath(*[p.strip() for p in parts])
        if path.is_file():
            return str(path)
        if self._folded is None:
            self._folded = {}
            for dirpath, _, names in os.walk(self.root):
                rel = os.path.relpath(dirpath, self.root)
                for name in names:
                    key = os.path.normpath(os.path.join(rel, name.rstrip("."))).upper()
                    self._folded[key] = os.path.join(dirpath, name)
        return self._folded.get(os.path.normpath(os.path.join(*parts)).upper())


def scan_dicomdir(dicomdir: str | os.PathLike[str]) -> MediaScan:
    """The tree a DICOMDIR describes, with the present files' paths and missing counts."""
    path = Path(dicomdir)
    try:
        plan = read_dicomdir(path)  # refuses escaping references, lists the missing files
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path)
        tree = _record_tree(ds)
    except MediaError as exc:
        return MediaScan(str(path.parent), dicomdir=str(path), error=exc.reason)
    except Exception as exc:  # noqa: BLE001 - a damaged DICOMDIR is reported in the panel
        return MediaScan(str(path.parent), dicomdir=str(path), error=f"cannot read: {exc}")
    missing = set(plan.missing)
    resolve = _Resolver(Path(plan.root))
    patients = []
    for prec, studies in tree:
        if str(prec.get("DirectoryRecordType", "")).strip() != "PATIENT":
            continue
        out_studies = []
        for strec, series_nodes in studies:
            if str(strec.get("DirectoryRecordType", "")).strip() != "STUDY":
                continue
            study_uid = _text(strec, "StudyInstanceUID")
            entries = []
            for serec, leaves in series_nodes:
                if str(serec.get("DirectoryRecordType", "")).strip() != "SERIES":
                    continue
                paths, absent = [], 0
                for leaf in _leaves(leaves):
                    parts = _file_id(leaf)
                    if "/".join(parts) in missing:
                        absent += 1
                        continue
                    found = resolve(parts)
                    if found is None:
                        absent += 1
                    else:
                        paths.append(found)
                entries.append(_series_entry(serec, study_uid, paths, missing=absent))
            out_studies.append(_media_study(strec, entries))
        patients.append(
            MediaPatient(
                name=_text(prec, "PatientName"),
                patient_id=_text(prec, "PatientID"),
                birth_date=_text(prec, "PatientBirthDate"),
                studies=tuple(out_studies),
            )
        )
    scan = MediaScan(
        root=plan.root,
        dicomdir=str(path),
        patients=tuple(patients),
        missing=plan.missing,
        files_seen=len(plan.files) + len(plan.missing),
    )
    if not scan.image_count and not scan.missing:
        return _replace_error(scan, "the DICOMDIR lists no images")
    return scan


# --- a folder without DICOMDIR ----------------------------------------------------------------
def _walk(path: Path) -> list[str]:
    if path.is_file():
        return [str(path)]
    out: list[str] = []
    for dirpath, dirnames, names in os.walk(path):
        dirnames.sort()
        out += [os.path.join(dirpath, n) for n in sorted(names)]
    return out


def scan_files(
    path: str | os.PathLike[str],
    on_progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> MediaScan:
    """Read the header of every file under ``path`` and group them by patient, study, series."""
    root = Path(path)
    files = _walk(root)
    total = len(files)
    records, problems = [], []
    cancelled = False
    for start in range(0, total, _CHUNK):
        if cancel is not None and cancel.is_set():
            cancelled = True
            break
        recs, probs = read_header_records(files[start : start + _CHUNK])
        records += recs
        problems += probs
        if on_progress is not None:
            on_progress(min(start + _CHUNK, total), total)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # malformed values of odd files: shown as they are
        patients = _group(records)
    scan = MediaScan(
        root=str(root),
        patients=patients,
        problems=tuple(problems),
        files_seen=total,
        cancelled=cancelled,
    )
    if not patients and not cancelled:
        return _replace_error(scan, f"no DICOM images found in {root} ({total} files looked at)")
    return scan


def _group(records: list) -> tuple[MediaPatient, ...]:
    tree: dict[tuple[str, str, str], dict[str, dict]] = {}
    study_info: dict[str, Dataset] = {}
    series_files: dict[tuple[str, str], list] = {}
    for rec in records:
        ds = rec.ds
        if str(ds.get("SOPClassUID", "")) == _DIRECTORY_SOP or "DirectoryRecordSequence" in ds:
            continue
        pkey = (str(ds.get("PatientID", "") or ""), str(ds.get("PatientName", "") or ""),
                str(ds.get("PatientBirthDate", "") or ""))  # fmt: skip
        study = str(ds.get("StudyInstanceUID", "") or "")
        series = str(ds.get("SeriesInstanceUID", "") or "")
        tree.setdefault(pkey, {}).setdefault(study, {})
        study_info.setdefault(study, ds)
        if (study, series) not in series_files:
            tree[pkey][study][series] = ds
            series_files[(study, series)] = []
        frames = _int(ds.get("NumberOfFrames")) or 1
        series_files[(study, series)].append((_int(ds.get("InstanceNumber")), rec.path, frames))
    patients = []
    for (pid, name, birth), studies in sorted(tree.items(), key=lambda kv: kv[0][1:2] + kv[0]):
        out_studies = []
        for study_uid, series in studies.items():
            sds = study_info[study_uid]
            entries = []
            for series_uid, ds in series.items():
                files = sorted(
                    series_files[(study_uid, series_uid)],
                    key=lambda f: (f[0] is None, f[0] or 0, f[1]),
                )
                paths = [f[1] for f in files]
                frames = sum(f[2] for f in files)
                entries.append(_series_entry(ds, study_uid, paths, frames=frames))
            out_studies.append(_media_study(sds, entries))
        out_studies.sort(key=lambda s: (s.date, s.time), reverse=True)
        patients.append(MediaPatient(name, pid, birth, tuple(out_studies)))
    return tuple(patients)


def _text(ds: Dataset, keyword: str) -> str:
    return str(ds.get(keyword, "") or "")


def _series_entry(
    ds: Dataset, study_uid: str, paths: list[str], frames: int = 0, missing: int = 0
) -> SeriesEntry:
    """From a SERIES directory record or an instance header."""
    return SeriesEntry(
        series_uid=_text(ds, "SeriesInstanceUID"),
        study_uid=study_uid,
        number=_int(ds.get("SeriesNumber")),
        modality=_text(ds, "Modality"),
        description=_text(ds, "SeriesDescription"),
        paths=tuple(paths),
        frames=frames,
        missing=missing,
    )


def _media_study(ds: Dataset, entries: list[SeriesEntry]) -> MediaStudy:
    """From a STUDY directory record or an instance header."""
    return MediaStudy(
        study_uid=_text(ds, "StudyInstanceUID"),
        date=_text(ds, "StudyDate"),
        time=_text(ds, "StudyTime"),
        description=_text(ds, "StudyDescription"),
        accession=_text(ds, "AccessionNumber"),
        series=tuple(sorted(entries, key=series_order)),
    )


def _replace_error(scan: MediaScan, error: str) -> MediaScan:
    return replace(scan, error=error)


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
