"""Values the archive returns: frozen, so they may cross threads (DESIGN rule 2)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class AddStatus(StrEnum):
    """What happened to one instance offered to the archive."""

    IMPORTED = "imported"  # new: stored and indexed
    DUPLICATE = "duplicate"  # same SOP Instance UID with the same content: skipped
    CONFLICT = "conflict"  # same SOP Instance UID, different content: kept aside, reported
    REJECTED = "rejected"  # not stored: not DICOM, no UIDs, invalid UID, write error, ...


@dataclass(frozen=True)
class AddResult:
    """The outcome for one file or received instance.

    Attributes
    ----------
    status : AddStatus
    source : str
        Where it came from: a file path, or ``"c-store from AE@host"``.
    sop_instance_uid : str
        Empty when the object could not be identified.
    reason : str
        Why it was rejected, or what the conflict is; empty when imported.
    stored_path : str
        The file in the managed store (for imported and conflicting instances).
    """

    status: AddStatus
    source: str
    sop_instance_uid: str = ""
    study_instance_uid: str = ""
    reason: str = ""
    stored_path: str = ""

    @property
    def ok(self) -> bool:
        """True when the instance is in the archive afterwards (new or already there)."""
        return self.status in (AddStatus.IMPORTED, AddStatus.DUPLICATE)


class ArchiveWriteError(OSError):
    """Writing to the store failed (disk full, permissions): nothing partial was indexed."""
