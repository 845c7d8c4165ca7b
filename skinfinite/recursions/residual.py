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
:mod:`skinfinite.engine.cpu.residual`).  The scheme is written once, in
:mod:`skinfinite.recursions.runge_kutta`; this module gives it the branches
(the right-hand side) that the CPU and CUDA kernels compile and the NumPy
branch of the per-input path.
"""
from dataclasses import dataclass, replace

import numpy as np
from numba import njit

from .._core.fastmath import FASTMATH
from ..activations.definitions import Activation
from . import dop853 as _dop853
from .fully_connected import (_hidden_layer, _hidden_layer_nb,
                              _hidden_tangents, _input_layer,
                              _input_layer_nb, _input_tangents,
                              _input_tangents_nb, layer_with_tangents_nb)
from .path import DiagonalPath
from .runge_kutta import make_flow

_EULER = (np.zeros((1, 1)), np.ones(1), np.zeros(1))
_DOP853 = (_dop853.A, _dop853.B, _dop853.C)


# ----------------------------------------------------------- right-hand side
# A branch of ``L_b`` dense layers maps (K, T) exactly as ``L_b`` hidden
# layers of a fully-connected network in NTK parametrisation do; its output
# is the flow's right-hand side.  The layer maps are shared with that module.
_NTK_PARAM = 0.0


# ----------------------------------------------------- the pairs' branches
# The branch maps the stage input of ``n_lanes`` pairs, the rows ``z[:, j]``
# of pairs (x, y0 + j), to the right-hand side; the compiled flow of
# :mod:`skinfinite.recursions.runge_kutta` runs it at every stage, in the CPU
# tile kernels over a block of columns and in the CUDA kernels for one pair.
# ``args`` are (dx, dy, sx, sy, cx, cy, param, sw2, sb2, n_layers, x, y0):
# the per-input rows of every (step, stage, layer) where a dual is
# evaluated, the activation's parameter, the variances, the layers of a
# branch and the pairs' indices; ``row(param, cx, li, x)`` gives the
# coefficient row a dual reads (see :mod:`skinfinite.activations.families`).
def values_branch(dual, row):
    """The branch on (K, T) of each pair, through the activation's dual."""
    @njit(inline="always", fastmath=FASTMATH)
    def branch(z, stage, n_lanes, args):
        dx, dy, sx, sy, cx, cy, param, sw2, sb2, n_layers, x, y0 = args
        for layer in range(n_layers):
            li = stage * n_layers + layer
            kxx = dx[li, x]
            sqx = sx[li, x]
            ax = row(param, cx, li, x)
            for j in range(n_lanes):
                y = y0 + j
                ay = row(param, cy, li, y)
                v, vd = dual(kxx, z[0, j], dy[li, y], sqx * sy[li, y], ax,
                             ay, param)
                z[0, j], z[1, j] = _hidden_layer_nb(v, vd, z[1, j], sw2, sb2,
                                                    _NTK_PARAM)
    return branch


def gradient_branch(partials, row):
    """The branch on (K, T) of each pair with their log-variance tangents
    (rows K, T, dK/dlog sw2, dK/dlog sb2, dT/dlog sw2, dT/dlog sb2), through
    the dual's partials; ``dx[li]`` holds Kxx and its two tangents."""
    @njit(inline="always", fastmath=FASTMATH)
    def branch(z, stage, n_lanes, args):
        dx, dy, sx, sy, cx, cy, param, sw2, sb2, n_layers, x, y0 = args
        for layer in range(n_layers):
            li = stage * n_layers + layer
            ax = row(param, cx, li, x)
            for j in range(n_lanes):
                y = y0 + j
                ay = row(param, cy, li, y)
                p = partials(dx[li, 0, x], z[0, j], dy[li, 0, y],
                             sx[li, x] * sy[li, y], ax, ay, param)
                (z[0, j], z[1, j], z[2, j], z[3, j], z[4, j],
                 z[5, j]) = layer_with_tangents_nb(
                    p, z[1, j], z[2, j], z[3, j], z[4, j], z[5, j],
                    dx[li, 1, x], dy[li, 1, y], dx[li, 2, x], dy[li, 2, y],
                    sw2, sb2, _NTK_PARAM)
    return branch


def _input_state(y, j, g, sw2, sb2):
    """The flow's initial state in lane ``j`` from the pair's inner product
    ``g``: the input layer of a fully-connected network, with its tangents
    when ``y`` has rows for them."""
    y[0, j], y[1, j] = _input_layer_nb(g, sw2, sb2, _NTK_PARAM)
    if y.shape[0] > 2:
        y[2, j], y[3, j], y[4, j], y[5, j] = _input_tangents_nb(
            g, sw2, sb2, _NTK_PARAM)


input_state = njit(inline="always", fastmath=FASTMATH)(_input_state)


# ------------------------------------------------------------------ diagonal
def _diagonal_branch(act, sw2, sb2, n_layers, with_tangents, stages, fixed):
    """The branch applied to each input's (K, T[, tangents]), on NumPy
    arrays.

    It records in ``stages``, layer by layer, the rows (K, dK/dlog sw2,
    dK/dlog sb2) at which the pairs will evaluate their duals; without
    tangents the last two are ``fixed``.
    """
    def branch(z, stage, n_lanes, args):
        for layer in range(n_layers):
            li = stage * n_layers + layer
            stages[li, 0] = z[0]
            stages[li, 1:] = z[2:4] if with_tangents else fixed
            k, t = z[0], z[1]
            if with_tangents:
                p = act.dual_partials(k, k, k)
                dk_w, dk_b, dt_w, dt_b = z[2:]
                z[2:] = _hidden_tangents(*p, dk_w, dk_w, dk_w, dk_b, dk_b,
                                         dk_b, t, dt_w, dt_b, sw2, sb2,
                                         _NTK_PARAM)
                v, vd = p[0], p[1]
            else:
                v, vd = act.dual(k, k, k)
            z[0], z[1] = _hidden_layer(v, vd, t, sw2, sb2, _NTK_PARAM)
    return branch


def _initial_state(sq_norms, sw2, sb2):
    k, t = _input_layer(sq_norms, sw2, sb2, _NTK_PARAM)
    return np.stack(np.broadcast_arrays(
        k, t, *_input_tangents(sq_norms, sw2, sb2, _NTK_PARAM)))


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
    duals are not smooth.  The stage arithmetic is the compiled one of the
    tile kernels; the branch runs on NumPy arrays with the activation's
    NumPy duals.
    """
    A, B, _ = spec.tableau()
    n_stages, n_layers = B.shape[0], spec.branch_layers
    state = _initial_state(sq_norms, spec.weight_variance, spec.bias_variance)
    # without tangents only (K, T) flow; the tangent rows keep their start
    y = state if with_tangents else state[:2]
    stages = np.empty((len(spec.step_sizes) * n_stages * n_layers, 3,
                       sq_norms.shape[0]))
    branch = _diagonal_branch(spec.activation, spec.weight_variance,
                              spec.bias_variance, n_layers, with_tangents,
                              stages, state[2:4].copy())
    make_flow(branch)(y, np.empty_like(y), np.empty((n_stages,) + y.shape),
                      A, B, spec.steps(), y.shape[1], None)
    return _path(spec, stages, state)


def _path(spec, stages, state):
    if not np.all(np.isfinite(state[:2])):
        raise FloatingPointError(
            f"The residual kernel overflowed ({spec.describe()}); lower the "
            "weight variance.")
    return DiagonalPath(stages, state[0].copy(), state[1].copy(),
                        state[2:4].copy(), state[4:6].copy())
