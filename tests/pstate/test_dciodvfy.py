"""Every GSPS and KOS we write passes dicom3tools' ``dciodvfy`` with no error; the only warnings
allowed are the known ones, each explained here."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_gsps_roundtrip import LAYERS, _all_kinds, _image  # noqa: E402

from workstation.core.annotations import ImageRef  # noqa: E402
from workstation.core.calibration import calibration_for  # noqa: E402
from workstation.core.measurements import measure  # noqa: E402
from workstation.pstate.gsps_writer import write_gsps  # noqa: E402
from workstation.pstate.kos import read_kos, write_kos  # noqa: E402
from workstation.pstate.model import (  # noqa: E402
    DisplayedArea,
    ImagePresentation,
    PresentationState,
    Shutter,
)

pytestmark = pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy absent")

#: warnings that stay, and why
ALLOWED = (
    # General Series Laterality (Type 2C) is written empty when the images do not say R or L:
    # dciodvfy cannot tell whether the body part is paired and warns that empty means "unknown",
    # which is exactly what the state knows. Leaving it out is an error in dciodvfy's eyes.
    "attribute <Laterality>",
    # the referenced image's Patient's Name (copied as it is) has a single component ("HEAD")
    "Retired Person Name form",
    # an image without Patient ID / Study ID (Type 2, copied empty: we do not invent identifiers)
    "needed to build DICOMDIR - Patient ID",
    "needed to build DICOMDIR - Study ID",
)


def dciodvfy(path: Path) -> tuple[list[str], list[str]]:
    proc = subprocess.run(["dciodvfy", str(path)], capture_output=True, timeout=60)
    text = (proc.stdout + proc.stderr).decode("utf-8", "replace")
    lines = text.splitlines()
    return [x for x in lines if x.startswith("Error")], [
        x for x in lines if x.startswith("Warning")
    ]


def _check(path: Path) -> list[str]:
    errors, warnings = dciodvfy(path)
    assert errors == [], errors
    unexplained = [w for w in warnings if not any(a in w for a in ALLOWED)]
    assert unexplained == [], unexplained
    return warnings


def _states(ds):
    ref = ImageRef(str(ds.SOPInstanceUID), None, str(ds.SOPClassUID))
    anns = _all_kinds(ref)
    cal = calibration_for(ds)
    ms = {a.uid: m for a in anns if (m := measure(a, cal)) is not None}
    rows, cols = int(ds.Rows), int(ds.Columns)
    bitmap = np.zeros((rows, cols), bool)
    bitmap[: rows // 4] = True
    variants = [
        dict(voi=(40.0, 400.0), annotations=anns, layers=LAYERS),
        dict(voi=(10.0, 80.0), voi_function="LINEAR_EXACT", rotation=270, flip=True, invert=True,
             displayed_area=DisplayedArea((5, 7), (cols // 2, rows // 2)), annotations=anns,
             layers=LAYERS,
             shutter=Shutter(("RECTANGULAR", "CIRCULAR", "POLYGONAL"), rect=(2, cols - 2, 3, rows - 3),
                             centre=(cols / 2, rows / 2), radius=min(rows, cols) / 2,
                             polygon=((1.0, 1.0), (cols - 2.0, 2.0), (cols / 2, rows - 2.0)),
                             grey=0.5, colour=(255, 0, 0))),
        dict(displayed_area=DisplayedArea((0, 0), (cols - 1, rows - 1), "MAGNIFY", magnification=2.0),
             rotation=90, shutter=Shutter(("BITMAP",), bitmap=bitmap, grey=0.0),
             overlays_on=(0x6000,)),
        dict(displayed_area=DisplayedArea((0, 0), (cols - 1, rows - 1), "TRUE SIZE",
                                          pixel_spacing=(0.7, 0.7)), rotation=180),
    ]  # fmt: skip
    for kw in variants:
        p = ImagePresentation(ref, **kw)
        yield PresentationState("", "", str(ds.StudyInstanceUID), "Check", "dciodvfy", "Doe^J",
                                images={(ref.sop_instance_uid, None): p}), ms  # fmt: skip


def test_our_gsps_pass_dciodvfy(tmp_path) -> None:
    ds = _image()
    for i, (state, ms) in enumerate(_states(ds)):
        path = tmp_path / f"gsps{i}.dcm"
        write_gsps(state, [ds], measurements=ms).save_as(path, enforce_file_format=True)
        _check(path)


def test_our_gsps_on_real_images_pass_dciodvfy(tmp_path, corpus_dir) -> None:
    for rel in (
        "dicomdir_cd/philips_ingenuity_ct_cd/DICOM/S21570/S2010/I100",
        "radiography_mammo/dx_image.dcm",
        "barre_classic_samples/MR_Implicit_Little.dcm",
    ):
        ds = pydicom.dcmread(corpus_dir / rel, stop_before_pixels=True)
        for i, (state, ms) in enumerate(_states(ds)):
            path = tmp_path / f"{Path(rel).name}_{i}.dcm"
            write_gsps(state, [ds], measurements=ms).save_as(path, enforce_file_format=True)
            _check(path)
        path = tmp_path / f"{Path(rel).name}_kos.dcm"
        write_kos([ds]).save_as(path, enforce_file_format=True)
        _check(path)


def test_our_kos_pass_dciodvfy_and_read_back(tmp_path, corpus_dir) -> None:
    folder = corpus_dir / "dicomdir_cd/philips_ingenuity_ct_cd/DICOM/S21570/S2010"
    images = [pydicom.dcmread(folder / n, stop_before_pixels=True) for n in ("I100", "I110", "I90")]
    for title in ("of_interest", "for_teaching"):
        path = tmp_path / f"kos_{title}.dcm"
        write_kos(images, title=title, description="three slices", creator="Doe^John").save_as(
            path, enforce_file_format=True
        )
        _check(path)
        doc = read_kos(path)
        assert doc.sop_instance_uids == tuple(str(d.SOPInstanceUID) for d in images)
        assert {k.series_uid for k in doc.images} == {str(images[0].SeriesInstanceUID)}
        assert doc.description == "three slices"
        assert doc.title == {"of_interest": "Of Interest", "for_teaching": "For Teaching"}[title]
    synthetic = _image()
    path = tmp_path / "kos_synthetic.dcm"
    write_kos([synthetic]).save_as(path, enforce_file_format=True)
    _check(path)
