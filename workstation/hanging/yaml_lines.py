"""YAML read with the line of every mapping key and sequence item, for error messages.

``load_yaml(text, name)`` returns plain values where mappings are :class:`LinedDict` and
sequences :class:`LinedList`: dicts and lists that also know their own line and the line of
each key or item (1-based). Duplicate keys are an error (YAML allows the last to win silently).
"""

from __future__ import annotations

from typing import Any

import yaml


class YamlError(ValueError):
    """A YAML file that cannot be read: ``line`` is 1-based (0 when unknown)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class LinedDict(dict):
    """A mapping with ``line`` and ``key_line(key)``."""

    line: int = 0

    def __init__(self, line: int = 0) -> None:
        super().__init__()
        self.line = line
        self._lines: dict[Any, int] = {}

    def key_line(self, key: Any) -> int:
        return self._lines.get(key, self.line)


class LinedList(list):
    """A sequence with ``line`` and ``item_line(i)``."""

    line: int = 0

    def __init__(self, line: int = 0) -> None:
        super().__init__()
        self.line = line
        self._lines: list[int] = []

    def item_line(self, index: int) -> int:
        return self._lines[index] if 0 <= index < len(self._lines) else self.line


def line_of(value: Any, default: int = 0) -> int:
    return int(getattr(value, "line", default) or default)


def _convert(node: yaml.Node, loader: yaml.SafeLoader) -> Any:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out = LinedDict(line)
        for key_node, value_node in node.value:
            key = _convert(key_node, loader)
            key_line = key_node.start_mark.line + 1
            if isinstance(key, dict | list):
                raise YamlError(key_line, "a mapping key must be a plain value")
            if key in out:
                raise YamlError(key_line, f"duplicate key {key!r} (first on line "
                                          f"{out.key_line(key)})")  # fmt: skip
            out[key] = _convert(value_node, loader)
            out._lines[key] = key_line
        return out
    if isinstance(node, yaml.SequenceNode):
        seq = LinedList(line)
        for item in node.value:
            seq.append(_convert(item, loader))
            seq._lines.append(item.start_mark.line + 1)
        return seq
    return loader.construct_object(node, deep=True)


def load_yaml(text: str) -> Any:
    """Parse one YAML document (safe tags only).

    Raises
    ------
    YamlError
        For a syntax error, several documents or a duplicate key, with the line.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        return None if node is None else _convert(node, loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise YamlError(line, f"not valid YAML: {what}") from None
    except yaml.YAMLError as exc:
        raise YamlError(0, f"not valid YAML: {exc}") from None
    finally:
        loader.dispose()
