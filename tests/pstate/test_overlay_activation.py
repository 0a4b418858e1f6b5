"""Overlay activation per group: an image with two overlay planes (6000 top left, 6002 bottom
right) and GSPS activating some of them; the overlay planes of the chosen groups. (The headless
``render --gsps`` drawing exactly the activated groups is in tests/ui: it paints with Qt.)"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pydicom

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic import save  # noqa: E402
from test_gsps_roundtrip import _image  # noqa: E402

from workstation.core.annotations import ImageRef  # noqa: E402
from workstation.core.overlays import overlay_groups, overlay_planes  # noqa: E402
from workstation.pstate.model import ImagePresentation, PresentationState  # noqa: E402

ROWS = COLS = 64
#: (first row, first col) of each group's 10x10 square, 0-based image coordinates
SQUARES = {0x6000: (5, 5), 0x6002: (40, 40)}
BACKGROUND = 100  # stored value everywhere; with the window (100, 400) it shows mid grey


def add_overlay(ds: pydicom.Dataset, group: int, top: int, left: int) -> None:
    """A 10x10 filled square in overlay ``group`` (a separate 1-bit plane in Overlay Data)."""
    bits = np.zeros((ROWS, COLS), np.uint8)
    bits[top : top + 10, left : left + 10] = 1
    ds.add_new((group, 0x0010), "US", ROWS)
    ds.add_new((group, 0x0011), "US", COLS)
    ds.add_new((group, 0x0040), "CS", "G")
    ds.add_new((group, 0x0050), "SS", [1, 1])
    ds.add_new((group, 0x0100), "US", 1)
    ds.add_new((group, 0x0102), "US", 0)
    ds.add_new((group, 0x3000), "OW", np.packbits(bits.ravel(), bitorder="little").tobytes())


def overlay_image(folder: Path) -> tuple[pydicom.Dataset, str]:
    """A CT image with overlays 6000 and 6002, saved under ``folder``."""
    ds = _image(rows=ROWS, cols=COLS)
    ds.PixelData = np.full((ROWS, COLS), BACKGROUND, np.int16).tobytes()
    for group, (top, left) in SQUARES.items():
        add_overlay(ds, group, top, left)
    folder.mkdir(parents=True, exist_ok=True)
    return ds, save(ds, folder / "overlays.dcm")


def overlay_state(ds: pydicom.Dataset, groups: tuple[int, ...]) -> PresentationState:
    ref = ImageRef(str(ds.SOPInstanceUID), None, str(ds.SOPClassUID))
    p = ImagePresentation(ref, voi=(100.0, 400.0), overlays_on=groups)
    return PresentationState("", "", str(ds.StudyInstanceUID), "OVERLAYS", "", "",
                             images={(ref.sop_instance_uid, None): p})  # fmt: skip


def square_centres() -> dict[int, tuple[float, float]]:
    """Image (col, row) of the centre of each group's square."""
    return {g: (left + 4.5, top + 4.5) for g, (top, left) in SQUARES.items()}


def test_overlay_planes_of_chosen_groups(tmp_path) -> None:
    ds, _ = overlay_image(tmp_path)
    assert overlay_groups(ds) == [0x6000, 0x6002]
    every = overlay_planes(ds, 0, (ROWS, COLS))
    assert [p.group for p in every] == [0x6000, 0x6002]
    (only,) = overlay_planes(ds, 0, (ROWS, COLS), groups={0x6002})
    assert only.group == 0x6002 and int(only.mask.sum()) == 100
    assert only.mask[40:50, 40:50].all()
    assert overlay_planes(ds, 0, (ROWS, COLS), groups=()) == []
