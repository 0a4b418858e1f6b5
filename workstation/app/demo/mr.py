"""The MR demo: a brain study with T1 SAG, T2 AX, FLAIR AX, DWI AX (b=1000) and ADC AX.

The head is an analytic model evaluated at each pixel's patient position, so the sagittal and
axial series show one anatomy: scalp fat, skull, cerebrospinal fluid (around the brain, in the
sulci, the interhemispheric fissure and the ventricles), cortex folded into gyri, white matter,
deep grey nuclei, cerebellum, brainstem, eyes, a few small chronic white-matter lesions (bright
on T2 and FLAIR only) and an acute infarct in the right hemisphere (bright on T2, FLAIR and
DWI, dark on ADC). Signal per tissue and sequence, Rician noise, a smooth coil bias field.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import MRImageStorage

from workstation.app.demo.headers import (
    Patient,
    Series,
    Study,
    demo_uid,
    new_instance,
    set_frame_of_reference,
    set_pixels,
    set_windows,
)

MATRIX = 256
FOV = 230.0
PATIENT = Patient("DEMO^BRAIN MR", "DEMO-MR-0003", "19640117", "F", "061Y", 1.68, 63)
STUDY = Study(
    "mr", PATIENT, "20250312", "160000", "DEMO-MR-25", "MR BRAIN WITHOUT CONTRAST", "2503"
)

# tissues: background, scalp fat, skull, CSF, grey matter, white matter, deep grey, eye,
# chronic lesion, acute infarct, muscle
TISSUES = ("air", "fat", "bone", "csf", "gm", "wm", "deep", "eye", "chronic", "acute", "muscle")
SIGNAL = {  # per sequence, in tissue order
    "T1": (0, 1000, 40, 180, 520, 780, 580, 150, 520, 430, 420),
    "T2": (0, 800, 40, 1700, 700, 420, 560, 1700, 1200, 1250, 300),
    "FLAIR": (0, 650, 40, 90, 700, 480, 600, 110, 1250, 1350, 300),
    "DWI": (0, 40, 10, 70, 470, 410, 450, 70, 480, 1400, 150),
    "ADC": (0, 150, 0, 3000, 850, 720, 780, 2900, 1100, 420, 1300),
}


@dataclass(frozen=True)
class MRSeries:
    key: str
    number: int
    description: str
    sequence: str  # key of SIGNAL
    plane: str  # "sag" or "ax"
    slices: int
    thickness: float
    gap: float
    tr: float
    te: float
    ti: float | None
    scanning: list[str]
    variant: list[str]
    options: list[str]
    image_type: list[str]
    noise: float


SERIES = (
    MRSeries("t1sag", 2, "T1 SAG", "T1", "sag", 20, 5.0, 1.0, 550, 10, None, ["SE"], ["SK"],
             [], ["ORIGINAL", "PRIMARY", "OTHER"], 14),
    MRSeries("t2ax", 3, "T2 AX", "T2", "ax", 24, 5.0, 1.0, 4500, 95, None, ["SE"], ["SK"],
             [], ["ORIGINAL", "PRIMARY", "OTHER"], 16),
    MRSeries("flairax", 4, "FLAIR AX", "FLAIR", "ax", 24, 5.0, 1.0, 9000, 85, 2500,
             ["SE", "IR"], ["SK"], ["FS"], ["ORIGINAL", "PRIMARY", "OTHER"], 16),
    MRSeries("dwiax", 5, "DWI AX", "DWI", "ax", 24, 5.0, 1.0, 5200, 80, None, ["EP"],
             ["SK", "SP"], ["FS"], ["ORIGINAL", "PRIMARY", "OTHER"], 30),
    MRSeries("adcax", 6, "ADC AX", "ADC", "ax", 24, 5.0, 1.0, 5200, 80, None, ["EP"],
             ["SK", "SP"], ["FS"], ["DERIVED", "PRIMARY", "DIFFUSION MAP", "ADC"], 60),
)  # fmt: skip


def _soft(q: np.ndarray, width: float = 0.04) -> np.ndarray:
    """1 inside (q < 1), 0 outside, with an edge about ``width`` wide in q."""
    return np.clip((1.0 - q) / width + 0.5, 0.0, 1.0)


def _ell(x, y, z, c, r) -> np.ndarray:
    return ((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((z - c[2]) / r[2]) ** 2


def tissue_fractions(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Fractions of each tissue (first axis, in :data:`TISSUES` order) at patient positions."""
    frac = np.zeros((len(TISSUES),) + x.shape, np.float32)
    frac[0] = 1.0

    def paint(tissue: str, alpha: np.ndarray) -> None:
        k = TISSUES.index(tissue)
        frac[:] *= 1.0 - alpha
        frac[k] += alpha

    head = _ell(x, y, z, (0, 0, 5), (80, 100, 85))
    paint("fat", _soft(head, 0.03))
    paint("muscle", _soft(_ell(x, y, z, (0, 40, -70), (60, 50, 40))) * (z < -40))
    paint("bone", _soft(_ell(x, y, z, (0, 0, 5), (75, 95, 80)), 0.03))
    base = np.clip((z + 28 + 0.15 * np.maximum(y, 0)) / 2.0 + 0.5, 0, 1)  # skull base
    inner = _soft(_ell(x, y, z, (0, 0, 5), (71, 91, 76)), 0.03)
    paint("muscle", inner * (1 - base))
    paint("air", _soft(_ell(x, y, z, (0, -62, -38), (22, 16, 14)), 0.1))  # sinuses
    paint("csf", _soft(_ell(x, y, z, (0, 0, 8), (69, 89, 71)), 0.03) * base)
    paint("csf", _soft(_ell(x, y, z, (0, 46, -38), (55, 37, 27)), 0.05))  # posterior fossa
    fold = np.sin(x / 4.2) * np.sin(y / 5.0) * np.cos(z / 4.6) + 0.5 * np.sin((x - y) / 7 + z / 9)
    cerebrum = _ell(x, y, z, (0, 0, 8), (66, 86, 68))
    brain = _soft(cerebrum, 0.03) * base
    sulci = np.clip((fold - 0.55) / 0.25, 0, 1) * np.clip((cerebrum - 0.62) / 0.1, 0, 1)
    paint("gm", brain * (1 - sulci))
    paint("gm", _soft(_ell(x, y, z, (0, 52, -38), (52, 34, 24)), 0.05))  # cerebellum
    paint("wm", _soft(_ell(x, y, z, (0, 52, -36), (30, 18, 14)), 0.1))  # cerebellar white
    paint("wm", _soft(_ell(x, y, z, (0, 18, -45), (14, 14, 34)), 0.1))  # brainstem
    wm = _soft(cerebrum / (0.6 - 0.12 * fold), 0.08) * (z > -22)
    paint("wm", wm)
    fissure = np.clip(1.0 - np.abs(x) / 1.5, 0, 1) * ((z > 30) | (np.abs(y) > 60)) * brain
    paint("csf", fissure)
    for side in (-1, 1):
        paint("deep", _soft(_ell(x, y, z, (side * 16, 6, 2), (10, 15, 10)), 0.15))  # thalamus
        paint("deep", _soft(_ell(x, y, z, (side * 22, -14, 4), (7, 14, 10)), 0.15))  # basal g.
        horn = _ell(x, y, z, (side * 10, -2, 16), (6, 32, 9))
        paint("csf", _soft(horn, 0.12))  # lateral ventricles
        paint("csf", _soft(_ell(x, y, z, (side * 13, 28, 12), (5, 9, 10)), 0.15))  # trigones
        paint("eye", _soft(_ell(x, y, z, (side * 32, -78, -28), (12, 12, 12)), 0.08))
    paint("csf", _soft(_ell(x, y, z, (0, 8, -2), (2.5, 12, 7)), 0.2))  # third ventricle
    paint("csf", _soft(_ell(x, y, z, (0, 36, -36), (6, 4, 6)), 0.2))  # fourth ventricle
    for c in ((-24, -20, 26), (20, 14, 30), (-18, 30, 22)):  # small chronic lesions
        paint("chronic", _soft(_ell(x, y, z, c, (3.5, 3.5, 3)), 0.3))
    paint("acute", _soft(_ell(x, y, z, (-38, -8, 28), (11, 18, 13)), 0.12) * (brain > 0.5))
    return frac


def _plane(series: MRSeries, k: int) -> tuple[list[float], list[float], np.ndarray]:
    """ImagePositionPatient, ImageOrientationPatient and the pixel positions of slice k."""
    step = series.thickness + series.gap
    s = FOV / MATRIX
    offset = (k - (series.slices - 1) / 2) * step
    half = (MATRIX - 1) / 2 * s
    grid = np.arange(MATRIX, dtype=np.float32) * s
    if series.plane == "sag":  # rows run posterior, columns down
        ipp = [offset, -half, half + 5.0]
        iop = [0.0, 1.0, 0.0, 0.0, 0.0, -1.0]
        y, z = np.meshgrid(grid - half, half + 5.0 - grid)
        x = np.full_like(y, offset)
    else:
        zc = offset + 8.0
        ipp = [-half, -half, zc]
        iop = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        x, y = np.meshgrid(grid - half, grid - half)
        z = np.full_like(x, zc)
    return ipp, iop, np.stack([x, y, z])


def mr_instances() -> Iterator[Dataset]:
    frame_uid = demo_uid(STUDY.key, "frame")
    cache: dict[tuple[str, int], np.ndarray] = {}
    for series in SERIES:
        rng = np.random.default_rng(100 + series.number)
        meta = Series(STUDY, series.key, series.number, "MR", series.description, "BRAIN",
                      f"16{series.number:02d}00")  # fmt: skip
        signal = np.asarray(SIGNAL[series.sequence], np.float32)
        for k in range(series.slices):
            ipp, iop, pos = _plane(series, k)
            key = (series.plane, k)
            if key not in cache:
                cache[key] = tissue_fractions(*pos)
            clean = np.tensordot(signal, cache[key], axes=1)
            if series.sequence != "ADC":  # receive-coil shading, brighter at the surface
                r2 = (pos[0] ** 2 + pos[1] ** 2 + (pos[2] - 5) ** 2) / 90.0**2
                clean *= 0.85 + 0.25 * np.clip(r2, 0, 1.5)
            n1 = rng.standard_normal(clean.shape, dtype=np.float32) * series.noise
            n2 = rng.standard_normal(clean.shape, dtype=np.float32) * series.noise
            magnitude = np.sqrt((clean + n1) ** 2 + n2**2)  # Rician
            if series.sequence == "ADC":
                magnitude = np.where(clean > 60, magnitude, 0.0)  # masked background
            stored = np.clip(np.rint(magnitude), 0, 4095).astype(np.uint16)
            yield _dataset(meta, series, k, ipp, iop, frame_uid, stored)


def _dataset(meta, series: MRSeries, k, ipp, iop, frame_uid, stored) -> Dataset:
    ds = new_instance(meta, MRImageStorage, k)
    ds.ImageType = series.image_type
    ds.PatientPosition = "HFS"
    set_frame_of_reference(ds, frame_uid)
    ds.ScanningSequence = series.scanning
    ds.SequenceVariant = series.variant
    ds.ScanOptions = series.options or ""
    ds.MRAcquisitionType = "2D"
    ds.SequenceName = {"T1": "se2d1", "T2": "tse2d1_15", "FLAIR": "tir2d1_21"}.get(
        series.sequence, "ep_b1000t"
    )
    ds.AngioFlag = "N"
    ds.SliceThickness = series.thickness
    ds.RepetitionTime = series.tr
    ds.EchoTime = series.te
    if series.ti is not None:
        ds.InversionTime = series.ti
    ds.NumberOfAverages = 1
    ds.ImagingFrequency = 63.87
    ds.ImagedNucleus = "1H"
    ds.EchoNumbers = 1
    ds.MagneticFieldStrength = 1.5
    ds.SpacingBetweenSlices = series.thickness + series.gap
    ds.EchoTrainLength = {"T1": 1, "T2": 15, "FLAIR": 21}.get(series.sequence, 64)
    ds.PercentSampling = 100
    ds.PercentPhaseFieldOfView = 100
    ds.PixelBandwidth = 200 if series.scanning != ["EP"] else 1500
    ds.ReceiveCoilName = "HEAD 8"
    ds.TransmitCoilName = "BODY"
    ds.AcquisitionMatrix = [0, MATRIX, MATRIX, 0]
    ds.InPlanePhaseEncodingDirection = "COL" if series.plane == "sag" else "ROW"
    ds.FlipAngle = 90
    ds.SAR = 0.8
    if series.sequence == "DWI":
        ds.DiffusionBValue = 1000
    ds.ImagePositionPatient = [round(v, 4) for v in ipp]
    ds.ImageOrientationPatient = iop
    ds.SliceLocation = round(ipp[0] if series.plane == "sag" else ipp[2], 4)
    ds.PixelSpacing = [FOV / MATRIX, FOV / MATRIX]
    centre = {"T1": 500, "T2": 700, "FLAIR": 650, "DWI": 600, "ADC": 1400}[series.sequence]
    set_windows(ds, [(centre, 2 * centre, "BRAIN")])
    set_pixels(ds, stored)
    return ds
