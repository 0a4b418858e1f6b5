"""TCP socket options for pynetdicom associations.

pynetdicom leaves Nagle's algorithm on for its sockets, and DICOM's request/response pattern
(a small PDU, then waiting for the peer's answer) then costs a delayed-ACK round of ~40 ms per
message on loopback (see DESIGN.md, "Facts measured"). pynetdicom has no socket-option setting,
but it triggers ``EVT_CONN_OPEN`` on both sides as soon as a connection exists and before any PDU
is exchanged, with the association whose socket we can reach: binding :func:`set_nodelay_on_open`
to that event switches Nagle off for every association, acceptor and requestor alike.

Example
-------
>>> from pynetdicom import AE
>>> ae = AE()
>>> ae.add_requested_context("1.2.840.10008.1.1")
>>> assoc = ae.associate("127.0.0.1", 11112, evt_handlers=nodelay_handlers())  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import socket
import types
from typing import Any

from pynetdicom import evt

log = logging.getLogger(__name__)


def set_nodelay(sock: socket.socket | None) -> bool:
    """Switch Nagle's algorithm off on a TCP socket.

    Parameters
    ----------
    sock : socket.socket or None
        A connected (or connecting) TCP socket; TLS-wrapped sockets are fine.

    Returns
    -------
    bool
        True when the option was set, False when there was no socket or it is not TCP.
    """
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError as exc:  # e.g. the peer already closed: harmless, the association will end
        log.debug("could not set TCP_NODELAY on %r: %s", sock, exc)
        return False
    return True


def set_nodelay_on_open(event: Any) -> None:
    """``EVT_CONN_OPEN`` handler: set TCP_NODELAY on the association's socket.

    Parameters
    ----------
    event : pynetdicom.events.Event
        The connection-open event; ``event.assoc.dul.socket.socket`` is the TCP socket.
    """
    assoc_socket = getattr(event.assoc.dul, "socket", None)
    set_nodelay(getattr(assoc_socket, "socket", None))


def nodelay_handlers() -> list[tuple[Any, Any]]:
    """The ``evt_handlers`` entries that set TCP_NODELAY (for ``associate`` or ``start_server``)."""
    return [(evt.EVT_CONN_OPEN, set_nodelay_on_open)]


def recv_exact_into(sock: socket.socket, view: memoryview, flags: int = 0) -> int:
    """Receive into all of ``view``; the bytes received, fewer when the peer closed first.

    ``flags`` go to each ``recv_into`` (``MSG_WAITALL`` on a blocking socket: one call per
    piece, the kernel waiting for all of it). Socket errors (timeouts included) propagate.
    """
    size = len(view)
    got = 0
    recv_into = sock.recv_into
    while got < size:
        n = recv_into(view[got:], size - got, flags)
        if not n:
            break
        got += n
    return got


def _recv_exact(self: Any, nr_bytes: int) -> bytearray:
    """``AssociationSocket.recv`` reading straight into one buffer.

    pynetdicom's own reads 4 KiB per ``socket.recv`` and appends each piece to a ``bytearray``:
    a 512 KiB image costs 128 Python-level calls and copies. This reads with ``recv_into``
    into a buffer of the PDU's size, with the same contract: all ``nr_bytes``, or fewer when
    the peer closed the connection (pynetdicom then reports it); socket errors propagate, and
    are kept as ``recv_error`` on the association socket (pynetdicom only logs them; a TLS alert
    such as "certificate required" says why a node ended the association).
    """
    buffer = bytearray(nr_bytes)
    view = memoryview(buffer)
    try:
        nr_read = recv_exact_into(self.socket, view)
    except OSError as exc:
        self.recv_error = exc
        raise
    finally:
        view.release()
    return buffer if nr_read == nr_bytes else buffer[:nr_read]


def use_fast_recv(event: Any) -> bool:
    """``EVT_CONN_OPEN`` helper: give this association's socket :func:`_recv_exact`.

    Per instance (nothing global is patched); returns False when the socket is not pynetdicom's
    ``AssociationSocket`` as expected (then its own ``recv`` stays).
    """
    assoc_socket = getattr(event.assoc.dul, "socket", None)
    if assoc_socket is None or not callable(getattr(assoc_socket, "recv", None)):
        return False
    if getattr(assoc_socket, "socket", None) is None:
        return False
    assoc_socket.recv = types.MethodType(_recv_exact, assoc_socket)
    return True
