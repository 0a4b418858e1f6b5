"""The lean header reader gives exactly the Dataset pydicom's general reader gives, on every
corpus file it takes (and it takes the usual ones)."""

from __future__ import annotations

import os
import shutil
import threading
from io import BytesIO
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from synthetic import image_dataset, save

from workstation.core.dicom_file import _DEFER, read_dataset
from workstation.core.errors import DicomError
from workstation.core.lean_header import read_header_lean
from workstation.core.pixel_layout import pixel_layout


def _raw_equal(a: Dataset, b: Dataset, where: str) -> None:
    """Same elements, unconverted: raw tuples equal, or (undefined length sequences) equal
    converted elements, recursively."""
    assert list(a._dict) == list(b._dict), where
    for tag, ea in a._dict.items():
        eb = b._dict[tag]
        if isinstance(ea, RawDataElement) and isinstance(eb, RawDataElement):
            assert tuple(ea) == tuple(eb), (where, tag)
            continue
        ea, eb = a[tag], b[tag]  # one side converted already (the general reader looks some up)
        assert (ea.tag, ea.VR, ea.file_tell, ea.is_undefined_length) == (
            eb.tag, eb.VR, eb.file_tell, eb.is_undefined_length
        ), (where, tag)  # fmt: skip
        if ea.VR == "SQ":
            assert len(ea.value) == len(eb.value), (where, tag)
            for ia, ib in zip(ea.value, eb.value, strict=True):
                _raw_equal(ia, ib, f"{where} {tag} item")
        else:
            assert ea.value == eb.value, (where, tag)


def assert_same_dataset(lean: Dataset, general: Dataset, path: str) -> None:
    _raw_equal(lean, general, path)
    _raw_equal(lean.file_meta, general.file_meta, path + " meta")
    for attr in ("preamble", "filename", "fileobj_type", "timestamp", "_read_implicit",
                 "_read_little", "original_encoding", "_character_set", "is_little_endian",
                 "is_implicit_VR"):  # fmt: skip
        assert getattr(lean, attr) == getattr(general, attr), (path, attr)
    assert lean.file_meta.original_encoding == general.file_meta.original_encoding, path
    assert type(lean) is type(general) and type(lean.file_meta) is type(general.file_meta)
    assert lean == general, path  # every value converted (deferred ones read from the file)


def test_lean_reader_equals_general_reader_on_every_corpus_file(corpus_files) -> None:
    taken = 0
    for path in map(str, corpus_files):
        lean = read_header_lean(path, _DEFER)
        if lean is None:
            continue  # the general reader decides
        taken += 1
        general = pydicom.dcmread(path, defer_size=_DEFER, force=True)
        assert_same_dataset(lean, general, path)
        # the pixel data is deferred at the same offset: the loader's layouts agree
        assert pixel_layout(lean) == pixel_layout(general), path
    assert taken > 300  # the usual files do take the lean path


def test_in_memory_files_read_the_same_on_every_corpus_file(corpus_files) -> None:
    """A file received over the network is read from memory (``BytesIO``): the header
    ``read_dataset`` gives for it (lean where it can) equals pydicom's general reader's, and
    equals what the lean reader gives for the same file on disk."""
    taken = 0
    for path in map(str, corpus_files):
        buffer = BytesIO(Path(path).read_bytes())
        try:
            general = pydicom.dcmread(buffer, defer_size=_DEFER, force=True)
        except Exception:
            continue  # not DICOM at all: read_dataset's errors are tested elsewhere
        buffer.seek(0)
        lean = read_header_lean(buffer, _DEFER)
        if lean is not None:
            taken += 1
            _raw_equal(lean, general, path)
            _raw_equal(lean.file_meta, general.file_meta, path + " meta")
            assert lean == general, path
            on_disk = read_header_lean(path, _DEFER)
            assert on_disk is not None and on_disk == lean, path
        buffer.seek(0)
        try:
            ours, _ = read_dataset(buffer, header_only=True, name=path)
        except DicomError:
            continue
        assert ours == general or len(general) == 0, path
    assert taken > 300


def test_lean_reader_declines_what_it_does_not_take(tmp_path, corpus_dir) -> None:
    ds = image_dataset(np.arange(64 * 64, dtype=np.int16).reshape(64, 64))
    plain = Path(save(ds, tmp_path / "plain.dcm"))
    assert read_header_lean(str(plain), _DEFER) is not None
    headless = tmp_path / "headless.dcm"
    headless.write_bytes(plain.read_bytes()[132:])  # no preamble / DICM
    assert read_header_lean(str(headless), _DEFER) is None
    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(plain.read_bytes()[:-100])  # ends inside the pixel data
    assert read_header_lean(str(truncated), _DEFER) is None
    for name in ("barre_classic_samples/US_Explicit_Big_RGB.dcm",  # big endian
                 "barre_classic_samples/CT_JPEG70.dcm",  # encapsulated pixel data
                 "transfer_syntax/pydicom_test_files/image_dfl.dcm"):  # deflated  # fmt: skip
        copy = tmp_path / Path(name).name
        shutil.copy(corpus_dir / name, copy)
        assert read_header_lean(str(copy), _DEFER) is None, name
    with pytest.raises(OSError):
        read_header_lean(str(tmp_path / "missing.dcm"), _DEFER)


def test_implicit_vr_with_undefined_length_sequences_and_trailing_elements(tmp_path) -> None:
    ds = image_dataset(np.arange(64 * 64, dtype=np.int16).reshape(64, 64))
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    item.ReferencedSOPInstanceUID = "1.2.3.4"
    ds.ReferencedImageSequence = [item, item]
    ds.add_new(0x00091010, "LO", "private")
    ds.add_new(0xFFFCFFFC, "OB", b"\0" * 10)  # trailing padding after the pixel data
    for syntax in (pydicom.uid.ImplicitVRLittleEndian, pydicom.uid.ExplicitVRLittleEndian):
        ds.file_meta.TransferSyntaxUID = syntax
        path = tmp_path / f"seq-{syntax}.dcm"
        ds.save_as(path, implicit_vr=syntax.is_implicit_VR, little_endian=True)
        # undefined length sequences and items
        raw = path.read_bytes()
        lean = read_header_lean(str(path), _DEFER)
        assert lean is not None, syntax
        general = pydicom.dcmread(str(path), defer_size=_DEFER, force=True)
        assert_same_dataset(lean, general, str(path))
        assert lean.ReferencedImageSequence[1].ReferencedSOPInstanceUID == "1.2.3.4"
        assert 0xFFFCFFFC in lean and len(raw) > 0


def test_unreadable_or_non_dicom_files_still_reported(tmp_path) -> None:
    bad = tmp_path / "notdicom.dcm"
    bad.write_bytes(b"hello" * 100)
    assert read_header_lean(str(bad), _DEFER) is None
    with pytest.raises(DicomError):
        read_dataset(str(bad), header_only=True)


def test_a_fifo_is_left_to_the_general_reader_unopened(tmp_path) -> None:
    """Bytes from a FIFO can be read once: the lean reader must not open it (it took the first
    16 KB, and whoever read the FIFO next waited for a writer that had gone: a series load whose
    first file was a FIFO hung, tests/core/test_series_loader_shm_full.py)."""
    fifo = tmp_path / "first.fifo"
    os.mkfifo(fifo)
    result: list = []
    reader = threading.Thread(
        target=lambda: result.append(read_header_lean(str(fifo), _DEFER)), daemon=True
    )
    reader.start()
    reader.join(5)  # opening it would wait for a writer, and there is none
    assert not reader.is_alive() and result == [None]
