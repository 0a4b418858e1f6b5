"""Query/retrieve subcommands: ``nodes``, ``echo``, ``find`` and ``retrieve``.

``workstation nodes add|edit|remove|list|echo|local`` manages the remote nodes and our own
identity (``HOME/settings/nodes.json``); ``workstation find NODE`` queries a node and prints a
table as the matches arrive (``--json``: one JSON document at the end; ``--stream``: one JSON
line per match); ``workstation retrieve NODE --study UID`` fetches a study or series into the
archive with a progress bar on stderr, fetching only what the archive lacks.

Exit status: 0 success; 1 retrieve partial or cancelled, or echo failed; 2 error (node
unreachable, rejected, bad arguments).
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from workstation.app.cli_network import (
    LISTENER_SWITCH_INTERVAL,
    add_listener_tls_options,
    check_listener_tls,
    describe_listener_tls,
    listener_tls_from_args,
)

if TYPE_CHECKING:  # pynetdicom is imported when a command runs, not at CLI start-up
    from workstation.app.node_settings import NodeBook, NodeSettings
    from workstation.app.services import Services
    from workstation.net.retrieve import RetrieveProgress

_FIND_KEYS = [
    ("--name", "PatientName", "patient name; wildcards * and ?, e.g. 'DOE^J*'"),
    ("--patient-id", "PatientID", "patient ID; wildcards * ?"),
    ("--birth-date", "PatientBirthDate", "birth date YYYYMMDD or range A-B, A-, -B"),
    ("--accession", "AccessionNumber", "accession number; wildcards * ?"),
    ("--date", "StudyDate", "study date YYYYMMDD or range A-B, A-, -B"),
    ("--modality", "Modality", "modality (study level: any series of it)"),
    ("--description", "StudyDescription", "study description; wildcards * ?"),
    ("--referring", "ReferringPhysicianName", "referring physician; wildcards * ?"),
    ("--study", "StudyInstanceUID", "study instance UID (required for series and image level)"),
    ("--series", "SeriesInstanceUID", "series instance UID (required for image level)"),
]
_COLUMNS = {
    "PATIENT": [("PatientID", 16), ("PatientName", 30), ("PatientBirthDate", 10),
                ("PatientSex", 3), ("NumberOfPatientRelatedStudies", 7)],
    "STUDY": [("StudyDate", 8), ("PatientName", 24), ("PatientID", 14), ("ModalitiesInStudy", 8),
              ("AccessionNumber", 12), ("StudyDescription", 24),
              ("NumberOfStudyRelatedInstances", 9), ("StudyInstanceUID", 0)],
    "SERIES": [("Modality", 8), ("SeriesNumber", 6), ("SeriesDescription", 28),
               ("NumberOfSeriesRelatedInstances", 9), ("SeriesInstanceUID", 0)],
    "IMAGE": [("InstanceNumber", 6), ("NumberOfFrames", 6), ("SOPClassUID", 28),
              ("SOPInstanceUID", 0)],
}  # fmt: skip
_HEADINGS = {
    "NumberOfPatientRelatedStudies": "studies", "NumberOfStudyRelatedInstances": "images",
    "NumberOfSeriesRelatedInstances": "images", "ModalitiesInStudy": "modality",
    "PatientBirthDate": "birth", "PatientSex": "sex", "SeriesNumber": "number",
    "InstanceNumber": "number", "NumberOfFrames": "frames", "AccessionNumber": "accession",
}  # fmt: skip


def _command(func: Any) -> Any:
    """Network errors become one line on stderr and exit status 2; pynetdicom's own error log
    lines (which repeat ours without the advice) are hidden unless ``--verbose``."""

    @functools.wraps(func)
    def run(args: argparse.Namespace, services: Services) -> int:
        from workstation.net.errors import NetError

        if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
            logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)
        try:
            return func(args, services)
        except NetError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except KeyError as exc:
            print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
            return 2

    return run


def register(subparsers: Any) -> None:
    """Add ``nodes``, ``echo``, ``find`` and ``retrieve`` to the ``workstation`` parser."""
    nodes = subparsers.add_parser(
        "nodes",
        help="remote DICOM nodes (PACS) and our own AE title: add, edit, remove, list, echo",
        description="Remote nodes and our identity live in HOME/settings/nodes.json (plain "
        "JSON, editable by hand).",
    )
    nsub = nodes.add_subparsers(dest="nodes_command", required=True)

    p = nsub.add_parser("list", help="list the nodes and our identity")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_nodes_list)

    for name, helptext in (("add", "add a node"), ("edit", "change a node's settings")):
        p = nsub.add_parser(name, help=helptext)
        p.add_argument("name", help="the node's name (how you refer to it here)")
        required = name == "add"
        p.add_argument("--aet", required=required, help="the node's AE title")
        p.add_argument("--host", required=required, help="host name or IP address")
        p.add_argument("--port", type=int, required=required, help="DICOM port")
        _node_options(p)
        p.set_defaults(func=cmd_nodes_add if name == "add" else cmd_nodes_edit)

    p = nsub.add_parser("remove", help="remove a node")
    p.add_argument("name")
    p.set_defaults(func=cmd_nodes_remove)

    p = nsub.add_parser(
        "echo", help="C-ECHO a node (or all): reachable, refused and why, or timed out"
    )
    p.add_argument("name", nargs="?", help="the node (default: every node)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_echo)

    p = nsub.add_parser("local", help="show or set our AE title and listener port")
    p.add_argument("--aet", help="our AE title (the C-MOVE destination the nodes know)")
    p.add_argument("--port", type=int, help="our listener port (where C-MOVE results arrive)")
    p.add_argument("--bind", help="address our listener binds ('' = all)")
    add_listener_tls_options(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_nodes_local)

    p = subparsers.add_parser("echo", help="C-ECHO a remote node (same as 'nodes echo')")
    p.add_argument("name", nargs="?", help="the node (default: every node)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_echo)

    p = subparsers.add_parser(
        "find",
        help="query a remote node (C-FIND) for studies, series or images",
        description="Matches are printed as they arrive. Wildcards * and ? work in names and "
        "text; dates take YYYYMMDD or ranges A-B, A-, -B. Ctrl-C sends C-CANCEL.",
    )
    p.add_argument("node", help="the node's name (see 'workstation nodes list')")
    p.add_argument("--level", default="study", choices=["patient", "study", "series", "image"],
                   help="query level (default %(default)s)")  # fmt: skip
    for flag, keyword, helptext in _FIND_KEYS:
        p.add_argument(flag, dest=keyword, metavar="VALUE", help=helptext)
    p.add_argument("-k", "--key", action="append", default=[], metavar="KEYWORD=VALUE",
                   help="any other key by DICOM keyword (repeatable; empty value: return it)")  # fmt: skip
    p.add_argument("--limit", type=int, help="stop after N matches (sends C-CANCEL)")
    p.add_argument("--json", action="store_true", help="print the matches as one JSON document")
    p.add_argument("--stream", action="store_true", help="print one JSON line per match")
    p.set_defaults(func=cmd_find)

    p = subparsers.add_parser(
        "retrieve",
        help="fetch a study or series from a node into the archive (C-MOVE or C-GET)",
        description="Only what the archive lacks is fetched: running it again after an "
        "interrupted retrieve fetches the rest. C-MOVE needs the node to know our AE title, "
        "host and listener port ('workstation nodes local'); a temporary listener runs on that "
        "port for the retrieve (stop 'workstation listen' first, or use C-GET). "
        "Ctrl-C sends C-CANCEL; what arrived is kept.",
    )
    p.add_argument("node", help="the node's name")
    p.add_argument("--study", required=True, help="study instance UID")
    p.add_argument("--series", default="", help="only this series")
    p.add_argument("--patient-id", default="", help="patient ID (Patient Root-only nodes)")
    p.add_argument("--method", choices=["C-MOVE", "C-GET", "move", "get"],
                   help="override the node's retrieve method")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_retrieve)


def _node_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", choices=["C-MOVE", "C-GET", "move", "get"],
                   help="retrieve method (default C-MOVE)")  # fmt: skip
    p.add_argument("--model", choices=["auto", "study", "patient"],
                   help="query model (default auto: Study Root, else Patient Root)")  # fmt: skip
    p.add_argument("--tls", action=argparse.BooleanOptionalAction, default=None,
                   help="use TLS with this node")  # fmt: skip
    p.add_argument("--ca", help="CA certificate(s) (PEM) that sign the node's certificate")
    p.add_argument("--cert", help="our client certificate (PEM), if the node asks for one")
    p.add_argument("--key", help="the client certificate's private key (PEM)")
    p.add_argument("--no-verify", action="store_true", default=None,
                   help="do not verify the node's certificate (test nodes only)")  # fmt: skip
    p.add_argument("--no-check-hostname", action="store_true", default=None,
                   help="verify the certificate but not that it names the host")  # fmt: skip
    p.add_argument("--connect-timeout", type=float, help="seconds for TCP/TLS connect (5)")
    p.add_argument("--acse-timeout", type=float, help="seconds for association answers (10)")
    p.add_argument("--dimse-timeout", type=float, help="seconds for each response (60)")
    p.add_argument("--network-timeout", type=float, help="seconds of silence (60)")
    p.add_argument("--store-aet", action="append", metavar="AE",
                   help="calling AE the node uses when it sends to us (default its own)")  # fmt: skip
    p.add_argument("--description", help="free text")


def _settings(services: Services) -> tuple[NodeSettings, NodeBook]:
    from workstation.app.node_settings import NodeSettings

    settings = NodeSettings(services.home)
    return settings, settings.load()


def _changes(args: argparse.Namespace) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for attr, field in (("aet", "ae_title"), ("host", "host"), ("port", "port"),
                        ("model", "query_model"), ("connect_timeout", "connect_timeout"),
                        ("acse_timeout", "acse_timeout"), ("dimse_timeout", "dimse_timeout"),
                        ("network_timeout", "network_timeout"), ("description", "description")):  # fmt: skip
        value = getattr(args, attr, None)
        if value is not None:
            changes[field] = value
    if args.method:
        changes["retrieve_method"] = args.method
    if args.store_aet:
        changes["store_calling_aes"] = tuple(args.store_aet)
    return changes


def _tls_changes(args: argparse.Namespace, current: Any) -> Any:
    from dataclasses import replace

    tls = current
    fields: dict[str, Any] = {}
    if args.tls is not None:
        fields["enabled"] = args.tls
    for attr, field in (("ca", "ca_file"), ("cert", "cert_file"), ("key", "key_file")):
        if getattr(args, attr) is not None:
            fields[field] = getattr(args, attr)
    if args.no_verify:
        fields["verify"] = False
    if args.no_check_hostname:
        fields["check_hostname"] = False
    return replace(tls, **fields) if fields else tls


@_command
def cmd_nodes_add(args: argparse.Namespace, services: Services) -> int:
    from workstation.net.nodes import RemoteNode, TlsSettings

    settings, book = _settings(services)
    changes = _changes(args)
    node = RemoteNode(name=args.name, tls=_tls_changes(args, TlsSettings()), **changes)
    settings.save(book.with_node(node))
    print(f"added {node.label}, retrieve by {node.retrieve_method}")
    return 0


@_command
def cmd_nodes_edit(args: argparse.Namespace, services: Services) -> int:
    settings, book = _settings(services)
    node = _node(book, args.name)
    changes = _changes(args)
    updated = node.replace(tls=_tls_changes(args, node.tls), **changes)
    settings.save(book.with_node(updated, replace=True))
    print(f"updated {updated.label}, retrieve by {updated.retrieve_method}")
    return 0


@_command
def cmd_nodes_remove(args: argparse.Namespace, services: Services) -> int:
    settings, book = _settings(services)
    node = _node(book, args.name)
    settings.save(book.without(node.name))
    print(f"removed {node.label}")
    return 0


@_command
def cmd_nodes_local(args: argparse.Namespace, services: Services) -> int:
    from dataclasses import replace

    settings, book = _settings(services)
    local = book.local
    changes = {k: v for k, v in (("ae_title", args.aet), ("port", args.port),
                                 ("bind_address", args.bind)) if v is not None}  # fmt: skip
    tls = listener_tls_from_args(args, local.tls)  # ValueError: inconsistent, said by main()
    if tls != local.tls:
        check_listener_tls(tls)  # TlsError naming a missing or unusable file: nothing saved
        changes["tls"] = tls
    if changes:
        local = replace(local, **changes)
        settings.save(book.with_local(local))
    if args.json:
        print(json.dumps(local.to_dict()))
    else:
        print(f"our AE title {local.ae_title}, listener port {local.port}"
              + (f" on {local.bind_address}" if local.bind_address else "")
              + f"; {describe_listener_tls(local.tls)}")  # fmt: skip
    return 0


@_command
def cmd_nodes_list(args: argparse.Namespace, services: Services) -> int:
    _, book = _settings(services)
    if args.json:
        print(json.dumps(book.to_dict(), indent=2, ensure_ascii=False))
        return 0
    print(f"we are {book.local.ae_title}, listening on port {book.local.port} "
          f"({_settings(services)[0].path})")  # fmt: skip
    if not book.nodes:
        print("no nodes: add one with 'workstation nodes add NAME --aet AE --host H --port P'")
        return 0
    print(f"{'name':<16}{'AE title':<18}{'address':<28}{'retrieve':<9}{'model':<8}tls")
    for n in book.nodes:
        print(f"{n.name:<16}{n.ae_title:<18}{n.host + ':' + str(n.port):<28}"
              f"{n.retrieve_method:<9}{n.query_model:<8}{'yes' if n.tls.enabled else 'no'}")  # fmt: skip
    return 0


def _node(book: NodeBook, name: str) -> Any:
    try:
        return book.get(name)
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None


@_command
def cmd_echo(args: argparse.Namespace, services: Services) -> int:
    from workstation.net.echo import echo

    _, book = _settings(services)
    nodes = [_node(book, args.name)] if args.name else list(book.nodes)
    if not nodes:
        print("error: no nodes configured", file=sys.stderr)
        return 2
    failed = 0
    for node in nodes:
        result = echo(book.local, node)
        failed += not result.ok
        if args.json:
            print(json.dumps({"node": node.name, "outcome": result.outcome, "ok": result.ok,
                              "status": result.status, "message": result.message,
                              "seconds": round(result.seconds, 3)}, ensure_ascii=False))  # fmt: skip
        else:
            print(f"{'ok' if result.ok else result.outcome.upper()}: {result.message}")
    return 1 if failed else 0


def _find_keys(args: argparse.Namespace) -> dict[str, str]:
    keys: dict[str, str] = {}
    for _, keyword, _ in _FIND_KEYS:
        value = getattr(args, keyword)
        if value is not None:
            keys[keyword] = value
    for item in args.key:
        keyword, sep, value = item.partition("=")
        if not sep or not keyword.strip():
            raise ValueError(f"--key {item!r}: write KEYWORD=VALUE (e.g. StudyID=123)")
        keys[keyword.strip()] = value
    return keys


def _cell(text: str, width: int) -> str:
    if not width:
        return text
    return (text[: width - 1] + "…") if len(text) > width else text.ljust(width)


class _CancelOnInterrupt:
    """Ctrl-C (and SIGTERM) cancels the operation instead of killing the process mid-write."""

    def __init__(self, token: Any) -> None:
        self.token = token
        self.previous: list[Any] = []

    def __enter__(self) -> _CancelOnInterrupt:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous.append((sig, signal.signal(sig, self._handle)))
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.token.cancelled:  # a second Ctrl-C: give up at once
            raise KeyboardInterrupt
        print("\ncancelling (C-CANCEL sent; Ctrl-C again to quit at once)", file=sys.stderr)
        self.token.cancel()

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous:
            signal.signal(sig, handler)


@_command
def cmd_find(args: argparse.Namespace, services: Services) -> int:
    from workstation.net.cancel import CancelToken
    from workstation.net.find import find, normalize_level

    _, book = _settings(services)
    node = _node(book, args.node)
    level = normalize_level(args.level)
    keys = _find_keys(args)
    token = CancelToken()
    columns = _COLUMNS[level]
    matches: list[dict[str, str]] = []
    count = 0
    started = time.monotonic()
    with _CancelOnInterrupt(token):
        results = find(book.local, node, level, keys, cancel=token, limit=args.limit)
        for result in results:
            count += 1
            if args.stream:
                print(json.dumps(result.as_dict(), ensure_ascii=False), flush=True)
            elif args.json:
                matches.append(result.as_dict())
            else:
                if count == 1:
                    print("  ".join(_cell(_HEADINGS.get(k, k), w) for k, w in columns))
                print("  ".join(_cell(result.get(k), w) for k, w in columns), flush=True)
    seconds = time.monotonic() - started
    if args.json:
        print(json.dumps({"node": node.name, "level": level, "keys": keys, "count": count,
                          "cancelled": token.cancelled, "seconds": round(seconds, 3),
                          "matches": matches}, indent=2, ensure_ascii=False))  # fmt: skip
    elif not args.stream:
        note = " (cancelled)" if token.cancelled and args.limit is None else ""
        print(f"{count} {level.lower()} match(es) from {node.name} in {seconds:.2f} s{note}",
              file=sys.stderr)  # fmt: skip
    return 0


class _ProgressBar:
    """One line on stderr, redrawn at most 10 times a second."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty() or enabled == "always"
        self.lock = threading.Lock()
        self.last = 0.0
        self.shown = False

    def __call__(self, p: RetrieveProgress) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        with self.lock:
            if now - self.last < 0.1 and p.remaining != 0:
                return
            self.last = now
            total = p.total
            done = max(p.done, p.received)
            if total:
                filled = int(30 * min(done, total) / total)
                bar = f"[{'#' * filled}{'.' * (30 - filled)}] {done}/{total}"
            else:
                bar = f"{done} received"
            rate = p.received / p.seconds if p.seconds > 0 else 0.0
            extra = f", {p.failed} failed" if p.failed else ""
            sys.stderr.write(f"\r{bar}{extra}, {rate:.0f} images/s   ")
            sys.stderr.flush()
            self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")


@_command
def cmd_retrieve(args: argparse.Namespace, services: Services) -> int:
    from workstation.app.retrieve_service import RetrieveService
    from workstation.net.cancel import CancelToken

    _, book = _settings(services)
    node = _node(book, args.node)
    method = {"move": "C-MOVE", "get": "C-GET"}.get(args.method or "", args.method)
    archive = services.archive
    service = RetrieveService(archive, book.local, ingest=services.ingest,
                              journal=services.home / "retrieve_journal.jsonl")  # fmt: skip
    token = CancelToken()
    bar = _ProgressBar(not args.quiet and not args.json)
    # As for 'listen': the C-STOREs (C-MOVE) or the C-GET's own answers are received while
    # the ingester reads headers; a thread woken by its socket should not wait 5 ms for the GIL.
    sys.setswitchinterval(LISTENER_SWITCH_INTERVAL)
    try:
        with _CancelOnInterrupt(token):
            report = service.retrieve(node, args.study, args.series, method=method,
                                      patient_id=args.patient_id, on_progress=bar,
                                      cancel=token)  # fmt: skip
    finally:
        bar.close()
        services.close_ingest()
        archive.close()
    if args.json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        rate = report.arrived / report.seconds if report.seconds > 0 else 0.0
        print(f"{report.outcome.upper()}: {report.message} ({report.seconds:.1f} s, "
              f"{rate:.0f} images/s)")  # fmt: skip
    if report.complete:
        return 0
    return 2 if report.outcome == "failed" else 1
