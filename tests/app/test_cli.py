"""The command line: ``info`` and ``render`` run the viewer's code path on real files."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from workstation.app.cli import main
from workstation.codecs import default_registry
from workstation.core.dicom_file import DicomFile
from workstation.core.pipeline import render_frame
from workstation.core.png import read_png

pytestmark = pytest.mark.corpus

CT = "barre_classic_samples/CT_Explicit_Little.dcm"


def test_info_json(corpus_dir, capsys):
    assert main(["info", str(corpus_dir / CT), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["series"]["modality"] == "CT"
    assert report["image"]["rows"] == 512
    assert report["pipeline"]["default_voi"] == "W 75 L 50"
    assert report["decoded_by"] == "native"


def test_info_names_decoder_plan_for_compressed(corpus_dir, capsys):
    path = (
        corpus_dir / "transfer_syntax/pylibjpeg_data/JPEGLSLossless/MR_small_jpeg_ls_lossless.dcm"
    )
    assert main(["info", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["decoders"][0] == "pyjpegls"
    assert report["decoded_by"] == "pyjpegls"


def test_render_writes_exactly_the_viewer_image(corpus_dir, tmp_path):
    out = tmp_path / "ct.png"
    assert main(["render", str(corpus_dir / CT), "--out", str(out)]) == 0
    expected = render_frame(DicomFile.open(corpus_dir / CT, default_registry())).pixels
    assert np.array_equal(read_png(out), expected)


def test_render_window_and_frame(corpus_dir, tmp_path):
    mf = corpus_dir / "barre_classic_samples/MR_Explicit_Little_MultiFrame.dcm"
    out = tmp_path / "f.png"
    assert (
        main(["render", str(mf), "--out", str(out), "--frame", "7", "--window", "100", "50"]) == 0
    )
    f = DicomFile.open(mf)
    expected = render_frame(f, 7, window=(100, 50)).pixels
    assert np.array_equal(read_png(out), expected)
    assert not np.array_equal(expected, render_frame(f, 0, window=(100, 50)).pixels)


def test_render_broken_file_says_why_in_one_line(corpus_dir, tmp_path):
    bad = corpus_dir / "edge_cases/pydicom/MR_truncated.dcm"
    res = subprocess.run(
        [sys.executable, "-m", "workstation", "render", str(bad), "--out", str(tmp_path / "x.png")],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and str(bad) in lines[0] and "8130 vs 8192 bytes" in lines[0]
    assert not (tmp_path / "x.png").exists()


def test_render_frame_out_of_range(corpus_dir, tmp_path, capsys):
    assert (
        main(["render", str(corpus_dir / CT), "--out", str(tmp_path / "x.png"), "--frame", "3"])
        == 2
    )
    assert "out of range" in capsys.readouterr().err


def test_sets_json_flags_tilt_and_uneven_spacing(corpus_dir, capsys):
    assert main(["sets", str(corpus_dir / "ct_series"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (ct,) = out["display_sets"]
    assert ct["frames"] == 28 and ct["orientation"] == "axial" and ct["geometry_ok"]
    assert any("gantry tilt 18.5" in n for n in ct["notes"])
    assert any("uneven spacing" in n for n in ct["notes"])


def test_info_reports_geometry_and_calibration(corpus_dir, capsys):
    path = corpus_dir / "ct_series/ge_hispeed_dual_tilt_variable_spacing/01.dcm"
    assert main(["info", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["geometry"]["orientation"] == "axial"
    assert report["calibration"]["source"] == "PixelSpacing"
