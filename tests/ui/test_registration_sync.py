"""Linked scrolling between a current CT and its prior in another Frame of Reference, after a
one-click registration (issue 7, test 3): synthetic volumes with a known offset."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QMouseEvent

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from synthetic import stack_files  # noqa: E402
from test_viewport import decoded, mouse, sources  # noqa: E402

from workstation.core.registration import Registration, RegistrationBook  # noqa: E402
from workstation.core.series_loader import SeriesLoader  # noqa: E402
from workstation.core.view_state import to_screen  # noqa: E402
from workstation.ui.bindings import load_bindings  # noqa: E402
from workstation.ui.frame_service import FrameService  # noqa: E402
from workstation.ui.presets import load_presets  # noqa: E402
from workstation.ui.viewer_area import ViewerArea  # noqa: E402

#: The prior was acquired with the patient 14 mm further along +z (towards the head) and 3 mm to
#: the left: the same anatomy sits at ``point_in_current + SHIFT`` in the prior's space.
SHIFT = np.array([3.0, 0.0, 14.0])


def z_of(model, i):
    return float(model.source.plane(i).origin[2])


def click_centre(v) -> None:
    plane = v.model.source.plane(v.model.state.index)
    x, y = to_screen(v.model.transform(), (plane.cols - 1) / 2, (plane.rows - 1) / 2)
    mouse(v, QMouseEvent.Type.MouseButtonPress, (x, y))
    mouse(v, QMouseEvent.Type.MouseButtonRelease, (x, y))


@pytest.fixture
def service(qapp):
    s = FrameService(lambda: SeriesLoader(workers=1))
    yield s
    s.shutdown()


@pytest.fixture
def area_pair(qtbot, service, tmp_path):
    current = sources(stack_files(tmp_path / "cur", "axial", n=30, spacing=2.0, for_uid="1.2.1"))[0]
    prior = sources(
        stack_files(
            tmp_path / "pri", "axial", n=24, spacing=2.5, for_uid="1.2.2", offset=tuple(SHIFT)
        )
    )[0]
    book = RegistrationBook(tmp_path / "registrations.json")
    area = ViewerArea(service, load_bindings(), load_presets(), registrations=book)
    qtbot.addWidget(area)
    area.resize(800, 400)
    area.show()
    area.set_layout("1x2")
    a, b = area.viewports[:2]
    area.show_source(decoded(current), a)
    area.show_source(decoded(prior), b)
    area.set_active(a)
    return area, a, b, book


def test_different_frames_of_reference_do_not_link_until_registered(area_pair) -> None:
    area, a, b, _ = area_pair
    b.model.set_index(3)
    a.model.set_index(20)
    assert b.model.state.index == 3
    assert b.reference_lines == []


def test_one_click_registration_links_scrolling_to_the_matching_slice(
    qtbot, area_pair, tmp_path
) -> None:
    area, a, b, book = area_pair
    messages = []
    area.message.connect(messages.append)
    a.model.set_index(12)
    # the user finds the same anatomy in the prior and clicks it in both
    target_z = z_of(a.model, 12) + SHIFT[2]
    j = min(range(b.model.count), key=lambda k: abs(z_of(b.model, k) - target_z))
    b.model.set_index(j)
    area.set_active(a)
    qtbot.keyClick(a, Qt.Key.Key_S, Qt.KeyboardModifier.ShiftModifier)
    assert area.registering and a.left_tool == "locate"
    click_centre(a)
    assert area.registering
    click_centre(b)
    assert not area.registering and a.left_tool is None and b.left_tool is None
    assert "Registered" in messages[-1]
    reg = book.get("1.2.1", "1.2.2")
    # the click in the prior lands on its nearest slice (2.5 mm apart): within half a slice
    assert reg.translation[2] == pytest.approx(SHIFT[2], abs=1.25 + 1e-6)
    # both clicks at the image centre, which the prior has 3 mm to the left
    assert reg.translation[0] == pytest.approx(SHIFT[0])

    area.set_active(a)
    for i in (2, 9, 17, 25):
        a.model.set_index(i)
        want = z_of(a.model, i) + reg.translation[2]
        got = z_of(b.model, b.model.state.index)
        assert abs(got - want) <= 1.25 + 1e-6, (i, got, want)
        # and no other slice of the prior is closer
        best = min(abs(z_of(b.model, k) - want) for k in range(b.model.count))
        assert abs(got - want) == pytest.approx(best)
        assert len(b.reference_lines) == 0  # parallel planes draw no reference line
    # the other way round: scrolling the prior moves the current
    area.set_active(b)
    b.model.set_index(5)
    want = z_of(b.model, 5) - reg.translation[2]
    assert abs(z_of(a.model, a.model.state.index) - want) <= 1.0 + 1e-6

    # remembered for the pair, on disk
    data = json.loads((tmp_path / "registrations.json").read_text())
    assert data["registrations"][0]["source"] == "1.2.1"
    assert RegistrationBook(tmp_path / "registrations.json").get("1.2.2", "1.2.1") is not None


def test_clicking_twice_in_the_same_series_keeps_waiting_for_the_other(qtbot, area_pair) -> None:
    area, a, b, book = area_pair
    area.begin_registration()
    click_centre(a)
    click_centre(a)
    assert area.registering and len(book) == 0
    area.cancel_registration()
    assert not area.registering and a.left_tool is None


def test_locate_goes_through_the_registration(qtbot, area_pair) -> None:
    area, a, b, book = area_pair
    book.set(Registration("1.2.1", "1.2.2", tuple(float(v) for v in SHIFT)))
    a.model.set_index(10)
    area.locate(a, 7.0, 20.0)
    point = a.model.source.plane(10).pixel_to_patient(7.0, 20.0)
    want_z = float(np.asarray(point).reshape(3)[2]) + SHIFT[2]
    got = b.model.source.plane(b.model.state.index)
    assert abs(float(got.origin[2]) - want_z) <= 1.25 + 1e-6
    # the prior's images were shifted with the anatomy: the same pixel
    assert b.locate_point == pytest.approx((7.0, 20.0))


def test_current_and_prior_are_tagged_in_the_viewports(qtbot, service, tmp_path) -> None:
    from synthetic import image_dataset, save

    def study(folder, uid, date):
        ds = image_dataset(
            np.zeros((16, 16), np.int16),
            PatientID="P7",
            StudyInstanceUID=uid,
            StudyDate=date,
            StudyTime="100000",
        )
        return sources([save(ds, str(tmp_path / f"{folder}.dcm"))])[0]

    area = ViewerArea(service, load_bindings(), load_presets())
    qtbot.addWidget(area)
    area.resize(600, 300)
    area.show()
    area.set_layout("1x2")
    a, b = area.viewports[:2]
    area.show_source(study("new", "1.9.1", "20251120"), a)
    assert a.study_tag is None  # alone: nothing to confuse
    area.show_source(study("old", "1.9.2", "20240515"), b)
    assert a.study_tag.text == "CURRENT  2025-11-20"
    assert b.study_tag.text == "PRIOR  2024-05-15  (18 months earlier)" and b.study_tag.is_prior
    image = b.grab().toImage()
    # the amber strip along the top edge of the prior's viewport
    top = image.pixelColor(image.width() // 3, 1)
    assert (top.red(), top.green()) == (255, 176)
    area.toggle_maximize(b)
    assert b.study_tag is None  # alone on screen
