"""Thick slabs sampled where their rays cross the voxel planes, in compiled code (numba).

``vtkImageReslice`` samples a slab at evenly spaced points along each ray, every one of them a
trilinear interpolation (eight voxels) through a general per-sample path: ~25 ns a sample on this
project's machines, 65 ms for a 20 mm MIP of 512x512x400 on an oblique plane with two cores.

This kernel takes the same number of samples per ray (one per voxel step along the axis the
slab normal runs closest to, the *main axis*) but places them where the ray crosses the voxel
planes of that axis, so that each is a bilinear interpolation of four voxels within one plane;
the two samples at the faces of the slab are trilinear, as vtkImageReslice's first and last
are. Against a reference sampled every 0.05 mm, its MIP is at least as close as
vtkImageReslice's (its median error is ~0 where vtkImageReslice's is a few HU low, because its
samples fall on acquired planes instead of between them), in under half the time.

Points beyond the volume: as vtkImageReslice's border, a point within half a voxel of the
volume's edge takes the edge's value; farther out it is not sampled. A ray with no sample
inside gives NaN.

Mean: the slab's average along the ray by the trapezoid rule over the samples' true positions
(the face samples are nearer their neighbours than one step).

Rows are split between threads (the kernel releases the GIL); nothing is shared between calls,
so several threads may reslice at once.
"""

from __future__ import annotations

import functools
import os
import threading

import numpy as np

MODE_CODES = {"mip": 0, "minip": 1, "mean": 2}
_MIN_ROWS_PER_THREAD = 32
_MAX_THREADS = 8


def available() -> bool:
    """Whether the compiled kernel can be used (numba importable)."""
    return _load() is not None


@functools.cache
def _load():
    try:
        from workstation.render import slab_rays  # noqa: PLC0415 (numba: ~0.2 s to import)
    except ImportError:
        return None
    return slab_rays.slab_rows


def slab(
    values: np.ndarray,
    index_from_plane: np.ndarray,
    size: tuple[int, int],
    pixel_mm: float,
    slab_mm: float,
    mode: str,
) -> np.ndarray | None:
    """A slab of ``values`` sampled on the voxel planes its rays cross; None where this kernel
    cannot make it (numba missing, a volume one voxel thin, a slab thinner than two voxel
    steps), so that the caller samples it another way.

    Parameters
    ----------
    values : numpy.ndarray
        The volume, ``(slices, rows, cols)``, C-contiguous.
    index_from_plane : numpy.ndarray
        4x4 mapping plane coordinates (x mm, y mm, mm along the normal, 1) to voxel indices
        ``(col, row, slice, 1)``.
    size : tuple[int, int]
        ``(cols, rows)`` of the output; pixel ``(c, r)`` lies at
        ``x = (c - (cols - 1) / 2) * pixel_mm``, ``y = (r - (rows - 1) / 2) * pixel_mm``.
    pixel_mm : float
    slab_mm : float
        Thickness along the normal; the slab runs from ``-slab_mm / 2`` to ``+slab_mm / 2``.
    mode : str
        ``'mip'``, ``'minip'`` or ``'mean'``.

    Returns
    -------
    numpy.ndarray or None
        float32 ``(rows, cols)``, NaN where a ray has no sample inside the volume.
    """
    if mode not in MODE_CODES or not values.flags.c_contiguous or min(values.shape) < 2:
        return None
    m = np.asarray(index_from_plane, np.float64)
    normal = m[:3, 2]
    main = int(np.argmax(np.abs(normal)))
    half = 0.5 * slab_mm * abs(float(normal[main]))
    if half < 1.0:
        return None  # fewer than two voxel steps: the evenly spaced samples are better
    kernel = _load()
    if kernel is None:
        return None
    cols, rows = size
    order = [main] + [axis for axis in range(3) if axis != main]
    shape_ijk = (values.shape[2], values.shape[1], values.shape[0])
    strides_ijk = (1, values.shape[2], values.shape[2] * values.shape[1])
    dims = np.array([shape_ijk[a] for a in order], np.int64)
    strides = np.array([strides_ijk[a] for a in order], np.int64)
    origin = m @ np.array([-(cols - 1) / 2 * pixel_mm, -(rows - 1) / 2 * pixel_mm, 0.0, 1.0])
    p0 = np.ascontiguousarray(origin[:3][order])
    pc = np.ascontiguousarray((m[:3, 0] * pixel_mm)[order])
    pr = np.ascontiguousarray((m[:3, 1] * pixel_mm)[order])
    ru = float(normal[order[1]] / normal[main])
    rv = float(normal[order[2]] / normal[main])
    out = np.empty((rows, cols), np.float32)
    flat = values.reshape(-1)
    code = MODE_CODES[mode]

    def run(r0: int, r1: int) -> None:
        kernel(flat, dims, strides, out, r0, r1, p0, pc, pr, ru, rv, half, code)

    _split_rows(run, rows)
    return out


def _split_rows(run, rows: int) -> None:
    """``run(r0, r1)`` over row bands, one per core (the caller's thread takes the first)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    count = max(1, min(cores, _MAX_THREADS, rows // _MIN_ROWS_PER_THREAD))
    bounds = [round(rows * i / count) for i in range(count + 1)]
    errors: list[BaseException] = []

    def band(r0: int, r1: int) -> None:
        try:
            run(r0, r1)
        except BaseException as exc:  # re-raised on the caller's thread
            errors.append(exc)

    threads = [
        threading.Thread(target=band, args=(bounds[i], bounds[i + 1]), name="slab-rows")
        for i in range(1, count)
    ]
    for t in threads:
        t.start()
    band(bounds[0], bounds[1])
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
