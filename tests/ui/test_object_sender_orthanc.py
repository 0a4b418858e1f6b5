"""The panel's "Send to…": the worker C-STOREs a key-image note to a real Orthanc off the GUI
thread and reports the outcome; a node that is down is reported by name, and the sender is free
again afterwards."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "interop"))
from test_send_pstate_orthanc import orthanc, orthanc_instance, peers, stored  # noqa: E402,F401

from workstation.net.nodes import RemoteNode  # noqa: E402
from workstation.pstate.kos import KOS_SOP_CLASS  # noqa: E402
from workstation.ui.object_sender import ObjectSender  # noqa: E402

pytestmark = pytest.mark.interop


def test_the_panel_sends_the_selected_note_off_the_gui_thread(stored, orthanc, qtbot) -> None:  # noqa: F811
    service, _gsps, kos = stored
    node = RemoteNode("orthanc", orthanc.aet, "127.0.0.1", orthanc.dicom)
    sender = ObjectSender(service.send, lambda: [node])
    with qtbot.waitSignal(sender.finished, timeout=30000) as got:
        assert sender.send(kos.sop_instance_uid, "Key images", node)
        assert sender.busy  # the GUI thread went on; the worker sends
    assert got.args == [True, "Key images sent to orthanc (ORTHANC)"]
    assert orthanc_instance(orthanc.http, kos.sop_instance_uid)["SOPClassUID"] == KOS_SOP_CLASS
    sender.shutdown()


def test_a_node_that_is_down_is_reported_by_name(stored, qtbot) -> None:  # noqa: F811
    service, gsps, _kos = stored
    down = RemoteNode("night pacs", "NIGHT", "127.0.0.1", peers.free_port(), connect_timeout=2)
    sender = ObjectSender(service.send, lambda: [down])
    with qtbot.waitSignal(sender.finished, timeout=10000) as got:
        sender.send(gsps.sop_instance_uid, "Presentation state OVERLAYS", down)
    ok, text = got.args
    assert not ok
    assert text.startswith("Presentation state OVERLAYS not sent: night pacs (NIGHT@127.0.0.1")
    assert not sender.busy
    sender.shutdown()
