"""The shared-memory segment a loaded volume lives in, and the workers' writes of slices into it.

:class:`~workstation.core.series_loader.SeriesLoader` and its staging
(:mod:`workstation.core.series_staging`) make one segment per volume (:func:`_allocate`); worker
processes attach to it (:func:`_attach`) and write each slice's modality values into its row.

* Pages are reserved before a row is written (:func:`_reserve_rows`): a ``/dev/shm`` that runs out
  of room is an OSError, then :class:`SharedMemoryFull`, instead of a SIGBUS.
* Uncompressed 16-bit slices are copied into the segment by the kernel (:func:`_copy_into_segment`)
  and shifted by the intercept in place; others are converted with :func:`_store`.
"""

from __future__ import annotations

import errno
import itertools
import os
import sys
import weakref
from multiprocessing import resource_tracker
from multiprocessing.shared_memory import SharedMemory

import numpy as np

from workstation.core.modality_lut import ModalityTransform
from workstation.core.pixel_layout import PixelLayout, read_stored

_HEADER = 64  # bytes before the voxels in the shared segment; byte 0 is the cancel flag
_I16 = np.iinfo(np.int16)
#: whether ``os.sendfile`` may write to a file here (Linux; elsewhere only to sockets)
_SENDFILE = [hasattr(os, "sendfile") and sys.platform.startswith("linux")]
_NO_SENDFILE = {errno.EINVAL, errno.ENOSYS, errno.ENOTSOCK, errno.EOPNOTSUPP}
_SHM_DIR = "/dev/shm"
_MB = 1024 * 1024


class SharedMemoryFull(OSError):
    """The shared-memory file system (``/dev/shm``) has no room for the volume: the series
    cannot be loaded as one (its frames can still be decoded one by one)."""


def _integral(mt: ModalityTransform) -> bool:
    return mt.lut is None and float(mt.slope).is_integer() and float(mt.intercept).is_integer()


def _store(stored: np.ndarray, mt: ModalityTransform, out: np.ndarray) -> bool:
    """Write the modality values of ``stored`` into ``out``; False (``out`` untouched) when
    ``out`` is int16 and they do not fit it."""
    if out.dtype == np.float32:
        out[...] = mt.apply(stored)
        return True
    if not _integral(mt):
        return False
    slope, icpt = int(mt.slope), int(mt.intercept)
    lo, hi = sorted((int(stored.min()) * slope + icpt, int(stored.max()) * slope + icpt))
    if lo < _I16.min or hi > _I16.max:
        return False
    if slope == 1 and stored.dtype == np.int16 and _I16.min <= icpt <= _I16.max:
        np.add(stored, np.int16(icpt), out=out)  # exact: the true result fits int16
    elif slope == 1:
        np.add(stored, np.int32(icpt), out=out, casting="unsafe")
    else:
        out[...] = stored.astype(np.int32) * slope + icpt
    return True


def _attach(name: str) -> SharedMemory:
    """Attach to the caller's segment without registering it with a resource tracker: the caller
    owns and unlinks it (a forked worker's own tracker would "clean up" the unlinked name)."""
    try:
        return SharedMemory(name=name, track=False)  # Python >= 3.13
    except TypeError:
        pass
    register = resource_tracker.register
    resource_tracker.register = lambda *args, **kwargs: None  # the worker is single-threaded
    try:
        return SharedMemory(name=name)
    finally:
        resource_tracker.register = register


def _read_native(
    path: str, layout: PixelLayout, out: np.ndarray, shm: SharedMemory | None = None
) -> bool | None:
    """Read the stored values at ``layout`` into the volume slice ``out`` as modality values.

    ``shm``, when given, is the segment ``out`` lies in: 16-bit values with a slope of 1 are then
    copied by the kernel straight into the segment (:func:`_copy_into_segment`) and shifted by
    the intercept in place.

    True when done, False when they do not fit an int16 ``out``, None when the layout does not
    fit ``out`` or the read fails (the caller then decodes the file the usual way).
    """
    if (layout.rows, layout.cols) != out.shape:
        return None
    mt = layout.transform
    try:
        if layout.dtype in ("<i2", "<u2") and out.dtype == np.int16 and mt.slope == 1:
            if _integral(mt) and _copy_into_segment(path, layout, out, shm):
                return _shift_in_place(out, layout.dtype, int(mt.intercept))
        if layout.dtype == "<i2" and out.dtype == np.int16 and mt.slope == 1 and _integral(mt):
            read_stored(path, layout, out)  # straight into the volume, then the intercept
            return _shift_in_place(out, layout.dtype, int(mt.intercept))
        return _store(read_stored(path, layout), mt, out)
    except OSError:
        return None


def _copy_into_segment(
    path: str, layout: PixelLayout, out: np.ndarray, shm: SharedMemory | None
) -> bool:
    """Copy the pixel bytes of ``path`` into the volume slice ``out`` inside ``shm`` with
    ``sendfile``; False (nothing written) where that cannot be done here.

    The kernel copies from the page cache into the segment's pages: this process takes no page
    fault for them, which halves the cost of a slice (a 400-slice 512x512 CT on this machine:
    0.30 instead of 0.55 ms per slice, with the intercept added; /work/notes/s9/stage_micro2.py).
    The slice's pages must be reserved (:func:`_reserve_rows`) before.

    Raises
    ------
    OSError
        When the file cannot be read or ends before its pixel data does.
    """
    fd = getattr(shm, "_fd", -1)
    if fd < 0 or not _SENDFILE[0] or not out.flags.c_contiguous:
        return False
    base = out.__array_interface__["data"][0] - _address(shm)
    nbytes = out.nbytes
    if base < 0 or base + nbytes > shm.size or nbytes != layout.nbytes:
        return False
    src = os.open(path, os.O_RDONLY)
    try:
        offset, at, left = layout.offset, base, nbytes
        while left:
            os.lseek(fd, at, os.SEEK_SET)
            try:
                n = os.sendfile(fd, src, offset, left)
            except OSError as exc:
                if at == base and exc.errno in _NO_SENDFILE:
                    _SENDFILE[0] = False  # not to a file here: plain reads from now on
                    return False
                raise
            if n <= 0:
                raise OSError(f"the file ends {left} bytes before its pixel data does")
            offset, at, left = offset + n, at + n, left - n
    finally:
        os.close(src)
    return True


def _shift_in_place(out: np.ndarray, stored: str, icpt: int) -> bool:
    """Stored 16-bit values in the int16 ``out`` (its bytes as read; ``stored`` says whether
    they are signed) plus ``icpt``: True, or False when a result does not fit int16 (``out`` then
    holds undefined values)."""
    if stored == "<u2":
        raw = out.view(np.uint16)
        lo, hi = int(raw.min()) + icpt, int(raw.max()) + icpt
        if lo < _I16.min or hi > _I16.max:
            return False
        if icpt:  # modulo 2**16, which is exact: every result fits int16
            np.add(raw, np.uint16(icpt % 65536), out=raw)
        return True
    if icpt < 0 and int(out.min()) + icpt < _I16.min:
        return False
    if icpt > 0 and int(out.max()) + icpt > _I16.max:
        return False
    if icpt:
        np.add(out, np.int16(icpt), out=out)
    return True


def _shm_room() -> tuple[int, int] | None:
    """(free, total) bytes of the shared-memory file system, None where there is none to ask."""
    try:
        st = os.statvfs(_SHM_DIR)
    except (OSError, AttributeError):
        return None
    return st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize


def _no_room(nbytes: int) -> SharedMemoryFull:
    room = _shm_room()
    free = f"{room[0] / _MB:.0f} MB free of {room[1] / _MB:.0f} MB" if room is not None else "full"
    return SharedMemoryFull(
        f"{_SHM_DIR} is too small for this {nbytes / _MB:.0f} MB volume ({free}; "
        "enlarge it, e.g. docker run --shm-size=2g)"
    )


def _reserve(shm: SharedMemory, start: int, length: int) -> None:
    """Allocate the segment's pages for bytes ``start`` to ``start + length`` now.

    A page of a shared segment is allocated on first access, and when the file system behind it
    (``/dev/shm``) is full that access kills the process with SIGBUS (reads of pages never
    written included). Every byte of a volume is reserved before it is written or read, so a
    full ``/dev/shm`` is an OSError (ENOSPC) instead. Costs nothing beyond the allocation the
    first write would do.
    """
    fd = getattr(shm, "_fd", -1)
    if fd >= 0 and length > 0 and hasattr(os, "posix_fallocate"):
        os.posix_fallocate(fd, start, length)


def _reserve_rows(shm: SharedMemory, vol: np.ndarray, rows) -> None:
    """:func:`_reserve` the given rows of ``vol`` (a volume over ``shm``, or a view of one), in
    runs."""
    step = vol.strides[0]
    row0 = vol.__array_interface__["data"][0] - _address(shm)  # segment offset of row 0
    # consecutive rows have the same (row - position): each group is one run
    for _, group in itertools.groupby(enumerate(sorted(set(rows))), lambda p: p[1] - p[0]):
        run = [row for _, row in group]
        ends = (row0 + run[0] * step, row0 + run[-1] * step)
        _reserve(shm, min(ends), len(run) * abs(step))


def _address(shm: SharedMemory) -> int:
    """The address of the segment's first byte in this process."""
    return np.frombuffer(shm.buf, np.uint8, 1).ctypes.data


def _allocate(
    shape: tuple[int, ...], dtype: np.dtype, reserve_all: bool = False
) -> tuple[SharedMemory, np.ndarray]:
    """A shared segment and the volume over it; the mapping lives as long as the array.

    Its pages are reserved (:func:`_reserve`) by whoever writes each slice; ``reserve_all``
    reserves them all now. Raises :class:`SharedMemoryFull` when ``/dev/shm`` has no room.
    """
    nbytes = int(np.prod(shape)) * dtype.itemsize
    size = _HEADER + max(1, nbytes)
    room = _shm_room()
    if room is not None and room[0] < size:
        raise _no_room(size)
    shm = SharedMemory(create=True, size=size)
    try:
        _reserve(shm, 0, size if reserve_all else _HEADER)
    except OSError as exc:
        shm.close()
        shm.unlink()
        raise _no_room(size) from exc
    shm.buf[0] = 0
    vol = np.ndarray(shape, dtype, buffer=shm.buf, offset=_HEADER)
    weakref.finalize(vol, shm.close)  # views of vol keep vol, and so the mapping, alive
    return shm, vol
