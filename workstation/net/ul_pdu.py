"""DICOM Upper Layer PDUs (PS3.8 section 9.3) and DIMSE command sets (PS3.7).

Pure functions on bytes, written from the standard for :mod:`workstation.net.fast_scp` (the
acceptor) and :mod:`workstation.net.requestor` (the requestor):

* decoding the A-ASSOCIATE-RQ (application context, presentation contexts, user information:
  maximum length, implementation class UID and version name, asynchronous operations window,
  SCP/SCU role selection, user identity);
* encoding the A-ASSOCIATE-AC and -RJ, A-RELEASE-RP, A-ABORT, and P-DATA-TF PDUs fragmented to
  the peer's maximum length;
* decoding a command set (group 0000, Implicit VR Little Endian) and encoding the C-STORE and
  C-ECHO responses;
* for a requestor: encoding the A-ASSOCIATE-RQ and A-RELEASE-RQ, decoding the A-ASSOCIATE-AC
  and the fields of any command set (:func:`command_fields`).

Every PDU's header is ``type (1), reserved (1), length (4, big endian)``; the functions named
``decode_*`` take the body after that header. Malformed input raises :class:`PDUError`
carrying the A-ABORT reason the acceptor should send.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION

__all__ = [
    "APPLICATION_CONTEXT",
    "IMPLEMENTATION_CLASS_UID",
    "IMPLEMENTATION_VERSION_NAME",
    "AcceptedContext",
    "AssociateAC",
    "AssociateRQ",
    "CommandSet",
    "PDUError",
    "ProposedContext",
    "command_fields",
    "decode_associate_ac",
    "decode_associate_rq",
    "decode_command",
    "decode_pdata",
    "encode_abort",
    "encode_associate_ac",
    "encode_associate_rj",
    "encode_associate_rq",
    "encode_command",
    "encode_cancel_rq",
    "encode_echo_rsp",
    "encode_find_rq",
    "encode_get_rq",
    "encode_move_rq",
    "encode_pdata",
    "encode_refusal_rsp",
    "encode_release_rp",
    "encode_release_rq",
    "encode_store_rsp",
]

# PDU types (PS3.8 table 9-11 and following)
A_ASSOCIATE_RQ = 0x01
A_ASSOCIATE_AC = 0x02
A_ASSOCIATE_RJ = 0x03
P_DATA_TF = 0x04
A_RELEASE_RQ = 0x05
A_RELEASE_RP = 0x06
A_ABORT = 0x07

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"  # the DICOM application context name
#: What the listener has always identified itself with (and writes in the Part 10 headers of
#: what it receives): the implementation class UID and version name of ``workstation.net``.
IMPLEMENTATION_CLASS_UID = PYNETDICOM_IMPLEMENTATION_UID
IMPLEMENTATION_VERSION_NAME = PYNETDICOM_IMPLEMENTATION_VERSION

# A-ABORT reasons when the source is the service provider (PS3.8 table 9-26)
ABORT_UNRECOGNIZED_PDU = 1
ABORT_UNEXPECTED_PDU = 2
ABORT_UNRECOGNIZED_PARAMETER = 4
ABORT_UNEXPECTED_PARAMETER = 5
ABORT_INVALID_PARAMETER = 6

# Presentation context results (PS3.8 table 9-18)
ACCEPTANCE = 0
ABSTRACT_SYNTAX_NOT_SUPPORTED = 3
TRANSFER_SYNTAXES_NOT_SUPPORTED = 4

# Command fields (PS3.7 annex E)
C_STORE_RQ = 0x0001
C_STORE_RSP = 0x8001
C_ECHO_RQ = 0x0030
C_ECHO_RSP = 0x8030
C_FIND_RQ = 0x0020
C_FIND_RSP = 0x8020
C_GET_RQ = 0x0010
C_GET_RSP = 0x8010
C_MOVE_RQ = 0x0021
C_MOVE_RSP = 0x8021
C_CANCEL_RQ = 0x0FFF
NO_DATA_SET = 0x0101

_HEADER = struct.Struct(">BBI")
_ITEM = struct.Struct(">BBH")
_ELEMENT = struct.Struct("<HHI")


class PDUError(ValueError):
    """A PDU or command set that breaks the standard.

    Attributes
    ----------
    abort_reason : int
        The A-ABORT reason (source: service provider) that answers it.
    """

    def __init__(self, message: str, abort_reason: int = ABORT_INVALID_PARAMETER) -> None:
        super().__init__(message)
        self.abort_reason = abort_reason


@dataclass(frozen=True)
class ProposedContext:
    """A presentation context of an A-ASSOCIATE-RQ."""

    context_id: int
    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]


@dataclass(frozen=True)
class AcceptedContext:
    """The answer to one proposed context (``result`` 0 accepts ``transfer_syntax``)."""

    context_id: int
    result: int
    transfer_syntax: str
    abstract_syntax: str = ""


@dataclass(frozen=True)
class AssociateRQ:
    """What an A-ASSOCIATE-RQ proposes.

    Attributes
    ----------
    protocol_version : int
        Bit 0 set means version 1 (the only one defined).
    called_ae, calling_ae : str
        AE titles with the non-significant spaces removed.
    application_context : str
    contexts : tuple of ProposedContext
    max_pdu : int
        The largest P-DATA-TF the requestor accepts (0: no limit).
    implementation_uid, implementation_version : str
    async_window : tuple of int or None
        (invoked, performed) when the requestor proposed an asynchronous operations window.
    roles : tuple of (str, int, int)
        SCP/SCU role selection items: (SOP class UID, SCU role, SCP role).
    user_identity : tuple of (int, bytes) or None
        User identity type and primary field, when sent (never logged: it may be a password).
    """

    protocol_version: int
    called_ae: str
    calling_ae: str
    application_context: str
    contexts: tuple[ProposedContext, ...]
    max_pdu: int = 0
    implementation_uid: str = ""
    implementation_version: str = ""
    async_window: tuple[int, int] | None = None
    roles: tuple[tuple[str, int, int], ...] = ()
    user_identity: tuple[int, bytes] | None = field(default=None, repr=False)


def _text(raw: bytes | memoryview, what: str) -> str:
    try:
        return bytes(raw).decode("ascii").strip(" \x00")
    except UnicodeDecodeError as exc:
        raise PDUError(f"{what} is not ASCII: {bytes(raw)[:64]!r}") from exc


def _items(body: bytes, start: int, end: int, what: str) -> Iterable[tuple[int, int, int]]:
    """(type, value start, value end) of the items in ``body[start:end]`` (2-byte lengths)."""
    pos = start
    while pos < end:
        if pos + 4 > end:
            raise PDUError(f"{what}: truncated item header at byte {pos}")
        item_type, _, length = _ITEM.unpack_from(body, pos)
        if pos + 4 + length > end:
            raise PDUError(f"{what}: item 0x{item_type:02X} of {length} bytes runs past the end")
        yield item_type, pos + 4, pos + 4 + length
        pos += 4 + length


def _presentation_context(body: bytes, start: int, end: int) -> ProposedContext:
    if end - start < 4:
        raise PDUError("presentation context item shorter than 4 bytes")
    context_id = body[start]
    abstract = ""
    syntaxes: list[str] = []
    for sub_type, a, b in _items(body, start + 4, end, f"presentation context {context_id}"):
        if sub_type == 0x30:
            abstract = _text(body[a:b], "abstract syntax")
        elif sub_type == 0x40:
            syntaxes.append(_text(body[a:b], "transfer syntax"))
        else:
            raise PDUError(
                f"presentation context {context_id}: unexpected sub-item 0x{sub_type:02X}",
                ABORT_UNRECOGNIZED_PARAMETER,
            )
    if not abstract or not syntaxes:
        raise PDUError(f"presentation context {context_id} lacks an abstract or transfer syntax")
    return ProposedContext(context_id, abstract, tuple(syntaxes))


def _user_information(body: bytes, start: int, end: int) -> dict[str, object]:
    info: dict[str, object] = {}
    roles: list[tuple[str, int, int]] = []
    for sub_type, a, b in _items(body, start, end, "user information"):
        size = b - a
        if sub_type == 0x51:
            if size != 4:
                raise PDUError(f"maximum length sub-item of {size} bytes, not 4")
            (info["max_pdu"],) = struct.unpack_from(">I", body, a)
        elif sub_type == 0x52:
            info["implementation_uid"] = _text(body[a:b], "implementation class UID")
        elif sub_type == 0x55:
            info["implementation_version"] = _text(body[a:b], "implementation version name")
        elif sub_type == 0x53:
            if size != 4:
                raise PDUError(f"asynchronous operations window of {size} bytes, not 4")
            info["async_window"] = struct.unpack_from(">HH", body, a)
        elif sub_type == 0x54:
            (uid_length,) = struct.unpack_from(">H", body, a) if size >= 2 else (size,)
            if size != uid_length + 4:
                raise PDUError("SCP/SCU role selection sub-item with an inconsistent length")
            uid = _text(body[a + 2 : a + 2 + uid_length], "role selection SOP class UID")
            roles.append((uid, body[b - 2], body[b - 1]))
        elif sub_type == 0x58:
            if size < 6:
                raise PDUError("user identity sub-item shorter than 6 bytes")
            (primary_length,) = struct.unpack_from(">H", body, a + 2)
            info["user_identity"] = (body[a], bytes(body[a + 4 : a + 4 + primary_length]))
        # 0x56/0x57 (extended negotiation) and others: not negotiated, ignored (PS3.7 D.3.3)
    info["roles"] = tuple(roles)
    return info


def decode_associate_rq(body: bytes) -> AssociateRQ:
    """Decode the body of an A-ASSOCIATE-RQ PDU (PS3.8 table 9-11).

    Raises
    ------
    PDUError
        When the fixed fields or the items are malformed.
    """
    if len(body) < 68:
        raise PDUError(f"A-ASSOCIATE-RQ of {len(body)} bytes, shorter than its 68 fixed bytes")
    (version,) = struct.unpack_from(">H", body, 0)
    called = _text(body[4:20], "called AE title")
    calling = _text(body[20:36], "calling AE title")
    application_context = ""
    contexts: list[ProposedContext] = []
    user: dict[str, object] = {}
    for item_type, a, b in _items(body, 68, len(body), "A-ASSOCIATE-RQ"):
        if item_type == 0x10:
            application_context = _text(body[a:b], "application context name")
        elif item_type == 0x20:
            contexts.append(_presentation_context(body, a, b))
        elif item_type == 0x50:
            user = _user_information(body, a, b)
        else:
            raise PDUError(
                f"A-ASSOCIATE-RQ: unexpected item 0x{item_type:02X}", ABORT_UNRECOGNIZED_PARAMETER
            )
    if not application_context:
        raise PDUError("A-ASSOCIATE-RQ without an application context item")
    return AssociateRQ(version, called, calling, application_context, tuple(contexts), **user)  # type: ignore[arg-type]


def _pdu(pdu_type: int, body: bytes) -> bytes:
    return _HEADER.pack(pdu_type, 0, len(body)) + body


def _item(item_type: int, value: bytes) -> bytes:
    return _ITEM.pack(item_type, 0, len(value)) + value


def _ae(title: str) -> bytes:
    return title.encode("ascii", "replace")[:16].ljust(16, b" ")


def encode_associate_ac(
    rq: AssociateRQ,
    results: Sequence[AcceptedContext],
    max_pdu: int,
    implementation_uid: str = IMPLEMENTATION_CLASS_UID,
    implementation_version: str = IMPLEMENTATION_VERSION_NAME,
) -> bytes:
    """The A-ASSOCIATE-AC PDU answering ``rq`` (PS3.8 table 9-17).

    The called and calling AE fields repeat the request's; an asynchronous operations window
    is answered 1/1 (one operation at a time) when one was proposed. Role selection and user
    identity are not answered: the default roles apply (the requestor is the SCU) and no
    server response is given, as PS3.7 D.3.3.4 and D.3.3.7 allow.
    """
    items = [_item(0x10, APPLICATION_CONTEXT.encode())]
    for cx in results:
        syntax = _item(0x40, cx.transfer_syntax.encode())
        items.append(_item(0x21, bytes((cx.context_id, 0, cx.result, 0)) + syntax))
    user = [
        _item(0x51, struct.pack(">I", max_pdu)),
        _item(0x52, implementation_uid.encode()),
    ]
    if rq.async_window is not None:
        user.append(_item(0x53, struct.pack(">HH", 1, 1)))
    if implementation_version:
        user.append(_item(0x55, implementation_version.encode()))
    items.append(_item(0x50, b"".join(user)))
    fixed = struct.pack(">HH", 1, 0) + _ae(rq.called_ae) + _ae(rq.calling_ae) + bytes(32)
    return _pdu(A_ASSOCIATE_AC, fixed + b"".join(items))


@dataclass(frozen=True)
class AssociateAC:
    """What an A-ASSOCIATE-AC accepts.

    Attributes
    ----------
    contexts : tuple of AcceptedContext
        One per proposed context (``result`` 0: accepted with ``transfer_syntax``).
    max_pdu : int
        The largest P-DATA-TF the acceptor takes (0: no limit).
    implementation_uid, implementation_version : str
    roles : tuple of (str, int, int)
        The SCP/SCU role selection answers: (SOP class UID, SCU role, SCP role).
    """

    contexts: tuple[AcceptedContext, ...]
    max_pdu: int = 0
    implementation_uid: str = ""
    implementation_version: str = ""
    roles: tuple[tuple[str, int, int], ...] = ()


def encode_associate_rq(
    called_ae: str,
    calling_ae: str,
    contexts: Sequence[ProposedContext],
    max_pdu: int,
    roles: Sequence[tuple[str, int, int]] = (),
    implementation_uid: str = IMPLEMENTATION_CLASS_UID,
    implementation_version: str = IMPLEMENTATION_VERSION_NAME,
) -> bytes:
    """The A-ASSOCIATE-RQ PDU (PS3.8 table 9-11): presentation contexts with odd IDs, our
    maximum length, implementation identity and any SCP/SCU role selection items (PS3.7 D.3.3.4:
    ``(SOP class UID, SCU role, SCP role)``)."""
    items = [_item(0x10, APPLICATION_CONTEXT.encode())]
    for cx in contexts:
        subs = [_item(0x30, cx.abstract_syntax.encode())]
        subs += [_item(0x40, ts.encode()) for ts in cx.transfer_syntaxes]
        items.append(_item(0x20, bytes((cx.context_id, 0, 0, 0)) + b"".join(subs)))
    user = [
        _item(0x51, struct.pack(">I", max_pdu)),
        _item(0x52, implementation_uid.encode()),
    ]
    for uid, scu, scp in roles:
        raw = uid.encode()
        user.append(_item(0x54, struct.pack(">H", len(raw)) + raw + bytes((scu, scp))))
    if implementation_version:
        user.append(_item(0x55, implementation_version.encode()))
    items.append(_item(0x50, b"".join(user)))
    fixed = struct.pack(">HH", 1, 0) + _ae(called_ae) + _ae(calling_ae) + bytes(32)
    return _pdu(A_ASSOCIATE_RQ, fixed + b"".join(items))


def decode_associate_ac(body: bytes, proposed: Sequence[ProposedContext] = ()) -> AssociateAC:
    """Decode the body of an A-ASSOCIATE-AC PDU (PS3.8 table 9-17).

    ``proposed`` (the request's contexts) fills in each answer's abstract syntax.

    Raises
    ------
    PDUError
        When the fixed fields or the items are malformed.
    """
    if len(body) < 68:
        raise PDUError(f"A-ASSOCIATE-AC of {len(body)} bytes, shorter than its 68 fixed bytes")
    abstract = {cx.context_id: cx.abstract_syntax for cx in proposed}
    contexts: list[AcceptedContext] = []
    user: dict[str, object] = {}
    for item_type, a, b in _items(body, 68, len(body), "A-ASSOCIATE-AC"):
        if item_type == 0x21:
            if b - a < 4:
                raise PDUError("presentation context answer shorter than 4 bytes")
            syntax = ""
            for sub_type, c, d in _items(body, a + 4, b, "presentation context answer"):
                if sub_type == 0x40:
                    syntax = _text(body[c:d], "transfer syntax")
            context_id, result = body[a], body[a + 2]
            contexts.append(
                AcceptedContext(context_id, result, syntax, abstract.get(context_id, ""))
            )
        elif item_type == 0x50:
            user = _user_information(body, a, b)
        # 0x10 (application context): the one we proposed; others are not ours to judge
    user.pop("async_window", None)
    user.pop("user_identity", None)
    return AssociateAC(tuple(contexts), **user)  # type: ignore[arg-type]


def encode_release_rq() -> bytes:
    """The A-RELEASE-RQ PDU."""
    return _pdu(A_RELEASE_RQ, bytes(4))


def encode_associate_rj(result: int, source: int, reason: int) -> bytes:
    """The A-ASSOCIATE-RJ PDU (PS3.8 table 9-21): result 1 permanent / 2 transient."""
    return _pdu(A_ASSOCIATE_RJ, bytes((0, result, source, reason)))


def encode_release_rp() -> bytes:
    """The A-RELEASE-RP PDU."""
    return _pdu(A_RELEASE_RP, bytes(4))


def encode_abort(source: int = 2, reason: int = 0) -> bytes:
    """The A-ABORT PDU: source 0 service user, 2 service provider (then ``reason`` counts)."""
    return _pdu(A_ABORT, bytes((0, 0, source, reason if source == 2 else 0)))


def encode_pdata(context_id: int, payload: bytes, command: bool, max_pdu: int) -> list[bytes]:
    """P-DATA-TF PDUs carrying ``payload`` as a command or data set message, fragmented.

    Parameters
    ----------
    context_id : int
        The presentation context.
    payload : bytes
        The encoded command set or data set.
    command : bool
        Whether ``payload`` is a command (bit 0 of the message control header).
    max_pdu : int
        The peer's maximum PDU length (the PDU's variable field, PDV headers included);
        0 means no limit.
    """
    limit = len(payload) if max_pdu <= 0 else max(1, max_pdu - 6)
    control = 1 if command else 0
    pdus = []
    start = 0
    while True:
        chunk = payload[start : start + limit]
        start += len(chunk)
        last = start >= len(payload)
        pdv = struct.pack(">IBB", len(chunk) + 2, context_id, control | (2 if last else 0))
        pdus.append(_pdu(P_DATA_TF, pdv + chunk))
        if last:
            return pdus


def decode_pdata(body: bytes | memoryview) -> list[tuple[int, int, memoryview]]:
    """The PDVs of a P-DATA-TF body: (context ID, message control header, value)."""
    view = memoryview(body)
    pdvs = []
    pos = 0
    while pos < len(view):
        if pos + 6 > len(view):
            raise PDUError(f"P-DATA-TF: truncated PDV header at byte {pos}")
        (length,) = struct.unpack_from(">I", view, pos)
        if length < 2 or pos + 4 + length > len(view):
            raise PDUError(f"P-DATA-TF: PDV of length {length} does not fit the PDU")
        pdvs.append((view[pos + 4], view[pos + 5], view[pos + 6 : pos + 4 + length]))
        pos += 4 + length
    return pdvs


@dataclass(frozen=True)
class CommandSet:
    """The fields of a DIMSE request command set that the acceptor uses."""

    command_field: int
    message_id: int
    has_data_set: bool
    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    priority: int = 0
    move_originator_ae: str = ""
    move_originator_message_id: int | None = None


def decode_command(raw: bytes | memoryview) -> CommandSet:
    """Decode a command set (group 0000, Implicit VR Little Endian; PS3.7 section 6.3.1).

    Raises
    ------
    PDUError
        When an element runs past the end, belongs to another group, or a required field
        (Command Field, Message ID, Command Data Set Type) is missing.
    """
    fields = command_fields(raw)
    us, text = fields.us, fields.text
    command_field, message_id, data_set_type = us(0x0100), us(0x0110), us(0x0800)
    if command_field is None or message_id is None or data_set_type is None:
        raise PDUError("command set lacks Command Field, Message ID or Command Data Set Type")
    return CommandSet(
        command_field,
        message_id,
        data_set_type != NO_DATA_SET,
        text(0x0002),
        text(0x1000),
        us(0x0700) or 0,
        text(0x1030),
        us(0x1031),
    )


class CommandFields:
    """The elements of a command set by element number (group 0000), with typed readers."""

    def __init__(self, values: dict[int, memoryview]) -> None:
        self.values = values

    def __contains__(self, element: int) -> bool:
        return element in self.values

    def us(self, element: int) -> int | None:
        """An unsigned short (US) element's value; None when absent."""
        value = self.values.get(element)
        if value is None:
            return None
        if len(value) != 2:
            raise PDUError(f"command set: (0000,{element:04X}) is not a 2-byte US")
        return int.from_bytes(value, "little")

    def text(self, element: int) -> str:
        """A text or UID element's value without its padding; empty when absent."""
        value = self.values.get(element)
        return "" if value is None else _text(value, f"command element (0000,{element:04X})")

    def text_latin1(self, element: int) -> str:
        """A free-text element (e.g. Error Comment): not necessarily ASCII from every peer."""
        value = self.values.get(element)
        return "" if value is None else bytes(value).decode("latin-1").strip(" \x00")


def command_fields(raw: bytes | memoryview) -> CommandFields:
    """Split a command set (group 0000, Implicit VR Little Endian) into its elements.

    Raises
    ------
    PDUError
        When an element runs past the end or belongs to another group.
    """
    view = memoryview(raw)
    values: dict[int, memoryview] = {}
    pos = 0
    while pos < len(view):
        if pos + 8 > len(view):
            raise PDUError(f"command set: truncated element header at byte {pos}")
        group, element, length = _ELEMENT.unpack_from(view, pos)
        if group != 0 or pos + 8 + length > len(view):
            raise PDUError(f"command set: element ({group:04X},{element:04X}) is invalid here")
        values[element] = view[pos + 8 : pos + 8 + length]
        pos += 8 + length
    return CommandFields(values)


def _uid_value(uid: str) -> bytes:
    raw = uid.encode("ascii")
    return raw + b"\x00" if len(raw) % 2 else raw


def encode_command(elements: Iterable[tuple[int, bytes]]) -> bytes:
    """A command set from (element, value) pairs of group 0000, with its group length first.

    Values must already be even-length encoded (see :func:`encode_store_rsp`); elements are
    written in ascending order.
    """
    body = b"".join(
        _ELEMENT.pack(0, element, len(value)) + value for element, value in sorted(elements)
    )
    return _ELEMENT.pack(0, 0, 4) + struct.pack("<I", len(body)) + body


def encode_store_rsp(message_id: int, sop_class: str, sop_instance: str, status: int) -> bytes:
    """The C-STORE-RSP command set (PS3.7 table 9.3-2)."""
    return encode_command(
        [
            (0x0002, _uid_value(sop_class)),
            (0x0100, struct.pack("<H", C_STORE_RSP)),
            (0x0120, struct.pack("<H", message_id)),
            (0x0800, struct.pack("<H", NO_DATA_SET)),
            (0x0900, struct.pack("<H", status)),
            (0x1000, _uid_value(sop_instance)),
        ]
    )


def encode_refusal_rsp(command_field: int, message_id: int, sop_class: str, status: int) -> bytes:
    """The response to a request we do not perform: its command field with bit 15 set, the
    request's Message ID and SOP class, no data set, and ``status`` (e.g. 0x0211)."""
    return encode_command(
        [
            (0x0002, _uid_value(sop_class)),
            (0x0100, struct.pack("<H", command_field | 0x8000)),
            (0x0120, struct.pack("<H", message_id)),
            (0x0800, struct.pack("<H", NO_DATA_SET)),
            (0x0900, struct.pack("<H", status)),
        ]
    )


def encode_echo_rsp(message_id: int, sop_class: str, status: int = 0) -> bytes:
    """The C-ECHO-RSP command set (PS3.7 table 9.3-13)."""
    return encode_command(
        [
            (0x0002, _uid_value(sop_class)),
            (0x0100, struct.pack("<H", C_ECHO_RSP)),
            (0x0120, struct.pack("<H", message_id)),
            (0x0800, struct.pack("<H", NO_DATA_SET)),
            (0x0900, struct.pack("<H", status)),
        ]
    )


def encode_move_rq(sop_class: str, message_id: int, destination: str, priority: int = 0) -> bytes:
    """The C-MOVE-RQ command set (PS3.7 table 9.3-5), its identifier to follow."""
    raw = destination.encode("ascii", "replace")[:16]
    return _query_rq(C_MOVE_RQ, sop_class, message_id, priority,
                        [(0x0600, raw + b" " if len(raw) % 2 else raw)])  # fmt: skip


def encode_get_rq(sop_class: str, message_id: int, priority: int = 0) -> bytes:
    """The C-GET-RQ command set (PS3.7 table 9.3-9), its identifier to follow."""
    return _query_rq(C_GET_RQ, sop_class, message_id, priority, [])


def encode_find_rq(sop_class: str, message_id: int, priority: int = 0) -> bytes:
    """The C-FIND-RQ command set (PS3.7 table 9.3-1), its identifier to follow."""
    return _query_rq(C_FIND_RQ, sop_class, message_id, priority, [])


def _query_rq(
    field: int, sop_class: str, message_id: int, priority: int, more: list[tuple[int, bytes]]
) -> bytes:
    return encode_command(
        [
            (0x0002, _uid_value(sop_class)),
            (0x0100, struct.pack("<H", field)),
            (0x0110, struct.pack("<H", message_id)),
            (0x0700, struct.pack("<H", priority)),
            (0x0800, struct.pack("<H", 0x0001)),  # any value but 0101H: a data set follows
            *more,
        ]
    )


def encode_cancel_rq(message_id: int) -> bytes:
    """The C-CANCEL-RQ command set (PS3.7 table 9.3-3) for the request ``message_id``."""
    return encode_command(
        [
            (0x0100, struct.pack("<H", C_CANCEL_RQ)),
            (0x0120, struct.pack("<H", message_id)),
            (0x0800, struct.pack("<H", NO_DATA_SET)),
        ]
    )
