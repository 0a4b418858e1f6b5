"""Overlay activation per group in the viewer: an image with overlays 6000 (top left) and 6002
(bottom right). The user sees both; applying a GSPS that activates only 6000 draws 6000 and not
6002; leaving brings both back; the user's "overlays off" survives applying and leaving. A state
saved from the viewer records the overlays the user sees."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pstate"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_annotation_tools import source_of  # noqa: E402
from test_overlay_activation import overlay_image, overlay_state, square_centres  # noqa: E402

from workstation.core.series_loader import SeriesLoader  # noqa: E402
from workstation.core.view_state import to_screen  # noqa: E402
from workstation.pstate.gsps_reader import read_gsps  # noqa: E402
from workstation.pstate.gsps_writer import write_gsps  # noqa: E402
from workstation.ui.bindings import load_bindings  # noqa: E402
from workstation.ui.frame_service import FrameService  # noqa: E402
from workstation.ui.presentation_controller import PresentationController  # noqa: E402
from workstation.ui.presets import load_presets  # noqa: E402
from workstation.ui.viewport import Viewport  # noqa: E402


@pytest.fixture
def shown(qapp, qtbot, tmp_path):
    service = FrameService(lambda: SeriesLoader(workers=1))
    ds, path = overlay_image(tmp_path / "image")
    v = Viewport(service, load_bindings(), load_presets())
    qtbot.addWidget(v)
    v.resize(400, 400)
    v.show()
    v.model.set_source(source_of([path]), 0)
    v.grab()
    yield v, ds
    service.shutdown()


def drawn(v: Viewport) -> dict[int, bool]:
    """Whether each overlay square is drawn (white) in the viewport's picture."""
    image = v.grab().toImage()
    m = v.model.transform()
    out = {}
    for group, (col, row) in square_centres().items():
        x, y = to_screen(m, col, row)
        out[group] = image.pixelColor(int(round(x)), int(round(y))).red() == 255
    return out


def test_an_applied_state_draws_only_its_groups(shown, tmp_path) -> None:
    v, ds = shown
    c = PresentationController()
    assert drawn(v) == {0x6000: True, 0x6002: True}  # the user's view: every overlay
    path = tmp_path / "state.dcm"
    write_gsps(overlay_state(ds, (0x6000,)), [ds]).save_as(path, enforce_file_format=True)
    assert c.apply(v, read_gsps(path))
    assert v.overlay_groups == frozenset({0x6000})
    assert drawn(v) == {0x6000: True, 0x6002: False}
    shots = Path(os.environ.get("WS_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    v.grab().save(str(shots / "overlay_6000_only.png"))
    c.leave(v)
    assert v.overlay_groups is None
    assert drawn(v) == {0x6000: True, 0x6002: True}
    # a state activating none draws none, even though the user had overlays on
    write_gsps(overlay_state(ds, ()), [ds]).save_as(path, enforce_file_format=True)
    assert c.apply(v, read_gsps(path))
    assert drawn(v) == {0x6000: False, 0x6002: False}
    c.leave(v)
    # the user's "overlays off" comes back after a state that shows 6002
    v.toggle_overlays()
    assert drawn(v) == {0x6000: False, 0x6002: False}
    write_gsps(overlay_state(ds, (0x6002,)), [ds]).save_as(path, enforce_file_format=True)
    assert c.apply(v, read_gsps(path))
    assert drawn(v) == {0x6000: False, 0x6002: True}
    c.leave(v)
    assert not v.show_overlays and drawn(v) == {0x6000: False, 0x6002: False}


def test_a_saved_state_records_the_overlays_seen(shown, tmp_path) -> None:
    v, ds = shown
    c = PresentationController()
    key = (str(ds.SOPInstanceUID), None)
    state, _headers, _ms = c.build_state(v, "OVERLAYS")
    assert state.images[key].overlays_on == (0x6000, 0x6002)
    v.toggle_overlays()
    state, _headers, _ms = c.build_state(v, "NO OVERLAYS")
    assert state.images[key].overlays_on == ()
    v.toggle_overlays()
    # written and read back, then applied: what the user saw
    path = tmp_path / "seen.dcm"
    write_gsps(c.build_state(v, "SEEN")[0], [ds]).save_as(path, enforce_file_format=True)
    back = read_gsps(path)
    assert back.for_image(*key).overlays_on == (0x6000, 0x6002)
    # while a state showing only 6000 is applied, saving records only 6000
    write_gsps(overlay_state(ds, (0x6000,)), [ds]).save_as(path, enforce_file_format=True)
    assert c.apply(v, read_gsps(path))
    assert c.build_state(v, "APPLIED")[0].images[key].overlays_on == (0x6000,)


@pytest.mark.parametrize(
    "groups", [(0x6000,), (0x6002,), (), (0x6000, 0x6002)], ids=["6000", "6002", "none", "both"]
)
def test_headless_render_draws_exactly_the_activated_groups(tmp_path, groups) -> None:
    from workstation.app.cli_gsps import render_with_state

    ds, image = overlay_image(tmp_path / "image")
    state_path = tmp_path / "state.dcm"
    write_gsps(overlay_state(ds, groups), [ds]).save_as(state_path, enforce_file_format=True)
    got = render_with_state(image, state_path, size=(256, 256))
    assert got.presentation.overlays_on == groups
    grey = got.pixels[..., 0].astype(int)
    background = grey[128, 128]
    assert 100 < background < 160  # mid grey from the window, no overlay there
    for group, (col, row) in square_centres().items():
        x, y = to_screen(got.matrix, col, row)
        value = grey[int(round(y)), int(round(x))]
        if group in groups:
            assert value == 255, f"{group:04X} activated but not drawn"
        else:
            assert value == background, f"{group:04X} not activated but drawn"
