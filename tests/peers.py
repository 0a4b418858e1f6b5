"""Real DICOM peers for tests: Orthanc and DCMTK ``dcmqrscp`` on loopback, free ports, and
certificates made with ``openssl`` for TLS tests.

DCMTK and Orthanc run with ``TCP_NODELAY=1`` (see DESIGN.md: they leave Nagle on otherwise).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

TIMEOUT = 60.0
NODELAY = {**os.environ, "TCP_NODELAY": "1"}


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(
    port: int, proc: subprocess.Popen | None = None, timeout: float = TIMEOUT, what: str = ""
) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what or proc.args[0]} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
            return
        except OSError:
            threading.Event().wait(0.05)  # not yet listening: retry until the deadline
    raise AssertionError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


def stop_process(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(TIMEOUT)


@dataclass(frozen=True)
class OrthancPeer:
    http: int
    dicom: int
    aet: str = "ORTHANC"

    def upload(self, paths: Iterable[Path]) -> int:
        """POST files through the REST API; returns how many Orthanc took."""
        n = 0
        for path in paths:
            request = urllib.request.Request(
                f"http://127.0.0.1:{self.http}/instances", data=path.read_bytes(), method="POST"
            )
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                assert json.load(response)["Status"] in ("Success", "AlreadyStored"), path
            n += 1
        return n


@contextmanager
def orthanc_peer(
    tmp: Path, modalities: dict[str, list], aet: str = "ORTHANC", **extra: object
) -> Iterator[OrthancPeer]:
    """Orthanc on loopback with its own storage and no plugins."""
    http, dicom = free_port(), free_port()
    config = {
        "Name": "interop",
        "StorageDirectory": str(tmp / "orthanc-db"),
        "IndexDirectory": str(tmp / "orthanc-db"),
        "Plugins": [],
        "HttpPort": http,
        "DicomPort": dicom,
        "DicomAet": aet,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomModalities": modalities,
        "DicomAlwaysAllowMove": True,
        "DicomAlwaysAllowGet": True,
        "DicomCheckCalledAet": False,
        "StorageCompression": False,
        "SaveJobs": False,
        **extra,
    }
    (tmp / "orthanc.json").write_text(json.dumps(config))
    log = open(tmp / "orthanc.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(["Orthanc", str(tmp / "orthanc.json")], env=NODELAY, stdout=log,
                            stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_for_port(http, proc, what="Orthanc")
        wait_for_port(dicom, proc, what="Orthanc")
        yield OrthancPeer(http, dicom, aet)
    finally:
        stop_process(proc)
        log.close()


@contextmanager
def orthanc(tmp: Path, modalities: dict[str, list]) -> Iterator[tuple[int, int]]:
    """Orthanc on loopback; yields (http, dicom) ports."""
    with orthanc_peer(tmp, modalities) as peer:
        yield peer.http, peer.dicom


@dataclass
class DcmqrscpPeer:
    port: int
    aet: str
    proc: subprocess.Popen
    storage: Path

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(TIMEOUT)


def dcmqrscp_config(
    port: int, aet: str, storage: Path, destinations: dict[str, tuple[str, int]]
) -> str:
    hosts = "\n".join(f"{name.lower()} = ({ae}, {host}, {p})"
                      for name, (host, p) in destinations.items()
                      for ae in [name])  # fmt: skip
    return (
        f"NetworkTCPPort = {port}\nMaxPDUSize = 131072\nMaxAssociations = 16\n\n"
        f"HostTable BEGIN\n{hosts}\nHostTable END\n\nVendorTable BEGIN\nVendorTable END\n\n"
        f"AETable BEGIN\n{aet} {storage} RW (1000, 2048mb) ANY\nAETable END\n"
    )


@contextmanager
def dcmqrscp_peer(
    tmp: Path,
    files: Iterable[Path],
    destinations: dict[str, tuple[str, int]],
    *options: str,
    aet: str = "DCMQRSCP",
) -> Iterator[DcmqrscpPeer]:
    """DCMTK ``dcmqrscp`` holding copies of ``files`` (indexed with ``dcmqridx``).

    ``destinations`` maps move destination AE titles to (host, port).
    """
    storage = tmp / "dcmqrscp-db"
    storage.mkdir(parents=True)
    copies = []
    for k, path in enumerate(files):
        copy = storage / f"{k:05d}.dcm"
        shutil.copyfile(path, copy)
        copies.append(str(copy))
    if copies:
        subprocess.run(["dcmqridx", str(storage), *copies], check=True, timeout=TIMEOUT,
                       capture_output=True)  # fmt: skip
    port = free_port()
    config = tmp / "dcmqrscp.cfg"
    config.write_text(dcmqrscp_config(port, aet, storage, destinations))
    log = open(tmp / "dcmqrscp.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(["dcmqrscp", "-c", str(config), *options], env=NODELAY, stdout=log,
                            stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_for_port(port, proc, what="dcmqrscp")
        yield DcmqrscpPeer(port, aet, proc, storage)
    finally:
        if proc.poll() is None:
            stop_process(proc)
        log.close()


# --- certificates ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA that signed nothing here: verifying against it must fail


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=TIMEOUT)


def make_pki(folder: Path) -> Pki:
    """A test CA, a server certificate for 127.0.0.1/localhost, a client certificate, and an
    unrelated CA, all made with the ``openssl`` command line."""
    folder.mkdir(parents=True, exist_ok=True)
    for ca in ("ca", "other_ca"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                 "-subj", f"/CN=workstation test {ca}", "-keyout", f"{ca}.key",
                 "-out", f"{ca}.pem", cwd=folder)  # fmt: skip
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for who in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={who}",
                 "-keyout", f"{who}.key", "-out", f"{who}.csr", cwd=folder)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-extfile", "san.ext",
                 "-out", f"{who}.pem", cwd=folder)  # fmt: skip
    return Pki(folder / "ca.pem", folder / "server.pem", folder / "server.key",
               folder / "client.pem", folder / "client.key", folder / "other_ca.pem")  # fmt: skip
