"""Real data and the command line: the tilted GE head CT without shear, MPR and 3D PNGs."""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from synthetic import stack_files  # noqa: E402

from workstation.app.cli import main  # noqa: E402
from workstation.core.display_sets import build_display_sets, read_header_records  # noqa: E402
from workstation.core.geometry import ImagePlane  # noqa: E402
from workstation.core.series_loader import SeriesLoader  # noqa: E402
from workstation.render.reslice import ReslicePlane, Reslicer  # noqa: E402
from workstation.render.series_volume import (  # noqa: E402
    NoVolumeError,
    choose_display_set,
    load_volume_image,
)
from workstation.render.volume_image import build_volume_image  # noqa: E402

GE = "ct_series/ge_hispeed_dual_tilt_variable_spacing"


def read_png(path) -> np.ndarray:
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    i, idat = 8, b""
    while i < len(data):
        length = struct.unpack(">I", data[i : i + 4])[0]
        kind, body = data[i + 4 : i + 8], data[i + 8 : i + 8 + length]
        if kind == b"IHDR":
            w, h, _, colour = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        i += 12 + length
    ch = 3 if colour == 2 else 1
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, w * ch + 1)[:, 1:]
    return raw.reshape(h, w, ch) if ch == 3 else raw.reshape(h, w)


def skull(img: np.ndarray) -> np.ndarray:
    return np.nan_to_num(img, nan=-1000.0) > 300


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))


def test_tilted_ge_series_reformats_without_shear(corpus_dir):
    display_set, problems = choose_display_set([corpus_dir / GE])
    assert not problems
    with SeriesLoader(workers=2) as loader:
        volume = load_volume_image(display_set, loader)
        raw = loader.load([f.path for f in display_set.frames]).volume
    assert volume.resampled_for_tilt_deg == pytest.approx(18.5, abs=0.2)
    assert volume.uneven_spacing is not None and "uneven slice spacing" in volume.uneven_spacing
    # Re-slice the regular volume along each original (tilted) slice: the skull must come back
    # where it was acquired. A volume that kept the shear (slices stacked straight along the
    # normal, ignoring that the table moved) puts the skull off by millimetres.
    planes = [f.plane for f in display_set.frames]
    normal = planes[0].normal
    straight = [
        ImagePlane(
            planes[0].origin + np.dot(p.origin - planes[0].origin, normal) * normal,
            p.row_dir,
            p.col_dir,
            p.spacing_rc,
            p.rows,
            p.cols,
        )  # fmt: skip
        for p in planes
    ]
    sheared = Reslicer(build_volume_image(raw, straight))
    ours = Reslicer(volume)
    good, bad = [], []
    for k in range(4, len(planes) - 4, 3):
        p = planes[k]
        centre = p.pixel_to_patient((p.cols - 1) / 2, (p.rows - 1) / 2)
        view = ReslicePlane(tuple(centre), p.row_dir, p.col_dir, p.spacing_rc[0], (p.cols, p.rows))
        truth = skull(raw[k].astype(np.float32))
        good.append(dice(skull(ours.reslice(view)), truth))
        bad.append(dice(skull(sheared.reslice(view)), truth))
    assert np.median(good) > 0.85, good
    assert np.median(bad) < np.median(good) - 0.2, (good, bad)


def test_a_series_without_a_volume_is_refused_with_reasons(tmp_path):
    paths = stack_files(tmp_path / "one", n=1)
    with pytest.raises(NoVolumeError, match="cannot be reformatted"):
        choose_display_set(paths)
    records, _ = read_header_records(paths)
    (single,) = build_display_sets(records)
    with pytest.raises(NoVolumeError, match="not a volume"):
        load_volume_image(single)


def test_cli_writes_mpr_pngs_through_the_display_pipeline(tmp_path, capsys):
    folder = tmp_path / "series"
    stack_files(folder, n=12, rows=24, cols=20, spacing=2.0)  # slice k, column c hold 100k + c
    out = tmp_path / "coronal.png"
    rc = main(
        ["render", str(folder), "--mpr", "coronal", "--window", "600", "1201", "--out", str(out)]
    )
    assert rc == 0, capsys.readouterr()
    img = read_png(out).astype(int)
    rows, cols = img.shape
    mid = rows // 2
    assert cols == 20  # one pixel per column, the smallest in-plane spacing
    assert img[mid, -1] > img[mid, 0]  # value grows with column: patient left on screen right
    assert img[2, cols // 2] > img[-3, cols // 2]  # higher slices (head) at the top
    # row r lies at slice 11 - r / 2 (1 mm pixels, 2 mm slices, head at the top); the window
    # maps value v to (v + 0.5) * 255 / 1200
    assert rows == 23
    col = cols // 2
    for r in (0, 5, mid, 22):
        v = 100 * (11 - r / 2) + col
        assert abs(img[r, col] - (v + 0.5) * 255 / 1200) <= 1.0, (r, img[r, col], v)
    out2 = tmp_path / "oblique_mip.png"
    args = ["render", str(folder), "--mpr", "oblique", "--angles", "20", "10"]
    rc = main([*args, "--slab", "10", "--mode", "mip", "--out", str(out2)])
    assert rc == 0
    assert read_png(out2).max() > 0
    capsys.readouterr()
    assert main(["render", str(folder), "--mpr", "axial", "--slab", "150", "--out", str(out2)]) == 2
    assert "0 to 100" in capsys.readouterr().err
    files = sorted(str(p) for p in folder.iterdir())
    assert main(["render", *files[:3], "--out", str(out2)]) == 2  # several files without --mpr
    assert "--mpr" in capsys.readouterr().err


def test_cli_writes_a_3d_png(tmp_path, capsys):
    pytest.importorskip("vtkmodules.vtkRenderingOpenGL2")
    from workstation.render.offscreen import HeadlessRenderingError, offscreen_render_window

    try:
        window, _ = offscreen_render_window(16, 16)
        window.Finalize()
    except HeadlessRenderingError as exc:
        pytest.skip(f"no off-screen OpenGL here: {exc}")
    folder = tmp_path / "series"
    stack_files(folder, n=16, rows=32, cols=32, spacing=2.0)
    out = tmp_path / "vr.png"
    rc = main(["render", str(folder), "--3d", "mip", "--size", "128", "96", "--out", str(out)])
    assert rc == 0, capsys.readouterr()
    img = read_png(out)
    assert img.shape == (96, 128, 3)
    assert (img.max(axis=2) > 30).mean() > 0.05  # the volume is drawn, not a black frame
    assert main(["render", str(folder), "--3d", "nonesuch", "--out", str(out)]) == 2
    assert "ct-bone" in capsys.readouterr().err
