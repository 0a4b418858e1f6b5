"""The screening mammography demo: RCC, LCC, RMLO and LMLO, and the same four views a year
earlier; the current shows a new small spiculated mass in the upper outer left breast.

Digital Mammography X-Ray Image Storage - For Presentation, 1600x1200, 12 bits, 0.15 mm
detector pixels. Each breast is drawn once per view in a canonical frame (chest wall at the
first column, see :mod:`workstation.app.demo.mammo_anatomy`) and placed as a real image of
that view is: Patient Orientation ``P\\L`` (RCC), ``A\\R`` (LCC), ``P\\FL`` (RMLO), ``A\\FR``
(LMLO), i.e. the chest wall at the right edge of a right breast's image and at the left edge of
a left breast's, lateral (CC) or the axilla (MLO) at the top, as PS3.3 C.8.11.7 and the
conventional back-to-back display expect.
"""

from __future__ import annotations

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
from workstation.app.demo.mammo_anatomy import (
    SPACING,
    BreastShape,
    Mass,
    Pose,
    breast_density,
)

MG_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.2"
SID, SOD = 650.0, 625.0  # source to detector, source to the breast's mid-plane
PATIENT = Patient("DEMO^SCREENING MAMMO", "DEMO-MG-0004", "19680522", "F", "056Y", 1.66, 64)
CURRENT = Study("mg-current", PATIENT, "20250318", "083000", "DEMO-MG-25",
                "MG SCREENING BILATERAL", "2504")  # fmt: skip
PRIOR = Study("mg-prior", PATIENT, "20240320", "084500", "DEMO-MG-24",
              "MG SCREENING BILATERAL", "2404")  # fmt: skip

#: View codes (PS3.16 CID 4014) by View Position.
VIEW_CODES = {"CC": ("399162004", "cranio-caudal"), "MLO": ("399368009", "medio-lateral oblique")}


@dataclass(frozen=True)
class MGView:
    """One of the four screening views: series key and number, laterality, view and the
    Patient Orientation of its rows and columns."""

    key: str
    number: int
    laterality: str
    view: str
    orientation: tuple[str, str]


VIEWS = (
    MGView("rcc", 1, "R", "CC", ("P", "L")),
    MGView("lcc", 2, "L", "CC", ("A", "R")),
    MGView("rmlo", 3, "R", "MLO", ("P", "FL")),
    MGView("lmlo", 4, "L", "MLO", ("A", "FR")),
)

_CC = ((-90, 98), (-60, 96), (-30, 104), (0, 114), (30, 100), (60, 90), (90, 92))
_MLO = ((-90, 260), (-70, 170), (-50, 135), (-30, 116), (-10, 116), (10, 118), (30, 112),
        (50, 100), (70, 96), (90, 100))  # fmt: skip
#: The breasts (one anatomy per side and view, the same in both exams).
SHAPES = {
    ("R", "CC"): BreastShape("CC", 120, _CC, 3, 112, 0.55, 501),
    ("L", "CC"): BreastShape("CC", 118, tuple((a, r * 1.03) for a, r in _CC), 2, 110, 0.58, 502),
    ("R", "MLO"): BreastShape("MLO", 110, _MLO, 12, 130, 0.55, 503, (62, 150)),
    ("L", "MLO"): BreastShape(
        "MLO", 108, tuple((a, r * 1.03) for a, r in _MLO), 11, 128, 0.58, 504, (66, 156)
    ),  # fmt: skip
}


@dataclass(frozen=True)
class MGExam:
    """One screening exam: its study, how each breast lay, the mass (in the left breast's CC
    and MLO canonical frames) if there is one, and the seed of its noise."""

    study: Study
    poses: dict[str, Pose]
    mass: dict[str, Mass] | None
    noise_seed: int
    kvp: dict[str, float]


_MASS = {  # upper outer left breast, about 70 mm from the nipple in both views
    "CC": Mass(52.0, 64.0, 4.4, 14, 12.0, 77),
    "MLO": Mass(56.0, 84.0, 4.4, 14, 12.0, 78),
}
EXAMS = (
    MGExam(CURRENT, {"R": Pose((0, 0), 56.0), "L": Pose((0, 0), 54.0)}, _MASS, 2025,
           {"R": 30, "L": 29}),
    MGExam(PRIOR, {"R": Pose((3, -2), 59.0), "L": Pose((-2, 2), 57.0)}, None, 2024,
           {"R": 30, "L": 30}),
)  # fmt: skip


def mammogram_pixels(view: MGView, exam: MGExam) -> np.ndarray:
    """Stored values (uint16, 12 bits) of one view, oriented as its Patient Orientation says."""
    shape = SHAPES[(view.laterality, view.view)]
    mass = exam.mass.get(view.view) if exam.mass and view.laterality == "L" else None
    signal = breast_density(shape, exam.poses[view.laterality], mass)
    rng = np.random.default_rng([exam.noise_seed, view.number])
    out = 1500.0 + 1700.0 * signal
    out += rng.standard_normal(out.shape, dtype=np.float32) * np.where(signal > -1.5, 11.0, 3.0)
    out = np.clip(np.rint(np.maximum(out, 28.0)), 0, 4095).astype(np.uint16)
    if view.laterality == "R":  # chest wall on the right: rows run towards posterior
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def mg_instances(exam: MGExam = EXAMS[0]) -> Iterator[Dataset]:
    """The four views of ``exam`` (the current one by default), one series each."""
    for view in VIEWS:
        stored = mammogram_pixels(view, exam)
        time = f"{exam.study.time[:2]}{int(exam.study.time[2:4]) + view.number:02d}00"
        description = f"{view.laterality} {view.view}"
        series = Series(exam.study, view.key, view.number, "MG", description, "BREAST", time)
        ds = new_instance(series, MG_FOR_PRESENTATION, 0)
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        ds.PresentationIntentType = "FOR PRESENTATION"
        ds.PatientOrientation = list(view.orientation)
        ds.ImageLaterality = view.laterality
        ds.AnatomicRegionSequence = sequence(code("76752008", "SCT", "Breast"))
        ds.ViewPosition = view.view
        value, meaning = VIEW_CODES[view.view]
        view_code = code(value, "SCT", meaning)
        view_code.ViewModifierCodeSequence = sequence()
        ds.ViewCodeSequence = sequence(view_code)
        ds.AcquisitionContextSequence = sequence()
        ds.PositionerType = "MAMMOGRAPHIC"
        ds.OrganExposed = "BREAST"
        ds.BreastImplantPresent = "NO"
        ds.PartialView = "NO"
        _acquisition(ds, exam, view)
        ds.ImagerPixelSpacing = [SPACING, SPACING]
        spacing = round(SPACING * SOD / SID, 6)
        ds.PixelSpacing = [spacing, spacing]
        ds.PixelSpacingCalibrationType = "GEOMETRY"
        ds.PixelSpacingCalibrationDescription = "magnification at the breast's mid-plane"
        ds.RescaleIntercept = 0
        ds.RescaleSlope = 1
        ds.RescaleType = "US"
        ds.PixelIntensityRelationship = "LOG"
        ds.PixelIntensityRelationshipSign = -1
        ds.PresentationLUTShape = "IDENTITY"
        ds.AcquisitionDeviceProcessingDescription = "DEMO MAMMO PRESENTATION"
        set_windows(ds, [(2000, 3200, "NORMAL"), (2250, 2000, "HIGH CONTRAST")])
        set_pixels(ds, stored)
        yield ds


def _acquisition(ds: Dataset, exam: MGExam, view: MGView) -> None:
    """X-Ray acquisition, generation, filtration, grid and detector attributes."""
    thickness = exam.poses[view.laterality].thickness_mm
    ds.KVP = exam.kvp[view.laterality]
    ds.ExposureTime = 1100 if view.view == "CC" else 1250
    ds.XRayTubeCurrent = 110
    ds.Exposure = 121 if view.view == "CC" else 138
    ds.ExposureInuAs = ds.Exposure * 1000
    ds.AnodeTargetMaterial = "TUNGSTEN"
    ds.FilterMaterial = "RHODIUM"
    ds.FilterThicknessMinimum = 0.05
    ds.FilterThicknessMaximum = 0.05
    ds.Grid = "RECIPROCATING"
    ds.BodyPartThickness = thickness
    ds.CompressionForce = 105 if view.view == "CC" else 120
    ds.HalfValueLayer = 0.52
    ds.EntranceDoseInmGy = round(0.09 * thickness, 2)
    ds.OrganDose = 0.014
    ds.DistanceSourceToDetector = SID
    ds.DistanceSourceToPatient = SOD
    ds.EstimatedRadiographicMagnificationFactor = round(SID / SOD, 4)
    ds.DetectorType = "DIRECT"
    ds.DetectorConfiguration = "AREA"
    ds.FocalSpots = 0.3
