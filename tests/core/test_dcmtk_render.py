"""Our rendering against DCMTK's dcmj2pnm on every image of the corpus it can render.

DCMTK defaults are matched the way the issue asks: the file's first window (``+Wi 1``), else
its first VOI LUT (``+Wl 1``), else min-max (``+Wm``). DCMTK here has no JPEG 2000 codec and
dcmj2pnm no JPEG-LS one: JPEG-LS files are first decompressed with DCMTK's ``dcmdjpls``;
JPEG 2000 files cannot be compared and are counted as skipped.
"""

from __future__ import annotations

import logging
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
from corpus import CORPUS_DIR, corpus_paths
from dcmtk import dcmj2pnm, have, read_pnm

from workstation.codecs import default_registry
from workstation.core.dicom_file import DicomFile
from workstation.core.errors import DicomError
from workstation.core.pipeline import FrameRenderer
from workstation.core.voi import VoiLut

pytestmark = [
    pytest.mark.corpus,
    pytest.mark.dcmtk,
    pytest.mark.skipif(not have("dcmj2pnm"), reason="DCMTK (dcmj2pnm) not installed"),
]

JPEG_LS = {"1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"}
#: Colour conversions where DCMTK's YCbCr->RGB rounding differs from pydicom's by up to 2.
YBR_TOLERANCE = 2


def _images():
    """(path, frame, is_color) for every decodable image in the corpus, first and last frames."""
    out = []
    logging.disable(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in corpus_paths():
            try:
                f = DicomFile.open(path)
            except DicomError:
                continue
            if not f.has_pixels:
                continue
            frames = sorted({0, f.number_of_frames - 1})
            for frame in frames:
                out.append((path, frame, f.is_color, f.number_of_frames))
    logging.disable(logging.NOTSET)
    return out


IMAGES = _images()


def _id(item) -> str:
    path, frame, _c, _n = item
    return f"{path.relative_to(CORPUS_DIR)}#{frame}"


def _reference(path: Path, frame: int, voi, color: bool, tmp: Path) -> np.ndarray | None:
    src = path
    ts = str(DicomFile.open(path).transfer_syntax)
    if ts in JPEG_LS:
        src = tmp / "decompressed.dcm"
        res = subprocess.run(["dcmdjpls", str(path), str(src)], capture_output=True, timeout=120)
        if res.returncode != 0:
            return None
    options = ["--frame", str(frame + 1)]
    if not color:
        if isinstance(voi, VoiLut):
            options += ["+Wl", "1"]
        elif voi is not None and voi.explanation != "min-max":
            options += ["+Wi", "1"]
        else:
            options += ["+Wm"]
    ok, err = dcmj2pnm(src, tmp / "ref.pnm", *options)
    if "not yet supported" in err:
        return (
            None  # e.g. "segmented palettes not yet supported ... ignoring": DCMTK's image is wrong
        )
    return read_pnm(tmp / "ref.pnm") if ok else None


COMPARED: list[str] = []


@pytest.mark.parametrize("item", IMAGES, ids=[_id(i) for i in IMAGES])
def test_matches_dcmtk(item, tmp_path):
    path, frame, color, _n = item
    try:
        renderer = FrameRenderer(DicomFile.open(path, default_registry()), frame)
    except DicomError as exc:
        pytest.skip(f"we cannot decode it (covered by test_corpus_render): {exc.reason[:80]}")
    voi = renderer.default_voi()
    ref = _reference(path, frame, voi, renderer.is_color, tmp_path)
    if ref is None:
        pytest.skip("DCMTK cannot render this file (no codec, or a feature it lacks)")
    ours = renderer.render().pixels
    assert ours.shape == ref.shape
    photometric = str(renderer.ds.get("PhotometricInterpretation", ""))
    tol = YBR_TOLERANCE if photometric.startswith("YBR_FULL") and "PixelData" in renderer.ds else 1
    diff = np.abs(ours.astype(np.int16) - ref.astype(np.int16))
    within = float((diff <= tol).mean())
    COMPARED.append(_id(item))
    assert within >= 0.995, (
        f"{_id(item)}: {within:.4%} of pixels within +-{tol} of dcmj2pnm "
        f"(max diff {diff.max()}, VOI {voi.describe() if voi else 'colour'}, "
        f"decoder {renderer.decoder})"
    )


def test_enough_images_were_compared(request):
    """Guard: the comparison above must really have run over the corpus, not skipped it all."""
    single_gray = [i for i in IMAGES if not i[2] and i[3] == 1]
    assert len(single_gray) >= 380, "the corpus should hold ~386 single-frame grayscale images"
    if request.config.option.keyword or request.config.option.markexpr:
        pytest.skip("a -k/-m selection ran only part of the comparison")
    gray = [c for c in COMPARED if c.endswith("#0")]
    assert len(COMPARED) >= 420 and len(gray) >= 340, (len(COMPARED), len(gray))
