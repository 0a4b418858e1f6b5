"""The chest radiograph demo: a PA (MONOCHROME2) and a left lateral (MONOCHROME1) view, and the
same two views a year earlier, when the heart was smaller (interval cardiac enlargement) and
the patient stood a few millimetres elsewhere.

Digital X-Ray Image Storage - For Presentation, 2500x2048, 12 bits. The anatomy is drawn as
path lengths (water-equivalent millimetres) through ellipsoids and bony tubes on a 0.7 mm grid,
resampled to the 0.175 mm detector, then processed as a radiograph is for presentation:
log signal, large-area equalisation (so lungs and mediastinum both show), quantum noise.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset

from workstation.app.demo.headers import (
    Patient,
    Series,
    Study,
    code,
    new_instance,
    sequence,
    set_pixels,
    set_windows,
)
from workstation.app.demo.shapes import Canvas, box_blur, upsample

DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
ROWS, COLS = 2500, 2048
DETECTOR_SPACING = 0.175  # mm at the detector
SID, SOD = 1800.0, 1650.0  # source to detector, source to patient
WORK = 4  # the anatomy is drawn at a quarter of the detector's resolution
BONE = 1.8  # attenuation of bone relative to water

PATIENT = Patient("DEMO^CHEST XRAY", "DEMO-DX-0002", "19710908", "M", "053Y", 1.80, 82)
STUDY = Study("dx", PATIENT, "20250310", "111000", "DEMO-DX-25", "XR CHEST PA AND LATERAL", "2502")
PRIOR = Study("dx-prior", PATIENT, "20240304", "094500", "DEMO-DX-24", "XR CHEST PA AND LATERAL",
              "2402")  # fmt: skip
VIEWS = (  # series key, number, description, view, code, orientation, photometric, seed
    ("pa", 1, "CHEST PA", "PA", ("399348003", "postero-anterior"), ["L", "F"], "MONOCHROME2", 21),
    ("lat", 2, "CHEST LAT", "LL", ("399173006", "left lateral"), ["P", "F"], "MONOCHROME1", 22),
)


@dataclass(frozen=True)
class Exam:
    """One chest radiograph examination of the demo patient.

    ``heart`` scales the cardiac silhouette (1 today); ``shift`` moves the patient on the
    detector (mm, right and down); ``noise_seed`` None draws the noise after the anatomy from
    the view's generator (the current exam), a number gives the prior its own noise.
    """

    study: Study
    heart: float
    shift: tuple[float, float]
    noise_seed: int | None
    time: str


EXAMS = (
    Exam(STUDY, 1.0, (0.0, 0.0), None, "1110"),
    Exam(PRIOR, 0.86, (-7.0, 9.0), 2024, "0945"),
)


def _grid(shift: tuple[float, float] = (0.0, 0.0)) -> Canvas:
    s = DETECTOR_SPACING * WORK
    return Canvas(ROWS // WORK, COLS // WORK, s, -(COLS // WORK - 1) / 2 * s - shift[0], -shift[1])


def _lung(c: Canvas, xc: float, yc: float, rx: float, ry: float, depth: float, dome) -> None:
    """Add the air path of a lung whose base follows ``dome(x)`` (a y per x) to ``c``."""
    box = c._box(xc, yc, rx, ry)
    if box is None:
        return
    rs, cs, xs, ys = box
    x, y = xs + xc, ys + yc
    shape = np.sqrt(np.maximum(1.0 - (xs / rx) ** 2 - (ys / ry) ** 2, 0.0))
    below = y - dome(x)
    # above the dome the lung is full depth; behind it the posterior recess thins out
    base = np.where(below < 0, 1.0, 0.45 * np.exp(-np.maximum(below, 0) / 30.0))
    c.img[rs, cs] += depth * shape * base


def _layer(c: Canvas) -> Canvas:
    return Canvas(*c.img.shape, c.spacing, c.x0, c.y0)


def _chest(c: Canvas, dome, lungs, heart, hila, scale_x: float = 1.0, seed: int = 0) -> None:
    """Lungs, the heart that displaces their air, and the vessels inside them.

    ``lungs`` and ``heart`` draw path lengths onto a blank canvas; the heart can only take
    the place of air that is there, so it never adds density where there is no lung.
    """
    air, solid, vessels = _layer(c), _layer(c), _layer(c)
    lungs(air)
    heart(solid)
    x = c.x0 + c.spacing * np.arange(c.img.shape[1], dtype=np.float32)
    y = c.y0 + c.spacing * np.arange(c.img.shape[0], dtype=np.float32)
    solid.img *= np.clip((dome(x)[None, :] - y[:, None]) / 2.0 + 0.5, 0.0, 1.0)
    _vessels(vessels, np.random.default_rng(seed), hila, scale_x)
    c.img -= air.img - np.minimum(solid.img, 0.95 * air.img)
    c.img += vessels.img * np.clip(air.img / 40.0, 0.0, 1.0)


def _vessels(c: Canvas, rng: np.random.Generator, hila, scale_x: float = 1.0) -> None:
    """Lung markings: branching vessels from each hilum, tapering to the periphery."""
    for hx, hy, side in hila:
        stack = [
            ((hx + side * 12 * math.cos(a), hy + 14 * math.sin(a)), a, 3.0, 0)
            for a in np.linspace(-2.2, 2.2, 7)
        ]
        while stack:
            (x, y), a, r, gen = stack.pop()
            length = rng.uniform(20, 34) * 0.85**gen
            dx = side * math.cos(a) * scale_x
            end = (x + dx * length, y + math.sin(a) * length * 1.2)
            c.tube_bump([(x, y), end], r, 2 * r * 2.2, 0.9)
            if r > 1.0 and gen < 5:
                for turn in (-0.35, 0.35):
                    stack.append((end, a + turn + rng.normal(0, 0.15), r * 0.75, gen + 1))


def _spine_pa(c: Canvas) -> None:
    for k in range(16):
        y = 40 + 27 * k
        c.bump(0, y, 22, 11.5, 14 * BONE, 4)  # vertebral body
        for side in (-1, 1):
            c.bump(side * 15, y - 3, 4, 5.5, 5 * BONE)  # pedicles
        c.bump(0, y + 10, 3.5, 8, 5 * BONE)  # spinous process


def _ribs_pa(c: Canvas) -> None:
    for k in range(10):
        yp = 92 + 23 * k
        w = 0.75 + 0.25 * min(k, 4) / 4  # the upper ribs are shorter
        for side in (-1, 1):
            post = [(15, yp), (60 * w, yp - 14), (110 * w, yp - 6), (145 * w, yp + 14),
                    (155 * w, yp + 42)]  # fmt: skip
            ant = [(155 * w, yp + 42), (135 * w, yp + 62), (85 * w, yp + 82), (45, yp + 98)]
            c.tube_bump([(side * x, y) for x, y in post], 5.0, 10 * BONE, 0.3)
            c.tube_bump([(side * x, y) for x, y in ant], 5.5, 6 * BONE, 0.25)


def pa_projection(rng: np.random.Generator, exam: Exam = EXAMS[0]) -> np.ndarray:
    """Water-equivalent path lengths (mm) of the PA view on the quarter-resolution grid."""
    c = _grid(exam.shift)
    k = exam.heart
    c.bump(0, 330, 168, 300, 230, 4)  # trunk
    c.tube_bump([(0, -60), (0, 60)], 58, 110, 0.0)  # neck
    for side in (-1, 1):
        c.tube_bump([(side * 180, 60), (side * 186, 330)], 38, 70, 0.0)  # arms
        c.bump(side * 160, 85, 26, 28, 30 * BONE)  # humeral heads
        c.bump(side * 145, 150, 38, 75, 10 * BONE)  # scapulae

    def dome(x: np.ndarray) -> np.ndarray:
        right = 340 - 42 * np.sqrt(np.maximum(0.0, 1 - ((x + 75) / 95) ** 2))
        left = 352 - 40 * np.sqrt(np.maximum(0.0, 1 - ((x - 75) / 95) ** 2))
        return np.where(x < 0, right, left)

    def lungs(a: Canvas) -> None:
        for side in (-1, 1):
            _lung(a, side * 78, 215, 80, 172, 120, dome)

    heart = (30 - 50 * (1 - k), 262 + 30 * (1 - k), 90 * k, 66 * k**0.5, 110)  # mostly left
    _chest(c, dome, lungs, lambda h: h.bump(*heart),
           [(-50, 230, -1), (55, 225, 1)], 1.0, int(rng.integers(1 << 30)))  # fmt: skip
    c.bump(-8, 200, 26, 55, 35)  # mediastinum, great vessels
    c.bump(34, 168, 20, 18, 35)  # aortic knob
    c.bump(0, 110, 9, 70, -16)  # trachea
    for side in (-1, 1):
        c.tube_bump([(0, 178), (side * 28, 205)], 6, -10, 0.2)  # main bronchi
    c.bump(62, 380, 32, 17, -45)  # gastric bubble
    _spine_pa(c)
    _ribs_pa(c)
    for side in (-1, 1):  # clavicles
        c.tube_bump([(side * 18, 88), (side * 70, 80), (side * 120, 64), (side * 152, 70)], 7,
                    13 * BONE, 0.35)  # fmt: skip
    return c.img


def lateral_projection(rng: np.random.Generator, exam: Exam = EXAMS[0]) -> np.ndarray:
    """Path lengths of the left lateral view; x runs anterior (-) to posterior (+)."""
    c = _grid((exam.shift[0] * 0.5, exam.shift[1]))  # y: head to feet
    k = exam.heart
    c.bump(10, 330, 132, 300, 330, 4)  # trunk, seen across its width
    c.tube_bump([(20, -60), (20, 60)], 55, 110, 0.0)  # neck
    c.tube_bump([(-30, -20), (-60, 120)], 35, 120, 0.0)  # raised arms, soft tissue
    c.tube_bump([(-35, -20), (-62, 110)], 11, 14 * BONE, 0.3)  # humeri

    def dome(x: np.ndarray) -> np.ndarray:  # anterior high, posterior recess low
        return 330 - 35 * np.sqrt(np.maximum(0.0, 1 - ((x + 10) / 100) ** 2)) + 0.25 * x

    _chest(c, dome, lambda a: _lung(a, 5, 215, 100, 172, 210, dome),
           lambda h: h.bump(-45 - 40 * (1 - k), 268 + 25 * (1 - k), 64 * k, 66 * k**0.5, 150),
           [(0, 220, -1), (0, 225, 1)], 0.8, int(rng.integers(1 << 30)))  # fmt: skip
    c.bump(-10, 185, 24, 45, 40)  # ascending aorta and arch
    c.tube_bump([(-5, 40), (5, 180)], 9, -25, 0.0)  # trachea
    for k in range(16):  # vertebral bodies, posterior elements
        y = 40 + 27 * k
        x = 72 - 6 * math.sin(k / 4)
        c.bump(x, y, 17, 11.5, 22 * BONE, 4)
        c.bump(x + 32, y + 6, 8, 6, 8 * BONE)
    c.tube_bump([(-112, 95), (-108, 175), (-100, 275)], 7, 20 * BONE, 0.35)  # sternum
    for k in range(10):  # posterior ribs of both sides, slightly apart by magnification
        yp = 92 + 23 * k
        for dx in (0, 8):
            c.tube_bump([(95 + dx, yp), (60 + dx, yp + 20), (-20, yp + 60), (-90, yp + 85)],
                        5, 2.5 * BONE, 0.3)  # fmt: skip
    c.bump(60, 150, 45, 80, 14 * BONE)  # scapulae
    c.bump(-45, 370, 30, 16, -50)  # gastric bubble
    return c.img


def _present(path_mm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Processing for presentation: equalise, resample to the detector, add noise, 12 bits."""
    body = path_mm > 5
    low = box_blur(path_mm, 35)
    eq = path_mm - 0.35 * low
    eq += 0.3 * (path_mm - box_blur(path_mm, 3))  # edge enhancement
    big = upsample(eq, ROWS, COLS)
    lo, hi = np.percentile(eq[body], (1, 99.5))
    out = 300 + (big - lo) * (3300 / max(hi - lo, 1e-3))
    out += rng.standard_normal(out.shape, dtype=np.float32) * 14
    out[upsample(body.astype(np.float32), ROWS, COLS) < 0.02] = 0  # direct exposure stays black
    out += 40 + rng.standard_normal(out.shape, dtype=np.float32) * 4
    return np.clip(np.rint(out), 0, 4095).astype(np.uint16)


def dx_instances(exam: Exam = EXAMS[0]) -> Iterator[Dataset]:
    """The PA and lateral views of ``exam`` (the current one by default)."""
    for key, number, description, view, view_code, orientation, photometric, seed in VIEWS:
        rng = np.random.default_rng(seed)  # the same seed: the same vessels in both exams
        path = pa_projection(rng, exam) if view == "PA" else lateral_projection(rng, exam)
        if exam.noise_seed is not None:
            rng = np.random.default_rng([exam.noise_seed, seed])
        value = _present(path, rng)
        series = Series(exam.study, key, number, "DX", description, "CHEST",
                        f"{exam.time}{number}0")  # fmt: skip
        ds = new_instance(series, DX_FOR_PRESENTATION, 0)
        inverse = photometric == "MONOCHROME1"
        stored = 4095 - value if inverse else value
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        ds.PresentationIntentType = "FOR PRESENTATION"
        ds.PatientOrientation = orientation
        ds.ImageLaterality = "U"
        ds.AnatomicRegionSequence = sequence(code("51185008", "SCT", "Chest"))
        ds.ViewPosition = view
        ds.ViewCodeSequence = sequence(code(view_code[0], "SCT", view_code[1]))
        ds.PatientPosition = ""
        ds.AcquisitionContextSequence = sequence()
        ds.KVP = 125 if view == "PA" else 125
        ds.ExposureTime = 8 if view == "PA" else 20
        ds.XRayTubeCurrent = 320
        ds.Exposure = 3 if view == "PA" else 6
        ds.DistanceSourceToDetector = SID
        ds.DistanceSourceToPatient = SOD
        ds.EstimatedRadiographicMagnificationFactor = round(SID / SOD, 4)
        ds.PositionerType = "COLUMN"
        ds.DetectorType = "SCINTILLATOR"
        ds.DetectorConfiguration = "AREA"
        ds.ImagerPixelSpacing = [DETECTOR_SPACING, DETECTOR_SPACING]
        spacing = round(DETECTOR_SPACING * SOD / SID, 6)
        ds.PixelSpacing = [spacing, spacing]
        ds.PixelSpacingCalibrationType = "GEOMETRY"
        ds.PixelSpacingCalibrationDescription = "magnification at the patient's mid-plane"
        ds.RescaleIntercept = 0
        ds.RescaleSlope = 1
        ds.RescaleType = "US"
        ds.PixelIntensityRelationship = "LOG"
        ds.PixelIntensityRelationshipSign = 1 if inverse else -1
        ds.PresentationLUTShape = "INVERSE" if inverse else "IDENTITY"
        ds.AcquisitionDeviceProcessingDescription = "DEMO CHEST EQUALISATION"
        centre, width = 1950, 3800
        if inverse:
            centre = 4095 - centre
        set_windows(ds, [(centre, width, "DEFAULT")])
        set_pixels(ds, stored, photometric)
        yield ds
