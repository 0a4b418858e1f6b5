"""Thick slabs that line up with the voxel grid, combined in numpy (no vtkImageReslice).

A slab lines up with the grid when its normal runs along one volume axis and its image axes
along the other two (the axial, coronal and sagittal slabs of an axial stack). It is then the
max / min / mean over the voxel planes whose centres lie within it of the thin reformats of those
planes; and the thin reformat of a voxel plane is a bilinear interpolation within that plane,
separable along the two image axes. :meth:`GridSlab.combine` computes exactly that:

* when every output pixel falls on a voxel centre (the axial slab of an axial stack), a plain
  reduction of the voxels, no arithmetic on them;
* otherwise (coronal / sagittal rows resampled along the slice axis, pixels smaller or larger than
  the voxels) each plane is interpolated linearly along the image axes whose outputs fall between
  voxel centres, on a float32 copy of the slab's voxels taken a band of rows at a time (every
  plane; the band small enough to stay in cache), then reduced over the planes. A mean slab is
  reduced first and interpolated once (the mean of interpolations is the interpolation of the
  mean).

Cost, 20 mm MIP of a 512x512x400 CT (0.7 mm pixels, 1 mm slices), one core: coronal 8-15 ms
alone, 15-27 ms between other work (benchmarks/mpr.py); sagittal 14-21 ms alone, 29-45 ms
between other work (its voxels are short runs far apart in memory). ``vtkImageReslice`` took
13-30 ms for either, on two cores (25-40 ms of CPU): this path saves CPU more than time.

Caveat: numpy gives the GIL up in every large operation and must get it back. While another
thread runs Python without pause (measured with a busy loop beside it) each of the ~250 large
calls can wait a switch interval (5 ms): the coronal slab took 0.5-1.4 s instead of 20 ms,
where vtkImageReslice (one call) took 40-48 ms (``benchmarks/mpr.py --gil``). The MPR window therefore drafts these slabs with
vtkImageReslice while the crosshair moves (its painting thread is busy then) and uses this path
for the full-quality frames once it rests.

What counts as inside the volume is what ``vtkImageReslice`` (linear interpolation, its default
half-voxel border) does: along each axis of ``n`` voxels, indices from -0.5 to ``n - 0.5``
inclusive are inside and read the nearest edge voxel beyond the end voxels; outputs outside are
NaN. The result therefore equals the thin reformats of the planes, made by vtkImageReslice,
combined (up to float rounding and VTK's 1/65536 quantisation of its interpolation weights).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import DTypeLike

#: About the most float32 working memory at once (bytes): a band of rows of every plane, small
#: enough to stay in the processor's cache. Larger bands mean fewer numpy calls (fewer GIL
#: hand-backs, see the module notes) but were slower: in benchmarks/mpr.py, between other work,
#: 8 MB took 20-40 % longer than 4 MB; alone, 16 MB took 30 % longer.
BLOCK_BYTES = 4 * 1024 * 1024
_SNAP = 1e-6  # interpolation weights closer than this to 0 or 1 read one voxel
# rounding allowance at the half-voxel border: VTK places an output exactly there (its index
# computed in other steps) inside, and one 1e-7 voxel beyond outside
_EDGE = 1e-9


@dataclass(frozen=True)
class GridSlab:
    """A slab that lines up with the voxel grid (see ``Reslicer.grid_slab``).

    Numpy axes of ``VolumeImage.values`` (0 slice, 1 row, 2 col): the slab holds the voxel
    planes ``first..last`` along ``normal_axis``; output column ``c`` lies at index
    ``col0 + c * col_step`` along ``col_axis``, output row ``r`` at ``row0 + r * row_step`` along
    ``row_axis``.
    """

    normal_axis: int
    first: int
    last: int
    col_axis: int
    col0: float
    col_step: float
    row_axis: int
    row0: float
    row_step: float

    @property
    def count(self) -> int:
        """How many voxel planes the slab holds (0 when it lies beyond the volume)."""
        return max(0, self.last - self.first + 1)

    @property
    def exact(self) -> bool:
        """Whether every output pixel falls on a voxel centre (a plain reduction, no sampling)."""
        return _on_voxels(self.col0, self.col_step) and _on_voxels(self.row0, self.row_step)

    def combine(
        self,
        values: np.ndarray,
        mode: str,
        rows: int,
        cols: int,
        *,
        block_bytes: int = BLOCK_BYTES,
    ) -> np.ndarray:
        """The slab, reduced over its voxel planes: float32 ``(rows, cols)``, NaN outside.

        Parameters
        ----------
        values : numpy.ndarray
            The volume's voxels, ``(slices, rows, cols)``.
        mode : str
            ``'mip'``, ``'minip'`` or ``'mean'``.
        rows, cols : int
            The output size.
        block_bytes : int
            About the most float32 working memory (voxel copies, interpolated planes) at once,
            interpolated slabs only: the rows are taken in bands that fit (at least two rows).

        Returns
        -------
        numpy.ndarray
            The max / min / mean over the planes of their bilinear thin reformats (exactly the
            voxels when every pixel falls on a voxel centre).
        """
        if mode not in ("mip", "minip", "mean"):
            raise ValueError(f"slab mode must be mip, minip or mean, got {mode!r}")
        out = np.full((rows, cols), np.nan, np.float32)
        if self.count == 0:
            return out  # the slab lies beyond the volume
        shape = values.shape
        if self.exact:
            return self._combine_on_voxels(values, mode, out)
        rp = _axis_plan(self.row0, self.row_step, rows, shape[self.row_axis])
        cp = _axis_plan(self.col0, self.col_step, cols, shape[self.col_axis])
        if rp is None or cp is None:
            return out
        region = out[rp.out, cp.out]
        # float32 values held per input row: the band's voxels, for a MIP / MinIP also the
        # columns interpolated (two picks and the result), the steps between rows and the sums
        width = cp.hi - cp.lo + 1
        if mode != "mean":
            width += (3 * cp.i0.size if cp.frac is not None else 0) + 2 * cp.i0.size
        band = max(2, int(block_bytes) // (4 * self.count * width))
        if mode == "mean":
            total = np.empty((rp.hi - rp.lo + 1, cp.hi - cp.lo + 1), np.float32)
            spare = _Spare()
            for k0 in range(0, total.shape[0], band):
                k1 = min(k0 + band, total.shape[0])
                vox = self._band(values, rp.lo + k0, rp.lo + k1, cp, spare)
                vox.sum(axis=1, out=total[k0:k1])
            total /= np.float32(self.count)
            region[...] = _lerp2d(total, rp, cp)
        else:
            self._reduce_lerped(values, rp, cp, mode, region, band)
        return out

    def _combine_on_voxels(self, values: np.ndarray, mode: str, out: np.ndarray) -> np.ndarray:
        rows, cols = out.shape
        shape = values.shape
        r_out, r_in = _axis_samples(self.row0, self.row_step, rows, shape[self.row_axis])
        c_out, c_in = _axis_samples(self.col0, self.col_step, cols, shape[self.col_axis])
        if r_out is None or c_out is None:
            return out
        take: list = [slice(None)] * 3
        take[self.normal_axis] = slice(self.first, self.last + 1)
        take[self.row_axis] = r_in
        take[self.col_axis] = c_in
        block = values[tuple(take)]
        if mode == "mean":
            flat = block.mean(axis=self.normal_axis, dtype=np.float32)
        else:
            flat = (np.max if mode == "mip" else np.min)(block, axis=self.normal_axis)
        target = out[r_out, c_out]
        target[...] = flat.T if self.row_axis > self.col_axis else flat
        return out

    def _band(
        self, values: np.ndarray, k0: int, k1: int, cp: _AxisPlan, spare: _Spare | None = None
    ) -> np.ndarray:
        """float32 copy of the slab's voxels at rows ``k0 <= k < k1`` along the row axis, over
        the columns the outputs read, in the order (row, plane, column), C-contiguous (in
        ``spare``'s memory when given)."""
        spare = spare or _Spare()
        take: list = [slice(None)] * 3
        take[self.normal_axis] = slice(self.first, self.last + 1)
        take[self.row_axis] = slice(k0, k1)
        take[self.col_axis] = slice(cp.lo, cp.hi + 1)
        sub = values[tuple(take)]
        order = (self.row_axis, self.normal_axis, self.col_axis)
        view = sub.transpose(order)
        if view.strides[2] != view.itemsize and sub.strides[2] == sub.itemsize:
            # the planes run along the memory's last axis (a sagittal slab of an axial stack):
            # short runs far apart. Gather each run as one opaque item, then turn it in cache
            runs = sub.view(np.dtype((np.void, sub.itemsize * sub.shape[2])))
            packed = spare.get("runs", runs.shape, runs.dtype)
            np.copyto(packed, runs)
            sub = packed.view(sub.dtype)
            view = spare.get("turned", view.shape, sub.dtype)
            np.copyto(view, sub.transpose(order))
        block = spare.get("band", view.shape)
        np.copyto(block, view, casting="unsafe")
        return block

    def _reduce_lerped(
        self,
        values: np.ndarray,
        rp: _AxisPlan,
        cp: _AxisPlan,
        mode: str,
        region: np.ndarray,
        band: int,
    ) -> None:
        """Max / min over the planes of their bilinear reformats, into ``region``.

        The output rows go in bands that read about ``band`` input rows (so that the work stays
        in cache): the band's voxels are copied, interpolated along the columns, then along the
        rows from the band and its steps between neighbouring rows, many output rows per numpy
        call: the rows that are the first to read their input row take views (their input rows
        are consecutive), the others gather theirs.
        """
        reduce = np.max if mode == "mip" else np.min
        n_rows = rp.i0.size
        per_band = max(1, int((band - 2) / max(abs(self.row_step), 1e-3)))
        frac = rp.frac if rp.frac is not None else np.zeros(n_rows, np.float32)
        spare = _Spare()
        for s in range(0, n_rows, per_band):
            e = min(s + per_band, n_rows)
            ks = rp.i0[s:e]
            k0 = int(min(ks[0], ks[-1]))
            k1 = int(max(ks[0], ks[-1])) + (2 if rp.frac is not None else 1)
            k1 = min(k1, rp.hi - rp.lo + 1)
            vox = _resample(self._band(values, rp.lo + k0, rp.lo + k1, cp, spare), cp, 2)
            if rp.frac is None:  # rows on voxel centres: reduce, then pick the rows
                region[s:e] = _pick(reduce(vox, axis=1), ks - k0, 0)
                continue
            steps = spare.get("steps", vox.shape)  # the last row 0: outputs there read one row
            np.subtract(vox[1:], vox[:-1], out=steps[:-1])
            steps[-1] = 0.0
            ks = ks - k0
            first = np.ones(ks.size, bool)
            first[1:] = ks[1:] != ks[:-1]
            for rows in (np.flatnonzero(first), np.flatnonzero(~first)):
                if rows.size == 0:
                    continue
                at = ks[rows]
                shape = (rows.size, *vox.shape[1:])
                lerp = spare.get("lerp", shape)
                np.multiply(
                    _pick(steps, at, 0, spare.get("picked", shape)),
                    frac[s + rows][:, None, None],
                    out=lerp,
                )
                np.add(lerp, _pick(vox, at, 0, spare.get("picked", shape)), out=lerp)
                flat = spare.get("flat", (rows.size, vox.shape[2]))
                reduce(lerp, axis=1, out=flat)
                region[s + rows] = flat


class _Spare:
    """Working arrays reused from band to band (no fresh memory, no page faults, per band)."""

    def __init__(self) -> None:
        self._memory: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: DTypeLike = np.float32) -> np.ndarray:
        """An uninitialised C-contiguous array ``name`` of ``shape`` and ``dtype``."""
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape)) * dtype.itemsize
        memory = self._memory.get(name)
        if memory is None or memory.size < nbytes:
            memory = self._memory[name] = np.empty(max(nbytes, 1), np.uint8)
        return memory[:nbytes].view(dtype).reshape(shape)


@dataclass(frozen=True)
class _AxisPlan:
    """How the outputs along one image axis read their voxels.

    ``out``: the outputs inside the volume. ``lo..hi``: the voxels they read. ``i0`` / ``i1``
    (relative to ``lo``): each output's lower and upper neighbours, ``frac`` (float32) the weight
    of ``i1``; ``frac`` is None when every output falls on a voxel centre (``i1 == i0``).
    ``span``: the outputs read ``lo..hi`` one to one, in order (no gather needed).
    """

    out: slice
    lo: int
    hi: int
    i0: np.ndarray
    i1: np.ndarray
    frac: np.ndarray | None
    span: bool


def _axis_plan(start: float, step: float, n_out: int, n_in: int) -> _AxisPlan | None:
    """Linear interpolation of outputs ``i < n_out`` at index ``start + i * step`` along an axis
    of ``n_in`` voxels, with vtkImageReslice's border: indices in [-0.5, n_in - 0.5] are inside,
    clamped to the end voxels. None when no output is inside."""
    x = start + np.arange(n_out, dtype=np.float64) * step
    inside = np.flatnonzero((x >= -0.5 - _EDGE) & (x <= n_in - 0.5 + _EDGE))
    if inside.size == 0:
        return None
    a, b = int(inside[0]), int(inside[-1])  # monotonic: the inside is one run
    x = x[a : b + 1]
    base = np.floor(x)
    frac = x - base
    up = frac > 1.0 - _SNAP
    base[up] += 1.0
    frac[up] = 0.0
    frac[frac < _SNAP] = 0.0
    i0 = np.clip(base, 0, n_in - 1).astype(np.intp)
    i1 = np.clip(base + 1.0, 0, n_in - 1).astype(np.intp)
    frac[i1 == i0] = 0.0  # beyond the end voxels: the edge voxel
    interp = bool((frac > 0.0).any())
    if not interp:
        i1 = i0
    lo = int(min(i0.min(), i1.min()))
    hi = int(max(i0.max(), i1.max()))
    i0, i1 = i0 - lo, i1 - lo
    span = not interp and i0.size == hi - lo + 1 and bool((np.diff(i0) == 1).all())
    return _AxisPlan(
        out=slice(a, b + 1),
        lo=lo,
        hi=hi,
        i0=i0,
        i1=i1,
        frac=frac.astype(np.float32) if interp else None,
        span=span,
    )


def _lerp2d(img: np.ndarray, rp: _AxisPlan, cp: _AxisPlan) -> np.ndarray:
    """Bilinear resampling of a 2D ``(row voxels, col voxels)`` image onto the outputs."""
    return _resample(_resample(img, rp, 0), cp, 1)


def _resample(arr: np.ndarray, plan: _AxisPlan, axis: int) -> np.ndarray:
    """``arr`` linearly interpolated along ``axis`` at the outputs of ``plan`` (a view when
    they read the voxels one to one)."""
    if plan.span:
        return arr
    lo = _pick(arr, plan.i0, axis)
    if plan.frac is None:
        return lo
    out = np.subtract(_pick(arr, plan.i1, axis), lo)
    shape = [1] * arr.ndim
    shape[axis] = -1
    out *= plan.frac.reshape(shape)
    out += lo
    return out


def _pick(
    arr: np.ndarray, index: np.ndarray, axis: int, out: np.ndarray | None = None
) -> np.ndarray:
    """``arr`` at ``index`` along ``axis``: a strided view when the indices are evenly spaced,
    else a copy (into ``out`` when given)."""
    if index.size > 1:
        step = int(index[1] - index[0])
        if step != 0 and np.array_equal(np.diff(index), np.full(index.size - 1, step)):
            stop = int(index[-1]) + (1 if step > 0 else -1)
            at = [slice(None)] * arr.ndim
            at[axis] = slice(int(index[0]), stop if stop >= 0 else None, step)
            return arr[tuple(at)]
    return np.take(arr, index, axis=axis, out=out)


def _on_voxels(start: float, step: float) -> bool:
    """Whether indices ``start + i * step`` are whole voxel indices one apart."""
    return abs(abs(step) - 1.0) < 1e-6 and abs(start - round(start)) < 1e-4


def _axis_samples(start: float, step: float, n_out: int, n_in: int):
    """Where outputs ``i < n_out`` at whole indices ``start + i * step`` (step +-1) read an axis
    of ``n_in`` voxels: ``(output slice, input slice)`` over the outputs within the volume, or
    ``(None, None)`` when none is."""
    s, d = round(start), round(step)
    lo = max(0, -s) if d > 0 else max(0, s - (n_in - 1))
    hi = min(n_out - 1, n_in - 1 - s) if d > 0 else min(n_out - 1, s)
    if hi < lo:
        return None, None
    a, b = s + lo * d, s + hi * d
    src = slice(a, b + 1) if d > 0 else slice(a, b - 1 if b > 0 else None, -1)
    return slice(lo, hi + 1), src
