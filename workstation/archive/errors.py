"""Errors of the archive, each naming the archive, file or UID concerned and what to do."""

from __future__ import annotations


class ArchiveError(Exception):
    """Base class of the archive's errors."""


class SchemaError(ArchiveError):
    """The index database has a schema this version cannot use (newer, or damaged).

    Parameters
    ----------
    db_path : str
        The index file.
    reason : str
        What is wrong and what to do.
    """

    def __init__(self, db_path: str, reason: str) -> None:
        self.db_path = db_path
        self.reason = reason
        super().__init__(f"{db_path}: {reason}")


class NotAnInstanceError(ArchiveError, ValueError):
    """A DICOM file that is not a storable instance (a DICOMDIR, an object without UIDs)."""


class InvalidUIDError(NotAnInstanceError):
    """A UID that would become part of a store path is not a valid DICOM UID.

    Parameters
    ----------
    keyword : str
        Which attribute (``SOPInstanceUID``, ...).
    value : str
        The offending value (shown with ``repr`` so control characters are visible).
    reason : str
        Which rule it breaks.
    """

    def __init__(self, keyword: str, value: str, reason: str) -> None:
        self.keyword = keyword
        self.value = value
        self.reason = reason
        if value:
            super().__init__(f"invalid {keyword} {value!r}: {reason}")
        else:
            super().__init__(f"no {keyword}: it names the stored file and is required")


class QueryError(ArchiveError, ValueError):
    """A query key or value the archive cannot match (unknown level, malformed range, ...)."""


class MediaError(ArchiveError):
    """A DICOMDIR that is refused as a whole (a reference escapes the media, unreadable, ...).

    Parameters
    ----------
    path : str
        The DICOMDIR file.
    reason : str
        Why it is refused.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class NotFoundError(ArchiveError, KeyError):
    """A study or series UID that is not in the archive."""

    def __str__(self) -> str:  # KeyError quotes its argument; show the message as written
        return str(self.args[0]) if self.args else ""
