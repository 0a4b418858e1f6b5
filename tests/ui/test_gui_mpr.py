"""MPR from the window: the CT protocol's "three planes" stage shows axial, coronal and sagittal
reformats, and the MPR action opens the active series in the MPR workspace (and back)."""

from __future__ import annotations

import time

from PySide6.QtWidgets import QApplication

from workstation.app.gui import Gui
from workstation.app.services import Services
from workstation.render.reformat_source import ReformatSource


def test_reformat_stage_and_mpr_workspace(qapp, tmp_path) -> None:
    services = Services(home=tmp_path / "home")
    gui = Gui(services)
    try:
        gui.window.resize(1400, 900)
        gui.window.show()
        assert gui.install_demo(ask=False)
        assert gui.open_demo_study()
        assert gui.wait_until_painted(timeout_s=60)
        h = gui.hanging
        planes = next(s for s in h.match.stages if s.name == "Three planes")
        h.apply(h.match, planes.index)
        assert gui.wait_until_painted(timeout_s=90)
        views = gui.window.viewer.visible()
        assert all(isinstance(v.model.source, ReformatSource) for v in views)
        orient = [
            tuple(round(x) for x in v.model.source.header(0).ImageOrientationPatient) for v in views
        ]
        assert orient == [(1, 0, 0, 0, 1, 0), (1, 0, 0, 0, 0, -1), (0, 1, 0, 0, 0, -1)]
        assert [str(v.model.source.header(0).SeriesDescription).split()[1] for v in views] == [
            "axial",
            "coronal",
            "sagittal",
        ]
        # the MPR workspace on the active series, and back
        h.apply(h.match, 0)
        assert gui.wait_until_painted(timeout_s=30)
        gui.window.toggle_mpr()
        assert gui.window.stack.currentWidget() is gui.mpr
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
            gui.mpr.shared is not None
            and all(v.frames_painted > 0 for v in gui.mpr.viewports.values())
        ):
            QApplication.processEvents()
            time.sleep(0.02)
        assert gui.mpr.shared is not None
        assert sorted(gui.mpr.viewports) == ["axial", "coronal", "sagittal"]
        gui.window.show_3d()  # no OpenGL display offscreen: said, not crashed
        assert "3D view unavailable" in gui.window.status_label.text()
        gui.window.toggle_mpr()
        assert gui.window.stack.currentWidget() is gui.window.viewer
    finally:
        gui.close()
        services.archive.close()
