"""From files to a :class:`~workstation.render.volume_image.VolumeImage`: pick the stack, load it.

Single-frame series load through :class:`~workstation.core.series_loader.SeriesLoader` (worker
processes writing modality values into shared memory); frames of an enhanced multi-frame object
are decoded in this process with :class:`~workstation.core.dicom_file.DicomFile`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from workstation.core.decoders import DecoderRegistry
from workstation.core.dicom_file import DicomFile
from workstation.core.display_sets import DisplaySet, build_display_sets, read_header_records
from workstation.core.modality_lut import modality_transform
from workstation.core.series_loader import SeriesLoader
from workstation.core.volume import assemble_volume
from workstation.render.volume_image import VolumeImage, build_volume_image

VOLUME_KINDS = ("stack", "multiframe-stack")


class NoVolumeError(ValueError):
    """The files hold no display set that can be reformatted; the message says why."""


def volume_display_sets(display_sets: Sequence[DisplaySet]) -> list[DisplaySet]:
    """Display sets that can be reformatted (stacks with a volume geometry), largest first."""
    usable = [
        d
        for d in display_sets
        if d.kind in VOLUME_KINDS and d.geometry_ok and not d.is_localizer and len(d.frames) >= 2
    ]
    return sorted(usable, key=lambda d: -len(d.frames))


def choose_display_set(
    paths: Sequence[str | os.PathLike[str]], series_uid: str | None = None
) -> tuple[DisplaySet, list[tuple[str, str]]]:
    """The stack to reformat from files or folders: the largest, or the one of ``series_uid``.

    Returns
    -------
    (display_set, problems)
        ``problems`` lists unreadable files ``(path, reason)`` that were skipped.

    Raises
    ------
    NoVolumeError
        When no display set (of that series) is a volume; the message lists what was found.
    """
    records, problems = read_header_records(paths)
    sets = build_display_sets(records)
    candidates = volume_display_sets(sets)
    if series_uid:
        candidates = [d for d in candidates if series_uid in (d.series_uid, d.uid)]
    if candidates:
        return candidates[0], problems
    where = ", ".join(os.fspath(p) for p in paths)
    if not sets:
        raise NoVolumeError(f"{where}: no images found ({len(problems)} files skipped)")
    found = "; ".join(
        f"{d.label} ({len(d.frames)} frames, {d.kind}"
        + (f", {d.geometry_problem}" if d.geometry_problem else "")
        + ")"
        for d in sets[:8]
    )
    what = f"series {series_uid}" if series_uid else "any display set"
    raise NoVolumeError(f"{where}: {what} cannot be reformatted as a volume; found: {found}")


def load_volume_image(
    display_set: DisplaySet,
    loader: SeriesLoader | None = None,
    registry: DecoderRegistry | None = None,
) -> VolumeImage:
    """Decode a display set's frames and build its :class:`VolumeImage`.

    Parameters
    ----------
    display_set : DisplaySet
        A stack whose geometry is a volume (see :func:`volume_display_sets`).
    loader : SeriesLoader, optional
        A running loader to reuse; without one a loader is started and closed for this call.
    registry : DecoderRegistry, optional
        Fallback decoders for multi-frame objects and for a loader started here.

    Raises
    ------
    NoVolumeError
        When the geometry is not a volume or slices cannot be decoded (each file is named).
    """
    if not display_set.geometry_ok:
        raise NoVolumeError(f"{display_set.label}: not a volume: {display_set.geometry_problem}")
    planes = [f.plane for f in display_set.frames]
    if all(f.frame_index is None for f in display_set.frames):
        own = loader is None
        active = loader or SeriesLoader(registry)
        try:
            loaded = active.load([f.path for f in display_set.frames])
        finally:
            if own:
                active.close()
        if loaded.failures:
            listed = "; ".join(f"{p}: {why}" for p, why in loaded.failures[:5])
            raise NoVolumeError(
                f"{display_set.label}: {len(loaded.failures)} of {len(planes)} slices could not "
                f"be decoded ({listed})"
            )
        values = loaded.volume
    else:
        files: dict[str, DicomFile] = {}

        def frame_values(ref) -> np.ndarray:
            f = files.get(ref.path) or files.setdefault(
                ref.path, DicomFile.open(ref.path, registry)
            )
            index = ref.frame_index or 0
            return modality_transform(f.dataset(), index).apply(f.frame(index).stored)

        try:
            values, _ = assemble_volume(display_set, frame_values)
        except ValueError as exc:
            raise NoVolumeError(str(exc)) from None
    try:
        return build_volume_image(values, planes, modality=display_set.modality)  # type: ignore[arg-type]
    except ValueError as exc:
        raise NoVolumeError(f"{display_set.label}: {exc}") from None
