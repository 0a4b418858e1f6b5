"""Key-image notes listed with the study and reopened: a real archive holds a study of two series
(axial and coronal); a KOS marks images of both in an order of its own, plus one image the
archive does not hold. The panel lists the note with the study; opening it shows exactly the
marked images, in document order, as one stack in the active viewport; they count as marked
(the Mark key image button is checked on each); the missing image is named in the status."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PySide6.QtWidgets import QHBoxLayout, QWidget

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic import stack_files  # noqa: E402
from test_annotation_tools import source_of  # noqa: E402

from workstation.app.presentation_states import PresentationStateService  # noqa: E402
from workstation.archive.archive import Archive  # noqa: E402
from workstation.core.frame_cache import FrameCache  # noqa: E402
from workstation.core.series_loader import SeriesLoader  # noqa: E402
from workstation.ui.bindings import load_bindings  # noqa: E402
from workstation.ui.frame_service import FrameService  # noqa: E402
from workstation.ui.key_image_panel import KeyImagePanel  # noqa: E402
from workstation.ui.key_images import open_key_images  # noqa: E402
from workstation.ui.presentation_panel import PresentationPanel  # noqa: E402
from workstation.ui.presets import load_presets  # noqa: E402
from workstation.ui.viewer_area import ViewerArea  # noqa: E402


def _uid(path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


@pytest.fixture
def study(tmp_path):
    """(archive, service, axial paths, coronal paths, the KOS's SOP UID, marked UIDs, missing)."""
    axial = stack_files(tmp_path / "ax", n=5, rows=48, cols=48, study_uid="1.2.3.4.5.6")
    coronal = stack_files(tmp_path / "cor", "coronal", n=4, rows=48, cols=48,
                          study_uid="1.2.3.4.5.6", series_number=2)  # fmt: skip
    archive = Archive(tmp_path / "archive")
    for p in axial + coronal[:3]:  # the last coronal image never reaches the archive
        assert archive.add_file(p).ok
    service = PresentationStateService(archive)
    order = [axial[3], coronal[1], axial[0], coronal[3]]
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in order]
    stored = service.save_kos(headers, description="lesion and comparison", creator="Doe^Jane")
    yield archive, service, axial, coronal, stored.sop_instance_uid, [_uid(p) for p in order]
    archive.close()


def test_the_stack_holds_the_marked_frames_in_document_order(study) -> None:
    archive, service, axial, coronal, kos, marked = study
    doc, files = service.key_image_files(kos)
    assert set(files) == set(marked[:3])  # the fourth is not in the archive
    stack = open_key_images(doc, files, FrameCache(32 * 1024 * 1024))
    src = stack.source
    assert [f.sop_instance_uid for f in src.frames] == marked[:3]
    assert stack.missing == ((marked[3], "not in the archive"),)
    assert "1 key image is not shown" in stack.missing_text() and marked[3] in stack.missing_text()
    series = [str(src.header(i).SeriesInstanceUID) for i in range(len(src))]
    assert series[0] == series[2] != series[1]  # axial, coronal, axial
    assert [s for s, _ in stack.marked] == series
    # the pixels are those of the images named: slice k of stack_files holds 100 * k + col
    for i, k in enumerate((3, 1, 0)):
        values = src.decode(i).modality
        assert np.allclose(values[:, 0], 100 * k)


@pytest.fixture
def viewer(qapp, qtbot):
    service = FrameService(lambda: SeriesLoader(workers=1))
    area = ViewerArea(service, load_bindings(), load_presets())
    yield area
    service.shutdown()


def test_panel_lists_the_note_and_opens_it_as_a_stack(qtbot, study, viewer, tmp_path) -> None:
    archive, service, axial, coronal, kos, marked = study
    keys = KeyImagePanel(viewer, service.for_study, service.key_image_files,
                         FrameCache(64 * 1024 * 1024))  # fmt: skip
    panel = PresentationPanel(viewer, lambda _s: [], key_images=keys)
    keys.on_opened = lambda _v, stack: panel.controller.mark(stack.marked)
    window = QWidget()
    qtbot.addWidget(window)
    row = QHBoxLayout(window)
    row.addWidget(viewer, 3)
    row.addWidget(panel, 2)
    window.resize(1100, 560)
    window.show()
    viewer.active.model.set_source(source_of(
        [str(archive.path_of(r["rel_path"])) for r in archive.find(
            "IMAGE", {"SeriesInstanceUID": str(pydicom.dcmread(axial[0]).SeriesInstanceUID),
                      "rel_path": ""})]), 0)  # fmt: skip
    panel.refresh()
    # listed with the study: title, description, image count, creator
    assert keys.list.count() == 1
    text = keys.list.item(0).text()
    assert "Of Interest" in text and "lesion and comparison" in text and "4 images" in text
    assert "Doe Jane" in text
    assert not panel.mark_button.isChecked()
    shots = Path(os.environ.get("WS_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(shots / "key_images_listed.png"))
    keys.list.setCurrentRow(0)
    with qtbot.waitSignal(keys.opened, timeout=20000) as got:
        keys.open_selected()
    stack = got.args[0]
    v = viewer.active
    assert v.model.source is stack.source
    assert [f.sop_instance_uid for f in v.model.source.frames] == marked[:3]
    assert "3 key images shown" in panel.status.text()
    assert "1 key image is not shown" in panel.status.text() and marked[3] in panel.status.text()
    for i in range(3):  # every image of the stack counts as marked
        v.model.set_index(i)
        assert panel.mark_button.isChecked(), i
    assert [h.SOPInstanceUID for h, _ in panel.controller.key_images(v)] == marked[:3]
    qtbot.waitUntil(lambda: v.current_renderer() is not None, timeout=20000)
    v.model.set_index(1)
    qtbot.waitUntil(lambda: v.current_renderer() is not None, timeout=20000)
    v.repaint()
    window.grab().save(str(shots / "key_images_opened.png"))
    # unmarking one and saving again writes a note of the two left, in stack order
    panel.toggle_key_image()
    assert not panel.mark_button.isChecked()
    assert [h.SOPInstanceUID for h, _ in panel.controller.key_images(v)] == [
        marked[0], marked[2]
    ]  # fmt: skip
    keys.shutdown()


def test_nothing_to_show_is_said(qtbot, study, viewer, tmp_path) -> None:
    archive, service, axial, coronal, kos, marked = study
    lone = pydicom.dcmread(coronal[3], stop_before_pixels=True)  # not in the archive
    only_missing = service.save_kos([lone]).sop_instance_uid
    keys = KeyImagePanel(viewer, service.for_study, service.key_image_files,
                         FrameCache(8 * 1024 * 1024))  # fmt: skip
    qtbot.addWidget(keys)
    messages: list[str] = []
    keys.message.connect(messages.append)
    keys.refresh("1.2.3.4.5.6")
    assert keys.list.count() == 2
    with qtbot.waitSignal(keys.opened, timeout=20000):
        keys.open_document(only_missing)
    assert viewer.active.model.source is None
    assert "no image to show" in messages[-1] and str(lone.SOPInstanceUID) in messages[-1]
    keys.shutdown()
