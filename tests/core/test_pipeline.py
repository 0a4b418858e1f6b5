"""The display pipeline on synthetic images with hand-computed expectations (PS3.3 C.11)."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from synthetic import image_dataset, save

from workstation.core.dicom_file import DicomFile
from workstation.core.pipeline import FrameRenderer, render_frame
from workstation.core.voi import VoiLut, Window, apply_window, minmax_window


def _open(tmp_path, ds, name="img.dcm") -> DicomFile:
    return DicomFile.open(save(ds, tmp_path / name))


def test_linear_window_formula():
    x = np.array([-1000, 0, 39.5, 40, 100, 239.0, 240, 1000], np.float32)
    # c=40, w=400: ymin below c-0.5-(w-1)/2 = -160, ymax above c-0.5+(w-1)/2 = 239
    out = apply_window(x, Window(40, 400))
    expected = np.clip(((x - 39.5) / 399 + 0.5) * 255, 0, 255)
    assert np.array_equal(out, np.floor(expected + 0.5).astype(np.uint8))
    assert out[0] == 0 and out[-1] == 255 and out[-2] == 255


def test_linear_exact_and_sigmoid():
    x = np.array([-200, -160, 0, 40, 240, 300], np.float32)
    exact = apply_window(x, Window(40, 400, "LINEAR_EXACT"))
    assert exact[:2].tolist() == [0, 0] and exact[4:].tolist() == [255, 255]
    assert exact[2] == int(np.floor(((0 - 40) / 400 + 0.5) * 255 + 0.5))  # 102
    assert exact[3] == 128  # (0 + 0.5) * 255 = 127.5 -> 128
    sig = apply_window(x, Window(40, 400, "SIGMOID"))
    ref = 255 / (1 + np.exp(-4 * (x - 40) / 400))
    assert np.array_equal(sig, np.floor(ref + 0.5).astype(np.uint8))
    assert sig[3] == 128  # the centre maps to the middle


def test_modality_rescale_and_signed_bits_stored(tmp_path):
    # 12 bits stored in 16, signed: -2048..2047; high bits hold garbage that must be ignored
    values = np.array([[-2048, -1, 0, 2047]], np.int16)
    garbage = (values.view(np.uint16) & 0x0FFF) | 0xA000
    ds = image_dataset(
        garbage.view(np.int16), bits_stored=12, signed=True, RescaleSlope=2, RescaleIntercept=-10
    )
    r = FrameRenderer(_open(tmp_path, ds), 0)
    assert r.modality.tolist() == [[-4106, -12, -10, 4084]]


def test_modality_lut_sequence(tmp_path):
    item = Dataset()
    item.LUTDescriptor = [4, 10, 16]
    item.ModalityLUTType = "OD"
    item.add_new(0x00283006, "US", [100, 200, 300, 400])
    ds = image_dataset(
        np.array([[5, 10, 12, 13, 99]], np.uint16), ModalityLUTSequence=Sequence([item])
    )
    r = FrameRenderer(_open(tmp_path, ds), 0)
    # below the first mapped value -> first entry, above the last -> last entry
    assert r.modality.tolist() == [[100, 100, 300, 400, 400]]


def test_several_windows_selectable_and_default_is_first(tmp_path):
    ds = image_dataset(
        np.arange(16, dtype=np.uint16).reshape(4, 4),
        WindowCenter=[5, 10],
        WindowWidth=[4, 8],
        WindowCenterWidthExplanation=["NARROW", "WIDE"],
    )
    f = _open(tmp_path, ds)
    r = FrameRenderer(f, 0)
    assert [c.explanation for c in r.choices] == ["NARROW", "WIDE"]
    assert r.default_voi() == Window(5, 4, "LINEAR", "NARROW")
    second = render_frame(f, voi_index=1)
    assert second.voi.explanation == "WIDE"
    assert not np.array_equal(second.pixels, render_frame(f).pixels)
    with pytest.raises(IndexError):
        render_frame(f, voi_index=5)


def test_voi_lut_sequence(tmp_path):
    lut = Dataset()
    lut.LUTDescriptor = [3, 0, 8]
    lut.add_new(0x00283006, "US", [0, 128, 255])
    ds = image_dataset(np.array([[0, 1, 2, 7]], np.uint16), VOILUTSequence=Sequence([lut]))
    r = FrameRenderer(_open(tmp_path, ds), 0)
    assert isinstance(r.default_voi(), VoiLut)
    assert r.render().pixels.tolist() == [[0, 128, 255, 255]]


def test_monochrome1_and_presentation_lut_inverse(tmp_path):
    base = np.array([[0, 255]], np.uint8)
    m1 = FrameRenderer(_open(tmp_path, image_dataset(base, photometric="MONOCHROME1"), "m1.dcm"))
    assert m1.render().pixels.tolist() == [[255, 0]]
    assert m1.render(invert=True).pixels.tolist() == [[0, 255]]  # user invert undoes it
    # MONOCHROME1 with INVERSE (what DX requires) is one inversion, not two
    dx = image_dataset(base, photometric="MONOCHROME1", PresentationLUTShape="INVERSE")
    assert FrameRenderer(_open(tmp_path, dx, "dx.dcm")).render().pixels.tolist() == [[255, 0]]
    m2 = image_dataset(base, PresentationLUTShape="INVERSE")
    assert FrameRenderer(_open(tmp_path, m2, "m2.dcm")).render().pixels.tolist() == [[255, 0]]


def test_padding_excluded_from_default_window(tmp_path):
    stored = np.array([[-2000, -2000, 0, 100]], np.int16)
    ds = image_dataset(stored, PixelPaddingValue=-2000)
    r = FrameRenderer(_open(tmp_path, ds), 0)
    w = r.default_voi()
    assert w.explanation == "min-max"
    assert w.bounds() == pytest.approx((0, 100))
    assert r.render().pixels.tolist() == [[0, 0, 0, 255]]
    assert minmax_window(r.modality).bounds() == pytest.approx((-2000, 100))


def test_overlay_separate_plane_and_embedded(tmp_path):
    stored = np.zeros((4, 8), np.uint16)
    ds = image_dataset(stored, WindowCenter=100, WindowWidth=10)
    bits = np.zeros((2, 8), np.uint8)
    bits[0, 1] = 1
    ds.add_new(0x60000010, "US", 2)
    ds.add_new(0x60000011, "US", 8)
    ds.add_new(0x60000050, "SS", [2, 1])  # origin: row 2, column 1 (1-based)
    ds.add_new(0x60000040, "CS", "G")
    ds.add_new(0x60000100, "US", 1)
    ds.add_new(0x60000102, "US", 0)
    ds.add_new(0x60003000, "OW", np.packbits(bits.ravel(), bitorder="little").tobytes())
    img = render_frame(_open(tmp_path, ds, "sep.dcm"))
    assert img.overlays == (0x6000,)
    assert img.pixels[1, 1] == 255 and img.pixels.sum() == 255
    assert render_frame(_open(tmp_path, ds, "sep.dcm"), overlays=False).pixels.sum() == 0

    # embedded: bit 15 of a 12-bit image
    emb = np.zeros((2, 2), np.uint16)
    emb[1, 0] = 1 << 15
    ds2 = image_dataset(emb, bits_stored=12, WindowCenter=100, WindowWidth=10)
    ds2.add_new(0x60000010, "US", 2)
    ds2.add_new(0x60000011, "US", 2)
    ds2.add_new(0x60000100, "US", 16)
    ds2.add_new(0x60000102, "US", 15)
    img2 = render_frame(_open(tmp_path, ds2, "emb.dcm"))
    assert img2.pixels.tolist() == [[0, 0], [255, 0]]
