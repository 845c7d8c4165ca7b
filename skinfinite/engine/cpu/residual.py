"""Compiled CPU tile kernels of the residual recursion and its flow.

The Runge-Kutta stages of :mod:`skinfinite.recursions.residual` over a block
of pairs, and the choice of the flow's steps from a probe block of pairs.
"""
import numpy as np
from numba import njit, prange

from ..._core.compiled import SOURCE_STAMP
from ..._core.fastmath import FASTMATH
from ...activations.families import (coefficient_row, family_dual,
                                     family_partials, family_row)
from ...recursions.fully_connected import _hidden_layer_nb
from ...recursions.residual import _NTK_PARAM, ResidualSpec, make_pair_gradients
from ..driver import gram
from ..registry import register
from ..tiles import (BLOCK, compiled_kernels, paired_row, row_iterations,
                     store_block, store_pair_gradients)

_MAX_STEPS = 1024


# -------------------------------------------------------------- tile kernels
@njit(inline="always", fastmath=FASTMATH)
def _fused_values(dual, coef, g, r0, c0, dx, dy, sx, sy, cx, cy, param, sw2,
                  sb2, A, B, H, n_layers, upper, mirror, out_k, out_t, want_k,
                  want_t, limit):
    # dx rows: per step, stage and branch layer, the input variances;
    # coef(param, cx, idx, row) the coefficient rows the dual reads
    n, m = g.shape
    n_stages = B.shape[0]
    bad = 0
    for row_pair in prange(row_iterations(n, upper)):
        kb = np.empty(BLOCK)
        tb = np.empty(BLOCK)
        kin = np.empty(BLOCK)
        tin = np.empty(BLOCK)
        fk = np.empty((n_stages, BLOCK))
        ft = np.empty((n_stages, BLOCK))
        for half in range(2 if upper else 1):
            irow = paired_row(row_pair, half, n)
            if irow < 0:
                break
            row = r0 + irow
            j_first = (irow // BLOCK) * BLOCK if upper else 0
            for j0 in range(j_first, m, BLOCK):
                nb = min(BLOCK, m - j0)
                for jj in range(nb):
                    kb[jj] = sw2 * g[irow, j0 + jj] + sb2
                    tb[jj] = kb[jj]
                for step in range(H.shape[0]):
                    h = H[step]
                    for s in range(n_stages):
                        # stage inputs first, in separate simple loops, so
                        # that the dual loop below vectorises
                        for jj in range(nb):
                            kin[jj] = kb[jj]
                            tin[jj] = tb[jj]
                        for q in range(s):
                            a = h * A[s, q]
                            if a != 0.0:
                                for jj in range(nb):
                                    kin[jj] += a * fk[q, jj]
                                    tin[jj] += a * ft[q, jj]
                        base = (step * n_stages + s) * n_layers
                        for layer in range(n_layers):
                            idx = base + layer
                            kxx = dx[idx, row]
                            sqx = sx[idx, row]
                            ax = coef(param, cx, idx, row)
                            for jj in range(nb):
                                col = c0 + j0 + jj
                                ay = coef(param, cy, idx, col)
                                v, vd = dual(kxx, kin[jj], dy[idx, col],
                                             sqx * sy[idx, col], ax, ay,
                                             param)
                                kin[jj], tin[jj] = _hidden_layer_nb(
                                    v, vd, tin[jj], sw2, sb2, _NTK_PARAM)
                        for jj in range(nb):
                            fk[s, jj] = kin[jj]
                            ft[s, jj] = tin[jj]
                    for s in range(n_stages):
                        b = h * B[s]
                        if b != 0.0:
                            for jj in range(nb):
                                kb[jj] += b * fk[s, jj]
                                tb[jj] += b * ft[s, jj]
                bad += store_block(kb, tb, nb, row, c0 + j0, out_k, out_t,
                                   want_k, want_t, mirror, limit,
                                   row if upper else 0)
    return bad


def _make_values_kernel(dual, per_input):
    coef = coefficient_row(per_input)

    @njit(parallel=True, fastmath=FASTMATH)
    def fused(g, r0, c0, dx, dy, sx, sy, cx, cy, param, sw2, sb2, A, B, H,
              n_layers, upper, mirror, out_k, out_t, want_k, want_t, limit):
        return _fused_values(dual, coef, g, r0, c0, dx, dy, sx, sy, cx, cy,
                             param, sw2, sb2, A, B, H, n_layers, upper,
                             mirror, out_k, out_t, want_k, want_t, limit)
    return fused


@njit(inline="always", fastmath=FASTMATH)
def _fused_gradients(pair, g, r0, c0, dx, dy, sx, sy, cx, cy, param, sw2, sb2,
                     A, B, H, n_layers, upper, out_k, out_t, out_dk, out_dt):
    n, m = g.shape
    for i in prange(n):
        f = np.empty((6, B.shape[0]))
        y = np.empty(6)
        z = np.empty(6)
        for j in range(i if upper else 0, m):
            row, col = r0 + i, c0 + j
            pair(g[i, j], row, col, dx, dy, sx, sy, cx, cy, param, sw2,
                 sb2, A, B, H, n_layers, y, z, f)
            store_pair_gradients(out_k, out_t, out_dk, out_dt, row, col,
                                 False, y[0], y[1], y[2], y[3], y[4],
                                 y[5])


def _make_gradient_kernel(partials, per_input):
    pair = make_pair_gradients(partials, coefficient_row(per_input))

    @njit(parallel=True, fastmath=FASTMATH)
    def fused(g, r0, c0, dx, dy, sx, sy, cx, cy, param, sw2, sb2, A, B, H,
              n_layers, upper, out_k, out_t, out_dk, out_dt):
        _fused_gradients(pair, g, r0, c0, dx, dy, sx, sy, cx, cy, param, sw2,
                         sb2, A, B, H, n_layers, upper, out_k, out_t, out_dk,
                         out_dt)
    return fused


# a global, not a closure variable of the cached kernels: numba could not
# key their disk cache on a compiled function
_FAMILY_PAIR = make_pair_gradients(family_partials, family_row)


def _cached_kernels(stamp):
    # Generic in the activation family and closing over nothing but the
    # source stamp, so that numba caches them on disk (see
    # skinfinite.activations.families).

    @njit(parallel=True, fastmath=FASTMATH, cache=True)
    def values(g, r0, c0, dx, dy, sx, sy, cx, cy, family, sw2, sb2, A, B, H,
               n_layers, upper, mirror, out_k, out_t, want_k, want_t, limit):
        stamp_ = stamp  # noqa: F841 (keys the disk cache on the sources)
        return _fused_values(family_dual, family_row, g, r0, c0, dx, dy, sx,
                             sy, cx, cy, family, sw2, sb2, A, B, H, n_layers,
                             upper, mirror, out_k, out_t, want_k, want_t,
                             limit)

    @njit(parallel=True, fastmath=FASTMATH, cache=True)
    def gradients(g, r0, c0, dx, dy, sx, sy, cx, cy, family, sw2, sb2, A, B,
                  H, n_layers, upper, out_k, out_t, out_dk, out_dt):
        stamp_ = stamp  # noqa: F841
        _fused_gradients(_FAMILY_PAIR, g, r0, c0, dx, dy, sx, sy, cx, cy,
                         family, sw2, sb2, A, B, H, n_layers, upper, out_k,
                         out_t, out_dk, out_dt)
    return values, gradients


_CACHED = _cached_kernels(SOURCE_STAMP)
_KERNELS = {}


def kernels(activation):
    """The (values, gradients) tile kernels for an activation."""
    return compiled_kernels(activation, _CACHED, _make_values_kernel,
                            _make_gradient_kernel, _KERNELS)


def kernel_arguments(spec, parameter):
    """A :class:`ResidualSpec` as the kernels' arguments after the per-input
    arrays (the CPU and CUDA kernels alike): the Runge-Kutta tableau, the
    steps and the layers of a branch."""
    A, B, _ = spec.tableau()
    return (parameter, spec.weight_variance, spec.bias_variance, A, B,
            spec.steps(), spec.branch_layers)


# ------------------------------------------------------------ the flow's steps
def _probe_inputs(X, Y, size=48):
    """A spread of rows against a spread of columns, never a row with itself.

    Pairs of identical inputs are excluded: the engine takes their values
    from the diagonal path, and at correlation one the arc-cosine duals are
    not smooth, which would make the probe ask for needlessly many steps.
    """
    def rows(A, half):
        idx = np.unique(np.linspace(0, A.shape[0] - 1, size).astype(int))
        return A[idx[half::2]] if idx.size > 1 else A[idx]
    # the same rule for K(X) and K(X, Y): with Y equal to X both get the same
    # probe, hence the same steps and the same values
    return rows(X, 0), rows(X if Y is None else Y, 1)


def choose_steps(spec, X, Y):
    """The flow to run on ``X`` and ``Y``: at infinite depth without steps,
    the number of equal steps doubled until the probe Grams agree."""
    if not spec.infinite or spec.step_sizes is not None:
        return spec
    px, py = _probe_inputs(X, Y)
    n_steps = 2
    previous = None
    while True:
        trial = spec.with_steps(n_steps)
        res = gram(px, py, trial)
        if previous is not None:
            err = max(_relative_change(res[w], previous[w])
                      for w in ("nngp", "ntk"))
            if err <= spec.tolerance:
                return trial
        if n_steps >= _MAX_STEPS:
            raise FloatingPointError(
                f"The kernel flow did not reach the tolerance {spec.tolerance:g}"
                f" with {n_steps} steps ({spec.describe()}).")
        previous = res
        n_steps *= 2


def _relative_change(new, old):
    # identical Grams (all zero for zero inputs without biases) have converged
    change = np.abs(new - old).max()
    return change / np.abs(new).max() if change > 0 else 0.0


register(ResidualSpec, cpu_kernels=kernels, kernel_arguments=kernel_arguments,
         cuda_module="skinfinite.engine.cuda.residual", resolve=choose_steps)
