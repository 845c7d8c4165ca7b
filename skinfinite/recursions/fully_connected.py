"""The depth recursion of fully-connected NNGP/NTK kernels and its engine.

The layer maps are written once, as plain arithmetic, and used both on NumPy
arrays (the per-input diagonal recursion) and, compiled by numba, on scalars
inside the fused tile kernels.  A fused kernel runs the
whole depth recursion for a small block of pairs held in registers/L1, so no
per-layer n x m temporary is ever created.

Hyperparameter tangents are carried with respect to ``log(weight_variance)``
(index 0) and ``log(bias_variance)`` (index 1).
"""
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from ..engine.driver import BLOCK as _BLOCK
from ..engine.driver import (DiagonalPath, compiled_kernels, paired_row,
                      row_iterations, store_block, store_pair_gradients)
from ..activations.families import (SOURCE_STAMP, coefficient_row, family_dual,
                         family_partials, family_row)
from .._core.fastmath import FASTMATH
from .._core.tiling import mirror_upper
from ..activations.definitions import Activation



# ----------------------------------------------------------------- layer maps
def _input_layer(g, sw2, sb2, std):
    k = sw2 * g + sb2
    return k, (1.0 - std) * k + std * (g + 1.0)


def _input_tangents(g, sw2, sb2, std):
    dk_w = sw2 * g
    dk_b = sb2 + 0.0 * g
    return dk_w, dk_b, (1.0 - std) * dk_w, (1.0 - std) * dk_b


def _hidden_layer(v, vd, t, sw2, sb2, std):
    k = sw2 * v + sb2
    return k, (1.0 - std) * k + std * (v + 1.0) + sw2 * vd * t


def _hidden_tangents(v, vd, v_xx, v_xy, v_yy, vd_xx, vd_xy, vd_yy,
                     dkxx_w, dkxy_w, dkyy_w, dkxx_b, dkxy_b, dkyy_b,
                     t, dt_w, dt_b, sw2, sb2, std):
    dv_w = v_xx * dkxx_w + v_xy * dkxy_w + v_yy * dkyy_w
    dv_b = v_xx * dkxx_b + v_xy * dkxy_b + v_yy * dkyy_b
    dvd_w = vd_xx * dkxx_w + vd_xy * dkxy_w + vd_yy * dkyy_w
    dvd_b = vd_xx * dkxx_b + vd_xy * dkxy_b + vd_yy * dkyy_b
    dk_w = sw2 * dv_w + sw2 * v
    dk_b = sw2 * dv_b + sb2
    dt_w_new = ((1.0 - std) * dk_w + std * dv_w + sw2 * vd * t
                + sw2 * (dvd_w * t + vd * dt_w))
    dt_b_new = ((1.0 - std) * dk_b + std * dv_b
                + sw2 * (dvd_b * t + vd * dt_b))
    return dk_w, dk_b, dt_w_new, dt_b_new


def _layer_with_tangents(p, t, dk_w, dk_b, dt_w, dt_b, dkxx_w, dkyy_w,
                         dkxx_b, dkyy_b, sw2, sb2, std):
    """One hidden layer of a pair with its tangents, from the dual's
    partials ``p`` (see ``_duals``) at the pair's covariance."""
    k, t_new = _hidden_layer_nb(p[0], p[1], t, sw2, sb2, std)
    dk_w, dk_b, dt_w, dt_b = _hidden_tangents_nb(
        p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7],
        dkxx_w, dk_w, dkyy_w, dkxx_b, dk_b, dkyy_b, t, dt_w, dt_b,
        sw2, sb2, std)
    return k, t_new, dk_w, dk_b, dt_w, dt_b


_input_layer_nb = njit(inline="always", fastmath=FASTMATH)(_input_layer)
_input_tangents_nb = njit(inline="always", fastmath=FASTMATH)(_input_tangents)
_hidden_layer_nb = njit(inline="always", fastmath=FASTMATH)(_hidden_layer)
_hidden_tangents_nb = njit(inline="always", fastmath=FASTMATH)(_hidden_tangents)
layer_with_tangents_nb = njit(inline="always",
                              fastmath=FASTMATH)(_layer_with_tangents)


# -------------------------------------------------------------- fused kernels
@njit(inline="always", fastmath=FASTMATH)
def _fused_values(dual, row, g, r0, c0, dx, dy, sx, sy, cx, cy, param, sw2,
                  sb2, std, upper, mirror, out_k, out_t, want_k, want_t,
                  limit):
    # Full-size arrays plus block offsets (not views) keep one compiled
    # signature per dtype whatever the block layout.  With ``mirror`` the
    # transposed entries are written too (symmetric Grams), which costs less
    # than a separate pass.  Returns the number of non-finite values.
    # ``row`` gives the coefficient rows the dual reads: a scalar for closed
    # forms, which keeps their inner loop free of array views.
    n, m = g.shape
    depth = dx.shape[0]
    bad = 0
    for row_pair in prange(row_iterations(n, upper)):
        kb = np.empty(_BLOCK)
        tb = np.empty(_BLOCK)
        for half in range(2 if upper else 1):
            irow = paired_row(row_pair, half, n)
            if irow < 0:
                break
            # blocks stay aligned to _BLOCK: a few pairs below the diagonal
            # are computed twice, which is cheaper than ragged blocks
            j_first = (irow // _BLOCK) * _BLOCK if upper else 0
            for j0 in range(j_first, m, _BLOCK):
                nb = min(_BLOCK, m - j0)
                for jj in range(nb):
                    kb[jj], tb[jj] = _input_layer_nb(g[irow, j0 + jj], sw2,
                                                     sb2, std)
                for layer in range(depth):
                    kxx = dx[layer, r0 + irow]
                    sqx = sx[layer, r0 + irow]
                    ax = row(param, cx, layer, r0 + irow)
                    for jj in range(nb):
                        col = c0 + j0 + jj
                        ay = row(param, cy, layer, col)
                        v, vd = dual(kxx, kb[jj], dy[layer, col],
                                     sqx * sy[layer, col], ax, ay, param)
                        kb[jj], tb[jj] = _hidden_layer_nb(v, vd, tb[jj],
                                                          sw2, sb2, std)
                bad += store_block(kb, tb, nb, r0 + irow, c0 + j0, out_k,
                                   out_t, want_k, want_t, mirror, limit,
                                   r0 + irow if upper else 0)
    return bad


def _make_fused_values(dual, per_input):
    row = coefficient_row(per_input)

    @njit(parallel=True, fastmath=FASTMATH)
    def fused(g, r0, c0, dx, dy, sx, sy, cx, cy, param, sw2, sb2, std, upper,
              mirror, out_k, out_t, want_k, want_t, limit):
        return _fused_values(dual, row, g, r0, c0, dx, dy, sx, sy, cx, cy,
                             param, sw2, sb2, std, upper, mirror, out_k,
                             out_t, want_k, want_t, limit)
    return fused


def make_pair_gradients(partials, row):
    """Values and log-variance tangents of one pair through all layers.

    The one gradient recursion that both the CPU and the CUDA kernels
    compile.  ``dx[layer]`` holds (Kxx, dKxx/dlog sw2, dKxx/dlog sb2) for
    every input; ``x`` and ``y`` index the pair's inputs; ``row(param, cx,
    layer, x)`` gives the coefficient row the partials read (see
    :mod:`skinfinite.activations.families`).
    """
    @njit(inline="always", fastmath=FASTMATH)
    def pair(gij, x, y, dx, dy, sx, sy, cx, cy, param, sw2, sb2, std):
        k, t = _input_layer_nb(gij, sw2, sb2, std)
        dk_w, dk_b, dt_w, dt_b = _input_tangents_nb(gij, sw2, sb2, std)
        for layer in range(dx.shape[0]):
            ax = row(param, cx, layer, x)
            ay = row(param, cy, layer, y)
            p = partials(dx[layer, 0, x], k, dy[layer, 0, y],
                         sx[layer, x] * sy[layer, y], ax, ay, param)
            k, t, dk_w, dk_b, dt_w, dt_b = layer_with_tangents_nb(
                p, t, dk_w, dk_b, dt_w, dt_b, dx[layer, 1, x],
                dy[layer, 1, y], dx[layer, 2, x], dy[layer, 2, y],
                sw2, sb2, std)
        return k, t, dk_w, dk_b, dt_w, dt_b
    return pair


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


def _make_fused_gradients(partials, per_input):
    pair = make_pair_gradients(partials, coefficient_row(per_input))

    @njit(parallel=True, fastmath=FASTMATH)
    def fused(g, r0, c0, dx, dy, sx, sy, cx, cy, param, sw2, sb2, std, upper,
              out_k, out_t, out_dk, out_dt):
        _fused_gradients(pair, g, r0, c0, dx, dy, sx, sy, cx, cy, param, sw2,
                         sb2, std, upper, out_k, out_t, out_dk, out_dt)
    return fused


# a global, not a closure variable of the cached kernels: numba could not
# key their disk cache on a compiled function
_FAMILY_PAIR = make_pair_gradients(family_partials, family_row)


def _cached_kernels(stamp):
    # Generic in the activation family and closing over nothing but the
    # source stamp, so that numba caches them on disk (see _compiled).

    @njit(parallel=True, fastmath=FASTMATH, cache=True)
    def values(g, r0, c0, dx, dy, sx, sy, cx, cy, family, sw2, sb2, std,
               upper, mirror, out_k, out_t, want_k, want_t, limit):
        stamp_ = stamp  # noqa: F841 (keys the disk cache on the sources)
        return _fused_values(family_dual, family_row, g, r0, c0, dx, dy, sx,
                             sy, cx, cy, family, sw2, sb2, std, upper, mirror,
                             out_k, out_t, want_k, want_t, limit)

    @njit(parallel=True, fastmath=FASTMATH, cache=True)
    def gradients(g, r0, c0, dx, dy, sx, sy, cx, cy, family, sw2, sb2, std,
                  upper, out_k, out_t, out_dk, out_dt):
        stamp_ = stamp  # noqa: F841
        _fused_gradients(_FAMILY_PAIR, g, r0, c0, dx, dy, sx, sy, cx, cy,
                         family, sw2, sb2, std, upper, out_k, out_t, out_dk,
                         out_dt)
    return values, gradients


_CACHED = _cached_kernels(SOURCE_STAMP)
_FUSED_CACHE = {}


def _fused_kernels(activation):
    return compiled_kernels(activation, _CACHED, _make_fused_values,
                            _make_fused_gradients, _FUSED_CACHE)


# ------------------------------------------------------------------ the spec
@dataclass(frozen=True)
class FullyConnectedSpec:
    """A fully-connected network, as a recursion for the Gram engine."""

    depth: int
    activation: Activation
    weight_variance: float
    bias_variance: float
    standard: bool = False

    @property
    def std(self):
        return 1.0 if self.standard else 0.0

    def resolve(self, X, Y):
        return self

    def diagonal(self, sq_norms, with_tangents=False):
        return diagonal_recursion(sq_norms, self, with_tangents)

    def kernels(self):
        return _fused_kernels(self.activation)

    def gpu_kernels(self):
        from ..engine.cuda.fully_connected import gpu_kernels
        return gpu_kernels(self.activation)

    def scalars(self):
        return (float(self.activation._param), self.weight_variance,
                self.bias_variance, self.std)

    def describe(self):
        return (f"depth={self.depth}, weight_variance={self.weight_variance}")


def diagonal_recursion(sq_norms, spec, with_tangents=False):
    """Run the recursion of each input against itself (once per input).

    Returns
    -------
    DiagonalPath
        ``stages[l]`` holds ``Kxx`` and its tangents before hidden layer l.
    """
    act = spec.activation
    sw2, sb2, std = spec.weight_variance, spec.bias_variance, spec.std
    k, t = _input_layer(sq_norms, sw2, sb2, std)
    dk_w, dk_b, dt_w, dt_b = _input_tangents(sq_norms, sw2, sb2, std)
    layers = np.empty((spec.depth + 1, 3, sq_norms.shape[0]))
    for layer in range(spec.depth):
        layers[layer] = k, dk_w, dk_b
        if with_tangents:
            p = act.dual_partials(k, k, k)
            dk_w, dk_b, dt_w, dt_b = _hidden_tangents(
                *p, dk_w, dk_w, dk_w, dk_b, dk_b, dk_b, t, dt_w, dt_b,
                sw2, sb2, std)
            v, vd = p[0], p[1]
        else:
            v, vd = act.dual(k, k, k)
        k, t = _hidden_layer(v, vd, t, sw2, sb2, std)
    layers[spec.depth] = k, dk_w, dk_b
    if not (np.all(np.isfinite(k)) and np.all(np.isfinite(t))):
        raise FloatingPointError(
            f"The kernel overflowed through {spec.depth} layers with "
            f"weight_variance={spec.weight_variance}; lower the depth or the "
            "weight variance (for ReLU, 2.0 keeps the scale constant).")
    return DiagonalPath(layers[:spec.depth], k, t, np.stack([dk_w, dk_b]),
                        np.stack([dt_w, dt_b]))





def _make_every_layer(dual, per_input):
    """Symmetric Gram kernel that keeps the outputs of chosen layers.

    The pair loop of the fused values kernel with a store after each kept
    layer (``slot[layer] >= 0``): the same layer maps, one pass for every
    depth.
    """
    @njit(parallel=True, fastmath=FASTMATH)
    def every_layer(g, dx, sx, cx, param, sw2, sb2, std, slot, out_k, out_t,
                    want_t):
        n = g.shape[0]
        none = cx[0, 0]
        for row_pair in prange(row_iterations(n, True)):
            for half in range(2):
                i = paired_row(row_pair, half, n)
                if i < 0:
                    break
                for j in range(i, n):
                    k, t = _input_layer_nb(g[i, j], sw2, sb2, std)
                    for layer in range(dx.shape[0]):
                        ax = cx[layer, i] if per_input else none
                        ay = cx[layer, j] if per_input else none
                        v, vd = dual(dx[layer, i], k, dx[layer, j],
                                     sx[layer, i] * sx[layer, j], ax, ay,
                                     param)
                        k, t = _hidden_layer_nb(v, vd, t, sw2, sb2, std)
                        s = slot[layer]
                        if s >= 0:   # upper triangle; mirrored afterwards
                            out_k[s, i, j] = k
                            if want_t:
                                out_t[s, i, j] = t
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
    from dataclasses import replace

    from ..engine.driver import sq_norms, stage_arrays

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
    key = act._scalar_dual
    if key not in _EVERY_LAYER_CACHE:
        _EVERY_LAYER_CACHE[key] = _make_every_layer(act._scalar_dual,
                                                    not act.closed_form)
    g = X @ X.T
    g /= X.shape[1]
    _EVERY_LAYER_CACHE[key](g, dx, sx, cx, float(act._param),
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
