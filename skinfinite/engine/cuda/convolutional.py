"""CUDA kernels of the convolutional recursion (one thread block per pair).

A pair of inputs needs its position-pair matrices (``P_x x P_y`` entries,
the whole recursion's state), so a block of threads shares one pair: each
thread owns rows of those matrices, the blocks synchronise between layers,
and the pooled sums meet in shared memory.  The rows are computed by the
CPU kernels' own functions (:func:`~skinfinite.recursions.convolutional.
lagsum_row`, the grid geometry, the activation's scalar duals), compiled
for the device by numba-cuda, so both devices evaluate the same formulas.
The matrices live in device memory the caller owns, one set per pair of
the tile.  Imported only when a GPU (or numba's CUDA simulator) is used.
"""
import math

import numpy as np
from numba import cuda, float64, njit

from ..tiles import device_function
from ...activations.duals import (piecewise_linear_dual,
                                   piecewise_linear_partials)
from ...recursions.convolutional import (CIRCULAR, FLATTEN, PPV,
                                         axis_geometry_nb, lagsum_row,
                                         store_tangents, tangent_entry)

THREADS = 64  # threads of a block, sharing one pair of inputs

_lagsum_row = device_function(lagsum_row)
_axis = device_function(axis_geometry_nb)
_step_dual = device_function(piecewise_linear_dual)
_step_partials = device_function(piecewise_linear_partials)
_tangent_entry = device_function(tangent_entry)
_store_tangents = device_function(store_tangents)


@njit(inline="always")
def _position_gram(xv, i, wx, yv, j, wy, h, t, nt, G):
    # inner products of all pairs of positions, thread t of nt owning rows
    c = xv.shape[1]
    for p in range(t, h * wx, nt):
        ia = p // wx
        for q in range(h * wy):
            i2 = q // wy
            tot = 0.0
            for ch in range(c):
                tot += xv[i, ch, ia, p - ia * wx] * yv[j, ch, i2, q - i2 * wy]
            G[p, q] = tot


@njit(inline="always")
def _readout_norm(readout, hx, ux, hy, uy):
    if readout == FLATTEN:
        return 1.0 / math.sqrt(float(hx * ux * hy * uy))
    return 1.0 / float(hx * ux * hy * uy)


_gram = device_function(_position_gram)
_norm = device_function(_readout_norm)


def _make_values(dual, per_input):
    # per_input is a compile-time constant: closed-form duals read no
    # coefficient rows (a scalar stands in)

    @cuda.jit
    def fused(xv, xw, yv, yw, prow, pcol, h, dils, vx, vy, nx, ny, fh, fw,
              sh, sw, padding, depth, dgx, sgx, dgy, sgy, cx, cy, param, sw2,
              sb2, readout, want_t, g, s, vv, th, tv, out):
        pi = cuda.blockIdx.x
        t = cuda.threadIdx.x
        nt = cuda.blockDim.x
        acc = cuda.shared.array(2, float64)
        if pi >= prow.shape[0]:
            return
        i = prow[pi]
        j = pcol[pi]
        wx = xw[i]
        wy = yw[j]
        G = g[pi]
        S = s[pi]
        VV = vv[pi]
        TH = th[pi]
        TV = tv[pi]
        circular = padding == CIRCULAR
        c = xv.shape[1]
        a1 = sw2 / (c * fh * fw)
        al = sw2 / (fh * fw)
        _gram(xv, i, wx, yv, j, wy, h, t, nt, G)
        if t == 0:
            acc[0] = 0.0
            acc[1] = 0.0
        cuda.syncthreads()
        for di in range(dils.shape[0]):
            if not (vx[i, di] and vy[j, di]):
                continue
            d = dils[di]
            shx, swx, shy, swy = h, wx, h, wy
            for layer in range(depth):
                hx, pax = _axis(shx, fh, d, sh, padding)
                ux, pbx = _axis(swx, fw, d, sw, padding)
                hy, pay = _axis(shy, fh, d, sh, padding)
                uy, pby = _axis(swy, fw, d, sw, padding)
                for p in range(t, hx * ux, nt):
                    ia = p // ux
                    ja = p - ia * ux
                    if layer == 0:
                        _lagsum_row(G, shx, swx, shy, swy, S[p], ia, ja, hy,
                                    uy, d, fh, fw, sh, sw, pax, pbx, pay,
                                    pby, circular, a1, sb2)
                        if want_t:
                            for q in range(hy * uy):
                                TH[p, q] = S[p, q]
                    else:
                        _lagsum_row(VV, shx, swx, shy, swy, S[p], ia, ja, hy,
                                    uy, d, fh, fw, sh, sw, pax, pbx, pay,
                                    pby, circular, al, sb2)
                        if want_t:
                            _lagsum_row(TV, shx, swx, shy, swy, TH[p], ia, ja,
                                        hy, uy, d, fh, fw, sh, sw, pax, pbx,
                                        pay, pby, circular, al, 0.0)
                            for q in range(hy * uy):
                                TH[p, q] += S[p, q]
                cuda.syncthreads()
                shx, swx, shy, swy = hx, ux, hy, uy
                if layer == depth - 1:
                    break
                # the duals of the hidden layer, row by row
                for p in range(t, hx * ux, nt):
                    kxx = dgx[i, di, layer, p]
                    rx = sgx[i, di, layer, p]
                    for q in range(hy * uy):
                        ax = cx[i, di, layer, p] if per_input else 0.0
                        ay = cy[j, di, layer, q] if per_input else 0.0
                        v, vd = dual(kxx, S[p, q], dgy[j, di, layer, q],
                                     rx * sgy[j, di, layer, q], ax, ay, param)
                        VV[p, q] = v
                        if want_t:
                            TV[p, q] = TH[p, q] * vd
                cuda.syncthreads()
            # the readout's sums of the last layer, per thread, then shared
            last = depth - 1
            kd = 0.0
            td = 0.0
            for p in range(t, shx * swx, nt):
                kxx = dgx[i, di, last, p]
                rx = sgx[i, di, last, p]
                if readout == FLATTEN:
                    ia = p // swx
                    ja = p - ia * swx
                    if ia >= shy or ja >= swy:
                        continue
                    qlo = ia * swy + ja
                    qhi = qlo + 1
                else:
                    qlo = 0
                    qhi = shy * swy
                for q in range(qlo, qhi):
                    r = rx * sgy[j, di, last, q]
                    if readout == PPV:
                        kd += _step_dual(kxx, S[p, q], dgy[j, di, last, q], r,
                                         0.0, 0.0, 0.0)[1]
                    else:
                        ax = cx[i, di, last, p] if per_input else 0.0
                        ay = cy[j, di, last, q] if per_input else 0.0
                        v, vd = dual(kxx, S[p, q], dgy[j, di, last, q], r, ax,
                                     ay, param)
                        kd += v
                        if want_t:
                            td += TH[p, q] * vd
            norm = _norm(readout, shx, swx, shy, swy)
            cuda.atomic.add(acc, 0, kd * norm)
            cuda.atomic.add(acc, 1, td * norm)
            cuda.syncthreads()
        if t == 0:
            scale = sw2 / math.sqrt(nx[i] * ny[j])
            k_out = scale * acc[0] + sb2
            out[pi, 0] = k_out
            out[pi, 1] = k_out + scale * acc[1] if want_t else 0.0
    return fused


def _make_tangents(partials, per_input):
    # The CPU's one_pair_tangents, a block per pair: st and ut hold the six
    # matrices (S, Th and their tangents; V, Th Vd and theirs) of the pair,
    # each thread owns rows of them.

    @cuda.jit
    def fused(xv, xw, prow, pcol, h, dils, valid, counts, fh, fw, sh, sw,
              padding, depth, dg, sg, tg, cx, param, sw2, sb2, readout, g, st,
              ut, out):
        pi = cuda.blockIdx.x
        t = cuda.threadIdx.x
        nt = cuda.blockDim.x
        acc = cuda.shared.array(6, float64)
        sums = cuda.local.array(6, float64)
        if pi >= prow.shape[0]:
            return
        i = prow[pi]
        j = pcol[pi]
        wx = xw[i]
        wy = xw[j]
        G = g[pi]
        ST = st[pi]
        UT = ut[pi]
        circular = padding == CIRCULAR
        c = xv.shape[1]
        a1 = sw2 / (c * fh * fw)
        al = sw2 / (fh * fw)
        _gram(xv, i, wx, xv, j, wy, h, t, nt, G)
        if t < 6:
            acc[t] = 0.0
        cuda.syncthreads()
        for di in range(dils.shape[0]):
            if not (valid[i, di] and valid[j, di]):
                continue
            d = dils[di]
            hx, pax = _axis(h, fh, d, sh, padding)
            ux, pbx = _axis(wx, fw, d, sw, padding)
            hy, pay = _axis(h, fh, d, sh, padding)
            uy, pby = _axis(wy, fw, d, sw, padding)
            for p in range(t, hx * ux, nt):
                ia = p // ux
                _lagsum_row(G, h, wx, h, wy, ST[0, p], ia, p - ia * ux, hy,
                            uy, d, fh, fw, sh, sw, pax, pbx, pay, pby,
                            circular, a1, sb2)
                for q in range(hy * uy):
                    s0 = ST[0, p, q]
                    ST[1, p, q] = s0 - sb2
                    ST[2, p, q] = sb2
                    ST[3, p, q] = s0
                    ST[4, p, q] = s0 - sb2
                    ST[5, p, q] = sb2
            cuda.syncthreads()
            layer = 0
            while True:
                last = layer == depth - 1
                step = last and readout == PPV
                for p in range(t, hx * ux, nt):
                    kxx = dg[i, di, layer, p]
                    rx = sg[i, di, layer, p]
                    dkx_w = tg[i, di, layer, 0, p]
                    dkx_b = tg[i, di, layer, 1, p]
                    for q in range(hy * uy):
                        kyy = dg[j, di, layer, q]
                        r = rx * sg[j, di, layer, q]
                        if step:
                            pp = _step_partials(kxx, ST[0, p, q], kyy, r, 0.0,
                                                0.0, 0.0)
                        else:
                            ax = cx[i, di, layer, p] if per_input else 0.0
                            ay = cx[j, di, layer, q] if per_input else 0.0
                            pp = partials(kxx, ST[0, p, q], kyy, r, ax, ay,
                                          param)
                        e = _tangent_entry(
                            pp, step, dkx_w, dkx_b, tg[j, di, layer, 0, q],
                            tg[j, di, layer, 1, q], ST[1, p, q], ST[2, p, q],
                            ST[3, p, q], ST[4, p, q], ST[5, p, q])
                        for k in range(6):
                            UT[k, p, q] = e[k]
                cuda.syncthreads()
                if last:
                    break
                shx, swx, shy, swy = hx, ux, hy, uy
                hx, pax = _axis(shx, fh, d, sh, padding)
                ux, pbx = _axis(swx, fw, d, sw, padding)
                hy, pay = _axis(shy, fh, d, sh, padding)
                uy, pby = _axis(swy, fw, d, sw, padding)
                for p in range(t, hx * ux, nt):
                    ia = p // ux
                    for k in range(6):
                        _lagsum_row(UT[k], shx, swx, shy, swy, ST[k, p], ia,
                                    p - ia * ux, hy, uy, d, fh, fw, sh, sw,
                                    pax, pbx, pay, pby, circular, al, 0.0)
                    for q in range(hy * uy):
                        s_new = ST[0, p, q]
                        # S' = al L(V) + sb2; Th' = S' + al L(Th Vd)
                        ST[0, p, q] = s_new + sb2
                        ST[1, p, q] = s_new + ST[1, p, q]
                        ST[2, p, q] = ST[2, p, q] + sb2
                        ST[4, p, q] = ST[1, p, q] + ST[3, p, q] + ST[4, p, q]
                        ST[5, p, q] = ST[2, p, q] + ST[5, p, q]
                        ST[3, p, q] = ST[0, p, q] + ST[3, p, q]
                cuda.syncthreads()
                layer += 1
            # the readout's sums of the last layer, per thread, then shared
            for k in range(6):
                sums[k] = 0.0
            for p in range(t, hx * ux, nt):
                if readout == FLATTEN:
                    ia = p // ux
                    ja = p - ia * ux
                    if ia >= hy or ja >= uy:
                        continue
                    qlo = ia * uy + ja
                    qhi = qlo + 1
                else:
                    qlo = 0
                    qhi = hy * uy
                for q in range(qlo, qhi):
                    for k in range(6):
                        sums[k] += UT[k, p, q]
            norm = _norm(readout, hx, ux, hy, uy)
            for k in range(6):
                cuda.atomic.add(acc, k, sums[k] * norm)
            cuda.syncthreads()
        if t == 0:
            scale = sw2 / math.sqrt(counts[i] * counts[j])
            _store_tangents(out, pi, scale, sb2, readout, acc[0], acc[1],
                            acc[2], acc[3], acc[4], acc[5])
    return fused


_CACHE = {}
_TANGENTS_CACHE = {}


def gpu_kernels(activation):
    """The values kernel (NNGP and NTK) for an activation."""
    dual = device_function(activation.scalar_dual)
    key = activation.scalar_dual
    if key not in _CACHE:
        _CACHE[key] = _make_values(dual, not activation.closed_form)
    return _CACHE[key]


def gpu_tangent_kernels(activation):
    """The tangents kernel (values and their derivatives with respect to
    the log variances) for an activation."""
    key = activation.scalar_partials
    if key not in _TANGENTS_CACHE:
        _TANGENTS_CACHE[key] = _make_tangents(
            device_function(activation.scalar_partials),
            not activation.closed_form)
    return _TANGENTS_CACHE[key]


#: position-pair matrices a pair of inputs holds on the device: the values
#: kernel's five, the tangents kernel's thirteen (inner products, six
#: states, six duals)
VALUE_MATRICES = 5
TANGENT_MATRICES = 13


def values_launch(backend, x, y, spec, rows, cols, prepared_x, prepared_y,
                  want_t):
    """The values kernel and its arguments (device arrays from ``backend``;
    the result is the last, ``(len(rows), 2)``)."""
    kernel = gpu_kernels(spec.activation)
    dev = backend.asarray
    npairs = rows.shape[0]
    px = x.values.shape[2] * x.values.shape[3]
    py = y.values.shape[2] * y.values.shape[3]
    depth = spec.depth
    buffers = [backend.empty((npairs, px, py), np.float64)
               for _ in range(2 if depth == 1 and not want_t else
                              VALUE_MATRICES)]
    if len(buffers) == 2:
        buffers += [buffers[1]] * 3     # unused without hidden layers or NTK
    g, s, vv, th, tv = buffers
    res = backend.empty((npairs, 2), np.float64)
    cx = prepared_x[2][..., 0] if spec.activation.closed_form else prepared_x[2]
    cy = prepared_y[2][..., 0] if spec.activation.closed_form else prepared_y[2]
    return kernel, (
        dev(x.values), dev(x.widths), dev(y.values), dev(y.widths),
        dev(rows), dev(cols), x.values.shape[2],
        dev(np.asarray(spec.dilations, dtype=np.int64)), dev(x.valid),
        dev(y.valid), dev(x.counts), dev(y.counts), spec.fh, spec.fw,
        spec.strides[0], spec.strides[1], spec.padding, depth,
        dev(prepared_x[0]), dev(prepared_x[1]), dev(prepared_y[0]),
        dev(prepared_y[1]), dev(cx), dev(cy),
        float(spec.activation.parameter), spec.weight_variance,
        spec.bias_variance, spec.readout, bool(want_t), g, s, vv, th, tv, res)


def pair_values(backend, x, y, spec, rows, cols, prepared_x, prepared_y,
                want_t, out):
    """The CUDA counterpart of
    :func:`skinfinite.engine.cpu.convolutional.pair_values`: NNGP and NTK
    of the pairs ``(rows, cols)`` into the host array ``out``."""
    kernel, args = values_launch(backend, x, y, spec, rows, cols, prepared_x,
                                 prepared_y, want_t)
    kernel[rows.shape[0], THREADS](*args)
    out[:] = backend.to_host(args[-1])


def tangents_launch(backend, x, spec, rows, cols, dg, sg, dgrad, cx):
    """The tangents kernel and its arguments (device arrays from
    ``backend``; the result is the last, ``(len(rows), 6)``)."""
    kernel = gpu_tangent_kernels(spec.activation)
    dev = backend.asarray
    npairs = rows.shape[0]
    px = x.values.shape[2] * x.values.shape[3]
    g = backend.empty((npairs, px, px), np.float64)
    st = backend.empty((npairs, 6, px, px), np.float64)
    ut = backend.empty((npairs, 6, px, px), np.float64)
    res = backend.empty((npairs, 6), np.float64)
    cx = cx[..., 0] if spec.activation.closed_form else cx
    return kernel, (
        dev(x.values), dev(x.widths), dev(rows), dev(cols), x.values.shape[2],
        dev(np.asarray(spec.dilations, dtype=np.int64)), dev(x.valid),
        dev(x.counts), spec.fh, spec.fw, spec.strides[0], spec.strides[1],
        spec.padding, spec.depth, dev(dg), dev(sg), dev(dgrad), dev(cx),
        float(spec.activation.parameter), spec.weight_variance,
        spec.bias_variance, spec.readout, g, st, ut, res)


def pair_tangents(backend, x, spec, rows, cols, dg, sg, dgrad, cx, out):
    """The CUDA counterpart of
    :func:`skinfinite.engine.cpu.convolutional.pair_tangents`: K, T and
    their derivatives with respect to the log variances of the pairs
    ``(rows, cols)`` of the grids ``x`` with themselves, into the host
    array ``out`` (six columns)."""
    kernel, args = tangents_launch(backend, x, spec, rows, cols, dg, sg,
                                   dgrad, cx)
    kernel[rows.shape[0], THREADS](*args)
    out[:] = backend.to_host(args[-1])
