"""A synthetic CT volume with bright markers at known patient points, as arrays or as files."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.uid import generate_uid

from workstation.core.geometry import ImagePlane

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from synthetic import image_dataset, save  # noqa: E402

BACKGROUND = -1000.0
MARKER = 1500.0


@dataclass
class MarkerVolume:
    """Values ``(slices, rows, cols)`` in acquisition order (feet to head for axial), one plane per
    slice, and the patient point of each marker (voxel centre)."""

    values: np.ndarray
    planes: list[ImagePlane]
    markers: dict[str, np.ndarray]
    pixel_mm: float
    spacing_mm: float


def marker_volume(
    cols: int = 64,
    rows: int = 56,
    slices: int = 40,
    pixel_mm: float = 0.8,
    spacing_mm: float = 1.5,
    origin: tuple[float, float, float] = (-20.0, -30.0, 100.0),
    row_dir: tuple[float, float, float] = (1.0, 0.0, 0.0),
    col_dir: tuple[float, float, float] = (0.0, 1.0, 0.0),
) -> MarkerVolume:
    """An axial (or oblique, by ``row_dir``/``col_dir``) stack with three 3x3x3-voxel markers.

    ``centre`` lies in the middle of the volume, ``off_plane`` 6 mm from it along the slice normal
    (4 slices) and 10 voxels aside, ``corner`` near a corner (tells orientations apart).
    """
    values = np.full((slices, rows, cols), BACKGROUND, np.float32)
    vox = {"centre": (40, 20, 25), "off_plane": (30, 30, 29), "corner": (8, 45, 6)}
    for c, r, s in vox.values():
        values[s - 1 : s + 2, r - 1 : r + 2, c - 1 : c + 2] = MARKER
    rd, cd = np.asarray(row_dir, float), np.asarray(col_dir, float)
    rd, cd = rd / np.linalg.norm(rd), cd / np.linalg.norm(cd)
    normal = np.cross(rd, cd)
    o = np.asarray(origin, float)
    planes = [
        ImagePlane(o + k * spacing_mm * normal, rd, cd, (pixel_mm, pixel_mm), rows, cols)
        for k in range(slices)
    ]
    markers = {
        name: o + c * pixel_mm * rd + r * pixel_mm * cd + s * spacing_mm * normal
        for name, (c, r, s) in vox.items()
    }
    return MarkerVolume(values, planes, markers, pixel_mm, spacing_mm)


def write_series(folder, mv: MarkerVolume, description: str = "SYNTH MARKERS") -> list[str]:
    """One CT file per slice (stored = HU + 1024, rescale -1024), in acquisition order."""
    os.makedirs(folder, exist_ok=True)
    study, series, frame_of_reference = generate_uid(), generate_uid(), generate_uid()
    paths = []
    for k, plane in enumerate(mv.planes):
        stored = np.rint(mv.values[k] + 1024).astype(np.uint16)
        ds = image_dataset(
            stored,
            RescaleSlope=1,
            RescaleIntercept=-1024,
            WindowCenter=40,
            WindowWidth=400,
            PatientName="MPR^MARKERS",
            PatientID="MPR1",
            StudyDescription="CT MPR TEST",
            SeriesDescription=description,
            StudyInstanceUID=study,
            SeriesInstanceUID=series,
            FrameOfReferenceUID=frame_of_reference,
            SeriesNumber=3,
            InstanceNumber=k + 1,
            ImageOrientationPatient=[*plane.row_dir, *plane.col_dir],
            ImagePositionPatient=[float(x) for x in plane.origin],
            PixelSpacing=[mv.pixel_mm, mv.pixel_mm],
            SliceThickness=mv.spacing_mm,
        )
        paths.append(save(ds, os.path.join(folder, f"slice_{k:03d}.dcm")))
    return paths
