import math

import numpy as np
import pytest

from skinfinite.activations.definitions import (LeakyReLU, QuadratureActivation,
                                    get_activation)
from skinfinite.theory.criticality import (CriticalPoint, chi_parallel,
                                    chi_perpendicular, correlation_map,
                                    critical_variances, edge_of_chaos,
                                    fixed_point)
from skinfinite.kernels import NNGP

# (activation, C_b, C_W, K*, relative tolerance); K* = nan: not unique.
KNOWN = [
    ("relu", 0.0, 2.0, np.nan, 1e-12),
    (LeakyReLU(0.1), 0.0, 2.0 / 1.01, np.nan, 1e-12),
    ("abs", 0.0, 1.0, np.nan, 1e-12),
    ("identity", 0.0, 1.0, np.nan, 1e-12),
    ("tanh", 0.0, 1.0, 0.0, 1e-12),
    ("erf", 0.0, math.pi / 4, 0.0, 1e-12),
    ("sin", 0.0, 1.0, 0.0, 1e-12),
    ("gelu", 0.173, 1.983, 3.562, 1e-3),
    ("swish", 0.555, 1.988, 14.32, 1e-3),
]


def _iterated_variance(activation, weight_variance, bias_variance, initial,
                       depth):
    """Diagonal of a depth-``depth`` NNGP for an input of first-layer
    variance ``initial``."""
    x = np.array([[math.sqrt((initial - bias_variance) / weight_variance)]])
    kernel = NNGP(depth=depth, activation=activation,
                  weight_variance=weight_variance, bias_variance=bias_variance)
    return kernel.diag(x)[0]


@pytest.mark.parametrize("activation, cb, cw, k_star, rtol", KNOWN,
                         ids=[str(k[0]) for k in KNOWN])
def test_known_critical_points(activation, cb, cw, k_star, rtol):
    point = critical_variances(activation)
    assert isinstance(point, CriticalPoint)
    assert point.bias_variance == pytest.approx(cb, rel=rtol, abs=1e-12)
    assert point.weight_variance == pytest.approx(cw, rel=rtol)
    if np.isnan(k_star):
        assert np.isnan(point.fixed_point)
        assert point.universality_class == "scale-invariant"
    else:
        assert point.fixed_point == pytest.approx(k_star, rel=rtol, abs=1e-12)


@pytest.mark.parametrize("activation", ["tanh", "erf", "gelu", "swish"])
def test_susceptibilities_are_one_at_the_critical_point(activation):
    cb, cw, k_star, _ = critical_variances(activation)
    assert chi_parallel(activation, k_star, cw) == pytest.approx(1, abs=1e-10)
    assert chi_perpendicular(activation, k_star, cw) == pytest.approx(
        1, abs=1e-10)
    # K* is a fixed point of the variance map (checked with the dual itself)
    V = get_activation(activation).dual(k_star, k_star, k_star)[0]
    assert cb + cw * V == pytest.approx(k_star, rel=1e-6, abs=1e-12)


def test_gelu_fixed_point_is_exact():
    # <phi phi''>_K = 0 has the root (3 + sqrt(17)) / 2 for GELU
    k_star = critical_variances("gelu").fixed_point
    assert k_star == pytest.approx((3 + math.sqrt(17)) / 2, rel=1e-12)


def test_universality_classes():
    assert critical_variances("tanh").universality_class == "K*=0"
    assert critical_variances("gelu").universality_class == "K*>0"


def test_callables():
    act = QuadratureActivation(lambda x: np.where(x > 0, x, 0.3 * x))
    point = critical_variances(act)
    assert point.universality_class == "scale-invariant"
    assert point.weight_variance == pytest.approx(2 / 1.09)
    # hard tanh is linear near zero: K* = 0 with C_W = 1
    hard_tanh = QuadratureActivation(lambda x: np.clip(x, -1, 1),
                                     lambda x: (np.abs(x) < 1) * 1.0)
    assert critical_variances(hard_tanh)[:3] == (0.0, 1.0, 0.0)


@pytest.mark.parametrize("activation", ["softplus", "sigmoid", "cos"])
def test_no_critical_point_raises(activation):
    message = f"{activation} has no critical point"
    with pytest.raises(ValueError, match=message):
        critical_variances(activation)


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu"])
@pytest.mark.parametrize("K", [0.5, 2.0])
def test_susceptibilities_match_monte_carlo(activation, K):
    act = get_activation(activation)
    z = math.sqrt(K) * np.random.default_rng(0).standard_normal(1_000_000)
    h = 1e-4
    phi, d1 = act(z), act.derivative(z)
    d2 = (act.derivative(z + h) - act.derivative(z - h)) / (2 * h)
    cw = 1.7
    cases = ((chi_perpendicular(act, K, cw), cw * d1 ** 2),
             (chi_parallel(act, K, cw), cw * (d1 ** 2 + phi * d2)))
    for got, samples in cases:
        error = samples.std() / math.sqrt(samples.size)
        assert abs(got - samples.mean()) < 5 * error


def test_susceptibilities_are_vectorised():
    K = np.array([[0.0, 0.5], [1.0, 4.0]])
    for chi in (chi_parallel, chi_perpendicular):
        out = chi("gelu", K, 1.5)
        assert out.shape == K.shape
        assert out[1, 1] == pytest.approx(chi("gelu", 4.0, 1.5), rel=1e-14)
    # K -> 0 limits: C_W phi'(0)^2 for both (phi(0) = 0)
    assert chi_parallel("gelu", 0.0, 4.0) == pytest.approx(1.0, rel=1e-8)
    assert chi_perpendicular("gelu", 0.0, 4.0) == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("activation, cw, cb", [
    ("tanh", 2.0, 0.1), ("relu", 1.5, 0.1), ("erf", 3.0, 0.1),
    ("gelu", 1.5, 0.5), ("swish", 1.8, 0.3), ("sigmoid", 1.0, 0.2),
    ("softplus", 1.0, 0.1), ("cos", 1.0, 0.1)])
def test_fixed_point_satisfies_the_recursion(activation, cw, cb):
    k_star = fixed_point(activation, cw, cb)
    V = get_activation(activation).dual(k_star, k_star, k_star)[0]
    assert cb + cw * V == pytest.approx(k_star, rel=1e-9)


@pytest.mark.parametrize("activation, cw, cb", [
    ("tanh", 2.0, 0.1), ("relu", 1.5, 0.1), ("erf", 3.0, 0.1),
    ("gelu", 1.5, 0.5), ("sin", 2.0, 0.05), ("tanh", 0.5, 0.0)])
@pytest.mark.parametrize("initial_factor", [0.4, 4.0])
def test_nngp_depth_recursion_converges_to_the_fixed_point(
        activation, cw, cb, initial_factor):
    k_star = fixed_point(activation, cw, cb)
    initial = cb + initial_factor * max(k_star, 0.25)
    deep = _iterated_variance(activation, cw, cb, initial, depth=100)
    assert deep == pytest.approx(k_star, rel=1e-8, abs=1e-12)
    assert fixed_point(activation, cw, cb, initial=initial) == pytest.approx(
        k_star, rel=1e-12, abs=1e-15)


def test_fixed_point_cases():
    assert fixed_point("relu", 1.5, 0.1) == pytest.approx(0.4, rel=1e-14)
    # tanh: K = 0 attracts for C_W <= 1 and repels for C_W > 1
    assert fixed_point("tanh", 1.0, 0.0) == 0.0
    k = fixed_point("tanh", 2.0, 0.0)
    assert k > 0.5
    assert chi_parallel("tanh", k, 2.0) < 1
    # every variance is a fixed point of critical ReLU without biases
    assert np.isnan(fixed_point("relu", 2.0, 0.0))
    assert fixed_point("relu", 2.0, 0.0, initial=0.7) == 0.7


def test_half_stable_critical_fixed_points():
    # GELU's K* draws larger variances in; smaller ones stop at a lower
    # fixed point. Swish's K* draws smaller variances in.
    cb, cw, k_star, _ = critical_variances("gelu")
    assert fixed_point("gelu", cw, cb, initial=2 * k_star) == pytest.approx(
        k_star, rel=1e-7)
    below = fixed_point("gelu", cw, cb)
    assert below < 0.9 * k_star
    assert chi_parallel("gelu", below, cw) < 1
    cb, cw, k_star, _ = critical_variances("swish")
    assert fixed_point("swish", cw, cb) == pytest.approx(k_star, rel=1e-7)
    # the depth recursion creeps down towards K* from above (like 1 / depth)
    cb, cw, k_star, _ = critical_variances("gelu")
    gaps = [_iterated_variance("gelu", cw, cb, 5.0, depth) - k_star
            for depth in (50, 200)]
    assert 0 < gaps[1] < gaps[0] < 5.0 - k_star


@pytest.mark.parametrize("activation, cw, cb", [
    ("relu", 2.5, 0.0), ("relu", 2.0, 0.1), ("gelu", 4.0, 0.0)])
def test_diverging_variance_raises(activation, cw, cb):
    with pytest.raises(ValueError, match="no finite fixed point"):
        fixed_point(activation, cw, cb)


@pytest.mark.parametrize("activation", ["tanh", "erf", "sin", "gelu", "swish"])
def test_edge_of_chaos_passes_through_the_critical_point(activation):
    cb, cw, _, _ = critical_variances(activation)
    assert edge_of_chaos(activation, cb) == pytest.approx(cw, rel=1e-9)


def test_edge_of_chaos_puts_chi_perp_at_one():
    cbs = np.array([[0.05, 0.2], [1.0, 3.0]])
    cws = edge_of_chaos("tanh", cbs)
    assert cws.shape == cbs.shape
    assert np.all(np.diff(cws.ravel()) > 0)
    for cb, cw in zip(cbs.ravel(), cws.ravel()):
        k_star = fixed_point("tanh", cw, cb)
        chi = chi_perpendicular("tanh", k_star, cw)
        assert chi == pytest.approx(1, abs=1e-9)
    # the fixed points on the edge of ordinary tanh phase diagrams
    assert edge_of_chaos("tanh", 0.05) == pytest.approx(1.761, abs=1e-3)


def test_edge_of_chaos_where_there_is_none():
    assert np.array_equal(edge_of_chaos("relu", [0.0, 0.1]), [2.0, np.nan],
                          equal_nan=True)
    assert np.all(np.isnan(edge_of_chaos("softplus", [0.0, 0.5, 2.0])))
    cb_star = critical_variances("gelu").bias_variance
    assert np.isnan(edge_of_chaos("gelu", 0.5 * cb_star))
    assert np.isfinite(edge_of_chaos("gelu", 2 * cb_star))


def test_correlation_map_matches_one_nngp_layer():
    cw, cb = 2.0, 0.1
    k_star = fixed_point("tanh", cw, cb)
    # two inputs in d = 2 whose first-layer variance is K*
    norm = math.sqrt(2 * (k_star - cb) / cw)
    X = norm * np.array([[1.0, 0.0], [math.cos(1.1), math.sin(1.1)]])
    K0 = cw * (X @ X.T) / 2 + cb
    rho0 = K0[0, 1] / K0[0, 0]
    K1 = NNGP(depth=1, activation="tanh", weight_variance=cw,
              bias_variance=cb)(X)
    assert K0[0, 0] == pytest.approx(k_star, rel=1e-12)
    assert correlation_map("tanh", rho0, k_star, cw, cb) == pytest.approx(
        K1[0, 1] / K1[0, 0], rel=1e-10)


def test_correlation_map_slope_at_one_is_chi_perp():
    cw, cb = 2.0, 0.1
    k_star = fixed_point("erf", cw, cb)
    h = 1e-6
    rho = correlation_map("erf", np.array([1 - h, 1.0]), k_star, cw, cb)
    assert rho[1] == 1.0
    assert (rho[1] - rho[0]) / h == pytest.approx(
        chi_perpendicular("erf", k_star, cw), rel=1e-4)


def test_bad_input():
    with pytest.raises(ValueError, match="Unknown activation"):
        critical_variances("relu6")
    with pytest.raises(ValueError, match="weight_variance"):
        chi_parallel("tanh", 1.0, 0.0)
    with pytest.raises(ValueError, match="weight_variance"):
        fixed_point("tanh", -1.0, 0.1)
    with pytest.raises(ValueError, match="bias_variance"):
        fixed_point("tanh", 1.0, -0.1)
    with pytest.raises(ValueError, match="K must be"):
        chi_perpendicular("tanh", [1.0, -1.0], 1.0)
    with pytest.raises(ValueError, match="bias_variances"):
        edge_of_chaos("tanh", [0.1, np.nan])
    with pytest.raises(ValueError, match="rho"):
        correlation_map("tanh", 1.5, 1.0, 1.0, 0.0)
    with pytest.raises(TypeError):
        fixed_point("tanh", "1", 0.0)
