"""The per-pair-of-positions recursion of convolutional NNGP/NTK kernels.

Inputs are grids of positions: a 1-D sequence of length T is a grid of shape
(1, T), an image a grid (H, W); every input carries ``C`` channels.  For one
dilation ``d`` and filter taps ``(ka, kb)`` (offsets ``ka d - sa``,
``kb d - sb``; ``sa = sb = 0`` for "valid" padding, half the filter's span
for "same"), the network's pre-activation covariances obey

* ``S1[p, p'] = sw2 / (C q) * sum_k <x_{p + o_k}, y_{p' + o_k}> + sb2``;
* ``S{l+1}[p, p'] = sw2 / q * sum_k V_l[p + o_k, p' + o_k] + sb2``, with
  ``V_l = E[phi(u) phi(v)]`` under the covariance
  ``[[Sxx_l[p], S_l[p, p']], [., Syy_l[p']]]`` (positions outside the
  input contribute zero: zero padding);
* ``Th{l+1} = S{l+1} + sw2 / q * sum_k (Th_l Vd_l)[p + o_k, p' + o_k]``,
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

from .._core.fastmath import FASTMATH
from ..activations.duals import (piecewise_linear_dual,
                                 piecewise_linear_partials)
from ..activations.families import (family_dual, family_partials,
                                    family_select)

AVERAGE, FLATTEN, PPV = 0, 1, 2
READOUTS = {"average": AVERAGE, "flatten": FLATTEN, "ppv": PPV}


@dataclass(frozen=True)
class ConvSpec:
    """A validated convolutional network, dilations resolved.

    ``fh`` and ``fw`` are the filter's height and width, ``same`` selects
    "same" padding over "valid", ``readout`` is one of :data:`READOUTS`'
    codes.
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


# ------------------------------------------------------------- grid geometry
def shifts(d, fh, fw, same):
    """Offsets subtracted from the taps: centred filters under "same"."""
    return (d * ((fh - 1) // 2), d * ((fw - 1) // 2)) if same else (0, 0)


# Rows of 1-D "valid" lag sums restart from a direct sum this often: the
# running update adds one rounding error per step, and restarts bound it.
_RESTART = 8


@njit(fastmath=FASTMATH)
def _lagsum_chain(src, dst, dwx, dwy, d, fw, scale, add):
    """:func:`_lagsum` on 1-D grids with "valid" padding, in O(1) per entry.

    ``S[p, q] = S[p - d, q - d] - src[p - d, q - d] + src[p + span, q + span]``
    along each diagonal, with a direct sum every ``_RESTART`` steps.
    """
    span = d * (fw - 1)
    for p in range(dwx):
        drow = dst[p]
        if p < d or (p // d) % _RESTART == 0:
            for q in range(dwy):
                drow[q] = 0.0
            for k in range(fw):
                sv = src[p + d * k][d * k:d * k + dwy]
                for q in range(dwy):
                    drow[q] += sv[q]
            continue
        for q in range(min(d, dwy)):
            acc = 0.0
            for k in range(fw):
                acc += src[p + d * k, q + d * k]
            drow[q] = acc
        n = dwy - d
        if n > 0:
            prev = dst[p - d][:n]
            new = src[p + span][d + span:d + span + n]
            old = src[p - d][:n]
            out = drow[d:d + n]
            for q in range(n):
                out[q] = prev[q] + new[q] - old[q]
    for p in range(dwx):
        drow = dst[p]
        for q in range(dwy):
            drow[q] = scale * drow[q] + add


@njit(fastmath=FASTMATH)
def _lagsum(src, shx, swx, shy, swy, dst, dhx, dwx, dhy, dwy, d, fh, fw,
            sa, sb, scale, add):
    """dst[p, p'] = scale * sum_k src[p + o_k, p' + o_k] + add.

    Positions are flattened row-major on each input's own grid; taps whose
    position falls outside a grid add nothing (zero padding).
    """
    if (shx == 1 and shy == 1 and fh == 1 and sa == 0 and sb == 0
            and fw > 3):
        _lagsum_chain(src, dst, dwx, dwy, d, fw, scale, add)
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


def _out_shape(h, w, d, fh, fw, same):
    if same:
        return h, w
    return h - d * (fh - 1), w - d * (fw - 1)


_out_shape_nb = njit(inline="always")(_out_shape)


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
def _pool_row(family, kxx, sqx, srow, dgy, sgy, ax, cy, throw, want_t, n):
    # Sums of V (and Th Vd) along a row, accumulated directly: storing the
    # duals first would keep the unused one alive.
    kr = 0.0
    tr = 0.0
    if want_t:
        for q in range(n):
            ay = family_select(family, cy, q, ax)
            v, vd = family_dual(kxx, srow[q], dgy[q], sqx * sgy[q], ax, ay,
                                family)
            kr += v
            tr += throw[q] * vd
    else:
        for q in range(n):
            ay = family_select(family, cy, q, ax)
            kr += family_dual(kxx, srow[q], dgy[q], sqx * sgy[q], ax, ay,
                              family)[0]
    return kr, tr


@njit(fastmath=FASTMATH)
def _pooled(s, th, nx, ny, dgx, sgx, dgy, sgy, cx, cy, family, readout,
            want_t):
    # sums over all pairs of positions of the readout's duals
    kd = 0.0
    td = 0.0
    for p in range(nx):
        srow = s[p]
        krow = 0.0
        trow = 0.0
        if readout == PPV:
            # the step function's dual is ReLU's Vd; only it is needed
            kxx = dgx[p]
            sqx = sgx[p]
            for q in range(ny):
                krow += piecewise_linear_dual(kxx, srow[q], dgy[q],
                                              sqx * sgy[q], cx[0], cx[0],
                                              0.0)[1]
        else:
            ax = family_select(family, cx, p, cx[0])
            krow, trow = _pool_row(family, dgx[p], sgx[p], srow, dgy, sgy, ax,
                                   cy, th[p] if want_t else srow, want_t, ny)
        kd += krow
        td += trow
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
def one_pair(xv, wx, yv, wy, i, j, h, dils, vx, vy, fh, fw, same, depth,
             dgx, sgx, dgy, sgy, cx, cy, family, sw2, sb2, readout, want_t,
             g, s, vv, th, tv):
    """Pooled sums of one pair of inputs over its dilations, in the
    caller's buffers ``g``, ``s``, ``vv``, ``th``, ``tv``."""
    c = xv.shape[1]
    a1 = sw2 / (c * fh * fw)
    al = sw2 / (fh * fw)
    npx = h * wx
    npy = h * wy
    for p in range(npx):
        for q in range(npy):
            g[p, q] = 0.0
    for ch in range(c):
        for p in range(npx):
            ia = p // wx
            a = xv[i, ch, ia, p - ia * wx]
            grow = g[p]
            for i2 in range(h):
                gv = grow[i2 * wy:(i2 + 1) * wy]
                yrow = yv[j, ch, i2]
                for j2 in range(wy):
                    gv[j2] += a * yrow[j2]
    kacc = 0.0
    tacc = 0.0
    for di in range(dils.shape[0]):
        if not (vx[i, di] and vy[j, di]):
            continue
        d = dils[di]
        sa = d * ((fh - 1) // 2) if same else 0
        sb = d * ((fw - 1) // 2) if same else 0
        hx, ux = _out_shape_nb(h, wx, d, fh, fw, same)
        hy, uy = _out_shape_nb(h, wy, d, fh, fw, same)
        _lagsum(g, h, wx, h, wy, s, hx, ux, hy, uy, d, fh, fw, sa, sb, a1,
                sb2)
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
            hx, ux = _out_shape_nb(px, pux, d, fh, fw, same)
            hy, uy = _out_shape_nb(py, puy, d, fh, fw, same)
            _lagsum(vv, px, pux, py, puy, s, hx, ux, hy, uy, d, fh, fw, sa,
                    sb, al, sb2)
            if want_t:
                _lagsum(tv, px, pux, py, puy, th, hx, ux, hy, uy, d, fh, fw,
                        sa, sb, al, 0.0)
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
                v, vxx, vxy, vyy = pp[1], pp[5], pp[6], pp[7]
                vd = 0.0
                vdxx = vdxy = vdyy = 0.0
            else:
                pp = family_partials(dgx[p], st[0, p, q], dgy[q], r, ax, ay,
                                     family)
                v, vxx, vxy, vyy = pp[0], pp[2], pp[3], pp[4]
                vd, vdxx, vdxy, vdyy = pp[1], pp[5], pp[6], pp[7]
            for t in range(2):
                dkx = tgx[t, p]
                dky = tgy[t, q]
                dk = st[1 + t, p, q]
                ut[1 + t, p, q] = vxx * dkx + vxy * dk + vyy * dky
                dvd = vdxx * dkx + vdxy * dk + vdyy * dky
                ut[4 + t, p, q] = (st[4 + t, p, q] * vd
                                   + st[3, p, q] * dvd)
            ut[0, p, q] = v
            ut[3, p, q] = st[3, p, q] * vd


@njit(fastmath=FASTMATH)
def one_pair_tangents(xv, wx, yv, wy, i, j, h, dils, vx, vy, fh, fw, same,
                      depth, dgx, sgx, tgx, dgy, sgy, tgy, cx, cy, family, sw2,
                      sb2, readout, g, st, ut):
    """Pooled sums of one pair and their tangents: (V, dV_w, dV_b, ThVd,
    d(ThVd)_w, d(ThVd)_b) summed over dilations, in the caller's buffers
    ``g``, ``st`` and ``ut``."""
    c = xv.shape[1]
    a1 = sw2 / (c * fh * fw)
    al = sw2 / (fh * fw)
    npx = h * wx
    npy = h * wy
    acc = np.zeros(6)
    for p in range(npx):
        for q in range(npy):
            g[p, q] = 0.0
    for ch in range(c):
        for p in range(npx):
            ia = p // wx
            a = xv[i, ch, ia, p - ia * wx]
            for q in range(npy):
                i2 = q // wy
                g[p, q] += a * yv[j, ch, i2, q - i2 * wy]
    for di in range(dils.shape[0]):
        if not (vx[i, di] and vy[j, di]):
            continue
        d = dils[di]
        sa = d * ((fh - 1) // 2) if same else 0
        sb = d * ((fw - 1) // 2) if same else 0
        hx, ux = _out_shape_nb(h, wx, d, fh, fw, same)
        hy, uy = _out_shape_nb(h, wy, d, fh, fw, same)
        _lagsum(g, h, wx, h, wy, st[0], hx, ux, hy, uy, d, fh, fw, sa, sb, a1,
                sb2)
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
            hx, ux = _out_shape_nb(px, pux, d, fh, fw, same)
            hy, uy = _out_shape_nb(py, puy, d, fh, fw, same)
            for k in range(6):
                _lagsum(ut[k], px, pux, py, puy, st[k], hx, ux, hy, uy, d,
                        fh, fw, sa, sb, al, 0.0)
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
def _lagsum_batch(a, d, fh, fw, same, out_shape):
    """:func:`_lagsum` on the diagonal, for a batch of grids (n, H, W)."""
    n, h, w = a.shape
    ho, wo = out_shape
    sa, sb = shifts(d, fh, fw, same)
    out = np.zeros((n, ho, wo))
    for ka in range(fh):
        oa = ka * d - sa
        i_lo, i_hi = max(0, -oa), min(ho, h - oa)
        for kb in range(fw):
            ob = kb * d - sb
            j_lo, j_hi = max(0, -ob), min(wo, w - ob)
            if i_hi > i_lo and j_hi > j_lo:
                out[:, i_lo:i_hi, j_lo:j_hi] += a[:, i_lo + oa:i_hi + oa,
                                                   j_lo + ob:j_hi + ob]
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
    fh, fw, same = spec.fh, spec.fw, spec.same
    a1, al = sw2 / (c * fh * fw), sw2 / (fh * fw)
    sq = np.einsum("ncij,ncij->nij", xv, xv)
    n_dil = len(spec.dilations)
    dg = np.ones((n, n_dil, depth, h * wmax))
    dgrad = np.zeros((n, n_dil, depth, 2, h * wmax)) if with_tangents else None
    cols = np.arange(wmax)
    for di, d in enumerate(spec.dilations):
        rows = np.flatnonzero(valid[:, di])
        if rows.size == 0:
            continue
        shape = _out_shape(h, wmax, d, fh, fw, same)
        s = a1 * _lagsum_batch(sq[rows], d, fh, fw, same, shape) + sb2
        ds_w, ds_b = s - sb2, np.full_like(s, sb2)
        width = widths[rows]
        for layer in range(depth):
            ho, wo = s.shape[1:]
            dg[rows, di, layer, :ho * wo] = s.reshape(rows.size, -1)
            if with_tangents:
                dgrad[rows, di, layer, 0, :ho * wo] = ds_w.reshape(rows.size, -1)
                dgrad[rows, di, layer, 1, :ho * wo] = ds_b.reshape(rows.size, -1)
            if layer == depth - 1:
                break
            # positions past an input's own width hold no activation
            if not same:
                width = width - d * (fw - 1)
            mask = (cols[None, :wo] < width[:, None])[:, None, :]
            shape = _out_shape(ho, wo, d, fh, fw, same)
            if with_tangents:
                p = act.dual_partials(s, s, s)
                dv = (p[2] + p[3] + p[4]) * mask
                v = p[0] * mask
                s_new = al * _lagsum_batch(v, d, fh, fw, same, shape) + sb2
                ds_w = (s_new - sb2) + al * _lagsum_batch(dv * ds_w, d, fh, fw,
                                                          same, shape)
                ds_b = sb2 + al * _lagsum_batch(dv * ds_b, d, fh, fw, same,
                                                shape)
                s = s_new
            else:
                v = act.dual(s, s, s)[0] * mask
                s = al * _lagsum_batch(v, d, fh, fw, same, shape) + sb2
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
