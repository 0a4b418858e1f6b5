"""Settings remembered between sessions, in a YAML file the caller names (``HOME/settings.yaml``).

``Settings.load`` never raises on a bad file: it keeps a copy beside it (``settings.yaml.bad``),
uses the defaults for what it could not read, and says what happened in ``problems``. Entries this
version does not know are kept and written back, so an older program does not erase a newer one's
settings. ``save`` writes a temporary file and renames it over the old one.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import shutil
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from workstation.core.atomic_file import write_text_atomic

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
SYNC_MODES = ("position", "index", "off")
CACHE_BUDGET_CAP_MB = 4096
CACHE_BUDGET_MIN_MB = 64
_FALLBACK_CACHE_BUDGET_MB = 1024


def default_cache_budget_mb() -> int:
    """A quarter of the physical memory, at most 4096 MB (1024 MB where it cannot be measured)."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return _FALLBACK_CACHE_BUDGET_MB
    if physical <= 0:
        return _FALLBACK_CACHE_BUDGET_MB
    quarter = physical // 4 // (1024 * 1024)
    return max(CACHE_BUDGET_MIN_MB, min(quarter, CACHE_BUDGET_CAP_MB))


@dataclass
class Settings:
    """What the workstation remembers. Change the fields, then call ``save()``.

    Attributes
    ----------
    path : Path
        The file the settings are read from and saved to.
    window_geometry, window_state : bytes or None
        ``QMainWindow.saveGeometry()`` / ``saveState()`` (stored base64).
    last_layout : str
        The viewer layout last used ("1x1", "2x2", "1+2", ...).
    cache_budget_mb : int
        Memory for decoded frames, MB; default a quarter of physical memory, at most 4096.
    cine_fps : float
        Cine frame rate when the file gives none.
    show_reference_lines : bool
    sync_mode : str
        "position" (same frame of reference), "index" or "off".
    link_window_level, link_zoom : bool
        Whether window/level and zoom follow between viewports.
    last_import_folder : str or None
    extra : dict
        Entries this version does not know, kept as they were.
    problems : list of str
        What went wrong while loading (empty when all was well).
    """

    path: Path
    window_geometry: bytes | None = None
    window_state: bytes | None = None
    last_layout: str = "1x1"
    cache_budget_mb: int = field(default_factory=default_cache_budget_mb)
    cine_fps: float = 15.0
    show_reference_lines: bool = True
    sync_mode: str = "position"
    link_window_level: bool = False
    link_zoom: bool = False
    last_import_folder: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)
    problems: list[str] = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def load(cls, path: Path | str) -> Settings:
        """Read the settings file; a missing file gives the defaults, a bad one defaults + a problem.

        Parameters
        ----------
        path : Path or str
            The settings file (need not exist).

        Returns
        -------
        Settings
            With ``problems`` naming what was wrong; the bad file is copied to ``PATH.bad``.
        """
        path = Path(path)
        settings = cls(path=path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return settings
        except (OSError, UnicodeDecodeError) as exc:
            settings._set_aside(f"cannot read {path}: {exc}")
            return settings
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
            settings._set_aside(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})")
            return settings
        if data is None:
            return settings
        if not isinstance(data, dict):
            settings._set_aside(
                f"{path}: expected a mapping of settings, got {type(data).__name__}"
            )
            return settings
        settings._read(data)
        if settings.problems:
            settings._set_aside(None)
        return settings

    def _read(self, data: dict) -> None:
        known = {f.name: f for f in fields(self) if f.name not in _NOT_STORED}
        version = data.pop("version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            self.problems.append(
                f"{self.path}: settings version {version!r} (this program writes 1)"
            )
        for key, value in data.items():
            if key not in known:
                self.extra[key] = value
                continue
            try:
                setattr(self, key, _CHECKS[key](value))
            except (TypeError, ValueError) as exc:
                self.problems.append(f"{self.path}: {key}: {exc}; the default is used")

    def _set_aside(self, problem: str | None) -> None:
        """Keep a copy of the bad file as PATH.bad (so saving does not lose it) and note it."""
        if problem is not None:
            self.problems.append(problem)
        bad = self.path.with_name(self.path.name + ".bad")
        try:
            shutil.copyfile(self.path, bad)
        except OSError as exc:
            self.problems.append(f"could not keep a copy of {self.path} as {bad}: {exc}")
            return
        self.problems.append(f"the file as it was is kept in {bad}")
        log.warning("settings: %s", "; ".join(self.problems))

    def to_dict(self) -> dict[str, Any]:
        """The settings as written to the file (bytes as base64 text, unknown entries kept)."""
        data: dict[str, Any] = {"version": FORMAT_VERSION}
        for f in fields(self):
            if f.name in _NOT_STORED:
                continue
            value = getattr(self, f.name)
            if isinstance(value, bytes | bytearray):
                value = base64.b64encode(bytes(value)).decode("ascii")
            data[f.name] = value
        for key, value in self.extra.items():
            data.setdefault(key, value)
        return data

    def save(self) -> None:
        """Write the settings atomically (a temporary file in the same folder, then a rename).

        Raises
        ------
        OSError
            When the folder or file cannot be written; the old file is then left as it was.
        """
        text = "# Workstation settings, written by the program; edit while it is closed.\n"
        text += yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)
        write_text_atomic(self.path, text, sync_dir=False)


_NOT_STORED = ("path", "extra", "problems")


def _bytes(value: Any) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"expected base64 text, got {type(value).__name__}")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError(f"not base64: {exc}") from None


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TypeError(f"expected text, got {value!r}")
    return value


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {value!r}")
    return value


def _cache_budget(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected a whole number of MB, got {value!r}")
    if value < CACHE_BUDGET_MIN_MB:
        raise ValueError(f"{value} MB is below the minimum of {CACHE_BUDGET_MIN_MB} MB")
    return value


def _fps(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected frames per second, got {value!r}")
    if not 0.1 <= value <= 240:
        raise ValueError(f"{value} frames per second is outside 0.1-240")
    return float(value)


def _sync_mode(value: Any) -> str:
    if value not in SYNC_MODES:
        raise ValueError(f"expected one of {', '.join(SYNC_MODES)}, got {value!r}")
    return value


_CHECKS = {
    "window_geometry": _bytes,
    "window_state": _bytes,
    "last_layout": _text,
    "cache_budget_mb": _cache_budget,
    "cine_fps": _fps,
    "show_reference_lines": _flag,
    "sync_mode": _sync_mode,
    "link_window_level": _flag,
    "link_zoom": _flag,
    "last_import_folder": _optional_text,
}
