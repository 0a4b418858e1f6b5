"""``workstation demo``: install the demo studies into the archive under ``--home``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from workstation.app.services import Services


def register(subparsers: Any) -> None:
    """Add ``demo`` to the ``workstation`` command line."""
    p = subparsers.add_parser(
        "demo",
        help="generate the demo studies (CT, chest radiographs and mammograms with priors, brain MR, ultrasound cine) into the "
        "archive",
        description="Installs only what is missing; running it again changes nothing.",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace, services: Services) -> int:
    from workstation.app.demo import install_demo

    last = [-1]

    def progress(done: int, total: int) -> None:
        if args.quiet or not total:
            return
        percent = 100 * done // total
        if percent // 10 != last[0] // 10 or done == total:
            last[0] = percent
            print(f"demo: {done}/{total} instances", file=sys.stderr)

    archive = services.archive
    try:
        report = install_demo(archive, progress=progress)
    finally:
        archive.close()
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        installed = ", ".join(report.studies_installed) or "none"
        skipped = ", ".join(report.studies_skipped) or "none"
        print(f"demo studies installed: {installed} ({report.instances_installed} instances, "
              f"{report.seconds:.1f} s); already present: {skipped}")  # fmt: skip
        for p in report.problems:
            print(f"  problem: {p}")
    return 1 if report.problems else 0
