"""CD/DVD media: which files a DICOMDIR references, which are missing, and refusing escapes.

Every directory record's Referenced File ID is checked *before* anything is opened: a component
that is empty, ``.`` or ``..``, contains a path separator or a drive, or a path that resolves
(symlinks included) outside the folder holding the DICOMDIR refuses the whole DICOMDIR with a
:class:`MediaError` -- a crafted directory is not half-trusted. pydicom's ``FileSet`` then loads
the directory (its own containment check is a second line); its instances are the referenced
files that are present. Files on discs written by other systems are often lower case while the
File IDs are upper case, so a reference that does not exist as written is looked up
case-insensitively.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.fileset import FileSet

from workstation.archive.errors import MediaError


@dataclass(frozen=True)
class MediaPlan:
    """What a DICOMDIR offers.

    Attributes
    ----------
    dicomdir : str
        The DICOMDIR file.
    root : str
        The media root (the DICOMDIR's folder).
    files : tuple of str
        Referenced instance files that exist (absolute paths), in directory order.
    missing : tuple of str
        Referenced File IDs (``A/B/C`` relative to the root) whose files are absent.
    """

    dicomdir: str
    root: str
    files: tuple[str, ...]
    missing: tuple[str, ...]


def find_dicomdir(folder: Path) -> Path | None:
    """The ``DICOMDIR`` file at the top of ``folder`` (any case), or None."""
    try:
        for entry in os.scandir(folder):
            if entry.name.upper() == "DICOMDIR" and entry.is_file():
                return Path(entry.path)
    except OSError:
        return None
    return None


def _components(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value]  # type: ignore[attr-defined]


def _check_file_id(dicomdir: Path, root: Path, parts: list[str], offset: int) -> None:
    shown = "\\".join(parts)
    for part in parts:
        stripped = part.strip()
        if (
            stripped in ("", ".", "..")
            or "/" in part
            or "\\" in part
            or os.sep in part
            or (os.altsep and os.altsep in part)
            or ":" in part
            or "\0" in part
        ):
            raise MediaError(
                str(dicomdir),
                f"refused: the directory record at offset {offset} has Referenced File ID "
                f"{shown!r}, which escapes the media root or is not a plain file name "
                f"(component {part!r}); nothing was imported from this DICOMDIR",
            )
    target = Path(os.path.realpath(root.joinpath(*[p.strip() for p in parts])))
    if not target.is_relative_to(root):
        raise MediaError(
            str(dicomdir),
            f"refused: Referenced File ID {shown!r} (record at offset {offset}) resolves to "
            f"{target}, outside the media root {root}; nothing was imported from this DICOMDIR",
        )


def _resolve(root: Path, parts: list[str]) -> Path | None:
    """The file a File ID names: as written, else matching each component case-insensitively."""
    path = root.joinpath(*parts)
    if path.is_file():
        return path
    here = root
    for part in parts:
        try:
            names = {name.upper(): name for name in os.listdir(here)}
        except OSError:
            return None
        match = names.get(part.upper()) or names.get(part.upper() + ".")  # ISO 9660 "NAME."
        if match is None:
            return None
        here = here / match
    return here if here.is_file() else None


def read_dicomdir(dicomdir: str | os.PathLike[str]) -> MediaPlan:
    """Read a DICOMDIR and list the instance files it references.

    Raises
    ------
    MediaError
        When the DICOMDIR cannot be read, is not a Media Storage Directory, or any record's
        Referenced File ID escapes the media root.
    """
    path = Path(dicomdir)
    root = Path(os.path.realpath(path.parent))
    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:
        raise MediaError(str(path), f"cannot read the DICOMDIR: {exc}") from exc
    records = ds.get("DirectoryRecordSequence")
    if records is None:
        raise MediaError(str(path), "not a DICOMDIR: no Directory Record Sequence")
    referenced: list[list[str]] = []
    for item in records:
        if "ReferencedFileID" not in item:
            continue
        parts = _components(item.ReferencedFileID)
        offset = getattr(item, "seq_item_tell", 0) or 0
        _check_file_id(path, root, parts, offset)
        if parts and "ReferencedSOPInstanceUIDInFile" in item:
            referenced.append(parts)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns once per missing file: listed below
            FileSet(ds)
    except PermissionError as exc:
        raise MediaError(str(path), f"refused: {exc}; nothing was imported") from exc
    except Exception as exc:
        raise MediaError(str(path), f"pydicom cannot load this DICOMDIR: {exc}") from exc
    files: list[str] = []
    missing: list[str] = []
    seen: set[str] = set()
    for parts in referenced:
        found = _resolve(root, parts)
        if found is None:
            missing.append("/".join(parts))
            continue
        real = os.path.realpath(found)
        if real not in seen:
            seen.add(real)
            files.append(str(found))
    return MediaPlan(dicomdir=str(path), root=str(root), files=tuple(files), missing=tuple(missing))
