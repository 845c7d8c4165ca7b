"""The residual flow in every dialect.

The Runge-Kutta scheme of :mod:`skinfinite.recursions.runge_kutta` runs the
residual branch in the CPU tile kernels (a block of pairs per call), in the
CUDA kernels (one pair per thread, here in numba's CUDA simulator) and, as
Python, on NumPy arrays.  All three must agree to rounding, values and
log-variance tangents alike, and the NumPy flow must solve the ODE that
SciPy's own DOP853 solves.
"""
import numpy as np
import pytest
from scipy.integrate import solve_ivp

from skinfinite._core.backend import cuda_simulator_enabled, simulated_gpu
from skinfinite.activations.definitions import get_activation
from skinfinite.engine.driver import gram
from skinfinite.engine.tiles import inner_products, sq_norms
from skinfinite.recursions.fully_connected import (_hidden_tangents,
                                                   hidden_layer, input_layer)
from skinfinite.recursions.residual import ResidualSpec
from skinfinite.recursions.runge_kutta import STEPS, make_flow

try:
    from numba import cuda
except ImportError:  # numba-cuda is missing
    cuda = None

SW2, SB2 = 1.3, 0.2


def _spec(activation, depth, branch_layers, n_steps=4):
    spec = ResidualSpec(depth, get_activation(activation), SW2, SB2,
                        branch_layers=branch_layers)
    if spec.infinite:
        return spec.with_steps(n_steps)
    return ResidualSpec(depth, spec.activation, SW2, SB2,
                        step_sizes=(1.0 / depth,) * depth,
                        branch_layers=branch_layers)


def _numpy_flow(spec, X, Y):
    """Every pair's flow as one NumPy lane, through the Python stage
    arithmetic, the activation's NumPy duals and partials and the
    fully-connected layer maps; the inputs' own flows from the recursion's
    NumPy diagonal."""
    act, n_layers = spec.activation, spec.branch_layers
    px = spec.diagonal(sq_norms(X), True)
    py = spec.diagonal(sq_norms(Y), True)
    n, m = X.shape[0], Y.shape[0]
    rows, cols = np.repeat(np.arange(n), m), np.tile(np.arange(m), n)
    # the engine's sums, so that equal inputs start on their diagonal
    g = inner_products(X, Y).ravel()
    k, t = input_layer(g, SW2, SB2, 0.0)
    y = np.stack([k, t, SW2 * g, SB2 + 0 * g, SW2 * g, SB2 + 0 * g])

    def branch(z, stage, n_lanes, args):
        for layer in range(n_layers):
            li = stage * n_layers + layer
            kxx, dxx_w, dxx_b = px.stages[li][:, rows]
            kyy, dyy_w, dyy_b = py.stages[li][:, cols]
            p = act.dual_partials(kxx, z[0], kyy)
            z[2:] = _hidden_tangents(*p, dxx_w, z[2], dyy_w, dxx_b, z[3],
                                     dyy_b, z[1], z[4], z[5], SW2, SB2, 0.0)
            z[0], z[1] = hidden_layer(p[0], p[1], z[1], SW2, SB2, 0.0)

    A, B, _ = spec.tableau()
    make_flow(branch, STEPS)(y, np.empty_like(y),
                             np.empty((B.shape[0],) + y.shape), A, B,
                             spec.steps(), y.shape[1], None)
    y = y.reshape(6, n, m)
    return {"nngp": y[0], "ntk": y[1],
            "nngp_gradient": np.moveaxis(y[2:4], 0, -1),
            "ntk_gradient": np.moveaxis(y[4:6], 0, -1)}


def _close(got, want, what):
    scale = np.max(np.abs(want))
    err = np.max(np.abs(got - want)) / scale
    assert err < 1e-12, f"{what}: relative error {err:.3g}"


def _inputs():
    rng = np.random.default_rng(11)
    # a single CUDA block: the simulator runs each thread in Python
    X, Y = rng.normal(size=(4, 3)), rng.normal(size=(3, 3))
    Y[1] = X[2]    # a pair on the diagonal, whose value the engine copies
    return X, Y


@pytest.mark.parametrize("activation", ["relu", "erf", "tanh", "gelu"])
@pytest.mark.parametrize("depth, branch_layers", [(np.inf, 1), (np.inf, 2),
                                                  (3, 1)])
def test_residual_flow_in_every_dialect(activation, depth, branch_layers):
    spec = _spec(activation, depth, branch_layers)
    X, Y = _inputs()
    want = _numpy_flow(spec, X, Y)
    what = f"{activation}, depth={depth}, branch_layers={branch_layers}"
    got = {"cpu": gram(X, Y, spec, eval_gradient=True)}
    if cuda_simulator_enabled() and cuda is not None:
        with simulated_gpu() as backend:
            got["cuda"] = gram(X, Y, spec, eval_gradient=True,
                               backend=backend)
    for dialect, result in got.items():
        for name, value in want.items():
            _close(result[name], value, f"{what}: {name} on {dialect}")
    # the symmetric Gram (half the pairs, mirrored) and its diagonal
    want = _numpy_flow(spec, X, X)
    got = gram(X, None, spec, eval_gradient=True)
    for name, value in want.items():
        _close(got[name], value, f"{what}: symmetric {name}")


def test_numpy_flow_solves_the_ode():
    """Eight DOP853 steps against SciPy's adaptive DOP853 on the ODE of a
    pair and its two inputs (one layer per branch)."""
    spec = _spec("erf", np.inf, 1, n_steps=8)
    act = spec.activation
    X, Y = _inputs()
    want = _numpy_flow(spec, X, Y)

    def rhs(_, u):
        kxx, kxy, kyy, t = u
        v, vd = act.dual(kxx, kxy, kyy)
        k = SW2 * v + SB2
        return [SW2 * act.dual(kxx, kxx, kxx)[0] + SB2, k,
                SW2 * act.dual(kyy, kyy, kyy)[0] + SB2, k + SW2 * vd * t]

    d = X.shape[1]
    for i, j in [(0, 0), (1, 2), (3, 1)]:
        gxx, gxy, gyy = X[i] @ X[i] / d, X[i] @ Y[j] / d, Y[j] @ Y[j] / d
        start = [SW2 * gxx + SB2, SW2 * gxy + SB2, SW2 * gyy + SB2,
                 SW2 * gxy + SB2]
        sol = solve_ivp(rhs, (0.0, 1.0), start, method="DOP853", rtol=1e-13,
                        atol=1e-13)
        np.testing.assert_allclose(
            [want["nngp"][i, j], want["ntk"][i, j]], sol.y[[1, 3], -1],
            rtol=1e-9)
