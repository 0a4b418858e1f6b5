"""Opening a CD (DICOMDIR) or a folder without importing: the tree, missing files flagged,
series and studies handed over in place, errors shown in the panel, importing the media."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import GE_CT, PHILIPS_CD, double_click

from workstation.archive.importer import Importer
from workstation.archive.results import AddStatus
from workstation.ui.browser import MediaBrowser
from workstation.ui.browser.media_browser import ITEM_ROLE
from workstation.ui.browser.media_scan import MediaStudy, scan_path
from workstation.ui.browser.values import SeriesEntry

TIMEOUT = 20_000


def make(qtbot, widgets, importer=None) -> MediaBrowser:
    browser = MediaBrowser(importer)
    qtbot.addWidget(browser)
    widgets.append(browser)
    browser.resize(900, 600)
    browser.show()
    qtbot.waitExposed(browser)
    return browser


def open_path(qtbot, browser: MediaBrowser, path) -> object:
    with qtbot.waitSignal(browser.scan_finished, timeout=TIMEOUT) as blocker:
        browser.open_path(str(path))
    return blocker.args[0]


def items(browser: MediaBrowser):
    """(depth, column texts, value) of every row, depth first."""
    out = []
    model = browser.model

    def walk(parent, depth):
        for row in range(model.rowCount(parent)):
            index = model.index(row, 0, parent)
            texts = [model.index(row, c, parent).data() for c in range(model.columnCount())]
            out.append((depth, texts, index.data(ITEM_ROLE), index))
            walk(index, depth + 1)

    walk(browser.tree.rootIndex(), 0)
    return out


def test_philips_cd_tree_flags_missing_files(qtbot, corpus_dir, widgets):
    browser = make(qtbot, widgets)
    scan = open_path(qtbot, browser, corpus_dir / PHILIPS_CD)
    assert scan.dicomdir.endswith("DICOMDIR") and not scan.error
    assert scan.image_count == 90 and len(scan.missing) == 433 - 90
    rows = items(browser)
    patients = [r for r in rows if r[0] == 0]
    studies = [r for r in rows if r[0] == 1]
    series = [r for r in rows if r[0] == 2]
    assert len(patients) == 1 and len(studies) == 2 and len(series) == 9
    assert patients[0][1][3] == "90" and patients[0][1][4] == "343"
    # each series: images present, missing flagged in its own column
    by_label = {r[1][0]: r for r in series}
    assert by_label["CT 201: STD BRAIN 5MM"][1][3:] == ["28", ""]
    assert by_label["CT 202: STD BRAIN 1MM, iDose"][1][3:] == ["0", "140"]
    flagged = browser.model.itemFromIndex(
        by_label["CT 202: STD BRAIN 1MM, iDose"][3].siblingAtColumn(4)
    )
    assert not flagged.icon().isNull() and "missing" in flagged.toolTip()
    assert "343 of the 433" in browser.message.text()
    assert browser.message.isVisible()


def test_cd_series_and_study_are_handed_over_in_place(qtbot, corpus_dir, widgets):
    browser = make(qtbot, widgets)
    open_path(qtbot, browser, corpus_dir / PHILIPS_CD)
    rows = items(browser)
    five_mm = next(r for r in rows if r[1][0] == "CT 201: STD BRAIN 5MM")
    with qtbot.waitSignal(browser.series_activated, timeout=TIMEOUT) as blocker:
        double_click(qtbot, browser.tree, five_mm[3])
    request = blocker.args[0]
    assert len(request.paths) == 28
    root = (corpus_dir / PHILIPS_CD).resolve()
    for path in request.paths:  # nothing copied: the files on the CD
        assert os.path.isfile(path) and Path(path).resolve().is_relative_to(root)
    assert request.series_uid == five_mm[2].series_uid
    # the study with that series: only series with files on the media are handed over
    study_index = five_mm[3].parent()
    study: MediaStudy = study_index.data(ITEM_ROLE)
    with qtbot.waitSignal(browser.study_activated, timeout=TIMEOUT) as blocker:
        double_click(qtbot, browser.tree, study_index)
    uid, requests = blocker.args
    assert uid == study.study_uid
    assert [r.label for r in requests] == ["CT 100", "CT 201: STD BRAIN 5MM",
                                           "CT 401: Exam Summary"]  # fmt: skip
    assert all(os.path.isfile(p) for r in requests for p in r.paths)


def test_series_with_every_file_missing_says_so(qtbot, corpus_dir, widgets):
    browser = make(qtbot, widgets)
    open_path(qtbot, browser, corpus_dir / PHILIPS_CD)
    gone = next(r for r in items(browser) if r[1][0] == "CT 203: BONE BRAIN 1MM")
    with qtbot.assertNotEmitted(browser.series_activated, wait=100):
        double_click(qtbot, browser.tree, gone[3])
    assert "none of its files are on the media" in browser.message.text()


def test_plain_folder_is_read_from_headers(qtbot, corpus_dir, widgets):
    browser = make(qtbot, widgets)
    scan = open_path(qtbot, browser, corpus_dir / GE_CT)
    assert scan.dicomdir == "" and not scan.error and scan.files_seen == 28
    rows = items(browser)
    assert [r[0] for r in rows] == [0, 1, 2]
    entry: SeriesEntry = rows[2][2]
    assert entry.image_count == 28 and entry.modality == "CT"
    with qtbot.waitSignal(browser.series_activated, timeout=TIMEOUT) as blocker:
        double_click(qtbot, browser.tree, rows[2][3])
    paths = blocker.args[0].paths
    assert sorted(paths) == sorted(str(p) for p in (corpus_dir / GE_CT).iterdir())


def test_folder_scan_reports_progress(corpus_dir):
    seen = []
    scan = scan_path(corpus_dir / "mr_series", lambda done, total: seen.append((done, total)))
    assert seen and seen[-1][0] == seen[-1][1] == scan.files_seen
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert scan.image_count > 100


def test_errors_are_shown_in_the_panel(qtbot, tmp_path, widgets):
    browser = make(qtbot, widgets)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    scan = open_path(qtbot, browser, tmp_path / "empty")
    assert "no DICOM images found" in scan.error
    assert "no DICOM images found" in browser.message.text()
    assert browser.model.rowCount() == 0 and not browser.import_button.isEnabled()
    (tmp_path / "cd").mkdir()
    (tmp_path / "cd" / "DICOMDIR").write_bytes(b"\0" * 128 + b"DICM" + b"garbage" * 10)
    scan = open_path(qtbot, browser, tmp_path / "cd")
    assert scan.error and "DICOMDIR" in browser.title.text()
    assert scan.error in browser.message.text()
    scan = open_path(qtbot, browser, tmp_path / "nowhere")
    assert "does not exist" in browser.message.text()


def test_a_dicomdir_escaping_the_media_is_refused(qtbot, corpus_dir, tmp_path, widgets):
    import shutil

    src = corpus_dir / "dicomdir_small/pydicom_dicomdirtests"
    cd = tmp_path / "cd"
    shutil.copytree(src, cd, ignore=shutil.ignore_patterns("DICOMDIR-*", "TINY_ALPHA"))
    data = (cd / "DICOMDIR").read_bytes()
    assert b"77654033" in data
    (cd / "DICOMDIR").write_bytes(data.replace(b"77654033", b"..\\..\\.."))
    browser = make(qtbot, widgets)
    scan = open_path(qtbot, browser, cd)
    assert "refused" in scan.error and browser.model.rowCount() == 0
    assert "refused" in browser.message.text()


@pytest.mark.parametrize("workers", [0])
def test_import_this_media(qtbot, corpus_dir, empty_archive, workers, widgets):
    browser = make(qtbot, widgets, Importer(empty_archive, workers=workers))
    open_path(qtbot, browser, corpus_dir / PHILIPS_CD)
    assert browser.import_button.isEnabled()
    with qtbot.waitSignal(browser.import_finished, timeout=60_000) as blocker:
        browser.import_button.click()
    report = blocker.args[0]
    assert report.count(AddStatus.IMPORTED) == 90
    assert len(report.plan.missing) == 343
    assert empty_archive.usage()["instances"] == 90
    assert "90 imported" in browser.import_panel.summary.text()
    assert "343 files listed by the DICOMDIR are missing" in browser.import_panel.summary.text()


def test_without_an_importer_there_is_no_import_button(qtbot, widgets):
    browser = make(qtbot, widgets)
    assert not browser.import_button.isVisibleTo(browser)
