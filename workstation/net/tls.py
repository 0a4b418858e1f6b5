"""TLS contexts for DICOM associations (pynetdicom takes an ``ssl.SSLContext``).

DICOM's secure transport profiles (PS3.15 B.9, BCP 195) ask for TLS 1.2 or later; we refuse
anything older. A file that cannot be loaded raises :class:`~workstation.net.errors.TlsError`
naming the file, before any connection is attempted.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from workstation.net.errors import TlsError
from workstation.net.nodes import TlsSettings


def _check_file(path: str, what: str, node: str) -> str:
    p = Path(path).expanduser()
    if not p.is_file():
        raise TlsError(node, f"TLS {what} file {str(p)!r} does not exist")
    return str(p)


def client_context(settings: TlsSettings, node: str = "TLS") -> ssl.SSLContext:
    """An ``SSLContext`` for connecting to a node.

    Parameters
    ----------
    settings : TlsSettings
        The node's TLS settings (CA, client certificate, verification).
    node : str
        The node's label, for messages.

    Raises
    ------
    TlsError
        When a file is missing or is not a usable certificate or key.
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        if settings.ca_file:
            context.load_verify_locations(cafile=_check_file(settings.ca_file, "CA", node))
        if settings.cert_file:
            context.load_cert_chain(
                _check_file(settings.cert_file, "certificate", node),
                _check_file(settings.key_file, "key", node),
            )
    except ssl.SSLError as exc:
        raise TlsError(node, f"cannot load the TLS certificate or key: {exc}") from exc
    if not settings.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.check_hostname = settings.check_hostname
    return context


def server_context(
    cert_file: str, key_file: str, ca_file: str = "", require_client_cert: bool = False
) -> ssl.SSLContext:
    """An ``SSLContext`` for a listener (our storage listener, or a test peer).

    Parameters
    ----------
    cert_file, key_file : str
        The server's certificate and key (PEM).
    ca_file : str
        CA certificates to verify client certificates with.
    require_client_cert : bool
        Refuse clients without a certificate signed by ``ca_file``.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(
            _check_file(cert_file, "certificate", "listener"),
            _check_file(key_file, "key", "listener"),
        )
        if ca_file:
            context.load_verify_locations(cafile=_check_file(ca_file, "CA", "listener"))
    except ssl.SSLError as exc:
        raise TlsError("listener", f"cannot load the TLS certificate or key: {exc}") from exc
    context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    if not ca_file:
        context.verify_mode = ssl.CERT_NONE
    return context
