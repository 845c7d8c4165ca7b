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

A tile kernel runs the whole recursion for a set of pairs; each worker owns
position-pair buffers of one pair at a time (never more than a tile of
pairs is materialised), and the per-position variances of each input
against itself (``Sxx_l[p]``) are computed once per input.

Hyperparameter tangents are carried with respect to ``log(weight_variance)``
(index 0) and ``log(bias_variance)`` (index 1).
"""
import math

import numba
import numpy as np
from numba import njit, prange

from .._duals import (erf_dual, piecewise_linear_dual, series_dual,
                      trig_dual)
from .._fastmath import FASTMATH

AVERAGE, FLATTEN, PPV = 0, 1, 2
READOUTS = {"average": AVERAGE, "flatten": FLATTEN, "ppv": PPV}


# ------------------------------------------------------------- grid geometry
def layer_shapes(h, w, depth, d, fh, fw, same):
    """Grid shapes of layers 1..depth (pre-activations) for input (h, w)."""
    shapes = []
    for _ in range(depth):
        if not same:
            h, w = h - d * (fh - 1), w - d * (fw - 1)
        shapes.append((h, w))
    return shapes


def shifts(d, fh, fw, same):
    """Offsets subtracted from the taps: centred filters under "same"."""
    return (d * ((fh - 1) // 2), d * ((fw - 1) // 2)) if same else (0, 0)


@njit(fastmath=FASTMATH, cache=True)
def _lagsum(src, shx, swx, shy, swy, dst, dhx, dwx, dhy, dwy, d, fh, fw,
            sa, sb, scale, add):
    """dst[p, p'] = scale * sum_k src[p + o_k, p' + o_k] + add.

    Positions are flattened row-major on each input's own grid; taps whose
    position falls outside a grid add nothing (zero padding).
    """
    npy = dhy * dwy
    for ia in range(dhx):
        for ja in range(dwx):
            p = ia * dwx + ja
            for jj in range(npy):
                dst[p, jj] = 0.0
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
                    srow = u * swx + v
                    j2lo = max(0, -ob)
                    j2hi = min(dwy, swy - ob)
                    for i2 in range(i2lo, i2hi):
                        bd = i2 * dwy
                        bs = (i2 + oa) * swy + ob
                        for j2 in range(j2lo, j2hi):
                            dst[p, bd + j2] += src[srow, bs + j2]
            for jj in range(npy):
                dst[p, jj] = scale * dst[p, jj] + add


def _out_shape(h, w, d, fh, fw, same):
    if same:
        return h, w
    return h - d * (fh - 1), w - d * (fw - 1)


_out_shape_nb = njit(inline="always")(_out_shape)


# ------------------------------------------------------------- pair kernels
# Families of duals the cached kernels dispatch on (an activation's
# ``_scalar_dual``); a branch on a loop-invariant integer costs little and
# lets the kernels be compiled once and cached on disk.
PIECEWISE, ERF, TRIG, SERIES = 0, 1, 2, 3
_FAMILIES = {piecewise_linear_dual: PIECEWISE, erf_dual: ERF,
             trig_dual: TRIG, series_dual: SERIES}


def dual_family(activation):
    """The family code of an activation's duals."""
    family = _FAMILIES.get(activation._scalar_dual)
    if family is None:
        raise ValueError(
            f"The convolutional kernels have no compiled duals for "
            f"{activation!r}; pass it as a callable (integrated by "
            "quadrature) instead.")
    return family


@njit(inline="always", fastmath=FASTMATH)
def _dual(family, kxx, kxy, kyy, r, ax, ay, param):
    if family == PIECEWISE:
        return piecewise_linear_dual(kxx, kxy, kyy, r, ax, ay, param)
    if family == ERF:
        return erf_dual(kxx, kxy, kyy, r, ax, ay, param)
    if family == TRIG:
        return trig_dual(kxx, kxy, kyy, r, ax, ay, param)
    return series_dual(kxx, kxy, kyy, r, ax, ay, param)


@njit(fastmath=FASTMATH, cache=True)
def _hidden(s, vv, th, tv, nx, ny, dgx, sgx, dgy, sgy, cx, cy, param, family,
            want_t):
    # V (and Th * Vd) of one hidden layer from its covariances S; cx, cy
    # hold one coefficient row per position (series duals) or one row
    per_input = family == SERIES
    for p in range(nx):
        kxx = dgx[p]
        sqx = sgx[p]
        ax = cx[p] if per_input else cx[0]
        for q in range(ny):
            ay = cy[q] if per_input else cy[0]
            v, vd = _dual(family, kxx, s[p, q], dgy[q], sqx * sgy[q], ax, ay,
                          param)
            vv[p, q] = v
            if want_t:
                tv[p, q] = th[p, q] * vd


@njit(fastmath=FASTMATH, cache=True)
def _pooled(s, th, nx, ny, dgx, sgx, dgy, sgy, cx, cy, param, family,
            readout, want_t):
    # sums over all pairs of positions of the readout's duals
    per_input = family == SERIES
    kd = 0.0
    td = 0.0
    for p in range(nx):
        kxx = dgx[p]
        sqx = sgx[p]
        krow = 0.0
        trow = 0.0
        if readout == PPV:
            for q in range(ny):
                krow += piecewise_linear_dual(kxx, s[p, q], dgy[q],
                                              sqx * sgy[q], cx[0], cy[0],
                                              0.0)[1]
        else:
            ax = cx[p] if per_input else cx[0]
            for q in range(ny):
                ay = cy[q] if per_input else cy[0]
                v, vd = _dual(family, kxx, s[p, q], dgy[q], sqx * sgy[q], ax,
                              ay, param)
                krow += v
                if want_t:
                    trow += th[p, q] * vd
        kd += krow
        td += trow
    return kd, td


@njit(fastmath=FASTMATH, cache=True)
def _flat(s, th, hx, ux, hy, uy, dgx, sgx, dgy, sgy, cx, cy, param, family,
          want_t):
    per_input = family == SERIES
    kd = 0.0
    td = 0.0
    for ia in range(min(hx, hy)):
        for ja in range(min(ux, uy)):
            p = ia * ux + ja
            q = ia * uy + ja
            ax = cx[p] if per_input else cx[0]
            ay = cy[q] if per_input else cy[0]
            v, vd = _dual(family, dgx[p], s[p, q], dgy[q], sgx[p] * sgy[q],
                          ax, ay, param)
            kd += v
            if want_t:
                td += th[p, q] * vd
    return kd, td


@njit(fastmath=FASTMATH, cache=True)
def _one_pair(xv, wx, yv, wy, i, j, h, dils, vx, vy, fh, fw, same, depth,
              dgx, sgx, dgy, sgy, cx, cy, param, family, sw2, sb2, readout,
              want_t, g, s, vv, th, tv):
    """Pooled sums of one pair of inputs over its dilations."""
    per_input = family == SERIES
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
            for i2 in range(h):
                base = i2 * wy
                for j2 in range(wy):
                    g[p, base + j2] += a * yv[j, ch, i2, j2]
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
            cxl = cx[i, di, layer] if per_input else cx[0, 0, 0]
            cyl = cy[j, di, layer] if per_input else cy[0, 0, 0]
            if layer == depth - 1:
                break
            _hidden(s, vv, th, tv, hx * ux, hy * uy, dgx[i, di, layer],
                    sgx[i, di, layer], dgy[j, di, layer], sgy[j, di, layer],
                    cxl, cyl, param, family, want_t)
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
                           sgy[j, di, last], cxl, cyl, param, family, want_t)
            norm = 1.0 / math.sqrt(float(hx * ux * hy * uy))
        else:
            kd, td = _pooled(s, th, hx * ux, hy * uy, dgx[i, di, last],
                             sgx[i, di, last], dgy[j, di, last],
                             sgy[j, di, last], cxl, cyl, param, family,
                             readout, want_t)
            norm = 1.0 / float(hx * ux * hy * uy)
        kacc += kd * norm
        tacc += td * norm
    return kacc, tacc


@njit(parallel=True, cache=True)
def pair_values(xv, xw, yv, yw, prow, pcol, h, dils, vx, vy, nx, ny, fh, fw,
                same, depth, dgx, sgx, dgy, sgy, cx, cy, param, family, sw2,
                sb2, readout, want_t, nchunks, out):
    """NNGP (column 0) and NTK (column 1) of the pairs (prow, pcol),
    spread over ``nchunks`` parallel chunks."""
    npairs = prow.shape[0]
    pxmax = h * xv.shape[3]
    pymax = h * yv.shape[3]
    for chunk in prange(nchunks):
        # buffers of one pair of inputs, reused across the chunk's pairs
        g = np.empty((pxmax, pymax))
        s = np.empty((pxmax, pymax))
        vv = np.empty((pxmax, pymax) if depth > 1 else (1, 1))
        tsz = (pxmax, pymax) if want_t else (1, 1)
        th = np.empty(tsz)
        tv = np.empty(tsz if depth > 1 else (1, 1))
        for pi in range(chunk, npairs, nchunks):
            i = prow[pi]
            j = pcol[pi]
            kacc, tacc = _one_pair(xv, xw[i], yv, yw[j], i, j, h, dils, vx,
                                   vy, fh, fw, same, depth, dgx, sgx, dgy,
                                   sgy, cx, cy, param, family, sw2, sb2,
                                   readout, want_t, g, s, vv, th, tv)
            scale = sw2 / math.sqrt(nx[i] * ny[j])
            k_out = scale * kacc + sb2
            out[pi, 0] = k_out
            if want_t:
                out[pi, 1] = k_out + scale * tacc

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
