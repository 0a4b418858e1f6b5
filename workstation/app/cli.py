"""The ``workstation`` command line: subcommands for headless jobs.

So far: ``info FILE``, ``sets PATH...`` and ``render INPUT --out PNG``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from workstation import __version__
from workstation.app import (
    cli_archive,
    cli_demo,
    cli_hang,
    cli_network,
    cli_query,
    cli_reformat,
)
from workstation.app.services import Services
from workstation.core.errors import DicomError

log = logging.getLogger("workstation")


def _print_report(report: dict[str, Any], indent: int = 0) -> None:
    pad = "  " * indent
    for key, value in report.items():
        label = key.replace("_", " ")
        if isinstance(value, dict):
            print(f"{pad}{label}:")
            _print_report(value, indent + 1)
        elif isinstance(value, list):
            print(f"{pad}{label}: " + (", ".join(str(v) for v in value) if value else "none"))
        elif value not in ("", None):
            print(f"{pad}{label}: {value}")


def cmd_info(args: argparse.Namespace, services: Services) -> int:
    report = services.describe(args.file)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        _print_report(report)
    return 0


def cmd_render(args: argparse.Namespace, services: Services) -> int:
    if getattr(args, "gsps", None):
        from workstation.app.cli_gsps import cmd_render_gsps

        return cmd_render_gsps(args)
    if cli_reformat.wants_reformat(args):
        return cli_reformat.cmd_render_reformat(args, services)
    window = tuple(args.window) if args.window else None
    image = services.render_to_png(
        args.input,
        args.out,
        frame=args.frame,
        window=window,
        voi_index=args.voi,
        invert=args.invert,
        overlays=not args.no_overlays,
    )
    what = image.voi.describe() if image.voi is not None else "colour"
    print(
        f"{args.out}: {image.pixels.shape[1]}x{image.pixels.shape[0]}, frame {args.frame}, "
        f"{what}, decoder {image.decoder}{', inverted' if image.inverted else ''}"
    )
    return 0


def cmd_sets(args: argparse.Namespace, services: Services) -> int:
    sets, problems = services.display_sets(args.paths)
    if args.json:
        print(json.dumps({"display_sets": sets, "problems": problems}, indent=2, default=str))
        return 0
    for d in sets:
        flag = "" if d["geometry_ok"] else f"  [no volume: {d['geometry_problem']}]"
        print(f"{d['label']}  ({d['frames']} frames, {d['kind']}){flag}")
        for note in d["notes"]:
            print(f"    note: {note}")
    for path, reason in problems:
        print(f"skipped {path}: {reason}")
    return 0


def cmd_open(args: argparse.Namespace, services: Services) -> int:
    from workstation.app.gui import run_window

    missing = [p for p in args.paths if not os.path.exists(p)]
    if missing:
        print(f"error: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    return run_window(
        services,
        paths=[os.path.abspath(p) for p in args.paths],
        layout=args.layout,
        screenshot=args.screenshot,
        size=tuple(args.size),
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workstation", description="DICOM diagnostic viewing workstation"
    )
    parser.add_argument("--version", action="version", version=f"workstation {__version__}")
    parser.add_argument(
        "--home",
        help="directory for the archive, settings and logs (default: $WORKSTATION_HOME or the "
        "platform's data directory)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="open the window on the demo studies (generated into the archive on first use)",
    )
    parser.add_argument(
        "--screenshot",
        metavar="OUT.png",
        help="with no subcommand: open the window, wait until the viewports have painted, write "
        "a PNG of it and exit",
    )
    sub = parser.add_subparsers(dest="command")

    p = sub.add_parser(
        "open",
        help="open files, a folder or a CD in the window, read in place (no import)",
        description="Opens PATH as a user would (each display set in a viewport). With "
        "--screenshot, waits until the viewports have painted, writes a PNG of the window and "
        "exits (status 1 if they did not paint within 90 s).",
    )
    p.add_argument("paths", nargs="+", help="files or folders (a CD's DICOMDIR is read in place)")
    p.add_argument("--layout", help="viewer layout: RxC (1x1 to 4x4), 1+2 or 1+3")
    p.add_argument("--screenshot", metavar="OUT.png", help="write a PNG of the window and exit")
    p.add_argument(
        "--size",
        nargs=2,
        type=int,
        default=(1600, 1000),
        metavar=("W", "H"),
        help="window size for --screenshot (default 1600 1000)",
    )
    p.set_defaults(func=cmd_open)

    p = sub.add_parser("info", help="key header fields and what the display pipeline will do")
    p.add_argument("file", help="a DICOM file")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("sets", help="group files into display sets (stacks) and list them")
    p.add_argument("paths", nargs="+", help="files or folders (searched recursively)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_sets)

    p = sub.add_parser("render", help="write the image the viewer shows for a frame, as PNG")
    p.add_argument("input", help="a DICOM file")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--frame", type=int, default=0, help="0-based frame index (default 0)")
    p.add_argument(
        "--window",
        nargs=2,
        type=float,
        metavar=("CENTER", "WIDTH"),
        help="window in modality units",
    )
    p.add_argument("--voi", type=int, help="use the file's VOI number N (0-based; windows first)")
    p.add_argument("--invert", action="store_true", help="invert the display")
    p.add_argument("--no-overlays", action="store_true", help="do not draw overlay planes")
    p.add_argument("--gsps", metavar="STATE.dcm", help="apply this presentation state (GSPS)")
    p.add_argument(
        "--size",
        nargs=2,
        type=int,
        metavar=("W", "H"),
        help="with --gsps: output size (default: the displayed area, one pixel per pixel)",
    )
    p.add_argument("--no-annotations", action="store_true", help="with --gsps: no graphics")
    cli_reformat.add_render_options(p)
    p.set_defaults(func=cmd_render)
    cli_network.register(sub)
    cli_archive.register(sub)
    cli_demo.register(sub)
    cli_query.register(sub)
    cli_hang.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        warnings.simplefilter("ignore")  # pydicom's per-element warnings; errors still surface
    services = Services(home=Path(args.home) if args.home else _env_home())
    if args.command is None:
        from workstation.app.gui import run_window

        return run_window(services, demo=args.demo, screenshot=args.screenshot)
    try:
        return args.func(args, services)
    except DicomError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (OSError, IndexError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _env_home() -> Path | None:
    home = os.environ.get("WORKSTATION_HOME")
    return Path(home) if home else None


if __name__ == "__main__":
    raise SystemExit(main())
