"""What a viewport writes over the image: the four corners of patient, study and image text,
the orientation letters on the edges and the scale bar with its calibration source."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen

from workstation.core.annotation_text import corner_text, scale_bar_mm
from workstation.core.calibration import (
    SOURCE_IMAGER,
    SOURCE_IMAGER_ERMF,
    SOURCE_PIXEL_SPACING,
    SOURCE_SCANNED,
    SOURCE_US_REGION,
    calibration_for,
)
from workstation.core.geometry import orientation_labels, patient_orientation_axes
from workstation.core.view_state import effective_scale, screen_axes_in_patient
from workstation.ui.study_tag import study_tag_height

#: Width of the scroll bar strip on a viewport's right edge (the text keeps clear of it).
SCROLLBAR_W = 10
TEXT = QColor(225, 225, 210)
SHADOW = QColor(0, 0, 0, 200)
LOSSY = QColor(255, 170, 40)
_CALIBRATION_LABELS = {
    SOURCE_PIXEL_SPACING: "Pixel Spacing",
    SOURCE_IMAGER: "Imager Pixel Spacing (detector)",
    SOURCE_IMAGER_ERMF: "Imager Pixel Spacing / magnification",
    SOURCE_SCANNED: "scanned film spacing",
    SOURCE_US_REGION: "ultrasound region",
}


def shadowed_text(p: QPainter, x: float, y: float, text: str, color: QColor = TEXT) -> None:
    """Text with a dark shadow, legible on any grey level."""
    p.setPen(SHADOW)
    p.drawText(QPointF(x + 1, y + 1), text)
    p.setPen(color)
    p.drawText(QPointF(x, y), text)


def draw_corner_text(v, p: QPainter, matrix: np.ndarray | None, waiting: bool) -> None:
    """The four corners, the orientation labels and the scale bar of viewport ``v``."""
    src, st = v.model.source, v.model.state
    ds = src.header(st.index)
    font = QFont(v.font())
    font.setPointSizeF(max(7.0, min(10.0, v.height() / 60)))
    p.setFont(font)
    fm = p.fontMetrics()
    lh = fm.height()
    geo = v.model.geometry()
    scale = effective_scale(
        st, geo, v.model.viewport_size, v.devicePixelRatioF(), v.model.screen_px_per_mm
    )
    plane = src.plane(st.index)
    loc = None
    if plane is not None and src.display_set.geometry_ok and "SliceLocation" not in ds:
        loc = float(plane.position_along_normal)
    voi = st.voi if st.voi is not None else (v._renderer.default_voi() if v._renderer else None)
    label = st.voi_label if st.voi is not None else (getattr(voi, "explanation", "") or "file")
    frame_label = ""
    if src.frames[st.index].frame_index is not None:
        frame_label = f"Fr {src.frame_index(st.index) + 1}"
        if v.cine_running:
            frame_label += f"  cine {v.cine_fps:.0f} fps"
    elif v.cine_running:
        frame_label = f"cine {v.cine_fps:.0f} fps"
    ct = corner_text(
        ds,
        index=st.index,
        count=len(src),
        voi=voi,
        voi_label=label,
        scale=scale,
        rotation=st.rotation,
        flip=st.flip,
        invert=st.invert,
        lossy=src.is_lossy(st.index),
        frame_label=frame_label,
        slice_location=loc,
    )
    w, h, m = v.width() - SCROLLBAR_W, v.height(), 6
    room = int(w * 0.42)  # each corner keeps clear of the orientation label between them

    def fit(lines):
        return tuple(fm.elidedText(x, Qt.TextElideMode.ElideRight, room) for x in lines)

    ct = type(ct)(
        fit(ct.top_left), fit(ct.top_right), fit(ct.bottom_left), ct.bottom_right, ct.lossy
    )
    top = m + (study_tag_height(v) if v.study_tag is not None else 0)
    for i, line in enumerate(ct.top_left):
        shadowed_text(p, m, top + lh * (i + 1) - fm.descent(), line)
    for i, line in enumerate(ct.top_right):
        x = w - m - fm.horizontalAdvance(line)
        shadowed_text(p, x, top + lh * (i + 1) - fm.descent(), line)
    bl = list(ct.bottom_left)
    if waiting:
        bl.append("loading…")
    if v.message:
        bl.append(v.message[:120])
    for i, line in enumerate(reversed(bl)):
        color = QColor(255, 120, 120) if line == v.message[:120] else TEXT
        shadowed_text(p, m, h - m - lh * i - fm.descent(), line, color)
    for i, line in enumerate(reversed(ct.bottom_right)):
        color = LOSSY if line.startswith("LOSSY") else TEXT
        if line.startswith("LOSSY"):
            bold = QFont(font)
            bold.setBold(True)
            p.setFont(bold)
        shadowed_text(
            p,
            w - m - p.fontMetrics().horizontalAdvance(line),
            h - m - lh * i - fm.descent(),
            line,
            color,
        )
        p.setFont(font)
    axes = (plane.row_dir, plane.col_dir) if plane is not None else None
    if axes is None:  # a projection image: its Patient Orientation letters
        axes = patient_orientation_axes(ds.get("PatientOrientation"))
    if matrix is not None and axes is not None:
        right, down = screen_axes_in_patient(matrix, *axes)
        labels = orientation_labels(right, down)
        big = QFont(font)
        big.setPointSizeF(font.pointSizeF() * 1.2)
        big.setBold(True)
        p.setFont(big)
        bfm = p.fontMetrics()
        shadowed_text(p, m, h / 2 + bfm.ascent() / 2, labels["left"])
        shadowed_text(
            p,
            w - m - bfm.horizontalAdvance(labels["right"]),
            h / 2 + bfm.ascent() / 2,
            labels["right"],
        )
        top_x = w / 2 - bfm.horizontalAdvance(labels["top"]) / 2
        shadowed_text(p, top_x, top + bfm.ascent(), labels["top"])
        shadowed_text(
            p,
            w / 2 - bfm.horizontalAdvance(labels["bottom"]) / 2,
            h - m - bfm.descent(),
            labels["bottom"],
        )
        p.setFont(font)
    if geo is not None and geo.spacing is not None:
        draw_scale_bar(v, p, geo, scale, ds, lh)


def draw_scale_bar(v, p: QPainter, geo, scale: float, ds, lh: float) -> None:
    """A bar of a round length on the right edge, naming the calibration it uses (on the left
    edge when the image is held against the right one, as mammograms hang, so that the bar
    stays off the tissue)."""
    mm_per_px = min(geo.spacing) / scale
    bar = scale_bar_mm(mm_per_px, v.height() * 0.25)
    if bar is None:
        return
    mm, px = bar
    cal = calibration_for(ds, v.model.source.frames[v.model.state.index].frame_index)
    left = v.model.state.align[0] > 0 and v.model.state.zoom_mode != "free"
    side = 1 if left else -1  # the ticks and labels point into the viewport
    x = 14.0 if left else v.width() - SCROLLBAR_W - 14
    y0 = v.height() / 2 + 2 * lh  # below the orientation label on the edge
    if y0 + px > v.height() - 5 * lh:
        return
    pen = QPen(TEXT)
    pen.setWidthF(1.2)
    p.setPen(pen)
    p.drawLine(QPointF(x, y0), QPointF(x, y0 + px))
    for k in range(11 if mm >= 10 else 2):
        t = y0 + px * k / (10 if mm >= 10 else 1)
        tick = 7 if k in (0, 5, 10) or mm < 10 else 4
        p.drawLine(QPointF(x + side * tick, t), QPointF(x, t))
    text = f"{mm:g} mm"
    p.save()
    small = QFont(p.font())
    small.setPointSizeF(max(6.5, p.font().pointSizeF() * 0.85))
    p.setFont(small)
    fm = p.fontMetrics()
    source = _CALIBRATION_LABELS.get(cal.source, cal.source)
    for i, (label, colour) in enumerate(((text, TEXT), (source, QColor(170, 170, 160)))):
        tx = x + 10 if left else x - 10 - fm.horizontalAdvance(label)
        shadowed_text(p, tx, y0 + px / 2 + i * fm.height(), label, colour)
    p.restore()
