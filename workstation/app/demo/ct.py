"""The CT demo: a contrast-enhanced chest CT and its prior a year earlier (a growing nodule).

512x512 axial slices, 0.7 mm pixels, 2.5 mm thick and contiguous, CT Image Storage with HU by
Rescale Intercept -1024 over 12 stored bits, soft tissue and lung windows in the header.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage

from workstation.app.demo import ct_anatomy
from workstation.app.demo.headers import (
    Patient,
    Series,
    Study,
    code,
    demo_uid,
    new_instance,
    sequence,
    set_frame_of_reference,
    set_pixels,
    set_windows,
)
from workstation.app.demo.shapes import Canvas, smooth_noise

MATRIX = 512
SPACING = 0.7
THICKNESS = 2.5
SLICES = 120
NOISE_HU = 11.0

PATIENT = Patient("DEMO^CHEST CT", "DEMO-CT-0001", "19580423", "F", "066Y", 1.64, 68)
CURRENT = Study(
    "ct-current", PATIENT, "20250314", "093000", "DEMO-CT-25", "CT CHEST WITH CONTRAST", "2501"
)
PRIOR = Study("ct-prior", PATIENT, "20240312", "141500", "DEMO-CT-24", "CT CHEST WITH CONTRAST", "2401")  # fmt: skip


@dataclass(frozen=True)
class CTAcquisition:
    """Where the patient lay and how big the nodule was."""

    study: Study
    shift: tuple[float, float, float]  # body -> patient coordinates (table position)
    first_z: float  # patient z of the lowest slice
    nodule_diameter: float
    seed: int

    @property
    def series(self) -> Series:
        return Series(self.study, "axial", 3, "CT", "CHEST 2.5 AX", "CHEST", self.study.time)


ACQUISITIONS = (
    CTAcquisition(CURRENT, (0.0, 0.0, -100.0), -382.5, 13.0, 11),
    CTAcquisition(PRIOR, (4.0, -3.0, -104.0), -385.0, 8.0, 12),
)


def ct_instances(acq: CTAcquisition) -> Iterator[Dataset]:
    """The slices of one acquisition, feet to head."""
    series = acq.series
    frame_uid = demo_uid(acq.study.key, "frame")
    rng = np.random.default_rng(acq.seed)
    bank = [smooth_noise(rng, (MATRIX, MATRIX), 1) * NOISE_HU for _ in range(4)]
    vessels = ct_anatomy.vessel_tree(7)  # the same patient: the same vessels
    sx, sy, sz = acq.shift
    origin = -(MATRIX - 1) / 2 * SPACING
    yy, xx = np.mgrid[0:MATRIX, 0:MATRIX]
    outside = (yy - (MATRIX - 1) / 2) ** 2 + (xx - (MATRIX - 1) / 2) ** 2 > (MATRIX / 2) ** 2
    for k in range(SLICES):
        z = acq.first_z + k * THICKNESS
        c = Canvas(MATRIX, MATRIX, SPACING, origin - sx, origin - sy, ct_anatomy.AIR)
        ct_anatomy.paint_slice(c, z - sz, vessels, acq.nodule_diameter)
        hu = c.img + np.roll(bank[k % 4], (37 * k, 91 * k), axis=(0, 1))
        stored = np.clip(np.rint(hu + 1024.0), 0, 4095).astype(np.uint16)
        stored[outside] = 0  # outside the reconstruction circle
        yield _dataset(series, k, z, origin, frame_uid, stored)


def _dataset(
    series: Series, k: int, z: float, origin: float, frame_uid: str, stored: np.ndarray
) -> Dataset:
    ds = new_instance(series, CTImageStorage, k)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.PatientPosition = "HFS"
    set_frame_of_reference(ds, frame_uid)
    ds.ContrastBolusAgent = "IOHEXOL 350 MG/ML"
    ds.ContrastBolusRoute = "IV"
    ds.ContrastBolusVolume = 80
    ds.ScanOptions = "HELICAL MODE"
    ds.SliceThickness = THICKNESS
    ds.KVP = 120
    ds.DataCollectionDiameter = 500
    ds.ReconstructionDiameter = MATRIX * SPACING
    ds.DistanceSourceToDetector = 1085.6
    ds.DistanceSourceToPatient = 595
    ds.GantryDetectorTilt = 0
    ds.TableHeight = 160
    ds.RotationDirection = "CW"
    ds.ExposureTime = 500
    ds.XRayTubeCurrent = 180
    ds.Exposure = 90
    ds.FilterType = "BODY FILTER"
    ds.FocalSpots = 1.2
    ds.ConvolutionKernel = "STANDARD"
    ds.SpiralPitchFactor = 0.984
    ds.CTDIvol = 7.8
    ds.CTDIPhantomTypeCodeSequence = sequence(code("113691", "DCM", "IEC Body Dosimetry Phantom"))
    ds.ImagePositionPatient = [origin, origin, z]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.SliceLocation = z
    ds.PixelSpacing = [SPACING, SPACING]
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    set_windows(ds, [(40, 400, "SOFT TISSUE"), (-600, 1500, "LUNG"), (400, 1800, "BONE")])
    set_pixels(ds, stored)
    return ds
