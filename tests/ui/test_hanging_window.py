"""Hanging protocols in the viewer: a study opened from the archive hangs by its protocol, and a
prior that lives only on a PACS (a real Orthanc) is found, retrieved in the background and shown
beside the current study in the comparison stage (issue 7, test 2, through the window's path)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hanging.chest_files import chest_study  # noqa: E402

from workstation.app.hanging_backend import HangingBackend  # noqa: E402
from workstation.app.node_settings import NodeBook, NodeSettings  # noqa: E402
from workstation.archive.archive import Archive  # noqa: E402
from workstation.core.frame_cache import FrameCache  # noqa: E402
from workstation.core.series_loader import SeriesLoader  # noqa: E402
from workstation.net.nodes import LocalIdentity, RemoteNode  # noqa: E402
from workstation.ui.frame_service import FrameService  # noqa: E402
from workstation.ui.hanging_controller import HangingController  # noqa: E402
from workstation.ui.presets import load_presets  # noqa: E402
from workstation.ui.viewer_area import ViewerArea  # noqa: E402

peers = pytest.importorskip("peers")
MB = 1024 * 1024


@pytest.fixture
def viewer(qtbot):
    service = FrameService(lambda: SeriesLoader(workers=1))
    area = ViewerArea(service, presets=load_presets())
    qtbot.addWidget(area)
    area.resize(900, 600)
    area.show()
    yield area
    service.shutdown()


def controller_for(viewer, backend: HangingBackend) -> HangingController:
    return HangingController(
        viewer,
        FrameCache(256 * MB),
        backend.protocols,
        backend.prepare,
        find_remote=backend.find_remote,
        retrieve=backend.retrieve,
        presets=load_presets(),
    )


def shown(viewer):
    out = []
    for v in viewer.visible():
        ds = v.model.source.header(0) if v.model.source is not None else None
        out.append(None if ds is None else (str(ds.StudyDate), str(ds.ViewPosition)))
    return out


def test_local_chest_study_and_prior_hang_pa_lat_then_comparison(qtbot, viewer, tmp_path):
    now, now_files = chest_study(tmp_path / "now", "20250310")
    _, prior_files = chest_study(tmp_path / "prior", "20240214", fill=300)
    with Archive(tmp_path / "home" / "archive") as archive:
        for path in [*now_files, *prior_files]:
            assert archive.add_file(path).ok
        hanging = controller_for(viewer, HangingBackend(archive, tmp_path / "home"))
        messages = []
        hanging.message.connect(messages.append)
        hanging.open_study(now)
        qtbot.waitUntil(lambda: not hanging.pending, timeout=20000)
        assert hanging.match.name == "chest-pa-lat"
        assert viewer.layout_name == hanging.match.stages[0].layout
        assert shown(viewer) == [("20250310", "PA"), ("20250310", "LL")]
        assert all(v.study_tag is None for v in viewer.visible())  # one study on screen
        hanging.next_stage()
        assert shown(viewer) == [
            ("20250310", "PA"),
            ("20250310", "LL"),
            ("20240214", "PA"),
            ("20240214", "LL"),
        ]
        tags = [v.study_tag.text for v in viewer.visible()]
        assert tags[:2] == ["CURRENT  2025-03-10"] * 2
        assert tags[2:] == ["PRIOR  2024-02-14  (12 months earlier)"] * 2
        assert "stage 2/2" in messages[-1]
        hanging.next_stage()  # wraps to the first stage
        assert len(viewer.visible()) == 2
        # the menu's choice of another protocol
        hanging.choose("fallback")
        assert hanging.match.name == "fallback"


def test_prior_only_on_orthanc_is_retrieved_and_shown(qtbot, viewer, tmp_path):
    if not peers.have("Orthanc"):
        pytest.skip("Orthanc not installed (Debian package 'orthanc')")
    home = tmp_path / "home"
    now, now_files = chest_study(tmp_path / "now", "20250310")
    prior, prior_files = chest_study(tmp_path / "prior", "20240214", fill=300)
    port = peers.free_port()
    with peers.orthanc_peer(tmp_path, {"ws": ["WS", "127.0.0.1", port]}) as orthanc:
        orthanc.upload(prior_files)
        NodeSettings(home).save(
            NodeBook(
                LocalIdentity("WS", port),
                (RemoteNode("orthanc", "ORTHANC", "127.0.0.1", orthanc.dicom),),
            )
        )
        with Archive(home / "archive") as archive:
            for path in now_files:
                assert archive.add_file(path).ok
            hanging = controller_for(viewer, HangingBackend(archive, home))
            busy = []
            hanging.busy.connect(busy.append)
            hanging.open_study(now)
            # found on Orthanc, retrieved in the background, the study hung again with it
            qtbot.waitUntil(lambda: busy[-1:] == [False], timeout=60000)
            qtbot.waitUntil(lambda: not hanging.pending, timeout=20000)
            assert len(list(archive.find("IMAGE", {"StudyInstanceUID": prior}))) == 2
            assert hanging.match.name == "chest-pa-lat"
            hanging.apply(hanging.match, 1)
            assert shown(viewer) == [
                ("20250310", "PA"),
                ("20250310", "LL"),
                ("20240214", "PA"),
                ("20240214", "LL"),
            ]
            assert viewer.visible()[2].study_tag.is_prior
