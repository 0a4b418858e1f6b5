"""A small Query/Retrieve SCP on pynetdicom, serving files from disk, for the cases Orthanc and
DCMTK cannot be made to show on demand: a peer that aborts in the middle of a C-MOVE, one that
answers C-FIND slowly (to cancel it), and one that speaks TLS with a certificate made in the
test. It is a real peer on a real socket (no mocks): our code cannot tell it from a PACS.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import AllTransferSyntaxes
from pynetdicom import AE, AllStoragePresentationContexts, StoragePresentationContexts, evt
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from workstation.net.tcp import set_nodelay_on_open

_LEVEL_KEYS = {
    "STUDY": ("StudyInstanceUID",),
    "SERIES": ("StudyInstanceUID", "SeriesInstanceUID"),
    "IMAGE": ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"),
}


@dataclass
class Faults:
    """What the peer does wrong (changeable while it runs)."""

    abort_move_after: int | None = None  # A-ABORT after sending this many sub-operations
    find_delay: float = 0.0  # seconds before each C-FIND match
    find_repeat: int = 1  # answer every match this many times (a long result list)
    send_delay: float = 0.0  # seconds before each C-MOVE/C-GET sub-operation


@dataclass
class QrPeer:
    """Serves ``files`` by Study Root C-FIND/C-MOVE/C-GET; ``destinations`` maps AE -> port."""

    files: list[Path]
    destinations: dict[str, int] = field(default_factory=dict)
    aet: str = "PYQR"
    ssl_context: ssl.SSLContext | None = None
    faults: Faults = field(default_factory=Faults)
    cancelled_finds: int = 0
    cancelled_retrieves: int = 0
    moves: list[str] = field(default_factory=list)  # the levels of the C-MOVEs received

    def __post_init__(self) -> None:
        self.headers = [(p, pydicom.dcmread(p, stop_before_pixels=True)) for p in self.files]
        ae = AE(ae_title=self.aet)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
        ae.add_supported_context(Verification)
        for uid in (StudyRootQueryRetrieveInformationModelFind,
                    StudyRootQueryRetrieveInformationModelMove,
                    StudyRootQueryRetrieveInformationModelGet):  # fmt: skip
            ae.add_supported_context(uid)
        for ctx in StoragePresentationContexts:  # as SCU for C-MOVE sub-associations
            ae.add_requested_context(ctx.abstract_syntax, AllTransferSyntaxes[:4])
        for ctx in AllStoragePresentationContexts:  # C-GET: the requestor takes the SCP role
            ae.add_supported_context(ctx.abstract_syntax, AllTransferSyntaxes, scp_role=True,
                                     scu_role=False)  # fmt: skip
        self.ae = ae
        self.server: Any = None

    def start(self) -> int:
        handlers = [
            (evt.EVT_CONN_OPEN, set_nodelay_on_open),
            (evt.EVT_C_FIND, self._find),
            (evt.EVT_C_MOVE, self._move),
            (evt.EVT_C_GET, self._get),
        ]
        self.server = self.ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=handlers,
                                           ssl_context=self.ssl_context)  # fmt: skip
        return int(self.server.server_address[1])

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server = None

    def __enter__(self) -> QrPeer:
        self.port = self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- matching -------------------------------------------------------------------------------
    def _matches(self, query: Dataset) -> list[tuple[Path, Dataset]]:
        level = query.QueryRetrieveLevel
        out = []
        for path, ds in self.headers:
            ok = True
            for key in _LEVEL_KEYS[level]:
                wanted = query.get(key)
                if wanted in (None, "", "*"):
                    continue
                values = [wanted] if isinstance(wanted, str) else list(wanted)
                if str(ds.get(key, "")) not in {str(v) for v in values}:
                    ok = False
            if ok:
                out.append((path, ds))
        return out

    def _find(self, event: Any) -> Iterator[tuple[int, Dataset | None]]:
        query = event.identifier
        level = query.QueryRetrieveLevel
        seen: set[str] = set()
        for _ in range(self.faults.find_repeat):
            for _path, ds in self._matches(query):
                key = str(ds.get(_LEVEL_KEYS[level][-1]))
                if self.faults.find_repeat == 1 and key in seen:
                    continue
                seen.add(key)
                if event.is_cancelled:
                    self.cancelled_finds += 1
                    yield 0xFE00, None
                    return
                if self.faults.find_delay:
                    time.sleep(self.faults.find_delay)
                answer = Dataset()
                answer.QueryRetrieveLevel = level
                for elem in query:
                    if elem.keyword in ds:
                        answer[elem.tag] = ds[elem.tag]
                    elif elem.keyword not in ("QueryRetrieveLevel", "SpecificCharacterSet"):
                        answer[elem.tag] = elem
                if "SpecificCharacterSet" in ds:
                    answer.SpecificCharacterSet = ds.SpecificCharacterSet
                yield 0xFF00, answer
        yield 0x0000, None

    def _move(self, event: Any) -> Iterator[Any]:
        self.moves.append(str(event.identifier.QueryRetrieveLevel))
        if event.move_destination not in self.destinations:
            yield None, None
            return
        yield "127.0.0.1", self.destinations[event.move_destination]
        yield from self._send(event)

    def _get(self, event: Any) -> Iterator[Any]:
        self.moves.append(str(event.identifier.QueryRetrieveLevel))
        yield from self._send(event)

    def _send(self, event: Any) -> Iterator[Any]:
        matches = self._matches(event.identifier)
        yield len(matches)
        for n, (path, _) in enumerate(matches):
            if self.faults.abort_move_after is not None and n >= self.faults.abort_move_after:
                threading.Event().wait(0.2)  # let the last instance reach the archive's spool
                event.assoc.abort()
                return
            if self.faults.send_delay:
                time.sleep(self.faults.send_delay)
            if event.is_cancelled:
                self.cancelled_retrieves += 1
                yield 0xFE00, None
                return
            yield 0xFF00, pydicom.dcmread(path)
