"""``workstation hang STUDY_UID``: the hanging protocols ranked for a stored study, the reasons
each rule passed or failed, and the viewport assignment of each stage of the best protocol.

Priors come from the local archive; ``--query`` (or ``--node NAME``) also asks the configured
nodes, and ``--retrieve`` fetches the priors the protocol wants before assigning the stages.
Exit status: 0 a protocol matched; 1 none matched; 2 error (unknown study or protocol).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workstation.app.services import Services
    from workstation.hanging import ProtocolMatch


def register(subparsers: Any) -> None:
    """Add ``hang`` to the ``workstation`` parser."""
    p = subparsers.add_parser(
        "hang",
        help="rank the hanging protocols for a stored study and show each stage's viewports",
        description="Matches the built-in protocols, HOME/hanging_protocols and --protocols "
        "DIR against the study and its priors, and prints the protocols ranked with the reason "
        "each rule passed or failed, then the viewport assignment of every stage of the best "
        "protocol (or of --protocol NAME).",
    )
    p.add_argument("study", help="study instance UID (in the local archive)")
    p.add_argument("--protocols", action="append", default=[], metavar="DIR",
                   help="another directory of protocol files (overrides by name; repeatable)")  # fmt: skip
    p.add_argument("--protocol", metavar="NAME", help="show the stages of this protocol")
    p.add_argument("--query", action="store_true", help="also look for priors on every node")
    p.add_argument("--node", action="append", default=[], metavar="NAME",
                   help="look for priors on this node (repeatable)")  # fmt: skip
    p.add_argument("--retrieve", action="store_true",
                   help="retrieve the priors the protocol wants (implies --query)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_hang)


def cmd_hang(args: argparse.Namespace, services: Services) -> int:
    from workstation.app.hanging_facts import facts_from_archive, load_app_protocols
    from workstation.app.node_settings import NodeSettings
    from workstation.app.priors import PriorService
    from workstation.net.cancel import CancelToken

    protocols = load_app_protocols(services.home, args.protocols)
    for error in protocols.errors:
        print(f"warning: protocol skipped: {error}", file=sys.stderr)
    if args.protocol:
        try:
            protocols.get(args.protocol)
        except KeyError as exc:
            print(f"error: {exc.args[0]}", file=sys.stderr)
            return 2
    from workstation.archive.errors import NotFoundError

    archive = services.archive
    try:
        try:
            current = facts_from_archive(archive, args.study)
        except NotFoundError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        book = NodeSettings(services.home).load()
        nodes: list[str] | None = list(args.node) if args.node else None
        if nodes is None and not (args.query or args.retrieve):
            nodes = []
        service = PriorService(archive, book, journal=services.home / "retrieve_journal.jsonl")
        result = service.hang(
            current, protocols, protocol=args.protocol, nodes=nodes, retrieve=args.retrieve,
            on_progress=None if args.json else _progress, cancel=CancelToken(),
        )  # fmt: skip
    finally:
        archive.close()
    if args.json:
        print(json.dumps({
            "study": _study(current),
            "protocol_errors": [str(e) for e in protocols.errors],
            "overridden": list(protocols.overridden),
            "priors": [r.to_dict() for r in result.search.ranking],
            "node_errors": list(result.search.errors),
            "protocols": [m.to_dict() for m in result.ranked],
            "applied": result.match.name if result.match else None,
            "stages": [s.to_dict() for s in result.match.stages] if result.match else [],
            "retrieves": [r.to_json() for r in result.retrieves],
        }, indent=2, ensure_ascii=False, default=str))  # fmt: skip
    else:
        _print(current, result)
    return 0 if result.match is not None else 1


def _progress(p: Any) -> None:
    print(f"prior {p.study_uid} from {p.node}: {p.message}", file=sys.stderr)


def _study(f: Any) -> dict[str, Any]:
    return {"study_uid": f.study_uid, "patient_id": f.patient_id,
            "issuer_of_patient_id": f.issuer_of_patient_id,
            "date": f.study_date.isoformat() if f.study_date else "",
            "modalities": list(f.modalities), "description": f.description,
            "body_part": f.body_part,
            "display_sets": [{"uid": d.uid, "label": d.label, "images": d.number_of_images}
                             for d in f.display_sets]}  # fmt: skip


def _print(current: Any, result: Any) -> None:
    date = current.study_date.isoformat() if current.study_date else "no date"
    print(f"study {current.study_uid}  {date}  {'/'.join(current.modalities)}  "
          f"{current.description}  (patient {current.patient_id}, "
          f"{len(current.display_sets)} display sets)")  # fmt: skip
    ranking = result.search.ranking
    print(f"priors: {len(ranking)}" + ("" if ranking else " (none found)"))
    for i, r in enumerate(ranking, 1):
        f = r.facts
        where = "local" if f.source == "local" else f"on {f.source}"
        print(f"  {i}. {f.study_date}  {'/'.join(f.modalities)}  {f.description}  [{where}]  "
              f"score {r.score:g}: {', '.join(r.reasons)}")  # fmt: skip
    for error in result.search.errors:
        print(f"  node error: {error}")
    print("protocols:")
    for i, m in enumerate(result.ranked, 1):
        state = "matched" if m.matched else "not matched"
        print(f"  {i}. {m.name}  score {m.score:g}  {state}  ({m.protocol.level}: "
              f"{m.protocol.label})")  # fmt: skip
        _explain(m)
    chosen: ProtocolMatch | None = result.match
    if chosen is None:
        print("no protocol matched")
        return
    for r in result.retrieves:
        print(f"retrieved {r.study_instance_uid} from {r.node}: {r.outcome}: {r.message}")
    print(f"stages of {chosen.name}:")
    for stage in chosen.stages:
        print(f"  stage {stage.index + 1} {stage.name!r}  layout {stage.layout}  "
              f"({stage.filled} of {len(stage.viewports)} filled)")  # fmt: skip
        for v in stage.viewports:
            when = v.study_date.isoformat() if v.study_date else ""
            if v.display_set is None:
                print(f"    [{v.cell + 1}] {v.study} {when}  empty: {v.reason}")
                continue
            opts = _options(v.options)
            print(f"    [{v.cell + 1}] {v.study} {when}  {v.display_set.label}  "
                  f"[{v.display_set.uid}]{opts}")  # fmt: skip


def _explain(m: Any) -> None:
    for f in m.failures:
        print(f"       ! {f}")
    for r in m.rule_results:
        print(f"       {'+' if r.passed else '-'} {r.reason}")
    if not m.matched:
        return
    for c in m.priors:
        print(f"       prior {c.spec.id!r}: {c.reason}")
    for s in m.selections:
        print(f"       display set {s.selector!r} ({s.study}): "
              f"{s.reason if s.display_set is not None else 'none: ' + s.reason}")  # fmt: skip


def _options(o: Any) -> str:
    parts = []
    if o.window:
        parts.append(f"window {o.window}")
    if o.invert:
        parts.append("inverted")
    if o.initial_image != "first":
        parts.append(f"image {o.initial_image}")
    if o.sync_group:
        parts.append(f"sync {o.sync_group}")
    if o.flip_horizontal:
        parts.append("flip horizontal")
    if o.flip_vertical:
        parts.append("flip vertical")
    if o.rotate:
        parts.append(f"rotate {o.rotate}")
    if tuple(o.align) != ("center", "center"):
        parts.append("align " + " ".join(a for a in o.align if a != "center"))
    if o.reformat is not None:
        parts.append(f"reformat {o.reformat.plane} {o.reformat.slab_mm:g} mm {o.reformat.mode}")
    return ("  " + ", ".join(parts)) if parts else ""
