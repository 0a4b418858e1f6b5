"""Upper Layer PDUs and DIMSE command sets of ``ul_pdu``, checked against pynetdicom's own
encoders and decoders for the same primitives (an independent implementation of PS3.8/PS3.7)."""

from __future__ import annotations

import struct
from io import BytesIO

import pytest
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGLosslessSV1,
    MRImageStorage,
)
from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION
from pynetdicom.dimse_messages import (
    C_ECHO_RSP,
    C_FIND_RQ,
    C_FIND_RSP,
    C_GET_RQ,
    C_MOVE_RQ,
    C_MOVE_RSP,
    C_STORE_RQ,
    C_STORE_RSP,
)
from pynetdicom.dimse_primitives import C_ECHO, C_FIND, C_MOVE, C_STORE
from pynetdicom.dsutils import decode, encode
from pynetdicom.pdu import (
    A_ABORT_RQ,
    A_ASSOCIATE_AC,
    A_ASSOCIATE_RJ,
    A_ASSOCIATE_RQ,
    A_RELEASE_RP,
    A_RELEASE_RQ,
    P_DATA_TF,
)
from pynetdicom.pdu_primitives import (
    A_ABORT,
    A_ASSOCIATE,
    AsynchronousOperationsWindowNegotiation,
    ImplementationClassUIDNotification,
    ImplementationVersionNameNotification,
    MaximumLengthNotification,
    SCP_SCU_RoleSelectionNegotiation,
    UserIdentityNegotiation,
)
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from workstation.net import ul_pdu
from workstation.net.ul_pdu import AcceptedContext, PDUError


def _context(cid: int, abstract: str, syntaxes: list[str], result: int | None = None):
    cx = PresentationContext()
    cx.context_id = cid
    cx.abstract_syntax = abstract
    cx.transfer_syntax = syntaxes
    if result is not None:
        cx.result = result
    return cx


def _dcmtk_user_items() -> list[object]:
    """Maximum length, implementation class UID and version name as DCMTK 3.6.8 sends them."""
    length = MaximumLengthNotification()
    length.maximum_length_received = 16384
    impl = ImplementationClassUIDNotification()
    impl.implementation_class_uid = "1.2.276.0.7230010.3.0.3.6.8"
    version = ImplementationVersionNameNotification()
    version.implementation_version_name = "OFFIS_DCMTK_368"
    return [length, impl, version]


def _rq_primitive(**user: object) -> A_ASSOCIATE:
    rq = A_ASSOCIATE()
    rq.application_context_name = "1.2.840.10008.3.1.1.1"
    rq.calling_ae_title = "STORESCU"
    rq.called_ae_title = "WS"
    rq.presentation_context_definition_list = [
        _context(1, CTImageStorage, [ExplicitVRLittleEndian, ImplicitVRLittleEndian]),
        _context(3, "1.2.3.4.5.6", [ImplicitVRLittleEndian]),
        _context(5, MRImageStorage, [JPEGLosslessSV1]),
    ]
    items: list[object] = []
    items += _dcmtk_user_items()
    if user.get("extras"):
        window = AsynchronousOperationsWindowNegotiation()
        window.maximum_number_operations_invoked = 5
        window.maximum_number_operations_performed = 3
        role = SCP_SCU_RoleSelectionNegotiation()
        role.sop_class_uid = CTImageStorage
        role.scu_role, role.scp_role = True, False
        identity = UserIdentityNegotiation()
        identity.user_identity_type = 2
        identity.positive_response_requested = True
        identity.primary_field = b"radiologist"
        identity.secondary_field = b"secret"
        items += [window, role, identity]
    rq.user_information = items
    return rq


def _rq_body(primitive: A_ASSOCIATE) -> bytes:
    pdu = A_ASSOCIATE_RQ()
    pdu.from_primitive(primitive)
    raw = pdu.encode()
    assert raw[0] == 0x01 and struct.unpack(">I", raw[2:6])[0] == len(raw) - 6
    return raw[6:]


# --- A-ASSOCIATE-RQ ------------------------------------------------------------------------------
def test_associate_rq_decodes_what_pynetdicom_encodes() -> None:
    rq = ul_pdu.decode_associate_rq(_rq_body(_rq_primitive(extras=True)))
    assert (rq.protocol_version, rq.called_ae, rq.calling_ae) == (1, "WS", "STORESCU")
    assert rq.application_context == "1.2.840.10008.3.1.1.1"
    assert [(c.context_id, c.abstract_syntax, c.transfer_syntaxes) for c in rq.contexts] == [
        (1, CTImageStorage, (ExplicitVRLittleEndian, ImplicitVRLittleEndian)),
        (3, "1.2.3.4.5.6", (ImplicitVRLittleEndian,)),
        (5, MRImageStorage, (JPEGLosslessSV1,)),
    ]
    assert rq.max_pdu == 16384
    assert rq.implementation_uid == "1.2.276.0.7230010.3.0.3.6.8"
    assert rq.implementation_version == "OFFIS_DCMTK_368"
    assert rq.async_window == (5, 3)
    assert rq.roles == ((CTImageStorage, 1, 0),)
    assert rq.user_identity == (2, b"radiologist")
    assert "radiologist" not in repr(rq)  # never in a log line


def test_associate_rq_without_optional_items() -> None:
    rq = ul_pdu.decode_associate_rq(_rq_body(_rq_primitive()))
    assert rq.async_window is None and rq.roles == () and rq.user_identity is None


@pytest.mark.parametrize(
    ("cut", "message"),
    [
        (60, "shorter than its 68 fixed bytes"),
        (-3, "runs past the end"),
    ],
)
def test_malformed_associate_rq_raises(cut: int, message: str) -> None:
    body = _rq_body(_rq_primitive())
    with pytest.raises(PDUError, match=message):
        ul_pdu.decode_associate_rq(body[:cut])


def test_associate_rq_with_an_unknown_item_is_unrecognised() -> None:
    body = _rq_body(_rq_primitive()) + b"\x77\x00\x00\x02ab"
    with pytest.raises(PDUError) as caught:
        ul_pdu.decode_associate_rq(body)
    assert caught.value.abort_reason == ul_pdu.ABORT_UNRECOGNIZED_PARAMETER


# --- A-ASSOCIATE-AC / -RJ, release, abort -------------------------------------------------------
@pytest.mark.parametrize("extras", [False, True])
def test_associate_ac_is_byte_identical_to_pynetdicoms(extras: bool) -> None:
    rq = ul_pdu.decode_associate_rq(_rq_body(_rq_primitive(extras=extras)))
    results = [
        AcceptedContext(1, 0, ExplicitVRLittleEndian, CTImageStorage),
        AcceptedContext(3, 3, ImplicitVRLittleEndian, "1.2.3.4.5.6"),
        AcceptedContext(5, 4, JPEGLosslessSV1, MRImageStorage),
    ]
    mine = ul_pdu.encode_associate_ac(rq, results, 1_048_576)

    ac = A_ASSOCIATE()
    ac.application_context_name = "1.2.840.10008.3.1.1.1"
    ac.called_ae_title, ac.calling_ae_title = "WS", "STORESCU"
    ac.result = 0
    ac.presentation_context_definition_results_list = [
        _context(r.context_id, r.abstract_syntax, [r.transfer_syntax], r.result) for r in results
    ]
    length = MaximumLengthNotification()
    length.maximum_length_received = 1_048_576
    impl = ImplementationClassUIDNotification()
    impl.implementation_class_uid = PYNETDICOM_IMPLEMENTATION_UID
    version = ImplementationVersionNameNotification()
    version.implementation_version_name = PYNETDICOM_IMPLEMENTATION_VERSION
    user: list[object] = [length, impl]
    if extras:
        window = AsynchronousOperationsWindowNegotiation()
        window.maximum_number_operations_invoked = 1
        window.maximum_number_operations_performed = 1
        user.append(window)
    ac.user_information = [*user, version]
    pdu = A_ASSOCIATE_AC()
    pdu.from_primitive(ac)
    assert mine == pdu.encode()

    decoded = A_ASSOCIATE_AC()  # and pynetdicom reads ours back
    decoded.decode(mine)
    back = decoded.to_primitive()
    assert back.maximum_length_received == 1_048_576
    assert [
        (c.context_id, c.result) for c in back.presentation_context_definition_results_list
    ] == [
        (1, 0),
        (3, 3),
        (5, 4),
    ]


@pytest.mark.parametrize(("result", "source", "reason"), [(1, 1, 3), (1, 1, 7), (2, 3, 2)])
def test_associate_rj_release_and_abort_match_pynetdicom(
    result: int, source: int, reason: int
) -> None:
    rj = A_ASSOCIATE()
    rj.result, rj.result_source, rj.diagnostic = result, source, reason
    pdu = A_ASSOCIATE_RJ()
    pdu.from_primitive(rj)
    assert ul_pdu.encode_associate_rj(result, source, reason) == pdu.encode()
    assert ul_pdu.encode_release_rp() == A_RELEASE_RP().encode()
    abort = A_ABORT()
    abort.abort_source = 2
    pdu = A_ABORT_RQ()
    pdu.from_primitive(abort)
    assert ul_pdu.encode_abort(2, 0) == pdu.encode()


# --- P-DATA-TF and command sets ------------------------------------------------------------------
def _store_rq(data_set: bytes) -> C_STORE_RQ:
    primitive = C_STORE()
    primitive.MessageID = 7
    primitive.AffectedSOPClassUID = CTImageStorage
    primitive.AffectedSOPInstanceUID = "1.2.3.4.5.67"
    primitive.Priority = 2
    primitive.MoveOriginatorApplicationEntityTitle = "MOVESCU"
    primitive.MoveOriginatorMessageID = 3
    primitive.DataSet = BytesIO(data_set)
    message = C_STORE_RQ()
    message.primitive_to_message(primitive)
    return message


@pytest.mark.parametrize("max_pdu", [0, 16, 100, 16384])
def test_pdata_fragments_like_pynetdicom(max_pdu: int) -> None:
    data_set = bytes(range(256)) * 3
    message = _store_rq(data_set)
    theirs = []
    for primitive in message.encode_msg(1, max_pdu):
        pdu = P_DATA_TF()
        pdu.from_primitive(primitive)
        theirs.append(pdu.encode())
    command = encode(message.command_set, True, True)
    mine = ul_pdu.encode_pdata(1, command, True, max_pdu)
    mine += ul_pdu.encode_pdata(1, data_set, False, max_pdu)
    assert mine == theirs
    # and decoding them gives back the fragments in order, with their flags
    pdvs = [pdv for pdu in mine for pdv in ul_pdu.decode_pdata(pdu[6:])]
    assert b"".join(bytes(v) for _, c, v in pdvs if c & 1) == command
    assert b"".join(bytes(v) for _, c, v in pdvs if not c & 1) == data_set
    assert [c for _, c, _ in pdvs if c & 2] == [3, 2]  # one last fragment each


def test_store_command_decodes() -> None:
    message = _store_rq(b"\x00" * 8)
    command = ul_pdu.decode_command(encode(message.command_set, True, True))
    assert command == ul_pdu.CommandSet(
        ul_pdu.C_STORE_RQ, 7, True, CTImageStorage, "1.2.3.4.5.67", 2, "MOVESCU", 3
    )


def test_store_and_echo_responses_are_byte_identical_to_pynetdicoms() -> None:
    primitive = C_STORE()
    primitive.MessageIDBeingRespondedTo = 7
    primitive.AffectedSOPClassUID = CTImageStorage
    primitive.AffectedSOPInstanceUID = "1.2.3.4.5.67"
    primitive.Status = 0xA700
    message = C_STORE_RSP()
    message.primitive_to_message(primitive)
    expected = encode(message.command_set, True, True)
    assert ul_pdu.encode_store_rsp(7, CTImageStorage, "1.2.3.4.5.67", 0xA700) == expected

    echo = C_ECHO()
    echo.MessageIDBeingRespondedTo = 9
    echo.AffectedSOPClassUID = Verification
    echo.Status = 0
    message = C_ECHO_RSP()
    message.primitive_to_message(echo)
    assert ul_pdu.encode_echo_rsp(9, Verification) == encode(message.command_set, True, True)

    find = C_FIND()
    find.MessageIDBeingRespondedTo = 4
    find.AffectedSOPClassUID = CTImageStorage
    find.Status = 0x0211
    message = C_FIND_RSP()
    message.primitive_to_message(find)
    expected = encode(message.command_set, True, True)
    assert ul_pdu.encode_refusal_rsp(0x0020, 4, CTImageStorage, 0x0211) == expected


def test_malformed_command_sets_raise() -> None:
    good = encode(_store_rq(b"").command_set, True, True)
    with pytest.raises(PDUError, match="truncated element header"):
        ul_pdu.decode_command(good + b"\x00\x00\x00")
    with pytest.raises(PDUError, match=r"\(0000,1031\) is invalid here"):
        ul_pdu.decode_command(good[:-1])  # the last element runs past the end
    with pytest.raises(PDUError, match=r"\(0008,0010\) is invalid here"):
        ul_pdu.decode_command(good + struct.pack("<HHI", 8, 0x10, 2) + b"AB")
    no_field = ul_pdu.encode_command([(0x0110, struct.pack("<H", 1))])
    with pytest.raises(PDUError, match="lacks Command Field"):
        ul_pdu.decode_command(no_field)


# --- the requestor's side ------------------------------------------------------------------------
_MOVE_CONTEXTS = [
    ul_pdu.ProposedContext(1, StudyRootQueryRetrieveInformationModelMove,
                           (ExplicitVRLittleEndian, ImplicitVRLittleEndian)),
    ul_pdu.ProposedContext(3, PatientRootQueryRetrieveInformationModelMove,
                           (ImplicitVRLittleEndian,)),
]  # fmt: skip


def test_associate_rq_we_encode_reads_back_in_pynetdicom_and_in_ours() -> None:
    contexts = _MOVE_CONTEXTS
    raw = ul_pdu.encode_associate_rq("ORTHANC", "WS", contexts, 1_048_576,
                                     roles=[(CTImageStorage, 0, 1)])  # fmt: skip
    assert raw[0] == 0x01 and struct.unpack(">I", raw[2:6])[0] == len(raw) - 6

    pdu = A_ASSOCIATE_RQ()
    pdu.decode(raw)
    primitive = pdu.to_primitive()
    assert (primitive.called_ae_title, primitive.calling_ae_title) == ("ORTHANC", "WS")
    assert primitive.application_context_name == "1.2.840.10008.3.1.1.1"
    assert [
        (c.context_id, c.abstract_syntax, c.transfer_syntax)
        for c in primitive.presentation_context_definition_list
    ] == [(c.context_id, c.abstract_syntax, list(c.transfer_syntaxes)) for c in contexts]
    assert primitive.maximum_length_received == 1_048_576
    assert primitive.implementation_class_uid == PYNETDICOM_IMPLEMENTATION_UID
    versions = [i.implementation_version_name for i in primitive.user_information
                if isinstance(i, ImplementationVersionNameNotification)]  # fmt: skip
    assert versions == [PYNETDICOM_IMPLEMENTATION_VERSION]
    roles = [i for i in primitive.user_information
             if isinstance(i, SCP_SCU_RoleSelectionNegotiation)]  # fmt: skip
    assert [(r.sop_class_uid, r.scu_role, r.scp_role) for r in roles] == [
        (CTImageStorage, False, True)
    ]

    ours = ul_pdu.decode_associate_rq(raw[6:])
    assert ours.contexts == tuple(contexts) and ours.roles == ((CTImageStorage, 0, 1),)
    assert (ours.called_ae, ours.calling_ae, ours.max_pdu) == ("ORTHANC", "WS", 1_048_576)


def test_associate_ac_decodes_what_pynetdicom_encodes() -> None:
    proposed = _MOVE_CONTEXTS
    ac = A_ASSOCIATE()
    ac.application_context_name = "1.2.840.10008.3.1.1.1"
    ac.called_ae_title, ac.calling_ae_title = "ORTHANC", "WS"
    ac.result = 0
    ac.presentation_context_definition_results_list = [
        _context(1, StudyRootQueryRetrieveInformationModelMove, [ImplicitVRLittleEndian], 0),
        _context(3, PatientRootQueryRetrieveInformationModelMove, [ImplicitVRLittleEndian], 3),
    ]
    ac.user_information = _dcmtk_user_items()
    pdu = A_ASSOCIATE_AC()
    pdu.from_primitive(ac)
    raw = pdu.encode()

    decoded = ul_pdu.decode_associate_ac(raw[6:], proposed)
    assert decoded.contexts == (
        AcceptedContext(1, 0, ImplicitVRLittleEndian, StudyRootQueryRetrieveInformationModelMove),
        AcceptedContext(3, 3, ImplicitVRLittleEndian, PatientRootQueryRetrieveInformationModelMove),
    )
    assert decoded.max_pdu == 16384
    assert decoded.implementation_uid == "1.2.276.0.7230010.3.0.3.6.8"
    assert decoded.implementation_version == "OFFIS_DCMTK_368"
    with pytest.raises(PDUError, match="shorter than its 68 fixed bytes"):
        ul_pdu.decode_associate_ac(raw[6:40])
    with pytest.raises(PDUError, match="runs past the end"):
        ul_pdu.decode_associate_ac(raw[6:-3])


def test_release_rq_matches_pynetdicom() -> None:
    assert ul_pdu.encode_release_rq() == A_RELEASE_RQ().encode()


def test_query_retrieve_and_cancel_requests_read_back_in_pynetdicom() -> None:
    raw = ul_pdu.encode_move_rq(StudyRootQueryRetrieveInformationModelMove, 5, "WS")
    message = C_MOVE_RQ()
    message.command_set = decode(BytesIO(raw), True, True)
    primitive = message.message_to_primitive()
    assert primitive.MessageID == 5
    assert primitive.AffectedSOPClassUID == StudyRootQueryRetrieveInformationModelMove
    assert primitive.MoveDestination == "WS"
    assert primitive.Priority == 0
    assert message.command_set.CommandDataSetType != ul_pdu.NO_DATA_SET  # the identifier follows
    assert message.command_set.CommandGroupLength == len(raw) - 12
    odd = decode(BytesIO(ul_pdu.encode_move_rq(StudyRootQueryRetrieveInformationModelMove, 1,
                                               "ODD")), True, True)  # fmt: skip
    assert odd.MoveDestination == "ODD"  # padded to an even length, the padding not part of it

    get = C_GET_RQ()
    get.command_set = decode(BytesIO(ul_pdu.encode_get_rq(StudyRootQueryRetrieveInformationModelGet,
                                                          6)), True, True)  # fmt: skip
    primitive = get.message_to_primitive()
    assert (primitive.MessageID, primitive.Priority) == (6, 0)
    assert primitive.AffectedSOPClassUID == StudyRootQueryRetrieveInformationModelGet
    assert get.command_set.CommandDataSetType != ul_pdu.NO_DATA_SET

    find = C_FIND_RQ()
    find.command_set = decode(BytesIO(ul_pdu.encode_find_rq(
        StudyRootQueryRetrieveInformationModelFind, 7)), True, True)  # fmt: skip
    primitive = find.message_to_primitive()
    assert (primitive.MessageID, primitive.Priority) == (7, 0)
    assert primitive.AffectedSOPClassUID == StudyRootQueryRetrieveInformationModelFind
    assert find.command_set.CommandDataSetType != ul_pdu.NO_DATA_SET

    cancel = decode(BytesIO(ul_pdu.encode_cancel_rq(5)), True, True)
    assert (cancel.CommandField, cancel.MessageIDBeingRespondedTo) == (0x0FFF, 5)
    assert cancel.CommandDataSetType == ul_pdu.NO_DATA_SET


def test_command_fields_read_a_move_response() -> None:
    primitive = C_MOVE()
    primitive.MessageIDBeingRespondedTo = 1
    primitive.AffectedSOPClassUID = StudyRootQueryRetrieveInformationModelMove
    primitive.Status = 0xFF00
    primitive.NumberOfRemainingSuboperations = 390
    primitive.NumberOfCompletedSuboperations = 10
    primitive.NumberOfFailedSuboperations = 0
    primitive.NumberOfWarningSuboperations = 0
    message = C_MOVE_RSP()
    message.primitive_to_message(primitive)
    fields = ul_pdu.command_fields(encode(message.command_set, True, True))
    assert fields.us(0x0100) == ul_pdu.C_MOVE_RSP and fields.us(0x0120) == 1
    assert fields.us(0x0900) == 0xFF00
    assert [fields.us(e) for e in (0x1020, 0x1021, 0x1022, 0x1023)] == [390, 10, 0, 0]
    assert fields.us(0x0902) is None and 0x0902 not in fields
