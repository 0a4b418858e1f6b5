"""MPR, thick-slab MIP and 3D volume rendering speed (issue 8), against plain vtkImageReslice.

Data: a synthetic CT-like volume, 512x512x400 int16 (0.7 mm pixels, 1 mm slices: body, organs,
contrast-filled vessels, bones, noise) built in memory, and for 3D the same anatomy at 256^3.

Cases, interleaved over the repetitions (figures are medians):

* ``oblique``: one 512x512 linear reslice on a double-oblique plane (rotated 17 and 23 degrees),
  ``Reslicer.reslice`` against a plain ``vtkImageReslice`` configured by hand for the same plane
  (the baseline). Target <= 20 ms.
* ``mip20``: a 20 mm MIP slab on the same plane: ours at full quality (linear, one sample per
  voxel step along the normal's main axis: the compiled kernel of ``render/slab_kernel.py``, which
  samples where the rays cross the voxel planes, bilinearly, plus the two faces), ours in
  ``preview`` mode (what the view shows while the user drags), and the plain vtkImageReslice slab
  with the same number of evenly spaced trilinear samples. Target <= 60 ms.
* ``mip20_axial``: a 20 mm MIP slab on the axial plane (what a radiologist mostly uses: lined
  up with the voxel grid, so ours combines the voxel planes within it without sampling) against
  the plain vtkImageReslice slab with one sample per slice.
* ``mip20_coronal``, ``mip20_sagittal``: the same on the coronal and sagittal planes (512x571:
  lined up with the grid, but the rows, 0.7 mm apart, fall between the 1 mm slices, so ours
  samples them with vtkImageReslice too) against the plain vtkImageReslice slab with one sample
  per voxel step along the normal; process CPU time is reported as well.
* ``crosshair``: moving the crosshair point: the three orthogonal reslices (axial 512x512, coronal
  and sagittal 512x572) plus the viewer's display pipeline (``FrameRenderer`` window/level to
  8-bit) for each. Target >= 20 updates/s.
* ``3d``: volume rendering of 256^3 in a 512x512 off-screen window (EGL, else X/OSMesa; llvmpipe
  when there is no GPU), presets CT bone and MIP, side by side and interleaved: ``cpu`` (what
  ``VolumeScene`` does: CPU ray casting, vtkFixedPointVolumeRayCastMapper, a block-averaged 128^3
  preview while dragging), ``gpu`` (the OpenGL GPU ray caster with the same preview),
  ``gpu_full_volume`` (the GPU ray caster on the full volume, 3-voxel steps: the strategy before
  this comparison) and ``smart`` (vtkSmartVolumeMapper left to choose; it picks the GPU mapper).
  Interactive frame: camera rotated 5 degrees per frame, ``set_interactive(True)``, the image
  sample distance adapting towards 60 ms; still frame: ``set_interactive(False)``; first frame:
  the first still one (CPU: gradients computed). Each frame waits for GL completion.
  Target >= 10 fps interactive.

Usage: ``python benchmarks/mpr.py [--quick] [--reps N] [--only 2d|3d]``; the last line is
one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from vtkmodules.util import numpy_support  # noqa: E402
from vtkmodules.vtkImagingCore import vtkImageReslice  # noqa: E402

from workstation.core.geometry import ImagePlane  # noqa: E402
from workstation.core.modality_lut import ModalityTransform  # noqa: E402
from workstation.core.pipeline import FrameRenderer  # noqa: E402
from workstation.core.voi import Window  # noqa: E402
from workstation.render.reslice import Reslicer, oblique_plane, orthogonal_planes  # noqa: E402
from workstation.render.volume_image import _matrix, build_volume_image  # noqa: E402

TARGETS = {"oblique_ms": 20.0, "mip20_ms": 60.0, "crosshair_fps": 20.0, "3d_fps": 10.0}


def phantom(n_slices: int, size: int, pixel: float, slice_mm: float, seed: int = 0) -> np.ndarray:
    """CT-like int16 volume (slices, rows, cols): air, an elliptic body with fat rim, two organs,
    contrast vessels along z, a spine and ribs, a few bright nodules, Gaussian noise."""
    rng = np.random.default_rng(seed)
    half = size * pixel / 2
    y, x = np.mgrid[:size, :size].astype(np.float32) * pixel - half
    vol = np.empty((n_slices, size, size), np.int16)
    for k in range(n_slices):
        z = k * slice_mm - n_slices * slice_mm / 2
        sl = np.full((size, size), -1000.0, np.float32)
        body = (x / (half * 0.85)) ** 2 + (y / (half * 0.6)) ** 2 < 1
        sl[body] = -90
        sl[(x / (half * 0.8)) ** 2 + (y / (half * 0.55)) ** 2 < 1] = 40
        sl[((x + 50) / 60) ** 2 + ((y + 10) / 45) ** 2 < 1] = 60  # liver-ish
        sl[((x - 60) / 35) ** 2 + ((y - 30) / 30) ** 2 < 1] = 30
        sl[(x / 20) ** 2 + ((y - half * 0.35) / 20) ** 2 < 1] = 700  # vertebra
        for angle in np.linspace(0.3, 2.8, 6):  # ribs
            rx, ry = np.cos(angle) * half * 0.75, -np.sin(angle) * half * 0.5 + 20
            sl[((x - rx) ** 2 + (y - ry) ** 2) < 36] = 800
            sl[((x + rx) ** 2 + (y - ry) ** 2) < 36] = 800
        ax, ay = 15 * np.sin(z / 40), 40 + 10 * np.cos(z / 55)  # aorta and a wandering branch
        sl[(x - ax) ** 2 + (y - ay) ** 2 < 144] = 350
        sl[(x - 40 - 30 * np.sin(z / 25)) ** 2 + (y + 20 - 20 * np.cos(z / 30)) ** 2 < 9] = 300
        vol[k] = np.clip(sl + rng.normal(0, 12, sl.shape), -1024, 3071)
    for _ in range(12):  # nodules
        k, r, c = rng.integers(20, n_slices - 20), rng.integers(150, 350), rng.integers(150, 350)
        vol[k - 2 : k + 3, r - 2 : r + 3, c - 2 : c + 3] = 200
    return vol


def volume_of(values: np.ndarray, pixel: float, slice_mm: float):
    n, rows, cols = values.shape
    planes = [
        ImagePlane(
            np.array([-cols * pixel / 2, -rows * pixel / 2, k * slice_mm]),
            (1, 0, 0),
            (0, 1, 0),
            (pixel, pixel),
            rows,
            cols,
        )
        for k in range(n)
    ]
    return build_volume_image(values, planes, modality="CT")


def baseline(volume, plane, slab_samples: int = 1, spacing: float = 1.0) -> vtkImageReslice:
    """A plain vtkImageReslice on the world-space vtkImageData for the same output plane."""
    r = vtkImageReslice()
    r.SetInputData(volume.image)
    m = plane._frame()
    r.SetResliceAxes(_matrix(m))
    cols, rows = plane.size
    px = plane.pixel_mm
    r.SetOutputSpacing(px, px, spacing)
    r.SetOutputOrigin(-(cols - 1) / 2 * px, -(rows - 1) / 2 * px, 0.0)
    r.SetOutputExtent(0, cols - 1, 0, rows - 1, 0, 0)
    r.SetInterpolationModeToLinear()
    if slab_samples > 1:
        r.SetSlabNumberOfSlices(slab_samples)
        r.SetSlabModeToMax()
    return r


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000.0


def run_baseline(r: vtkImageReslice) -> np.ndarray:
    r.Modified()
    r.Update()
    return numpy_support.vtk_to_numpy(r.GetOutput().GetPointData().GetScalars())


def bench_2d(reps: int) -> dict:
    t0 = time.perf_counter()
    values = phantom(400, 512, 0.7, 1.0)
    volume = volume_of(values, 0.7, 1.0)
    build_s = time.perf_counter() - t0
    rs = Reslicer(volume)
    plane = oblique_plane(volume, "axial", 17.0, 23.0)
    plane = type(plane)(plane.centre, plane.x_axis, plane.y_axis, plane.pixel_mm, (512, 512))
    samples, step = rs.slab_sampling(20.0, None, plane.normal)
    base_thin = baseline(volume, plane)
    base_slab = baseline(volume, plane, samples, step)
    ortho = orthogonal_planes(volume)
    axial = ortho["axial"]
    ax_samples, ax_step = rs.slab_sampling(20.0, None, axial.normal)
    base_axial = baseline(volume, axial, ax_samples, ax_step)
    base_ortho = {
        name: baseline(volume, ortho[name], *rs.slab_sampling(20.0, None, ortho[name].normal))
        for name in ("coronal", "sagittal")
    }
    window = Window(40, 400)
    ortho_points = [volume.centre_patient() + np.array([d, -d, 2 * d]) for d in range(-20, 20, 3)]
    renderers_header = _header()
    times: dict[str, list[float]] = {
        k: []
        for k in (
            "oblique",
            "oblique_vtk",
            "mip20",
            "mip20_preview",
            "mip20_vtk",
            "mip20_axial",
            "mip20_axial_vtk",
            "mip20_coronal",
            "mip20_coronal_vtk",
            "mip20_sagittal",
            "mip20_sagittal_vtk",
            "crosshair",
        )  # fmt: skip
    }
    cpu: dict[str, list[float]] = {}  # process CPU time (VTK runs on several threads)
    for rep in range(reps):
        times["oblique"].append(timed(lambda: rs.reslice(plane)))
        times["oblique_vtk"].append(timed(lambda: run_baseline(base_thin)))
        times["mip20"].append(timed(lambda: rs.reslice(plane, slab_mm=20.0)))
        times["mip20_preview"].append(timed(lambda: rs.reslice(plane, slab_mm=20.0, preview=True)))
        times["mip20_vtk"].append(timed(lambda: run_baseline(base_slab)))
        times["mip20_axial"].append(timed(lambda: rs.reslice(axial, slab_mm=20.0)))
        times["mip20_axial_vtk"].append(timed(lambda: run_baseline(base_axial)))
        for name, base in base_ortho.items():
            plane_o = ortho[name]
            for key, fn in (
                (f"mip20_{name}", lambda p=plane_o: rs.reslice(p, slab_mm=20.0)),
                (f"mip20_{name}_vtk", lambda b=base: run_baseline(b)),
            ):
                c0 = time.process_time()
                times[key].append(timed(fn))
                cpu.setdefault(key, []).append((time.process_time() - c0) * 1000.0)
        point = ortho_points[rep % len(ortho_points)]

        def crosshair(point=point) -> None:
            for p in orthogonal_planes(volume, point).values():
                img = rs.reslice(p)
                outside = np.isnan(img)
                img[outside] = -1024
                FrameRenderer.from_values(
                    renderers_header, 0, img, ModalityTransform(), ("mpr", 0), "reslice"
                ).render(voi=window, overlays=False)

        times["crosshair"].append(timed(crosshair))
    med = {k: round(statistics.median(v), 2) for k, v in times.items()}
    sizes = {k: v.size for k, v in orthogonal_planes(volume).items()}
    return {
        "median_ms": med,
        "median_cpu_ms": {k: round(statistics.median(v), 2) for k, v in cpu.items()},
        "build_volume_s": round(build_s, 2),
        "slab_samples": samples,
        "slab_step_mm": round(step, 3),
        "crosshair_fps": round(1000.0 / med["crosshair"], 1),
        "orthogonal_sizes": sizes,
        "ratio_oblique_vs_vtk": round(med["oblique"] / med["oblique_vtk"], 2),
        "ratio_mip20_vs_vtk": round(med["mip20"] / med["mip20_vtk"], 2),
        "ratio_mip20_preview_vs_vtk": round(med["mip20_preview"] / med["mip20_vtk"], 2),
        "ratio_mip20_axial_vs_vtk": round(med["mip20_axial"] / med["mip20_axial_vtk"], 2),
        "ratio_mip20_coronal_vs_vtk": round(med["mip20_coronal"] / med["mip20_coronal_vtk"], 2),
        "ratio_mip20_sagittal_vs_vtk": round(med["mip20_sagittal"] / med["mip20_sagittal_vtk"], 2),
        "ortho_slab_samples_vtk": {
            name: rs.slab_sampling(20.0, None, ortho[name].normal)[0] for name in base_ortho
        },
    }


def _header():
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.Modality = "CT"
    ds.Rows, ds.Columns = 512, 512
    ds.PhotometricInterpretation = "MONOCHROME2"
    return ds


def _engines(volume):
    """The 3D strategies compared, each a VolumeScene (sharing nothing but the data)."""
    import vtkmodules.vtkRenderingVolumeOpenGL2  # noqa: F401  (the OpenGL mapper overrides)
    from vtkmodules.vtkRenderingVolumeOpenGL2 import vtkSmartVolumeMapper

    from workstation.render.volume_rendering import VolumeScene

    sp = min(volume.spacing_mm)
    cpu = VolumeScene(volume)  # the default: CPU ray casting, 128^3 preview while dragging
    gpu = VolumeScene(volume, engine="gpu")  # OpenGL ray casting, same preview volume
    # before issue 8's tuning: GPU on the full volume, 3-voxel steps and adaptive image sampling
    gpu_full = VolumeScene(volume, engine="gpu", preview_voxels=10**12)
    gpu_full.interactive_sample_mm = 3.0 * sp
    gpu_full.interactive_image_sample = 3.0
    smart = VolumeScene(volume, engine="gpu", preview_voxels=10**12)
    mapper = vtkSmartVolumeMapper()  # picks the GPU mapper where OpenGL 3.2 works (llvmpipe)
    mapper.SetInputData(smart.mapper.GetInput())
    mapper.SetInteractiveUpdateRate(10.0)
    smart.mapper = smart.preview_mapper = mapper
    smart.actor.SetMapper(mapper)
    return {"cpu": cpu, "gpu": gpu, "gpu_full_volume": gpu_full, "smart": smart}


def bench_3d(reps: int, size: int = 512) -> dict:
    """Interactive and still frames per engine and preset, interleaved over the engines."""
    from workstation.render.offscreen import (
        HeadlessRenderingError,
        offscreen_render_window,
        renderer_description,
    )

    values = phantom(256, 256, 1.4, 1.56, seed=1)
    volume = volume_of(values, 1.4, 1.56)
    try:
        window, backend = offscreen_render_window(size, size)
    except HeadlessRenderingError as exc:
        return {"error": str(exc)}
    scenes = _engines(volume)
    camera = scenes["cpu"].renderer.GetActiveCamera()
    for scene in scenes.values():
        scene.renderer.SetActiveCamera(camera)
        scene.renderer.SetDraw(0)
        window.AddRenderer(scene.renderer)

    def frame(name: str, interactive: bool) -> float:
        scene = scenes[name]
        smart = name == "smart"  # it adapts itself to the window's desired update rate
        if smart:
            window.SetDesiredUpdateRate(15.0 if interactive else 0.0001)
        else:
            scene.set_interactive(interactive)
        scene.renderer.SetDraw(1)
        t = time.perf_counter()
        window.Render()
        window.WaitForCompletion()  # llvmpipe may still be drawing when Render returns
        ms = (time.perf_counter() - t) * 1000.0
        scene.renderer.SetDraw(0)
        if not smart:
            scene.frame_rendered(ms / 1000.0)
        return ms

    out: dict = {"backend": backend, "gl_renderer": renderer_description(window), "engines": {}}
    out["preview_factors"] = scenes["cpu"].preview_factors
    for key in ("ct-bone", "mip"):
        for scene in scenes.values():
            scene.set_preset(key)
        first = {name: frame(name, False) for name in scenes}  # CPU: gradients computed here
        for name in scenes:  # the preview's first frame (its gradients), then settle the ISD
            for _ in range(4):
                camera.Azimuth(5)
                frame(name, True)
        inter: dict[str, list[float]] = {name: [] for name in scenes}
        still: dict[str, list[float]] = {name: [] for name in scenes}
        for rep in range(reps * 2):
            camera.Azimuth(5)
            camera.OrthogonalizeViewUp()
            for name in scenes:
                inter[name].append(frame(name, True))
            if rep % 3 == 0:
                for name in scenes:
                    still[name].append(frame(name, False))
        for name, scene in scenes.items():
            ms = statistics.median(inter[name])
            out["engines"].setdefault(name, {})[key] = {
                "first_frame_ms": round(first[name], 1),
                "still_ms": round(statistics.median(still[name]), 1),
                "interactive_ms": round(ms, 1),
                "interactive_fps": round(1000.0 / ms, 1),
                "image_sample_distance": None
                if name == "smart"
                else round(scene.interactive_image_sample, 2),
            }
    out["presets"] = out["engines"]["cpu"]  # what VolumeScene does by default
    window.Finalize()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (about a minute)")
    ap.add_argument("--reps", type=int, help="repetitions (default 12, quick 4)")
    ap.add_argument("--only", choices=("2d", "3d"), help="run only the reslice or the 3D part")
    args = ap.parse_args(argv)
    reps = args.reps or (4 if args.quick else 12)
    load_before = os.getloadavg()[0]
    two = bench_2d(reps) if args.only != "3d" else None
    three = bench_3d(reps) if args.only != "2d" else {"error": "not run (--only 2d)"}
    load_after = os.getloadavg()[0]
    if two is not None:
        m = two["median_ms"]
        print(f"{'case':<34}{'ours ms':>10}{'vtk ms':>10}{'ratio':>8}{'target':>12}")
        print(f"{'oblique 512x512 reslice':<34}{m['oblique']:>10.1f}{m['oblique_vtk']:>10.1f}"
              f"{two['ratio_oblique_vs_vtk']:>8.2f}{'<= 20 ms':>12}")  # fmt: skip
        print(f"{'20 mm MIP slab, full':<34}{m['mip20']:>10.1f}{m['mip20_vtk']:>10.1f}"
              f"{two['ratio_mip20_vs_vtk']:>8.2f}{'<= 60 ms':>12}")  # fmt: skip
        print(f"{'20 mm MIP slab, preview (drag)':<34}{m['mip20_preview']:>10.1f}{m['mip20_vtk']:>10.1f}"
              f"{two['ratio_mip20_preview_vs_vtk']:>8.2f}{'<= 60 ms':>12}")  # fmt: skip
        print(f"{'20 mm MIP slab, axial':<34}{m['mip20_axial']:>10.1f}{m['mip20_axial_vtk']:>10.1f}"
              f"{two['ratio_mip20_axial_vs_vtk']:>8.2f}{'<= 60 ms':>12}")  # fmt: skip
        c = two["median_cpu_ms"]
        for name in ("coronal", "sagittal"):
            print(f"{'20 mm MIP slab, ' + name:<34}{m['mip20_' + name]:>10.1f}"
                  f"{m['mip20_' + name + '_vtk']:>10.1f}"
                  f"{two['ratio_mip20_' + name + '_vs_vtk']:>8.2f}{'<= 60 ms':>12}"
                  f"   CPU ms {c['mip20_' + name]:.1f} vs {c['mip20_' + name + '_vtk']:.1f}")  # fmt: skip
        print(f"{'crosshair: 3 reslices + W/L':<34}{m['crosshair']:>10.1f}{'':>10}{'':>8}"
              f"{'>= 20 fps':>12}   = {two['crosshair_fps']} fps")  # fmt: skip
        print(f"slab: {two['slab_samples']} samples {two['slab_step_mm']} mm apart; volume built in "
              f"{two['build_volume_s']} s")  # fmt: skip
    if "error" in three:
        print(f"3D: skipped: {three['error']}")
    else:
        print(f"3D 256^3 in 512x512, {three['backend']} ({three['gl_renderer']}):")
        print(f"  preview volume: blocks of {three['preview_factors']} voxels averaged")
        for engine, presets in three["engines"].items():
            default = "  (VolumeScene's default)" if engine == "cpu" else ""
            print(f"  engine {engine}{default}:")
            for key, s in presets.items():
                print(f"    {key:<8} interactive {s['interactive_ms']:7.1f} ms = {s['interactive_fps']:5.1f} fps "
                      f"(image sample distance {s['image_sample_distance']}), still {s['still_ms']:7.1f} ms, "
                      f"first {s['first_frame_ms']:7.1f} ms  (target >= 10 fps)")  # fmt: skip
    result = {
        "reslice": two,
        "volume_rendering": three,
        "targets": TARGETS,
        "meets": {
            **(
                {
                    "oblique": m["oblique"] <= TARGETS["oblique_ms"],
                    "mip20_full": m["mip20"] <= TARGETS["mip20_ms"],
                    "mip20_preview": m["mip20_preview"] <= TARGETS["mip20_ms"],
                    "mip20_axial": m["mip20_axial"] <= TARGETS["mip20_ms"],
                    "mip20_coronal": m["mip20_coronal"] <= TARGETS["mip20_ms"],
                    "mip20_sagittal": m["mip20_sagittal"] <= TARGETS["mip20_ms"],
                    "crosshair": two["crosshair_fps"] >= TARGETS["crosshair_fps"],
                }
                if two is not None
                else {}
            ),
            "3d": {
                k: v["interactive_fps"] >= TARGETS["3d_fps"]
                for k, v in three.get("presets", {}).items()
            },
        },
        "reps": reps,
        "loadavg_before_after": [round(load_before, 2), round(load_after, 2)],
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
