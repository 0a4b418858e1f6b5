"""What the README's run command does: the demo studies, installed and the CT hung by its
protocol's comparison stage, current beside prior."""

from __future__ import annotations

import pytest

from workstation.app.gui import Gui
from workstation.app.services import Services
from workstation.core.registration import Registration


def test_demo_opens_the_ct_beside_its_prior(qapp, tmp_path) -> None:
    services = Services(home=tmp_path / "home")
    gui = Gui(services)
    try:
        gui.window.resize(1400, 900)
        gui.window.show()
        assert gui.install_demo(ask=False)
        assert gui.open_demo_study()
        assert gui.wait_until_painted(timeout_s=60)
        left, right = gui.window.viewer.visible()
        dates = [str(v.model.source.header(0).StudyDate) for v in (left, right)]
        assert dates[0] > dates[1]  # newest on the left, the prior on the right
        for v in (left, right):
            assert v.model.source.display_set.modality == "CT" and len(v.model.source) == 120
            # the protocol's comparison stage opens both at the middle image
            assert v.model.state.index == 60 and v.current_renderer() is not None
        assert gui.hanging.match.name == "ct"
        stage = gui.hanging.match.stages[gui.hanging.stage_index]
        assert [c.study for c in stage.viewports] == ["current", "prior"]
        assert left.study_tag.text.startswith("CURRENT") and right.study_tag.is_prior
        # the demo's prior was acquired in another frame of reference: no linked scrolling until
        # the user registers the two, which the status bar says
        assert "Shift+S" in gui.window.status_label.text()
        left.model.set_index(30)
        assert right.model.state.index == 60
        a = left.model.source.header(0).FrameOfReferenceUID
        b = right.model.source.header(0).FrameOfReferenceUID
        assert a != b
        gui.registrations.set(Registration(a, b, (0.0, 0.0, 0.0)))
        gui.window.viewer.set_active(left)
        left.model.set_index(40)  # now the two scroll together (sync group of the stage)
        za = float(left.model.source.plane(40).origin[2])
        zb = float(right.model.source.plane(right.model.state.index).origin[2])
        assert right.model.state.index != 60 and abs(za - zb) <= 1.25
        studies = list(services.archive.find("STUDY", {}))
        assert gui.study_browser.model.rowCount() == len(studies) >= 4
    finally:
        gui.close()
        services.archive.close()


def test_demo_mammograms_hang_back_to_back_with_chest_walls_meeting(qapp, tmp_path) -> None:
    """Screening mammography: R views on the left with their chest wall against the right edge
    of the viewport, L views on the right against the left edge, current and prior alike."""
    import numpy as np

    services = Services(home=tmp_path / "home")
    gui = Gui(services)
    try:
        gui.window.resize(2400, 1000)
        gui.window.show()
        assert gui.install_demo(ask=False)
        studies = sorted(
            services.archive.find("STUDY", {"PatientID": "DEMO-MG-0004"}),
            key=lambda r: str(r["StudyDate"]),
        )
        gui.hanging.open_study(str(studies[-1]["StudyInstanceUID"]))
        assert gui.wait_until_painted(timeout_s=60)
        assert gui.hanging.match.name == "mammo-screening"
        for stage in range(3):
            gui.hanging.apply(gui.hanging.match, stage)
            assert gui.wait_until_painted(timeout_s=60)
            views = gui.window.viewer.visible()
            assert len(views) == 4
            for i, v in enumerate(views):
                ds = v.model.source.header(0)
                m = v.model.transform()
                geo = v.model.geometry()
                xs = [
                    float((m @ np.array([c, r, 1.0]))[0])
                    for c in (-0.5, geo.cols - 0.5)
                    for r in (-0.5, geo.rows - 0.5)
                ]
                width = v.model.viewport_size[0]
                assert max(xs) - min(xs) < width - 20  # narrower than the viewport: room to move
                if i % 2 == 0:
                    assert str(ds.ImageLaterality) == "R"
                    assert max(xs) == pytest.approx(width, abs=0.5)
                else:
                    assert str(ds.ImageLaterality) == "L"
                    assert min(xs) == pytest.approx(0.0, abs=0.5)
                # the chest wall (the image's posterior edge) is the edge against the middle:
                # the rendered picture has breast tissue in the column next to the middle line
                img = v.grab().toImage()
                x = img.width() - 3 if i % 2 == 0 else 2
                y0, y1 = img.height() // 3, 2 * img.height() // 3
                lit = sum(1 for y in range(y0, y1, 4) if img.pixelColor(x, y).lightness() > 40)
                assert lit > 0.8 * len(range(y0, y1, 4))
    finally:
        gui.close()
        services.archive.close()


def test_closing_the_gui_destroys_its_window(qapp, tmp_path) -> None:
    """No closed window may linger, shown, for a later garbage collection to half-clear."""
    import shiboken6

    services = Services(home=tmp_path / "home")
    gui = Gui(services)
    try:
        gui.window.show()
        window = gui.window
        viewport = window.viewer.visible()[0]
        assert window.isVisible() and shiboken6.isValid(viewport)
    finally:
        gui.close()
        services.archive.close()
    # the C++ window and its widgets are gone, not merely hidden
    assert not shiboken6.isValid(window) and not shiboken6.isValid(viewport)
