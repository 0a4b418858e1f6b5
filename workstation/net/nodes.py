"""Remote nodes and our own identity: frozen, validated values with a plain-dict form.

Where they are stored (a settings file under ``--home``) is the application's business
(:mod:`workstation.app.node_settings`); here they are only values, so the GUI and the command
line edit the same thing and a bad value is refused with a message saying which field is wrong.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

RETRIEVE_METHODS = ("C-MOVE", "C-GET")
QUERY_MODELS = ("auto", "study", "patient")
DEFAULT_MAX_PDU = 1_048_576


def validate_ae_title(title: str, what: str = "AE title") -> str:
    """Return ``title`` stripped, or raise ``ValueError`` (1-16 printable ASCII, no backslash)."""
    value = str(title).strip()
    if (
        not value
        or len(value) > 16
        or "\\" in value
        or not value.isascii()
        or not value.isprintable()
    ):
        raise ValueError(
            f"{what} {title!r} is not a valid AE title (1-16 printable ASCII characters)"
        )
    return value


def _port(value: Any, what: str) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} {value!r} is not a number") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"{what} {port} is out of range 1-65535")
    return port


def _seconds(value: Any, what: str) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} {value!r} is not a number of seconds") from None
    if not 0 < seconds <= 86400:
        raise ValueError(f"{what} must be more than 0 and at most 86400 seconds, not {seconds}")
    return seconds


def _refuse_unknown(cls: type, data: Mapping[str, Any], what: str) -> None:
    """Raise ValueError naming the keys of ``data`` that are not fields of dataclass ``cls``
    (a typo in the settings file is an error, not silently ignored)."""
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ValueError(f"{what} {', '.join(unknown)}")


@dataclass(frozen=True)
class TlsSettings:
    """TLS for the associations with one node.

    Attributes
    ----------
    enabled : bool
        Speak TLS to this node.
    ca_file : str
        PEM file of the CA certificate(s) that sign the node's certificate; empty: the system's.
    cert_file, key_file : str
        Our client certificate and its key (PEM), for nodes that ask for one; both or neither.
    verify : bool
        Verify the node's certificate (turn off only for a test node).
    check_hostname : bool
        Also check that the certificate names the node's host.
    """

    enabled: bool = False
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    verify: bool = True
    check_hostname: bool = True

    def __post_init__(self) -> None:
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("TLS: give both a client certificate and its key, or neither")


@dataclass(frozen=True)
class RemoteNode:
    """A remote DICOM node (PACS, modality, archive).

    Attributes
    ----------
    name : str
        What the user calls it (unique in the node list).
    ae_title, host, port : str, str, int
        Its called AE title and address.
    retrieve_method : str
        ``"C-MOVE"`` (the node connects back to our listener) or ``"C-GET"`` (no inbound
        connection needed).
    query_model : str
        ``"auto"`` (Study Root, Patient Root when the node only has that), ``"study"`` or
        ``"patient"``.
    tls : TlsSettings
    connect_timeout : float
        Seconds to wait for the TCP (and TLS) connection.
    acse_timeout : float
        Seconds to wait for the answer to an association request or release.
    dimse_timeout : float
        Seconds to wait for each response (each C-FIND match, each C-MOVE pending status).
    network_timeout : float
        Seconds of network silence after which the association is aborted.
    max_pdu : int
        Largest PDU we accept from it (0: unlimited).
    store_calling_aes : tuple of str
        Calling AE titles the node uses when it sends C-MOVE results to our listener; empty
        means its own AE title (what PACS usually do).
    description : str
        Free text.
    """

    name: str
    ae_title: str
    host: str
    port: int
    retrieve_method: str = "C-MOVE"
    query_model: str = "auto"
    tls: TlsSettings = field(default_factory=TlsSettings)
    connect_timeout: float = 5.0
    acse_timeout: float = 10.0
    dimse_timeout: float = 60.0
    network_timeout: float = 60.0
    max_pdu: int = DEFAULT_MAX_PDU
    store_calling_aes: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        name = str(self.name).strip()
        if not name or not name.isprintable() or len(name) > 64:
            raise ValueError(f"node name {self.name!r} must be 1-64 printable characters")
        set_ = object.__setattr__
        set_(self, "name", name)
        set_(self, "ae_title", validate_ae_title(self.ae_title, f"node {name}: AE title"))
        host = str(self.host).strip()
        if not host or any(c.isspace() for c in host):
            raise ValueError(f"node {name}: host {self.host!r} is not a host name or address")
        set_(self, "host", host)
        set_(self, "port", _port(self.port, f"node {name}: port"))
        method = str(self.retrieve_method).upper().replace("_", "-")
        if method in ("MOVE", "GET"):
            method = "C-" + method
        if method not in RETRIEVE_METHODS:
            raise ValueError(f"node {name}: retrieve method {self.retrieve_method!r} is not "
                             f"one of {', '.join(RETRIEVE_METHODS)}")  # fmt: skip
        set_(self, "retrieve_method", method)
        model = str(self.query_model).lower()
        if model not in QUERY_MODELS:
            raise ValueError(f"node {name}: query model {self.query_model!r} is not one of "
                             f"{', '.join(QUERY_MODELS)}")  # fmt: skip
        set_(self, "query_model", model)
        for what in ("connect_timeout", "acse_timeout", "dimse_timeout", "network_timeout"):
            set_(self, what, _seconds(getattr(self, what), f"node {name}: {what}"))
        if int(self.max_pdu) < 0:
            raise ValueError(f"node {name}: max_pdu must be 0 (unlimited) or positive")
        set_(self, "max_pdu", int(self.max_pdu))
        set_(self, "store_calling_aes", tuple(
            validate_ae_title(t, f"node {name}: store calling AE") for t in self.store_calling_aes
        ))  # fmt: skip

    @property
    def label(self) -> str:
        """``name (AE@host:port)``, for messages."""
        return f"{self.name} ({self.ae_title}@{self.host}:{self.port}{', TLS' if self.tls.enabled else ''})"

    @property
    def sends_as(self) -> tuple[str, ...]:
        """Calling AE titles to accept from this node on our listener."""
        return self.store_calling_aes or (self.ae_title,)

    def replace(self, **changes: Any) -> RemoteNode:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (what the settings file holds)."""
        out = dataclasses.asdict(self)
        out["store_calling_aes"] = list(self.store_calling_aes)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RemoteNode:
        """Build from the settings file's form; unknown keys are refused (a typo is an error)."""
        _refuse_unknown(cls, data, f"node {data.get('name', '?')!r}: unknown setting(s)")
        values = dict(data)
        tls = values.pop("tls", None) or {}
        if isinstance(tls, Mapping):
            _refuse_unknown(
                TlsSettings, tls, f"node {data.get('name', '?')!r}: unknown TLS setting(s)"
            )
            tls = TlsSettings(**tls)
        values["store_calling_aes"] = tuple(values.get("store_calling_aes", ()))
        missing = [k for k in ("name", "ae_title", "host", "port") if k not in values]
        if missing:
            raise ValueError(f"node {data.get('name', '?')!r}: missing {', '.join(missing)}")
        return cls(tls=tls, **values)


@dataclass(frozen=True)
class ListenerTls:
    """TLS on our own storage listener (where C-MOVE results and C-STOREs arrive).

    Attributes
    ----------
    enabled : bool
        Accept only TLS connections on the listener.
    cert_file, key_file : str
        Our server certificate and its private key (PEM, key without a passphrase); required
        when enabled.
    ca_file : str
        PEM file of the CA certificate(s) that sign the callers' certificates; empty: callers'
        certificates are not asked for.
    require_client_cert : bool
        Refuse a caller without a certificate signed by ``ca_file`` (needs ``ca_file``).
    """

    enabled: bool = False
    cert_file: str = ""
    key_file: str = ""
    ca_file: str = ""
    require_client_cert: bool = False

    def __post_init__(self) -> None:
        if self.enabled and not (self.cert_file and self.key_file):
            raise ValueError(
                "listener TLS: give our certificate and its private key (both are needed to "
                "accept TLS)"
            )
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("listener TLS: give both our certificate and its key, or neither")
        if self.require_client_cert and not self.ca_file:
            raise ValueError(
                "listener TLS: requiring client certificates needs the CA file that signs them"
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ListenerTls:
        """Build from the settings file's form; unknown keys are refused."""
        _refuse_unknown(cls, data, "listener TLS: unknown setting(s)")
        return cls(**data)


@dataclass(frozen=True)
class LocalIdentity:
    """Who we are on the network.

    Attributes
    ----------
    ae_title : str
        Our calling AE title, and the C-MOVE destination the nodes know us by.
    port : int
        Our listener's port (the nodes send C-MOVE results there).
    bind_address : str
        Interface the listener binds ("" = all).
    tls : ListenerTls
        TLS on the listener (off by default).
    """

    ae_title: str = "WORKSTATION"
    port: int = 11112
    bind_address: str = ""
    tls: ListenerTls = field(default_factory=ListenerTls)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ae_title", validate_ae_title(self.ae_title, "our AE title"))
        object.__setattr__(self, "port", _port(self.port, "our listener port"))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LocalIdentity:
        _refuse_unknown(cls, data, "local identity: unknown setting(s)")
        values = dict(data)
        tls = values.pop("tls", None) or {}
        if isinstance(tls, Mapping):
            tls = ListenerTls.from_dict(tls)
        return cls(tls=tls, **values)
