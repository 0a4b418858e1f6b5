"""TLS: echo and C-GET over TLS with certificates made in the test (``openssl``), against DCMTK's
TLS-enabled ``storescp`` and a pynetdicom Q/R peer; a certificate that does not verify is refused
with a message saying so.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from workstation.app.retrieve_service import RetrieveService
from workstation.archive.archive import Archive
from workstation.net.echo import echo
from workstation.net.errors import TlsError
from workstation.net.find import find
from workstation.net.nodes import LocalIdentity, RemoteNode, TlsSettings
from workstation.net.retrieve import RetrieveTarget, move
from workstation.net.tls import server_context

peers = pytest.importorskip("peers")
qr_peer = pytest.importorskip("qr_peer")

pytestmark = pytest.mark.skipif(not peers.have("openssl"), reason="openssl command absent")
ME = LocalIdentity("WS")


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> peers.Pki:
    return peers.make_pki(tmp_path_factory.mktemp("pki"))


def tls(pki: peers.Pki, ca: Path | None = None, client: bool = True) -> TlsSettings:
    return TlsSettings(
        enabled=True,
        ca_file=str(ca or pki.ca),
        cert_file=str(pki.client_cert) if client else "",
        key_file=str(pki.client_key) if client else "",
    )


@pytest.fixture
def tls_peer(pki: peers.Pki, corpus_dir: Path) -> Iterator[qr_peer.QrPeer]:
    files = sorted((corpus_dir / "ct_series").glob("*/*.dcm"))[:6]
    context = server_context(str(pki.server_cert), str(pki.server_key), str(pki.ca),
                             require_client_cert=True)  # fmt: skip
    with qr_peer.QrPeer(files, ssl_context=context) as peer:
        yield peer


def test_echo_and_c_get_over_tls(tls_peer: qr_peer.QrPeer, pki: peers.Pki, tmp_path: Path) -> None:
    node = RemoteNode("secure", tls_peer.aet, "127.0.0.1", tls_peer.port, tls=tls(pki))
    result = echo(ME, node)
    assert result.ok, result.message
    study = tls_peer.headers[0][1].StudyInstanceUID
    with Archive(tmp_path / "archive") as archive:
        report = RetrieveService(archive, ME).retrieve(node, study, method="C-GET")
        assert report.outcome == "complete", report.message
        assert report.arrived == 6
        rows = list(archive.find("IMAGE", {"StudyInstanceUID": study}))
        got = {r["SOPInstanceUID"]: archive.path_of(r["rel_path"]) for r in rows}
    for path, ds in tls_peer.headers:
        original = pydicom.dcmread(path)
        received = pydicom.dcmread(got[ds.SOPInstanceUID])
        assert received.PixelData == original.PixelData


def test_c_move_over_tls(tls_peer: qr_peer.QrPeer, pki: peers.Pki, tmp_path: Path) -> None:
    """The C-MOVE association (our lean requestor) over TLS; the node then sends to our
    listener on a plain association of its own."""
    port = peers.free_port()
    tls_peer.destinations["WS"] = port
    node = RemoteNode("secure", tls_peer.aet, "127.0.0.1", tls_peer.port, tls=tls(pki))
    study = tls_peer.headers[0][1].StudyInstanceUID
    with Archive(tmp_path / "archive") as archive:
        report = RetrieveService(archive, LocalIdentity("WS", port)).retrieve(
            node, study, method="C-MOVE"
        )
        assert report.outcome == "complete", report.message
        assert report.arrived == 6
    unverified = RemoteNode("secure", tls_peer.aet, "127.0.0.1", tls_peer.port,
                            tls=tls(pki, ca=pki.other_ca))  # fmt: skip
    with pytest.raises(TlsError, match="not accepted"):
        move(ME, unverified, RetrieveTarget(study))
    no_client_cert = RemoteNode("secure", tls_peer.aet, "127.0.0.1", tls_peer.port,
                                tls=tls(pki, client=False))  # fmt: skip
    with pytest.raises(TlsError, match="client certificate|TLS alert"):
        move(ME, no_client_cert, RetrieveTarget(study))


def test_certificate_that_does_not_verify_is_refused(
    tls_peer: qr_peer.QrPeer, pki: peers.Pki
) -> None:
    node = RemoteNode("secure", tls_peer.aet, "127.0.0.1", tls_peer.port,
                      tls=tls(pki, ca=pki.other_ca))  # fmt: skip
    result = echo(ME, node)
    assert result.outcome == "tls"
    assert "certificate" in result.message and "not accepted" in result.message
    with pytest.raises(TlsError, match="certificate verify failed|not accepted"):
        list(find(ME, node, "study"))


def test_plain_association_to_a_tls_port_fails_clearly(tls_peer: qr_peer.QrPeer) -> None:
    node = RemoteNode("secure", tls_peer.aet, "127.0.0.1", tls_peer.port, acse_timeout=2)
    result = echo(ME, node)
    assert not result.ok and result.outcome in ("aborted", "timeout")
    assert "TLS" in result.message


@pytest.mark.skipif(not peers.have("storescp"), reason="DCMTK storescp absent")
def test_echo_dcmtk_storescp_over_tls(pki: peers.Pki, tmp_path: Path) -> None:
    port = peers.free_port()
    cmd = ["storescp", "+tls", str(pki.server_key), str(pki.server_cert), "+cf", str(pki.ca),
           "-rc", "-od", str(tmp_path), str(port)]  # fmt: skip
    proc = subprocess.Popen(cmd, env=peers.NODELAY, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip
    try:
        peers.wait_for_port(port, proc, what="storescp")
        node = RemoteNode("dcmtk", "STORESCP", "127.0.0.1", port, tls=tls(pki))
        assert echo(ME, node).ok
        wrong = echo(ME, node.replace(tls=tls(pki, ca=pki.other_ca)))
        assert wrong.outcome == "tls" and "not accepted" in wrong.message
        no_client_cert = echo(ME, node.replace(tls=tls(pki, client=False)))
        assert not no_client_cert.ok  # storescp -rc requires our certificate
    finally:
        peers.stop_process(proc)
