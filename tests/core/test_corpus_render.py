"""Every file of the corpus with pixel data renders, or fails with a one-line reason naming it."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
from corpus import CORPUS_DIR, corpus_paths

from workstation.codecs import default_registry
from workstation.core.dicom_file import DicomFile
from workstation.core.errors import DicomError, NotDicomError
from workstation.core.pipeline import FrameRenderer

pytestmark = pytest.mark.corpus

#: The deliberately broken files of the corpus, and what our message must say about each.
EXPECTED_FAILURES = {
    "edge_cases/pydicom/JPEG2000-embedded-sequence-delimiter.dcm": "cannot decode JPEG 2000",
    "edge_cases/pydicom/MR_truncated.dcm": "less than expected (8130 vs 8192 bytes)",
    "edge_cases/pydicom/meta_missing_tsyntax.dcm": "pixel module incomplete",
    "edge_cases/pydicom/nested_priv_SQ.dcm": "pixel module incomplete",
    "edge_cases/pydicom_data/emri_small_jpeg_2k_lossless_too_short.dcm": "pixel data truncated",
    # non-DICOM files that sit among the DICOM ones
    "dicomdir_small/pydicom_dicomdirtests/README.txt": "not a DICOM file",
    "dicomdir_small/pydicom_dicomdirtests/TINY_ALPHA/README": "not a DICOM file",
    "mr_series/siemens_epi_mosaic_orientation/axasc35/6_ax_asc_35sl.nii": "not a DICOM file",
    "transfer_syntax/cornerstone_ctimage/createAllTransferSyntaxes.sh": "not a DICOM file",
}


def _frames_to_try(n: int) -> list[int]:
    return sorted({0, n // 2, n - 1})


def test_every_corpus_file_renders_or_says_why(corpus_dir):
    registry = default_registry()
    failures: dict[str, str] = {}
    rendered = frames = no_pixels = 0
    decoders: dict[str, int] = {}
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for path in corpus_paths():
                rel = str(path.relative_to(CORPUS_DIR))
                try:
                    f = DicomFile.open(path, registry)
                    if not f.has_pixels:
                        no_pixels += 1
                        continue
                    for i in _frames_to_try(f.number_of_frames):
                        image = FrameRenderer(f, i).render()
                        assert image.pixels.dtype == np.uint8
                        assert image.pixels.shape[:2] == (
                            int(f.dataset().Rows),
                            int(f.dataset().Columns),
                        )
                        frames += 1
                        decoders[image.decoder] = decoders.get(image.decoder, 0) + 1
                    f.release()
                    rendered += 1
                except DicomError as exc:
                    msg = str(exc)
                    assert "\n" not in msg, f"multi-line error for {rel}: {msg!r}"
                    assert msg.startswith(str(path)), f"error does not name the file: {msg!r}"
                    assert exc.reason, rel
                    failures[rel] = exc.reason
    finally:
        logging.disable(logging.NOTSET)
    print(
        f"rendered {rendered} files ({frames} frames), {no_pixels} without pixels, "
        f"decoders {decoders}, failures {len(failures)}"
    )
    for rel, reason in sorted(failures.items()):
        print(f"FAIL {rel}: {reason}")
    assert set(failures) == set(EXPECTED_FAILURES), sorted(set(failures) ^ set(EXPECTED_FAILURES))
    for rel, expected in EXPECTED_FAILURES.items():
        assert expected in failures[rel], (rel, failures[rel])
    assert rendered >= 455
    # libjpeg-turbo really is exercised (JPEG lossless; 12-bit 2/4, 6/8, 10/12 pydicom refuses)
    assert decoders.get("libjpeg-turbo", 0) >= 16
    assert {"native", "pylibjpeg", "gdcm", "pyjpegls"} <= set(decoders)


def test_non_dicom_file_is_named(tmp_path):
    bogus = tmp_path / "notes.txt"
    bogus.write_text("not an image")
    with pytest.raises(NotDicomError) as info:
        DicomFile.open(bogus)
    assert str(bogus) in str(info.value)
