"""Display sets: synthetic series for each splitting rule, then the real corpus."""

from __future__ import annotations

import random
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from workstation.core.display_sets import (
    HeaderRecord,
    build_display_sets,
    image_exclusion_reason,
    read_header_records,
)

AXIAL = [1, 0, 0, 0, 1, 0]
CORONAL = [1, 0, 0, 0, 0, -1]
SAGITTAL = [0, 1, 0, 0, 0, -1]
SERIES = "1.2.3.4.5"


def _image(
    z: float | None, iop=AXIAL, *, series=SERIES, number=1, rows=64, cols=64, **kw
) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = "1.2.3"
    ds.SeriesInstanceUID = series
    ds.SeriesNumber = 3
    ds.Modality = "CT"
    ds.InstanceNumber = number
    ds.Rows, ds.Columns = rows, cols
    ds.SliceThickness = 5.0
    if z is not None:
        if iop == AXIAL:
            ds.ImagePositionPatient = [-100.0, -100.0, z]
        elif iop == SAGITTAL:
            ds.ImagePositionPatient = [z, -100.0, 100.0]
        else:
            ds.ImagePositionPatient = [-100.0, z, 100.0]
        ds.ImageOrientationPatient = iop
        ds.PixelSpacing = [0.5, 0.5]
    for k, v in kw.items():
        setattr(ds, k, v)
    return ds


def _records(datasets) -> list[HeaderRecord]:
    return [HeaderRecord(f"/synthetic/{i:03d}.dcm", ds) for i, ds in enumerate(datasets)]


def _zs(dset) -> list[float]:
    return [float(f.plane.origin[2]) for f in dset.frames]


def test_axial_stack_sorted_by_position_and_scout_split_off():
    zs = [20.0, 0.0, 15.0, 5.0, 10.0]
    images = [_image(z, number=i + 2) for i, z in enumerate(zs)]
    scout = _image(0.0, CORONAL, number=1, ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"])
    sets = build_display_sets(_records([*images, scout]))
    assert [d.kind for d in sets] == ["localizer", "stack"]  # localizers first
    loc, stack = sets
    assert loc.is_localizer and loc.orientation == "coronal" and len(loc.frames) == 1
    assert loc.label == "Series 3 CT localizer"
    assert stack.orientation == "axial" and stack.label == "Series 3 CT axial 5.0 mm"
    assert _zs(stack) == [0, 5, 10, 15, 20]  # ascending along the normal: feet to head
    assert stack.geometry_ok and stack.geometry_problem is None and stack.notes == ()
    assert {d.uid.split("#")[0] for d in sets} == {SERIES} and loc.uid != stack.uid


def test_minority_orientation_is_a_localizer_even_without_image_type():
    images = [_image(float(z)) for z in range(0, 40, 5)]
    sets = build_display_sets(_records([*images, _image(0.0, SAGITTAL)]))
    assert [(d.kind, d.orientation, len(d.frames)) for d in sets] == [
        ("localizer", "sagittal", 1),
        ("stack", "axial", 8),
    ]


def test_three_plane_series_of_equal_size_is_three_stacks_not_localizers():
    images = [_image(float(z), iop) for iop in (AXIAL, CORONAL, SAGITTAL) for z in (0, 5, 10)]
    sets = build_display_sets(_records(images))
    assert sorted(d.orientation for d in sets) == ["axial", "coronal", "sagittal"]
    assert all(d.kind == "stack" and not d.is_localizer and len(d.frames) == 3 for d in sets)


def test_split_by_matrix_size_and_echo():
    small = [_image(float(z), rows=32, cols=32) for z in (0, 5)]
    echoes = [_image(float(z), EchoNumbers=e) for e in (1, 2) for z in (0, 5, 10)]
    sets = build_display_sets(_records([*small, *echoes]))
    shapes = sorted((d.frames[0].plane.rows, len(d.frames)) for d in sets)
    assert shapes == [(32, 2), (64, 3), (64, 3)]
    labels = sorted(d.label for d in sets if d.frames[0].plane.rows == 64)
    assert labels == ["Series 3 CT axial 5.0 mm echo 1", "Series 3 CT axial 5.0 mm echo 2"]


def test_acquisition_splits_only_where_positions_repeat():
    one_per_slice = [_image(float(z), AcquisitionNumber=i) for i, z in enumerate((0, 5, 10, 15))]
    sets = build_display_sets(_records(one_per_slice))
    assert len(sets) == 1 and len(sets[0].frames) == 4
    repeated = [
        _image(float(z), AcquisitionNumber=a, number=10 * a + i)
        for a in (1, 2)
        for i, z in enumerate((0, 5, 10))
    ]
    sets = build_display_sets(_records(repeated))
    assert [len(d.frames) for d in sets] == [3, 3]
    assert [d.label.split()[-1] for d in sets] == ["1", "2"]
    assert all(d.geometry_ok for d in sets)
    temporal = [
        _image(float(z), TemporalPositionIdentifier=t, AcquisitionNumber=1)
        for t in (1, 2, 3)
        for z in (0, 5)
    ]
    assert sorted(len(d.frames) for d in build_display_sets(_records(temporal))) == [2, 2, 2]


def test_all_frames_at_one_position_stay_together_and_are_flagged():
    sets = build_display_sets(_records([_image(0.0, AcquisitionNumber=a) for a in (1, 2, 3)]))
    assert len(sets) == 1 and len(sets[0].frames) == 3
    assert not sets[0].geometry_ok and sets[0].geometry_problem == "all frames share one position"


def test_duplicate_position_in_a_stack_is_a_geometry_problem():
    sets = build_display_sets(_records([_image(z) for z in (0.0, 5.0, 5.0, 10.0)]))
    assert len(sets) == 1 and not sets[0].geometry_ok
    assert sets[0].geometry_problem == "2 frames share a position with another frame"


def test_no_geometry_falls_back_to_instance_number():
    images = [_image(None, number=n, Modality="CR") for n in (3, 1, 2)]
    (dset,) = build_display_sets(_records(images))
    assert [f.instance_number for f in dset.frames] == [1, 2, 3]
    assert dset.orientation is None and not dset.geometry_ok
    assert dset.geometry_problem == "3 of 3 frames have no position/orientation/spacing"
    (single,) = build_display_sets(_records(images[:1]))
    assert single.kind == "single" and single.label == "Series 3 CR image"


def test_uneven_spacing_and_tilt_are_noted():
    t = np.radians(18.5)
    iop = [1, 0, 0, 0, float(np.cos(t)), float(-np.sin(t))]
    images = [_image(0.0, iop, ImagePositionPatient=[0.0, 0.0, z]) for z in (0.0, 4.0, 8.0, 15.0)]
    (dset,) = build_display_sets(_records(images))
    assert dset.geometry_ok
    c = np.cos(t)
    assert dset.notes == (
        "gantry tilt 18.5°",
        f"uneven spacing {4 * c:.2f}–{7 * c:.2f} mm along the normal (4.00–7.00 mm between slice origins)",
    )


def test_non_images_and_directories_are_ignored():
    sr = _image(None)
    del sr.Rows, sr.Columns
    sr.Modality = "SR"
    dicomdir = Dataset()
    dicomdir.SOPClassUID = "1.2.840.10008.1.3.10"
    stripped = _image(1.0)
    assert image_exclusion_reason(sr).startswith("no Image Pixel module")
    assert image_exclusion_reason(dicomdir).startswith("media storage directory")
    assert image_exclusion_reason(stripped, has_pixel_data=False) == "no Pixel Data element"
    records = _records([sr, dicomdir]) + [HeaderRecord("/s/x.dcm", stripped, False)]
    assert build_display_sets(records) == []


def test_order_of_input_does_not_change_the_result():
    images = [_image(float(z), AcquisitionNumber=a) for a in (1, 2) for z in (0, 5, 10)]
    images.append(_image(0.0, SAGITTAL, ImageType=["LOCALIZER"]))
    records = _records(images)
    first = build_display_sets(records)
    shuffled = records[:]
    random.Random(3).shuffle(shuffled)
    second = build_display_sets(shuffled)
    assert [d.uid for d in first] == [d.uid for d in second]
    assert [[f.path for f in d.frames] for d in first] == [
        [f.path for f in d.frames] for d in second
    ]


# --- multi-frame -------------------------------------------------------------------------------


def _item(**kw) -> Dataset:
    d = Dataset()
    for k, v in kw.items():
        setattr(d, k, v)
    return d


def _enhanced(frames: list[tuple[list[float], list[float], dict]], dims=None) -> Dataset:
    ds = _image(None, SOPClassUID="1.2.840.10008.5.1.4.1.1.4.1", Modality="MR")
    ds.NumberOfFrames = len(frames)
    ds.SharedFunctionalGroupsSequence = [
        _item(PixelMeasuresSequence=[_item(PixelSpacing=[1, 1], SliceThickness=2)])
    ]
    per_frame = []
    for ipp, iop, content in frames:
        per_frame.append(
            _item(
                PlanePositionSequence=[_item(ImagePositionPatient=ipp)],
                PlaneOrientationSequence=[_item(ImageOrientationPatient=iop)],
                FrameContentSequence=[_item(**content)],
                MRImageFrameTypeSequence=[_item(FrameType=content.pop("_type", ["ORIGINAL"]))],
            )
        )
    ds.PerFrameFunctionalGroupsSequence = per_frame
    if dims:
        ds.DimensionIndexSequence = [_item(DimensionIndexPointer=t) for t in dims]
    return ds


def test_enhanced_three_orthogonal_localizer_stacks():
    frames = []
    for iop, axis in ((AXIAL, 2), (CORONAL, 1), (SAGITTAL, 0)):
        for k in (10.0, -10.0, 0.0):
            ipp = [-100.0, -100.0, 100.0]
            ipp[axis] = k
            frames.append((ipp, iop, {"StackID": "1", "_type": ["ORIGINAL", "LOCALIZER"]}))
    sets = build_display_sets(_records([_enhanced(frames)]))
    assert sorted(d.orientation for d in sets) == ["axial", "coronal", "sagittal"]
    assert all(d.kind == "localizer" and len(d.frames) == 3 for d in sets)
    axial = next(d for d in sets if d.orientation == "axial")
    assert [f.frame_index for f in axial.frames] == [1, 2, 0]  # z -10, 0, 10
    assert [f.frame_index for f in axial.frames] != [0, 1, 2]


def test_enhanced_temporal_dimension_gives_one_stack_per_time_point():
    stack, in_stack, temporal = 0x00209056, 0x00209057, 0x00209128
    frames = [
        ([0.0, 0.0, 4.0 * s], AXIAL, {"DimensionIndexValues": [1, s + 1, t], "StackID": "1"})
        for t in (1, 2)
        for s in (3, 1, 0, 2)
    ]
    sets = build_display_sets(_records([_enhanced(frames, [stack, in_stack, temporal])]))
    assert [(d.kind, len(d.frames)) for d in sets] == [("multiframe-stack", 4)] * 2
    assert [f.frame_index for f in sets[0].frames] == [2, 1, 3, 0]
    assert [f.frame_index for f in sets[1].frames] == [6, 5, 7, 4]
    assert sets[0].label.endswith("stack 1/2") and all(d.geometry_ok for d in sets)


def test_classic_multiframe_ultrasound_is_one_cine():
    us = _image(None, Modality="US", NumberOfFrames=12)
    (dset,) = build_display_sets(_records([us]))
    assert dset.kind == "cine" and [f.frame_index for f in dset.frames] == list(range(12))
    assert dset.label == "Series 3 US cine 12 frames"


def test_read_header_records_reports_and_skips_non_dicom(tmp_path: Path):
    ds = _image(3.0)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.PixelData = np.zeros((64, 64), np.uint16).tobytes()
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.save_as(tmp_path / "a.dcm", enforce_file_format=True)
    no_pixels = ds.copy()
    del no_pixels.PixelData
    no_pixels.save_as(tmp_path / "b.dcm", enforce_file_format=True)
    (tmp_path / "notes.txt").write_text("not a dicom file\n" * 20)
    records, problems = read_header_records([tmp_path])
    assert [Path(r.path).name for r in records] == ["a.dcm", "b.dcm"]
    assert [r.has_pixel_data for r in records] == [True, False]
    # the pixel element is known to be there, but its 8 KiB value was not read (deferred)
    assert records[0].ds._dict[0x7FE00010].value is None  # raw, deferred: bytes not read
    assert [(Path(p).name, why.split(" (")[0]) for p, why in problems] == [
        ("notes.txt", "not a DICOM file")
    ]
    assert [len(d.frames) for d in build_display_sets(records)] == [1]


# --- the real corpus ---------------------------------------------------------------------------


def _sets_under(corpus_dir: Path, rel: str):
    records, problems = read_header_records([corpus_dir / rel])
    return build_display_sets(records), problems


@pytest.mark.corpus
def test_ge_tilted_series_is_one_sorted_stack_with_tilt_and_uneven_spacing(corpus_dir):
    sets, problems = _sets_under(corpus_dir, "ct_series/ge_hispeed_dual_tilt_variable_spacing")
    assert problems == []
    (dset,) = sets
    assert dset.kind == "stack" and dset.orientation == "axial" and dset.geometry_ok
    assert [Path(f.path).name for f in dset.frames] == [f"{i:02d}.dcm" for i in range(1, 29)]
    assert dset.notes == (
        "gantry tilt 18.5°",
        "uneven spacing 1.08–7.00 mm along the normal (1.14–7.38 mm between slice origins)",
    )


@pytest.mark.corpus
def test_philips_cd_separates_axials_from_localizers(corpus_dir):
    sets, _ = _sets_under(corpus_dir, "dicomdir_cd/philips_ingenuity_ct_cd/DICOM")
    axials = [d for d in sets if d.kind == "stack" and d.orientation == "axial"]
    assert sorted(len(d.frames) for d in axials) == [28, 54]
    assert all("/S2010/" in f.path for d in axials for f in d.frames)
    assert all(not d.is_localizer for d in axials)
    surviews = [d for d in sets if d.is_localizer]
    # the two S1000 surviews, and S4010's three REF_SURVIEW snapshots of one of them
    assert sorted(len(d.frames) for d in surviews) == [1, 1, 3]
    assert all(d.orientation == "sagittal" for d in surviews)
    assert {Path(f.path).parent.name for d in surviews for f in d.frames} == {"S1000", "S4010"}
    brain, stereo = sorted(axials, key=lambda d: len(d.frames))
    assert brain.notes == () and brain.label == "Series 201 CT axial 5.0 mm (STD BRAIN 5MM)"
    assert stereo.notes == ("gantry tilt 18.5°",)
    # no DIRFILE or DICOMDIR in any display set
    assert not any(Path(f.path).name in ("DIRFILE", "DICOMDIR") for d in sets for f in d.frames)


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("rel", "stacks"),
    [
        # Philips field map: 2 image types (dimension "Private ImageTypeMR" 0 and 18) x 32 slices
        ("philips/IM_0027_fMAP.dcm", [32, 32]),
        ("pydicom_data/eCT_Supplemental.dcm", [2]),
        ("pydicom_data/liver.dcm", [3]),  # SEG with one segment
        # Siemens XA10 SMS fMRI: each file is one time point (TemporalPositionIndex 1..4)
        ("siemens_xa10/6_1.dcm", [6]),
        ("siemens_xa10/6_4.dcm", [6]),
        # functional groups stripped: 10 frames without geometry
        ("pydicom_data/emri_small.dcm", [10]),
    ],
)
def test_enhanced_multiframe_stacks(corpus_dir, rel, stacks):
    sets, _ = _sets_under(corpus_dir, f"enhanced_multiframe/{rel}")
    assert [len(d.frames) for d in sets] == stacks
    indices = sorted(f.frame_index for d in sets for f in d.frames)
    assert indices == list(range(sum(stacks)))


@pytest.mark.corpus
def test_enhanced_multiframe_stack_contents(corpus_dir):
    sets, _ = _sets_under(corpus_dir, "enhanced_multiframe")
    by_file = Counter(Path(f.path).name for d in sets for f in d.frames[:1])
    assert by_file["IM_0027_fMAP.dcm"] == 2 and by_file["6_2.dcm"] == 1
    fmap = [d for d in sets if d.frames[0].path.endswith("IM_0027_fMAP.dcm")]
    assert [[f.frame_index for f in d.frames] for d in fmap] == [
        list(range(32)),
        list(range(32, 64)),
    ]
    assert all(d.geometry_ok and d.orientation == "axial" and not d.notes for d in fmap)
    (ect,) = [d for d in sets if d.frames[0].path.endswith("eCT_Supplemental.dcm")]
    assert [f.frame_index for f in ect.frames] == [1, 0]  # normal is -z: ascending = z -149, -159
    xa10 = [d for d in sets if "siemens_xa10" in d.frames[0].path]
    assert len(xa10) == 4 and {d.series_uid for d in xa10} == {xa10[0].series_uid}
    assert len({d.uid for d in xa10}) == 4
    emri = [d for d in sets if d.frames[0].path.endswith("emri_small.dcm")]
    assert not emri[0].geometry_ok and emri[0].kind == "multiframe-stack"


def _pixel_files(paths) -> set[str]:
    """Files that really hold pixels: a pixel data element and a Rows/Columns value (full read)."""
    out = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for p in paths:
            try:
                ds = pydicom.dcmread(p, force=True, defer_size=1024)
                pixel = any(
                    k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
                )
                if pixel and ds.get("Rows") and ds.get("Columns"):
                    out.add(str(p))
            except Exception:  # noqa: BLE001 - unreadable files hold no usable pixels
                pass
    return out


@pytest.mark.corpus
def test_whole_corpus_every_pixel_frame_in_exactly_one_display_set(corpus_dir):
    records, problems = read_header_records([corpus_dir])
    sets = build_display_sets(records)
    assert len(records) > 500
    assert {Path(p).name for p, _ in problems} >= {"6_ax_asc_35sl.nii", "MANIFEST.tsv"}
    frames = Counter((f.path, f.frame_index) for d in sets for f in d.frames)
    assert max(frames.values()) == 1
    in_sets = {p for p, _ in frames}
    # its pixel data element is truncated, so a full read loses it; the header read sees it
    truncated = str(
        corpus_dir / "edge_cases/pydicom_data/emri_small_jpeg_2k_lossless_too_short.dcm"
    )
    every_file = [str(p) for p in corpus_dir.rglob("*") if p.is_file()]
    assert in_sets == _pixel_files(every_file) | {truncated}
    for rec in records:  # every frame of a multi-frame file, each once
        try:
            n = int(rec.ds.get("NumberOfFrames") or 1)
        except ValueError:  # edge_cases/pydicom/badVR.dcm: "1A"
            n = 1
        if rec.path in in_sets and n > 1:
            assert sorted(i for p, i in frames if p == rec.path) == list(range(n)), rec.path
    assert len({d.uid for d in sets}) == len(sets)
