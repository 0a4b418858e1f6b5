"""TLS on our own storage listener, with certificates made in the test (``openssl``).

A pynetdicom requestor (ours) and DCMTK ``storescu +tls`` store into the TLS listener and the
files land in the archive byte for byte; a caller without a certificate, or with one that our
CA did not sign, is refused when client certificates are required; a plain caller fails with a
message that points at TLS; start-up names the certificate, key or CA file that is missing or
wrong; the setting is stored with our identity by ``workstation nodes local`` and used by
``workstation listen``.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from workstation.app.listener import ArchiveReceiver, ListenerSettings, ReceivedBatch
from workstation.app.node_settings import NodeBook, NodeSettings
from workstation.archive.archive import Archive
from workstation.net import storage_scp
from workstation.net.echo import echo
from workstation.net.errors import PeerAborted, TlsError
from workstation.net.nodes import ListenerTls, LocalIdentity, RemoteNode, TlsSettings
from workstation.net.store_scu import store

peers = pytest.importorskip("peers")
synthetic = pytest.importorskip("core.synthetic")

pytestmark = pytest.mark.skipif(not peers.have("openssl"), reason="openssl command absent")

SCU = LocalIdentity("SCU")
TIMEOUT = 30.0


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> peers.Pki:
    return peers.make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def stranger(pki: peers.Pki) -> tuple[Path, Path]:
    """A self-signed client certificate and key: not signed by the listener's CA."""
    folder = pki.ca.parent
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=stranger", "-keyout", "stranger.key", "-out", "stranger.pem"],
                   cwd=folder, check=True, capture_output=True, timeout=60)  # fmt: skip
    return folder / "stranger.pem", folder / "stranger.key"


def listener_tls(pki: peers.Pki, require: bool = True) -> ListenerTls:
    return ListenerTls(True, str(pki.server_cert), str(pki.server_key), str(pki.ca), require)


def client_tls(pki: peers.Pki, cert: Path | None = None, key: Path | None = None) -> TlsSettings:
    return TlsSettings(True, str(pki.ca), str(cert or ""), str(key or ""))


def ct_file(folder: Path, name: str = "ct.dcm") -> Path:
    rng = np.random.default_rng(7)
    ds = synthetic.image_dataset(rng.integers(0, 4000, (64, 64), dtype=np.uint16),
                                 StudyInstanceUID=generate_uid(),
                                 SeriesInstanceUID=generate_uid(), PatientID="TLS1")  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    return Path(synthetic.save(ds, folder / name))


def dataset_bytes(part10: bytes) -> bytes:
    assert part10[128:132] == b"DICM"
    group_length = int.from_bytes(part10[140:144], "little")
    return part10[144 + group_length :]


class Receiving:
    """A TLS ArchiveReceiver on a free port of 127.0.0.1 and what it reports."""

    def __init__(self, archive: Archive, tls: ListenerTls) -> None:
        self.archive = archive
        self.batches: queue.Queue[ReceivedBatch] = queue.Queue()
        settings = ListenerSettings("LISTENER", 0, "127.0.0.1", ("SCU", "STORESCU"), tls=tls,
                                    ack="indexed")  # fmt: skip
        self.receiver = ArchiveReceiver(archive, settings, on_batch=self.batches.put)

    def node(self, tls: TlsSettings) -> RemoteNode:
        return RemoteNode("ours", "LISTENER", "127.0.0.1", self.receiver.address[1], tls=tls)

    def uids(self) -> list[str]:
        return [r["SOPInstanceUID"] for r in self.archive.find("IMAGE", {"SOPInstanceUID": ""})]


@pytest.fixture
def receiving(tmp_path: Path, pki: peers.Pki) -> Iterator[Receiving]:
    with Archive(tmp_path / "archive") as archive:
        ours = Receiving(archive, listener_tls(pki))
        ours.receiver.start()
        try:
            yield ours
        finally:
            ours.receiver.stop()


def test_pynetdicom_requestor_stores_over_tls_into_the_archive(
    receiving: Receiving, pki: peers.Pki, tmp_path: Path
) -> None:
    node = receiving.node(client_tls(pki, pki.client_cert, pki.client_key))
    assert echo(SCU, node).ok
    path = ct_file(tmp_path / "send")
    [outcome] = store(SCU, node, [path])
    assert outcome.ok, outcome.message
    batch = receiving.batches.get(timeout=TIMEOUT)
    assert (batch.calling_ae, batch.outcome, batch.stored) == ("SCU", "released", 1)
    sop = pydicom.dcmread(path).SOPInstanceUID
    [row] = receiving.archive.find("IMAGE", {"SOPInstanceUID": sop})
    stored = receiving.archive.path_of(row["rel_path"]).read_bytes()
    assert dataset_bytes(stored) == dataset_bytes(path.read_bytes())


@pytest.mark.skipif(not peers.have("storescu"), reason="DCMTK storescu absent")
def test_dcmtk_storescu_over_tls_and_without_it(
    receiving: Receiving, pki: peers.Pki, stranger: tuple[Path, Path], tmp_path: Path
) -> None:
    port = str(receiving.receiver.address[1])
    files = [ct_file(tmp_path / "send", f"{k}.dcm") for k in range(3)]
    common = ["-aet", "STORESCU", "-aec", "LISTENER", "127.0.0.1", port]
    sent = subprocess.run(["storescu", "+tls", str(pki.client_key), str(pki.client_cert),
                           "+cf", str(pki.ca), *common, *map(str, files)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert sent.returncode == 0, sent.stdout + sent.stderr
    batch = receiving.batches.get(timeout=TIMEOUT)
    assert (batch.calling_ae, batch.stored) == ("STORESCU", 3)
    assert sorted(receiving.uids()) == sorted(pydicom.dcmread(f).SOPInstanceUID for f in files)

    late = ct_file(tmp_path / "late")
    plain = subprocess.run(["storescu", *common, str(late)], capture_output=True, text=True,
                           timeout=60)  # fmt: skip
    assert plain.returncode != 0
    cert, key = stranger
    unknown = subprocess.run(["storescu", "+tls", str(key), str(cert), "+cf", str(pki.ca),
                              *common, str(late)], capture_output=True, text=True,
                             timeout=60)  # fmt: skip
    assert unknown.returncode != 0
    assert pydicom.dcmread(late).SOPInstanceUID not in receiving.uids()


def test_callers_without_a_valid_certificate_are_refused(
    receiving: Receiving, pki: peers.Pki, stranger: tuple[Path, Path], tmp_path: Path
) -> None:
    path = ct_file(tmp_path / "send")
    no_cert = echo(SCU, receiving.node(client_tls(pki)))
    assert no_cert.outcome == "tls", no_cert.message
    assert "requires a client certificate" in no_cert.message
    with pytest.raises(TlsError, match="requires a client certificate"):
        store(SCU, receiving.node(client_tls(pki)), [path])

    cert, key = stranger
    unsigned = echo(SCU, receiving.node(client_tls(pki, cert, key)))
    assert unsigned.outcome == "tls", unsigned.message
    assert "CA" in unsigned.message or "did not accept" in unsigned.message
    assert receiving.uids() == []


def test_plain_caller_fails_clearly(receiving: Receiving, tmp_path: Path) -> None:
    plain = echo(SCU, receiving.node(TlsSettings()))
    assert plain.outcome == "aborted"
    assert "TLS-only port?" in plain.message
    with pytest.raises(PeerAborted, match="TLS-only port"):
        store(SCU, receiving.node(TlsSettings()), [ct_file(tmp_path / "send")])
    assert receiving.uids() == []


def test_the_pynetdicom_engine_reports_why_a_tls_caller_was_refused(
    pki: peers.Pki, tmp_path: Path
) -> None:
    if "pynetdicom" not in getattr(storage_scp, "ENGINES", ("pynetdicom",)):
        pytest.skip("no pynetdicom engine")
    options = {"engine": "pynetdicom"} if hasattr(storage_scp, "ENGINES") else {}
    from workstation.net.tls import listener_context

    reports: queue.Queue[object] = queue.Queue()
    listener = storage_scp.StorageListener(
        "LISTENER", 0, lambda data, calling, peer: 0, bind_address="127.0.0.1",
        allowed_calling_aes=("SCU",), ssl_context=listener_context(listener_tls(pki)), **options,
    )  # fmt: skip
    listener.add_observer(reports.put)
    with listener:
        node = RemoteNode("ours", "LISTENER", "127.0.0.1", listener.address[1])
        assert echo(SCU, node).outcome == "aborted"
        plain = reports.get(timeout=TIMEOUT)
        assert echo(SCU, node.replace(tls=client_tls(pki))).outcome == "tls"
        no_cert = reports.get(timeout=TIMEOUT)
        assert echo(SCU, node.replace(tls=client_tls(pki, pki.client_cert, pki.client_key))).ok
    assert plain.outcome == "rejected" and "does not speak TLS" in plain.reason
    assert no_cert.outcome == "rejected" and "no client certificate" in no_cert.reason


def test_start_up_names_the_file_that_is_missing_or_wrong(pki: peers.Pki, tmp_path: Path) -> None:
    good = listener_tls(pki)
    missing = tmp_path / "nowhere.pem"
    cases = [
        (good.__class__(True, str(missing), good.key_file, good.ca_file, True),
         f"certificate file {str(missing)!r} does not exist"),
        (good.__class__(True, good.cert_file, str(pki.client_key), good.ca_file, True),
         f"key file {str(pki.client_key)!r} does not belong to the certificate"),
        (good.__class__(True, good.key_file, good.key_file, good.ca_file, True),
         f"certificate file {good.key_file!r} holds no PEM certificate"),
        (good.__class__(True, good.cert_file, good.cert_file, good.ca_file, True),
         f"key file {good.cert_file!r} is not a usable PEM private key"),
        (good.__class__(True, good.cert_file, good.key_file, str(missing), True),
         f"CA file {str(missing)!r} does not exist"),
    ]  # fmt: skip
    with Archive(tmp_path / "archive") as archive:
        for tls, words in cases:
            settings = ListenerSettings("LISTENER", 0, "127.0.0.1", ("SCU",), tls=tls)
            with pytest.raises(TlsError) as info:
                ArchiveReceiver(archive, settings)
            assert words in str(info.value) and "listener LISTENER" in str(info.value)
    with pytest.raises(ValueError, match="certificate and its private key"):
        ListenerTls(True)
    with pytest.raises(ValueError, match="needs the CA file"):
        ListenerTls(True, good.cert_file, good.key_file, "", True)


def test_identity_keeps_the_listener_tls_setting(tmp_path: Path, pki: peers.Pki) -> None:
    local = LocalIdentity("READER", 11113, tls=listener_tls(pki, require=False))
    settings = NodeSettings(tmp_path)
    settings.save(NodeBook(local))
    assert settings.load().local == local
    saved = json.loads(settings.path.read_text())["local"]["tls"]
    assert saved == {"enabled": True, "cert_file": str(pki.server_cert),
                     "key_file": str(pki.server_key), "ca_file": str(pki.ca),
                     "require_client_cert": False}  # fmt: skip
    with pytest.raises(ValueError, match="unknown setting"):
        LocalIdentity.from_dict({"tls": {"enabled": False, "certfile": "x"}})
    assert LocalIdentity.from_dict({"ae_title": "OLD", "port": 104}).tls == ListenerTls()


def ws(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workstation", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_command_line_sets_the_listener_tls_and_listen_uses_it(
    tmp_path: Path, pki: peers.Pki
) -> None:
    home = tmp_path / "home"
    missing = tmp_path / "missing.key"
    bad = ws(home, "nodes", "local", "--listener-tls", "--listener-cert", str(pki.server_cert),
             "--listener-key", str(missing))  # fmt: skip
    assert bad.returncode == 2 and str(missing) in bad.stderr, bad.stderr
    assert not (home / "settings" / "nodes.json").exists()  # nothing saved
    half = ws(home, "nodes", "local", "--listener-tls")
    assert half.returncode == 2 and "certificate and its private key" in half.stderr

    port = peers.free_port()
    done = ws(home, "nodes", "local", "--aet", "READER", "--port", str(port), "--listener-tls",
              "--listener-cert", str(pki.server_cert), "--listener-key", str(pki.server_key),
              "--listener-ca", str(pki.ca), "--require-client-cert")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "listener TLS on" in done.stdout and "client certificates required" in done.stdout
    tls = json.loads(ws(home, "nodes", "list", "--json").stdout)["local"]["tls"]
    assert tls["enabled"] and tls["require_client_cert"] and tls["ca_file"] == str(pki.ca)

    listen = subprocess.Popen([sys.executable, "-m", "workstation", "--home", str(home), "listen",
                               "--aet", "READER", "--port", str(port), "--allow", "SCU", "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert listen.stdout is not None
        started = json.loads(listen.stdout.readline())
        assert started["event"] == "listening" and started["tls"] is True
        node = RemoteNode("reader", "READER", "127.0.0.1", port)
        assert echo(SCU, node.replace(tls=client_tls(pki, pki.client_cert, pki.client_key))).ok
        assert echo(SCU, node).outcome == "aborted"
    finally:
        listen.terminate()
        listen.wait(TIMEOUT)
    plain = ws(home, "listen", "--port", str(peers.free_port()), "--allow", "SCU",
               "--listener-key", str(missing))  # fmt: skip
    assert plain.returncode == 2 and str(missing) in plain.stderr
