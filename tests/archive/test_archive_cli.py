"""``workstation import / ls / delete`` with ``--home`` and ``--json``."""

from __future__ import annotations

import json

from archive_factory import instance, series_folder, write
from pydicom.uid import generate_uid

from workstation.app.cli import main


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def test_import_ls_delete_round_trip(tmp_path, capsys):
    home = tmp_path / "home"
    src = tmp_path / "in"
    study = generate_uid()
    series_folder(src / "a", 3, patient_name="Doe^Jane", study_date="20240105")
    write(instance(study=study, patient_name="Roe^Richard", patient_id="R1", modality="MR",
                   study_date="20231201"), src / "b" / "x")  # fmt: skip
    (src / "notes.txt").write_text("x")

    assert main(["--home", str(home), "import", str(src), "--json", "-q"]) == 0
    summary = _json(capsys)
    assert (summary["imported"], summary["rejected"], summary["total"]) == (4, 1, 5)
    assert summary["rejected_files"][0]["source"].endswith("notes.txt")

    assert main(["--home", str(home), "ls", "--json"]) == 0
    listing = _json(capsys)
    assert listing["level"] == "STUDY" and listing["count"] == 2

    assert main(["--home", str(home), "ls", "patients", "--name", "DOE*", "--json"]) == 0
    (patient,) = _json(capsys)["rows"]
    assert patient["NumberOfPatientRelatedInstances"] == 3

    assert main(["--home", str(home), "ls", "--date", "20240101-", "--json"]) == 0
    assert [r["PatientName"] for r in _json(capsys)["rows"]] == ["Doe^Jane"]

    assert main(["--home", str(home), "ls", "studies", "--modality", "MR", "--json"]) == 0
    assert [r["StudyInstanceUID"] for r in _json(capsys)["rows"]] == [study]

    assert main(["--home", str(home), "ls", "series", "-k", f"StudyInstanceUID={study}"]) == 0
    text = capsys.readouterr().out
    assert "MR" in text and text.strip().endswith("1 series")

    assert main(["--home", str(home), "delete", study, "--json"]) == 0
    assert _json(capsys) == {"deleted": "study", "uid": study, "instances": 1}
    assert main(["--home", str(home), "delete", study]) == 1
    assert "no study with UID" in capsys.readouterr().err

    assert main(["--home", str(home), "ls", "instances", "--json"]) == 0
    assert _json(capsys)["count"] == 3


def test_import_text_summary_and_progress_on_stderr(tmp_path, capsys):
    src = tmp_path / "in"
    series_folder(src, 2)
    assert main(["--home", str(tmp_path / "h"), "import", str(src)]) == 0
    captured = capsys.readouterr()
    assert "2 of 2 files" in captured.out and "2 imported" in captured.out
    assert "files/s" in captured.err and "ETA" in captured.err


def test_ls_rejects_a_malformed_key(tmp_path, capsys):
    assert main(["--home", str(tmp_path / "h"), "ls", "-k", "PatientName"]) == 2
    assert main(["--home", str(tmp_path / "h"), "ls", "--date", "soon"]) == 2
    assert "error: ls" in capsys.readouterr().err
