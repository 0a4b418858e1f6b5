"""The annotation list and presentation states in the viewer: listing and going to annotations,
applying a state and leaving it (the user's view and annotations come back exactly), saving the
view as a state that reads back the same, key-image marks."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic import stack_files  # noqa: E402
from test_annotation_tools import click_image, drag_image, source_of  # noqa: E402

from workstation.core.series_loader import SeriesLoader  # noqa: E402
from workstation.core.voi import Window  # noqa: E402
from workstation.pstate.gsps_reader import read_gsps  # noqa: E402
from workstation.pstate.gsps_writer import write_gsps  # noqa: E402
from workstation.pstate.model import Shutter  # noqa: E402
from workstation.ui.annotation_panel import AnnotationPanel  # noqa: E402
from workstation.ui.bindings import load_bindings  # noqa: E402
from workstation.ui.frame_service import FrameService  # noqa: E402
from workstation.ui.presentation_panel import PresentationController, PresentationPanel  # noqa: E402
from workstation.ui.presets import load_presets  # noqa: E402
from workstation.ui.viewer_area import ViewerArea  # noqa: E402
from workstation.ui.viewport import Viewport  # noqa: E402


@pytest.fixture
def service(qapp):
    s = FrameService(lambda: SeriesLoader(workers=1))
    yield s
    s.shutdown()


@pytest.fixture
def area(qtbot, service, tmp_path):
    a = ViewerArea(service, load_bindings(), load_presets())
    qtbot.addWidget(a)
    a.resize(500, 500)
    a.show()
    src = source_of(stack_files(tmp_path, n=6, rows=64, cols=64, pixel_mm=0.5))
    a.active.model.set_source(src, 0)
    a.active.grab()
    return a


def test_the_list_shows_goes_to_and_deletes(qtbot, area) -> None:
    v = area.active
    panel = AnnotationPanel(area)
    qtbot.addWidget(panel)
    v.left_tool = "length"
    drag_image(v, [(10, 10), (30, 10)])
    v.model.set_index(3)
    v.left_tool = "rectangle"
    drag_image(v, [(10, 10), (20, 20)])
    v.grab()
    assert panel.tree.topLevelItemCount() == 2
    first = panel.tree.topLevelItem(0)
    assert [first.text(c) for c in range(4)] == ["1", "Length", "10.0 mm", "Pixel Spacing"]
    second = panel.tree.topLevelItem(1)
    assert second.text(0) == "4" and second.text(1) == "Rectangle ROI"
    assert second.text(2).startswith("Mean 2")  # slice k = 2 on display index 3
    uid = first.data(0, Qt.ItemDataRole.UserRole)
    panel.tree.setCurrentItem(panel.tree.topLevelItem(0))
    assert v.model.state.index == 0
    store = v.annotation_tools.store()
    assert store.selected == uid
    panel.delete_button.click()
    assert panel.tree.topLevelItemCount() == 1 and len(store) == 1
    v.annotation_tools.undo()
    assert panel.tree.topLevelItemCount() == 2


def _user_setup(v):
    v.model.set_voi(Window(40, 400), "user")
    v.model.rotate(1)
    v.model.zoom_by(1.8, (200.0, 240.0))
    v.left_tool = "length"
    drag_image(v, [(26, 30), (38, 33)])  # on screen at this zoom


def test_apply_then_leave_restores_the_users_view_and_annotations(qtbot, area) -> None:
    v = area.active
    _user_setup(v)
    user_state = v.model.state
    user_annotations = v.annotation_tools.annotations_here()
    controller = PresentationController()
    # another reader's state: its own window, flip, invert, an ellipse, a circular shutter
    other_v = Viewport(area.service, load_bindings(), load_presets())  # another reader's
    qtbot.addWidget(other_v)
    other_v.resize(500, 500)
    other_v.show()
    other_v.model.set_source(v.model.source, 0)
    other_v.grab()
    other_v.model.set_voi(Window(500, 1000), "user")
    other_v.model.flip_horizontal()
    other_v.model.toggle_invert()
    other_v.left_tool = "ellipse"
    drag_image(other_v, [(30, 30), (50, 40)])
    state, headers, _ = controller.build_state(other_v, "THEIRS")
    key = next(iter(state.images))
    p = state.images[key]
    state.images[key] = type(p)(
        **{**p.__dict__, "shutter": Shutter(("CIRCULAR",), centre=(31.5, 31.5), radius=20.0)}
    )
    assert controller.apply(v, state)
    st = v.model.state
    assert (st.voi.center, st.voi.width) == (500, 1000)
    assert st.flip and st.invert and st.rotation == 0
    shown = v.annotation_tools.annotations_here()
    assert [a.kind for a in shown] == ["ellipse"]
    img = v.grab().toImage()
    corner = img.pixelColor(*[int(c) for c in _screen(v, 1, 1)])
    assert (corner.red(), corner.green(), corner.blue()) == (0, 0, 0)  # under the shutter
    controller.leave(v)
    assert v.model.state == user_state
    assert v.annotation_tools.annotations_here() == user_annotations


def _screen(v, c, r):
    m = v.model.transform()
    x, y, _ = m @ np.array([c, r, 1.0])
    return x, y


def test_saved_state_reads_back_and_applies_the_same_view(qtbot, area, tmp_path) -> None:
    v = area.active
    _user_setup(v)
    v.model.set_index(2)
    v.left_tool = "ellipse"
    drag_image(v, [(30, 30), (50, 44)])
    v.model.set_index(0)
    saved_view = v.model.state
    saved = {a.uid: a for a in v.annotation_tools.store().all()}
    got = {}

    def save_state(state, headers, measurements):
        headers = [_with_patient_module(h) for h in headers]
        ds = write_gsps(state, headers, measurements=measurements)
        path = tmp_path / "ps.dcm"
        ds.save_as(path, enforce_file_format=True)
        got["state"] = read_gsps(path)
        return "stored"

    panel = PresentationPanel(area, lambda series: [got["state"]] if got else [], save_state)
    qtbot.addWidget(panel)
    assert panel.save("Reading one", "follow-up") == "stored"
    assert panel.list.count() == 1 and panel.list.item(0).text().startswith("READING ONE")
    read = got["state"]
    back = {a.uid: a for a in read.all_annotations}
    assert set(back) == set(saved)
    for uid, a in saved.items():
        assert (back[uid].kind, back[uid].text, back[uid].layer) == (a.kind, a.text, a.layer)
        assert back[uid].image.sop_instance_uid == a.image.sop_instance_uid
        assert np.allclose(back[uid].points, a.points, atol=0.01)
    v.model.reset()
    v.annotation_tools.store().clear()
    panel.list.setCurrentRow(0)
    assert panel.apply_selected()
    st = v.model.state
    assert (st.voi.center, st.voi.width) == (saved_view.voi.center, saved_view.voi.width)
    assert (st.rotation, st.flip, st.invert) == (
        saved_view.rotation,
        saved_view.flip,
        saved_view.invert,
    )
    # the displayed area is written to whole pixels: the same anatomy in the centre, the same
    # scale within the rounding of a 64-pixel image
    got_m, want_m = v.model.transform(), _transform_of(v, saved_view)
    centre = np.array([*np.array(v.model.viewport_size) / 2, 1.0])
    assert np.allclose(np.linalg.inv(got_m) @ centre, np.linalg.inv(want_m) @ centre, atol=0.5)
    assert abs(np.linalg.det(got_m[:2, :2])) == pytest.approx(
        abs(np.linalg.det(want_m[:2, :2])), rel=0.04
    )
    assert {a.uid for a in v.annotation_tools.annotations_here()} == {
        a.uid for a in saved.values() if a.image.sop_instance_uid == _sop(v, 0)
    }
    panel.leave()
    assert v.annotation_tools.annotations_here() == []  # the user's (cleared) own again


def _with_patient_module(ds):
    """The synthetic headers lack the type 2 patient attributes a GSPS copies."""
    ds = ds.copy()
    for keyword in ("PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "StudyID",
                    "AccessionNumber", "ReferringPhysicianName"):  # fmt: skip
        if keyword not in ds:
            setattr(ds, keyword, "")
    return ds


def _sop(v, i):
    return str(v.model.source.header(i).SOPInstanceUID)


def _transform_of(v, state):
    from workstation.core.view_state import display_transform

    return display_transform(state, v.model.geometry(), v.model.viewport_size)


def test_key_image_marks_and_save(qtbot, area) -> None:
    v = area.active
    saved = {}
    panel = PresentationPanel(
        area, lambda s: [], None, lambda marked, text: saved.update(m=marked, t=text) or "ok"
    )
    qtbot.addWidget(panel)
    panel.mark_button.click()
    v.model.set_index(4)
    assert not panel.mark_button.isChecked()
    panel.mark_button.click()
    v.model.set_index(0)
    assert panel.mark_button.isChecked()
    panel.save_key_images_dialog("for the surgeon")
    assert [ds.SOPInstanceUID for ds, _ in saved["m"]] == [_sop(v, 0), _sop(v, 4)]
    assert saved["t"] == "for the surgeon"
    panel.mark_button.click()  # unmark image 0
    assert [ds.SOPInstanceUID for ds, _ in panel.controller.key_images(v)] == [_sop(v, 4)]


def test_viewports_on_one_series_share_its_annotations(qtbot, area) -> None:
    v = area.active
    v.left_tool = "probe"
    click_image(v, 3, 3)
    other = area.viewports[1]
    other.model.set_source(v.model.source, 0)
    assert other.annotation_tools.annotations_here() == v.annotation_tools.annotations_here()
    assert len(other.annotation_tools.annotations_here()) == 1
