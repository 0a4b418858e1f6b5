"""A contrast-enhanced chest/upper-abdomen phantom in Hounsfield units, one axial slice at a time.

Body coordinates are patient coordinates (LPS, mm) of a phantom whose lung apices lie at
z = 0; the caller shifts them to place the patient on the table. Structures, painted in order:
table, body wall (fat, muscle), lungs with a pulmonary vessel tree and a nodule, the
subdiaphragmatic organs under two domes (liver on the right, stomach and spleen on the left,
kidneys lower), the mediastinum (heart with enhanced chambers, aorta, pulmonary trunk, superior
vena cava, trachea and main bronchi, oesophagus), spine with discs, ribs and costal cartilage,
sternum and scapulae.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from workstation.app.demo.shapes import Canvas

AIR, LUNG, FAT, MUSCLE, SOFT = -1000.0, -860.0, -100.0, 50.0, 40.0
BLOOD_ARTERIAL, BLOOD_VENOUS, MYOCARDIUM = 260.0, 170.0, 100.0
LIVER, SPLEEN, KIDNEY_CORTEX = 65.0, 55.0, 160.0
CORTEX, MARROW, DISC, CARTILAGE = 1000.0, 260.0, 80.0, 120.0

Z_CARINA = -60.0
DOME_TOP = {-1: -170.0, 1: -185.0}  # right (-x) and left (+x) hemidiaphragm
DOME_DEPTH = 55.0
HEART_Z, HEART_HALF = -128.0, 44.0
#: Where the nodule sits (right upper lobe, anterior), in body coordinates.
NODULE_CENTRE = (-58.0, -32.0, -52.0)


@dataclass(frozen=True)
class Segment:
    """A vessel segment in body coordinates."""

    p0: tuple[float, float, float]
    p1: tuple[float, float, float]
    radius: float


def _in_lung(p: np.ndarray, side: int) -> bool:
    x, y, z = p
    q = ((x - side * 66) / 56) ** 2 + ((y + 2) / 74) ** 2 + ((z + 105) / 100) ** 2
    return q < 0.8 and z < -8 and z > DOME_TOP[side] - 10


def vessel_tree(seed: int) -> list[Segment]:
    """Pulmonary arteries and veins: branching segments from each hilum into the lung."""
    rng = np.random.default_rng(seed)
    out: list[Segment] = []
    nodule = np.array(NODULE_CENTRE)
    for side in (-1, 1):
        hilum = np.array([side * 38.0, 0.0, -82.0])
        stack = []
        for k in range(16):  # lobar trunks fanning out up, out, down, forward and back
            a = -1.2 + 2.4 * (k // 2) / 7
            d = np.array([side * math.cos(a) * 0.8, (k % 2 - 0.5) * 1.4, math.sin(a) * 1.3])
            stack.append((hilum, d / np.linalg.norm(d), 4.5, 0))
        while stack:
            start, direction, radius, gen = stack.pop()
            length = rng.uniform(20, 32) * (0.88**gen)
            end = start + direction * length
            if not _in_lung(end, side):
                continue
            seg = Segment(tuple(start), tuple(end), radius)
            if _distance_to_segment(nodule, start, end) > 12 + radius:
                out.append(seg)
            if radius > 0.9 and gen < 6:
                for _ in range(2):
                    turn = rng.normal(0, 0.6, 3)
                    d = direction + turn
                    stack.append((end, d / np.linalg.norm(d), radius * 0.74, gen + 1))
    return out


def _distance_to_segment(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    ab = b - a
    t = float(np.clip(np.dot(p - a, ab) / max(float(np.dot(ab, ab)), 1e-9), 0, 1))
    return float(np.linalg.norm(p - (a + t * ab)))


def _f(z: float, centre: float, half: float) -> float:
    """Cross-section scale of an ellipsoid of half-height ``half`` centred at ``centre``."""
    q = 1.0 - ((z - centre) / half) ** 2
    return math.sqrt(q) if q > 0 else 0.0


def body_size(z: float) -> tuple[float, float]:
    """Half width and half depth of the trunk at height z."""
    t = min(1.0, max(0.0, -z / 60.0))  # narrower at the thoracic inlet
    return 118 + 40 * t, 88 + 22 * t


def paint_slice(c: Canvas, z: float, vessels: list[Segment], nodule_diameter: float) -> None:
    """Paint the anatomy at body height ``z`` onto ``c`` (filled with air beforehand)."""
    _table(c)
    rx, ry = body_size(z)
    c.ellipse(0, 0, rx, ry, FAT)
    c.ring(0, 0, rx, ry, 1.8, SOFT)  # skin
    c.ellipse(0, 2, rx - 14, ry - 11, MUSCLE)
    crx, cry = rx - 28, ry - 24
    c.ellipse(0, 0, crx, cry, FAT + 10)  # inner fat of the cavity
    for side in (-1, 1):
        c.ellipse(side * 30, cry - 8, 24, 22, MUSCLE)  # paraspinal muscles
    if -140 < z < -10:  # pectoral muscles
        for side in (-1, 1):
            c.ellipse(side * 62, -ry + 17, 48, 8, MUSCLE, side * 0.2)
    chest = z > min(DOME_TOP.values()) - DOME_DEPTH
    if chest:
        _lungs(c, z, crx, cry, vessels, nodule_diameter)
    _abdomen(c, z)
    if z > HEART_Z - HEART_HALF - 5:
        _mediastinum(c, z)
    _aorta_and_veins(c, z)
    _spine(c, z, cry)
    if z > -235:
        _ribs(c, z, crx, cry)
    if -175 < z < -35:
        c.ellipse(0, -cry - 3, 14, 6, CORTEX * 0.75)  # sternum
        c.ellipse(0, -cry - 3, 11, 3.5, MARROW)
    if -115 < z < -5:  # scapulae behind the posterior ribs, pectoral muscles in front
        for side in (-1, 1):
            c.tube([(side * 60, cry + 16), (side * (crx - 20), cry - 8)], 3.2, CORTEX * 0.8)


def _table(c: Canvas) -> None:
    xs = np.linspace(-230, 230, 24)
    for dy, radius, value in ((0, 13, -880.0), (-13, 1.4, 350.0), (13, 1.6, 350.0)):
        c.tube([(x, 124 + dy + 0.0006 * x * x) for x in xs], radius, value)


def _lungs(c, z, crx, cry, vessels, nodule_diameter) -> None:
    for side in (-1, 1):
        top = 0.0
        s = math.sqrt(min(1.0, max(0.0, (top - z) / 45.0)))
        bottom = DOME_TOP[side] - DOME_DEPTH
        if s <= 0 or z < bottom:
            continue
        lx, ly = (crx - 66) * 0.5 + 62, cry * 0.9
        c.ellipse(side * (crx - lx - 2 + (1 - s) * 20), 0, lx * s, ly * s, LUNG)
    half = 1.25
    for v in vessels:
        lo, hi = sorted((v.p0[2], v.p1[2]))
        if hi < z - half - v.radius or lo > z + half + v.radius:
            continue
        p0, p1 = np.array(v.p0), np.array(v.p1)
        dz = p1[2] - p0[2]
        if abs(dz) < 1e-6:
            pts = [p0[:2], p1[:2]]
        else:
            t0 = np.clip((z - half - p0[2]) / dz, 0, 1)
            t1 = np.clip((z + half - p0[2]) / dz, 0, 1)
            pts = [(p0 + t0 * (p1 - p0))[:2], (p0 + t1 * (p1 - p0))[:2]]
        # thin vessels average with the lung around them in a 2.5 mm slice
        value = LUNG + (BLOOD_VENOUS - LUNG) * min(1.0, v.radius / 1.6)
        c.tube(pts, max(v.radius, 0.7), value)
    nx, ny, nz = NODULE_CENTRE
    r = nodule_diameter / 2
    if abs(z - nz) < r:
        rr = math.sqrt(r * r - (z - nz) ** 2)
        c.ellipse(nx, ny, rr * 1.05, rr, SOFT - 5, angle=0.4)
        c.ellipse(nx + rr * 0.6, ny - rr * 0.5, rr * 0.45, rr * 0.4, SOFT - 5)  # lobulation


def _abdomen(c: Canvas, z: float) -> None:
    for side in (-1, 1):
        depth = DOME_TOP[side] - z
        if depth <= 0:
            continue
        f = math.sqrt(min(1.0, depth / DOME_DEPTH))
        if side == -1:  # liver, shrinking towards its inferior tip
            g = min(1.0, max(0.0, (z + 300) / 80))
            c.ellipse(-48, -6, 82 * f * (0.5 + 0.5 * g), 78 * f * (0.4 + 0.6 * g), LIVER, 0.25)
            if f > 0.5 and z > -215:
                for a in (-2.0, -2.6, 2.8):  # hepatic veins draining into the IVC
                    end = (-24 + 60 * f * math.cos(a), 24 + 50 * f * math.sin(a))
                    c.tube([(-24, 24), end], 2.6, LIVER + 60)
            elif f > 0.5:
                for x, y in ((-40, 0), (-70, -10), (-55, 30), (-85, 15)):  # portal branches
                    c.ellipse(x, y, 3, 3, LIVER + 70)
            if -262 < z < -228:
                c.ellipse(-62, -38, 15, 11, 10.0)  # gallbladder
        else:
            if z > -258:
                c.ellipse(58, -18, 44 * f, 38 * f, SOFT)  # stomach wall
                c.ellipse(58, -14, 38 * f, 32 * f, 15.0)  # contents
                c.ellipse(52, -38 * f, 26 * f, 11 * f, AIR)  # gas under the dome
            if z < -195:
                c.ellipse(82, 40, 26 * f, 42 * f, SPLEEN, -0.5)
    if z < -240:  # kidneys and a few bowel loops
        g = _f(z, -285, 50)
        for side in (-1, 1):
            c.ellipse(side * 62, 48, 24 * g, 30 * g, KIDNEY_CORTEX, side * 0.5)
            c.ellipse(side * 58, 46, 12 * g, 16 * g, 110.0, side * 0.5)
        for i, (x, y) in enumerate(((25, -55), (-10, -62), (48, -58), (70, -40))):
            c.ellipse(x, y, 13, 10, 30.0)
            if i % 2 == 0:
                c.ellipse(x, y - 2, 7, 5, AIR)
        c.ellipse(10, -15, 40, 12, 45.0, 0.2)  # pancreas


def _mediastinum(c: Canvas, z: float) -> None:
    f = _f(z, HEART_Z, HEART_HALF)
    if f > 0:
        a = -0.55
        c.ellipse(22, -22, 66 * f, 56 * f, FAT - 10, a)  # pericardial fat
        c.ellipse(22, -22, 60 * f, 50 * f, MYOCARDIUM, a)
        upper = (z - HEART_Z) / HEART_HALF  # atria above, ventricles below
        if upper > 0.1:
            c.ellipse(28, 5, 30 * f, 18 * f, BLOOD_ARTERIAL, a)  # left atrium
            c.ellipse(-18, -18, 22 * f, 20 * f, BLOOD_VENOUS, a)  # right atrium
        else:
            c.ellipse(40, -10, 26 * f, 22 * f, BLOOD_ARTERIAL, a)  # left ventricle
            c.ellipse(5, -40, 26 * f, 16 * f, BLOOD_VENOUS + 20, a)  # right ventricle
    c.ellipse(12, 30, 26, 34, FAT - 10)  # posterior mediastinum
    if z > HEART_Z + 10:  # mediastinal fat around the great vessels and airway
        c.ellipse(4, 5, 34 if z > -45 else 40, 60, FAT - 10)
        if -95 < z < -68:  # pulmonary trunk and arteries
            c.ellipse(20, -32, 14, 14, BLOOD_VENOUS + 30)
            if z > -80:
                c.tube([(15, -28), (-10, -8), (-48, -2)], 9, BLOOD_VENOUS + 30)
                c.tube([(25, -28), (45, -10), (55, 8)], 8.5, BLOOD_VENOUS + 30)
    if z > Z_CARINA:
        c.ellipse(0, 18, 11, 10, SOFT)
        c.ellipse(0, 18, 9, 8, AIR)  # trachea
    elif z > Z_CARINA - 28:
        d = Z_CARINA - z
        for side, slope in ((-1, 1.2), (1, 0.9)):
            x = side * (6 + d * slope)
            c.ellipse(x, 20, 7.5, 7.5, SOFT)
            c.ellipse(x, 20, 5.5, 5.5, AIR)
    if z > -200:
        t = min(1.0, max(0.0, (-z - 120) / 80))
        c.ellipse(6 + 30 * t, 34 - 40 * t, 8, 7, SOFT)  # oesophagus, towards the stomach
        c.ellipse(6 + 30 * t, 34 - 40 * t, 2, 1.5, AIR)


def _aorta_and_veins(c: Canvas, z: float) -> None:
    if -105 < z < -36:
        c.ellipse(8, -18, 16, 16, BLOOD_ARTERIAL)  # ascending aorta
    if -46 < z < -30:  # arch
        c.tube([(6, -20), (12, 0), (22, 30), (24, 42)], 13, BLOOD_ARTERIAL)
    if z > -30:  # supra-aortic branches and brachiocephalic veins
        for x, y, r in ((-10, -10, 7), (6, -6, 5.5), (20, 2, 6)):
            c.ellipse(x, y, r, r, BLOOD_ARTERIAL)
        c.ellipse(-26, -20, 8, 8, BLOOD_VENOUS + 80)
        c.ellipse(14, -28, 7, 6, BLOOD_VENOUS)
    if -110 < z <= -30:
        c.ellipse(-26, -14, 10, 10, BLOOD_VENOUS + 80)  # superior vena cava
    if z <= -36:  # descending aorta, moving to the midline in the abdomen
        t = min(1.0, max(0.0, (-z - 160) / 80))
        c.ellipse(24 - 18 * t, 44 - 12 * t, 12, 12, BLOOD_ARTERIAL)
    if z < -160:
        c.ellipse(-24, 28, 12, 10, BLOOD_VENOUS)  # inferior vena cava


def _spine(c: Canvas, z: float, cry: float) -> None:
    y = cry - 30
    disc = (z % 27.0) < 5.0
    c.ellipse(0, y, 21, 18, DISC if disc else CORTEX)
    if not disc:
        c.ellipse(0, y, 17.5, 14.5, MARROW)
    c.tube([(-15, y + 20), (0, y + 36), (15, y + 20)], 4, CORTEX * 0.9)  # laminae
    c.tube([(0, y + 36), (0, y + 50)], 3.5, CORTEX * 0.9)  # spinous process
    if (z % 27.0) > 9:
        for side in (-1, 1):
            c.tube([(side * 14, y + 16), (side * 30, y + 20)], 4, CORTEX * 0.85)
    c.ellipse(0, y + 27, 9, 8, SOFT - 10)  # spinal canal: cord and fluid


def _ribs(c: Canvas, z: float, crx: float, cry: float) -> None:
    slope = 27.0  # mm the rib descends per radian around the chest
    for k in range(12):
        z_k = -12 - 20 * k
        a = 0.35 + (z_k - z) / slope
        for side in (-1, 1):
            for lo, hi, value, radius in ((0.3, 2.35, CORTEX, 3.6), (2.35, 2.85, CARTILAGE, 3.6)):
                a0, a1 = max(lo, a - 0.09), min(hi, a + 0.09)
                if a1 <= a0:
                    continue
                pts = [
                    (side * (crx + 5) * math.sin(t), (cry + 5) * math.cos(t))
                    for t in np.linspace(a0, a1, 5)
                ]
                c.tube(pts, radius, value)
                if value == CORTEX:
                    c.tube(pts, radius - 1.6, MARROW + 100)
