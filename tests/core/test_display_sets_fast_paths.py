"""The display-set build's fast paths give exactly what the general ones give, on every corpus file."""

from __future__ import annotations

import numpy as np

from workstation.core.display_sets import _classic_plane, _get, read_header_records
from workstation.core.geometry import plane_from_dataset


def test_classic_planes_from_raw_bytes_match_plane_from_dataset(corpus_dir) -> None:
    records, _ = read_header_records([corpus_dir])
    assert len(records) > 300
    fast = 0
    for rec in records:
        plane = _classic_plane(rec.ds)  # first: the raw values are not converted yet
        try:
            want = plane_from_dataset(rec.ds, None)
        except Exception:  # noqa: BLE001 - _safe_plane's general path gives None then
            want = None
        if plane is False:
            continue  # the general path decides
        fast += 1
        if want is None:
            assert plane is None, rec.path
            continue
        assert plane is not None, rec.path
        for a in ("origin", "row_dir", "col_dir"):
            assert np.array_equal(getattr(plane, a), getattr(want, a)), (rec.path, a)
        assert plane.spacing_rc == want.spacing_rc and (plane.rows, plane.cols) == (
            want.rows,
            want.cols,
        ), rec.path
    assert fast > 300  # the usual case does take the fast path


def test_get_by_tag_matches_keyword_get(corpus_dir) -> None:
    records, _ = read_header_records([corpus_dir / "barre_classic_samples"])
    keywords = ("SeriesInstanceUID", "InstanceNumber", "ImageType", "Modality", "EchoNumbers",
                "SeriesNumber", "NumberOfFrames", "SOPClassUID", "SeriesDescription")  # fmt: skip
    assert records
    for rec in records:
        for k in keywords:
            try:
                want = rec.ds.get(k, None)
                want = None if want in (None, "") else want
            except Exception:  # noqa: BLE001
                want = None
            assert _get(rec.ds, k) == want, (rec.path, k)


def test_raw_text_number_and_image_type_match_general_paths(corpus_dir) -> None:
    """``_text``/``_number``/``_frame_is_localizer`` read plain values straight from the raw
    bytes: on every corpus file they give what pydicom's converted values give."""
    from workstation.core.display_sets import (
        _frame_is_localizer,
        _image_type_localizer,
        _int,
        _number,
        _text,
    )
    from workstation.core.raw_values import raw_element, tag_of

    records, _ = read_header_records([corpus_dir])
    texts = ("SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID",
             "Modality", "FrameOfReferenceUID")  # fmt: skip
    numbers = ("Rows", "Columns", "InstanceNumber", "NumberOfFrames", "SeriesNumber",
               "AcquisitionNumber", "BitsAllocated")  # fmt: skip
    fast = 0
    for rec in records:
        ds = rec.ds
        raw = {k: raw_element(ds, tag_of(k)) is not None for k in (*texts, *numbers, "ImageType")}
        fast += sum(raw.values())
        # first the fast paths (values still raw), then the general ones on a fresh read
        got_t = {k: _text(ds, k) for k in texts}
        got_n = {k: _number(ds, k) for k in numbers}
        got_loc = _frame_is_localizer(ds, None)
        for k in texts:
            assert got_t[k] == str(_get(ds, k, "")), (rec.path, k)
        for k in numbers:
            assert got_n[k] == _int(_get(ds, k)), (rec.path, k)
        assert got_loc == _image_type_localizer(_get(ds, "ImageType", ())), rec.path
    assert fast > 3000  # the usual files do take the fast paths


def test_pixel_layout_raw_integers_match_converted_values(corpus_dir) -> None:
    """pixel_layout's integers read from raw US/IS bytes equal pydicom's converted values."""
    from workstation.core import pixel_layout as pl

    records, _ = read_header_records([corpus_dir])
    tags = (pl._SAMPLES, pl._ROWS, pl._COLUMNS, pl._FRAMES, pl._BITS_ALLOCATED,
            pl._BITS_STORED, pl._PIXEL_REPRESENTATION)  # fmt: skip
    checked = 0
    for rec in records:
        fast = {t: pl._int(rec.ds, t, 7) for t in tags}  # values still raw
        for t in tags:
            value = rec.ds[t].value if t in rec.ds else None
            try:
                want = 7 if value is None or value == "" else int(value)
            except (TypeError, ValueError):
                want = -1
            assert fast[t] == want, (rec.path, hex(t))
            checked += 1
    assert checked > 2000
