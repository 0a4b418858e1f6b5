"""The compiled part of :mod:`workstation.render.slab_kernel` (numba; imported on first use).

Voxel indices along the slab's main axis ``a`` and the two others ``u`` and ``v``; ``flat`` is
the volume's voxels in memory order, ``strides`` the element step along each axis.
"""

from __future__ import annotations

import math

import numba
import numpy as np

# no 'nnan' / 'ninf': NaN and inf keep their meaning
_OPTS = {
    "nogil": True,
    "cache": True,
    "boundscheck": False,
    "fastmath": {"contract", "arcp", "reassoc", "nsz", "afn"},
}


@numba.njit(inline="always", **_OPTS)
def bilinear(flat, o, su, sv, fu, fv):
    a = np.float32(flat[o])
    b = np.float32(flat[o + su])
    c = np.float32(flat[o + sv])
    d = np.float32(flat[o + su + sv])
    e = a + fu * (b - a)
    f = c + fu * (d - c)
    return e + fv * (f - e)


@numba.njit(inline="always", **_OPTS)
def span(p, d, top, first, last):
    """The m in [first, last] with p + m d within half a voxel of [0, top] (empty: last <
    first)."""
    if abs(d) < 1e-12:
        if p < -0.5 or p > top + 0.5:
            return first, first - 1
        return first, last
    lo_m = (-0.5 - p) / d
    hi_m = (top + 0.5 - p) / d
    if d < 0.0:
        lo_m, hi_m = hi_m, lo_m
    return max(first, int(math.ceil(lo_m))), min(last, int(math.floor(hi_m)))


@numba.njit(inline="always", **_OPTS)
def sample(flat, sa, su, sv, na, nu, nv, a, u, v):
    """Trilinear at (a, u, v), each within [0, n - 1] (bilinear where a is a plane)."""
    ia = min(int(a), na - 2)
    iu = min(int(u), nu - 2)
    iv = min(int(v), nv - 2)
    fu = np.float32(u - iu)
    fv = np.float32(v - iv)
    o = ia * sa + iu * su + iv * sv
    val = bilinear(flat, o, su, sv, fu, fv)
    fa = np.float32(a - ia)
    if fa != 0.0:
        val = val + fa * (bilinear(flat, o + sa, su, sv, fu, fv) - val)
    return val


@numba.njit(inline="always", **_OPTS)
def face(flat, sa, su, sv, na, nu, nv, at, u0, v0, ru, rv):
    """(inside, value) of the slab face sample at ``at`` along the main axis."""
    am, um, vm = na - 1.0, nu - 1.0, nv - 1.0
    u = u0 + at * ru
    v = v0 + at * rv
    if at < -0.5 or at > am + 0.5 or u < -0.5 or u > um + 0.5 or v < -0.5 or v > vm + 0.5:
        return False, np.float32(0.0)
    a = min(max(at, 0.0), am)
    u = min(max(u, 0.0), um)
    v = min(max(v, 0.0), vm)
    return True, sample(flat, sa, su, sv, na, nu, nv, a, u, v)


@numba.njit(inline="always", **_OPTS)
def mean_with_faces(flat, sa, su, sv, na, nu, nv, lo, hi, u0, v0, ru, rv, m0, m1, total,
                    first, last):  # fmt: skip
    """The slab's mean by the trapezoid rule: the planes m0..m1 (``total`` their sum,
    ``first`` and ``last`` their end values) joined to the face samples inside."""
    have = m1 >= m0
    length = 0.0
    start, end = float(m0), float(m1)
    if have:
        total = total - np.float32(0.5) * (first + last)
        length = end - start
    for side in range(2):
        at = lo if side == 0 else hi
        if at == math.floor(at) and m0 <= at <= m1:
            continue
        inside, fval = face(flat, sa, su, sv, na, nu, nv, at, u0, v0, ru, rv)
        if not inside:
            continue
        if not have:
            have, total, start, end, first, last = True, np.float32(0.0), at, at, fval, fval
        elif side == 0:
            total += np.float32(0.5 * (start - at)) * (fval + first)
            length += start - at
            start, first = at, fval
        else:
            total += np.float32(0.5 * (at - end)) * (fval + last)
            length += at - end
            end, last = at, fval
    if not have:
        return np.float32(np.nan)
    if length <= 0.0:
        return last  # one sample
    return np.float32(total / length)


@numba.njit(**_OPTS)
def slab_rows(flat, dims, strides, out, r0, r1, p0, pc, pr, ru, rv, half, mode):
    """Rows ``r0`` to ``r1`` of ``out``: pixel ``(c, r)``'s centre lies at ``p0 + c pc + r pr``
    (indices a, u, v); its ray runs ``half`` main-axis steps each way, ``ru`` and ``rv`` steps
    along u and v per main-axis step. ``mode``: 0 MIP, 1 MinIP, 2 mean."""
    na, nu, nv = dims[0], dims[1], dims[2]
    sa, su, sv = strides[0], strides[1], strides[2]
    cols = out.shape[1]
    um, vm = nu - 1.0, nv - 1.0
    for r in range(r0, r1):
        for c in range(cols):
            pa = p0[0] + r * pr[0] + c * pc[0]
            u0 = p0[1] + r * pr[1] + c * pc[1] - pa * ru
            v0 = p0[2] + r * pr[2] + c * pc[2] - pa * rv
            lo = pa - half
            hi = pa + half
            m0 = max(0, int(math.ceil(lo)))
            m1 = min(na - 1, int(math.floor(hi)))
            # the planes whose crossing lies inside (one run: the volume is convex)
            m0, m1 = span(u0, ru, um, m0, m1)
            m0, m1 = span(v0, rv, vm, m0, m1)
            acc = np.float32(0.0)
            first = np.float32(0.0)
            val = np.float32(0.0)
            for m in range(m0, m1 + 1):
                u = min(max(u0 + m * ru, 0.0), um)
                v = min(max(v0 + m * rv, 0.0), vm)
                iu = min(int(u), nu - 2)
                iv = min(int(v), nv - 2)
                val = bilinear(flat, m * sa + iu * su + iv * sv, su, sv,
                               np.float32(u - iu), np.float32(v - iv))  # fmt: skip
                if m == m0:
                    acc = val
                    first = val
                elif mode == 0:
                    acc = max(acc, val)
                elif mode == 1:
                    acc = min(acc, val)
                else:
                    acc += val
            count = m1 - m0 + 1 if m1 >= m0 else 0
            if mode == 2:
                out[r, c] = mean_with_faces(
                    flat, sa, su, sv, na, nu, nv, lo, hi, u0, v0, ru, rv,
                    m0, m1, acc, first, val,
                )  # fmt: skip
                continue
            for at in (lo, hi):  # the faces, unless they fall on a plane counted above
                if at == math.floor(at) and m0 <= at <= m1:
                    continue
                inside, fval = face(flat, sa, su, sv, na, nu, nv, at, u0, v0, ru, rv)
                if not inside:
                    continue
                if count == 0:
                    acc = fval
                elif mode == 0:
                    acc = max(acc, fval)
                else:
                    acc = min(acc, fval)
                count += 1
            out[r, c] = acc if count > 0 else np.nan
