"""A compressed breast as a processed (for presentation) mammogram, in a canonical frame.

The canonical image has the chest wall at its first column and the nipple pointing to the
right; its top is lateral (CC) or superolateral, towards the axilla (MLO). Coordinates are
anatomical millimetres: ``u`` from the chest wall towards the nipple, ``v`` down the image.
A later exam of the same breast repositions it by whole texture cells (``Pose``), so the
prior and the current show the same tissue a few millimetres apart.

What is drawn: the outline (polar radius around a point of the chest wall, with the nipple in
profile), the compressed thickness falling off in the uncompressed rim, the skin line, a
fibroglandular cone behind the nipple whose texture is 1/f^3 noise (the power law of
mammographic parenchyma) plus strands radiating to the nipple, trabeculae and Cooper's
ligaments in the fat, vessels, the pectoral muscle on MLO views, benign calcifications and,
optionally, a spiculated mass. The rendering equalises the rim (as a vendor's processing does)
and sharpens detail.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from workstation.app.demo.shapes import Canvas, box_blur

ROWS, COLS = 1600, 1200
SPACING = 0.15  # mm per pixel at the detector
HALF = 2  # the smooth fields are made at half resolution
CELL = 4  # texture is made at a quarter of the resolution
PAD = 24  # texture cells beyond the image on each side, room for repositioning


@dataclass(frozen=True)
class BreastShape:
    """The outline and composition of one breast in one view.

    ``radii`` are (angle in degrees, radius in mm) around the chest-wall point ``(0,
    centre_v)``; angle 0 points along the rows to the nipple side, -90 up the chest wall.
    """

    view: str  # "CC" or "MLO"
    centre_v: float
    radii: tuple[tuple[float, float], ...]
    nipple_angle: float
    gland_axis_v: float  # where the fibroglandular cone meets the chest wall
    density: float  # 0..1, how much of the cone is dense tissue
    seed: int
    pectoral: tuple[float, float] = (0.0, 0.0)  # MLO: (u at the top edge, v at the chest wall)


@dataclass(frozen=True)
class Pose:
    """How the breast lay in one exam: a shift in texture cells and the compressed thickness."""

    shift_cells: tuple[int, int]  # (down, towards the nipple) in CELL-pixel steps
    thickness_mm: float


@dataclass(frozen=True)
class Mass:
    """A spiculated mass: centre (u, v) in mm, core radius, spicule count and length."""

    u: float
    v: float
    radius: float
    spicules: int
    length: float
    seed: int


def _power_noise(rng: np.random.Generator, shape: tuple[int, int], beta: float,
                 f0: float, band: tuple[float, float] | None = None) -> np.ndarray:  # fmt: skip
    """Unit-variance noise with power spectrum ``(f^2 + f0^2)^(-beta/2)`` (f in cycles/pixel),
    optionally limited to a ``band`` of frequencies."""
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    amp = (f * f + f0 * f0) ** (-beta / 4)
    if band is not None:
        amp *= np.exp(-(((f - band[0]) / band[1]) ** 2))
    amp[0, 0] = 0.0
    spec = (rng.standard_normal(f.shape) + 1j * rng.standard_normal(f.shape)) * amp
    n = np.fft.irfft2(spec, s=shape).astype(np.float32)
    return n / max(float(n.std()), 1e-9)


def _double(img: np.ndarray) -> np.ndarray:
    """Bilinear upsampling by two (pixel centres aligned), from neighbour averages."""
    p = np.pad(img, 1, mode="edge")
    a, up, down = p[1:-1, 1:-1], p[:-2, 1:-1], p[2:, 1:-1]
    rows = np.empty((2 * img.shape[0], img.shape[1]), np.float32)
    rows[0::2] = 0.75 * a + 0.25 * up
    rows[1::2] = 0.75 * a + 0.25 * down
    p = np.pad(rows, ((0, 0), (1, 1)), mode="edge")
    a, left, right = p[:, 1:-1], p[:, :-2], p[:, 2:]
    out = np.empty((rows.shape[0], 2 * img.shape[1]), np.float32)
    out[:, 0::2] = 0.75 * a + 0.25 * left
    out[:, 1::2] = 0.75 * a + 0.25 * right
    return out


def _sample(field: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``field`` at fractional (wrapped) positions."""
    n0, n1 = field.shape
    r0, c0 = np.floor(rows).astype(np.int64), np.floor(cols).astype(np.int64)
    fr, fc = (rows - r0).astype(np.float32), (cols - c0).astype(np.float32)
    r0, c0 = r0 % n0, c0 % n1
    r1, c1 = (r0 + 1) % n0, (c0 + 1) % n1
    top = field[r0, c0] * (1 - fc) + field[r0, c1] * fc
    bottom = field[r1, c0] * (1 - fc) + field[r1, c1] * fc
    return top * (1 - fr) + bottom * fr


def _smoothstep(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _radius_table(shape: BreastShape) -> tuple[np.ndarray, np.ndarray]:
    """The outline radius per degree from -120 to 120, smoothed, with the nipple bump."""
    deg = np.arange(-120.0, 121.0)
    a, r = zip(*shape.radii, strict=True)
    radius = np.interp(deg, a, r)
    k = np.ones(21) / 21
    radius = np.convolve(np.pad(radius, 10, mode="edge"), k, mode="valid")
    radius += 4.5 * np.exp(-(((deg - shape.nipple_angle) / 3.2) ** 2))
    return deg, radius


def nipple(shape: BreastShape) -> tuple[float, float]:
    """The (u, v) of the nipple's tip in mm."""
    deg, radius = _radius_table(shape)
    r = float(np.interp(shape.nipple_angle, deg, radius))
    a = math.radians(shape.nipple_angle)
    return r * math.cos(a), shape.centre_v + r * math.sin(a)


def _grid(n_rows: int, n_cols: int, step: float, pose: Pose) -> tuple[np.ndarray, np.ndarray]:
    """Anatomical (u, v) of the pixel centres of an image of ``step`` mm pixels."""
    dv, du = (s * CELL * SPACING for s in pose.shift_cells)
    u = (np.arange(n_cols, dtype=np.float32) + 0.5) * step - du
    v = (np.arange(n_rows, dtype=np.float32) + 0.5) * step - dv
    return u[None, :], v[:, None]


def _textures(shape: BreastShape, pose: Pose) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cloud (1/f^3), trabecular ridges and fine texture on the half-resolution grid, cut
    out of fields larger than the image where this exam's pose puts the breast."""
    rng = np.random.default_rng(shape.seed)
    r4, c4 = ROWS // CELL, COLS // CELL
    cloud = _power_noise(rng, (r4 + 2 * PAD, c4 + 2 * PAD), 3.0, 0.012)
    big = (2 * (r4 + 2 * PAD), 2 * (c4 + 2 * PAD))
    ridge = _power_noise(rng, big, 1.0, 0.01, band=(0.05, 0.03))
    fine = _power_noise(rng, big, 2.0, 0.02)
    dy, dx = pose.shift_cells
    cut = cloud[PAD - dy : PAD - dy + r4, PAD - dx : PAD - dx + c4]
    rs, cs = slice(2 * (PAD - dy), 2 * (PAD - dy + r4)), slice(2 * (PAD - dx), 2 * (PAD - dx + c4))
    return _double(cut), ridge[rs, cs], fine[rs, cs]


def _streaks(shape: BreastShape, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Strands converging on the nipple: noise sampled along rays from it, stretched along
    the ray."""
    rng = np.random.default_rng(shape.seed + 1)
    field = _power_noise(rng, (256, 512), 2.0, 0.02)
    nu, nv = nipple(shape)
    r = np.sqrt((u - nu) ** 2 + (v - nv) ** 2)
    theta = np.arctan2(v - nv, nu - u)  # 0 straight back to the chest wall
    return _sample(field, r / 7.0, theta * 90.0 / 1.1)


def _pectoral(shape: BreastShape, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The fraction of pectoral muscle (between the chest wall and a slightly convex line
    from (top_u, 0) to (0, bottom_v)) and how far (mm, along the rows) a point lies beyond
    that line."""
    top_u, bottom_v = shape.pectoral
    full = np.broadcast_shapes(u.shape, v.shape)
    if top_u <= 0:
        return np.zeros(full, np.float32), np.full(full, 99.0, np.float32)
    t = np.clip(v / bottom_v, 0.0, 1.0)
    edge = top_u * (1 - t) * (1 + 0.18 * np.sin(np.pi * t))
    beyond = np.where(v < bottom_v, u - edge, 99.0).astype(np.float32)
    return np.clip(0.5 - beyond / 0.8, 0.0, 1.0), beyond


def _vessels(c: Canvas, shape: BreastShape, rng: np.random.Generator) -> None:
    """Two or three tortuous vessels from the chest wall towards the nipple."""
    nu, nv = nipple(shape)
    for k in range(3):
        v0 = shape.gland_axis_v + (k - 1) * 45 + rng.normal(0, 8)
        points, heading = [(-5.0, v0)], math.atan2(nv - v0, nu)
        x, y = points[0]
        for _ in range(14):
            heading += rng.normal(0, 0.25)
            x, y = x + 6.5 * math.cos(heading), y + 6.5 * math.sin(heading)
            points.append((x, y))
            heading += 0.25 * (math.atan2(nv - y, nu - x) - heading)
        c.tube_bump(points, 1.0 - 0.2 * k, 0.3, 0.0)  # a cylinder's projection


def _calcifications(c: Canvas, shape: BreastShape, rng: np.random.Generator) -> None:
    """A few scattered benign (round, smooth, stable) calcifications."""
    nu, nv = nipple(shape)
    for _ in range(5):
        u = rng.uniform(0.25, 0.8) * nu
        v = nv + rng.uniform(-0.5, 0.5) * 110
        r = rng.uniform(0.35, 0.7)
        c.ellipse(u, v, r, r, 1.6, add=True)


def draw_mass(c: Canvas, mass: Mass) -> None:
    """A dense, irregular core with thin, tapering, slightly curved spicules radiating from it."""
    rng = np.random.default_rng(mass.seed)
    for _ in range(6):  # an irregular, lobulated core
        a = rng.uniform(0, 2 * math.pi)
        off = rng.uniform(0.2, 0.5) * mass.radius
        c.bump(mass.u + off * math.cos(a), mass.v + off * math.sin(a), mass.radius * 0.7,
               mass.radius * rng.uniform(0.5, 0.75), 0.09, 3)  # fmt: skip
    c.bump(mass.u, mass.v, mass.radius, mass.radius * 0.85, 0.2, 3)
    for k in range(mass.spicules):
        a = 2 * math.pi * k / mass.spicules + rng.normal(0, 0.25)
        length = mass.length * rng.uniform(0.4, 1.3)
        x, y = mass.u + mass.radius * 0.7 * math.cos(a), mass.v + mass.radius * 0.7 * math.sin(a)
        pts, bend = [(x, y)], rng.normal(0, 0.12)
        for _ in range(5):
            a += bend
            x, y = x + length / 5 * math.cos(a), y + length / 5 * math.sin(a)
            pts.append((x, y))
        c.tube_bump(pts, 0.35, 0.24, 0.0)
        c.tube_bump(pts[:3], 0.7, 0.2, 0.0)  # thicker at the root


def breast_density(shape: BreastShape, pose: Pose, mass: Mass | None = None) -> np.ndarray:
    """The breast as a presentation signal on the full-resolution canonical grid.

    Returns float32 ``(ROWS, COLS)``: negative outside the breast (NaN-free), about 0 for
    fat, 1 for dense fibroglandular tissue, more for calcifications.
    """
    hr, hc = ROWS // HALF, COLS // HALF
    u, v = _grid(hr, hc, SPACING * HALF, pose)
    deg, radius = _radius_table(shape)
    dv = v - shape.centre_v
    r = np.sqrt(u * u + dv * dv)
    phi = np.degrees(np.arctan2(dv, u))
    depth = np.interp(phi, deg, radius).astype(np.float32) - r  # mm inside the outline
    rim = pose.thickness_mm / 2
    t = np.sqrt(1.0 - (1.0 - np.clip(depth, 0, rim) / rim) ** 2)  # relative thickness

    cloud, ridge, fine = _textures(shape, pose)
    streak = _streaks(shape, u, v)
    nu, nv = nipple(shape)
    ax, ay = nu, nv - shape.gland_axis_v  # the cone's axis, chest wall to nipple
    length = math.hypot(ax, ay)
    along = (u * ax + (v - shape.gland_axis_v) * ay) / (length * length)
    across = (-(u * ay) + (v - shape.gland_axis_v) * ax) / length
    width = 0.42 * length * (1.05 - 0.55 * np.clip(along, 0, 1))
    envelope = np.exp(-(((across + 0.12 * length) / width) ** 2))  # more tissue lateral
    envelope *= _smoothstep(depth, 5.0, 22.0) * _smoothstep(u, -4.0, 16.0)
    level = (2.2 * shape.density * envelope + 0.6 * cloud + 0.22 * streak + 0.12 * fine
             - 1.0)  # fmt: skip
    gland = 0.85 / (1.0 + np.exp(-level / 0.4)) * _smoothstep(envelope, 0.02, 0.3)
    muscle, beyond = _pectoral(shape, u, v)
    gland *= _smoothstep(beyond, 2.0, 12.0)  # retromammary fat in front of the muscle
    patches = _smoothstep(cloud + 0.3 * fine, -0.2, 0.8)  # ligaments show here and there
    trabeculae = np.exp(-((ridge / 0.1) ** 2)) * patches * (1.0 - gland)
    trabeculae *= _smoothstep(depth, 1.5, 6.0)
    half = (gland * t + 0.12 * trabeculae * t + muscle * (0.6 + 0.03 * cloud + 0.01 * fine)
            + 0.035 * fine * t - 0.38 * (1.0 - t))  # fmt: skip
    full = _double(half + 0.5 * (half - box_blur(half, 5)))  # detail enhancement
    depth_full = _double(depth)
    inside = np.clip(depth_full / SPACING + 0.5, 0.0, 1.0)
    skin = np.clip(1.0 - np.abs(depth_full - 0.9) / 0.8, 0.0, 1.0)

    c = Canvas(ROWS, COLS, SPACING, 0.0, 0.0)
    c.x0, c.y0 = float(u[0, 0]) - SPACING / 2, float(v[0, 0]) - SPACING / 2
    rng = np.random.default_rng(shape.seed + 2)
    _vessels(c, shape, rng)
    _calcifications(c, shape, rng)
    if mass is not None:
        draw_mass(c, mass)
    full += 1.3 * c.img * _smoothstep(depth_full, 2.0, 8.0) + 0.3 * skin
    return np.where(inside > 0, full * inside - 2.0 * (1 - inside), -2.0).astype(np.float32)
