"""The fast acceptor hands each instance to the listener as a view of its receive buffer (no copy
on the thread that answers the C-STORE); a listener passes that view on only when it was made
``borrowed``, and gives every other store callback bytes of its own."""

from __future__ import annotations

import pydicom
import pytest
from pynetdicom.dsutils import encode
from test_storage_listener import Recorder, ct_dataset, dataset_bytes, store

from workstation.net.storage_scp import StorageListener

SCU_AE = "TESTSCU"


def _listener(callback, **kw) -> StorageListener:  # noqa: ANN001
    listener = StorageListener("LISTENER", 0, callback, bind_address="127.0.0.1",
                               allowed_calling_aes=[SCU_AE], engine="fast", **kw)  # fmt: skip
    listener.start()
    return listener


def _big(pixels: int) -> pydicom.Dataset:
    ds = ct_dataset()
    ds.Rows, ds.Columns = 1024, pixels // 2048
    ds.PixelData = bytes(i % 251 for i in range(pixels))
    return ds


def test_a_borrowed_view_is_the_file_and_lives_only_during_the_call() -> None:
    seen: list[tuple[type, bool, bytes]] = []
    views: list[memoryview] = []

    def keep_view(data, calling_ae: str, peer: str) -> int:  # noqa: ANN001
        seen.append((type(data), data.readonly, bytes(data)))
        views.append(data)
        return 0x0000

    listener = _listener(keep_view, borrowed=True)
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

    listener = _listener(keep_slice, borrowed=True)
    try:
        small, large = ct_dataset(), _big(3 << 20)
        assert store(listener, small, large) == [0x0000, 0x0000]
    finally:
        listener.stop(grace=1.0)
    assert [dataset_bytes(b) for b in got] == [encode(d, False, True) for d in (small, large)]


def test_callbacks_that_keep_the_data_get_bytes_of_their_own() -> None:
    recorder = Recorder()
    listener = _listener(recorder)  # not borrowed: the default
    try:
        sent = [ct_dataset(), _big(1 << 20), ct_dataset()]
        assert store(listener, *sent) == [0x0000] * 3
    finally:
        listener.stop(grace=1.0)
    assert all(type(data) is bytes for data, _, _ in recorder.files)
    assert [dataset_bytes(d) for d, _, _ in recorder.files] == [
        encode(d, False, True) for d in sent
    ]
