"""Node values and the settings file: validation with messages that name the field, a round
trip through ``nodes.json``, atomic saves, and refusal of hand edits that are wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workstation.app.node_settings import NodeBook, NodeSettings
from workstation.net.find import build_identifier
from workstation.net.nodes import LocalIdentity, RemoteNode, TlsSettings


def test_node_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match="AE title 'WAY_TOO_LONG_AE_TITLE'"):
        RemoteNode("pacs", "WAY_TOO_LONG_AE_TITLE", "h", 104)
    with pytest.raises(ValueError, match="port 70000 is out of range"):
        RemoteNode("pacs", "PACS", "h", 70000)
    with pytest.raises(ValueError, match="retrieve method 'C-FETCH'"):
        RemoteNode("pacs", "PACS", "h", 104, retrieve_method="C-FETCH")
    with pytest.raises(ValueError, match="connect_timeout"):
        RemoteNode("pacs", "PACS", "h", 104, connect_timeout=0)
    with pytest.raises(ValueError, match="both a client certificate and its key"):
        TlsSettings(enabled=True, cert_file="c.pem")
    assert RemoteNode("p", "PACS", "h", "104", retrieve_method="get").retrieve_method == "C-GET"
    assert RemoteNode("p", "PACS", "h", 104).sends_as == ("PACS",)


def test_settings_round_trip_and_atomic_save(tmp_path: Path) -> None:
    settings = NodeSettings(tmp_path)
    assert settings.load() == NodeBook()  # no file yet: defaults
    node = RemoteNode("pacs", "PACS", "pacs.example.org", 104, retrieve_method="C-GET",
                      tls=TlsSettings(enabled=True, ca_file="/etc/ca.pem"),
                      store_calling_aes=("PACS_SEND",))  # fmt: skip
    book = NodeBook(LocalIdentity("READER1", 11113)).with_node(node)
    settings.save(book)
    assert settings.load() == book
    assert [p.name for p in settings.path.parent.iterdir()] == ["nodes.json"]  # no temp left
    data = json.loads(settings.path.read_text())
    assert data["nodes"][0]["tls"]["ca_file"] == "/etc/ca.pem"

    with pytest.raises(ValueError, match="already exists"):
        book.with_node(node)
    edited = book.with_node(node.replace(port=11112), replace=True)
    assert edited.get("PACS").port == 11112  # case-insensitive lookup
    with pytest.raises(KeyError, match="no node called 'other'.*pacs"):
        edited.get("other")
    assert edited.without("pacs").nodes == ()


def test_hand_edited_file_errors_name_the_file_and_setting(tmp_path: Path) -> None:
    settings = NodeSettings(tmp_path)
    settings.path.parent.mkdir(parents=True)
    settings.path.write_text('{"nodes": [{"name": "x", "ae_title": "X", "host": "h", '
                             '"port": 104, "timeout": 3}]}')  # fmt: skip
    with pytest.raises(ValueError, match=r"nodes\.json.*unknown setting\(s\) timeout"):
        settings.load()
    settings.path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        settings.load()


def test_identifier_refuses_upper_level_keys_below_their_level() -> None:
    with pytest.raises(ValueError, match="PatientName is a study-level key"):
        build_identifier("series", {"PatientName": "DOE*", "StudyInstanceUID": "1.2"})
    with pytest.raises(ValueError, match="not a date"):
        build_identifier("study", {"StudyDate": "2024"})
    ds = build_identifier("study", {"Modality": "CT", "PatientName": "DOE*"})
    assert ds.ModalitiesInStudy == "CT" and "Modality" not in ds
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    image = build_identifier("image", {"StudyInstanceUID": "1.2", "SeriesInstanceUID": "1.3"})
    assert "PatientName" not in image and image.SOPInstanceUID == ""
