"""GSPS written then read back: every annotation kind comes back as the same editable annotation
(kind, uid, points within 0.01 pixel, text, layer), layers keep order and colour, and the view
(window, zoom/pan, rotation, flip, invert, shutters) is the same after applying it. Bad input:
broken graphics are skipped with a message and nothing else is lost."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from synthetic import image_dataset  # noqa: E402

from workstation.core.annotations import (  # noqa: E402
    ImageRef,
    Layer,
    ellipse_from_box,
    new_annotation,
)
from workstation.core.calibration import calibration_for  # noqa: E402
from workstation.core.measurements import measure  # noqa: E402
from workstation.core.view_state import ImageGeometry, ViewState, display_transform  # noqa: E402
from workstation.core.voi import Window  # noqa: E402
from workstation.pstate.apply import presentation_from_view, view_from_presentation  # noqa: E402
from workstation.pstate.gsps_reader import FOREIGN, GspsReadError, read_gsps  # noqa: E402
from workstation.pstate.gsps_writer import GspsWriteError, write_gsps  # noqa: E402
from workstation.pstate.model import (  # noqa: E402
    DisplayedArea,
    ImagePresentation,
    PresentationState,
    Shutter,
)


def _image(rows=120, cols=160, **attrs):
    stored = (np.arange(rows * cols, dtype=np.int16).reshape(rows, cols) % 1000) - 200
    return image_dataset(
        stored,
        PixelSpacing=[0.7, 0.7],
        StudyInstanceUID=attrs.pop("study", "1.2.826.0.1.3680043.8.498.1"),
        SeriesInstanceUID="1.2.826.0.1.3680043.8.498.2",
        PatientName="Test^Patient",
        PatientID="P1",
        PatientBirthDate="19700101",
        PatientSex="O",
        StudyDate="20240101",
        StudyTime="120000",
        StudyID="1",
        AccessionNumber="A1",
        ReferringPhysicianName="",
        RescaleIntercept=0,
        RescaleSlope=1,
        **attrs,
    )


def _all_kinds(ref: ImageRef):
    return (
        new_annotation("length", [(10.25, 20.5), (90.75, 60.125)], ref),
        new_annotation("angle", [(30, 30), (50, 70), (80, 35)], ref, text="knee"),
        new_annotation("cobb", [(5, 5), (40, 12.5), (6, 90), (44, 77)], ref),
        new_annotation("ellipse", ellipse_from_box((100.3, 40.6), (140.1, 60.2)), ref),
        new_annotation("circle", [(70.5, 90.5), (78.25, 90.5)], ref),
        new_annotation("rectangle", [(110, 80), (150, 110)], ref, layer="ROIS"),
        new_annotation(
            "polygon", [(20, 100), (40, 95.5), (35, 115), (22.2, 112)], ref, layer="ROIS"
        ),
        new_annotation("point", [(60, 60)], ref),
        new_annotation("arrow", [(120, 10), (100, 30)], ref, layer="NOTES"),
        new_annotation("text", [(130, 100)], ref, text="Nodule\r\nfollow up", layer="NOTES"),
    )


LAYERS = {
    "MEASUREMENTS": Layer("MEASUREMENTS", 1, (255, 255, 0), "lengths and angles"),
    "ROIS": Layer("ROIS", 2, (0, 255, 0)),
    "NOTES": Layer("NOTES", 3, (0, 200, 255), "free text"),
}


def _state(ds, **kw) -> PresentationState:
    ref = ImageRef(str(ds.SOPInstanceUID), None, str(ds.SOPClassUID))
    p = ImagePresentation(ref, annotations=_all_kinds(ref), layers=LAYERS, **kw)
    return PresentationState("", "", str(ds.StudyInstanceUID), "Reading 1", "round trip",
                             "Doe^Jane", images={(ref.sop_instance_uid, None): p})  # fmt: skip


def _roundtrip(tmp_path, ds, state, **kw) -> PresentationState:
    out = write_gsps(state, [ds], **kw)
    path = tmp_path / "state.dcm"
    out.save_as(path, enforce_file_format=True)
    return read_gsps(path)


def test_annotations_come_back_identical(tmp_path) -> None:
    ds = _image()
    state = _state(ds, voi=(40.0, 400.0))
    cal = calibration_for(ds)
    ms = {a.uid: m for a in state.all_annotations if (m := measure(a, cal)) is not None}
    back = _roundtrip(tmp_path, ds, state, measurements=ms)
    assert back.warnings == ()
    assert (back.label, back.description, back.creator) == ("READING 1", "round trip", "Doe^Jane")
    p = back.for_image(str(ds.SOPInstanceUID), None)
    assert p is not None
    got = {a.uid: a for a in p.annotations}
    for a in state.all_annotations:
        b = got[a.uid]
        assert (b.kind, b.text, b.layer, b.image.sop_instance_uid) == (
            a.kind, a.text, a.layer, a.image.sop_instance_uid,
        )  # fmt: skip
        assert len(b.points) == len(a.points)
        assert np.abs(np.array(b.points) - np.array(a.points)).max() < 0.01, a.kind
        assert FOREIGN not in b.extra
    assert len(got) == len(state.all_annotations)
    for name, layer in LAYERS.items():
        assert p.layers[name].order == layer.order
        assert p.layers[name].description == layer.description
        assert np.abs(np.array(p.layers[name].colour) - layer.colour).max() <= 1  # CIELab
    # the measured values are written as text other viewers show, in the annotation's group
    raw = pydicom.dcmread(tmp_path / "state.dcm")
    texts = [t.UnformattedTextValue for g in raw.GraphicAnnotationSequence
             for t in g.get("TextObjectSequence", [])]  # fmt: skip
    length = next(a for a in state.all_annotations if a.kind == "length")
    assert ms[length.uid].lines[0] in texts
    assert (
        "knee\r\n" + ms[next(a.uid for a in state.all_annotations if a.kind == "angle")].lines[0]
        in texts
    )


def test_view_comes_back_the_same(tmp_path) -> None:
    ds = _image()
    geo = ImageGeometry(120, 160, (0.7, 0.7))
    viewport = (800.0, 600.0)
    ref = ImageRef(str(ds.SOPInstanceUID), None, str(ds.SOPClassUID))
    views = [
        ViewState(voi=Window(40, 400), zoom_mode="fit"),
        ViewState(
            voi=Window(-600, 1500),
            zoom_mode="free",
            zoom=7.5,
            pan=(35.0, -20.0),
            rotation=90,
            invert=True,
        ),  # fmt: skip
        ViewState(
            voi=Window(300, 80),
            zoom_mode="free",
            zoom=3.2,
            pan=(-50.0, 12.0),
            rotation=270,
            flip=True,
        ),  # fmt: skip
        ViewState(
            voi=Window(0, 2000),
            zoom_mode="free",
            zoom=11.0,
            pan=(100.0, 60.0),
            rotation=180,
            flip=True,
            invert=True,
        ),  # fmt: skip
    ]
    for view in views:
        p = presentation_from_view(view, ref, geo, viewport)
        st = PresentationState("", "", str(ds.StudyInstanceUID), "VIEW",
                               images={(ref.sop_instance_uid, None): p})  # fmt: skip
        back = _roundtrip(tmp_path, ds, st).for_image(ref.sop_instance_uid, None)
        applied = view_from_presentation(back, geo, viewport)
        assert applied.voi == Window(view.voi.center, view.voi.width, "LINEAR", "")
        assert (applied.rotation, applied.flip, applied.invert) == (
            view.rotation, view.flip, view.invert,
        )  # fmt: skip
        before = display_transform(view, geo, viewport)
        after = display_transform(applied, geo, viewport)
        if view.zoom_mode == "fit":
            assert applied.zoom_mode == "fit"
        else:
            # the displayed area is whole pixels: zoom within one pixel across the viewport,
            # and every image point lands within one image pixel's width of where it was
            assert applied.zoom == pytest.approx(view.zoom, rel=1.5 / (viewport[0] / view.zoom))
        for c, r in ((0, 0), (159, 0), (80, 60), (0, 119)):
            a = before @ np.array([c, r, 1.0])
            b = after @ np.array([c, r, 1.0])
            assert np.abs(a - b).max() <= view.zoom * 1.0 + 1e-6, (view, c, r)


def test_shutters_come_back(tmp_path) -> None:
    ds = _image()
    geometric = Shutter(("RECTANGULAR", "CIRCULAR", "POLYGONAL"), rect=(10, 150, 5, 110),
                        centre=(80.0, 60.0), radius=55.0,
                        polygon=((10.0, 10.0), (150.0, 12.0), (140.0, 110.0), (15.0, 100.0)),
                        grey=0.25, colour=(40, 40, 200))  # fmt: skip
    bitmap = np.zeros((120, 160), dtype=bool)
    bitmap[:, :30] = True
    bitmap[100:, :] = True
    for shutter in (geometric, Shutter(("BITMAP",), bitmap=bitmap, grey=1.0)):
        back = _roundtrip(tmp_path, ds, _state(ds, shutter=shutter))
        got = back.for_image(str(ds.SOPInstanceUID), None).shutter
        assert got is not None and got.shapes == shutter.shapes
        assert np.array_equal(got.mask(120, 160), shutter.mask(120, 160))
        assert got.grey == pytest.approx(shutter.grey, abs=1e-4)
        assert got.colour is None  # a grayscale state has a grey shutter value only


def test_displayed_area_modes_and_overlay_activation(tmp_path) -> None:
    ds = _image()
    for area in (
        DisplayedArea((10, 20), (99, 79), "SCALE TO FIT", pixel_spacing=(0.7, 0.7)),
        DisplayedArea((0, 0), (159, 119), "MAGNIFY", magnification=2.5),
        DisplayedArea((0, 0), (159, 119), "TRUE SIZE", pixel_spacing=(0.7, 0.7)),
    ):
        back = _roundtrip(tmp_path, ds, _state(ds, displayed_area=area, rotation=90, flip=True,
                                               overlays_on=(0x6000, 0x6002)))  # fmt: skip
        p = back.for_image(str(ds.SOPInstanceUID), None)
        assert p.displayed_area.bounds == area.bounds
        assert p.displayed_area.size_mode == area.size_mode
        assert p.displayed_area.magnification == area.magnification
        assert p.overlays_on == (0x6000, 0x6002)
        assert "OVERLAYS" in p.layers


def test_writer_refuses_what_it_cannot_express(tmp_path) -> None:
    ds = _image()
    with pytest.raises(GspsWriteError, match="graphic layer 'lower case'"):
        ref = ImageRef(str(ds.SOPInstanceUID))
        bad = ImagePresentation(ref, annotations=(new_annotation("point", [(1, 1)], ref,
                                                                  layer="lower case"),))  # fmt: skip
        write_gsps(PresentationState("", "", "", "X", images={(ref.sop_instance_uid, None): bad}),
                   [ds])  # fmt: skip
    with pytest.raises(GspsWriteError, match="no header given"):
        write_gsps(_state(ds), [_image()])
    both = Shutter(("RECTANGULAR", "BITMAP"), rect=(1, 2, 1, 2), bitmap=np.ones((2, 2), bool))
    with pytest.raises(GspsWriteError, match="bitmap shutter cannot be combined"):
        write_gsps(_state(ds, shutter=both), [ds])


def test_broken_graphic_is_skipped_with_a_message(tmp_path) -> None:
    ds = _image()
    out = write_gsps(_state(ds), [ds])
    # damage one graphic: an odd number of coordinates
    item = out.GraphicAnnotationSequence[0]
    victim = item.GraphicObjectSequence[0]
    victim.GraphicData = list(victim.GraphicData)[:-1]
    # and add a foreign polyline of another application, without a group
    extra = pydicom.Dataset()
    extra.GraphicAnnotationUnits = "PIXEL"
    extra.GraphicDimensions = 2
    extra.NumberOfGraphicPoints = 3
    extra.GraphicData = [10.5, 10.5, 50.5, 10.5, 50.5, 40.5]
    extra.GraphicType = "POLYLINE"
    extra.GraphicFilled = "N"
    item.GraphicObjectSequence.append(extra)
    path = tmp_path / "broken.dcm"
    out.save_as(path, enforce_file_format=True)
    back = read_gsps(path)
    assert any("odd number of coordinates (3)" in w for w in back.warnings), back.warnings
    p = back.for_image(str(ds.SOPInstanceUID), None)
    kinds = sorted(a.kind for a in p.annotations if FOREIGN not in a.extra)
    # the length lost its only graphic; the other nine annotations are all there
    assert kinds == sorted(k for k in (a.kind for a in _all_kinds(ImageRef("x"))) if k != "length")
    foreign = [a for a in p.annotations if FOREIGN in a.extra]
    assert [a.points for a in foreign] == [
        ((10.0, 10.0), (50.0, 10.0)),
        ((50.0, 10.0), (50.0, 40.0)),
    ]


def test_not_a_gsps(tmp_path) -> None:
    ds = _image()
    path = tmp_path / "image.dcm"
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(GspsReadError, match="is not Grayscale Softcopy Presentation State"):
        read_gsps(path)
    (tmp_path / "junk.dcm").write_bytes(b"not dicom at all")
    with pytest.raises(GspsReadError, match="junk.dcm: not a readable DICOM file"):
        read_gsps(tmp_path / "junk.dcm")


def test_display_units_are_relative_to_the_displayed_area(tmp_path) -> None:
    ds = _image()
    out = write_gsps(_state(ds, displayed_area=DisplayedArea((20, 10), (119, 109)), rotation=90),
                     [ds])  # fmt: skip
    obj = pydicom.Dataset()
    obj.GraphicAnnotationUnits = "DISPLAY"
    obj.GraphicDimensions = 2
    obj.NumberOfGraphicPoints = 1
    obj.GraphicData = [0.0, 0.0]  # top left of the screen area
    obj.GraphicType = "POINT"
    out.GraphicAnnotationSequence[0].GraphicObjectSequence.append(obj)
    back = read_gsps(out)
    pt = next(a for a in back.for_image(str(ds.SOPInstanceUID), None).annotations
              if FOREIGN in a.extra)  # fmt: skip
    # after a clockwise quarter turn, the screen's top left is the area's bottom-left corner
    assert pt.points[0] == pytest.approx((19.5, 109.5))


def test_frames_of_a_multiframe_image(tmp_path, corpus_dir) -> None:
    """Annotations and windows per frame of an enhanced MR: each frame gets its own back."""
    ds = pydicom.dcmread(corpus_dir / "enhanced_multiframe/pydicom_data/emri_small.dcm",
                         stop_before_pixels=True)  # fmt: skip
    uid, cls = str(ds.SOPInstanceUID), str(ds.SOPClassUID)
    images = {}
    for frame, window in ((2, (100.0, 200.0)), (7, (300.0, 500.0))):
        ref = ImageRef(uid, frame, cls)
        ann = new_annotation("length", [(1.5, 2.5), (30.25, 40.75)], ref, text=f"frame {frame}")
        images[(uid, frame)] = ImagePresentation(ref, voi=window, annotations=(ann,))
    back = _roundtrip(tmp_path, ds, PresentationState("", "", str(ds.StudyInstanceUID), "MF",
                                                      images=images))  # fmt: skip
    assert set(back.images) == {(uid, None), (uid, 2), (uid, 7)}
    for frame, window in ((2, (100.0, 200.0)), (7, (300.0, 500.0))):
        p = back.for_image(uid, frame)
        assert p.voi == window
        assert [a.text for a in p.annotations] == [f"frame {frame}"]
        assert p.annotations[0].image.frame_number == frame
    other = back.for_image(uid, 3)  # the other frames: the whole-image entry, no window
    assert other.annotations == () and other.voi is None
