"""Archive subcommands: ``import PATH...``, ``ls [LEVEL] [filters]``, ``delete UID``.

Progress goes to stderr (counts, rate, ETA); ``--json`` prints a summary (import) or the listing
(ls) on stdout, and ``import --stream`` prints one JSON line per file as soon as it is committed
-- a file appears there as ``imported`` only once it is durably in the archive -- ending with a
``{"event": "summary", ...}`` line.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from typing import Any

from workstation.app.services import Services
from workstation.archive.errors import ArchiveError, NotFoundError
from workstation.archive.importer import Importer, ImportProgress

_LEVELS = {"patients": "PATIENT", "studies": "STUDY", "series": "SERIES", "instances": "IMAGE"}
_COLUMNS = {
    "PATIENT": [
        ("PatientID", 16), ("PatientName", 28), ("PatientBirthDate", 10), ("PatientSex", 3),
        ("NumberOfPatientRelatedStudies", 7), ("NumberOfPatientRelatedInstances", 9),
    ],
    "STUDY": [
        ("StudyDate", 8), ("PatientName", 24), ("PatientID", 14), ("ModalitiesInStudy", 9),
        ("StudyDescription", 24), ("NumberOfStudyRelatedSeries", 6),
        ("NumberOfStudyRelatedInstances", 9), ("StudyInstanceUID", 64),
    ],
    "SERIES": [
        ("Modality", 8), ("SeriesNumber", 6), ("SeriesDescription", 28),
        ("NumberOfSeriesRelatedInstances", 9), ("StudyInstanceUID", 30),
        ("SeriesInstanceUID", 64),
    ],
    "IMAGE": [
        ("InstanceNumber", 6), ("NumberOfFrames", 6), ("SOPClassUID", 28),
        ("SOPInstanceUID", 64), ("rel_path", 0),
    ],
}  # fmt: skip
_HEADINGS = {
    "NumberOfPatientRelatedStudies": "studies",
    "NumberOfPatientRelatedInstances": "instances",
    "NumberOfStudyRelatedSeries": "series",
    "NumberOfStudyRelatedInstances": "instances",
    "NumberOfSeriesRelatedInstances": "instances",
    "ModalitiesInStudy": "modality",
    "PatientSex": "sex",
    "PatientBirthDate": "birth",
    "SeriesNumber": "number",
    "InstanceNumber": "number",
    "NumberOfFrames": "frames",
    "rel_path": "file",
}
_SHORTCUTS = [
    ("--name", "PatientName", "patient name; wildcards * ? (case-insensitive)"),
    ("--patient-id", "PatientID", "patient ID; wildcards * ?"),
    ("--date", "StudyDate", "study date YYYYMMDD or range A-B, -B, A-"),
    ("--modality", "Modality", "modality (series and instances; for studies: in the study)"),
    ("--accession", "AccessionNumber", "accession number; wildcards * ?"),
    ("--description", "StudyDescription", "study description; wildcards * ?"),
    ("--study", "StudyInstanceUID", "study instance UID(s), separated by backslashes"),
    ("--series", "SeriesInstanceUID", "series instance UID(s)"),
]


def register(subparsers: Any) -> None:
    """Add ``import``, ``ls`` and ``delete`` to the ``workstation`` command line."""
    p = subparsers.add_parser(
        "import",
        help="copy DICOM files, folders, zips or CD/DVD media (DICOMDIR) into the archive",
        description="Folders are searched recursively (non-DICOM files are reported and "
        "skipped); a folder with a DICOMDIR at its top is read through it.",
    )
    p.add_argument("paths", nargs="+", help="files, folders, .zip files or DICOMDIR files")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.add_argument(
        "--stream",
        action="store_true",
        help="print one JSON line per file on stdout as it is done, then a summary line",
    )
    p.add_argument("--workers", type=int, default=None, help="worker processes (0: none)")
    p.add_argument(
        "--scan", action="store_true", help="scan folders even when they hold a DICOMDIR"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_import)

    p = subparsers.add_parser(
        "ls", help="list the archive's patients, studies, series or instances"
    )
    p.add_argument("level", nargs="?", default="studies", choices=list(_LEVELS))
    for flag, keyword, text in _SHORTCUTS:
        p.add_argument(flag, dest=keyword, metavar="VALUE", help=text)
    p.add_argument(
        "-k", "--key", action="append", default=[], metavar="KEYWORD=VALUE",
        help="any C-FIND key by DICOM keyword, e.g. -k StudyTime=0800-1200",
    )  # fmt: skip
    p.add_argument("--limit", type=int, default=None, help="at most N rows")
    p.add_argument("--json", action="store_true", help="print the listing as JSON")
    p.set_defaults(func=cmd_ls)

    p = subparsers.add_parser("delete", help="delete a study (or a series) and its files")
    p.add_argument("uid", help="the Study Instance UID (with --series: a Series Instance UID)")
    p.add_argument("--series", action="store_true", help="the UID is a series")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_delete)


# --- import ---------------------------------------------------------------------------------------
class _Progress:
    """Progress on stderr: one updating line on a terminal, a line a second otherwise."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.last = time.monotonic()  # the first line after a moment: early rates mislead
        self.pending: ImportProgress | None = None

    def __call__(self, progress: ImportProgress) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        self.pending = progress
        if now - self.last >= (0.1 if self.tty else 1.0):
            self._show(progress)
            self.last = now

    def _show(self, progress: ImportProgress) -> None:
        if self.tty:
            sys.stderr.write("\r" + progress.line() + "\x1b[K")
        else:
            sys.stderr.write(progress.line() + "\n")
        sys.stderr.flush()
        self.pending = None

    def finish(self) -> None:
        if not self.quiet and self.pending is not None:
            self._show(self.pending)
        if not self.quiet and self.tty:
            sys.stderr.write("\n")


def cmd_import(args: argparse.Namespace, services: Services) -> int:
    if not args.verbose:
        logging.getLogger("pydicom").setLevel(logging.ERROR)  # bad files are reported per file
    archive = services.archive
    cancel = threading.Event()

    def on_sigint(signum: int, frame: Any) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        print("\ncancelling: finishing the files in progress (Ctrl-C again to abort)",
              file=sys.stderr)  # fmt: skip

    previous = signal.signal(signal.SIGINT, on_sigint)
    progress = _Progress(args.quiet)

    def on_progress(p: ImportProgress) -> None:
        if args.stream and p.result is not None:
            r = p.result
            print(json.dumps({"event": "file", "status": r.status.value, "source": r.source,
                              "sop_instance_uid": r.sop_instance_uid, "reason": r.reason}),
                  flush=True)  # fmt: skip
        progress(p)

    try:
        importer = Importer(archive, workers=args.workers, use_dicomdir=not args.scan)
        report = importer.import_paths(args.paths, on_progress=on_progress, cancel=cancel)
    finally:
        signal.signal(signal.SIGINT, previous)
        progress.finish()
        archive.close()
    summary = report.to_json()
    if args.stream:  # the stream stays JSON lines to its end
        print(json.dumps({"event": "summary", **summary}))
    elif args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print_import_summary(summary, report.rejected_reasons)
    if report.cancelled:
        return 130
    return 1 if summary["refused"] else 0


def _print_import_summary(s: dict[str, Any], reasons: dict[str, int]) -> None:
    print(
        f"{s['done']} of {s['total']} files in {s['elapsed_s']:.1f} s "
        f"({s['files_per_s'] or 0:.0f} files/s): {s['imported']} imported, {s['duplicate']} "
        f"duplicate, {s['conflict']} conflict (kept aside), {s['rejected']} rejected"
        + (" -- cancelled" if s["cancelled"] else "")
    )
    for reason, n in reasons.items():
        print(f"  rejected {n:>4}: {reason}")
    for c in s["conflicts"][:10]:
        print(f"  conflict: {c['source']}: {c['reason']}")
    if len(s["conflicts"]) > 10:
        print(f"  ... and {len(s['conflicts']) - 10} more conflicts (--json lists them all)")
    for m in s["media"]:
        print(f"  {m['dicomdir']}: {m['present']} of {m['referenced']} referenced files present")
        for rel in m["missing"]:
            print(f"    missing: {rel}")
    for r in s["refused"]:
        print(f"  refused {r['path']}: {r['reason']}")


# --- ls ---------------------------------------------------------------------------------------------
def cmd_ls(args: argparse.Namespace, services: Services) -> int:
    level = _LEVELS[args.level]
    keys: dict[str, str] = {}
    for _, keyword, _ in _SHORTCUTS:
        value = getattr(args, keyword, None)
        if value is not None:
            keys[keyword] = value
    if "Modality" in keys and level in ("PATIENT", "STUDY"):
        keys["ModalitiesInStudy"] = keys.pop("Modality")
    for item in args.key:
        keyword, sep, value = item.partition("=")
        if not sep:
            print(f"error: ls: -k {item!r}: expected KEYWORD=VALUE", file=sys.stderr)
            return 2
        keys[keyword.strip()] = value
    archive = services.archive
    try:
        rows = list(archive.find(level, keys, limit=args.limit))
        usage = archive.usage() if args.json else None
    except ArchiveError as exc:
        print(f"error: ls: {exc}", file=sys.stderr)
        return 2
    finally:
        archive.close()
    if args.json:
        print(json.dumps({"level": level, "query": keys, "count": len(rows), "rows": rows,
                          "usage": usage}, indent=2, default=str))  # fmt: skip
        return 0
    columns = _COLUMNS[level]
    print("  ".join(_HEADINGS.get(k, k).ljust(w) if w else _HEADINGS.get(k, k) for k, w in columns))
    for row in rows:
        cells = []
        for key, width in columns:
            text = "" if row.get(key) is None else str(row[key])
            cells.append(text[:width].ljust(width) if width else text)
        print("  ".join(cells).rstrip())
    singular = {"patients": "patient", "studies": "study", "series": "series"}
    print(f"{len(rows)} {args.level if len(rows) != 1 else singular.get(args.level, 'instance')}")
    return 0


# --- delete -------------------------------------------------------------------------------------
def cmd_delete(args: argparse.Namespace, services: Services) -> int:
    archive = services.archive
    what = "series" if args.series else "study"
    try:
        if args.series:
            removed = archive.delete_series(args.uid)
        else:
            removed = archive.delete_study(args.uid)
    except NotFoundError as exc:
        print(f"error: delete: {exc}", file=sys.stderr)
        return 1
    finally:
        archive.close()
    if args.json:
        print(json.dumps({"deleted": what, "uid": args.uid, "instances": removed}))
    else:
        print(f"deleted {what} {args.uid}: {removed} instance(s) and their files")
    return 0
