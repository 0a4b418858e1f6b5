"""The ultrasound demo: a right upper quadrant cine loop (liver and right kidney, breathing).

Ultrasound Multi-frame Image Storage, 48 frames of 480x640 MONOCHROME2, 8 bits, 20 frames a
second (one breath, so the loop is seamless). A curved-array sector: skin, subcutaneous fat
with septa, abdominal wall muscle, the peritoneal line, liver with portal and hepatic veins,
the gallbladder with posterior enhancement, the right kidney (capsule, cortex, pyramids,
echogenic sinus) behind Morison's pouch and the muscles beyond it. Echoes are a reflectivity
map (dB) times fully developed speckle (a complex Gaussian field blurred by an anisotropic
point spread function), both fixed in the tissue, so the speckle moves with the organs as they
slide under the still abdominal wall; log compression maps 60 dB to 8 bits.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from pydicom.dataset import Dataset

from workstation.app.demo.headers import (
    Patient,
    Series,
    Study,
    new_instance,
    sequence,
    set_windows,
)
from workstation.app.demo.shapes import Canvas, sample_bilinear, smooth_noise

US_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"
ROWS, COLS, FRAMES = 480, 640, 48
PIXEL = 0.32  # mm per display pixel
FRAME_TIME = 50.0  # ms
APEX_RADIUS, SKIN_Y, DEPTH, HALF_ANGLE = 45.0, 6.0, 150.0, math.radians(33)
CELL = 0.2  # mm per cell of the tissue grid
X_RANGE, Z_RANGE = (-135.0, 135.0), (-4.0, 170.0)  # tissue grid extent (mm, lateral and depth)
RANGE_DB = 60.0

PATIENT = Patient("DEMO^ABDOMEN US", "DEMO-US-0005", "19790611", "M", "045Y", 1.77, 79)
STUDY = Study("us", PATIENT, "20250320", "101500", "DEMO-US-25", "US ABDOMEN LIMITED RUQ", "2505")
SERIES = Series(STUDY, "ruq", 1, "US", "RUQ LIVER RIGHT KIDNEY CINE", "ABDOMEN", "101700")


def _reflectivity(rng: np.random.Generator) -> Canvas:
    """Echo level (dB relative to liver) on the tissue grid: x lateral (the patient's head to
    the left of the image), y depth below the skin."""
    nx = int((X_RANGE[1] - X_RANGE[0]) / CELL)
    nz = int((Z_RANGE[1] - Z_RANGE[0]) / CELL)
    c = Canvas(nz, nx, CELL, X_RANGE[0], Z_RANGE[0], 0.0)  # liver everywhere to start
    c.img += 1.5 * smooth_noise(rng, c.img.shape, 40)  # slow variation of the parenchyma
    dome = [(x, 128 + 0.0045 * (x + 40) ** 2) for x in np.linspace(-135, -10, 16)]
    c.tube(dome, 2.2, 15.0)  # the diaphragm, deep and towards the head
    c.ellipse(30, 200, 150, 58, -7.0, 0.1)  # psoas / quadratus lumborum beyond the kidney
    # the right kidney, long axis oblique, in its echogenic perirenal fat
    kx, kz, angle = 30.0, 100.0, -0.2
    c.ellipse(kx, kz, 50.5, 24.5, 7.0, angle)
    c.ellipse(kx, kz, 48, 22, -3.5, angle)  # cortex, a little darker than liver
    ca, sa = math.cos(angle), math.sin(angle)
    for k, (along, side) in enumerate(((-30, -1), (-12, -1), (8, -1), (27, -1), (-24, 1),
                                       (-4, 1), (16, 1), (34, 0.6))):  # fmt: skip
        px = along + rng.normal(0, 2)
        pz = side * (11.5 - 0.004 * along * along)
        c.ellipse(kx + px * ca - pz * sa, kz + px * sa + pz * ca, 4.0, 5.5, -11.0,
                  angle + 0.5 * math.atan2(pz, px) + 0.1 * k)  # pyramids  # fmt: skip
    sinus = Canvas(*c.img.shape, CELL, c.x0, c.y0)
    sinus.ellipse(kx - 2, kz, 31, 7.5, 1.0, angle)
    sinus.ellipse(kx + 16, kz - 4, 12, 5, 1.0, angle - 0.5)
    sinus.ellipse(kx - 18, kz + 3, 12, 5, 1.0, angle + 0.4)
    level = 10.0 + 3.0 * smooth_noise(rng, c.img.shape, 6)
    c.img += np.minimum(sinus.img, 1.0) * (level - c.img)  # echogenic sinus fat
    # liver vessels: portal branches with bright walls, hepatic veins without
    for pts, radius in (([(-62, 62), (-44, 57), (-28, 50)], 3.4), ([(-44, 57), (-50, 70)], 2.0),
                        ([(-8, 72), (-4, 74)], 2.6)):  # fmt: skip
        c.tube(pts, radius + 1.2, 11.0)
        c.tube(pts, radius, -40.0)
    c.tube([(-128, 44), (-112, 49), (-100, 56)], 3.2, -40.0)
    c.tube([(-100, 56), (-94, 62)], 2.4, -40.0)
    c.ellipse(-86, 98, 3.8, 3.2, -40.0)
    # the abdominal wall (does not move with breathing)
    c.img[: int((24.0 - Z_RANGE[0]) / CELL)] = -4.0  # muscle
    c.img[: int((18.0 - Z_RANGE[0]) / CELL)] = -9.0  # subcutaneous fat
    c.img[: int((2.2 - Z_RANGE[0]) / CELL)] = 10.0  # skin
    c.img[: int((0.0 - Z_RANGE[0]) / CELL)] = -60.0  # gel / nothing
    for z in (6.0, 10.5, 14.0, 19.5, 21.5):  # fat septa and muscle fascia, wavy
        pts = [(x, z + 1.2 * math.sin(x / 17 + z)) for x in np.linspace(-135, 135, 28)]
        c.tube(pts, 0.35, 6.0)
    c.tube([(x, 24.0 + 0.8 * math.sin(x / 23)) for x in np.linspace(-135, 135, 28)], 0.8, 12.0)
    return c


def _speckle(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """20 log10 of the envelope of a complex Gaussian field blurred by the PSF (Gaussian, sigma
    0.28 mm axial and 0.9 mm lateral) (Rayleigh amplitude: about 5.6 dB of spread)."""
    field = rng.standard_normal(shape, dtype=np.float32) + 1j * rng.standard_normal(
        shape, dtype=np.float32
    )
    fz = np.fft.fftfreq(shape[0], CELL)[:, None]
    fx = np.fft.fftfreq(shape[1], CELL)[None, :]
    psf = np.exp(-2 * (math.pi**2) * ((0.28 * fz) ** 2 + (0.9 * fx) ** 2))
    env = np.abs(np.fft.ifft2(np.fft.fft2(field) * psf))
    env /= float(np.sqrt(np.mean(env * env)))
    return (20 * np.log10(np.maximum(env, 1e-3))).astype(np.float32)


def _geometry() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per display pixel: lateral x and depth z (mm, below the skin), the sector mask and
    the radius from the virtual apex."""
    x = (np.arange(COLS, dtype=np.float32) - (COLS - 1) / 2) * PIXEL
    y = np.arange(ROWS, dtype=np.float32) * PIXEL
    x, y = np.meshgrid(x, y)
    apex = SKIN_Y - APEX_RADIUS
    r = np.hypot(x, y - apex)
    theta = np.arctan2(x, y - apex)
    edge_r = np.clip((r - APEX_RADIUS) / PIXEL, 0, 1) * np.clip(
        (APEX_RADIUS + DEPTH - r) / PIXEL, 0, 1
    )
    edge_a = np.clip((HALF_ANGLE - np.abs(theta)) * r / PIXEL, 0, 1)
    return x, y - SKIN_Y, (edge_r * edge_a).astype(np.float32), r


def frames() -> np.ndarray:
    """The cine loop as uint8 ``(FRAMES, ROWS, COLS)``."""
    rng = np.random.default_rng(55)
    tissue = _reflectivity(rng)
    tissue.img += _speckle(rng, tissue.img.shape)
    x, z, mask, r = _geometry()
    depth = r - APEX_RADIUS
    gain = -0.04 * np.maximum(depth - 90, 0) - 3.0 * np.exp(-depth / 4)  # residual TGC
    moving = np.clip((z - 23.0) / 4.0, 0, 1)  # below the peritoneum the organs slide
    inside = mask > 0
    x, z, mask, gain, moving = x[inside], z[inside], mask[inside], gain[inside], moving[inside]
    noise = [1.2 * rng.standard_normal(x.shape, dtype=np.float32) for _ in range(3)]
    out = np.zeros((FRAMES, ROWS, COLS), np.uint8)
    for k in range(FRAMES):
        breath = 0.5 - 0.5 * math.cos(2 * math.pi * k / FRAMES)
        xt = x - moving * 11.0 * breath
        zt = z + moving * 3.5 * breath
        db = sample_bilinear(tissue.img, (zt - Z_RANGE[0]) / CELL, (xt - X_RANGE[0]) / CELL)
        db += gain + np.roll(noise[k % 3], 7919 * k)
        grey = np.clip((db + 26.0) * (255.0 / RANGE_DB), 0, 255) * mask
        out[k][inside] = np.rint(grey).astype(np.uint8)
    return out


def us_instances() -> Iterator[Dataset]:
    """The one multi-frame instance of the ultrasound study."""
    pixels = frames()
    ds = new_instance(SERIES, US_MULTIFRAME, 0)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "ABDOMINAL", "0001"]
    ds.PatientOrientation = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.NumberOfFrames, ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.FrameIncrementPointer = 0x00181063  # Frame Time
    ds.FrameTime = FRAME_TIME
    ds.CineRate = round(1000 / FRAME_TIME)
    ds.RecommendedDisplayFrameRate = round(1000 / FRAME_TIME)
    ds.ActualFrameDuration = int(FRAME_TIME)
    ds.EffectiveDuration = FRAMES * FRAME_TIME / 1000
    ds.StartTrim = 1
    ds.StopTrim = FRAMES
    ds.PreferredPlaybackSequencing = 0  # looping
    ds.TransducerType = "CURVED LINEAR"
    ds.TransducerData = ["C5-1", "", ""]
    ds.ProcessingFunction = "ABDOMEN"
    ds.DepthOfScanField = int(DEPTH)
    ds.MechanicalIndex = 1.1
    ds.SoftTissueThermalIndex = 0.5
    ds.UltrasoundColorDataPresent = 0
    ds.SequenceOfUltrasoundRegions = sequence(_region())
    set_windows(ds, [(127.5, 256.0, "FULL RANGE")])
    ds.PixelData = pixels.tobytes()
    yield ds


def _region() -> Dataset:
    """US Region Calibration: the sector as one 2D tissue region in centimetres."""
    half_width = (APEX_RADIUS + DEPTH) * math.sin(HALF_ANGLE) / PIXEL
    item = Dataset()
    item.RegionSpatialFormat = 1  # 2D
    item.RegionDataType = 1  # tissue
    item.RegionFlags = 0
    item.RegionLocationMinX0 = int(max(0, (COLS - 1) / 2 - half_width))
    item.RegionLocationMinY0 = 0
    item.RegionLocationMaxX1 = int(min(COLS - 1, (COLS - 1) / 2 + half_width + 1))
    item.RegionLocationMaxY1 = ROWS - 1
    item.PhysicalUnitsXDirection = 3  # cm
    item.PhysicalUnitsYDirection = 3
    item.PhysicalDeltaX = PIXEL / 10
    item.PhysicalDeltaY = PIXEL / 10
    item.ReferencePixelX0 = COLS // 2
    item.ReferencePixelY0 = round(SKIN_Y / PIXEL)
    item.ReferencePixelPhysicalValueX = 0.0
    item.ReferencePixelPhysicalValueY = 0.0
    item.TransducerFrequency = 3500  # kHz
    return item
