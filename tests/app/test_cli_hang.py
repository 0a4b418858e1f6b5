"""``workstation hang STUDY_UID``: ranked protocols with reasons and the stage assignments."""

from __future__ import annotations

import json

import pytest
from hanging.chest_files import chest_study

from workstation.app.cli import main
from workstation.archive.archive import Archive


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    now, now_files = chest_study(tmp_path / "now", "20250310")
    before, before_files = chest_study(tmp_path / "before", "20231102", fill=300)
    other, other_files = chest_study(tmp_path / "other", "20240101", patient_id="SOMEONE")
    with Archive(home / "archive") as archive:
        for path in [*now_files, *before_files, *other_files]:
            assert archive.add_file(path).ok
    return home, now, before


def test_hang_json_ranks_and_assigns(home, capsys):
    home, now, before = home
    assert main(["--home", str(home), "hang", now, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["applied"] == "chest-pa-lat"
    names = [p["name"] for p in out["protocols"]]
    assert names[0] == "chest-pa-lat" and names[1] == "fallback"
    assert not any(p["matched"] for p in out["protocols"][2:])
    best = out["protocols"][0]
    assert best["score"] == 24
    assert best["rules"][0]["passed"] and "is DX" in best["rules"][0]["reason"]
    assert [p["study_uid"] for p in out["priors"]] == [before]  # not the other patient
    compare = out["stages"][1]
    assert compare["layout"] == "2x2" and compare["filled"] == 4
    got = [(v["study"], v["study_date"], v["label"].split("(")[-1]) for v in compare["viewports"]]
    assert got == [("current", "2025-03-10", "CHEST PA)"), ("current", "2025-03-10", "CHEST LL)"),
                   ("prior", "2023-11-02", "CHEST PA)"), ("prior", "2023-11-02", "CHEST LL)")]  # fmt: skip
    ct = next(p for p in out["protocols"] if p["name"] == "ct")
    assert any("modalities contains 'CT': failed (required), is DX" in f for f in ct["failures"])


def test_hang_text_and_named_protocol(home, capsys):
    home, now, _ = home
    assert main(["--home", str(home), "hang", now, "--protocol", "fallback"]) == 0
    text = capsys.readouterr().out
    assert "1. chest-pa-lat  score 24  matched" in text
    assert "+ modalities in [CR, DX]: passed, is DX (+10)" in text
    assert "stages of fallback:" in text
    assert "stage 2 'Four series'  layout 2x2  (2 of 4 filled)" in text
    assert "empty: all 2 display set(s) already shown by earlier selectors" in text


def test_hang_user_protocols_and_errors(home, tmp_path, capsys):
    home, now, _ = home
    extra = tmp_path / "protocols"
    extra.mkdir()
    (extra / "broken.yaml").write_text("version: 1\nname: broken\nstages: 3\n")
    (extra / "mine.yaml").write_text(
        "version: 1\nname: chest-pa-lat\nmatch:\n"
        "  - {attribute: modalities, contains: DX, required: true, weight: 50}\n"
        "display_sets:\n  - id: any\nstages:\n  - {name: mine, layout: 1x1, "
        "viewports: [{display_set: any, invert: true}]}\n"
    )  # fmt: skip
    assert main(["--home", str(home), "hang", now, "--json", "--protocols", str(extra)]) == 0
    captured = capsys.readouterr()
    assert f"{extra / 'broken.yaml'}:3: stages: expected a list" in captured.err
    out = json.loads(captured.out)
    assert out["applied"] == "chest-pa-lat" and out["protocols"][0]["level"] == "user"
    assert out["stages"][0]["viewports"][0]["options"]["invert"] is True
    assert main(["--home", str(home), "hang", now, "--protocol", "nope"]) == 2
    assert "no hanging protocol called 'nope'" in capsys.readouterr().err
    assert main(["--home", str(home), "hang", "1.2.3"]) == 2
    assert "no study with UID 1.2.3" in capsys.readouterr().err
