"""The lean requestor's message reading on a real socket pair: messages split across PDUs or
sharing one, silence, an abort, a release request, a malformed PDU, and a send to a closed
connection."""

from __future__ import annotations

import socket
import struct

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ImplicitVRLittleEndian

from workstation.net import ul_pdu
from workstation.net.errors import PeerAborted
from workstation.net.nodes import RemoteNode
from workstation.net.requestor import (
    Ended,
    LeanAssociation,
    Silence,
    identifier_bytes,
)

FIND = "1.2.840.10008.5.1.4.1.2.2.1"


def _pair() -> tuple[LeanAssociation, socket.socket]:
    ours, node_side = socket.socketpair()
    ac = ul_pdu.AssociateAC((ul_pdu.AcceptedContext(1, 0, ImplicitVRLittleEndian, FIND),), 0)
    node = RemoteNode("peer", "PEER", "127.0.0.1", 104, dimse_timeout=1, network_timeout=1)
    return LeanAssociation(node, ours, ac), node_side


def _find_rsp(status: int, message_id: int = 1, identifier: bool = False) -> bytes:
    return ul_pdu.encode_command([
        (0x0002, FIND.encode() + b"\x00"),
        (0x0100, struct.pack("<H", 0x8020)),
        (0x0120, struct.pack("<H", message_id)),
        (0x0800, struct.pack("<H", 0x0001 if identifier else ul_pdu.NO_DATA_SET)),
        (0x0900, struct.pack("<H", status)),
    ])  # fmt: skip


def _pdv(payload: bytes, command: bool, last: bool = True) -> bytes:
    return struct.pack(">IBB", len(payload) + 2, 1, (1 if command else 0) | (2 if last else 0)) + (
        payload
    )


def _pdu(*pdvs: bytes) -> bytes:
    body = b"".join(pdvs)
    return struct.pack(">BBI", ul_pdu.P_DATA_TF, 0, len(body)) + body


def test_messages_sharing_a_pdu_and_split_across_pdus() -> None:
    assoc, node = _pair()
    match = Dataset()
    match.PatientName = "DOE^JANE"
    match.QueryRetrieveLevel = "STUDY"
    ident = identifier_bytes(match, ImplicitVRLittleEndian)
    pending = _find_rsp(0xFF00, identifier=True)
    # one PDU: the first half of a command; the next: its rest, its identifier in two
    # fragments, and a whole second message (the final response)
    node.sendall(_pdu(_pdv(pending[:10], True, last=False)))
    node.sendall(_pdu(_pdv(pending[10:], True), _pdv(ident[:7], False, last=False),
                      _pdv(ident[7:], False), _pdv(_find_rsp(0x0000), True)))  # fmt: skip
    responses = assoc.responses(1, 0x8020, ImplicitVRLittleEndian)
    status, first = next(responses)
    assert status["Status"] == 0xFF00 and first is not None
    assert str(first.PatientName) == "DOE^JANE"
    status, none = next(responses)
    assert status["Status"] == 0x0000 and none is None
    node.close()
    assoc.close()


def test_silence_abort_release_and_malformed() -> None:
    assoc, node = _pair()
    with pytest.raises(Silence):
        assoc.receive(0.2)
    node.sendall(ul_pdu.encode_abort(0, 0))
    with pytest.raises(Ended) as ended:
        assoc.receive(1)
    assert ended.value.how == "aborted" and not assoc.established
    node.close()

    assoc, node = _pair()
    node.sendall(struct.pack(">BBI", ul_pdu.A_RELEASE_RQ, 0, 4) + bytes(4))
    with pytest.raises(Ended) as ended:
        assoc.receive(1)
    assert ended.value.how == "released"
    assert node.recv(10)[0] == ul_pdu.A_RELEASE_RP  # answered
    node.close()

    assoc, node = _pair()
    node.sendall(struct.pack(">BBI", 0x09, 0, 2) + b"??")
    with pytest.raises(ul_pdu.PDUError, match="unexpected PDU type 0x09"):
        assoc.receive(1)
    assert node.recv(10)[0] == ul_pdu.A_ABORT  # and we aborted
    node.close()


def test_responses_end_empty_when_the_node_goes_away_and_send_says_so() -> None:
    assoc, node = _pair()
    node.close()
    status, identifier = next(assoc.responses(1, 0x8020, ImplicitVRLittleEndian))
    assert status == {} and identifier is None  # the caller reports the break
    assoc2, node2 = _pair()
    node2.close()
    with pytest.raises(PeerAborted, match="broke while sending"):
        for _ in range(50):  # the first writes may still fit the socket buffer
            assoc2.send(1, ul_pdu.encode_cancel_rq(1), bytes(1 << 16))
    assoc.close()
    assoc2.close()
