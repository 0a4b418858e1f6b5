"""TLS contexts for DICOM associations (pynetdicom takes an ``ssl.SSLContext``).

DICOM's secure transport profiles (PS3.15 B.9, BCP 195) ask for TLS 1.2 or later; we refuse
anything older. A file that cannot be loaded raises :class:`~workstation.net.errors.TlsError`
naming the file (missing, not a certificate, a key that is not a key or has a passphrase, a key
that does not belong to the certificate), before any connection is attempted or accepted.

Our listener's context (:func:`listener_context`) wraps accepted sockets *without* the
handshake: pynetdicom wraps each accepted socket in its accept loop, where a caller that
connects and says nothing would hold up every other caller for as long as it likes. The
listener does the handshake on the association's own thread instead, bounded by a timeout
(:func:`server_handshake`).
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from typing import Any

from workstation.net.errors import TlsError
from workstation.net.nodes import ListenerTls, TlsSettings

__all__ = [
    "DeferredHandshakeContext",
    "client_context",
    "listener_context",
    "server_context",
    "server_handshake",
]


def _check_file(path: str, what: str, node: str) -> str:
    p = Path(path).expanduser()
    if not p.is_file():
        raise TlsError(node, f"TLS {what} file {str(p)!r} does not exist")
    return str(p)


def _no_passphrase() -> bytes:
    # Without a callback OpenSSL would prompt on the terminal (a headless listener would hang).
    return b""


def _load_cert_chain(context: ssl.SSLContext, cert_file: str, key_file: str, node: str) -> None:
    """``context.load_cert_chain`` with an error naming the file that is wrong and why."""
    cert = _check_file(cert_file, "certificate", node)
    key = _check_file(key_file, "key", node)
    try:
        context.load_cert_chain(cert, key, password=_no_passphrase)
        return
    except ssl.SSLError as exc:
        first = exc
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        probe.load_verify_locations(cafile=cert)
    except ssl.SSLError:
        raise TlsError(node, f"TLS certificate file {cert!r} holds no PEM certificate "
                       f"({first.reason or first})") from first  # fmt: skip
    if "KEY_VALUES_MISMATCH" in str(first) or first.reason == "KEY_VALUES_MISMATCH":
        raise TlsError(node, f"TLS key file {key!r} does not belong to the certificate in "
                       f"{cert!r} (key values mismatch)") from first  # fmt: skip
    raise TlsError(node, f"TLS key file {key!r} is not a usable PEM private key (a key with "
                   f"a passphrase is not supported): {first.reason or first}") from first  # fmt: skip


def _load_ca(context: ssl.SSLContext, ca_file: str, node: str) -> None:
    ca = _check_file(ca_file, "CA", node)
    try:
        context.load_verify_locations(cafile=ca)
    except ssl.SSLError as exc:
        raise TlsError(node, f"TLS CA file {ca!r} holds no PEM certificate "
                       f"({exc.reason or exc})") from exc  # fmt: skip


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
    if settings.ca_file:
        _load_ca(context, settings.ca_file, node)
    if settings.cert_file:
        _load_cert_chain(context, settings.cert_file, settings.key_file, node)
    if not settings.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.check_hostname = settings.check_hostname
    return context


def _configure_server(
    context: ssl.SSLContext,
    cert_file: str,
    key_file: str,
    ca_file: str,
    require_client_cert: bool,
    who: str,
) -> ssl.SSLContext:
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_cert_chain(context, cert_file, key_file, who)
    if require_client_cert and not ca_file:
        raise TlsError(who, "requiring client certificates needs the CA file that signs them")
    if ca_file:
        _load_ca(context, ca_file, who)
        context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    else:
        context.verify_mode = ssl.CERT_NONE
    return context


def server_context(
    cert_file: str, key_file: str, ca_file: str = "", require_client_cert: bool = False
) -> ssl.SSLContext:
    """An ``SSLContext`` for a listener that handshakes on accept (a test peer).

    Parameters
    ----------
    cert_file, key_file : str
        The server's certificate and key (PEM).
    ca_file : str
        CA certificates to verify client certificates with.
    require_client_cert : bool
        Refuse clients without a certificate signed by ``ca_file``.

    Raises
    ------
    TlsError
        A file missing or unusable (named), or client certificates required without a CA.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    return _configure_server(context, cert_file, key_file, ca_file, require_client_cert,
                             "listener")  # fmt: skip


class DeferredHandshakeContext(ssl.SSLContext):
    """An ``SSLContext`` whose ``wrap_socket`` never handshakes on its own.

    pynetdicom's ``AssociationServer.get_request`` calls ``wrap_socket(sock, server_side=True)``
    in the accept loop; with this context that returns at once and the handshake waits for
    :func:`server_handshake` on the association's thread.
    """

    def wrap_socket(self, sock: socket.socket, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        kwargs["do_handshake_on_connect"] = False
        return super().wrap_socket(sock, *args, **kwargs)


def listener_context(tls: ListenerTls, who: str = "listener") -> DeferredHandshakeContext:
    """The ``SSLContext`` for our storage listener, from the identity's TLS settings.

    Parameters
    ----------
    tls : ListenerTls
        Certificate, key, CA and whether a client certificate is required.
    who : str
        Names the listener in messages.

    Raises
    ------
    TlsError
        A file missing or unusable, naming it (checked at start-up, before listening).
    """
    context = DeferredHandshakeContext(ssl.PROTOCOL_TLS_SERVER)
    _configure_server(context, tls.cert_file, tls.key_file, tls.ca_file,
                      tls.require_client_cert, who)  # fmt: skip
    return context


def server_handshake(sock: socket.socket, timeout: float) -> str | None:
    """Do the server side of a TLS handshake on an accepted, not yet handshaken socket.

    Parameters
    ----------
    sock : socket.socket
        What :class:`DeferredHandshakeContext` wrapped (a plain socket is left alone).
    timeout : float
        Seconds the caller may take; the socket is blocking again afterwards.

    Returns
    -------
    str or None
        None when the handshake succeeded (or there is no TLS); otherwise why it failed, in
        words (a plain DICOM caller, no or an unverified client certificate, a timeout).
    """
    if not isinstance(sock, ssl.SSLSocket):
        return None
    sock.settimeout(timeout)
    try:
        sock.do_handshake()
    except ssl.SSLCertVerificationError as exc:
        return f"the caller's certificate was not accepted: {exc.verify_message or exc}"
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        if reason in ("WRONG_VERSION_NUMBER", "HTTP_REQUEST", "UNKNOWN_PROTOCOL"):
            return f"the caller does not speak TLS ({reason})"
        if reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE":
            return "the caller sent no client certificate, and one is required"
        return f"TLS handshake failed: {reason}"
    except TimeoutError:
        return f"no TLS handshake from the caller within {timeout:g} s"
    except OSError as exc:
        return f"the caller closed the connection during the TLS handshake ({exc})"
    sock.settimeout(None)
    return None
