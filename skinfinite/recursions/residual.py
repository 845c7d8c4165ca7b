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
requested tolerance on a probe block of pairs (chosen by the engine,
:mod:`skinfinite.engine.cpu.residual`, whose tile kernels run the stages
below).
"""
from dataclasses import dataclass, replace

import numpy as np
from numba import njit

from .._core.fastmath import FASTMATH
from ..activations.definitions import Activation
from . import dop853 as _dop853
from .fully_connected import (_hidden_layer, _hidden_tangents,
                              layer_with_tangents_nb)
from .path import DiagonalPath

_EULER = (np.zeros((1, 1)), np.ones(1), np.zeros(1))
_DOP853 = (_dop853.A, _dop853.B, _dop853.C)


# ----------------------------------------------------------- right-hand side
# A branch of ``L_b`` dense layers maps (K, T) exactly as ``L_b`` hidden
# layers of a fully-connected network in NTK parametrisation do; its output
# is the flow's right-hand side.  The layer maps are shared with that module.
_NTK_PARAM = 0.0


# ------------------------------------------------------- one pair, compiled
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
    equal steps of the eighth-order scheme at infinite depth (chosen by the
    engine from the data when None, see
    :func:`skinfinite.engine.cpu.residual.choose_steps`).
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

    def diagonal(self, sq_norms, with_tangents=False):
        return _diagonal_rk(self, sq_norms, with_tangents)

    def with_steps(self, n_steps):
        """The flow with ``n_steps`` equal steps."""
        return replace(self, step_sizes=(1.0 / n_steps,) * n_steps)

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
