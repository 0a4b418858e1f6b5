"""The fast acceptor hands each whole instance to its store hook as a view of its receive buffer
(no copy on the thread that answers the C-STORE), released once the hook returns; the storage
listener gives its store callbacks bytes of their own."""

from __future__ import annotations

import pydicom
import pytest
from pynetdicom.dsutils import encode
from test_storage_listener import Recorder, ct_dataset, dataset_bytes, store

from workstation.net.fast_scp import AcceptorHooks, FastAcceptor
from workstation.net.storage_scp import ACCEPTED_SOP_CLASSES, ACCEPTED_SYNTAXES, StorageListener

SCU_AE = "TESTSCU"


def _listener(callback) -> StorageListener:  # noqa: ANN001
    listener = StorageListener("LISTENER", 0, callback, bind_address="127.0.0.1",
                               allowed_calling_aes=[SCU_AE], engine="fast")  # fmt: skip
    listener.start()
    return listener


class _Acceptor:
    """A fast acceptor whose store hook is ``callback(data, calling_ae, peer)``."""

    def __init__(self, callback) -> None:  # noqa: ANN001
        hooks = AcceptorHooks(
            calling_allowed=lambda calling: calling == SCU_AE,
            accepted=lambda *a: None,
            rejected=lambda *a: None,
            store=lambda _id, calling, peer, _cls, _uid, _ts, data: callback(data, calling, peer),
            ended=lambda *a: None,
        )
        self.acceptor = FastAcceptor("LISTENER", ("127.0.0.1", 0), hooks,
                                     abstract_syntaxes=ACCEPTED_SOP_CLASSES,
                                     transfer_syntaxes=ACCEPTED_SYNTAXES)  # fmt: skip
        self.address = self.acceptor.server_address

    def stop(self, grace: float) -> None:
        self.acceptor.shutdown(grace)


def _big(pixels: int) -> pydicom.Dataset:
    ds = ct_dataset()
    ds.Rows, ds.Columns = 1024, pixels // 2048
    ds.PixelData = bytes(i % 251 for i in range(pixels))
    return ds


def test_the_store_hook_gets_a_view_of_the_file_that_lives_only_during_the_call() -> None:
    seen: list[tuple[type, bool, bytes]] = []
    views: list[memoryview] = []

    def keep_view(data, calling_ae: str, peer: str) -> int:  # noqa: ANN001
        seen.append((type(data), data.readonly, bytes(data)))
        views.append(data)
        return 0x0000

    listener = _Acceptor(keep_view)
    try:
        sent = [ct_dataset(), ct_dataset()]
        assert store(listener, *sent) == [0x0000, 0x0000]
    finally:
        listener.stop(grace=1.0)
    assert [(t, ro) for t, ro, _ in seen] == [(memoryview, True)] * 2
    assert [dataset_bytes(b) for _, _, b in seen] == [encode(d, False, True) for d in sent]
    for view in views:  # released once the callback returned: never read stale data through it
        with pytest.raises(ValueError):
            bytes(view)


def test_a_view_kept_past_the_call_does_not_stop_a_larger_instance() -> None:
    """The receive buffer (1 MiB) grows for a larger data set; a view the callback kept of the
    buffer pins it, so it is replaced, not resized (resizing raised BufferError and aborted)."""
    kept: list[memoryview] = []
    got: list[bytes] = []

    def keep_slice(data, calling_ae: str, peer: str) -> int:  # noqa: ANN001
        kept.append(data[:16])  # a view of the buffer that outlives the call
        got.append(bytes(data))
        return 0x0000

    listener = _Acceptor(keep_slice)
    try:
        small, large = ct_dataset(), _big(3 << 20)
        assert store(listener, small, large) == [0x0000, 0x0000]
    finally:
        listener.stop(grace=1.0)
    assert [dataset_bytes(b) for b in got] == [encode(d, False, True) for d in (small, large)]


def test_callbacks_that_keep_the_data_get_bytes_of_their_own() -> None:
    recorder = Recorder()
    listener = _listener(recorder)
    try:
        sent = [ct_dataset(), _big(1 << 20), ct_dataset()]
        assert store(listener, *sent) == [0x0000] * 3
    finally:
        listener.stop(grace=1.0)
    assert all(type(data) is bytes for data, _, _ in recorder.files)
    assert [dataset_bytes(d) for d, _, _ in recorder.files] == [
        encode(d, False, True) for d in sent
    ]
