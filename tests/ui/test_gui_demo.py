"""What the README's run command does: the demo studies, installed and the CT hung by its
protocol's comparison stage, current beside prior."""

from __future__ import annotations

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
