"""The index record read straight from a file's bytes (record_scan) is the record pydicom's
reading gives, on every corpus file and on the structures the scan steps over."""

from __future__ import annotations

import io
import random

import pydicom
import pytest
from archive_factory import instance, to_bytes
from pydicom.dataset import Dataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
)

from workstation.archive import store
from workstation.archive.attributes import record_from_scan
from workstation.archive.record_scan import RECORD_TAGS, scan_header


def _before(data: bytes) -> object:
    """The record as read before the scan existed (pydicom's Dataset), or the refusal."""
    got = store.read_record(io.BytesIO(data), "x")
    return ("refused", got.reason) if isinstance(got, store.Prepared) else got


def _now(data: bytes) -> object:
    got = store.read_record_bytes(data, "x")
    return ("refused", got.reason) if isinstance(got, store.Prepared) else got


def _no_pydicom() -> Dataset:
    raise AssertionError("the record needed pydicom's Dataset")


def test_same_record_as_pydicom_on_every_corpus_file(corpus_files) -> None:
    scanned = 0
    for path in corpus_files:
        data = path.read_bytes()
        assert _now(data) == _before(data), path
        scanned += scan_header(data) is not None
    assert scanned > 450  # the usual files are scanned (555 files, 42 left to pydicom today)


def test_a_plain_ct_needs_no_dataset_and_a_code_extension_charset_does(corpus_dir) -> None:
    ct = sorted((corpus_dir / "ct_series").rglob("*.dcm"))[0].read_bytes()
    scan = scan_header(ct)
    assert scan is not None
    assert record_from_scan(scan, _no_pydicom) == _before(ct)  # never asked for the Dataset
    japanese = (corpus_dir / "charsets/pydicom/chrJapMulti.dcm").read_bytes()
    scan = scan_header(japanese)
    assert scan is not None
    loads = []

    def load() -> Dataset:
        loads.append(1)
        return pydicom.dcmread(io.BytesIO(japanese), force=True)

    record = record_from_scan(scan, load)
    assert loads and record == _before(japanese)
    assert not record.patient_name.isascii()


def test_an_attribute_not_scanned_for_is_read_by_pydicom_never_taken_as_absent(
    corpus_dir,
) -> None:
    """The scan's list of attributes is a speed-up only: a record built from a scan that did not
    look for some of them (the charset among them) reads those through pydicom."""
    for data in (
        sorted((corpus_dir / "ct_series").rglob("*.dcm"))[0].read_bytes(),
        (corpus_dir / "charsets/pydicom/chrJapMulti.dcm").read_bytes(),
    ):
        partial = RECORD_TAGS - {0x00100010, 0x00080005, 0x00200013}  # name, charset, number
        scan = scan_header(data, partial)
        assert scan is not None and 0x00100010 not in scan.values
        loads: list[int] = []

        def load(data: bytes = data, loads: list[int] = loads) -> Dataset:
            loads.append(1)
            return pydicom.dcmread(io.BytesIO(data), force=True)

        record = record_from_scan(scan, load)
        assert loads and record == _before(data)
        assert record.patient_name and record.instance_number is not None


def _with_sequences(syntax: pydicom.uid.UID) -> bytes:
    """An instance whose wanted values sit around undefined length sequences: nested ones,
    empty ones, items of defined and undefined length, and a private UN sequence."""
    ds = instance(patient_name="AFTER^SEQUENCES", accession="A7")
    inner = Dataset()
    inner.CodeValue, inner.CodingSchemeDesignator, inner.CodeMeaning = "1", "DCM", "x"
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    item.ReferencedSOPInstanceUID = "1.2.3.4"
    item.PurposeOfReferenceCodeSequence = [inner]
    item.PatientName = "NESTED^NOT^TOP"  # a wanted keyword, but not at the top level
    defined = Dataset()
    defined.ReferencedSOPInstanceUID = "1.2.3.5"
    ds.ReferencedImageSequence = [item, defined]  # (0008,1140): between wanted ones
    ds.ProcedureCodeSequence = []  # empty
    for keyword in ("ReferencedImageSequence", "ProcedureCodeSequence"):
        ds[keyword].is_undefined_length = True
    item["PurposeOfReferenceCodeSequence"].is_undefined_length = True
    item.is_undefined_length_sequence_item = True
    inner.is_undefined_length_sequence_item = True
    ds.add_new(0x00091010, "LO", "private")
    ds.file_meta.TransferSyntaxUID = syntax
    buffer = io.BytesIO()
    ds.save_as(buffer, implicit_vr=syntax.is_implicit_VR, little_endian=True)
    return buffer.getvalue()


@pytest.mark.parametrize("syntax", [ImplicitVRLittleEndian, ExplicitVRLittleEndian])
def test_undefined_length_sequences_are_stepped_over(syntax) -> None:
    data = _with_sequences(syntax)
    assert b"\xfe\xff\xdd\xe0" in data  # pydicom wrote undefined lengths and delimiters
    scan = scan_header(data)
    assert scan is not None
    record = record_from_scan(scan, _no_pydicom)
    assert record == _before(data)
    assert record.patient_name == "AFTER^SEQUENCES" and record.accession == "A7"


def test_a_un_sequence_of_undefined_length_is_read_as_implicit_vr() -> None:
    """PS3.5 6.2.2: an explicit VR file may carry a sequence as UN of undefined length, whose
    items are implicit VR; a defined length item inside it and the wanted elements after it."""
    data = bytearray(_with_sequences(ExplicitVRLittleEndian))
    at = data.index(b"\x08\x00\x40\x11SQ")  # ReferencedImageSequence, explicit SQ
    data[at + 4 : at + 6] = b"UN"  # now UN: its items must be read as implicit VR
    implicit_items = _with_sequences(ImplicitVRLittleEndian)
    start = implicit_items.index(b"\x08\x00\x40\x11") + 8
    end = implicit_items.index(b"\xfe\xff\xdd\xe0", start) + 8
    rebuilt = bytes(data[: at + 12]) + implicit_items[start:end]
    rest = data.index(b"\xfe\xff\xdd\xe0", at) + 8  # the explicit sequence's own delimiter
    while data[rest : rest + 4] == b"\xfe\xff\xdd\xe0":
        rest += 8
    rebuilt += bytes(data[rest:])
    scan = scan_header(rebuilt)
    assert scan is not None
    assert record_from_scan(scan, _no_pydicom) == _before(rebuilt)
    assert record_from_scan(scan, _no_pydicom).accession == "A7"


def test_what_the_scan_does_not_take_goes_to_pydicom(tmp_path) -> None:
    plain = to_bytes(instance())
    assert scan_header(plain) is not None
    for syntax in (ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian):
        ds = instance()
        ds.file_meta.TransferSyntaxUID = syntax
        buffer = io.BytesIO()
        ds.save_as(buffer, implicit_vr=False, little_endian=syntax != ExplicitVRBigEndian)
        data = buffer.getvalue()
        assert scan_header(data) is None, syntax
        assert _now(data) == _before(data)
        assert not isinstance(_now(data), tuple), syntax  # indexed, by pydicom
    assert scan_header(plain[132:]) is None  # no preamble: pydicom's heuristics
    dicomdir = instance()
    dicomdir.DirectoryRecordSequence = []
    data = to_bytes(dicomdir)
    assert scan_header(data) is None
    assert _now(data)[0] == "refused" and "DICOMDIR" in _now(data)[1]


def test_bad_uids_are_refused_with_the_same_words() -> None:
    data = to_bytes(instance(sop="1.2.3..4"))
    assert scan_header(data) is not None
    assert _now(data) == _before(data)
    assert _now(data)[0] == "refused" and "SOPInstanceUID" in _now(data)[1]


def test_encapsulated_pixel_data_must_end_with_its_delimiter() -> None:
    ds = instance()
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.PixelData = pydicom.encaps.encapsulate([b"\xff\xd8" + b"\0" * 98 + b"\xff\xd9"])
    ds["PixelData"].is_undefined_length = True
    data = to_bytes(ds)
    scan = scan_header(data)
    assert scan is not None and scan.has_pixel_data
    assert record_from_scan(scan, _no_pydicom) == _before(data)
    cut = data[:-20]  # ends inside the fragments: pydicom's reading says so
    assert scan_header(cut) is None
    assert _now(cut) == _before(cut) and _now(cut)[0] == "refused"


def test_truncated_and_damaged_headers_give_what_pydicom_gives() -> None:
    """Cut anywhere, or with header bytes changed at random: the same record or the same
    refusal as pydicom's reading (the scan declines what it cannot read whole)."""
    data = _with_sequences(ExplicitVRLittleEndian)
    header_end = data.index(b"\xe0\x7f\x10\x00")
    for cut in range(132, header_end + 40, 7):
        assert _now(data[:cut]) == _before(data[:cut]), cut
    rng = random.Random(7)
    scanned = 0
    for _ in range(300):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            damaged[rng.randrange(132, header_end)] = rng.randrange(256)
        assert _now(bytes(damaged)) == _before(bytes(damaged))
        scanned += scan_header(bytes(damaged)) is not None
    assert scanned > 100  # most damage is in values: those files are still scanned
