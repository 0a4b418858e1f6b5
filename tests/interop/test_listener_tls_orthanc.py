"""C-MOVE from a real Orthanc into our storage listener over TLS.

Orthanc (1.9 and later) opens its C-STORE sub-operations to a modality marked ``UseDicomTls``
with TLS, presenting its ``DicomTlsCertificate`` as client certificate and verifying ours against
``DicomTlsTrustedCertificates``. Our identity carries the listener TLS setting with client
certificates required; the retrieve service's temporary listener uses it. The query and the
C-MOVE request itself go to Orthanc's plain DICOM port. dcmqrscp has no TLS, so it is not
a peer here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest

from workstation.app.retrieve_service import RetrieveService
from workstation.archive.archive import Archive
from workstation.net.nodes import ListenerTls, LocalIdentity, RemoteNode

pytestmark = pytest.mark.interop
peers = pytest.importorskip("peers")

WS = "WS"


@dataclass(frozen=True)
class Setup:
    node: RemoteNode
    pki: peers.Pki
    port: int
    files: list[Path]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path) -> Iterator[Setup]:
    if not (peers.have("Orthanc") and peers.have("openssl")):
        pytest.skip("Orthanc or openssl not installed")
    tmp = tmp_path_factory.mktemp("orthanc-tls")
    pki = peers.make_pki(tmp / "pki")
    files = sorted((corpus_dir / "ct_series").glob("*/*.dcm"))
    assert len(files) == 28
    port = peers.free_port()
    modalities = {"ws": {"AET": WS, "Host": "127.0.0.1", "Port": port, "UseDicomTls": True}}
    with peers.orthanc_peer(
        tmp,
        modalities,
        DicomTlsCertificate=str(pki.client_cert),
        DicomTlsPrivateKey=str(pki.client_key),
        DicomTlsTrustedCertificates=str(pki.ca),
        DicomTlsRemoteCertificateRequired=True,
    ) as orthanc:
        orthanc.upload(files)
        node = RemoteNode("orthanc", orthanc.aet, "127.0.0.1", orthanc.dicom)
        yield Setup(node, pki, port, files)


def identity(setup: Setup, ca: Path) -> LocalIdentity:
    pki = setup.pki
    tls = ListenerTls(True, str(pki.server_cert), str(pki.server_key), str(ca), True)
    return LocalIdentity(WS, setup.port, "127.0.0.1", tls=tls)


def dataset_bytes(part10: bytes) -> bytes:
    assert part10[128:132] == b"DICM"
    group_length = int.from_bytes(part10[140:144], "little")
    return part10[144 + group_length :]


def test_c_move_from_orthanc_into_our_tls_listener(setup: Setup, tmp_path: Path) -> None:
    study = pydicom.dcmread(setup.files[0], stop_before_pixels=True).StudyInstanceUID
    with Archive(tmp_path / "archive") as archive:
        service = RetrieveService(archive, identity(setup, setup.pki.ca))
        report = service.retrieve(setup.node, study, method="C-MOVE")
        assert report.outcome == "complete", report.message
        assert (report.arrived, report.on_node) == (28, 28)
        rows = {r["SOPInstanceUID"]: r for r in archive.find("IMAGE", {"StudyInstanceUID": study})}
        for path in setup.files:
            uid = pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID
            stored = archive.path_of(rows[uid]["rel_path"]).read_bytes()
            assert dataset_bytes(stored) == dataset_bytes(path.read_bytes()), path.name


def test_c_move_fails_when_our_listener_does_not_trust_orthanc(
    setup: Setup, tmp_path: Path
) -> None:
    """Orthanc's certificate is signed by a CA we do not trust: nothing is stored, and the
    retrieve ends with failed sub-operations instead of hanging."""
    study = pydicom.dcmread(setup.files[0], stop_before_pixels=True).StudyInstanceUID
    with Archive(tmp_path / "archive") as archive:
        service = RetrieveService(archive, identity(setup, setup.pki.other_ca))
        report = service.retrieve(setup.node, study, method="C-MOVE")
        assert report.outcome == "failed", report.message
        assert report.arrived == 0
        assert list(archive.find("IMAGE", {"StudyInstanceUID": study})) == []
