"""Residual networks as a kernel flow, at finite and infinite depth.

A residual block ``h + s_l (W phi(h) + b)`` moves the kernels by
``s_l^2`` times the right-hand side of the flow

    dK/dt = sw2 E_K[phi phi] + sb2,
    dT/dt = sw2 (E_K[phi' phi'] T + E_K[phi phi]) + sb2,

so a network of finite depth is the forward Euler scheme with steps
``s_l^2`` and the limit of infinite depth with ``s_l^2 = 1/L`` is the ODE on
``t in [0, 1]``.  Both run through one compiled explicit Runge-Kutta kernel
over a step sequence shared by all pairs, so the per-input diagonals (and the
dual coefficients) are computed once per input at every stage time.  At
infinite depth the scheme is Dormand and Prince's eighth-order method with a
number of equal steps doubled until two successive solutions agree to the
requested tolerance on a probe block of pairs.
"""
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from ..activations.families import (SOURCE_STAMP, coefficient_row, family_dual,
                         family_partials, family_row)
from .._core.fastmath import FASTMATH
from ..activations.definitions import Activation
from . import dop853 as _dop853
from ..engine.driver import (BLOCK, DiagonalPath, compiled_kernels, paired_row,
                      row_iterations, store_block, store_pair_gradients)
from .fully_connected import (_hidden_layer, _hidden_layer_nb, _hidden_tangents,
                            layer_with_tangents_nb)

_EULER = (np.zeros((1, 1)), np.ones(1), np.zeros(1))
_DOP853 = (_dop853.A, _dop853.B, _dop853.C)
_MAX_STEPS = 1024


# ----------------------------------------------------------- right-hand side
# A branch of ``L_b`` dense layers maps (K, T) exactly as ``L_b`` hidden
# layers of a fully-connected network in NTK parametrisation do; its output
# is the flow's right-hand side.  The layer maps are shared with that module.
_NTK_PARAM = 0.0


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


def make_pair_gradients(partials, row):
    """The flow of one pair with its log-variance tangents, in ``state``.

    The one gradient recursion that both the CPU and the CUDA kernels
    compile.  ``state`` ends as K, T, dK/dlog sw2, dK/dlog sb2, dT/dlog sw2,
    dT/dlog sb2; ``z`` (6) and ``f`` (6, >= stages) are the caller's scratch
    (the CUDA kernels' are thread-local arrays); ``row(param, cx, li, x)``
    gives the coefficient row the partials read (see
    :mod:`skinfinite.activations.families`).
    """
    @njit(inline="always", fastmath=FASTMATH)
    def pair(gij, x, y, dx, dy, sx, sy, cx, cy, param, sw2, sb2, A, B, H,
             n_layers, state, z, f):
        n_stages = B.shape[0]
        k0 = sw2 * gij + sb2
        state[0], state[1] = k0, k0
        state[2], state[3] = sw2 * gij, sb2
        state[4], state[5] = state[2], state[3]
        for step in range(H.shape[0]):
            h = H[step]
            for s in range(n_stages):
                for c in range(6):
                    z[c] = state[c]
                    for q in range(s):
                        z[c] += h * A[s, q] * f[c, q]
                for layer in range(n_layers):
                    li = (step * n_stages + s) * n_layers + layer
                    ax = row(param, cx, li, x)
                    ay = row(param, cy, li, y)
                    p = partials(dx[li, 0, x], z[0], dy[li, 0, y],
                                 sx[li, x] * sy[li, y], ax, ay, param)
                    (z[0], z[1], z[2], z[3], z[4],
                     z[5]) = layer_with_tangents_nb(
                        p, z[1], z[2], z[3], z[4], z[5], dx[li, 1, x],
                        dy[li, 1, y], dx[li, 2, x], dy[li, 2, y], sw2, sb2,
                        _NTK_PARAM)
                for c in range(6):
                    f[c, s] = z[c]
            for c in range(6):
                for s in range(n_stages):
                    state[c] += h * B[s] * f[c, s]
    return pair


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
    # source stamp, so that numba caches them on disk (see _compiled).

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


def _kernels(activation):
    return compiled_kernels(activation, _CACHED, _make_values_kernel,
                            _make_gradient_kernel, _KERNELS)


# ------------------------------------------------------------------ diagonal
def _diagonal_branch(act, state, sw2, sb2, n_layers, with_tangents, record):
    """The branch applied to each input's (K, T[, tangents]).

    ``record`` receives, layer by layer, the rows (K, dK/dlog sw2,
    dK/dlog sb2) at which the pairs will evaluate their duals.
    """
    z = state.copy()
    for layer in range(n_layers):
        record(layer, z)
        k, t = z[0], z[1]
        if with_tangents:
            p = act.dual_partials(k, k, k)
            dk_w, dk_b, dt_w, dt_b = z[2:]
            z[2:] = _hidden_tangents(*p, dk_w, dk_w, dk_w, dk_b, dk_b, dk_b,
                                     t, dt_w, dt_b, sw2, sb2, _NTK_PARAM)
            v, vd = p[0], p[1]
        else:
            v, vd = act.dual(k, k, k)
        z[0], z[1] = _hidden_layer(v, vd, t, sw2, sb2, _NTK_PARAM)
    return z


def _initial_state(sq_norms, sw2, sb2):
    k0 = sw2 * sq_norms + sb2
    return np.stack([k0, k0, sw2 * sq_norms, sb2 + 0 * k0, sw2 * sq_norms,
                     sb2 + 0 * k0])


# --------------------------------------------------------------- recursion
@dataclass(frozen=True)
class ResidualSpec:
    """A residual network (finite depth) or its flow (``depth=inf``).

    ``step_sizes`` are the squared branch scales at finite depth and the
    equal steps of the eighth-order scheme at infinite depth (fixed by
    :meth:`resolve`).
    """

    depth: float
    activation: Activation
    weight_variance: float
    bias_variance: float
    step_sizes: tuple = None
    tolerance: float = 1e-8
    branch_layers: int = 1

    @property
    def infinite(self):
        return np.isinf(self.depth)

    def tableau(self):
        return _DOP853 if self.infinite else _EULER

    def steps(self):
        return np.asarray(self.step_sizes, dtype=np.float64)

    def resolve(self, X, Y):
        if not self.infinite or self.step_sizes is not None:
            return self
        return _choose_steps(self, X, Y)

    def diagonal(self, sq_norms, with_tangents=False):
        return _diagonal_rk(self, sq_norms, with_tangents)

    def kernels(self):
        return _kernels(self.activation)

    def gpu_kernels(self):
        from ..engine.cuda.residual import gpu_kernels
        return gpu_kernels(self.activation)

    def scalars(self):
        A, B, _ = self.tableau()
        return (float(self.activation._param), self.weight_variance,
                self.bias_variance, A, B, self.steps(), self.branch_layers)

    def describe(self):
        return (f"residual depth={self.depth}, "
                f"weight_variance={self.weight_variance}")


def _diagonal_rk(spec, sq_norms, with_tangents):
    """The per-input flow with the pairs' own Runge-Kutta steps.

    Using the same scheme as the pairs (not a more accurate solver) keeps a
    pair of identical inputs exactly on its diagonal, where the arc-cosine
    duals are not smooth.
    """
    A, B, _ = spec.tableau()
    n_stages, n_layers = B.shape[0], spec.branch_layers
    rows = slice(None) if with_tangents else slice(0, 2)
    state = _initial_state(sq_norms, spec.weight_variance, spec.bias_variance)
    stages = np.empty((len(spec.step_sizes) * n_stages * n_layers, 3,
                       sq_norms.shape[0]))
    slopes = np.empty((n_stages,) + state[rows].shape)
    for step, h in enumerate(spec.step_sizes):
        for s in range(n_stages):
            z = state.copy()
            for q in range(s):
                if A[s, q] != 0.0:
                    z[rows] += h * A[s, q] * slopes[q]
            base = (step * n_stages + s) * n_layers

            def record(layer, values, base=base):
                stages[base + layer] = values[[0, 2, 3]]

            slopes[s] = _diagonal_branch(
                spec.activation, z, spec.weight_variance, spec.bias_variance,
                n_layers, with_tangents, record)[rows]
        for s in range(n_stages):
            state[rows] += h * B[s] * slopes[s]
    return _path(spec, stages, state)


def _path(spec, stages, state):
    if not np.all(np.isfinite(state[:2])):
        raise FloatingPointError(
            f"The residual kernel overflowed ({spec.describe()}); lower the "
            "weight variance.")
    return DiagonalPath(stages, state[0].copy(), state[1].copy(),
                        state[2:4].copy(), state[4:6].copy())


def _probe_inputs(X, Y, size=48):
    """A spread of rows against a spread of columns, never a row with itself.

    Pairs of identical inputs are excluded: the engine takes their values
    from the diagonal path, and at correlation one the arc-cosine duals are
    not smooth, which would make the probe ask for needlessly many steps.
    """
    def spread(n, offset):
        return np.unique(np.linspace(offset, n - 1, size).astype(int))
    if Y is None:
        idx = spread(X.shape[0], 0)
        return X[idx[0::2]], X[idx[1::2]] if idx.size > 1 else X[idx]
    return X[spread(X.shape[0], 0)], Y[spread(Y.shape[0], 0)]


def _choose_steps(spec, X, Y):
    """Double the number of equal steps until the probe Grams agree."""
    from ..engine.driver import gram
    px, py = _probe_inputs(X, Y)
    n_steps = 2
    previous = None
    while True:
        trial = _with_steps(spec, n_steps)
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


def _with_steps(spec, n_steps):
    return ResidualSpec(spec.depth, spec.activation, spec.weight_variance,
                        spec.bias_variance, (1.0 / n_steps,) * n_steps,
                        spec.tolerance, spec.branch_layers)
