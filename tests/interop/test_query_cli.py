"""The command line against DCMTK ``dcmqrscp``: ``nodes add|list|echo|remove``, ``find`` (table and
JSON) and ``retrieve`` (C-MOVE into a temporary listener, then C-GET finding nothing missing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

pytestmark = pytest.mark.interop
peers = pytest.importorskip("peers")


def ws(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workstation", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=120)  # fmt: skip


@pytest.mark.skipif(not peers.have("dcmqrscp"), reason="DCMTK dcmqrscp absent")
def test_nodes_find_retrieve_from_the_command_line(tmp_path: Path, corpus_dir: Path) -> None:
    ct = sorted((corpus_dir / "ct_series").glob("*/*.dcm"))
    study = pydicom.dcmread(ct[0], stop_before_pixels=True).StudyInstanceUID
    home = tmp_path / "home"
    port = peers.free_port()
    with peers.dcmqrscp_peer(tmp_path, ct, {"READER": ("127.0.0.1", port)}) as dcm:
        assert ws(home, "nodes", "local", "--aet", "READER", "--port", str(port)).returncode == 0
        added = ws(home, "nodes", "add", "qr", "--aet", dcm.aet, "--host", "127.0.0.1",
                   "--port", str(dcm.port))  # fmt: skip
        assert added.returncode == 0, added.stderr
        listing = json.loads(ws(home, "nodes", "list", "--json").stdout)
        assert listing["local"]["ae_title"] == "READER"
        assert [n["name"] for n in listing["nodes"]] == ["qr"]

        echoed = ws(home, "nodes", "echo", "qr")
        assert echoed.returncode == 0 and echoed.stdout.startswith("ok:"), echoed.stdout

        table = ws(home, "find", "qr", "--name", "REM*")
        assert table.returncode == 0, table.stderr
        assert study in table.stdout and "1 study match(es)" in table.stderr

        found = json.loads(ws(home, "find", "qr", "--level", "image", "--study", study,
                              "--series", pydicom.dcmread(ct[0]).SeriesInstanceUID,
                              "--json").stdout)  # fmt: skip
        assert found["count"] == 28 and found["level"] == "IMAGE"

        bad = ws(home, "find", "qr", "--level", "series", "--name", "X*")
        assert bad.returncode == 2 and "study-level key" in bad.stderr

        got = ws(home, "retrieve", "qr", "--study", study, "--json")
        assert got.returncode == 0, got.stderr + got.stdout
        report = json.loads(got.stdout)
        assert (report["outcome"], report["arrived"]) == ("complete", 28)

        again = ws(home, "retrieve", "qr", "--study", study, "--method", "get")
        assert again.returncode == 0 and "0 retrieved, 28 already there" in again.stdout

        journal = (home / "retrieve_journal.jsonl").read_text().splitlines()
        assert [json.loads(line)["outcome"] for line in journal] == ["complete", "complete"]

        assert ws(home, "nodes", "remove", "qr").returncode == 0
    down = ws(home, "echo", "--json")
    assert down.returncode == 2 and "no nodes configured" in down.stderr
