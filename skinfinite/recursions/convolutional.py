"""The per-pair-of-positions recursion of convolutional NNGP/NTK kernels.

Inputs are grids of positions: a 1-D sequence of length T is a grid of shape
(1, T), an image a grid (H, W); every input carries ``C`` channels.  For one
dilation ``d``, strides ``(sh, sw)`` and filter taps ``(ka, kb)``, output
position ``(a, b)`` reads input position ``(a sh + ka d - pa, b sw + kb d -
pb)``: ``pa = pb = 0`` under "valid" padding, the low half of XLA's "SAME"
padding under "same" and "circular" (which wraps positions around the
grid, as neural-tangents' ``CIRCULAR`` does; the pads, and so these
positions, are each input's own).  Writing ``x_{p, k}`` for the position
tap ``k`` of output ``p`` reads, the network's pre-activation covariances
obey

* ``S1[p, p'] = sw2 / (C q) * sum_k <x_{p, k}, y_{p', k}> + sb2``;
* ``S{l+1}[p, p'] = sw2 / q * sum_k V_l[x_{p, k}, y_{p', k}] + sb2``, with
  ``V_l = E[phi(u) phi(v)]`` under the covariance
  ``[[Sxx_l[p], S_l[p, p']], [., Syy_l[p']]]`` (positions outside the
  input contribute zero: zero padding);
* ``Th{l+1} = S{l+1} + sw2 / q * sum_k (Th_l Vd_l)[x_{p, k}, y_{p', k}]``,
  ``Th1 = S1``, ``Vd_l = E[phi'(u) phi'(v)]``;

and the readout is a dense layer (weight variance sw2, bias variance sb2)
on the pooled last-layer activations: global average pooling averages over
all pairs of positions, flattening over equal positions, and "ppv" pools
the step function (the proportion of positive values), whose dual is the
order-0 arc-cosine kernel.  Several dilations are several networks whose
features are concatenated: their pooled kernels are averaged.

The compiled functions below run the whole recursion for one pair of
inputs in position-pair buffers the caller owns; the tile kernels of
:mod:`skinfinite.engine.cpu.convolutional` run them for a set of pairs (never
more than a tile of pairs is materialised).  The per-position variances of
each input against itself (``Sxx_l[p]``) are computed once per input.  The
duals are the activation's family (:mod:`skinfinite.activations.families`),
resolved when the kernels are compiled.

Hyperparameter tangents are carried with respect to ``log(weight_variance)``
(index 0) and ``log(bias_variance)`` (index 1).
"""
import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from .._core.fastmath import FASTMATH, atan2_nonneg
from ..activations.duals import _SNAP, piecewise_linear_partials
from ..activations.families import (family_dual, family_partials,
                                    family_select)

AVERAGE, FLATTEN, PPV = 0, 1, 2
READOUTS = {"average": AVERAGE, "flatten": FLATTEN, "ppv": PPV}


VALID, SAME, CIRCULAR = 0, 1, 2
PADDINGS = {"valid": VALID, "same": SAME, "circular": CIRCULAR}


@dataclass(frozen=True)
class ConvSpec:
    """A validated convolutional network, dilations resolved.

    ``fh`` and ``fw`` are the filter's height and width, ``same`` selects a
    padded output grid ("same" or "circular") over "valid", ``readout`` is
    one of :data:`READOUTS`' codes, ``strides`` the steps of the filter
    along rows and columns and ``circular`` wraps positions around the grid.
    """

    depth: int
    activation: object
    weight_variance: float
    bias_variance: float
    fh: int
    fw: int
    same: bool
    readout: int
    dilations: tuple
    strides: tuple = (1, 1)
    circular: bool = False

    @property
    def padding(self):
        """The padding's code in :data:`PADDINGS`."""
        return CIRCULAR if self.circular else int(self.same)


# ------------------------------------------------------------- grid geometry
def axis_geometry(n, f, d, s, padding):
    """Output size and low pad of one axis of ``n`` positions.

    "valid": the filter's span ``d (f - 1) + 1`` fits inside; "same" and
    "circular": ``ceil(n / s)`` outputs and XLA's "SAME" pads, the low one
    ``floor(total / 2)`` (neural-tangents' conventions).
    """
    span = d * (f - 1) + 1
    if padding == VALID:
        return (n - span) // s + 1, 0
    out = (n + s - 1) // s
    return out, max((out - 1) * s + span - n, 0) // 2


axis_geometry_nb = njit(inline="always")(axis_geometry)


def tap_positions(n, f, d, s, padding):
    """Input position of every (output, tap) of one axis: an (out, f) array,
    -1 where the tap falls outside the grid (zero padding)."""
    out, lo = axis_geometry(n, f, d, s, padding)
    u = (np.arange(max(out, 0))[:, None] * s + np.arange(f)[None, :] * d
         - lo)
    if padding == CIRCULAR:
        return u % n
    return np.where((u >= 0) & (u < n), u, -1)


# Rows of 1-D "valid" lag sums restart from a direct sum this often: the
# running update adds one rounding error per step, and restarts bound it.
_RESTART = 8


def _make_lagsum_chain(padded):
    """:func:`_lagsum` on 1-D grids at stride 1, in O(1) per entry:
    ``S[p, q] = S[p - d, q - d] - src[p - d, q - d] + src[p + span, q +
    span]`` along each diagonal, with a direct sum every ``_RESTART`` steps
    and in the first ``d`` columns.

    ``padded`` (a constant of the compiled function, so that each padding
    compiles to its own loop without the other's tests) selects grids padded
    by ``b`` zeros on the left ("same" padding) over "valid" padding.  Padded,
    a tap adds only where its position falls inside the grids, the running
    update drops the old tap and adds the new one only there (so every entry
    takes the additions of the direct sum's taps in a running form), and the
    entry of equal positions is summed directly.  Valid, every tap falls
    inside and the update is one pass.
    """

    @njit(fastmath=FASTMATH)
    def chain(src, swx, swy, dst, dwx, dwy, d, fw, b, scale, add):
        if not padded:
            b = 0
        span = d * (fw - 1)
        for p in range(dwx):
            drow = dst[p]
            if p < d or (p // d) % _RESTART == 0:
                for q in range(dwy):
                    drow[q] = 0.0
                for k in range(fw):
                    u = p + d * k - b
                    off = d * k - b
                    lo = 0
                    hi = dwy
                    if padded:
                        if u < 0 or u >= swx:
                            continue
                        lo = max(0, -off)
                        hi = min(dwy, swy - off)
                        if hi <= lo:
                            continue
                    sv = src[u][lo + off:hi + off]
                    dv = drow[lo:hi]
                    for q in range(hi - lo):
                        dv[q] += sv[q]
                continue
            for q in range(min(d, dwy)):
                acc = 0.0
                for k in range(fw):
                    u = p + d * k - b
                    v = q + d * k - b
                    if not padded or (u >= 0 and u < swx and v >= 0
                                      and v < swy):
                        acc += src[u, v]
                drow[q] = acc
            n = dwy - d
            if n <= 0:
                continue
            prev = dst[p - d][:n]
            out = drow[d:d + n]
            if not padded:
                new = src[p + span][d + span:d + span + n]
                old = src[p - d][:n]
                for q in range(n):
                    out[q] = prev[q] + new[q] - old[q]
                continue
            for q in range(n):
                out[q] = prev[q]
            # the new tap, at row p + span - b and column q + span - b
            u = p + span - b
            if u >= 0 and u < swx:
                lo = max(d, b - span)
                hi = min(dwy, swy + b - span)
                if hi > lo:
                    sv = src[u][lo + span - b:hi + span - b]
                    dv = drow[lo:hi]
                    for q in range(hi - lo):
                        dv[q] += sv[q]
            # the dropped tap, at row p - d - b and column q - d - b
            u = p - d - b
            if u >= 0 and u < swx:
                lo = max(d, d + b)
                hi = min(dwy, swy + d + b)
                if hi > lo:
                    sv = src[u][lo - d - b:hi - d - b]
                    dv = drow[lo:hi]
                    for q in range(hi - lo):
                        dv[q] -= sv[q]
            # The entry of equal positions is summed directly: on the Gram of
            # an input with itself its correlation is 1, where the step
            # function's dual has an infinite slope and a running sum's last
            # bits would show; the direct sum is the per-position variance's
            # own.
            if p < dwy:
                acc = 0.0
                for k in range(fw):
                    u = p + d * k - b
                    if u >= 0 and u < swx and u < swy:
                        acc += src[u, u]
                drow[p] = acc
        for p in range(dwx):
            drow = dst[p]
            for q in range(dwy):
                drow[q] = scale * drow[q] + add

    return chain


_lagsum_chain = _make_lagsum_chain(False)
_lagsum_chain_padded = _make_lagsum_chain(True)


@njit(fastmath=FASTMATH)
def _lagsum(src, shx, swx, shy, swy, dst, dhx, dwx, dhy, dwy, d, fh, fw,
            sa, sb, scale, add):
    """dst[p, p'] = scale * sum_k src[p + o_k, p' + o_k] + add.

    Positions are flattened row-major on each input's own grid; taps whose
    position falls outside a grid add nothing (zero padding).
    """
    if shx == 1 and shy == 1 and fh == 1 and sa == 0 and fw > 3:
        if sb == 0:
            _lagsum_chain(src, swx, swy, dst, dwx, dwy, d, fw, 0, scale, add)
        else:
            _lagsum_chain_padded(src, swx, swy, dst, dwx, dwy, d, fw, sb,
                                 scale, add)
        return
    npy = dhy * dwy
    for ia in range(dhx):
        for ja in range(dwx):
            p = ia * dwx + ja
            # views indexed from 0 let LLVM drop negative-index checks and
            # vectorise the inner loops
            drow = dst[p]
            for jj in range(npy):
                drow[jj] = 0.0
            for ka in range(fh):
                oa = ka * d - sa
                u = ia + oa
                if u < 0 or u >= shx:
                    continue
                i2lo = max(0, -oa)
                i2hi = min(dhy, shy - oa)
                for kb in range(fw):
                    ob = kb * d - sb
                    v = ja + ob
                    if v < 0 or v >= swx:
                        continue
                    srow = src[u * swx + v]
                    j2lo = max(0, -ob)
                    j2hi = min(dwy, swy - ob)
                    width = j2hi - j2lo
                    for i2 in range(i2lo, i2hi):
                        bd = i2 * dwy + j2lo
                        bs = (i2 + oa) * swy + ob + j2lo
                        dv = drow[bd:bd + width]
                        sv = srow[bs:bs + width]
                        for jj in range(width):
                            dv[jj] += sv[jj]
            for jj in range(npy):
                drow[jj] = scale * drow[jj] + add


@njit(inline="always", fastmath=FASTMATH)
def lagsum_row(src, shx, swx, shy, swy, drow, ia, ja, dhy, dwy, d, fh, fw,
               sh, sw, pax, pbx, pay, pby, circular, scale, add):
    """Row ``(ia, ja)`` of :func:`_lagsum_general` into ``drow``: strides,
    each input's own pads, and positions that wrap around the grid under
    circular padding.  The GPU kernels run it, one row per thread."""
    npy = dhy * dwy
    for jj in range(npy):
        drow[jj] = 0.0
    for ka in range(fh):
        u = ia * sh + ka * d - pax
        if circular:
            u = u % shx
        elif u < 0 or u >= shx:
            continue
        for kb in range(fw):
            v = ja * sw + kb * d - pbx
            if circular:
                v = v % swx
            elif v < 0 or v >= swx:
                continue
            srow = src[u * swx + v]
            for i2 in range(dhy):
                u2 = i2 * sh + ka * d - pay
                if circular:
                    u2 = u2 % shy
                elif u2 < 0 or u2 >= shy:
                    continue
                base = u2 * swy
                for j2 in range(dwy):
                    v2 = j2 * sw + kb * d - pby
                    if circular:
                        v2 = v2 % swy
                    elif v2 < 0 or v2 >= swy:
                        continue
                    drow[i2 * dwy + j2] += srow[base + v2]
    for jj in range(npy):
        drow[jj] = scale * drow[jj] + add


@njit(fastmath=FASTMATH)
def _lagsum_general(src, shx, swx, shy, swy, dst, dhx, dwx, dhy, dwy, d, fh,
                    fw, sh, sw, pax, pbx, pay, pby, circular, scale, add):
    """:func:`_lagsum` with strides, each input's own pads, and positions
    that wrap around the grid under circular padding."""
    for ia in range(dhx):
        for ja in range(dwx):
            lagsum_row(src, shx, swx, shy, swy, dst[ia * dwx + ja], ia, ja,
                       dhy, dwy, d, fh, fw, sh, sw, pax, pbx, pay, pby,
                       circular, scale, add)


@njit(fastmath=FASTMATH)
def _layer(src, shx, swx, shy, swy, dst, d, fh, fw, sh, sw, padding, scale,
           add):
    """One convolution of position-pair covariances ``src`` (grids
    ``shx x swx`` and ``shy x swy``) into ``dst``; returns the output grids.

    Stride 1 without wrapping has the same pads for both inputs, and the
    faster sums of :func:`_lagsum`.
    """
    dhx, pax = axis_geometry_nb(shx, fh, d, sh, padding)
    dwx, pbx = axis_geometry_nb(swx, fw, d, sw, padding)
    dhy, pay = axis_geometry_nb(shy, fh, d, sh, padding)
    dwy, pby = axis_geometry_nb(swy, fw, d, sw, padding)
    if sh == 1 and sw == 1 and padding != CIRCULAR:
        _lagsum(src, shx, swx, shy, swy, dst, dhx, dwx, dhy, dwy, d, fh, fw,
                pax, pbx, scale, add)
    else:
        _lagsum_general(src, shx, swx, shy, swy, dst, dhx, dwx, dhy, dwy, d,
                        fh, fw, sh, sw, pax, pbx, pay, pby,
                        padding == CIRCULAR, scale, add)
    return dhx, dwx, dhy, dwy


@njit(fastmath=FASTMATH)
def _channel_gram(xv, i, wx, yv, j, wy, h, g):
    """g[p, p'] = <x_p, y_p'> over channels, for all pairs of positions."""
    npx = h * wx
    for p in range(npx):
        grow = g[p]
        for q in range(h * wy):
            grow[q] = 0.0
    for ch in range(xv.shape[1]):
        for p in range(npx):
            ia = p // wx
            a = xv[i, ch, ia, p - ia * wx]
            grow = g[p]
            for i2 in range(h):
                gv = grow[i2 * wy:(i2 + 1) * wy]
                yrow = yv[j, ch, i2]
                for j2 in range(wy):
                    gv[j2] += a * yrow[j2]


# ------------------------------------------------------------- pair kernels
@njit(inline="always", fastmath=FASTMATH)
def _row_duals(family, kxx, sqx, srow, dgy, sgy, ax, cy, vrow, vdrow, n):
    # Closed forms ignore their coefficient rows: family_select gives them
    # ``ax`` when the kernel is compiled, so the loop holds no array views.
    for q in range(n):
        ay = family_select(family, cy, q, ax)
        v, vd = family_dual(kxx, srow[q], dgy[q], sqx * sgy[q], ax, ay,
                            family)
        vrow[q] = v
        vdrow[q] = vd


@njit(fastmath=FASTMATH)
def _hidden(s, vv, th, tv, nx, ny, dgx, sgx, dgy, sgy, cx, cy, family,
            want_t):
    # V (and Th * Vd) of one hidden layer from its covariances S; cx, cy
    # hold one coefficient row per position (series duals) or one row
    vdrow = np.empty(ny)
    for p in range(nx):
        ax = family_select(family, cx, p, cx[0])
        vrow = vv[p]
        _row_duals(family, dgx[p], sgx[p], s[p], dgy, sgy, ax, cy, vrow,
                   vdrow, ny)
        if want_t:
            trow = th[p]
            tvrow = tv[p]
            for q in range(ny):
                tvrow[q] = trow[q] * vdrow[q]


@njit(inline="always", fastmath=FASTMATH)
def _sum(a, n):
    """Sum of ``a[:n]`` in four interleaved partial sums: one running sum
    is a chain of dependent additions that the compiler may not reorder
    (no 'reassoc'), four keep the adder's pipeline busy."""
    s0 = s1 = s2 = s3 = 0.0
    m = n - n % 4
    for q in range(0, m, 4):
        s0 += a[q]
        s1 += a[q + 1]
        s2 += a[q + 2]
        s3 += a[q + 3]
    for q in range(m, n):
        s0 += a[q]
    return (s0 + s1) + (s2 + s3)


@njit(inline="always", fastmath=FASTMATH)
def _dot(a, b, n):
    """Inner product of ``a[:n]`` and ``b[:n]``, summed as :func:`_sum`."""
    s0 = s1 = s2 = s3 = 0.0
    m = n - n % 4
    for q in range(0, m, 4):
        s0 += a[q] * b[q]
        s1 += a[q + 1] * b[q + 1]
        s2 += a[q + 2] * b[q + 2]
        s3 += a[q + 3] * b[q + 3]
    for q in range(m, n):
        s0 += a[q] * b[q]
    return (s0 + s1) + (s2 + s3)


@njit(inline="always", fastmath=FASTMATH)
def _step_angle(kxy, r, inv_r):
    """The angle between two positions' features, as in ReLU's dual, from
    their covariance ``kxy``, ``r = sqrt(kxx kyy)`` and ``inv_r = 1 / r``
    (0 where r is): the step function's dual is ``1/2 - angle / (2 pi)``.
    The cosine and sine are taken relative to ``r``, so that no
    multiplication by r is undone by the arctangent's division."""
    c = min(max(kxy, -r), r)
    d = (r - c) * inv_r
    s2 = d * (2.0 - d)
    sn = math.sqrt(s2) if s2 > _SNAP else 0.0
    return atan2_nonneg(sn, 1.0 - d)


@njit(fastmath=FASTMATH)
def _pooled(s, th, nx, ny, dgx, sgx, dgy, sgy, cx, cy, family, readout,
            want_t):
    # Sums over all pairs of positions of the readout's duals.  Each row's
    # duals go to a buffer and are summed after: a running sum inside the
    # duals' loop would keep it from being vectorised.
    vrow = np.empty(ny)
    vdrow = np.empty(ny)
    if readout == PPV:
        # reciprocal standard deviations: a product in the loop in place of
        # a division
        for q in range(ny):
            vdrow[q] = 1.0 / sgy[q] if sgy[q] > 0.0 else 0.0
    kd = 0.0
    td = 0.0
    for p in range(nx):
        srow = s[p]
        kxx = dgx[p]
        sqx = sgx[p]
        if readout == PPV:
            ix = 1.0 / sqx if sqx > 0.0 else 0.0
            for q in range(ny):
                vrow[q] = _step_angle(srow[q], sqx * sgy[q], ix * vdrow[q])
            kd += 0.5 * ny - _sum(vrow, ny) * (0.5 / math.pi)
            continue
        ax = family_select(family, cx, p, cx[0])
        _row_duals(family, kxx, sqx, srow, dgy, sgy, ax, cy, vrow, vdrow, ny)
        kd += _sum(vrow, ny)
        if want_t:
            td += _dot(th[p], vdrow, ny)
    return kd, td


@njit(fastmath=FASTMATH)
def _flat(s, th, hx, ux, hy, uy, dgx, sgx, dgy, sgy, cx, cy, family, want_t):
    kd = 0.0
    td = 0.0
    for ia in range(min(hx, hy)):
        for ja in range(min(ux, uy)):
            p = ia * ux + ja
            q = ia * uy + ja
            ax = family_select(family, cx, p, cx[0])
            ay = family_select(family, cy, q, cy[0])
            v, vd = family_dual(dgx[p], s[p, q], dgy[q], sgx[p] * sgy[q],
                                ax, ay, family)
            kd += v
            if want_t:
                td += th[p, q] * vd
    return kd, td


@njit(fastmath=FASTMATH)
def one_pair(xv, wx, yv, wy, i, j, h, dils, vx, vy, fh, fw, sh, sw, padding,
             depth, dgx, sgx, dgy, sgy, cx, cy, family, sw2, sb2, readout,
             want_t, g, s, vv, th, tv):
    """Pooled sums of one pair of inputs over its dilations, in the
    caller's buffers ``g``, ``s``, ``vv``, ``th``, ``tv``."""
    a1 = sw2 / (xv.shape[1] * fh * fw)
    al = sw2 / (fh * fw)
    _channel_gram(xv, i, wx, yv, j, wy, h, g)
    kacc = 0.0
    tacc = 0.0
    for di in range(dils.shape[0]):
        if not (vx[i, di] and vy[j, di]):
            continue
        d = dils[di]
        hx, ux, hy, uy = _layer(g, h, wx, h, wy, s, d, fh, fw, sh, sw,
                                padding, a1, sb2)
        if want_t:
            for p in range(hx * ux):
                for q in range(hy * uy):
                    th[p, q] = s[p, q]
        for layer in range(depth + 1):
            cxl = family_select(family, cx, (i, di, layer), cx[0, 0, 0])
            cyl = family_select(family, cy, (j, di, layer), cy[0, 0, 0])
            if layer == depth - 1:
                break
            _hidden(s, vv, th, tv, hx * ux, hy * uy, dgx[i, di, layer],
                    sgx[i, di, layer], dgy[j, di, layer], sgy[j, di, layer],
                    cxl, cyl, family, want_t)
            px, pux, py, puy = hx, ux, hy, uy
            hx, ux, hy, uy = _layer(vv, px, pux, py, puy, s, d, fh, fw, sh,
                                    sw, padding, al, sb2)
            if want_t:
                _layer(tv, px, pux, py, puy, th, d, fh, fw, sh, sw, padding,
                       al, 0.0)
                for p in range(hx * ux):
                    for q in range(hy * uy):
                        th[p, q] += s[p, q]
        last = depth - 1
        if readout == FLATTEN:
            kd, td = _flat(s, th, hx, ux, hy, uy, dgx[i, di, last],
                           sgx[i, di, last], dgy[j, di, last],
                           sgy[j, di, last], cxl, cyl, family, want_t)
            norm = 1.0 / math.sqrt(float(hx * ux * hy * uy))
        else:
            kd, td = _pooled(s, th, hx * ux, hy * uy, dgx[i, di, last],
                             sgx[i, di, last], dgy[j, di, last],
                             sgy[j, di, last], cxl, cyl, family, readout,
                             want_t)
            norm = 1.0 / float(hx * ux * hy * uy)
        kacc += kd * norm
        tacc += td * norm
    return kacc, tacc


# ------------------------------------------------------ tangent recursion
@njit(inline="always", fastmath=FASTMATH)
def tangent_entry(pp, step, dkx_w, dkx_b, dky_w, dky_b, ds_w, ds_b, th,
                  dth_w, dth_b):
    """One pair of positions of :func:`_layer_tangents`: V, dV_w, dV_b,
    Th Vd, d(Th Vd)_w, d(Th Vd)_b from the duals' partials ``pp`` (see
    :mod:`skinfinite.activations.duals`), the tangents of both variances
    and of the covariance, and Th with its tangents.  ``step``: ``pp`` are
    the piecewise-linear partials of ReLU, whose Vd is the step function's
    dual (no NTK term).  The GPU kernels run it too."""
    if step:
        v, vxx, vxy, vyy = pp[1], pp[5], pp[6], pp[7]
        vd = 0.0
        vdxx = vdxy = vdyy = 0.0
    else:
        v, vxx, vxy, vyy = pp[0], pp[2], pp[3], pp[4]
        vd, vdxx, vdxy, vdyy = pp[1], pp[5], pp[6], pp[7]
    dv_w = vxx * dkx_w + vxy * ds_w + vyy * dky_w
    dv_b = vxx * dkx_b + vxy * ds_b + vyy * dky_b
    dtv_w = dth_w * vd + th * (vdxx * dkx_w + vdxy * ds_w + vdyy * dky_w)
    dtv_b = dth_b * vd + th * (vdxx * dkx_b + vdxy * ds_b + vdyy * dky_b)
    return v, dv_w, dv_b, th * vd, dtv_w, dtv_b


@njit(inline="always")
def store_tangents(out, pi, scale, sb2, readout, a0, a1, a2, a3, a4, a5):
    """Row ``pi`` of the tangents kernels' result, K, T, dK_w, dK_b, dT_w,
    dT_b, from the pooled sums ``a0..a5`` (S, dS_w, dS_b and the NTK's
    three) of :func:`one_pair_tangents` scaled by the readout's ``scale``.
    The CPU and GPU kernels both store with it."""
    k = scale * a0 + sb2
    dk_w = scale * (a0 + a1)
    dk_b = scale * a2 + sb2
    out[pi, 0] = k
    out[pi, 2] = dk_w
    out[pi, 3] = dk_b
    if readout == PPV:
        out[pi, 1] = k
        out[pi, 4] = dk_w
        out[pi, 5] = dk_b
    else:
        out[pi, 1] = k + scale * a3
        out[pi, 4] = dk_w + scale * (a3 + a4)
        out[pi, 5] = dk_b + scale * a5


@njit(fastmath=FASTMATH)
def _layer_tangents(st, ut, nx, ny, dgx, sgx, tgx, dgy, sgy, tgy, cx, cy,
                    family, step):
    """Duals of one layer with tangents, for every pair of positions.

    ``st[0..5]`` hold S, dS_w, dS_b, Th, dTh_w, dTh_b; the result ``ut``
    holds V, dV_w, dV_b, Th Vd, d(Th Vd)_w, d(Th Vd)_b.  ``step`` uses the
    step function (its dual is ReLU's Vd).
    """
    cy0 = cy[0]
    for p in range(nx):
        ax = family_select(family, cx, p, cx[0])
        for q in range(ny):
            ay = family_select(family, cy, q, cy0)
            r = sgx[p] * sgy[q]
            if step:
                pp = piecewise_linear_partials(dgx[p], st[0, p, q], dgy[q], r,
                                               ax, ay, 0.0)
            else:
                pp = family_partials(dgx[p], st[0, p, q], dgy[q], r, ax, ay,
                                     family)
            e = tangent_entry(pp, step, tgx[0, p], tgx[1, p], tgy[0, q],
                              tgy[1, q], st[1, p, q], st[2, p, q],
                              st[3, p, q], st[4, p, q], st[5, p, q])
            for k in range(6):
                ut[k, p, q] = e[k]


@njit(fastmath=FASTMATH)
def one_pair_tangents(xv, wx, yv, wy, i, j, h, dils, vx, vy, fh, fw, sh, sw,
                      padding, depth, dgx, sgx, tgx, dgy, sgy, tgy, cx, cy,
                      family, sw2, sb2, readout, g, st, ut):
    """Pooled sums of one pair and their tangents: (V, dV_w, dV_b, ThVd,
    d(ThVd)_w, d(ThVd)_b) summed over dilations, in the caller's buffers
    ``g``, ``st`` and ``ut``."""
    a1 = sw2 / (xv.shape[1] * fh * fw)
    al = sw2 / (fh * fw)
    acc = np.zeros(6)
    _channel_gram(xv, i, wx, yv, j, wy, h, g)
    for di in range(dils.shape[0]):
        if not (vx[i, di] and vy[j, di]):
            continue
        d = dils[di]
        hx, ux, hy, uy = _layer(g, h, wx, h, wy, st[0], d, fh, fw, sh, sw,
                                padding, a1, sb2)
        for p in range(hx * ux):
            for q in range(hy * uy):
                st[1, p, q] = st[0, p, q] - sb2
                st[2, p, q] = sb2
                st[3, p, q] = st[0, p, q]
                st[4, p, q] = st[1, p, q]
                st[5, p, q] = sb2
        layer = 0
        while True:
            cxl = family_select(family, cx, (i, di, layer), cx[0, 0, 0])
            cyl = family_select(family, cy, (j, di, layer), cy[0, 0, 0])
            last = layer == depth - 1
            _layer_tangents(st, ut, hx * ux, hy * uy, dgx[i, di, layer],
                            sgx[i, di, layer], tgx[i, di, layer],
                            dgy[j, di, layer], sgy[j, di, layer],
                            tgy[j, di, layer], cxl, cyl, family,
                            last and readout == PPV)
            if last:
                break
            px, pux, py, puy = hx, ux, hy, uy
            for k in range(6):
                hx, ux, hy, uy = _layer(ut[k], px, pux, py, puy, st[k], d, fh,
                                        fw, sh, sw, padding, al, 0.0)
            for p in range(hx * ux):
                for q in range(hy * uy):
                    s_new = st[0, p, q]
                    # S' = al L(V) + sb2; Th' = S' + al L(Th Vd)
                    st[0, p, q] = s_new + sb2
                    st[1, p, q] = s_new + st[1, p, q]
                    st[2, p, q] = st[2, p, q] + sb2
                    st[4, p, q] = (st[1, p, q] + st[3, p, q]
                                   + st[4, p, q])
                    st[5, p, q] = st[2, p, q] + st[5, p, q]
                    st[3, p, q] = st[0, p, q] + st[3, p, q]
            layer += 1
        sums = np.zeros(6)
        if readout == FLATTEN:
            for ia in range(min(hx, hy)):
                for ja in range(min(ux, uy)):
                    p = ia * ux + ja
                    q = ia * uy + ja
                    for k in range(6):
                        sums[k] += ut[k, p, q]
            norm = 1.0 / math.sqrt(float(hx * ux * hy * uy))
        else:
            for k in range(6):
                tot = 0.0
                for p in range(hx * ux):
                    for q in range(hy * uy):
                        tot += ut[k, p, q]
                sums[k] = tot
            norm = 1.0 / float(hx * ux * hy * uy)
        for k in range(6):
            acc[k] += sums[k] * norm
    return acc


# ------------------------------------------------------ per-input diagonals
def _lagsum_batch(a, d, spec):
    """:func:`_layer` on the diagonal, for a batch of grids (n, H, W) of
    one shape: the sums over taps, and the output grid's shape."""
    n, h, w = a.shape
    sh, sw = spec.strides
    rows = tap_positions(h, spec.fh, d, sh, spec.padding)
    cols = tap_positions(w, spec.fw, d, sw, spec.padding)
    # index -1 reads the appended zeros: zero padding
    padded = np.zeros((n, h + 1, w + 1))
    padded[:, :h, :w] = a
    out = np.zeros((n, rows.shape[0], cols.shape[0]))
    for ka in range(spec.fh):
        for kb in range(spec.fw):
            out += padded[:, rows[:, ka][:, None], cols[:, kb][None, :]]
    return out


def diagonal_paths(grids, spec, with_tangents=False):
    """Per-position variances of every input against itself, layer by layer.

    Returns
    -------
    dg : ndarray (n, n_dilations, depth, H * W)
        ``Sxx_l[p]`` (1 where a position does not exist).
    dgrad : ndarray (n, n_dilations, depth, 2, H * W) or None
        Their tangents (log weight variance, log bias variance).
    """
    xv, widths, valid = grids.values, grids.widths, grids.valid
    n, c, h, wmax = xv.shape
    act, depth = spec.activation, spec.depth
    sw2, sb2 = spec.weight_variance, spec.bias_variance
    a1, al = sw2 / (c * spec.fh * spec.fw), sw2 / (spec.fh * spec.fw)
    sq = np.einsum("ncij,ncij->nij", xv, xv)
    n_dil = len(spec.dilations)
    dg = np.ones((n, n_dil, depth, h * wmax))
    dgrad = np.zeros((n, n_dil, depth, 2, h * wmax)) if with_tangents else None
    # inputs of one width share their grids, pads and wrapping
    for width in np.unique(widths):
        group = widths == width
        for di, d in enumerate(spec.dilations):
            rows = np.flatnonzero(group & valid[:, di])
            if rows.size == 0:
                continue
            s = a1 * _lagsum_batch(sq[rows, :, :width], d, spec) + sb2
            ds_w, ds_b = s - sb2, np.full_like(s, sb2)
            for layer in range(depth):
                ho, wo = s.shape[1:]
                dg[rows, di, layer, :ho * wo] = s.reshape(rows.size, -1)
                if with_tangents:
                    dgrad[rows, di, layer, 0, :ho * wo] = ds_w.reshape(
                        rows.size, -1)
                    dgrad[rows, di, layer, 1, :ho * wo] = ds_b.reshape(
                        rows.size, -1)
                if layer == depth - 1:
                    break
                if with_tangents:
                    p = act.dual_partials(s, s, s)
                    dv = p[2] + p[3] + p[4]
                    s_new = al * _lagsum_batch(p[0], d, spec) + sb2
                    ds_w = (s_new - sb2) + al * _lagsum_batch(dv * ds_w, d,
                                                              spec)
                    ds_b = sb2 + al * _lagsum_batch(dv * ds_b, d, spec)
                    s = s_new
                else:
                    v = act.dual(s, s, s)[0]
                    s = al * _lagsum_batch(v, d, spec) + sb2
    if not np.all(np.isfinite(dg)):
        raise FloatingPointError(
            f"The convolutional kernel overflowed through {depth} layers "
            f"with weight_variance={sw2}; lower the depth or the weight "
            "variance.")
    return dg, dgrad


def coefficient_rows(activation, dg):
    """Per-position coefficient rows of series duals (empty for closed forms)."""
    if activation.closed_form:
        return np.zeros((1, 1, 1, 1, 1))
    flat = activation.coefficients(dg.ravel())
    return np.ascontiguousarray(flat.reshape(dg.shape + (flat.shape[1],)))
