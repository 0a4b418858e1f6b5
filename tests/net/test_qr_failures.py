"""Failures of query/retrieve, each with a clear error and no hang, against real sockets and a
real pynetdicom Q/R peer (``tests/qr_peer.py``): node down (refused; connect timeout), a peer
that accepts TCP and says nothing, a peer that aborts in the middle of a C-MOVE (what arrived
is kept, the retrieve is partial, a second retrieve completes it), and C-CANCEL of a C-FIND and
of a C-MOVE.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pydicom
import pytest
from pynetdicom import AE, evt
from pynetdicom.sop_class import Verification

from workstation.app.retrieve_service import RetrieveService
from workstation.archive.archive import Archive
from workstation.net.association import Context, open_association
from workstation.net.cancel import CancelToken
from workstation.net.echo import echo
from workstation.net.errors import (
    AssociationRejected,
    NodeUnreachable,
    OperationTimeout,
    PeerAborted,
    RetrieveFailed,
)
from workstation.net.find import find
from workstation.net.nodes import LocalIdentity, RemoteNode
from workstation.net.retrieve import RetrieveProgress, RetrieveTarget, get, move

peers = pytest.importorskip("peers")
qr_peer = pytest.importorskip("qr_peer")

WS = "WS"


@pytest.fixture
def ct_files(corpus_dir: Path) -> list[Path]:
    files = sorted((corpus_dir / "ct_series").glob("*/*.dcm"))
    assert len(files) == 28
    return files


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[Archive]:
    with Archive(tmp_path / "archive") as archive:
        yield archive


def test_refused_port_answers_at_once() -> None:
    node = RemoteNode("down", "DOWN", "127.0.0.1", peers.free_port(), connect_timeout=3)
    started = time.monotonic()
    with pytest.raises(NodeUnreachable) as info:
        list(find(LocalIdentity(WS), node, "study"))
    assert time.monotonic() - started < 1.0
    assert info.value.reason == "refused" and "connection refused" in str(info.value)
    assert echo(LocalIdentity(WS), node).outcome == "unreachable"
    with pytest.raises(NodeUnreachable) as info:  # the C-MOVE requestor says the same
        move(LocalIdentity(WS), node, RetrieveTarget("1.2.3"))
    assert info.value.reason == "refused" and "connection refused" in str(info.value)


def test_unanswered_connect_times_out_within_the_connect_timeout() -> None:
    """A listening socket whose backlog is full drops further SYNs, like a host that is down."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(4):  # fill the accept queue (never accepted)
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        fillers.append(s)
    time.sleep(0.2)
    node = RemoteNode("blackhole", "X", "127.0.0.1", port, connect_timeout=1.5)
    try:
        started = time.monotonic()
        result = echo(LocalIdentity(WS), node)
        elapsed = time.monotonic() - started
    finally:
        for s in fillers:
            s.close()
        server.close()
    if result.outcome == "aborted":  # the kernel completed the handshake after all
        pytest.skip("this kernel accepted the connection beyond the backlog")
    assert result.outcome == "timeout", result.message
    assert "1.5 s" in result.message and 1.2 < elapsed < 3.0


def test_silent_peer_is_an_acse_timeout() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    node = RemoteNode("silent", "X", "127.0.0.1", server.getsockname()[1], acse_timeout=1.0)
    try:
        for operation in (
            lambda: list(find(LocalIdentity(WS), node, "study")),
            lambda: move(LocalIdentity(WS), node, RetrieveTarget("1.2.3")),
        ):
            started = time.monotonic()
            with pytest.raises(OperationTimeout) as info:
                operation()
            elapsed = time.monotonic() - started
            assert 0.9 < elapsed < 3.0
            assert "no answer to the association request within 1 s" in str(info.value)
    finally:
        server.close()


def test_peer_abort_mid_move_keeps_what_arrived_and_a_second_retrieve_completes(
    ct_files: list[Path], archive: Archive
) -> None:
    study = pydicom.dcmread(ct_files[0], stop_before_pixels=True).StudyInstanceUID
    port = peers.free_port()
    identity = LocalIdentity(WS, port)
    peer = qr_peer.QrPeer(ct_files, {WS: port}, faults=qr_peer.Faults(abort_move_after=10))
    with peer:
        node = RemoteNode("pyqr", peer.aet, "127.0.0.1", peer.port, dimse_timeout=10)
        service = RetrieveService(archive, identity)
        started = time.monotonic()
        first = service.retrieve(node, study)
        assert time.monotonic() - started < 10
        assert first.outcome == "partial", first.message
        assert isinstance(first.error, PeerAborted)
        assert first.arrived == 10 and "aborted" in first.message
        assert "retrieve again" in first.message
        assert len(service.local_instances(study)) == 10  # what arrived is kept and indexed

        peer.faults.abort_move_after = None
        second = service.retrieve(node, study)
    assert second.outcome == "complete", second.message
    assert (second.already_local, second.arrived, second.on_node) == (10, 18, 28)
    assert peer.moves == ["STUDY", "IMAGE"]  # the second asked only for the missing 18
    assert sum(r.completed for r in second.results) == 18
    assert len(service.local_instances(study)) == 28


def test_cancel_find_sends_c_cancel(ct_files: list[Path]) -> None:
    peer = qr_peer.QrPeer(ct_files, faults=qr_peer.Faults(find_delay=0.05, find_repeat=50))
    token = CancelToken()
    got = []
    with peer:
        node = RemoteNode("pyqr", peer.aet, "127.0.0.1", peer.port)
        study = pydicom.dcmread(ct_files[0], stop_before_pixels=True).StudyInstanceUID
        started = time.monotonic()
        for result in find(LocalIdentity(WS), node, "image",
                           {"StudyInstanceUID": study,
                            "SeriesInstanceUID": pydicom.dcmread(ct_files[0]).SeriesInstanceUID},
                           cancel=token):  # fmt: skip
            got.append(result)
            if len(got) == 3:
                token.cancel()
        elapsed = time.monotonic() - started
    assert len(got) == 3  # nothing yielded after the cancel
    assert elapsed < 2.0  # 1,400 matches at 50 ms would take 70 s
    assert peer.cancelled_finds == 1


def test_cancel_find_right_after_the_request(ct_files: list[Path]) -> None:
    """A C-CANCEL right behind the C-FIND request (dropped by a node that had not started the
    query) goes out again, and the query ends in well under the 10 s abort timer."""
    peer = qr_peer.QrPeer(ct_files, faults=qr_peer.Faults(find_delay=0.05, find_repeat=50))
    token = CancelToken()
    token.cancel()
    with peer:
        node = RemoteNode("pyqr", peer.aet, "127.0.0.1", peer.port)
        ds = pydicom.dcmread(ct_files[0], stop_before_pixels=True)
        started = time.monotonic()
        got = list(find(LocalIdentity(WS), node, "image", {
            "StudyInstanceUID": ds.StudyInstanceUID, "SeriesInstanceUID": ds.SeriesInstanceUID,
        }, cancel=token))  # fmt: skip
        elapsed = time.monotonic() - started
    assert got == [] and peer.cancelled_finds == 1
    assert elapsed < 3.0


def test_find_limit_stops_the_query(ct_files: list[Path]) -> None:
    peer = qr_peer.QrPeer(ct_files, faults=qr_peer.Faults(find_delay=0.02, find_repeat=50))
    with peer:
        node = RemoteNode("pyqr", peer.aet, "127.0.0.1", peer.port)
        ds = pydicom.dcmread(ct_files[0], stop_before_pixels=True)
        results = list(find(LocalIdentity(WS), node, "image", {
            "StudyInstanceUID": ds.StudyInstanceUID, "SeriesInstanceUID": ds.SeriesInstanceUID,
        }, limit=5))  # fmt: skip
    assert len(results) == 5 and peer.cancelled_finds == 1


def test_cancel_move_sends_c_cancel_and_keeps_what_arrived(
    ct_files: list[Path], archive: Archive
) -> None:
    study = pydicom.dcmread(ct_files[0], stop_before_pixels=True).StudyInstanceUID
    port = peers.free_port()
    peer = qr_peer.QrPeer(ct_files, {WS: port}, faults=qr_peer.Faults(send_delay=0.05))
    token = CancelToken()
    seen: list[int] = []

    def on_progress(progress: RetrieveProgress) -> None:
        seen.append(progress.completed)
        if progress.completed >= 3:
            token.cancel()  # from the thread that reads the responses, as a GUI button is not

    with peer:
        node = RemoteNode("pyqr", peer.aet, "127.0.0.1", peer.port)
        started = time.monotonic()
        report = RetrieveService(archive, LocalIdentity(WS, port)).retrieve(
            node, study, method="C-MOVE", on_progress=on_progress, cancel=token
        )
        elapsed = time.monotonic() - started
    assert report.outcome == "cancelled", report.message
    assert peer.cancelled_retrieves == 1  # the node saw our C-CANCEL
    assert elapsed < 1.2  # 28 sub-operations at 50 ms would take 1.4 s and more
    assert 3 <= report.arrived < 28
    assert len(RetrieveService(archive, LocalIdentity(WS)).local_instances(study)) == (
        report.arrived
    )  # what arrived before the cancel is kept and indexed


def test_cancel_move_from_another_thread(ct_files: list[Path], archive: Archive) -> None:
    """The GUI's Cancel button: C-CANCEL sent from another thread while ours reads."""
    study = pydicom.dcmread(ct_files[0], stop_before_pixels=True).StudyInstanceUID
    port = peers.free_port()
    peer = qr_peer.QrPeer(ct_files, {WS: port}, faults=qr_peer.Faults(send_delay=0.1))
    token = CancelToken()
    with peer:
        node = RemoteNode("pyqr", peer.aet, "127.0.0.1", peer.port)
        started = time.monotonic()
        report = RetrieveService(archive, LocalIdentity(WS, port)).retrieve(
            node, study, method="C-MOVE", cancel=token, on_progress=cancel_once_two_arrived(token)
        )
        elapsed = time.monotonic() - started
    assert report.outcome == "cancelled", report.message
    assert [r.status for r in report.results] == [0xFE00]  # the node confirmed the cancel
    assert peer.cancelled_retrieves == 1
    assert elapsed < 2.0  # 28 sub-operations at 100 ms would take 2.8 s and more
    assert 2 <= report.arrived < 28


def test_a_cancel_the_node_dropped_is_sent_again(ct_files: list[Path]) -> None:
    """A C-CANCEL that reaches the node before it has started the operation is dropped by some
    (pynetdicom clears them then): one that goes on sending pending responses gets it again."""
    study = pydicom.dcmread(ct_files[0], stop_before_pixels=True).StudyInstanceUID
    peer = qr_peer.QrPeer(ct_files, faults=qr_peer.Faults(send_delay=0.05))
    token = CancelToken()
    token.cancel()  # before the C-GET: sent right behind its request
    with peer:
        node = RemoteNode("pyqr", peer.aet, "127.0.0.1", peer.port)
        started = time.monotonic()
        result = get(LocalIdentity(WS), node, RetrieveTarget(study), lambda d, a, p: 0,
                     cancel=token)  # fmt: skip
        elapsed = time.monotonic() - started
    assert result.cancelled and result.status == 0xFE00, result
    assert peer.cancelled_retrieves == 1 and result.received < 28
    assert elapsed < 1.3  # 28 sub-operations at 50 ms: 1.4 s and more


def cancel_once_two_arrived(token: CancelToken) -> Callable[[RetrieveProgress], None]:
    """A progress callback that has another thread (the GUI's Cancel button) cancel ``token``
    once two sub-operations are done: a cancel in the middle of the transfer."""
    started = threading.Event()

    def on_progress(progress: RetrieveProgress) -> None:
        if progress.done >= 2 and not started.is_set():
            started.set()
            threading.Thread(target=token.cancel, daemon=True).start()

    return on_progress


def test_node_silent_mid_move_is_a_dimse_timeout(ct_files: list[Path], archive: Archive) -> None:
    study = pydicom.dcmread(ct_files[0], stop_before_pixels=True).StudyInstanceUID
    port = peers.free_port()
    peer = qr_peer.QrPeer(ct_files[:3], {WS: port}, faults=qr_peer.Faults(send_delay=2.0))
    with peer:
        node = RemoteNode("pyqr", peer.aet, "127.0.0.1", peer.port, dimse_timeout=0.5)
        started = time.monotonic()
        report = RetrieveService(archive, LocalIdentity(WS, port)).retrieve(node, study)
        elapsed = time.monotonic() - started
    assert isinstance(report.error, OperationTimeout), report.message
    assert "no response within 0.5 s" in report.message
    assert elapsed < 4.0  # the node would take 6 s; our listener lets its instance finish


def test_c_get_abort_cancel_and_store_failures(ct_files: list[Path], archive: Archive) -> None:
    """C-GET on the lean requestor: a peer abort keeps what arrived; a cancel from another
    thread is confirmed; a store that fails is answered 0xA700 and counted failed by the node."""
    study = pydicom.dcmread(ct_files[0], stop_before_pixels=True).StudyInstanceUID
    peer = qr_peer.QrPeer(ct_files, faults=qr_peer.Faults(abort_move_after=5))
    service = RetrieveService(archive, LocalIdentity(WS))
    with peer:
        node = RemoteNode("pyqr", peer.aet, "127.0.0.1", peer.port, dimse_timeout=10)
        first = service.retrieve(node, study, method="C-GET")
        assert first.outcome == "partial" and isinstance(first.error, PeerAborted)
        assert first.arrived == 5 and len(service.local_instances(study)) == 5

        peer.faults.abort_move_after = None
        peer.faults.send_delay = 0.1
        token = CancelToken()
        canceller = cancel_once_two_arrived(token)
        started = time.monotonic()
        second = service.retrieve(node, study, method="C-GET", cancel=token,
                                  on_progress=canceller)  # fmt: skip
        assert second.outcome == "cancelled", second.message
        assert time.monotonic() - started < 2.0 and peer.cancelled_retrieves == 1
        assert 2 <= second.arrived < 23

        peer.faults.send_delay = 0.0
        calls = []

        def full_disk(data: bytes, calling_ae: str, peer_address: str) -> int:
            calls.append(len(data))
            raise OSError(28, "No space left on device")

        with pytest.raises(RetrieveFailed) as info:  # the node: 0xA702, every one failed
            get(LocalIdentity(WS), node, RetrieveTarget(study), full_disk)
    assert len(calls) == 28 and info.value.status == 0xA702
    assert info.value.partial is not None
    assert (info.value.partial.failed, info.value.partial.received) == (28, 0)


def test_rejection_is_refused_even_when_the_requesting_thread_stalls() -> None:
    """pynetdicom's requestor race (``association.unread_rejection``): the 50 ms stall right
    after the A-ASSOCIATE-RQ lets the DUL thread read the A-ASSOCIATE-RJ and close the socket
    first; it used to come back as PeerAborted every time."""
    acceptor = AE(ae_title="STRICT")
    acceptor.require_called_aet = True
    acceptor.add_supported_context(Verification)
    port = peers.free_port()
    server = acceptor.start_server(("127.0.0.1", port), block=False)
    node = RemoteNode("strict", "NOT_THERE", "127.0.0.1", port)

    def stall(event: object) -> None:
        time.sleep(0.05)

    try:
        for _ in range(3):
            with pytest.raises(AssociationRejected) as info:
                open_association(LocalIdentity(WS), node, [Context(Verification)],
                                 handlers=[(evt.EVT_REQUESTED, stall)])  # fmt: skip
            assert (info.value.source, info.value.diagnostic) == (1, 7)
        assert echo(LocalIdentity(WS), node).outcome == "refused"
        assert echo(LocalIdentity(WS), node.replace(ae_title="STRICT")).outcome == "ok"
    finally:
        server.shutdown()
