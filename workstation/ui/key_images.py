"""The images of a key object selection as one stack for a viewport.

A Key Object Selection document (KOS) names images, possibly from several series, in an order
of its own. :func:`key_image_display_set` turns the headers of the archive's files of those
images into a :class:`~workstation.core.display_sets.DisplaySet` holding only the marked
frames, in document order (never re-sorted by position); :func:`open_key_images` reads the
headers and builds the :class:`~workstation.core.frame_source.FrameSource` a viewport shows
(blocking: run it off the GUI thread). What the document names but the archive does not hold
or cannot show is listed, not dropped silently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from os import PathLike

from workstation.core.annotations import ImageRef
from workstation.core.decoders import DecoderRegistry
from workstation.core.display_sets import (
    DisplaySet,
    FrameRef,
    HeaderRecord,
    image_exclusion_reason,
    read_header_records,
)
from workstation.core.frame_cache import FrameCache
from workstation.core.frame_source import FrameSource
from workstation.core.geometry import plane_from_dataset
from workstation.pstate.kos import KeyObjectDocument


@dataclass(frozen=True)
class KeyImageStack:
    """A key object selection opened for viewing.

    Attributes
    ----------
    document : KeyObjectDocument
    source : FrameSource or None
        The marked frames in document order; None when none of them can be shown.
    marked : tuple of (series uid, ImageRef)
        Every frame of the stack as the image it is (to count it as a key image).
    missing : tuple of (SOP Instance UID, reason)
        Images of the document that are not shown: not in the archive, unreadable, not an
        image, or a frame number the image does not have.
    """

    document: KeyObjectDocument
    source: FrameSource | None
    marked: tuple[tuple[str, ImageRef], ...]
    missing: tuple[tuple[str, str], ...]

    def missing_text(self) -> str:
        """A line for the status: how many images are not shown and which, by UID."""
        if not self.missing:
            return ""
        n = len(self.missing)
        names = "; ".join(f"{uid} ({why})" for uid, why in self.missing[:3])
        more = f" and {n - 3} more" if n > 3 else ""
        return f"{n} key image{'s are' if n != 1 else ' is'} not shown: {names}{more}"


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _plane(ds, index: int | None):
    try:
        return plane_from_dataset(ds, index)
    except Exception:  # noqa: BLE001 - a frame without usable geometry is still shown
        return None


def key_image_display_set(
    document: KeyObjectDocument, records: Sequence[HeaderRecord]
) -> tuple[DisplaySet | None, list[tuple[str, ImageRef]], list[tuple[str, str]]]:
    """The marked frames of ``document`` found in ``records``, as one display set.

    Parameters
    ----------
    document : KeyObjectDocument
    records : sequence of HeaderRecord
        Headers of the archive's files of the document's images (any order).

    Returns
    -------
    (display set or None, marked, missing)
        The set lists the frames in document order (an image referenced without frame numbers
        contributes every frame); ``marked`` gives each frame's series and image; ``missing``
        the ``(SOP Instance UID, reason)`` of each image not shown.
    """
    by_uid = {str(r.ds.get("SOPInstanceUID", "")): r for r in records}
    frames: list[FrameRef] = []
    marked: list[tuple[str, ImageRef]] = []
    missing: list[tuple[str, str]] = []
    seen: set[tuple[str, int | None]] = set()
    for key in document.images:
        uid, wanted = key.image.sop_instance_uid, key.image.frame_number
        rec = by_uid.get(uid)
        if rec is None:
            missing.append((uid, "not in the archive"))
            continue
        ds = rec.ds
        why = image_exclusion_reason(ds, rec.has_pixel_data)
        if why is not None:
            missing.append((uid, why))
            continue
        n = _int(ds.get("NumberOfFrames")) or 1
        enhanced = "PerFrameFunctionalGroupsSequence" in ds
        if wanted is not None and not 1 <= wanted <= n:
            missing.append((uid, f"frame {wanted} of {n}"))
            continue
        if n > 1:
            indices: list[int | None] = [wanted - 1] if wanted is not None else list(range(n))
        else:
            indices = [0 if enhanced else None]
        number = _int(ds.get("InstanceNumber"))
        series = str(ds.get("SeriesInstanceUID", "") or key.series_uid)
        cls = str(ds.get("SOPClassUID", "") or key.image.sop_class_uid)
        for index in indices:
            frame_number = index + 1 if index is not None else None
            if (uid, frame_number) in seen:
                continue
            seen.add((uid, frame_number))
            frames.append(FrameRef(rec.path, index, number, _plane(ds, index), uid))
            marked.append((series, ImageRef(uid, frame_number, cls)))
    if not frames:
        return None, marked, missing
    label = document.title or "Key images"
    if document.description:
        label = f"{label}: {document.description}"
    modalities = {str(by_uid[f.sop_instance_uid or ""].ds.get("Modality", "")) for f in frames}
    display_set = DisplaySet(
        uid=f"kos:{document.sop_instance_uid}",
        series_uid=document.series_uid,
        label=label,
        kind="stack" if len(frames) > 1 else "single",
        frames=tuple(frames),
        orientation=None,  # never re-sorted: the document's order is the reading order
        is_localizer=False,
        notes=(f"{len(frames)} key image{'s' if len(frames) != 1 else ''}",),
        geometry_ok=False,
        geometry_problem="key images: the document's order, not a volume",
        modality=modalities.pop() if len(modalities) == 1 else "",
        study_uid=document.study_uid,
    )
    return display_set, marked, missing


def open_key_images(
    document: KeyObjectDocument,
    files: Mapping[str, str | PathLike[str]],
    cache: FrameCache,
    registry: DecoderRegistry | None = None,
) -> KeyImageStack:
    """Read the headers of the key images' ``files`` (SOP Instance UID -> path) and build the
    stack (blocking: call it off the GUI thread)."""
    paths = list(dict.fromkeys(str(p) for p in files.values()))
    records, problems = read_header_records(paths) if paths else ([], [])
    display_set, marked, missing = key_image_display_set(document, records)
    unreadable = dict(problems)
    if unreadable:  # "not in the archive" is wrong for a file that is there but unreadable
        missing = [
            (uid, f"unreadable: {unreadable[str(files[uid])]}")
            if uid in files and str(files[uid]) in unreadable
            else (uid, why)
            for uid, why in missing
        ]
    source = None
    if display_set is not None:
        source = FrameSource(display_set, {r.path: r.ds for r in records}, cache, registry)
    return KeyImageStack(document, source, tuple(marked), tuple(missing))


__all__ = ["KeyImageStack", "key_image_display_set", "open_key_images"]
