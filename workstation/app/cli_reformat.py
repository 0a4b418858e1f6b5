"""``workstation render SERIES --mpr PLANE | --3d PRESET --out PNG``: reformats written headless.

The 2D reformats go through the same window/level code as the viewer
(:class:`~workstation.core.pipeline.FrameRenderer` over modality values); the 3D view renders off
screen with the first OpenGL back end that works here (EGL, X/Xvfb, OSMesa; see
:mod:`workstation.render.offscreen`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from workstation.core.dicom_file import read_dataset
from workstation.core.modality_lut import ModalityTransform
from workstation.core.pipeline import FrameRenderer
from workstation.core.png import write_png
from workstation.core.voi import Window

PLANES = ("axial", "coronal", "sagittal", "oblique")
MODES = ("mip", "minip", "mean")  # workstation.render.reslice.MODES; VTK is imported only when used


def add_render_options(p: argparse.ArgumentParser) -> None:
    """Add the reformat options to the ``render`` subcommand's parser."""
    p.add_argument(
        "more_inputs",
        nargs="*",
        metavar="MORE",
        help="with --mpr/--3d: more files or folders of the series (INPUT may be a folder)",
    )
    g = p.add_argument_group("reformats (INPUT is then a series: a folder or its files)")
    g.add_argument("--mpr", choices=PLANES, help="write a multiplanar reformat of the series")
    g.add_argument(
        "--angles",
        nargs=2,
        type=float,
        default=(0.0, 0.0),
        metavar=("RX", "RY"),
        help="--mpr oblique: tilt the axial plane RX degrees about its horizontal axis, then RY "
        "about its vertical axis",
    )
    g.add_argument(
        "--point",
        nargs=3,
        type=float,
        metavar=("X", "Y", "Z"),
        help="patient point (LPS mm) the plane passes through (default: the volume centre)",
    )
    g.add_argument("--slab", type=float, default=0.0, metavar="MM", help="slab thickness 0-100 mm")
    g.add_argument("--mode", choices=MODES, default="mip", help="slab mode (default mip)")
    g.add_argument(
        "--3d", dest="volume_preset", metavar="PRESET", help="write a 3D volume rendering"
    )
    g.add_argument(
        "--view",
        default="anterior",
        help="--3d: camera side: anterior, posterior, left, right, superior, inferior",
    )
    g.add_argument(
        "--rotate",
        nargs=2,
        type=float,
        default=(0.0, 0.0),
        metavar=("AZIMUTH", "ELEVATION"),
        help="--3d: orbit the camera by these degrees (image size: --size W H, default 512 512)",
    )
    g.add_argument("--series", help="series (or display set) UID when INPUT holds several")


def wants_reformat(args: argparse.Namespace) -> bool:
    """Whether the ``render`` arguments are for this module: --mpr, --3d, or several inputs."""
    return bool(
        getattr(args, "mpr", None)
        or getattr(args, "volume_preset", None)
        or getattr(args, "more_inputs", None)
    )


def cmd_render_reformat(args: argparse.Namespace, services) -> int:
    """Run ``render`` with ``--mpr`` or ``--3d``; returns the exit status."""
    from workstation.render.series_volume import (
        NoVolumeError,
        choose_display_set,
        load_volume_image,
    )

    if not (args.mpr or args.volume_preset):
        print("error: several inputs are a series: add --mpr PLANE or --3d PRESET", file=sys.stderr)
        return 2
    if args.mpr and args.volume_preset:
        print("error: give --mpr or --3d, not both", file=sys.stderr)
        return 2
    paths = [args.input, *args.more_inputs]
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        print(f"error: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        display_set, problems = choose_display_set(paths, args.series)
        t0 = time.perf_counter()
        volume = load_volume_image(display_set, registry=services.registry)
        load_s = time.perf_counter() - t0
    except NoVolumeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path, reason in problems[:10]:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    summary = f"{display_set.label}: {len(display_set.frames)} frames loaded in {load_s:.1f} s"
    print(summary)
    for note in volume.notes:
        print(f"    note: {note}")
    if args.mpr:
        return _write_mpr(args, display_set, volume)
    return _write_3d(args, volume)


def _write_mpr(args: argparse.Namespace, display_set, volume) -> int:
    from workstation.render.reslice import Reslicer, oblique_plane, orthogonal_planes

    if not 0.0 <= args.slab <= 100.0:
        print(f"error: --slab must be 0 to 100 mm, got {args.slab}", file=sys.stderr)
        return 2
    if args.mpr == "oblique":
        plane = oblique_plane(volume, "axial", args.angles[0], args.angles[1], args.point)
    else:
        plane = orthogonal_planes(volume, args.point)[args.mpr]
    values = Reslicer(volume).reslice(plane, slab_mm=args.slab, mode=args.mode)
    outside = np.isnan(values)
    if outside.all():
        print("error: the plane does not cross the volume", file=sys.stderr)
        return 2
    values[outside] = np.nanmin(values)
    header, _ = read_dataset(display_set.frames[0].path, header_only=True)
    renderer = FrameRenderer.from_values(
        header, 0, values, ModalityTransform(), ("mpr", 0), "reslice"
    )
    renderer.padding = outside
    voi = Window(args.window[0], args.window[1], "LINEAR", "user") if args.window else None
    image = renderer.render(voi=voi, invert=args.invert, overlays=False)
    pixels = image.pixels
    pixels[outside] = 0
    write_png(args.out, pixels)
    slab = f", {args.slab:g} mm {args.mode}" if args.slab > 0 else ""
    what = image.voi.describe() if image.voi is not None else ""
    print(
        f"{args.out}: {pixels.shape[1]}x{pixels.shape[0]} {args.mpr}{slab}, "
        f"{plane.pixel_mm:.3f} mm pixels, {what}"
    )
    return 0


def _write_3d(args: argparse.Namespace, volume) -> int:
    from workstation.render.offscreen import (
        HeadlessRenderingError,
        capture,
        offscreen_render_window,
        renderer_description,
    )
    from workstation.render.volume_rendering import PresetError, VolumeScene, load_presets

    try:
        presets = load_presets()
    except PresetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.volume_preset not in presets:
        print(
            f"error: no 3D preset {args.volume_preset!r}; choose one of {', '.join(presets)}",
            file=sys.stderr,
        )
        return 2
    try:
        window, backend = offscreen_render_window(*(getattr(args, "size", None) or (512, 512)))
    except HeadlessRenderingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    scene = VolumeScene(volume, presets, args.volume_preset)
    try:
        scene.reset_camera(args.view)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    scene.rotate(*args.rotate)
    window.AddRenderer(scene.renderer)
    t0 = time.perf_counter()
    rgb = capture(window)
    render_s = time.perf_counter() - t0
    write_png(args.out, rgb)
    print(
        f"{args.out}: {rgb.shape[1]}x{rgb.shape[0]} 3D {presets[args.volume_preset].label}, "
        f"{args.view} view, rendered in {render_s:.2f} s with {backend} "
        f"({renderer_description(window)})"
    )
    window.Finalize()
    return 0
