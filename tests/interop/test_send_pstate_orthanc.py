"""Sending presentation states and key-image notes to a PACS node: a GSPS and a KOS saved into a
real archive are C-STOREd to a real Orthanc by the service; Orthanc's REST API then holds both
with the same SOP Instance UID and class. Sending to a node that is down fails within its
timeout with a message naming it. (The panel's "Send to…" worker: tests/ui.)"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from pathlib import Path

import pydicom
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pstate"))
from test_overlay_activation import overlay_image, overlay_state  # noqa: E402

from workstation.app.presentation_states import PresentationStateService  # noqa: E402
from workstation.archive.archive import Archive  # noqa: E402
from workstation.net.errors import NodeUnreachable  # noqa: E402
from workstation.net.nodes import LocalIdentity, RemoteNode  # noqa: E402
from workstation.pstate.gsps_reader import GSPS_SOP_CLASS  # noqa: E402
from workstation.pstate.kos import KOS_SOP_CLASS  # noqa: E402

pytestmark = pytest.mark.interop

peers = pytest.importorskip("peers")


def orthanc_instance(http: int, sop_uid: str) -> dict | None:
    """The main tags of the instance ``sop_uid`` in Orthanc (None when it holds none)."""
    query = json.dumps({"Level": "Instance", "Query": {"SOPInstanceUID": sop_uid}}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{http}/tools/find", data=query,
                                     method="POST")  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        ids = json.load(response)
    if not ids:
        return None
    with urllib.request.urlopen(
        f"http://127.0.0.1:{http}/instances/{ids[0]}/simplified-tags", timeout=10
    ) as response:
        return json.load(response)


@pytest.fixture
def stored(tmp_path):
    """An archive holding an image, a GSPS and a KOS of it."""
    ds, path = overlay_image(tmp_path / "image")
    archive = Archive(tmp_path / "archive")
    assert archive.add_file(path).ok
    service = PresentationStateService(archive, identity=LocalIdentity("WSTEST", 11112))
    header = pydicom.dcmread(path, stop_before_pixels=True)
    gsps = service.save_gsps(overlay_state(ds, (0x6000,)), [header])
    kos = service.save_kos([header], description="send test")
    yield service, gsps, kos
    archive.close()


@pytest.fixture
def orthanc(tmp_path):
    if not peers.have("Orthanc"):
        pytest.skip("Orthanc not installed (Debian package 'orthanc')")
    (tmp_path / "orthanc").mkdir()
    with peers.orthanc_peer(tmp_path / "orthanc", {}) as peer:
        yield peer


def test_gsps_and_kos_arrive_with_their_uids_and_classes(stored, orthanc) -> None:
    service, gsps, kos = stored
    node = RemoteNode("orthanc", orthanc.aet, "127.0.0.1", orthanc.dicom)
    for obj, cls in ((gsps, GSPS_SOP_CLASS), (kos, KOS_SOP_CLASS)):
        assert orthanc_instance(orthanc.http, obj.sop_instance_uid) is None
        outcome = service.send(obj.sop_instance_uid, node)
        assert outcome.ok and outcome.status == 0
        tags = orthanc_instance(orthanc.http, obj.sop_instance_uid)
        assert tags is not None, f"{obj.kind} did not arrive"
        assert tags["SOPInstanceUID"] == obj.sop_instance_uid
        assert tags["SOPClassUID"] == cls
        assert tags["StudyInstanceUID"] == obj.study_uid


def test_a_node_that_is_down_fails_clearly_within_its_timeout(stored) -> None:
    service, gsps, _kos = stored
    down = RemoteNode("night pacs", "NIGHT", "127.0.0.1", peers.free_port(), connect_timeout=2)
    start = time.monotonic()
    with pytest.raises(NodeUnreachable, match="night pacs"):
        service.send(gsps.sop_instance_uid, down)
    assert time.monotonic() - start < 5
