"""Streamed C-STOREs (fast engine): a listener with a stream callback gets each instance as its
fragments arrive, through a sink, never whole in memory; the archive receiver streams into its
spool file, and an instance cut short leaves nothing behind."""

from __future__ import annotations

import queue
from pathlib import Path

import pydicom
from pynetdicom.dsutils import encode
from test_fast_scp import RawPeer, ds_bytes, store_command
from test_storage_listener import Recorder, ct_dataset, dataset_bytes, store, take

from workstation.app.listener import ArchiveReceiver, ListenerSettings
from workstation.archive.archive import Archive
from workstation.net import ul_pdu
from workstation.net.listener_events import AssociationReport, ReceivedInstance
from workstation.net.storage_scp import DEFAULT_MAX_PDU, StorageListener

SCU_AE = "TESTSCU"
TIMEOUT = 30.0


class Sink:
    """Records what a streamed instance was given."""

    def __init__(self, fail_on_write: bool = False) -> None:
        self.pieces: list[bytes] = []
        self.outcome = ""
        self.fail_on_write = fail_on_write

    def write(self, data: memoryview) -> None:
        if self.fail_on_write:
            raise RuntimeError("a bug in the sink")
        self.pieces.append(bytes(data))

    def finish(self) -> int:
        self.outcome = "finished"
        return 0x0000

    def abandon(self) -> None:
        self.outcome = "abandoned"


def _listener(store_callback, stream_callback) -> tuple[StorageListener, queue.Queue]:  # noqa: ANN001
    listener = StorageListener("LISTENER", 0, store_callback, bind_address="127.0.0.1",
                               allowed_calling_aes=[SCU_AE, "SCU"], engine="fast",
                               stream_callback=stream_callback)  # fmt: skip
    events: queue.Queue = queue.Queue()
    listener.add_observer(events.put)
    listener.start()
    return listener, events


def _large(megabytes: int) -> pydicom.Dataset:
    ds = ct_dataset()
    ds.Rows, ds.Columns = 1024 * megabytes // 2, 1024
    ds.PixelData = bytes(i % 253 for i in range(1024 * 1024)) * megabytes
    return ds


def test_an_instance_is_streamed_fragment_by_fragment() -> None:
    sinks: list[Sink] = []
    recorder = Recorder()

    def stream(calling_ae: str, peer: str) -> Sink:
        sinks.append(Sink())
        return sinks[-1]

    listener, events = _listener(recorder, stream)
    try:
        large = _large(24)
        assert store(listener, large) == [0x0000]
    finally:
        listener.stop(grace=1.0)
    (sink,) = sinks
    assert recorder.files == []  # streamed: the store callback never saw it
    assert sink.outcome == "finished"
    assert dataset_bytes(b"".join(sink.pieces)) == encode(large, False, True)
    assert sink.pieces[0][128:132] == b"DICM"  # the Part 10 header first, then the fragments
    assert len(sink.pieces) > 24 and max(map(len, sink.pieces)) <= DEFAULT_MAX_PDU
    (received,) = [e for e in take(events, AssociationReport) if isinstance(e, ReceivedInstance)]
    assert (received.size, received.status) == (sum(map(len, sink.pieces)), 0x0000)


def test_no_sink_hands_the_instance_whole_and_a_failing_sink_is_refused() -> None:
    recorder = Recorder()
    answers = iter([None, Sink(fail_on_write=True), None])

    def stream(calling_ae: str, peer: str) -> Sink | None:
        return next(answers)

    listener, events = _listener(recorder, stream)
    try:
        sent = [ct_dataset(), ct_dataset(), ct_dataset()]
        assert store(listener, *sent) == [0x0000, 0x0110, 0x0000]  # the association goes on
    finally:
        listener.stop(grace=1.0)
    reported = take(events, AssociationReport)
    # the refused one is reported and counted as a failure, as a failing store callback is
    assert [e.status for e in reported if isinstance(e, ReceivedInstance)] == [0, 0x0110, 0]
    assert (reported[-1].received, reported[-1].failed) == (2, 1)
    assert [dataset_bytes(d) for d, _, _ in recorder.files] == [
        encode(sent[0], False, True),
        encode(sent[2], False, True),
    ]


def test_an_instance_cut_short_is_abandoned() -> None:
    sinks: list[Sink] = []

    def stream(calling_ae: str, peer: str) -> Sink:
        sinks.append(Sink())
        return sinks[-1]

    listener, events = _listener(Recorder(), stream)
    try:
        peer = RawPeer(listener)
        assert peer.associate() == ul_pdu.A_ASSOCIATE_AC
        ds = ct_dataset()
        data = ds_bytes(ds)
        peer.send_message(store_command(ds.SOPInstanceUID), data[: len(data) // 2], False)
        peer.sock.close()
        assert take(events, AssociationReport)[-1].outcome == "aborted"
    finally:
        listener.stop(grace=1.0)
    assert [s.outcome for s in sinks] == ["abandoned"]


def test_the_archive_receiver_streams_into_the_spool_and_keeps_no_half_instance(
    tmp_path: Path,
) -> None:
    archive = Archive(tmp_path / "archive")
    settings = ListenerSettings("LISTENER", 0, "127.0.0.1", ("SCU",))
    receiver = ArchiveReceiver(archive, settings)
    events: queue.Queue = queue.Queue()
    receiver.listener.add_observer(events.put)
    receiver.start()
    whole, half = ct_dataset(), _large(4)
    try:
        peer = RawPeer(receiver.listener)
        assert peer.associate() == ul_pdu.A_ASSOCIATE_AC
        peer.send_message(store_command(whole.SOPInstanceUID, 1), ds_bytes(whole))
        assert peer.response_status() == 0x0000
        data = ds_bytes(half)
        peer.send_message(store_command(half.SOPInstanceUID, 2), data[: len(data) // 2], False)
        peer.sock.close()
        assert take(events, AssociationReport)[-1].outcome == "aborted"
    finally:
        receiver.stop()
    rows = {
        r["SOPInstanceUID"]: r["rel_path"] for r in archive.find("IMAGE", {"SOPInstanceUID": ""})
    }
    assert list(rows) == [whole.SOPInstanceUID]
    assert dataset_bytes(archive.path_of(rows[whole.SOPInstanceUID]).read_bytes()) == ds_bytes(
        whole
    )
    assert list((tmp_path / "archive" / "spool").iterdir()) == []  # the half one went with it
    archive.close()
