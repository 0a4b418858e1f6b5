"""One-click registration between two frames of reference, remembered per pair.

Two CT series of the same patient from different visits do not share a Frame of Reference: the
table and the patient moved, so "the same patient coordinate" is not the same anatomy. The user
clicks the same structure in both (a vertebra, the carina); the difference of the two patient
points is a translation from one space to the other. Linked scrolling and locate then go through
it. The translation is remembered for the pair (both directions) in a small JSON file, so the next
time the same two studies are compared they link at once.

A space is named by its Frame of Reference UID; an image without one is named by its series
(``series:<uid>``), which :func:`space_key` builds.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from workstation.core.atomic_file import write_text_atomic

log = logging.getLogger(__name__)


def space_key(frame_of_reference_uid: str, series_uid: str = "") -> str:
    """The name of an image's patient space: its Frame of Reference, else its series."""
    if frame_of_reference_uid:
        return frame_of_reference_uid
    return f"series:{series_uid}" if series_uid else ""


@dataclass(frozen=True)
class Registration:
    """``point_in_target = point_in_source + translation`` (patient mm)."""

    source: str
    target: str
    translation: tuple[float, float, float]
    created: str = ""

    def inverse(self) -> Registration:
        t = self.translation
        return Registration(self.target, self.source, (-t[0], -t[1], -t[2]), self.created)

    def apply(self, point: Sequence[float] | np.ndarray) -> np.ndarray:
        return np.asarray(point, dtype=float).reshape(3) + np.asarray(self.translation)


def registration_from_points(
    source: str,
    point_in_source: Sequence[float] | np.ndarray,
    target: str,
    point_in_target: Sequence[float] | np.ndarray,
) -> Registration:
    """The translation that takes the clicked point of ``source`` onto that of ``target``."""
    if not source or not target:
        raise ValueError("registration needs both images to have a patient space")
    if source == target:
        raise ValueError("both points are in the same frame of reference: nothing to register")
    a = np.asarray(point_in_source, dtype=float).reshape(3)
    b = np.asarray(point_in_target, dtype=float).reshape(3)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("registration points must be finite")
    t = b - a
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    return Registration(source, target, (float(t[0]), float(t[1]), float(t[2])), stamp)


class RegistrationBook:
    """The registrations the user has made, by pair of spaces, saved to ``path`` on each change.

    Parameters
    ----------
    path : path-like or None
        JSON file; None keeps them in memory only. A damaged file is reported in the log and set
        aside (renamed ``.damaged``), never silently overwritten.
    """

    VERSION = 1

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._pairs: dict[tuple[str, str], Registration] = {}
        self._listeners: list[Callable[[Registration], None]] = []
        if self.path is not None and self.path.exists():
            self._load()

    def subscribe(self, listener: Callable[[Registration], None]) -> None:
        self._listeners.append(listener)

    def get(self, source: str, target: str) -> Registration | None:
        """The registration from ``source`` to ``target`` (stored either way round), or None."""
        if not source or not target or source == target:
            return None
        r = self._pairs.get((source, target))
        if r is not None:
            return r
        r = self._pairs.get((target, source))
        return r.inverse() if r is not None else None

    def set(self, registration: Registration) -> None:
        """Remember ``registration`` (replacing any for the same pair, either direction)."""
        self._pairs.pop((registration.target, registration.source), None)
        self._pairs[(registration.source, registration.target)] = registration
        self._save()
        for listener in list(self._listeners):
            listener(registration)

    def forget(self, source: str, target: str) -> None:
        self._pairs.pop((source, target), None)
        self._pairs.pop((target, source), None)
        self._save()

    def __len__(self) -> int:
        return len(self._pairs)

    def _load(self) -> None:
        assert self.path is not None
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            for item in data["registrations"]:
                t = tuple(float(v) for v in item["translation"])
                if len(t) != 3:
                    raise ValueError(f"translation {t} is not three numbers")
                r = Registration(
                    str(item["source"]), str(item["target"]), t, item.get("created", "")
                )
                self._pairs[(r.source, r.target)] = r
        except (OSError, ValueError, KeyError, TypeError) as exc:
            aside = self.path.with_suffix(self.path.suffix + ".damaged")
            log.error("registrations file %s is damaged (%s); moved to %s", self.path, exc, aside)
            self._pairs.clear()
            try:
                os.replace(self.path, aside)
            except OSError:
                pass

    def _save(self) -> None:
        if self.path is None:
            return
        items = [
            {
                "source": r.source,
                "target": r.target,
                "translation": list(r.translation),
                "created": r.created,
            }
            for r in self._pairs.values()
        ]
        text = json.dumps({"version": self.VERSION, "registrations": items}, indent=1)
        try:
            write_text_atomic(self.path, text + "\n")
        except OSError as exc:
            log.error("could not save registrations to %s: %s", self.path, exc)
