"""Presentation states and key images in a real archive (SQLite index + store): saved as part of
the study, listed per study and per series, loaded back as editable annotations, and sent to a
real DCMTK storescp by C-STORE."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import peers  # noqa: E402

from workstation.app.presentation_states import (  # noqa: E402
    PresentationStateError,
    PresentationStateService,
)
from workstation.archive.archive import Archive  # noqa: E402
from workstation.core.annotations import ImageRef, Layer, new_annotation  # noqa: E402
from workstation.core.view_state import ImageGeometry, ViewState  # noqa: E402
from workstation.core.voi import Window  # noqa: E402
from workstation.net.nodes import LocalIdentity, RemoteNode  # noqa: E402
from workstation.pstate.apply import presentation_from_view, view_from_presentation  # noqa: E402
from workstation.pstate.model import PresentationState  # noqa: E402

S2010 = "dicomdir_cd/philips_ingenuity_ct_cd/DICOM/S21570/S2010"
S1000 = "dicomdir_cd/philips_ingenuity_ct_cd/DICOM/S21570/S1000"


@pytest.fixture
def archive(tmp_path, corpus_dir):
    with Archive(tmp_path / "archive") as a:
        for name in ("I100", "I110", "I120"):
            assert a.add_file(corpus_dir / S2010 / name).ok
        other = sorted(p for p in (corpus_dir / S1000).glob("I*"))[:1]
        for path in other:
            assert a.add_file(path).ok
        yield a


def _state_for(ds) -> tuple[PresentationState, tuple]:
    ref = ImageRef(str(ds.SOPInstanceUID), None, str(ds.SOPClassUID))
    anns = (
        new_annotation("length", [(100.5, 200.25), (300.75, 210.5)], ref),
        new_annotation(
            "ellipse", [(200, 250), (260, 250), (230, 235), (230, 265)], ref, layer="ROIS"
        ),  # fmt: skip
        new_annotation("text", [(50, 60)], ref, text="compare with prior", layer="NOTES"),
    )
    view = ViewState(voi=Window(40, 80), zoom_mode="free", zoom=2.0, pan=(10.0, 5.0), rotation=90)
    geo = ImageGeometry(int(ds.Rows), int(ds.Columns), tuple(float(v) for v in ds.PixelSpacing))
    p = presentation_from_view(view, ref, geo, (800.0, 600.0), annotations=anns,
                               layers={"ROIS": Layer("ROIS", 2, (0, 255, 0))})  # fmt: skip
    state = PresentationState("", "", str(ds.StudyInstanceUID), "Brain window", "reading",
                              "Doe^Jane", images={(ref.sop_instance_uid, None): p})  # fmt: skip
    return state, (view, geo)


def test_save_list_load(archive, corpus_dir) -> None:
    svc = PresentationStateService(archive)
    ds = pydicom.dcmread(corpus_dir / S2010 / "I100", stop_before_pixels=True)
    state, (view, geo) = _state_for(ds)
    saved = svc.save_gsps(state, [ds])
    assert saved.kind == "GSPS" and saved.label == "BRAIN WINDOW" and saved.path.is_file()
    key_images = [pydicom.dcmread(corpus_dir / S2010 / n, stop_before_pixels=True)
                  for n in ("I110", "I120")]  # fmt: skip
    kos = svc.save_kos(key_images, description="key slices")
    study = str(ds.StudyInstanceUID)

    listed = svc.for_study(study)
    assert {s.sop_instance_uid for s in listed} == {saved.sop_instance_uid, kos.sop_instance_uid}
    # stored as part of the study: the archive's study now has the PR and KO series too
    modalities = {r["Modality"] for r in archive.find("SERIES", {"StudyInstanceUID": study,
                                                                "Modality": ""})}  # fmt: skip
    assert {"CT", "PR", "KO"} <= modalities

    series = str(ds.SeriesInstanceUID)
    assert {s.kind for s in svc.for_series(series)} == {"GSPS", "KOS"}
    other_series = next(r["SeriesInstanceUID"] for r in archive.find(
        "SERIES", {"StudyInstanceUID": "", "SeriesInstanceUID": "", "Modality": "CT"})
        if r["SeriesInstanceUID"] != series)  # fmt: skip
    assert svc.for_series(other_series) == []

    back = svc.load_gsps(saved.sop_instance_uid)
    p = back.for_image(str(ds.SOPInstanceUID), None)
    want = {a.uid: a for a in state.all_annotations}
    for a in p.annotations:
        assert a.kind == want[a.uid].kind and a.text == want[a.uid].text
        assert np.abs(np.array(a.points) - np.array(want[a.uid].points)).max() < 0.01
    applied = view_from_presentation(p, geo, (800.0, 600.0))
    assert (applied.voi.center, applied.voi.width, applied.rotation) == (40, 80, 90)
    assert applied.zoom == pytest.approx(2.0, rel=0.01)

    doc = svc.load_kos(kos.sop_instance_uid)
    assert doc.sop_instance_uids == tuple(str(d.SOPInstanceUID) for d in key_images)
    assert doc.description == "key slices"
    # listing again comes from the cache and gives the same answer
    assert svc.for_study(study) == listed

    with pytest.raises(PresentationStateError, match="no instance 1.2.3.4 in the archive"):
        svc.load_gsps("1.2.3.4")


def test_damaged_state_in_archive_does_not_hide_the_others(archive, corpus_dir, tmp_path) -> None:
    svc = PresentationStateService(archive)
    ds = pydicom.dcmread(corpus_dir / S2010 / "I100", stop_before_pixels=True)
    good = svc.save_gsps(_state_for(ds)[0], [ds])
    bad = pydicom.dcmread(good.path)
    bad.SOPInstanceUID = bad.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    del bad.ReferencedSeriesSequence  # references no image: unreadable as a state
    path = tmp_path / "bad.dcm"
    bad.save_as(path, enforce_file_format=True)
    assert archive.add_file(path).ok
    listed = svc.for_study(str(ds.StudyInstanceUID))
    assert [s.sop_instance_uid for s in listed] == [good.sop_instance_uid]


@pytest.mark.skipif(not peers.have("storescp"), reason="DCMTK storescp absent")
def test_send_to_pacs(archive, corpus_dir, tmp_path) -> None:
    received = tmp_path / "received"
    received.mkdir()
    port = peers.free_port()
    proc = subprocess.Popen(["storescp", "-od", str(received), str(port)], env=peers.NODELAY,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        peers.wait_for_port(port, proc, what="storescp")
        svc = PresentationStateService(archive, identity=LocalIdentity("WS_TEST"))
        ds = pydicom.dcmread(corpus_dir / S2010 / "I100", stop_before_pixels=True)
        saved = svc.save_gsps(_state_for(ds)[0], [ds])
        kos = svc.save_kos([ds])
        node = RemoteNode("pacs", "STORESCP", "127.0.0.1", port)
        assert svc.send(saved.sop_instance_uid, node).status == 0
        assert svc.send(kos.sop_instance_uid, node).status == 0
    finally:
        peers.stop_process(proc)
    got = {str(pydicom.dcmread(p).SOPInstanceUID) for p in received.iterdir()}
    assert got == {saved.sop_instance_uid, kos.sop_instance_uid}
    nobody = RemoteNode("gone", "NOBODY", "127.0.0.1", peers.free_port(), connect_timeout=2.0)
    from workstation.net.errors import NetError

    with pytest.raises(NetError, match="gone"):
        svc.send(saved.sop_instance_uid, nobody)
    with pytest.raises(PresentationStateError, match="no local AE title"):
        PresentationStateService(archive).send(saved.sop_instance_uid, node)
