"""The study browser on real archives: list contents and order, searching (wildcards, dates),
stale answers, series tiles with thumbnails, the hand-off signals, importing with progress and
cancel."""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import GE_CT, TODAY, double_click
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from workstation.archive.importer import Importer
from workstation.archive.results import AddStatus
from workstation.ui.browser import StudyBrowser, StudyQuery
from workstation.ui.browser.series_panel import THUMB_SIZE
from workstation.ui.browser.study_model import COLUMNS
from workstation.ui.series_request import SeriesRequest

TIMEOUT = 10_000


def make_browser(qtbot, widgets, archive, importer=None, show=False) -> StudyBrowser:
    browser = StudyBrowser(archive, importer)
    qtbot.addWidget(browser)
    widgets.append(browser)
    if show:
        browser.resize(1200, 700)
        browser.show()
        qtbot.waitExposed(browser)
    qtbot.waitUntil(lambda: browser.status.text() != "", timeout=TIMEOUT)
    return browser


def ids(browser: StudyBrowser) -> list[str]:
    return [r.patient_id for r in browser.model.rows()]


def texts(browser: StudyBrowser, row: int) -> list[str]:
    m = browser.model
    return [m.data(m.index(row, c)) for c in range(m.columnCount())]


def search(qtbot, browser: StudyBrowser, query: StudyQuery | None = None):
    with qtbot.waitSignal(browser.search_finished, timeout=TIMEOUT) as blocker:
        if query is None:
            browser.form.submit()
        else:
            browser.search(query)
    return blocker.args[0]


# --- the list ---------------------------------------------------------------------------------
def test_lists_every_study_with_reader_formatted_columns(qtbot, synthetic_archive, widgets):
    browser = make_browser(qtbot, widgets, synthetic_archive)
    assert sorted(ids(browser)) == ["P1", "P2", "P3", "P4", "P5"]
    assert [c.title for c in COLUMNS] == ["Patient name", "Patient ID", "Birth date",
                                          "Study date", "Modalities", "Description",
                                          "Accession", "Images"]  # fmt: skip
    row = browser.model.row_of(synthetic_archive.uids["P1"])
    two_days_ago = (TODAY - _dt.timedelta(days=2)).isoformat()
    assert texts(browser, row) == ["Smith, John", "P1", "1970-01-01", two_days_ago, "CT, SR",
                                   "CHEST", "A100", "4"]  # fmt: skip
    jane = texts(browser, browser.model.row_of(synthetic_archive.uids["P2"]))
    assert jane[:4] == ["SMITH, JANE", "P2", "1970-01-01", "2023-02-20"]
    assert browser.status.text() == "5 studies"


def test_default_order_is_newest_first_and_columns_sort(qtbot, synthetic_archive, widgets):
    browser = make_browser(qtbot, widgets, synthetic_archive)
    assert ids(browser) == ["P4", "P1", "P3", "P2", "P5"]  # study date, newest first
    browser.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)  # as a header click does
    assert [texts(browser, r)[0] for r in range(5)] == [
        "Jones, Indiana", "Nguyen, Anh", "SMITH, JANE", "Smith, John", "Smithers, Waylon",
    ]  # fmt: skip
    browser.table.sortByColumn(7, Qt.SortOrder.DescendingOrder)
    assert [browser.model.rows()[r].num_images for r in range(5)] == [4, 4, 2, 2, 1]
    browser.table.sortByColumn(3, Qt.SortOrder.AscendingOrder)
    assert ids(browser) == ["P5", "P2", "P3", "P1", "P4"]


def test_selection_follows_its_study_when_sorting(qtbot, synthetic_archive, widgets):
    browser = make_browser(qtbot, widgets, synthetic_archive)
    uid = synthetic_archive.uids["P3"]
    assert browser.select_study(uid)
    browser.table.sortByColumn(1, Qt.SortOrder.AscendingOrder)
    assert browser.selected_study_uid() == uid
    assert browser.table.currentIndex().row() == browser.model.row_of(uid) == 2


# --- searching --------------------------------------------------------------------------------
def test_search_by_name_with_wildcards_and_prefix(qtbot, synthetic_archive, widgets):
    browser = make_browser(qtbot, widgets, synthetic_archive)
    browser.form.name.setText("smith*")
    search(qtbot, browser)
    assert sorted(ids(browser)) == ["P1", "P2", "P3"]
    browser.form.name.setText("smith^j?n?")  # one character each: JANE, not JOHN
    search(qtbot, browser)
    assert ids(browser) == ["P2"]
    browser.form.name.setText("jon")  # no wildcard: a prefix, case-insensitive
    search(qtbot, browser)
    assert ids(browser) == ["P4"]
    browser.form.name.setText("")
    browser.form.description.setText("HEA")  # no wildcard: a substring
    search(qtbot, browser)
    assert ids(browser) == ["P2"]
    browser.form.description.setText("")
    browser.form.modality.setCurrentText("CT")
    search(qtbot, browser)
    assert sorted(ids(browser)) == ["P1", "P3"]
    browser.form.modality.setCurrentText("")
    browser.form.name.setText("nobody*")
    result = search(qtbot, browser)
    assert result.rows == () and browser.status.text() == "No study matches"


def test_search_by_date_quick_choices_and_range(qtbot, synthetic_archive, widgets):
    browser = make_browser(qtbot, widgets, synthetic_archive)
    with qtbot.waitSignal(browser.search_finished, timeout=TIMEOUT):
        browser.form.date_choice.setCurrentText("Today")  # searches at once
    assert ids(browser) == ["P4"]
    with qtbot.waitSignal(browser.search_finished, timeout=TIMEOUT):
        browser.form.date_choice.setCurrentText("Last 7 days")
    assert ids(browser) == ["P4", "P1"]
    with qtbot.waitSignal(browser.search_finished, timeout=TIMEOUT):
        browser.set_query(StudyQuery(date_from=_dt.date(2023, 1, 1),
                                     date_to=_dt.date(2023, 12, 31)))  # fmt: skip
    assert ids(browser) == ["P3", "P2"]
    assert browser.form.date_choice.currentText() == "Custom range"
    assert browser.form.date_from.isVisibleTo(browser)
    with qtbot.waitSignal(browser.search_finished, timeout=TIMEOUT):
        browser.form.date_choice.setCurrentText("Any date")
    assert len(ids(browser)) == 5


def test_a_superseded_search_answer_is_dropped(qtbot, synthetic_archive, widgets):
    browser = make_browser(qtbot, widgets, synthetic_archive)
    applied = []
    browser.search_finished.connect(applied.append)
    dropped = browser.stale_dropped
    browser.search(StudyQuery(patient_name="Jones*"))
    browser.search(StudyQuery(patient_name="Smith*"))  # asked before the first answer lands
    qtbot.waitUntil(lambda: browser.stale_dropped == dropped + 1, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: len(applied) == 1, timeout=TIMEOUT)
    browser._queries.wait()
    qtbot.wait(50)
    assert [r.query.patient_name for r in applied] == ["Smith*"]
    assert sorted(ids(browser)) == ["P1", "P2", "P3"]


# --- series, thumbnails, hand-off -------------------------------------------------------------
def _select(qtbot, browser, uid):
    with qtbot.waitSignal(browser.series_listed, timeout=TIMEOUT) as blocker:
        assert browser.select_study(uid)
    return blocker.args[0]


def _ge_study(browser) -> str:
    return next(r.study_uid for r in browser.model.rows() if r.num_images == 28)


def test_series_tile_double_click_hands_the_series_files_to_the_viewer(qtbot, ct_archive, widgets):
    browser = make_browser(qtbot, widgets, ct_archive, show=True)
    uid = _ge_study(browser)
    detail = _select(qtbot, browser, uid)
    assert [s.image_count for s in detail.series] == [28]
    with qtbot.waitSignal(browser.series_activated, timeout=TIMEOUT) as blocker:
        double_click(qtbot, browser.series_panel, browser.series_model.index(0))
    request = blocker.args[0]
    assert isinstance(request, SeriesRequest)
    assert request.study_uid == uid and request.series_uid == detail.series[0].series_uid
    assert len(request.paths) == 28 and len(set(request.paths)) == 28
    root = Path(ct_archive.root).resolve()
    for path in request.paths:
        assert os.path.isabs(path) and os.path.isfile(path)
        assert Path(path).resolve().is_relative_to(root)
    assert request.label.startswith("CT 2")
    assert request.patient.startswith("REMOVED")


def test_study_double_click_hands_all_series_in_number_order(qtbot, synthetic_archive, widgets):
    browser = make_browser(qtbot, widgets, synthetic_archive, show=True)
    uid = synthetic_archive.uids["P1"]
    index = browser.model.index(browser.model.row_of(uid), 0)
    with qtbot.waitSignal(browser.study_activated, timeout=TIMEOUT) as blocker:
        double_click(qtbot, browser.table, index)
    study_uid, requests = blocker.args
    assert study_uid == uid
    assert [r.label for r in requests] == ["CT 1: AXIAL", "SR 2: REPORT"]
    assert [len(r.paths) for r in requests] == [3, 1]
    assert all(os.path.isfile(p) for r in requests for p in r.paths)
    assert {r.patient for r in requests} == {"Smith, John (P1)"}
    # instance-number order within a series
    numbers = [pydicom.dcmread(p, stop_before_pixels=True).InstanceNumber
               for p in requests[0].paths]  # fmt: skip
    assert numbers == [1, 2, 3]


def test_thumbnails_are_rendered_middle_images(qtbot, ct_archive, widgets):
    browser = make_browser(qtbot, widgets, ct_archive, show=True)
    detail = _select(qtbot, browser, _ge_study(browser))
    series_uid = detail.series[0].series_uid
    qtbot.waitUntil(lambda: browser.series_model.thumbnail(series_uid) is not None,
                    timeout=TIMEOUT)  # fmt: skip
    pixmap = browser.series_model.thumbnail(series_uid)
    dpr = browser.devicePixelRatioF()
    assert max(pixmap.width(), pixmap.height()) <= round(THUMB_SIZE * dpr)
    assert max(pixmap.width(), pixmap.height()) >= THUMB_SIZE * dpr - 1
    image = pixmap.toImage().convertToFormat(QImage.Format.Format_Grayscale8)
    pixels = np.array(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    pixels = pixels[:, : image.width()]
    assert pixels.std() > 20 and len(np.unique(pixels)) > 50  # anatomy, not a flat square
    # selecting the study again uses the cache: no new rendering
    other = ct_archive.uids["P3"]
    _select(qtbot, browser, other)
    _select(qtbot, browser, detail.study_uid)
    assert browser.series_model.thumbnail(series_uid) is not None


# --- importing --------------------------------------------------------------------------------
def test_import_reports_progress_and_refreshes_the_list(qtbot, empty_archive, corpus_dir, widgets):
    browser = make_browser(qtbot, widgets, empty_archive)
    assert browser.status.text().startswith("The archive is empty")
    progress = []
    browser.import_panel.progressed.connect(progress.append)
    with qtbot.waitSignal(browser.import_finished, timeout=60_000) as blocker:
        browser.import_paths([str(corpus_dir / GE_CT)])
    report = blocker.args[0]
    assert report.total == 28 and not report.cancelled
    assert report.count(AddStatus.IMPORTED) == 28
    assert progress and progress[-1].done == 28 and progress[-1].imported == 28
    assert all(a.done <= b.done for a, b in zip(progress, progress[1:], strict=False))
    assert "28 imported" in browser.import_panel.summary.text()
    qtbot.waitUntil(lambda: [r.num_images for r in browser.model.rows()] == [28], timeout=TIMEOUT)
    # again: everything is a duplicate
    with qtbot.waitSignal(browser.import_finished, timeout=60_000) as blocker:
        browser.import_paths([str(corpus_dir / GE_CT)])
    assert blocker.args[0].count(AddStatus.DUPLICATE) == 28
    assert "28 already there" in browser.import_panel.summary.text()


def test_import_rejections_are_summarised_with_reasons(qtbot, empty_archive, tmp_path, widgets):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.txt").write_text("not DICOM")
    browser = make_browser(qtbot, widgets, empty_archive, Importer(empty_archive, workers=0))
    with qtbot.waitSignal(browser.import_finished, timeout=TIMEOUT) as blocker:
        browser.import_paths([str(tmp_path / "in")])
    report = blocker.args[0]
    assert report.count(AddStatus.REJECTED) == 1
    assert "1 rejected" in browser.import_panel.summary.text()
    details = browser.import_panel.details.toPlainText()
    assert "notes.txt" in details and next(iter(report.rejected_reasons)) in details


def test_cancel_keeps_what_was_imported(qtbot, empty_archive, tmp_path, widgets):
    from archive_factory import series_folder

    series_folder(tmp_path / "many", 400, size=8)
    importer = Importer(empty_archive, workers=0, batch_size=16)
    browser = make_browser(qtbot, widgets, empty_archive, importer)
    panel = browser.import_panel
    panel.progressed.connect(lambda p: panel.cancel())  # cancel at the first report
    with qtbot.waitSignal(browser.import_finished, timeout=60_000) as blocker:
        browser.import_paths([str(tmp_path / "many")])
    report = blocker.args[0]
    imported = report.count(AddStatus.IMPORTED)
    assert report.cancelled and 0 < imported < 400
    assert empty_archive.usage()["instances"] == imported  # everything reported is kept
    assert panel.summary.text().startswith(f"Cancelled after {len(report.results)} of 400")
    # the list was refreshed while importing and after: it ends with what was kept
    qtbot.waitUntil(
        lambda: [r.num_images for r in browser.model.rows()] == [imported], timeout=TIMEOUT
    )


@pytest.mark.parametrize("name", ["Folder…", "Files…", "Zip…", "CD/DVD…"])
def test_import_buttons_exist(qtbot, empty_archive, name, widgets):
    from PySide6.QtWidgets import QPushButton

    browser = make_browser(qtbot, widgets, empty_archive)
    assert any(b.text() == name for b in browser.findChildren(QPushButton))
