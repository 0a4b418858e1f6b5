"""GSPS against DCMTK.

- ``dcmp2pgm -p OUR_GSPS IMAGE`` renders the same grey levels as ``render --gsps`` (within +-1 on
  99.5% of the pixels of the displayed area) on real CT, MR and radiographs with zoom, rotation,
  flip, invert and a window. dcmp2pgm writes the whole image after the spatial transformation and
  does not burn display shutters into its bitmap (seen: it reads and lists them), so the states
  compared here have no shutter; shutters are checked against their own masks in tests/pstate.
- States made by DCMTK's ``dcmpsmk`` (and the ones in ``gsps_generated/``, from dcmpsmk and
  highdicom) apply: our render equals dcmp2pgm's, and a screenshot with the annotations is written
  under /tmp/gsps_shots/ for a person to look at.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dcmtk import have, read_pnm  # noqa: E402

from workstation.app.cli_gsps import (  # noqa: E402
    StateMismatchError,
    image_geometry,
    render_with_state,
)
from workstation.core.annotations import ImageRef  # noqa: E402
from workstation.core.dicom_file import DicomFile  # noqa: E402
from workstation.core.pipeline import FrameRenderer  # noqa: E402
from workstation.core.view_state import ViewState  # noqa: E402
from workstation.core.voi import Window  # noqa: E402
from workstation.pstate.apply import presentation_from_view  # noqa: E402
from workstation.pstate.gsps_writer import write_gsps  # noqa: E402
from workstation.pstate.model import PresentationState  # noqa: E402

# the render paints with Qt (offscreen); the headless layer check runs without Qt and skips this
pytest.importorskip(
    "PySide6.QtGui", reason="PySide6 needed to paint the render", exc_type=ImportError
)

pytestmark = pytest.mark.skipif(
    not (have("dcmp2pgm") and have("dcmpsmk")), reason="DCMTK dcmp2pgm/dcmpsmk absent"
)

SHOTS = Path("/tmp/gsps_shots")
CT = "dicomdir_cd/philips_ingenuity_ct_cd/DICOM/S21570/S2010/I100"
S2010 = "dicomdir_cd/philips_ingenuity_ct_cd/DICOM/S21570/S2010"


def dcmp2pgm(image: Path, state: Path, out: Path) -> np.ndarray:
    res = subprocess.run(["dcmp2pgm", "-p", str(state), str(image), str(out)],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert res.returncode == 0, res.stderr
    return read_pnm(out)


def displayed_area_of(pgm: np.ndarray, state: Path, sop_uid: str) -> np.ndarray:
    """The part of dcmp2pgm's (whole, rotated, flipped) bitmap inside the displayed area."""
    ds = pydicom.dcmread(state)
    rot = int(ds.get("ImageRotation", 0) or 0)
    flip = str(ds.get("ImageHorizontalFlip", "N")) == "Y"
    item = next(
        it for it in ds.DisplayedAreaSelectionSequence
        if "ReferencedImageSequence" not in it
        or any(r.ReferencedSOPInstanceUID == sop_uid for r in it.ReferencedImageSequence)
    )  # fmt: skip
    (c0, r0), (c1, r1) = (
        item.DisplayedAreaTopLeftHandCorner,
        item.DisplayedAreaBottomRightHandCorner,
    )
    c0, c1 = sorted((int(c0), int(c1)))
    r0, r1 = sorted((int(r0), int(r1)))
    h, w = pgm.shape if rot % 180 == 0 else pgm.shape[::-1]
    rr, cc = np.mgrid[0:h, 0:w]

    def as_dcmtk(a):  # rotate clockwise, then flip (PS3.3 C.10.6)
        a = np.rot90(a, -(rot // 90))
        return np.fliplr(a) if flip else a

    rows, cols = as_dcmtk(rr), as_dcmtk(cc)
    inside = (cols >= c0 - 1) & (cols <= c1 - 1) & (rows >= r0 - 1) & (rows <= r1 - 1)
    ys, xs = np.nonzero(inside)
    return pgm[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def agreement(ours: np.ndarray, theirs: np.ndarray) -> float:
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    return float((np.abs(ours.astype(int) - theirs.astype(int)) <= 1).mean())


def write_our_state(image: Path, view: ViewState, viewport, out: Path) -> Path:
    f = DicomFile.open(image)
    ds = f.dataset()
    r = FrameRenderer(f, 0)
    geo = image_geometry(ds, None)
    ref = ImageRef(str(ds.SOPInstanceUID), None, str(ds.SOPClassUID))
    voi = view.voi if view.voi is not None else r.default_voi()
    p = presentation_from_view(view, ref, geo, viewport, inverted_by_file=r.inverted_by_file,
                               voi=voi)  # fmt: skip
    state = PresentationState("", "", str(ds.StudyInstanceUID), "DCMTK CHECK",
                              images={(ref.sop_instance_uid, None): p})  # fmt: skip
    write_gsps(state, [ds]).save_as(out, enforce_file_format=True)
    return out


CASES = [
    # (image, view, viewport)
    (CT, ViewState(voi=Window(40, 80)), (512, 512)),
    (
        CT,
        ViewState(
            voi=Window(40, 400),
            zoom_mode="free",
            zoom=2.0,
            pan=(60.0, -30.0),
            rotation=90,
            flip=True,
        ),
        (400, 300),
    ),  # fmt: skip
    (
        CT,
        ViewState(
            voi=Window(-600, 1500),
            zoom_mode="free",
            zoom=1.5,
            pan=(-20.0, 10.0),
            rotation=180,
            invert=True,
        ),
        (500, 500),
    ),  # fmt: skip
    (
        "barre_classic_samples/MR_Implicit_Little.dcm",
        ViewState(
            voi=Window(600, 1200),
            zoom_mode="free",
            zoom=3.0,
            pan=(30.0, 40.0),
            rotation=270,
            flip=True,
        ),
        (450, 450),
    ),  # fmt: skip
    ("transfer_syntax/dcm_qa_ts_siemens_mr/1.dcm", ViewState(invert=True, rotation=90), (384, 384)),
    # (dx_image.dcm, MONOCHROME1, has 1.2 x 1.2012 mm pixels: the viewer corrects the 0.1%
    # aspect, dcmp2pgm does not, so pixels cannot match one to one; RG3 is MONOCHROME1 too)
    (
        "transfer_syntax/wg04_and_misc_pydicom_data/RG3_UNCR.dcm",
        ViewState(
            invert=True, flip=True, rotation=90, zoom_mode="free", zoom=2.0, pan=(100.0, -40.0)
        ),
        (600, 500),
    ),  # fmt: skip
    (
        "transfer_syntax/wg04_and_misc_pydicom_data/RG3_UNCR.dcm",
        ViewState(voi=Window(600, 900), zoom_mode="free", zoom=0.8, rotation=270),
        (900, 700),
    ),
    ("radiography_mammo/MG_Explicit_Little.dcm", ViewState(flip=True, invert=True), (512, 512)),
]


@pytest.mark.parametrize("rel,view,viewport", CASES, ids=[f"{i}-{Path(c[0]).name}"
                                                          for i, c in enumerate(CASES)])  # fmt: skip
def test_dcmp2pgm_renders_our_state_like_we_do(tmp_path, corpus_dir, rel, view, viewport) -> None:
    image = corpus_dir / rel
    state = write_our_state(image, view, viewport, tmp_path / "ours.dcm")
    sop = str(pydicom.dcmread(image, stop_before_pixels=True).SOPInstanceUID)
    theirs = displayed_area_of(dcmp2pgm(image, state, tmp_path / "dcmtk.pgm"), state, sop)
    ours = render_with_state(image, state, annotations=False)
    grey = ours.pixels[..., 0]
    assert np.array_equal(grey, ours.pixels[..., 2])  # a grey picture
    share = agreement(grey, theirs)
    assert share >= 0.995, f"{rel}: {share:.4%} of pixels within +-1 of dcmp2pgm"


def _s2010_by_uid(corpus_dir: Path) -> dict[str, Path]:
    out = {}
    for path in sorted((corpus_dir / S2010).glob("I*")):
        out[str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)] = path
    return out


def _is_yellowish(rgb: np.ndarray) -> np.ndarray:
    r, g, b = (rgb[..., i].astype(int) for i in range(3))
    return (r > 180) & (g > 180) & (b < 90)


def test_generated_states_apply(corpus_dir, tmp_path) -> None:
    """The corpus states of dcmpsmk and highdicom: same grey levels as dcmp2pgm, annotations
    drawn, a PNG of each under /tmp/gsps_shots/."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    images = _s2010_by_uid(corpus_dir)
    folder = corpus_dir / "gsps_generated"
    states = sorted(folder.glob("*.dcm"))
    assert len(states) >= 2
    for state in states:
        ds = pydicom.dcmread(state)
        refs = [r.ReferencedSOPInstanceUID for s in ds.ReferencedSeriesSequence
                for r in s.ReferencedImageSequence]  # fmt: skip
        annotated = {r.ReferencedSOPInstanceUID for a in ds.get("GraphicAnnotationSequence", [])
                     for r in a.ReferencedImageSequence}  # fmt: skip
        chosen = sorted(annotated)[:1] or refs[:1]
        for uid in chosen:
            image = images[uid]
            plain = render_with_state(image, state, annotations=False)
            theirs = displayed_area_of(dcmp2pgm(image, state, tmp_path / "g.pgm"), state, uid)
            assert agreement(plain.pixels[..., 0], theirs) >= 0.995, state.name
            assert plain.presentation.voi == (40.0, 80.0)
            shot = render_with_state(image, state, size=(640, 640))
            from workstation.core.png import write_png

            write_png(SHOTS / f"{state.stem}.png", shot.pixels)
            if uid in annotated:
                # the POLYLINE square, the ELLIPSE and the text are drawn in the layer colour
                assert len(shot.presentation.annotations) == 3
                assert _is_yellowish(shot.pixels).sum() > 500
            assert not _is_yellowish(plain.pixels).any()
    # a state applied to an image it does not reference: a clear error naming both
    single = folder / "GSPS_dcmpsmk_philips_S21570_S2010_I100.dcm"
    only = pydicom.dcmread(single).ReferencedSeriesSequence[0].ReferencedImageSequence[0]
    other = images[next(u for u in images if u != only.ReferencedSOPInstanceUID)]
    with pytest.raises(StateMismatchError, match="does not apply to .*it references"):
        render_with_state(other, single)


@pytest.mark.parametrize(
    "rel",
    [
        "barre_classic_samples/MR_Implicit_Little.dcm",
        "transfer_syntax/wg04_and_misc_pydicom_data/RG3_UNCR.dcm",  # MONOCHROME1
        "radiography_mammo/MG_Explicit_Little.dcm",
        CT,
    ],
)
def test_dcmpsmk_states_apply(corpus_dir, tmp_path, rel) -> None:
    image = corpus_dir / rel
    state = tmp_path / "dcmpsmk.dcm"
    res = subprocess.run(["dcmpsmk", "+Vw", str(image), str(state)], capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert res.returncode == 0, res.stderr
    sop = str(pydicom.dcmread(image, stop_before_pixels=True).SOPInstanceUID)
    theirs = displayed_area_of(dcmp2pgm(image, state, tmp_path / "d.pgm"), state, sop)
    ours = render_with_state(image, state, annotations=False)
    assert agreement(ours.pixels[..., 0], theirs) >= 0.995
    f = DicomFile.open(image)
    r = FrameRenderer(f, 0)
    geo = image_geometry(f.dataset(), None)
    assert ours.pixels.shape[:2] == (geo.rows, geo.cols)
    if r.choices:
        # dcmpsmk +Vw copied the image's first window: the picture the image asks for without
        # any state is the same picture, polarity included (MONOCHROME1 -> INVERSE shape)
        plain = r.render(voi=r.choices[0], overlays=False).pixels
        assert agreement(ours.pixels[..., 0], plain) >= 0.995
    SHOTS.mkdir(parents=True, exist_ok=True)
    from workstation.core.png import write_png

    write_png(SHOTS / f"dcmpsmk_{Path(rel).stem}.png", ours.pixels)


def test_render_command_line(corpus_dir, tmp_path, capsys) -> None:
    from workstation.app.cli import main

    image = corpus_dir / CT
    state = write_our_state(image, ViewState(voi=Window(40, 80), rotation=90), (512, 512),
                            tmp_path / "s.dcm")  # fmt: skip
    out = tmp_path / "out.png"
    assert main(["--home", str(tmp_path / "home"), "render", str(image), "--gsps", str(state),
                 "--out", str(out), "--size", "300", "200"]) == 0  # fmt: skip
    from PIL import Image

    assert Image.open(out).size == (300, 200)
    assert "rotation 90" in capsys.readouterr().out
    other = corpus_dir / S2010 / "I110"
    assert main(["--home", str(tmp_path / "home"), "render", str(other), "--gsps", str(state),
                 "--out", str(tmp_path / "x.png")]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "does not apply to" in err and "I110" in err and not (tmp_path / "x.png").exists()
