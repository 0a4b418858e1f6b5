"""The remote nodes and our own identity, kept in ``HOME/settings/nodes.json``.

A plain JSON file a PACS administrator can read and edit::

    {
      "local": {"ae_title": "WORKSTATION", "port": 11112, "bind_address": ""},
      "nodes": [
        {"name": "pacs", "ae_title": "PACS", "host": "pacs.example.org", "port": 104,
         "retrieve_method": "C-MOVE", "query_model": "auto",
         "tls": {"enabled": false, "ca_file": "", "cert_file": "", "key_file": "",
                 "verify": true, "check_hostname": true},
         "connect_timeout": 5.0, "acse_timeout": 10.0, "dimse_timeout": 60.0,
         "network_timeout": 60.0, "max_pdu": 1048576, "store_calling_aes": [],
         "description": ""}
      ]
    }

Only ``name``, ``ae_title``, ``host`` and ``port`` are required for a node; unknown keys are
refused (a misspelt setting is an error, not silently ignored). Saving writes a temporary file,
fsyncs it and renames it over the old one, so a crash never leaves half a file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workstation.core.atomic_file import write_text_atomic
from workstation.net.nodes import LocalIdentity, RemoteNode

FILE_NAME = "nodes.json"


@dataclass(frozen=True)
class NodeBook:
    """Our identity and the remote nodes (a frozen value: edits return a new book)."""

    local: LocalIdentity = LocalIdentity()
    nodes: tuple[RemoteNode, ...] = ()

    def __iter__(self) -> Iterator[RemoteNode]:
        return iter(self.nodes)

    def get(self, name: str) -> RemoteNode:
        """The node called ``name`` (exact, else case-insensitive).

        Raises
        ------
        KeyError
            With the names that exist.
        """
        for node in self.nodes:
            if node.name == name:
                return node
        for node in self.nodes:
            if node.name.lower() == name.lower():
                return node
        known = ", ".join(n.name for n in self.nodes) or "none configured"
        raise KeyError(f"no node called {name!r} (nodes: {known}); add it with "
                       "'workstation nodes add'")  # fmt: skip

    def with_node(self, node: RemoteNode, *, replace: bool = False) -> NodeBook:
        """A book with ``node`` added (or, with ``replace``, put in place of its namesake)."""
        names = [n.name.lower() for n in self.nodes]
        if node.name.lower() in names:
            if not replace:
                raise ValueError(f"a node called {node.name!r} already exists")
            i = names.index(node.name.lower())
            return NodeBook(self.local, (*self.nodes[:i], node, *self.nodes[i + 1 :]))
        return NodeBook(self.local, (*self.nodes, node))

    def without(self, name: str) -> NodeBook:
        node = self.get(name)
        return NodeBook(self.local, tuple(n for n in self.nodes if n is not node))

    def with_local(self, local: LocalIdentity) -> NodeBook:
        return NodeBook(local, self.nodes)

    def to_dict(self) -> dict[str, Any]:
        return {"local": self.local.to_dict(), "nodes": [n.to_dict() for n in self.nodes]}

    @classmethod
    def from_dict(cls, data: Any, where: str = "nodes settings") -> NodeBook:
        if not isinstance(data, dict):
            raise ValueError(f"{where}: expected a JSON object with 'local' and 'nodes'")
        unknown = sorted(set(data) - {"local", "nodes"})
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}")
        try:
            local = LocalIdentity.from_dict(data.get("local") or {})
            nodes = tuple(RemoteNode.from_dict(n) for n in data.get("nodes") or [])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {exc}") from exc
        seen: set[str] = set()
        for node in nodes:
            if node.name.lower() in seen:
                raise ValueError(f"{where}: two nodes are called {node.name!r}")
            seen.add(node.name.lower())
        return cls(local, nodes)


class NodeSettings:
    """Loads and saves the :class:`NodeBook` under ``home``.

    Parameters
    ----------
    home : Path
        ``Services.home`` (``--home`` / ``WORKSTATION_HOME``).
    """

    def __init__(self, home: Path) -> None:
        self.path = Path(home) / "settings" / FILE_NAME

    def load(self) -> NodeBook:
        """The saved book; defaults (no nodes) when there is no file yet.

        Raises
        ------
        ValueError
            When the file is not valid JSON or holds an invalid setting (with the file's path).
        """
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return NodeBook()
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{self.path}: not valid JSON: {exc}") from exc
        return NodeBook.from_dict(data, str(self.path))

    def save(self, book: NodeBook) -> None:
        """Write ``book`` atomically (temporary file, fsync, rename, directory fsync)."""
        text = json.dumps(book.to_dict(), indent=2, ensure_ascii=False) + "\n"
        write_text_atomic(self.path, text)
