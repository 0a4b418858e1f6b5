"""``workstation render IMAGE --gsps STATE --out PNG``: an image with a presentation state applied,
headless, through the viewer's own code.

The pixels come from :class:`~workstation.core.pipeline.FrameRenderer` with the state's window and
polarity (:func:`workstation.pstate.apply.view_from_presentation`), placed by the same display
transform as the viewport (displayed area -> zoom and pan, rotation, flip), drawn with QPainter as
the viewport draws them; then the shutter and the annotations are painted by
``workstation.ui.annotation_painter`` (the viewport's painter) on the QImage, under the offscreen Qt
platform.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from workstation.core.annotations import Annotation
from workstation.core.calibration import calibration_for
from workstation.core.dicom_file import DicomFile
from workstation.core.frame_source import image_geometry
from workstation.core.geometry import plane_from_dataset
from workstation.core.measurements import Measurement, measure, modality_unit
from workstation.core.overlays import burn_in, select_planes
from workstation.core.pipeline import FrameRenderer
from workstation.core.view_state import ImageGeometry
from workstation.pstate.apply import area_transform, identity_window
from workstation.pstate.gsps_reader import FOREIGN, read_gsps
from workstation.pstate.model import ImagePresentation, PresentationState


class StateMismatchError(ValueError):
    """The presentation state does not apply to the image."""


@dataclass(frozen=True)
class GspsRender:
    """What :func:`render_with_state` drew."""

    size: tuple[int, int]
    pixels: np.ndarray = field(repr=False)  # (H, W, 3) uint8 RGB
    presentation: ImagePresentation
    state: PresentationState
    warnings: tuple[str, ...]
    matrix: np.ndarray = field(repr=False)


def presentation_for(
    state: PresentationState, ds: Dataset, frame_index: int, state_name: str, image_name: str
) -> ImagePresentation:
    """The state's presentation of this image (frame), or a clear error."""
    uid = str(ds.SOPInstanceUID)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    frame_number = frame_index + 1 if frames > 1 else None
    p = state.for_image(uid, frame_number)
    if p is None:
        refs = ", ".join(f"{u}" + (f" frame {f}" if f else "") for u, f in state.images)
        raise StateMismatchError(
            f"{state_name} does not apply to {image_name} (SOP Instance UID {uid}"
            f"{f', frame {frame_number}' if frame_number else ''}); it references: {refs}"
        )
    return p


def measurements_for(
    annotations: tuple[Annotation, ...], ds: Dataset, frame_index: int, values: np.ndarray | None
) -> dict[str, Measurement]:
    """Values of our own measuring annotations (other software's graphics are drawings)."""
    out: dict[str, Measurement] = {}
    multi = int(ds.get("NumberOfFrames", 1) or 1) > 1
    fi = frame_index if multi else None
    cal = calibration_for(ds, fi)
    unit = modality_unit(ds)
    plane = plane_from_dataset(ds, fi)
    for a in annotations:
        if FOREIGN in a.extra:
            continue
        m = measure(a, cal, values=values, value_unit=unit, plane=plane)
        if m is not None:
            out[a.uid] = m
    return out


def default_size(p: ImagePresentation, geo: ImageGeometry) -> tuple[int, int]:
    """Output size when none is given: the displayed area at one screen pixel per image pixel
    (aspect-corrected), rotated; the whole image when there is no displayed area."""
    if p.displayed_area is not None:
        w, h = p.displayed_area.size
    else:
        w, h = geo.cols, geo.rows
    ph, pw = geo.pixel_shape()
    w, h = w * pw, h * ph
    if p.rotation % 180:
        w, h = h, w
    return max(int(round(w)), 1), max(int(round(h)), 1)


def render_with_state(
    image: str | Path,
    state_path: str | Path,
    *,
    size: tuple[int, int] | None = None,
    frame_index: int = 0,
    annotations: bool = True,
    registry=None,
) -> GspsRender:
    """Render ``image`` with the presentation state in ``state_path`` applied.

    Raises
    ------
    StateMismatchError
        The state does not reference the image (or frame).
    workstation.pstate.gsps_reader.GspsReadError
        The state is not a readable GSPS.
    """
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QRectF, QSize
    from PySide6.QtGui import QColor, QImage, QPainter, QTransform

    from workstation.ui.annotation_painter import paint_annotations, paint_shutter

    dicom_file = DicomFile.open(image, registry) if registry is not None else DicomFile.open(image)
    ds = dicom_file.dataset()
    multi = int(ds.get("NumberOfFrames", 1) or 1) > 1
    geo = image_geometry(ds, frame_index if multi else None)
    state = read_gsps(state_path, image_sizes={str(ds.SOPInstanceUID): (geo.rows, geo.cols)})
    p = presentation_for(state, ds, frame_index, str(state_path), str(image))
    renderer = FrameRenderer(dicom_file, frame_index)
    viewport = size or default_size(p, geo)
    view, matrix = area_transform(
        p, geo, viewport, inverted_by_file=renderer.inverted_by_file, no_voi=identity_window(ds)
    )
    rendered = renderer.render(voi=view.voi, invert=view.invert, overlays=False)
    pixels = rendered.pixels
    planes = select_planes(renderer.overlay_planes, p.overlays_on)  # only the activated groups
    if planes:
        pixels = pixels.copy()
        burn_in(pixels, planes)

    # a QApplication (not a bare QGuiApplication): the same process may build widgets later,
    # which abort under a QGuiApplication
    from PySide6.QtWidgets import QApplication

    _app = QApplication.instance() or QApplication([])  # noqa: F841 - keeps fonts alive
    width, height = int(viewport[0]), int(viewport[1])
    canvas = QImage(width, height, QImage.Format.Format_RGB32)
    canvas.fill(QColor(0, 0, 0))
    buf = np.ascontiguousarray(pixels)
    if buf.ndim == 2:
        img = QImage(buf.data, buf.shape[1], buf.shape[0], buf.shape[1],
                     QImage.Format.Format_Grayscale8)  # fmt: skip
    else:
        img = QImage(buf.data, buf.shape[1], buf.shape[0], 3 * buf.shape[1],
                     QImage.Format.Format_RGB888)  # fmt: skip
    painter = QPainter(canvas)
    painter.save()
    painter.setTransform(
        QTransform(
            matrix[0, 0], matrix[1, 0], matrix[0, 1], matrix[1, 1], matrix[0, 2], matrix[1, 2]
        )  # fmt: skip
    )
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:2, :2]))))
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, abs(scale - 1.0) > 1e-9)
    painter.drawImage(QRectF(-0.5, -0.5, img.width(), img.height()), img)
    painter.restore()
    if p.shutter is not None:
        paint_shutter(painter, matrix, p.shutter, QSize(geo.cols, geo.rows))
    if annotations and p.annotations:
        values = None if renderer.is_color else renderer.modality
        ms = measurements_for(p.annotations, ds, frame_index, values)
        paint_annotations(painter, matrix, p.annotations, layers=p.layers, measurements=ms)
    painter.end()
    rgb = _qimage_rgb(canvas)
    return GspsRender((width, height), rgb, p, state, state.warnings, matrix)


def _qimage_rgb(img) -> np.ndarray:
    from PySide6.QtGui import QImage

    conv = img.convertToFormat(QImage.Format.Format_RGB888)
    w, h, bpl = conv.width(), conv.height(), conv.bytesPerLine()
    arr = np.frombuffer(conv.constBits(), np.uint8, count=bpl * h).reshape(h, bpl)
    return arr[:, : 3 * w].reshape(h, w, 3).copy()


def cmd_render_gsps(args) -> int:
    """The ``render`` subcommand when ``--gsps`` is given."""
    from workstation.core.png import write_png

    size = tuple(args.size) if getattr(args, "size", None) else None
    result = render_with_state(
        args.input,
        args.gsps,
        size=size,  # type: ignore[arg-type]
        frame_index=args.frame,
        annotations=not getattr(args, "no_annotations", False),
    )
    write_png(args.out, result.pixels)
    p = result.presentation
    what = [f"rotation {p.rotation}"]
    if p.flip:
        what.append("flipped")
    if p.voi is not None:
        what.append(f"W {p.voi[1]:g} L {p.voi[0]:g}")
    if p.invert:
        what.append("inverse")
    if p.displayed_area is not None:
        what.append(f"area {p.displayed_area.bounds} {p.displayed_area.size_mode}")
    if p.shutter is not None:
        what.append("shutter " + "+".join(p.shutter.shapes))
    what.append(f"{len(p.annotations)} annotations")
    print(f"{args.out}: {result.size[0]}x{result.size[1]}, state {result.state.label!r}, "
          + ", ".join(what))  # fmt: skip
    for w in result.warnings:
        print(f"warning: {w}")
    return 0


__all__ = [
    "GspsRender",
    "StateMismatchError",
    "cmd_render_gsps",
    "default_size",
    "image_geometry",
    "measurements_for",
    "presentation_for",
    "render_with_state",
]
