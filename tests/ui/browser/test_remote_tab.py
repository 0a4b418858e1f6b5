"""A tab per remote node, against a real Orthanc on loopback: matches stream into the list one
by one, Retrieve (C-MOVE and C-GET) brings the study into a real archive and the local list shows
it, nodes that refuse, hang up, stay silent or do not know the called AE title are explained in
the tab; the Nodes dialog adds, edits, echoes and removes nodes and the tabs follow."""

from __future__ import annotations

import datetime as _dt
import os
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from conftest import double_click
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QTabWidget

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "core"))

from synthetic import stack_files  # noqa: E402

from workstation.app.retrieve_service import RetrieveService  # noqa: E402
from workstation.archive.archive import Archive  # noqa: E402
from workstation.net.nodes import LocalIdentity, RemoteNode  # noqa: E402
from workstation.ui.browser import StudyBrowser  # noqa: E402
from workstation.ui.browser.remote_model import COLUMNS, LOCAL_COLUMN  # noqa: E402
from workstation.ui.browser.remote_tab import RemoteTab  # noqa: E402
from workstation.ui.browser.remote_tabs import NO_NODES_TITLE, RemoteTabs  # noqa: E402

peers = pytest.importorskip("peers")

TIMEOUT = 30_000
WS = "WS"
STUDIES = [  # patient name, id, date, accession, description, slices
    ("REMOTE^ALICE", "R1", "20240315", "ACC1", "CT CHEST", 6),
    ("REMOTE^BOB", "R2", "20230101", "ACC2", "CT HEAD", 4),
    ("OTHER^CAROL", "R3", "20240320", "ACC3", "CT ABDOMEN", 3),
]


def _study(folder: Path, name, pid, date, acc, desc, n) -> tuple[str, list[Path]]:
    paths = [Path(p) for p in stack_files(folder, n=n, rows=48, cols=48)]
    for p in paths:
        ds = pydicom.dcmread(p)
        ds.PatientName, ds.PatientID, ds.StudyDate, ds.StudyTime = name, pid, date, "101500"
        ds.AccessionNumber, ds.StudyDescription, ds.SeriesDescription = acc, desc, "AXIAL"
        ds.PatientBirthDate = "19600101"
        ds.save_as(p)
    return str(pydicom.dcmread(paths[0]).StudyInstanceUID), paths


@pytest.fixture(scope="module")
def pacs(tmp_path_factory) -> Iterator[tuple[RemoteNode, LocalIdentity, dict[str, str]]]:
    """Orthanc holding the three STUDIES; it knows us as WS on our listener port and refuses
    associations to any other called AE title."""
    if not peers.have("Orthanc"):
        pytest.skip("Orthanc not installed (Debian package 'orthanc')")
    tmp = tmp_path_factory.mktemp("remote-tab")
    identity = LocalIdentity(WS, peers.free_port())
    uids, files = {}, []
    for k, study in enumerate(STUDIES):
        uid, paths = _study(tmp / f"study{k}", *study)
        uids[study[1]] = uid
        files += paths
    modalities = {"ws": [WS, "127.0.0.1", identity.port]}
    with peers.orthanc_peer(tmp, modalities, DicomCheckCalledAet=True) as orthanc:
        assert orthanc.upload(files) == len(files)
        yield RemoteNode("orthanc", orthanc.aet, "127.0.0.1", orthanc.dicom), identity, uids


@pytest.fixture
def archive(tmp_path) -> Iterator[Archive]:
    with Archive(tmp_path / "archive") as archive:
        yield archive


@pytest.fixture
def window(qtbot, widgets, archive, pacs):
    """The browser's tab widget: the local study list, then one tab per node."""
    node, identity, _ = pacs
    tabs = QTabWidget()
    qtbot.addWidget(tabs)
    local = StudyBrowser(archive)
    widgets.append(local)
    tabs.addTab(local, "Archive")
    saved: list[tuple] = []
    retrieve = RetrieveService(archive, identity).retrieve
    remote = RemoteTabs(tabs, [node], identity, retrieve, saved.append)
    remote.study_retrieved.connect(lambda _uid: local.refresh())
    tabs.resize(1100, 520)
    tabs.show()
    qtbot.waitExposed(tabs)
    qtbot.waitUntil(lambda: local.status.text() != "", timeout=TIMEOUT)
    yield tabs, local, remote, saved
    remote.shutdown()


def run_query(qtbot, tab: RemoteTab, **fields: str):
    for name, text in fields.items():
        getattr(tab.form, name).setText(text)
    with qtbot.waitSignal(tab.query_finished, timeout=TIMEOUT) as blocker:
        tab.form.search_button.click()
    return blocker.args[0]


def cell(tab: RemoteTab, row: int, title: str) -> str:
    column = [c.title for c in COLUMNS].index(title)
    return tab.model.data(tab.model.index(row, column))


# --- query ----------------------------------------------------------------------------------------
def test_query_lists_the_orthanc_studies_as_they_arrive(qtbot, window, pacs, tmp_path) -> None:
    tabs, _local, remote, _ = window
    tab = remote.tab("orthanc")
    tabs.setCurrentWidget(tab)
    assert tab.model.rowCount() == 0 and "Search" in tab.message.text()  # nothing asked yet
    inserted = []
    tab.model.rowsInserted.connect(lambda _p, first, last: inserted.append((first, last)))
    outcome = run_query(qtbot, tab)
    assert outcome.error == "" and outcome.count == 3
    assert inserted == [(0, 0), (1, 1), (2, 2)]  # one row per C-FIND match, as each arrived
    assert tab.message.text() == "3 studies on orthanc"

    outcome = run_query(qtbot, tab, name="remote")  # prefix match: REMOTE^*
    assert outcome.count == 2
    rows = {cell(tab, r, "Patient ID"): r for r in range(tab.model.rowCount())}
    assert set(rows) == {"R1", "R2"}
    r = rows["R1"]
    assert [cell(tab, r, c) for c in ("Patient name", "Birth date", "Study date", "Modalities",
                                      "Description", "Accession", "Images")] == [
        "REMOTE, ALICE", "1960-01-01", "2024-03-15", "CT", "CT CHEST", "ACC1", "6"]  # fmt: skip
    assert tab.model.result(r).study_instance_uid == pacs[2]["R1"]

    tab.form.name.clear()
    tab.form.set_range(_dt.date(2024, 3, 1), _dt.date(2024, 3, 31))
    assert run_query(qtbot, tab).count == 2  # R1 and R3, March 2024
    tab.form.clear()
    tab.form.accession.setText("ACC2")
    assert run_query(qtbot, tab).count == 1 and cell(tab, 0, "Patient ID") == "R2"

    # the screenshot of the tab with results (looked at: see the closing note)
    tab.form.clear()
    run_query(qtbot, tab)
    tab.table.selectRow(0)
    out = tmp_path / "remote_tab.png"
    assert tabs.grab().save(str(out))
    image = QImage(str(out))
    assert image.width() >= 1000 and image.height() >= 500
    shot = Path(os.environ.get("WORKSTATION_SHOTS", tmp_path))
    if shot != tmp_path:
        shot.mkdir(parents=True, exist_ok=True)
        tabs.grab().save(str(shot / "remote_tab.png"))


# --- retrieve -------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["C-MOVE", "C-GET"])
def test_retrieve_brings_the_study_into_the_local_list(
    qtbot, window, pacs, archive, method: str
) -> None:
    tabs, local, remote, _ = window
    node, _identity, uids = pacs
    tabs.setCurrentWidget(remote.tab("orthanc"))
    remote.set_nodes([node.replace(retrieve_method=method)])
    tab = remote.tab("orthanc")
    assert tabs.currentWidget() is tab  # made afresh with the new method, still in front
    assert tab.node.retrieve_method == method
    run_query(qtbot, tab, patient_id="R1")
    assert tab.model.rowCount() == 1
    assert local.model.row_of(uids["R1"]) < 0
    progress: list[str] = []
    tab.model.dataChanged.connect(
        lambda i, _j, _r=None: (
            progress.append(tab.model.data(i)) if i.column() == LOCAL_COLUMN else None
        )
    )
    tab.table.selectRow(0)
    with qtbot.waitSignal(tab.retrieve_finished, timeout=TIMEOUT) as blocker:
        tab.retrieve_button.click()
        assert tab.cancel_button.isVisible() and tab.progress.isVisible()
    outcome = blocker.args[0]
    assert outcome.outcome == "complete", outcome.message
    assert outcome.arrived == 6
    assert "retrieving" in progress and cell(tab, 0, "Local") == "in archive"
    qtbot.waitUntil(lambda: not tab.retrieving, timeout=TIMEOUT)
    assert not tab.progress.isVisible() and not tab.cancel_button.isVisible()
    # the instances are in the archive, equal to what Orthanc holds, and the local list shows it
    rows = list(archive.find("IMAGE", {"StudyInstanceUID": uids["R1"], "SOPInstanceUID": ""}))
    assert len(rows) == 6
    qtbot.waitUntil(lambda: local.model.row_of(uids["R1"]) >= 0, timeout=TIMEOUT)
    row = local.model.row_of(uids["R1"])
    assert local.model.rows()[row].patient_id == "R1"


def test_retrieve_can_be_cancelled_and_resumed(qtbot, window, pacs, archive) -> None:
    tabs, local, remote, _ = window
    node, _identity, uids = pacs
    tab = remote.tab("orthanc")
    tabs.setCurrentWidget(tab)
    run_query(qtbot, tab, patient_id="R2")
    tab.table.selectRow(0)
    with qtbot.waitSignal(tab.retrieve_finished, timeout=TIMEOUT) as blocker:
        tab.retrieve_button.click()
        tab.cancel_button.click()  # at once: before or during the C-MOVE
    first = blocker.args[0]
    assert first.outcome in ("cancelled", "complete", "partial"), first.message
    qtbot.waitUntil(lambda: not tab.retrieving, timeout=TIMEOUT)
    assert cell(tab, 0, "Local") == {"complete": "in archive"}.get(first.outcome, first.outcome)
    with qtbot.waitSignal(tab.retrieve_finished, timeout=TIMEOUT) as blocker:
        tab.retrieve_selected()
    assert blocker.args[0].outcome == "complete", blocker.args[0].message
    rows = list(archive.find("IMAGE", {"StudyInstanceUID": uids["R2"], "SOPInstanceUID": ""}))
    assert len(rows) == 4


# --- nodes that fail --------------------------------------------------------------------------------
@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel's backlog) and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(4)
        yield s.getsockname()[1]


@pytest.fixture
def hang_up_port() -> Iterator[int]:
    """A port that accepts each connection and closes it at once."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(5)
    server.close()


def test_failing_nodes_are_explained_in_their_tab(
    qtbot, window, pacs, silent_port, hang_up_port
) -> None:
    tabs, _local, remote, _ = window
    orthanc, _identity, _ = pacs
    fast = {"connect_timeout": 2.0, "acse_timeout": 1.5, "dimse_timeout": 5.0}
    nodes = [
        orthanc,
        RemoteNode("refused", "NOBODY", "127.0.0.1", peers.free_port(), **fast),
        RemoteNode("silent", "SILENT", "127.0.0.1", silent_port, **fast),
        RemoteNode("hangs-up", "HANGUP", "127.0.0.1", hang_up_port, **fast),
        orthanc.replace(name="wrong-ae", ae_title="NOT_ORTHANC"),
    ]
    remote.set_nodes(nodes)
    assert [tabs.tabText(i) for i in range(tabs.count())] == [
        "Archive", "orthanc", "refused", "silent", "hangs-up", "wrong-ae"]  # fmt: skip
    expected = {
        "refused": "connection refused",
        "silent": "no answer to the association request within 1.5 s",
        "hangs-up": "closed the connection",
        "wrong-ae": "called AE title not recognised",
    }
    for name, words in expected.items():
        tab = remote.tab(name)
        outcome = run_query(qtbot, tab)
        assert outcome.count == 0
        assert words in outcome.error.lower() or words in outcome.error, (name, outcome.error)
        assert tab.message.text() == outcome.error and tab.message.property("error") is True
        assert name in tab.message.text()  # says which node
        assert tab.model.rowCount() == 0
    # the working node still answers
    assert run_query(qtbot, remote.tab("orthanc")).count == 3


# --- the Nodes dialog --------------------------------------------------------------------------------
def test_nodes_dialog_adds_edits_echoes_and_removes(qtbot, window, pacs) -> None:
    tabs, _local, remote, saved = window
    orthanc, _identity, _ = pacs
    dialog = remote.manage_nodes()
    qtbot.addWidget(dialog)
    assert dialog.list.count() == 1 and dialog.ae_title.text() == "ORTHANC"
    with qtbot.waitSignal(dialog.echo_finished, timeout=TIMEOUT) as blocker:
        dialog.echo_button.click()
    assert blocker.args[0].ok and "C-ECHO answered" in dialog.result.text()

    # add a second node: it gets a tab and the list is saved
    dialog.name.setText("backup")
    dialog.ae_title.setText("BACKUP")
    dialog.host.setText("127.0.0.1")
    dialog.port.setValue(peers.free_port())
    dialog.method.setCurrentText("C-GET")
    dialog.add_button.click()
    assert [n.name for n in saved[-1]] == ["orthanc", "backup"]
    assert saved[-1][1].retrieve_method == "C-GET"
    assert "backup" in remote.tabs and tabs.tabText(tabs.count() - 1) == "backup"
    with qtbot.waitSignal(dialog.echo_finished, timeout=TIMEOUT) as blocker:
        dialog.echo_button.click()
    assert not blocker.args[0].ok and "connection refused" in dialog.result.text()

    # invalid fields are refused with the reason, nothing saved
    count = len(saved)
    dialog.ae_title.setText("A" * 17)
    assert dialog.ae_title.text() == "A" * 16  # the field takes at most 16 characters
    dialog.ae_title.setText("BAD\\AE")
    assert not dialog.save_node() and "not a valid AE title" in dialog.result.text()
    dialog.ae_title.setText("BACKUP")
    dialog.name.setText("orthanc")
    assert not dialog.add_node() and "already exists" in dialog.result.text()
    assert len(saved) == count

    # edit: the tab is made afresh with the new settings; the other tab is kept
    kept = remote.tab("orthanc")
    dialog.list.setCurrentRow(1)
    dialog.name.setText("backup")
    dialog.port.setValue(orthanc.port)
    dialog.ae_title.setText("ORTHANC")
    assert dialog.save_node()
    assert remote.tab("backup").node.port == orthanc.port and remote.tab("orthanc") is kept
    assert run_query(qtbot, remote.tab("backup")).count == 3

    # remove both: the placeholder tab offers the dialog
    dialog.list.setCurrentRow(1)
    assert dialog.remove_node()
    dialog.list.setCurrentRow(0)
    assert dialog.remove_node()
    assert saved[-1] == () and remote.tabs == {}
    assert tabs.tabText(tabs.count() - 1) == NO_NODES_TITLE
    dialog.close()


def test_double_click_retrieves(qtbot, window, pacs, archive) -> None:
    _tabs, _local, remote, _ = window
    tab = remote.tab("orthanc")
    run_query(qtbot, tab, patient_id="R3")
    with qtbot.waitSignal(tab.retrieve_finished, timeout=TIMEOUT) as blocker:
        double_click(qtbot, tab.table, tab.model.index(0, 0))
    assert blocker.args[0].outcome == "complete", blocker.args[0].message
    assert len(list(archive.find("STUDY", {"PatientID": "R3"}))) == 1
