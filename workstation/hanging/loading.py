"""Loading protocol files: the built-ins, then user directories that override them by name.

A file that cannot be read or breaks the schema is reported (``file:line: what``) and skipped;
every other protocol still loads. Files are ``*.yaml`` / ``*.yml``, one protocol each, read in
name order.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from workstation.hanging.model import Protocol
from workstation.hanging.schema import parse_protocol
from workstation.hanging.yaml_lines import YamlError, load_yaml

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProtocolFileError:
    """One problem in one protocol file (``line`` 0: the file as a whole)."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}" if self.line else (
            f"{self.path}: {self.message}")  # fmt: skip


@dataclass(frozen=True)
class ProtocolSet:
    """The protocols in effect, the problems found while loading, and the built-ins replaced.

    Attributes
    ----------
    protocols : tuple of Protocol
        In name order; a user protocol stands in place of the built-in of the same name.
    errors : tuple of ProtocolFileError
    overridden : tuple of str
        ``"name: builtin file -> user file"`` for every override.
    """

    protocols: tuple[Protocol, ...]
    errors: tuple[ProtocolFileError, ...] = ()
    overridden: tuple[str, ...] = ()

    def __iter__(self):
        return iter(self.protocols)

    def __len__(self) -> int:
        return len(self.protocols)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.protocols)

    def get(self, name: str) -> Protocol:
        """The protocol called ``name`` (exact, else case-insensitive).

        Raises
        ------
        KeyError
            Naming the protocols there are.
        """
        for p in self.protocols:
            if p.name == name:
                return p
        for p in self.protocols:
            if p.name.lower() == name.lower():
                return p
        raise KeyError(f"no hanging protocol called {name!r} (there are: "
                       f"{', '.join(self.names) or 'none'})")  # fmt: skip


def builtin_dir() -> Path:
    """``workstation/resources/hanging_protocols``."""
    return Path(str(resources.files("workstation") / "resources" / "hanging_protocols"))


def load_protocol_text(text: str, path: str = "<text>", level: str = "user") -> tuple[
    Protocol | None, list[ProtocolFileError]
]:  # fmt: skip
    """Parse and check one protocol held in ``text`` (``path`` names it in errors)."""
    try:
        data = load_yaml(text)
    except YamlError as exc:
        return None, [ProtocolFileError(path, exc.line, exc.message)]
    protocol, problems = parse_protocol(data, level=level, source=path)
    return protocol, [ProtocolFileError(path, line, msg) for line, msg in sorted(problems)]


def load_protocol_file(path: str | Path, level: str = "user") -> tuple[
    Protocol | None, list[ProtocolFileError]
]:  # fmt: skip
    """Read one protocol file; ``(None, errors)`` when it is unreadable or invalid."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [ProtocolFileError(str(path), 0, f"cannot read: {exc}")]
    return load_protocol_text(text, str(path), level)


def _files(directory: Path) -> Iterable[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir()
                  if p.suffix.lower() in (".yaml", ".yml") and p.is_file())  # fmt: skip


def load_protocols(
    user_dirs: Sequence[str | Path] = (),
    *,
    builtin: bool = True,
    builtins: str | Path | None = None,
) -> ProtocolSet:
    """Load the built-in protocols, then each user directory in order.

    Parameters
    ----------
    user_dirs : sequence of path
        Directories of user (or site) protocols; a protocol there replaces one of the same name
        loaded before it. A directory that does not exist is skipped.
    builtin : bool
        Load the built-ins (False: only ``user_dirs``).
    builtins : path, optional
        Another directory to read as the built-ins (tests).

    Returns
    -------
    ProtocolSet
        Broken files are in ``errors`` (also logged as warnings), the rest in ``protocols``.
    """
    by_name: dict[str, Protocol] = {}
    errors: list[ProtocolFileError] = []
    overridden: list[str] = []
    sources: list[tuple[Path, str]] = []
    if builtin:
        sources.append((Path(builtins) if builtins else builtin_dir(), "builtin"))
    sources += [(Path(d), "user") for d in user_dirs]
    for directory, level in sources:
        seen_here: dict[str, str] = {}
        for path in _files(directory):
            protocol, problems = load_protocol_file(path, level)
            if protocol is None:
                errors.extend(problems)
                continue
            key = protocol.name.lower()
            if key in seen_here:
                errors.append(ProtocolFileError(str(path), 0, f"protocol {protocol.name!r} is "
                              f"already defined in {seen_here[key]}; this file is skipped"))  # fmt: skip
                continue
            seen_here[key] = str(path)
            if key in by_name:
                overridden.append(f"{protocol.name}: {by_name[key].source} -> {path}")
            by_name[key] = protocol
    for e in errors:
        log.warning("hanging protocol skipped: %s", e)
    protocols = tuple(sorted(by_name.values(), key=lambda p: p.name.lower()))
    return ProtocolSet(protocols, tuple(errors), tuple(overridden))
