"""Transfer syntaxes of the corpus decode, with the decoder we chose, and the fallback is exact."""

from __future__ import annotations

import subprocess
from collections import defaultdict

import numpy as np
import pydicom
import pytest
from corpus import CORPUS_DIR, manifest_rows
from dcmtk import have

from workstation.codecs import default_registry
from workstation.codecs.simpleitk_decoder import SimpleITKDecoder
from workstation.core.decoders import plugin_order
from workstation.core.dicom_file import DicomFile

pytestmark = pytest.mark.corpus

BROKEN = {"edge_cases"}


def test_every_transfer_syntax_in_the_corpus_decodes(corpus_dir):
    by_syntax: dict[str, list[str]] = defaultdict(list)
    registry = default_registry()
    for row in manifest_rows():
        if row["path"].split("/")[0] in BROKEN or not row["rows_x_cols_x_frames"]:
            continue
        f = DicomFile.open(CORPUS_DIR / row["path"], registry)
        if not f.has_pixels:
            continue
        frame = f.frame(f.number_of_frames - 1)
        by_syntax[row["transfer_syntax"]].append(frame.decoder)
    expected = {
        "Explicit VR Little Endian",
        "Implicit VR Little Endian",
        "Explicit VR Big Endian",
        "Deflated Explicit VR Little Endian",
        "JPEG Baseline (Process 1)",
        "JPEG Extended (Process 2 and 4)",
        "JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])",
        "JPEG Lossless, Non-Hierarchical (Process 14)",
        "JPEG-LS Lossless Image Compression",
        "JPEG-LS Lossy (Near-Lossless) Image Compression",
        "JPEG 2000 Image Compression (Lossless Only)",
        "JPEG 2000 Image Compression",
        "RLE Lossless",
        "NO FILE META",
        "JPEG Spectral Selection, Non-Hierarchical (Process 6 and 8)",
        "JPEG Full Progression, Non-Hierarchical (Process 10 and 12)",
    }
    assert expected <= set(by_syntax), expected - set(by_syntax)
    assert set(by_syntax["JPEG-LS Lossless Image Compression"]) == {"pyjpegls"}
    assert set(by_syntax["RLE Lossless"]) == {"pylibjpeg"}
    spectral = "JPEG Spectral Selection, Non-Hierarchical (Process 6 and 8)"
    assert by_syntax[spectral] == ["libjpeg-turbo"]
    lossless = (
        "JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])"
    )
    assert "libjpeg-turbo" in by_syntax[lossless]


def test_plugin_order_prefers_the_fastest_measured():
    assert plugin_order(pydicom.uid.JPEGLosslessSV1)[0] == "gdcm"
    assert plugin_order(pydicom.uid.JPEGLSLossless)[0] == "pyjpegls"
    assert plugin_order(pydicom.uid.RLELossless)[0] == "pylibjpeg"
    assert plugin_order(pydicom.uid.ExplicitVRLittleEndian) == ()


def test_headless_file_gets_an_inferred_syntax(corpus_dir):
    f = DicomFile.open(corpus_dir / "barre_classic_samples/CT_Implicit_Little_Headless_Retired.dcm")
    assert f.transfer_syntax_inferred
    assert f.transfer_syntax == pydicom.uid.ImplicitVRLittleEndian
    frame = f.frame(0)
    assert frame.decoder == "native" and frame.stored.shape == (512, 512)
    assert "Photometric Interpretation missing: assumed MONOCHROME2" in f.repairs


def test_bad_number_of_frames_is_repaired_from_the_pixel_length(corpus_dir):
    f = DicomFile.open(corpus_dir / "edge_cases/pydicom/badVR.dcm")
    last = f.frame(14)
    assert f.number_of_frames == 15 and last.stored.shape == (10, 10)
    assert any("'1A'" in r for r in f.repairs)


@pytest.mark.skipif(not have("dcmdjpeg"), reason="DCMTK not installed")
@pytest.mark.parametrize(
    "name",
    [
        "cornerstone_ctimage/CTImage.dcm_JPEGProcess6_8TransferSyntax_1.2.840.10008.1.2.4.53.dcm",
        "cornerstone_ctimage/CTImage.dcm_JPEGProcess10_12TransferSyntax_1.2.840.10008.1.2.4.55.dcm",
        "pylibjpeg_data/JPEGExtended/RG2_JPLY.dcm",
        "pylibjpeg_data/JPEGExtended/JPEGExtended_1s_1f_u_16_12.dcm",
    ],
)
def test_jpeg_that_pydicom_refuses_decodes_like_dcmtk(corpus_dir, tmp_path, name):
    """libjpeg-turbo (chosen) and SimpleITK (last resort) both reproduce dcmdjpeg exactly."""
    path = corpus_dir / "transfer_syntax" / name
    f = DicomFile.open(path, default_registry())
    frame = f.frame(0)
    assert frame.decoder == "libjpeg-turbo"
    out = tmp_path / "d.dcm"
    subprocess.run(["dcmdjpeg", str(path), str(out)], check=True, capture_output=True)
    ref = pydicom.dcmread(out).pixel_array.astype(np.int64)
    assert np.array_equal(frame.stored.astype(np.int64), ref)
    last_resort = SimpleITKDecoder().decode(str(path), 0, f.dataset())
    assert np.array_equal(last_resort.astype(np.int64), ref)
