"""What the README's run command does: the demo studies, installed and opened current beside prior."""

from __future__ import annotations

from workstation.app.gui import Gui
from workstation.app.services import Services


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
            assert v.model.state.index == 0 and v.current_renderer() is not None
        assert gui.study_browser.model.rowCount() == 4
    finally:
        gui.close()
        services.archive.close()
