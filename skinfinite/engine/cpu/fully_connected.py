"""Compiled CPU tile kernels of the fully-connected recursion.

The kernels fuse the layer maps of :mod:`skinfinite.recursions.fully_connected`
over a block of pairs; :func:`grams_by_depth` keeps the Grams of several
depths from one pass.
"""
from dataclasses import replace

import numpy as np
from numba import njit, prange

from ..._core.compiled import SOURCE_STAMP
from ..._core.fastmath import FASTMATH
from ..._core.tiling import mirror_upper
from ...activations.families import (coefficient_row, family_dual,
                                     family_partials, family_row)
from ...recursions.fully_connected import (FullyConnectedSpec, _hidden_layer_nb,
                                           _input_layer_nb, diagonal_recursion,
                                           make_layer_gradients,
                                           make_pair_gradients)
from ..registry import register
from ..tiles import (BLOCK, compiled_kernels, inner_products, paired_row,
                     row_iterations, sq_norms, stage_arrays,
                     store_pair_gradients)
from .layered import fused_values


# -------------------------------------------------------------- fused kernels
# the layer maps with the hyperparameters as one tuple, as the generic fused
# kernel of engine/cpu/layered.py takes them
@njit(inline="always", fastmath=FASTMATH)
def _first(g, params):
    return _input_layer_nb(g, params[0], params[1], params[2])


@njit(inline="always", fastmath=FASTMATH)
def _hidden(layer, v, vd, t, params):
    return _hidden_layer_nb(v, vd, t, params[0], params[1], params[2])


@njit(inline="always", fastmath=FASTMATH)
def _fused_values(dual, row, g, r0, c0, dx, dy, sx, sy, cx, cy, param, sw2,
                  sb2, std, upper, mirror, out_k, out_t, want_k, want_t,
                  limit, layer0, resume):
    return fused_values(dual, row, _first, _hidden, g, r0, c0, dx, dy, sx, sy,
                        cx, cy, param, (sw2, sb2, std), upper, mirror, out_k,
                        out_t, want_k, want_t, limit, layer0, resume)


def _make_fused_values(dual, per_input):
    row = coefficient_row(per_input)

    @njit(parallel=True, fastmath=FASTMATH)
    def fused(g, r0, c0, dx, dy, sx, sy, cx, cy, param, sw2, sb2, std, upper,
              mirror, out_k, out_t, want_k, want_t, limit):
        return _fused_values(dual, row, g, r0, c0, dx, dy, sx, sy, cx, cy,
                             param, sw2, sb2, std, upper, mirror, out_k,
                             out_t, want_k, want_t, limit, 0, False)
    return fused


def _make_layer_values(dual, per_input):
    row = coefficient_row(per_input)

    @njit(parallel=True, fastmath=FASTMATH)
    def fused(g, r0, c0, dx, dy, sx, sy, cx, cy, param, sw2, sb2, std, upper,
              mirror, out_k, out_t, want_k, want_t, limit, layer0, resume):
        return _fused_values(dual, row, g, r0, c0, dx, dy, sx, sy, cx, cy,
                             param, sw2, sb2, std, upper, mirror, out_k,
                             out_t, want_k, want_t, limit, layer0, resume)
    return fused


@njit(inline="always", fastmath=FASTMATH)
def _fused_gradients(pair, g, r0, c0, dx, dy, sx, sy, cx, cy, param, sw2, sb2,
                     std, upper, out_k, out_t, out_dk, out_dt):
    n, m = g.shape
    for i in prange(n):
        for j in range(i if upper else 0, m):
            k, t, dk_w, dk_b, dt_w, dt_b = pair(
                g[i, j], r0 + i, c0 + j, dx, dy, sx, sy, cx, cy, param,
                sw2, sb2, std)
            store_pair_gradients(out_k, out_t, out_dk, out_dt, r0 + i,
                                 c0 + j, False, k, t, dk_w, dk_b, dt_w,
                                 dt_b)


@njit(inline="always", fastmath=FASTMATH)
def _layer_gradients(pair, layers, g, r0, c0, dx, dy, sx, sy, cx, cy, param,
                     sw2, sb2, std, upper, out_k, out_t, out_dk, out_dt,
                     resume):
    # _fused_gradients over the layers of dx; with resume, from the values
    # and tangents the outputs hold
    n, m = g.shape
    for i in prange(n):
        for j in range(i if upper else 0, m):
            x, y = r0 + i, c0 + j
            if resume:
                k, t, dk_w, dk_b, dt_w, dt_b = layers(
                    out_k[x, y], out_t[x, y], out_dk[x, y, 0],
                    out_dk[x, y, 1], out_dt[x, y, 0], out_dt[x, y, 1], x, y,
                    dx, dy, sx, sy, cx, cy, param, sw2, sb2, std)
            else:
                k, t, dk_w, dk_b, dt_w, dt_b = pair(
                    g[i, j], x, y, dx, dy, sx, sy, cx, cy, param, sw2, sb2,
                    std)
            store_pair_gradients(out_k, out_t, out_dk, out_dt, r0 + i,
                                 c0 + j, False, k, t, dk_w, dk_b, dt_w,
                                 dt_b)


def _make_fused_gradients(partials, per_input):
    pair = make_pair_gradients(partials, coefficient_row(per_input))

    @njit(parallel=True, fastmath=FASTMATH)
    def fused(g, r0, c0, dx, dy, sx, sy, cx, cy, param, sw2, sb2, std, upper,
              out_k, out_t, out_dk, out_dt):
        _fused_gradients(pair, g, r0, c0, dx, dy, sx, sy, cx, cy, param, sw2,
                         sb2, std, upper, out_k, out_t, out_dk, out_dt)
    return fused


def _make_layer_gradients(partials, per_input):
    row = coefficient_row(per_input)
    pair = make_pair_gradients(partials, row)
    layers = make_layer_gradients(partials, row)

    @njit(parallel=True, fastmath=FASTMATH)
    def fused(g, r0, c0, dx, dy, sx, sy, cx, cy, param, sw2, sb2, std, upper,
              out_k, out_t, out_dk, out_dt, layer0, resume):
        _layer_gradients(pair, layers, g, r0, c0, dx, dy, sx, sy, cx, cy,
                         param, sw2, sb2, std, upper, out_k, out_t, out_dk,
                         out_dt, resume)
    return fused


# globals, not closure variables of the cached kernels: numba could not key
# their disk cache on a compiled function
_FAMILY_PAIR = make_pair_gradients(family_partials, family_row)
_FAMILY_LAYERS = make_layer_gradients(family_partials, family_row)


def _cached_kernels(stamp):
    # Generic in the activation family and closing over nothing but the
    # source stamp, so that numba caches them on disk (see
    # skinfinite.activations.families).

    @njit(parallel=True, fastmath=FASTMATH, cache=True)
    def values(g, r0, c0, dx, dy, sx, sy, cx, cy, family, sw2, sb2, std,
               upper, mirror, out_k, out_t, want_k, want_t, limit):
        stamp_ = stamp  # noqa: F841 (keys the disk cache on the sources)
        return _fused_values(family_dual, family_row, g, r0, c0, dx, dy, sx,
                             sy, cx, cy, family, sw2, sb2, std, upper, mirror,
                             out_k, out_t, want_k, want_t, limit, 0, False)

    @njit(parallel=True, fastmath=FASTMATH, cache=True)
    def gradients(g, r0, c0, dx, dy, sx, sy, cx, cy, family, sw2, sb2, std,
                  upper, out_k, out_t, out_dk, out_dt):
        stamp_ = stamp  # noqa: F841
        _fused_gradients(_FAMILY_PAIR, g, r0, c0, dx, dy, sx, sy, cx, cy,
                         family, sw2, sb2, std, upper, out_k, out_t, out_dk,
                         out_dt)
    return values, gradients


def _cached_layer_kernels(stamp):
    # the kernels above over a range of layers, from a saved state (see
    # skinfinite.engine.driver), for the deep series activations

    @njit(parallel=True, fastmath=FASTMATH, cache=True)
    def values(g, r0, c0, dx, dy, sx, sy, cx, cy, family, sw2, sb2, std,
               upper, mirror, out_k, out_t, want_k, want_t, limit, layer0,
               resume):
        stamp_ = stamp  # noqa: F841
        return _fused_values(family_dual, family_row, g, r0, c0, dx, dy, sx,
                             sy, cx, cy, family, sw2, sb2, std, upper, mirror,
                             out_k, out_t, want_k, want_t, limit, layer0,
                             resume)

    @njit(parallel=True, fastmath=FASTMATH, cache=True)
    def gradients(g, r0, c0, dx, dy, sx, sy, cx, cy, family, sw2, sb2, std,
                  upper, out_k, out_t, out_dk, out_dt, layer0, resume):
        stamp_ = stamp  # noqa: F841
        _layer_gradients(_FAMILY_PAIR, _FAMILY_LAYERS, g, r0, c0, dx, dy, sx,
                         sy, cx, cy, family, sw2, sb2, std, upper, out_k,
                         out_t, out_dk, out_dt, resume)
    return values, gradients


_CACHED = _cached_kernels(SOURCE_STAMP)
_CACHED_LAYERS = _cached_layer_kernels(SOURCE_STAMP)
_FUSED_CACHE = {}
_LAYER_CACHE = {}


def kernels(activation):
    """The (values, gradients) tile kernels for an activation."""
    return compiled_kernels(activation, _CACHED, _make_fused_values,
                            _make_fused_gradients, _FUSED_CACHE)


def layer_kernels(activation):
    """The tile kernels over a range of layers, resuming from a saved
    state (the registry's ``cpu_layer_kernels``)."""
    return compiled_kernels(activation, _CACHED_LAYERS, _make_layer_values,
                            _make_layer_gradients, _LAYER_CACHE)


def kernel_arguments(spec, parameter):
    """A :class:`FullyConnectedSpec` as the kernels' arguments after the
    per-input arrays (the CPU and CUDA kernels alike)."""
    return (parameter, spec.weight_variance, spec.bias_variance, spec.std)


register(FullyConnectedSpec, cpu_kernels=kernels,
         kernel_arguments=kernel_arguments, cpu_layer_kernels=layer_kernels,
         cuda_module="skinfinite.engine.cuda.fully_connected")


# ------------------------------------------------------------ every depth
def _make_every_layer(dual, per_input):
    """Symmetric Gram kernel that keeps the outputs of chosen layers.

    The blocked pair loop of the fused values kernel with a store after
    each kept layer (``slot[layer] >= 0``): the same layer maps, one pass
    for every depth.  Each layer runs over a block of columns at a time,
    as in the values kernel, which keeps the inner loop free of the layer
    loop and several times faster than one pair at a time.
    """
    @njit(parallel=True, fastmath=FASTMATH)
    def every_layer(g, dx, sx, cx, param, sw2, sb2, std, slot, out_k, out_t,
                    want_t):
        n = g.shape[0]
        none = cx[0, 0]
        for row_pair in prange(row_iterations(n, True)):
            kb = np.empty(BLOCK)
            tb = np.empty(BLOCK)
            for half in range(2):
                i = paired_row(row_pair, half, n)
                if i < 0:
                    break
                for j0 in range(i, n, BLOCK):   # upper triangle; mirrored
                    nb = min(BLOCK, n - j0)
                    for jj in range(nb):
                        kb[jj], tb[jj] = _input_layer_nb(g[i, j0 + jj], sw2,
                                                         sb2, std)
                    for layer in range(dx.shape[0]):
                        kxx = dx[layer, i]
                        sqx = sx[layer, i]
                        ax = cx[layer, i] if per_input else none
                        for jj in range(nb):
                            j = j0 + jj
                            ay = cx[layer, j] if per_input else none
                            v, vd = dual(kxx, kb[jj], dx[layer, j],
                                         sqx * sx[layer, j], ax, ay, param)
                            kb[jj], tb[jj] = _hidden_layer_nb(v, vd, tb[jj],
                                                              sw2, sb2, std)
                        s = slot[layer]
                        if s >= 0:
                            for jj in range(nb):
                                out_k[s, i, j0 + jj] = kb[jj]
                            if want_t:
                                for jj in range(nb):
                                    out_t[s, i, j0 + jj] = tb[jj]
    return every_layer


_EVERY_LAYER_CACHE = {}


def grams_by_depth(X, spec, depths, want=("nngp", "ntk")):
    """Gram matrices K(X, X) of several depths from one pass of the recursion.

    The recursion passes through every shallower network on its way to
    ``max(depths)``; this driver keeps the layers asked for, so the cost is
    about that of one Gram at the deepest depth (both kernels are kept).

    Parameters
    ----------
    X : ndarray of shape (n, d)
    spec : FullyConnectedSpec
        Its ``depth`` is ignored; ``depths`` are used.
    depths : sequence of int >= 1
    want : tuple of {"nngp", "ntk"}

    Returns
    -------
    dict mapping each depth to a dict ``{"nngp": K, "ntk": T}`` (those in
    ``want``), each an (n, n) float64 array with the exact diagonal.
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    depths = sorted({int(d) for d in depths})
    if depths[0] < 1:
        raise ValueError(f"depths must be >= 1, got {depths[0]}.")
    n = X.shape[0]
    deepest = replace(spec, depth=depths[-1])
    sq = sq_norms(X)
    path = diagonal_recursion(sq, deepest)
    dx, sx, cx = stage_arrays(deepest, path, False)
    slot = np.full(depths[-1], -1, dtype=np.int64)
    for s, d in enumerate(depths):
        slot[d - 1] = s
    out_k = np.empty((len(depths), n, n))
    want_t = "ntk" in want
    out_t = np.empty((len(depths), n, n) if want_t else (1, 1, 1))
    act = spec.activation
    key = act.scalar_dual
    if key not in _EVERY_LAYER_CACHE:
        _EVERY_LAYER_CACHE[key] = _make_every_layer(act.scalar_dual,
                                                    not act.closed_form)
    g = inner_products(X, X)
    _EVERY_LAYER_CACHE[key](g, dx, sx, cx, act.parameter,
                            spec.weight_variance, spec.bias_variance,
                            spec.std, slot, out_k, out_t, want_t)
    result = {}
    for s, d in enumerate(depths):
        path_d = diagonal_recursion(sq, replace(spec, depth=d))
        result[d] = {}
        for name, out, diag in (("nngp", out_k, path_d.nngp),
                                ("ntk", out_t, path_d.ntk)):
            if name not in want:
                continue
            value = mirror_upper(out[s])
            if not _all_finite(value):
                raise FloatingPointError(
                    f"The {name.upper()} Gram matrix overflowed at depth {d} "
                    f"with weight_variance={spec.weight_variance}; lower the "
                    "depths or the weight variance.")
            np.fill_diagonal(value, diag)
            result[d][name] = value
    return result


def _all_finite(out, rows=256):
    return all(np.isfinite(out[i:i + rows]).all()
               for i in range(0, out.shape[0], rows))
