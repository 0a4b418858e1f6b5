"""The fast acceptor behind the storage listener, against real peers on loopback: DCMTK's
storescu and echoscu, pynetdicom requestors, and a raw socket speaking PS3.8 by hand for what
well-behaved peers never do (half an instance, silence, malformed PDUs)."""

from __future__ import annotations

import logging
import queue
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from peers import NODELAY
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)
from pynetdicom import AE, PYNETDICOM_IMPLEMENTATION_UID, build_role
from pynetdicom.dimse_messages import C_ECHO_RQ, C_FIND_RQ, C_STORE_RQ
from pynetdicom.dimse_primitives import C_ECHO, C_FIND, C_STORE
from pynetdicom.dsutils import decode, encode
from pynetdicom.pdu import A_ASSOCIATE_RQ
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    AsynchronousOperationsWindowNegotiation,
    MaximumLengthNotification,
)
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import Verification
from test_storage_listener import Recorder, ct_dataset, dataset_bytes, take

from workstation.net import ul_pdu
from workstation.net.association import keep_answers_from_reactor
from workstation.net.listener_events import AssociationReport, ListenerEvent
from workstation.net.storage_scp import StorageListener
from workstation.net.tcp import nodelay_handlers

TIMEOUT = 30.0
CALLED = "LISTENER"
needs_dcmtk = pytest.mark.skipif(shutil.which("storescu") is None, reason="DCMTK absent")


@pytest.fixture
def serve() -> Iterator[Callable[..., tuple[StorageListener, queue.Queue]]]:
    """Start a fast-engine listener; returns it and the queue its observer fills."""
    started: list[StorageListener] = []

    def start(callback=None, **kw: object) -> tuple[StorageListener, queue.Queue]:
        kw.setdefault("allowed_calling_aes", ["SCU", "STORESCU", "ECHOSCU"])
        listener = StorageListener(CALLED, 0, callback or Recorder(), bind_address="127.0.0.1",
                                   engine="fast", **kw)  # fmt: skip
        events: queue.Queue[ListenerEvent] = queue.Queue()
        listener.add_observer(events.put)
        listener.start()
        started.append(listener)
        return listener, events

    yield start
    for listener in started:
        listener.stop(grace=1.0)


# --- a requestor speaking PS3.8 by hand ----------------------------------------------------------
class RawPeer:
    """A TCP connection on which the test writes PDUs itself."""

    def __init__(self, listener: StorageListener) -> None:
        self.sock = socket.create_connection(listener.address, timeout=TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def read_pdu(self) -> tuple[int | None, bytes]:
        """(type, body) of the next PDU; (None, b"") when the listener closed the connection."""
        header = self._exactly(6)
        if len(header) < 6:
            return None, b""
        pdu_type, _, length = struct.unpack(">BBI", header)
        return pdu_type, self._exactly(length)

    def _exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            try:
                chunk = self.sock.recv(n - len(data))
            except ConnectionResetError:
                return data
            if not chunk:
                break
            data += chunk
        return data

    def associate(self, calling: str = "SCU", called: str = CALLED, max_pdu: int = 16384) -> int:
        """Send an A-ASSOCIATE-RQ (pynetdicom's encoder) proposing CT and Verification."""
        rq = A_ASSOCIATE()
        rq.application_context_name = ul_pdu.APPLICATION_CONTEXT
        rq.calling_ae_title, rq.called_ae_title = calling, called
        contexts = []
        for cid, uid in ((1, CTImageStorage), (3, Verification)):
            cx = PresentationContext()
            cx.context_id, cx.abstract_syntax = cid, uid
            cx.transfer_syntax = [ExplicitVRLittleEndian]
            contexts.append(cx)
        rq.presentation_context_definition_list = contexts
        length = MaximumLengthNotification()
        length.maximum_length_received = max_pdu
        rq.user_information = [length]
        pdu = A_ASSOCIATE_RQ()
        pdu.from_primitive(rq)
        self.sock.sendall(pdu.encode())
        pdu_type, _ = self.read_pdu()
        return pdu_type  # type: ignore[return-value]

    def send_message(self, command: bytes, data: bytes = b"", data_last: bool = True) -> None:
        self.sock.sendall(b"".join(ul_pdu.encode_pdata(1, command, True, 0)))
        if data:
            pdus = ul_pdu.encode_pdata(1, data, False, 0)
            if not data_last:  # clear the last-fragment bit
                pdu = bytearray(pdus[-1])
                pdu[11] &= ~2
                pdus[-1] = bytes(pdu)
            self.sock.sendall(b"".join(pdus))

    def response_status(self) -> int:
        command = b""
        while True:
            pdu_type, body = self.read_pdu()
            assert pdu_type == ul_pdu.P_DATA_TF, (pdu_type, body)
            (_, control, value), *_ = ul_pdu.decode_pdata(body)
            command += bytes(value)
            if control & 2:
                return int(decode(BytesIO(command), True, True).Status)


def store_command(sop_instance: str, message_id: int = 1) -> bytes:
    """A C-STORE-RQ command set, encoded by pynetdicom."""
    primitive = C_STORE()
    primitive.MessageID = message_id
    primitive.AffectedSOPClassUID = CTImageStorage
    primitive.AffectedSOPInstanceUID = sop_instance
    primitive.Priority = 0
    primitive.DataSet = BytesIO(b"\x00")
    message = C_STORE_RQ()
    message.primitive_to_message(primitive)
    return encode(message.command_set, True, True)


def echo_command(message_id: int = 1) -> bytes:
    primitive = C_ECHO()
    primitive.MessageID = message_id
    primitive.AffectedSOPClassUID = Verification
    message = C_ECHO_RQ()
    message.primitive_to_message(primitive)
    return encode(message.command_set, True, True)


def ds_bytes(ds) -> bytes:
    return encode(ds, False, True)


# --- DCMTK -----------------------------------------------------------------------------------------
def storescu(port: int, files: list[Path], *options: str, calling: str = "STORESCU"):
    cmd = ["storescu", *options, "-aet", calling, "-aec", CALLED, "127.0.0.1", str(port)]
    return subprocess.run([*cmd, *map(str, files)], env=NODELAY, capture_output=True,
                          text=True, timeout=TIMEOUT)  # fmt: skip


@needs_dcmtk
def test_storescu_files_are_byte_identical_to_the_pynetdicom_engines(
    serve, corpus_dir: Path
) -> None:
    """Several files on one association (storescu proposes ~120 contexts), then one compressed
    or differently encoded file per association: both engines hand over the same bytes."""
    series = sorted((corpus_dir / "ct_series").glob("*/*.dcm"))[:6]
    ts_dir = corpus_dir / "transfer_syntax" / "dcm_qa_ts_siemens_mr"
    per_syntax = {"2.dcm": "-xi", "3.dcm": "-xb", "4.dcm": "-xr", "5.dcm": "-xs",
                  "7.dcm": "-xt", "9.dcm": "-xv"}  # fmt: skip
    received: dict[str, dict[str, bytes]] = {}
    for engine in ("fast", "pynetdicom"):
        recorder = Recorder()
        listener = StorageListener(CALLED, 0, recorder, bind_address="127.0.0.1",
                                   allowed_calling_aes=["STORESCU"], engine=engine)  # fmt: skip
        listener.start()
        try:
            result = storescu(listener.address[1], series)
            assert result.returncode == 0, result.stderr
            for name, option in per_syntax.items():
                result = storescu(listener.address[1], [ts_dir / name], option)
                assert result.returncode == 0, f"{name}: {result.stderr}"
        finally:
            listener.stop(grace=1.0)
        received[engine] = {
            pydicom.dcmread(BytesIO(data), stop_before_pixels=True).SOPInstanceUID: data
            for data, calling, _ in recorder.files
        }
    assert received["fast"] == received["pynetdicom"]  # header and data set, byte for byte
    for path in [*series, *(ts_dir / n for n in per_syntax)]:
        original = path.read_bytes()
        want = pydicom.dcmread(path, stop_before_pixels=True)
        got = received["fast"][want.SOPInstanceUID]
        assert dataset_bytes(got) == dataset_bytes(original), path.name
        meta = pydicom.dcmread(BytesIO(got), stop_before_pixels=True).file_meta
        assert meta.TransferSyntaxUID == want.file_meta.TransferSyntaxUID
    assert len(received["fast"]) == len(series) + len(per_syntax)


@needs_dcmtk
def test_echoscu_and_rejections_read_by_dcmtk(serve) -> None:
    listener, events = serve()
    port = str(listener.address[1])
    echo = ["echoscu", "-aet", "ECHOSCU", "127.0.0.1", port]
    ok = subprocess.run([*echo, "-aec", CALLED], env=NODELAY, capture_output=True, text=True,
                        timeout=TIMEOUT)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    wrong_called = subprocess.run([*echo, "-aec", "SOMEONE"], env=NODELAY, capture_output=True,
                                  text=True, timeout=TIMEOUT)  # fmt: skip
    assert wrong_called.returncode != 0
    assert "Called AE Title Not Recognized" in wrong_called.stderr, wrong_called.stderr
    one = [Path(pydicom.data.get_testdata_file("CT_small.dcm"))]
    wrong_calling = storescu(listener.address[1], one, calling="INTRUDER")
    assert wrong_calling.returncode != 0
    assert "Calling AE Title Not Recognized" in wrong_calling.stderr, wrong_calling.stderr
    reports = [take(events, AssociationReport)[-1] for _ in range(3)]
    assert [r.outcome for r in reports] == ["released", "rejected", "rejected"]
    assert "'SOMEONE'" in reports[1].reason and "called AE" in reports[1].reason
    assert "'INTRUDER'" in reports[2].reason and "calling AE" in reports[2].reason


# --- pynetdicom requestors --------------------------------------------------------------------------
def test_negotiation_with_a_pynetdicom_requestor(serve) -> None:
    listener, _ = serve()
    ae = AE(ae_title="SCU")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TIMEOUT
    ae.add_requested_context(CTImageStorage, [ImplicitVRLittleEndian, ExplicitVRLittleEndian])
    ae.add_requested_context("1.2.3.4.999", [ExplicitVRLittleEndian])  # not a storage class
    ae.add_requested_context(MRImageStorage, ["1.2.3.4.5.6.7"])  # a private syntax
    ae.add_requested_context(Verification)
    window = AsynchronousOperationsWindowNegotiation()
    window.maximum_number_operations_invoked = window.maximum_number_operations_performed = 4
    roles = [build_role(CTImageStorage, scu_role=True)]
    assoc = ae.associate(*listener.address, ae_title=CALLED, ext_neg=[window, *roles],
                         evt_handlers=nodelay_handlers())  # fmt: skip
    assert assoc.is_established
    keep_answers_from_reactor(assoc)
    try:
        accepted = {cx.abstract_syntax: cx.transfer_syntax[0] for cx in assoc.accepted_contexts}
        # the requestor lists Implicit VR first, both times: ours (Explicit VR first) decides
        assert accepted == {CTImageStorage: ExplicitVRLittleEndian,
                            Verification: ExplicitVRLittleEndian}  # fmt: skip
        rejected = {cx.abstract_syntax: cx.result for cx in assoc.rejected_contexts}
        assert rejected == {"1.2.3.4.999": 0x03, MRImageStorage: 0x04}
        assert assoc.acceptor.maximum_length == 1_048_576
        assert assoc.acceptor.implementation_class_uid == PYNETDICOM_IMPLEMENTATION_UID
        assert assoc.acceptor.asynchronous_operations == (1, 1)
        assert assoc.send_c_echo().Status == 0x0000
        assert assoc.send_c_store(ct_dataset()).Status == 0x0000
    finally:
        assoc.release()
    assert assoc.is_released


def test_too_many_associations_are_rejected_transiently(serve) -> None:
    listener, events = serve(maximum_associations=1)
    first, second = RawPeer(listener), RawPeer(listener)
    assert first.associate() == ul_pdu.A_ASSOCIATE_AC
    assert second.associate() == ul_pdu.A_ASSOCIATE_RJ
    (report,) = take(events, AssociationReport)
    assert (report.outcome, report.reason) == ("rejected", "too many associations")
    first.sock.close()
    second.sock.close()


def test_stop_aborts_an_association_left_open(serve) -> None:
    listener, events = serve()
    peer = RawPeer(listener)
    assert peer.associate() == ul_pdu.A_ASSOCIATE_AC
    started = time.monotonic()
    listener.stop(grace=0.3)
    assert time.monotonic() - started < 5.0
    assert peer.read_pdu()[0] in (ul_pdu.A_ABORT, None)
    assert take(events, AssociationReport)[-1].outcome == "aborted"


# --- what well-behaved peers never do ------------------------------------------------------------
def test_responses_are_fragmented_to_the_peers_maximum_length(serve) -> None:
    listener, _ = serve()
    peer = RawPeer(listener)
    assert peer.associate(max_pdu=24) == ul_pdu.A_ASSOCIATE_AC
    peer.sock.sendall(b"".join(ul_pdu.encode_pdata(3, echo_command(5), True, 0)))
    command, lengths = b"", []
    while True:
        pdu_type, body = peer.read_pdu()
        assert pdu_type == ul_pdu.P_DATA_TF
        lengths.append(len(body))
        ((context, control, value),) = ul_pdu.decode_pdata(body)
        assert context == 3 and control & 1
        command += bytes(value)
        if control & 2:
            break
    assert len(lengths) > 3 and max(lengths) <= 24
    response = decode(BytesIO(command), True, True)
    assert (response.CommandField, response.MessageIDBeingRespondedTo, response.Status) == (
        0x8030,
        5,
        0x0000,
    )


def test_an_unsupported_request_is_refused_and_the_association_goes_on(serve) -> None:
    recorder = Recorder()
    listener, events = serve(recorder)
    peer = RawPeer(listener)
    assert peer.associate() == ul_pdu.A_ASSOCIATE_AC
    find = C_FIND()
    find.MessageID, find.AffectedSOPClassUID, find.Priority = 3, CTImageStorage, 0
    find.Identifier = BytesIO(ds_bytes(ct_dataset()))
    message = C_FIND_RQ()
    message.primitive_to_message(find)
    peer.send_message(encode(message.command_set, True, True), find.Identifier.getvalue())
    assert peer.response_status() == 0x0211  # unrecognised operation
    ds = ct_dataset()
    peer.send_message(store_command(ds.SOPInstanceUID, 4), ds_bytes(ds))
    assert peer.response_status() == 0x0000
    peer.sock.sendall(ul_pdu._pdu(ul_pdu.A_RELEASE_RQ, bytes(4)))  # noqa: SLF001
    assert peer.read_pdu()[0] == ul_pdu.A_RELEASE_RP
    peer.sock.close()
    report = take(events, AssociationReport)[-1]
    assert (report.outcome, report.received) == ("released", 1)
    assert len(recorder.files) == 1


@pytest.mark.parametrize("ending", ["close", "abort", "silence mid-PDU"])
def test_half_an_instance_is_never_stored(serve, ending: str) -> None:
    recorder = Recorder()
    listener, events = serve(recorder, network_timeout=0.5)
    peer = RawPeer(listener)
    assert peer.associate() == ul_pdu.A_ASSOCIATE_AC
    whole, half = ct_dataset(), ct_dataset()
    peer.send_message(store_command(whole.SOPInstanceUID, 1), ds_bytes(whole))
    assert peer.response_status() == 0x0000
    data = ds_bytes(half)
    if ending == "silence mid-PDU":  # a PDU announced whole, half of it sent, then nothing
        peer.send_message(store_command(half.SOPInstanceUID, 2))
        pdu = ul_pdu.encode_pdata(1, data, False, 0)[0]
        peer.sock.sendall(pdu[: len(pdu) // 2])
        started = time.monotonic()
        assert peer.read_pdu()[0] == ul_pdu.A_ABORT  # dropped after the network timeout
        assert 0.4 < time.monotonic() - started < 10.0
    if ending == "abort":
        peer.sock.sendall(ul_pdu.encode_abort(0))
    peer.sock.close()
    report = take(events, AssociationReport)[-1]
    assert (report.outcome, report.received, report.failed) == ("aborted", 1, 0)
    assert [dataset_bytes(d) for d, _, _ in recorder.files] == [ds_bytes(whole)]


def test_a_silent_peer_is_dropped_after_the_network_timeout(serve) -> None:
    listener, events = serve(network_timeout=0.5, acse_timeout=0.5)
    probe = RawPeer(listener)  # never sends an A-ASSOCIATE-RQ
    peer = RawPeer(listener)
    assert peer.associate() == ul_pdu.A_ASSOCIATE_AC
    started = time.monotonic()
    pdu_type, body = peer.read_pdu()
    assert (pdu_type, body[2]) == (ul_pdu.A_ABORT, 2)  # aborted by the service provider
    assert peer.read_pdu() == (None, b"")
    assert 0.4 < time.monotonic() - started < 10.0
    assert take(events, AssociationReport)[-1].outcome == "aborted"
    assert probe.read_pdu()[0] in (ul_pdu.A_ABORT, None)  # the probe is dropped as well


MALFORMED = {
    "unknown PDU type": b"\x09\x00\x00\x00\x00\x02ab",
    "A-ASSOCIATE-RQ cut short": b"\x01\x00\x00\x00\x00\x10" + bytes(16),
    "P-DATA before association": bytes(ul_pdu.encode_pdata(1, b"\x00" * 8, True, 0)[0]),
}


@pytest.mark.parametrize(
    "name", [*MALFORMED, "PDV overrunning its PDU", "command garbage", "C-STORE without UID"]
)
def test_malformed_pdus_are_aborted_and_the_listener_goes_on(serve, caplog, name: str) -> None:
    listener, _ = serve()
    peer = RawPeer(listener)
    if name in MALFORMED:
        peer.sock.sendall(MALFORMED[name])
    else:
        assert peer.associate() == ul_pdu.A_ASSOCIATE_AC
        if name == "PDV overrunning its PDU":
            peer.sock.sendall(struct.pack(">BBIIBB", 4, 0, 6, 500, 1, 3))
        elif name == "C-STORE without UID":
            peer.send_message(store_command(""), b"\x00" * 8)
        else:
            peer.sock.sendall(b"".join(ul_pdu.encode_pdata(1, b"\x08\x00" * 9, True, 0)))
    with caplog.at_level(logging.WARNING, logger="workstation.net.fast_scp"):
        pdu_type, body = peer.read_pdu()
        assert pdu_type == ul_pdu.A_ABORT and body[2] == 2, (pdu_type, body)
        assert peer.read_pdu() == (None, b"")
    local = peer.sock.getsockname()
    assert any(f"{local[0]}:{local[1]}" in r.getMessage() and "malformed" in r.getMessage()
               for r in caplog.records), caplog.text  # fmt: skip
    # the listener still serves the next association
    ae = AE(ae_title="SCU")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TIMEOUT
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    assoc = ae.associate(*listener.address, ae_title=CALLED, evt_handlers=nodelay_handlers())
    assert assoc.is_established
    keep_answers_from_reactor(assoc)
    ds = ct_dataset()
    ds.SOPInstanceUID = generate_uid()
    assert assoc.send_c_store(ds).Status == 0x0000
    assoc.release()
