"""Network subcommands of the command line: ``workstation listen``, and the listener's TLS
options (also used by ``workstation nodes local``, which stores them with our identity)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when the command runs: pynetdicom stays out of the CLI's start-up
    from workstation.app.listener import ReceivedBatch
    from workstation.app.services import Services
    from workstation.net.nodes import ListenerTls

DEFAULT_AE_TITLE = "WORKSTATION"  # the defaults of ListenerSettings
DEFAULT_PORT = 11112
LISTENER_SWITCH_INTERVAL = 0.0002  # seconds (CPython's default: 0.005), see cmd_listen


def register(subparsers: Any) -> None:
    """Add the network subcommands to the ``workstation`` parser's subparsers."""
    p = subparsers.add_parser(
        "listen",
        help="receive images (C-STORE) into the archive until Ctrl-C",
        description="Run the storage listener (Storage SCP and Verification SCP) headless; "
        "received instances go into the archive under --home. By default an instance is "
        "acknowledged once written to the archive's spool (not fsynced) and indexed in batches "
        "in the background: it survives a crash of this process (the next start indexes the "
        "spool), but a power cut may lose the instances acknowledged in the last fraction of a "
        "second. --sync fsyncs the spool file before acknowledging (survives a power cut, "
        "slower). An instance the archive cannot index is acknowledged all the same, then "
        "quarantined and reported in the audit log. Ctrl-C or SIGTERM stops after indexing "
        "everything spooled.",
    )
    p.add_argument("--aet", default=DEFAULT_AE_TITLE, help="our AE title (default %(default)s)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port (default %(default)s)")
    p.add_argument("--bind", default="", help="address to listen on (default: all interfaces)")
    p.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="AE",
        help="accept this calling AE title (repeatable)",
    )
    p.add_argument(
        "--accept-any", action="store_true", help="accept any calling AE title (explicit opt-in)"
    )
    p.add_argument(
        "--sync",
        action="store_true",
        help="fsync each instance before acknowledging it: survives a power cut, not only a "
        "crash of the process (slower)",
    )
    add_listener_tls_options(p)
    p.add_argument("--engine", choices=("fast", "pynetdicom"), default="fast",
                   help="the acceptor: our own (default) or pynetdicom's (the fallback)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print one JSON object per line")
    p.set_defaults(func=cmd_listen)


def add_listener_tls_options(p: argparse.ArgumentParser) -> None:
    """The listener TLS options (``workstation listen`` and ``workstation nodes local``).

    Each is None when not given, so that only what is given changes the stored setting.
    """
    g = p.add_argument_group(
        "listener TLS",
        "accept only TLS connections on our listener (stored with our identity by "
        "'workstation nodes local'; 'workstation listen' starts from the stored setting)",
    )
    g.add_argument("--listener-tls", action=argparse.BooleanOptionalAction, default=None,
                   help="accept only TLS on our listener")  # fmt: skip
    g.add_argument("--listener-cert", metavar="PEM", help="our listener's certificate")
    g.add_argument("--listener-key", metavar="PEM",
                   help="its private key (without a passphrase)")  # fmt: skip
    g.add_argument("--listener-ca", metavar="PEM",
                   help="CA certificate(s) that sign the callers' certificates")  # fmt: skip
    g.add_argument("--require-client-cert", action=argparse.BooleanOptionalAction, default=None,
                   help="refuse callers without a certificate signed by --listener-ca")  # fmt: skip


def listener_tls_from_args(args: argparse.Namespace, current: ListenerTls) -> ListenerTls:
    """``current`` with the listener TLS options given on the command line applied.

    File names are stored absolute (the listener may start from another directory); an empty
    string clears one. The files themselves are checked by :func:`check_listener_tls`.

    Raises
    ------
    ValueError
        An inconsistent setting (TLS on without certificate and key, client certificates
        required without a CA).
    """
    from dataclasses import replace
    from pathlib import Path

    changes: dict[str, Any] = {}
    if args.listener_tls is not None:
        changes["enabled"] = args.listener_tls
    for attr, name in (("listener_cert", "cert_file"), ("listener_key", "key_file"),
                       ("listener_ca", "ca_file")):  # fmt: skip
        value = getattr(args, attr)
        if value is not None:
            changes[name] = str(Path(value).expanduser().resolve()) if value else ""
    if args.require_client_cert is not None:
        changes["require_client_cert"] = args.require_client_cert
    return replace(current, **changes) if changes else current


def check_listener_tls(tls: ListenerTls, who: str = "listener") -> None:
    """Load the certificate, key and CA of an enabled listener TLS setting (raises
    :class:`~workstation.net.errors.TlsError` naming a missing or unusable file)."""
    if tls.enabled:
        from workstation.net.tls import listener_context

        listener_context(tls, who)


def describe_listener_tls(tls: ListenerTls) -> str:
    """One line for the listener TLS setting."""
    if not tls.enabled:
        return "listener TLS off"
    clients = (
        "client certificates required"
        if tls.require_client_cert
        else ("client certificates verified when sent" if tls.ca_file else "no client certificates")
    )
    return f"listener TLS on ({tls.cert_file}; {clients})"


class _Totals:
    """Running totals for the final summary (updated from association threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.associations = 0
        self.rejected_associations = 0
        self.stored = 0
        self.imported = 0
        self.not_understood = 0
        self.write_failed = 0
        self.size = 0
        self.studies: set[str] = set()

    def add(self, batch: ReceivedBatch) -> None:
        with self.lock:
            if batch.outcome == "rejected":
                self.rejected_associations += 1
                return
            self.associations += 1
            self.stored += batch.stored
            self.imported += sum(s.imported for s in batch.studies)
            self.not_understood += batch.rejected
            self.write_failed += batch.write_failed
            self.size += batch.size
            self.studies.update(s.study_instance_uid for s in batch.studies)

    def as_dict(self, seconds: float) -> dict[str, Any]:
        with self.lock:
            return {
                "event": "summary",
                "associations": self.associations,
                "rejected_associations": self.rejected_associations,
                "instances_stored": self.stored,
                "instances_new": self.imported,
                "not_understood": self.not_understood,
                "write_failed": self.write_failed,
                "studies": len(self.studies),
                "bytes": self.size,
                "seconds": round(seconds, 3),
            }


def _batch_dict(batch: ReceivedBatch) -> dict[str, Any]:
    return {
        "event": "batch",
        "calling_ae": batch.calling_ae,
        "peer": batch.peer,
        "outcome": batch.outcome,
        "stored": batch.stored,
        "not_understood": batch.rejected,
        "write_failed": batch.write_failed,
        "bytes": batch.size,
        "seconds": round(batch.seconds, 3),
        "store_seconds": round(batch.store_seconds, 3),
        "reason": batch.reason,
        "studies": [
            {
                "study_instance_uid": s.study_instance_uid,
                "imported": s.imported,
                "duplicate": s.duplicate,
                "conflict": s.conflict,
            }
            for s in batch.studies
        ],
    }


def _batch_line(batch: ReceivedBatch) -> str:
    who = f"{batch.calling_ae}@{batch.peer}"
    if batch.outcome == "rejected":
        return f"rejected association from {who}: {batch.reason}"
    parts = [
        f"received {batch.stored} instance(s) from {who} ({batch.outcome}, "
        f"{batch.size / 1e6:.1f} MB in {batch.seconds:.1f} s)"
    ]
    for s in batch.studies:
        counts = [f"{n} {what}" for n, what in
                  ((s.imported, "new"), (s.duplicate, "duplicate"), (s.conflict, "conflicting"))
                  if n]  # fmt: skip
        parts.append(f"  study {s.study_instance_uid}: {', '.join(counts)}")
    if batch.rejected:
        parts.append(f"  {batch.rejected} not understood (answered 0xC000)")
    if batch.write_failed:
        parts.append(f"  {batch.write_failed} not stored: write failed (answered 0xA700)")
    return "\n".join(parts)


def cmd_listen(args: argparse.Namespace, services: Services) -> int:
    """Run the storage listener in the foreground until Ctrl-C or SIGTERM."""
    from workstation.app.listener import ArchiveReceiver, ListenerSettings
    from workstation.app.node_settings import NodeSettings
    from workstation.net.errors import TlsError

    try:
        tls = listener_tls_from_args(args, NodeSettings(services.home).load().local.tls)
    except ValueError as exc:
        print(f"error: listen: {exc}", file=sys.stderr)
        return 2
    settings = ListenerSettings(
        ae_title=args.aet,
        port=args.port,
        bind_address=args.bind,
        allowed_calling_aes=tuple(args.allow),
        accept_any=args.accept_any,
        ack="synced" if args.sync else "spooled",
        tls=tls,
        engine=args.engine,
    )
    if not settings.accept_any and not settings.allowed_calling_aes:
        print("error: listen: give the peers' AE titles with --allow AE, or --accept-any",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        check_listener_tls(tls, f"listener {settings.ae_title}")
    except TlsError as exc:  # a missing or unusable certificate, key or CA, named
        print(f"error: {exc}", file=sys.stderr)
        return 2
    totals = _Totals()
    out_lock = threading.Lock()

    def emit(obj: dict[str, Any], text: str) -> None:
        with out_lock:
            print(json.dumps(obj) if args.json else text, flush=True)

    def on_batch(batch: ReceivedBatch) -> None:
        totals.add(batch)
        emit(_batch_dict(batch), _batch_line(batch))

    # The ingester thread parses headers while association threads wait on sockets and disk:
    # with CPython's default 5 ms GIL switch interval, an association thread woken by its I/O
    # could wait that long for the GIL, on every C-STORE. This process does nothing else.
    sys.setswitchinterval(LISTENER_SWITCH_INTERVAL)
    archive = services.archive
    receiver = ArchiveReceiver(archive, settings, on_batch=on_batch, ingest=services.ingest)
    try:
        receiver.start()  # binds now: a port in use is reported before we say we listen
    except OSError:
        receiver.stop()
        services.close_ingest()
        archive.close()
        raise
    host, port = receiver.address
    who = "any calling AE" if settings.accept_any else ", ".join(settings.allowed_calling_aes)
    emit(
        {"event": "listening", "ae_title": settings.ae_title, "host": host, "port": port,
         "tls": tls.enabled},
        f"listening as {settings.ae_title} on {host or '*'}:{port}"
        f"{' (TLS)' if tls.enabled else ''}, accepting {who} (Ctrl-C to stop)",
    )  # fmt: skip
    previous = signal.signal(signal.SIGTERM, lambda *_: receiver.request_stop())
    started = time.monotonic()
    try:
        receiver.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        receiver.stop()
        signal.signal(signal.SIGTERM, previous)
        services.close_ingest()
        archive.close()  # a clean close spares the next start a reconciliation walk
    summary = totals.as_dict(time.monotonic() - started)
    emit(
        summary,
        f"stopped: {summary['instances_stored']} instance(s) stored "
        f"({summary['instances_new']} new) in {summary['studies']} study(ies) from "
        f"{summary['associations']} association(s); {summary['rejected_associations']} "
        f"association(s) rejected, {summary['not_understood']} not understood, "
        f"{summary['write_failed']} write failure(s)",
    )
    return 0
