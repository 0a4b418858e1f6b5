"""Presentation states and key-object documents in the local archive and on the network.

:class:`PresentationStateService` joins the pstate writers/readers to the archive and to C-STORE
(``pstate``, ``archive`` and ``net`` do not import each other; this is where they meet). The UI
calls it through callbacks wired in ``app/gui.py``; everything here blocks on disk or network, so
call it from a worker, never from the GUI thread.

- :meth:`~PresentationStateService.save_gsps` / :meth:`~PresentationStateService.save_kos`: write
  the object and store it in the archive as part of the study (its own series).
- :meth:`~PresentationStateService.for_study` / :meth:`~PresentationStateService.for_series`: the
  GSPS and KOS of a study, or those that reference a series, from the archive (headers read once
  and cached by content hash).
- :meth:`~PresentationStateService.load_gsps` / :meth:`~PresentationStateService.load_kos`.
- :meth:`~PresentationStateService.send`: C-STORE one of them to a node.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from workstation.archive.archive import Archive
from workstation.core.measurements import Measurement
from workstation.net.nodes import LocalIdentity, RemoteNode
from workstation.net.store_scu import StoreOutcome, store
from workstation.pstate.gsps_reader import GSPS_SOP_CLASS, read_gsps
from workstation.pstate.gsps_writer import WriterInfo, write_gsps
from workstation.pstate.kos import KOS_SOP_CLASS, KeyObjectDocument, read_kos, write_kos
from workstation.pstate.model import PresentationState

log = logging.getLogger(__name__)
audit = logging.getLogger("workstation.audit")

KINDS = {GSPS_SOP_CLASS: "GSPS", KOS_SOP_CLASS: "KOS"}


class PresentationStateError(Exception):
    """Saving, finding, loading or sending a presentation state failed; the message says what."""


@dataclass(frozen=True)
class StoredObject:
    """A GSPS or KOS in the archive, as listed for a study or series.

    Attributes
    ----------
    kind : str
        ``"GSPS"`` or ``"KOS"``.
    sop_instance_uid, study_uid, series_uid : str
        The object's own identifiers.
    label : str
        Content Label (GSPS) or the document title (KOS).
    description, creator : str
    created : datetime or None
    referenced_series : tuple of str
        Series whose images it references.
    referenced_images : tuple of str
        SOP Instance UIDs it references.
    path : Path
        The file in the archive.
    """

    kind: str
    sop_instance_uid: str
    study_uid: str
    series_uid: str
    label: str
    description: str
    creator: str
    created: datetime | None
    referenced_series: tuple[str, ...]
    referenced_images: tuple[str, ...]
    path: Path


def _part10(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _summary(path: Path, ds: Dataset) -> StoredObject:
    cls = str(ds.SOPClassUID)
    if cls == GSPS_SOP_CLASS:
        series = tuple(str(s.SeriesInstanceUID) for s in ds.get("ReferencedSeriesSequence") or [])
        images = tuple(
            str(r.ReferencedSOPInstanceUID)
            for s in ds.get("ReferencedSeriesSequence") or []
            for r in s.get("ReferencedImageSequence") or []
        )
        state = read_gsps(ds)
        return StoredObject(
            "GSPS", state.sop_instance_uid, state.study_uid, state.series_uid, state.label,
            state.description, state.creator, state.created, series, images, path,
        )  # fmt: skip
    doc = read_kos(ds)
    return StoredObject(
        "KOS", doc.sop_instance_uid, doc.study_uid, doc.series_uid, doc.title, doc.description,
        doc.creator, doc.created, tuple(dict.fromkeys(k.series_uid for k in doc.images if k.series_uid)),
        doc.sop_instance_uids, path,
    )  # fmt: skip


class PresentationStateService:
    """Presentation states and key images of the local archive.

    Parameters
    ----------
    archive : Archive
    identity : LocalIdentity, optional
        Our AE title for :meth:`send`.
    writer : WriterInfo, optional
        Equipment written into new objects.
    """

    def __init__(
        self,
        archive: Archive,
        *,
        identity: LocalIdentity | None = None,
        writer: WriterInfo | None = None,
    ) -> None:
        self.archive = archive
        self.identity = identity
        self.writer = writer or WriterInfo()
        self._cache: dict[tuple[str, str], StoredObject] = {}
        self._lock = threading.Lock()

    # --- saving ---------------------------------------------------------------------------------
    def _store(self, ds: Dataset, what: str) -> StoredObject:
        result = self.archive.add_bytes(_part10(ds), f"{what} saved by workstation")
        if not result.ok:
            raise PresentationStateError(
                f"the archive did not keep the {what} {ds.SOPInstanceUID}: "
                f"{result.status} {result.reason}"
            )
        audit.info("saved %s %s of study %s", what, ds.SOPInstanceUID, ds.StudyInstanceUID)
        if result.stored_path:
            path = Path(result.stored_path)
            path = path if path.is_absolute() else self.archive.path_of(result.stored_path)
        else:
            path = self._path_of(str(ds.SOPInstanceUID))
        return _summary(path, ds)

    def save_gsps(
        self,
        state: PresentationState,
        images: Sequence[Dataset],
        *,
        measurements: Mapping[str, Measurement] | None = None,
        series_number: int = 900,
    ) -> StoredObject:
        """Write ``state`` as a GSPS (see :func:`workstation.pstate.gsps_writer.write_gsps`) and
        store it in the archive with the study of its images."""
        ds = write_gsps(
            state, images, measurements=measurements, series_number=series_number,
            writer=self.writer,
        )  # fmt: skip
        return self._store(ds, "presentation state")

    def save_kos(
        self,
        images: Sequence[Dataset],
        *,
        title: str = "of_interest",
        description: str = "",
        series_number: int = 901,
        creator: str = "",
    ) -> StoredObject:
        """Write a Key Object Selection marking ``images`` (in that order) and store it in the
        archive."""
        ds = write_kos(
            images, title=title, description=description, series_number=series_number,
            writer=self.writer, creator=creator,
        )  # fmt: skip
        return self._store(ds, "key object selection")

    # --- listing --------------------------------------------------------------------------------
    def _path_of(self, sop_uid: str) -> Path:
        rows = list(self.archive.find("IMAGE", {"SOPInstanceUID": sop_uid, "rel_path": ""}))
        if not rows:
            raise PresentationStateError(f"no instance {sop_uid} in the archive")
        return self.archive.path_of(rows[0]["rel_path"])

    def for_study(self, study_uid: str) -> list[StoredObject]:
        """Every GSPS and KOS of the study in the archive, newest first. An unreadable one is
        logged and left out."""
        out: list[StoredObject] = []
        for cls in KINDS:
            rows = list(
                self.archive.find(
                    "IMAGE",
                    {
                        "StudyInstanceUID": study_uid,
                        "SOPClassUID": cls,
                        "rel_path": "",
                        "content_hash": "",
                    },
                )  # fmt: skip
            )
            for row in rows:
                key = (str(row["rel_path"]), str(row.get("content_hash", "")))
                with self._lock:
                    hit = self._cache.get(key)
                if hit is None:
                    path = self.archive.path_of(row["rel_path"])
                    try:
                        hit = _summary(path, pydicom.dcmread(str(path)))
                    except Exception as exc:  # a damaged object must not hide the others
                        log.warning("%s: cannot read %s: %s", path, KINDS[cls], exc)
                        continue
                    with self._lock:
                        self._cache[key] = hit
                out.append(hit)
        out.sort(key=lambda s: s.created or datetime.min, reverse=True)
        return out

    def for_series(self, series_uid: str) -> list[StoredObject]:
        """The GSPS and KOS (of the same study) that reference images of ``series_uid``."""
        rows = list(self.archive.find("SERIES", {"SeriesInstanceUID": series_uid,
                                                 "StudyInstanceUID": ""}))  # fmt: skip
        if not rows:
            return []
        study = str(rows[0]["StudyInstanceUID"])
        return [s for s in self.for_study(study) if series_uid in s.referenced_series]

    # --- loading and sending ----------------------------------------------------------------------
    def load_gsps(self, sop_uid: str) -> PresentationState:
        """The presentation state ``sop_uid`` from the archive."""
        return read_gsps(self._path_of(sop_uid))

    def load_kos(self, sop_uid: str) -> KeyObjectDocument:
        """The key object selection ``sop_uid`` from the archive."""
        return read_kos(self._path_of(sop_uid))

    def locate(self, sop_uids: Sequence[str]) -> dict[str, Path]:
        """The archive's file of each of ``sop_uids`` that it holds (absent ones left out)."""
        found: dict[str, Path] = {}
        wanted = list(dict.fromkeys(sop_uids))
        for start in range(0, len(wanted), 500):  # one query per block of UIDs
            chunk = "\\".join(wanted[start : start + 500])
            for row in self.archive.find("IMAGE", {"SOPInstanceUID": chunk, "rel_path": ""}):
                found.setdefault(str(row["SOPInstanceUID"]), self.archive.path_of(row["rel_path"]))
        return found

    def key_image_files(self, sop_uid: str) -> tuple[KeyObjectDocument, dict[str, Path]]:
        """The key object selection ``sop_uid`` and the files of the images it marks that the
        archive holds (an image absent from the archive has no entry)."""
        doc = self.load_kos(sop_uid)
        return doc, self.locate(doc.sop_instance_uids)

    def send(self, sop_uid: str, node: RemoteNode) -> StoreOutcome:
        """C-STORE one GSPS or KOS of the archive to ``node``.

        Raises
        ------
        PresentationStateError
            Not in the archive, no local identity configured, or the node refused it.
        workstation.net.errors.NetError
            The association failed (unreachable, rejected...).
        """
        if self.identity is None:
            raise PresentationStateError("no local AE title configured: cannot send")
        path = self._path_of(sop_uid)
        outcome = store(self.identity, node, [path])[0]
        audit.info("sent %s to %s: status %s", sop_uid, node.label, outcome.status)
        if not outcome.ok:
            raise PresentationStateError(
                f"{node.label} did not store {sop_uid}: "
                f"{outcome.message or f'status 0x{outcome.status:04X}'}"
            )
        return outcome


__all__ = ["KINDS", "PresentationStateError", "PresentationStateService", "StoredObject"]
