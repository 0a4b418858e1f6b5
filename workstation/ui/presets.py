"""Window/level presets per modality: the shipped YAML file plus the user's overrides.

The shipped presets live in ``workstation/resources/window_presets.yaml``; a user file with the same
layout adds presets, changes them by (modality, name), moves keys and removes presets::

    version: 1
    presets:
      CT:
        Brain: {center: 35, width: 90}                      # new values, keeps key 1
        Temporal bone: {center: 600, width: 2800, key: 3}   # key 3 moves here from Stroke
        Liver: {remove: true}
      MR:
        T2 brain: {center: 500, width: 1000, key: 1}

Every problem is reported as ``FILE:LINE: what is wrong``. This module also holds the small YAML
reader that keeps line numbers (``read_yaml_file``), which the key bindings loader shares.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

FORMAT_VERSION = 1
T = TypeVar("T")
_FIELDS = ("center", "width", "key", "remove")
_MODALITY = re.compile(r"^[A-Z0-9]{1,16}$")


# --------------------------------------------------------------------------------------------------
# YAML with line numbers


class YamlMap(dict):
    """A YAML mapping as a dict that remembers where it and each of its keys stand (1-based lines)."""

    line: int = 0
    key_lines: dict[Any, int]


class YamlList(list):
    """A YAML sequence as a list that remembers where it and each of its items stand."""

    line: int = 0
    item_lines: list[int]


class _LocatingLoader(yaml.SafeLoader):
    """A safe loader that builds ``YamlMap``/``YamlList`` and refuses duplicate mapping keys."""


def _construct_map(loader: _LocatingLoader, node: yaml.MappingNode) -> YamlMap:
    loader.flatten_mapping(node)
    result = YamlMap()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            duplicate = key in result
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark
            ) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate entry {key!r} (first on line {result.key_lines[key]})",
                key_node.start_mark,
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = line
    return result


def _construct_list(loader: _LocatingLoader, node: yaml.SequenceNode) -> YamlList:
    result = YamlList(loader.construct_object(item, deep=True) for item in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [item.start_mark.line + 1 for item in node.value]
    return result


_LocatingLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_LocatingLoader.add_constructor("tag:yaml.org,2002:seq", _construct_list)


class TunableFileError(ValueError):
    """A tunable-data file (presets, bindings) cannot be used; one ``FILE:LINE: message`` per problem.

    Attributes
    ----------
    problems : tuple[str, ...]
        Every problem found, not just the first.
    """

    def __init__(self, message: str, problems: Iterable[str] | None = None) -> None:
        self.problems = tuple(problems) if problems is not None else (message,)
        super().__init__(message)


def read_user_text(
    user_file: Path | None, error: type[TunableFileError]
) -> tuple[Path, str] | None:
    """The user's file and its text, or None when there is none (not having one is fine)."""
    if user_file is None or not Path(user_file).exists():
        return None
    user_file = Path(user_file)
    try:
        return user_file, user_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{user_file}: cannot read: {exc}") from None


def load_or_defaults(
    load: Callable[[Path | None], T],
    user_file: Path | None,
    error: type[TunableFileError],
    empty: Callable[[], T],
    what: str,
) -> tuple[T, list[str]]:
    """``load(user_file)``; when that fails, ``load(None)`` (or ``empty()``) and the problems."""
    try:
        return load(user_file), []
    except error as exc:
        problems = list(exc.problems)
    try:
        value = load(None)
    except (error, OSError) as exc:  # the shipped file is broken: a packaging bug
        problems.append(str(exc))
        value = empty()
    return value, problems + [f"the shipped {what} are used instead"]


def read_yaml_file(path: Path | str, text: str, error: type[ValueError]) -> Any:
    """Parse YAML text into plain values, mappings and lists that carry their line numbers.

    Parameters
    ----------
    path : Path or str
        Where the text came from, for messages.
    text : str
        The YAML text.
    error : type of ValueError
        The exception to raise, with the message ``"PATH:LINE: problem"``.

    Returns
    -------
    object
        ``None`` for an empty document, else a ``YamlMap``, ``YamlList`` or scalar.
    """
    try:
        return yaml.load(text, Loader=_LocatingLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        what = " ".join(part for part in (exc.context, exc.problem) if part)
        raise error(f"{path}:{line}: not valid YAML: {what}") from None
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from None


def check_version(data: YamlMap, path: Path | str, problems: list[str]) -> None:
    """Check the optional ``version`` entry of a tunable-data file (format 1 only)."""
    version = data.get("version", FORMAT_VERSION)
    if version != FORMAT_VERSION or isinstance(version, bool):
        line = data.key_lines.get("version", data.line)
        problems.append(
            f"{path}:{line}: version {version!r} is not understood; this program reads version "
            f"{FORMAT_VERSION}"
        )


def packaged_resource(name: str) -> Path:
    """The path of a file under ``workstation/resources`` (package data)."""
    return Path(str(resources.files("workstation").joinpath("resources", name)))


# --------------------------------------------------------------------------------------------------
# Presets


class PresetError(TunableFileError):
    """A presets file cannot be used. The message says ``FILE:LINE: what is wrong`` per problem.

    Attributes
    ----------
    problems : tuple[str, ...]
        One ``FILE:LINE: message`` line per problem found (all of them, not just the first).
    """


@dataclass(frozen=True)
class WindowPreset:
    """A named window for one modality.

    Attributes
    ----------
    modality : str
        DICOM modality code (``CT``, ``MR``, ...), upper case.
    name : str
        What the user reads in menus ("Brain").
    center, width : float
        Window centre and width in the modality's output units; width > 0.
    key : int or None
        The digit 1-9 that applies the preset, or None.
    """

    modality: str
    name: str
    center: float
    width: float
    key: int | None = None


class PresetBook:
    """All presets, by modality; immutable once built.

    Parameters
    ----------
    presets : iterable of WindowPreset
        Each (modality, name) once, each key at most once per modality.
    sources : iterable of Path
        The files the presets came from (shipped file first), for the help panel.
    """

    def __init__(self, presets: Iterable[WindowPreset], sources: Iterable[Path] = ()) -> None:
        by_modality: dict[str, list[WindowPreset]] = {}
        for preset in presets:
            by_modality.setdefault(preset.modality, []).append(preset)
        self._by_modality = {
            modality: tuple(sorted(items, key=_preset_order))
            for modality, items in sorted(by_modality.items())
        }
        self.sources = tuple(sources)

    def modalities(self) -> list[str]:
        """The modalities that have presets, sorted."""
        return list(self._by_modality)

    def for_modality(self, modality: str) -> list[WindowPreset]:
        """The presets of a modality, keyed ones first by key, then the rest by name."""
        return list(self._by_modality.get(modality.strip().upper(), ()))

    def by_key(self, modality: str, key: int) -> WindowPreset | None:
        """The preset a digit key applies for a modality, or None."""
        for preset in self._by_modality.get(modality.strip().upper(), ()):
            if preset.key == key:
                return preset
        return None

    def __iter__(self):
        for items in self._by_modality.values():
            yield from items

    def __len__(self) -> int:
        return sum(len(items) for items in self._by_modality.values())

    def __repr__(self) -> str:
        counts = ", ".join(f"{m}: {len(p)}" for m, p in self._by_modality.items())
        return f"PresetBook({counts})"


def _preset_order(preset: WindowPreset) -> tuple:
    return (preset.key is None, preset.key or 0, preset.name.casefold())


@dataclass(frozen=True)
class _Entry:
    """One preset entry of one file, as written (fields the file did not give are absent)."""

    modality: str
    name: str
    fields: dict[str, Any]
    line: int
    path: str

    def where(self) -> str:
        return f"{self.path}:{self.line}"


def default_presets_file() -> Path:
    """The shipped presets file."""
    return packaged_resource("window_presets.yaml")


def load_presets(user_file: Path | None = None) -> PresetBook:
    """Load the shipped presets and apply the user's file on top.

    Parameters
    ----------
    user_file : Path or None
        The user's presets (e.g. ``HOME/window_presets.yaml``); a missing file is not an error.

    Returns
    -------
    PresetBook

    Raises
    ------
    PresetError
        When either file cannot be read or is not valid; the message names file, line and problem.
    """
    default_path = default_presets_file()
    book: dict[tuple[str, str], WindowPreset] = {}
    _apply(book, _read_entries(default_path, default_path.read_text(encoding="utf-8")))
    sources = [default_path]
    user = read_user_text(user_file, PresetError)
    if user is not None:
        _apply(book, _read_entries(*user))
        sources.append(user[0])
    return PresetBook(book.values(), sources)


def load_presets_or_defaults(user_file: Path | None = None) -> tuple[PresetBook, list[str]]:
    """Like ``load_presets``, but a bad user file gives the shipped presets and the problems to show.

    Returns
    -------
    (PresetBook, list of str)
        The presets in force and one ``FILE:LINE: message`` string per problem (empty when fine).
    """
    return load_or_defaults(
        load_presets, user_file, PresetError, lambda: PresetBook(()), "window/level presets"
    )


def _read_entries(path: Path, text: str) -> list[_Entry]:
    data = read_yaml_file(path, text, PresetError)
    if data is None:
        return []
    if not isinstance(data, YamlMap):
        raise PresetError(f"{path}:1: expected a mapping with 'version' and 'presets'")
    problems: list[str] = []
    check_version(data, path, problems)
    for key in data:
        if key not in ("version", "presets"):
            problems.append(
                f"{path}:{data.key_lines[key]}: unknown entry {key!r} (expected 'version', 'presets')"
            )
    entries: list[_Entry] = []
    presets = data.get("presets")
    if presets is None:
        pass
    elif not isinstance(presets, YamlMap):
        problems.append(
            f"{path}:{data.key_lines['presets']}: 'presets' must map modalities to presets"
        )
    else:
        for modality, by_name in presets.items():
            entries += _read_modality(
                path, presets.key_lines[modality], modality, by_name, problems
            )
    if problems:
        raise PresetError("\n".join(problems), problems)
    return entries


def _read_modality(
    path: Path, line: int, modality: Any, by_name: Any, problems: list[str]
) -> list[_Entry]:
    code = str(modality).strip().upper()
    if not isinstance(modality, str) or not _MODALITY.match(code):
        problems.append(f"{path}:{line}: {modality!r} is not a DICOM modality code (CT, MR, ...)")
        return []
    if by_name is None:
        return []
    if not isinstance(by_name, YamlMap):
        problems.append(
            f"{path}:{line}: the presets of {code} must be a mapping 'Name: {{center: C, width: W}}'"
        )
        return []
    entries = []
    keys_used: dict[int, _Entry] = {}
    names_used: dict[str, _Entry] = {}
    for name, fields in by_name.items():
        name_line = by_name.key_lines[name]
        entry = _read_entry(path, name_line, code, name, fields, problems)
        if entry is None:
            continue
        folded = entry.name.casefold()
        if folded in names_used:
            problems.append(
                f"{entry.where()}: duplicate preset {entry.name!r} on {code} "
                f"(also on line {names_used[folded].line})"
            )
            continue
        names_used[folded] = entry
        key = entry.fields.get("key")
        if key is not None:
            if key in keys_used:
                problems.append(
                    f"{entry.where()}: duplicate key {key} on {code}: already used by "
                    f"{keys_used[key].name!r} on line {keys_used[key].line}"
                )
                continue
            keys_used[key] = entry
        entries.append(entry)
    return entries


def _read_entry(
    path: Path, line: int, modality: str, name: Any, fields: Any, problems: list[str]
) -> _Entry | None:
    where = f"{path}:{line}"
    if not isinstance(name, str | int | float) or isinstance(name, bool) or not str(name).strip():
        problems.append(f"{where}: a preset needs a name, got {name!r}")
        return None
    name = str(name).strip()
    if not isinstance(fields, YamlMap):
        problems.append(f"{where}: preset {name!r} must be a mapping {{center: C, width: W}}")
        return None
    count = len(problems)
    values: dict[str, Any] = {}
    for field, value in fields.items():
        field_where = f"{path}:{fields.key_lines[field]}"
        if field not in _FIELDS:
            problems.append(
                f"{field_where}: unknown field {field!r} in preset {name!r} "
                f"(known: {', '.join(_FIELDS)})"
            )
        elif field in ("center", "width"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                problems.append(f"{field_where}: {field} must be a number, got {value!r}")
            elif value != value or value in (float("inf"), float("-inf")):
                problems.append(f"{field_where}: {field} must be a finite number")
            elif field == "width" and value <= 0:
                problems.append(f"{field_where}: width must be > 0, got {value!r}")
            else:
                values[field] = float(value)
        elif field == "key":
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 9
            ):
                problems.append(f"{field_where}: key must be a digit 1-9 or null, got {value!r}")
            else:
                values[field] = value
        elif not isinstance(value, bool):
            problems.append(f"{field_where}: remove must be true or false, got {value!r}")
        else:
            values[field] = value
    if values.get("remove") and set(values) - {"remove"}:
        problems.append(f"{where}: preset {name!r} is removed: give no other fields")
    if len(problems) > count:
        return None
    return _Entry(modality, name, values, line, str(path))


def _apply(book: dict[tuple[str, str], WindowPreset], entries: list[_Entry]) -> None:
    """Merge one file's entries into the book; the entries were checked by ``_read_entries``."""
    problems = []
    for entry in entries:
        ident = (entry.modality, entry.name.casefold())
        old = book.get(ident)
        if entry.fields.get("remove"):
            if old is None:
                problems.append(
                    f"{entry.where()}: no preset {entry.name!r} on {entry.modality} to remove"
                )
            else:
                del book[ident]
            continue
        if old is None and not {"center", "width"} <= set(entry.fields):
            missing = " and ".join(f for f in ("center", "width") if f not in entry.fields)
            problems.append(f"{entry.where()}: new preset {entry.name!r} needs {missing}")
            continue
        base = old or WindowPreset(entry.modality, entry.name, 0.0, 1.0, None)
        book[ident] = WindowPreset(
            entry.modality,
            entry.name,
            entry.fields.get("center", base.center),
            entry.fields.get("width", base.width),
            entry.fields.get("key", base.key),
        )
    # A key the file gives explicitly wins over the same key kept from an earlier file.
    explicit = {
        (e.modality, e.fields["key"]): e.name.casefold()
        for e in entries
        if e.fields.get("key") is not None
    }
    for ident, preset in list(book.items()):
        owner = explicit.get((preset.modality, preset.key))
        if owner is not None and owner != ident[1]:
            book[ident] = WindowPreset(preset.modality, preset.name, preset.center, preset.width)
    if problems:
        raise PresetError("\n".join(problems), problems)
