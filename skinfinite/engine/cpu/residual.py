"""Compiled CPU tile kernels of the residual recursion and its flow.

The flow of :mod:`skinfinite.recursions.residual` (its branches run by the
Runge-Kutta scheme of :mod:`skinfinite.recursions.runge_kutta`) over blocks
of pairs, and the choice of the flow's steps from a probe block of pairs.
"""
import numpy as np
from numba import njit, prange

from ..._core.compiled import SOURCE_STAMP
from ..._core.fastmath import FASTMATH
from ...activations.families import (coefficient_row, family_dual,
                                     family_partials, family_row)
from ...recursions.residual import (ResidualSpec, gradient_branch,
                                    input_state, values_branch)
from ...recursions.runge_kutta import compiled_flow
from ..driver import gram
from ..registry import register
from ..tiles import (BLOCK, compiled_kernels, paired_row, row_iterations,
                     store_block, store_pair_gradients)

_MAX_STEPS = 1024


# -------------------------------------------------------------- tile kernels
@njit(inline="always", fastmath=FASTMATH)
def _fused_values(flow, g, r0, c0, dx, dy, sx, sy, cx, cy, param, sw2, sb2,
                  A, B, H, n_layers, upper, mirror, out_k, out_t, want_k,
                  want_t, limit):
    # ``flow`` is the values branch's compiled flow, run over a block of
    # columns at a time (the lanes), so that the dual loop vectorises
    n, m = g.shape
    bad = 0
    for row_pair in prange(row_iterations(n, upper)):
        y = np.empty((2, BLOCK))
        z = np.empty((2, BLOCK))
        f = np.empty((B.shape[0], 2, BLOCK))
        for half in range(2 if upper else 1):
            irow = paired_row(row_pair, half, n)
            if irow < 0:
                break
            row = r0 + irow
            j_first = (irow // BLOCK) * BLOCK if upper else 0
            for j0 in range(j_first, m, BLOCK):
                nb = min(BLOCK, m - j0)
                for jj in range(nb):
                    input_state(y, jj, g[irow, j0 + jj], sw2, sb2)
                flow(y, z, f, A, B, H, nb, (dx, dy, sx, sy, cx, cy, param,
                                            sw2, sb2, n_layers, row, c0 + j0))
                bad += store_block(y[0], y[1], nb, row, c0 + j0, out_k,
                                   out_t, want_k, want_t, mirror, limit,
                                   row if upper else 0)
    return bad


def _make_values_kernel(dual, per_input):
    flow = compiled_flow(values_branch(dual, coefficient_row(per_input)))

    @njit(parallel=True, fastmath=FASTMATH)
    def fused(g, r0, c0, dx, dy, sx, sy, cx, cy, param, sw2, sb2, A, B, H,
              n_layers, upper, mirror, out_k, out_t, want_k, want_t, limit):
        return _fused_values(flow, g, r0, c0, dx, dy, sx, sy, cx, cy, param,
                             sw2, sb2, A, B, H, n_layers, upper, mirror,
                             out_k, out_t, want_k, want_t, limit)
    return fused


@njit(inline="always", fastmath=FASTMATH)
def _fused_gradients(flow, g, r0, c0, dx, dy, sx, sy, cx, cy, param, sw2,
                     sb2, A, B, H, n_layers, upper, out_k, out_t, out_dk,
                     out_dt):
    # one pair at a time: the gradient branch's flow with a single lane
    n, m = g.shape
    for i in prange(n):
        y = np.empty((6, 1))
        z = np.empty((6, 1))
        f = np.empty((B.shape[0], 6, 1))
        for j in range(i if upper else 0, m):
            row, col = r0 + i, c0 + j
            input_state(y, 0, g[i, j], sw2, sb2)
            flow(y, z, f, A, B, H, 1, (dx, dy, sx, sy, cx, cy, param, sw2,
                                       sb2, n_layers, row, col))
            store_pair_gradients(out_k, out_t, out_dk, out_dt, row, col,
                                 False, y[0, 0], y[1, 0], y[2, 0], y[3, 0],
                                 y[4, 0], y[5, 0])


def _make_gradient_kernel(partials, per_input):
    flow = compiled_flow(gradient_branch(partials,
                                         coefficient_row(per_input)))

    @njit(parallel=True, fastmath=FASTMATH)
    def fused(g, r0, c0, dx, dy, sx, sy, cx, cy, param, sw2, sb2, A, B, H,
              n_layers, upper, out_k, out_t, out_dk, out_dt):
        _fused_gradients(flow, g, r0, c0, dx, dy, sx, sy, cx, cy, param, sw2,
                         sb2, A, B, H, n_layers, upper, out_k, out_t, out_dk,
                         out_dt)
    return fused


# globals, not closure variables of the cached kernels: numba could not key
# their disk cache on a compiled function
_FAMILY_VALUES = compiled_flow(values_branch(family_dual, family_row))
_FAMILY_GRADIENTS = compiled_flow(gradient_branch(family_partials,
                                                  family_row))


def _cached_kernels(stamp):
    # Generic in the activation family and closing over nothing but the
    # source stamp, so that numba caches them on disk (see
    # skinfinite.activations.families).

    @njit(parallel=True, fastmath=FASTMATH, cache=True)
    def values(g, r0, c0, dx, dy, sx, sy, cx, cy, family, sw2, sb2, A, B, H,
               n_layers, upper, mirror, out_k, out_t, want_k, want_t, limit):
        stamp_ = stamp  # noqa: F841 (keys the disk cache on the sources)
        return _fused_values(_FAMILY_VALUES, g, r0, c0, dx, dy, sx, sy, cx,
                             cy, family, sw2, sb2, A, B, H, n_layers, upper,
                             mirror, out_k, out_t, want_k, want_t, limit)

    @njit(parallel=True, fastmath=FASTMATH, cache=True)
    def gradients(g, r0, c0, dx, dy, sx, sy, cx, cy, family, sw2, sb2, A, B,
                  H, n_layers, upper, out_k, out_t, out_dk, out_dt):
        stamp_ = stamp  # noqa: F841
        _fused_gradients(_FAMILY_GRADIENTS, g, r0, c0, dx, dy, sx, sy, cx,
                         cy, family, sw2, sb2, A, B, H, n_layers, upper,
                         out_k, out_t, out_dk, out_dt)
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
