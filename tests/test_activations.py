import math

import numpy as np
import pytest

from skinfinite.activations.definitions import (ACTIVATION_NAMES, Abs, Cos, Erf, GELU,
                                    Identity, LeakyReLU, QuadratureActivation,
                                    ReLU, Sin, Tanh, get_activation)
from skinfinite._core.fastmath import atan2_nonneg
from numba import njit

CLOSED = [ReLU(), LeakyReLU(0.2), Abs(), Identity(), Erf(), Sin(), Cos()]
COVS = [(1.0, 0.3, 2.0), (0.5, -0.45, 0.7), (2.0, 1.9, 1.9), (1.0, 0.0, 1.0)]


def _monte_carlo(act, kxx, kxy, kyy, n=2_000_000, seed=0):
    rng = np.random.default_rng(seed)
    L = np.linalg.cholesky(np.array([[kxx, kxy], [kxy, kyy]]))
    u, v = L @ rng.standard_normal((2, n))
    return (np.mean(act(u) * act(v)),
            np.mean(act.derivative(u) * act.derivative(v)))


def _reference_quadrature(act, kxx, kxy, kyy, n=150):
    """Plain two-dimensional Gauss-Hermite quadrature, many nodes."""
    z, w = np.polynomial.hermite_e.hermegauss(n)
    w = w / w.sum()
    rho = kxy / np.sqrt(kxx * kyy)
    u = np.sqrt(kxx) * z[:, None] + 0 * z[None, :]
    v = np.sqrt(kyy) * (rho * z[:, None] + np.sqrt(1 - rho ** 2) * z[None, :])
    W = np.outer(w, w)
    return (np.sum(W * act(u) * act(v)),
            np.sum(W * act.derivative(u) * act.derivative(v)))


@pytest.mark.parametrize("act", CLOSED, ids=repr)
@pytest.mark.parametrize("cov", COVS)
def test_closed_form_duals_match_monte_carlo(act, cov):
    V, Vd = act.dual(*cov)
    mc_V, mc_Vd = _monte_carlo(act, *cov)
    assert V == pytest.approx(mc_V, abs=5e-3 * max(1, abs(mc_V)))
    assert Vd == pytest.approx(mc_Vd, abs=5e-3 * max(1, abs(mc_Vd)))


@pytest.mark.parametrize("act", [Erf(), Sin(), Cos()], ids=repr)
@pytest.mark.parametrize("cov", COVS)
def test_smooth_closed_forms_match_quadrature_tightly(act, cov):
    assert np.allclose(act.dual(*cov), _reference_quadrature(act, *cov),
                       rtol=1e-10, atol=1e-12)


def test_relu_is_arc_cosine_kernel_of_degree_one():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2, 4))
    nx, ny = np.linalg.norm(x), np.linalg.norm(y)
    theta = np.arccos(x @ y / (nx * ny))
    # Cho & Saul: k1 = (1/pi) |x||y| (sin t + (pi - t) cos t) = 2 E[relu relu]
    k1 = nx * ny * (np.sin(theta) + (np.pi - theta) * np.cos(theta)) / np.pi
    V, Vd = ReLU().dual(x @ x, x @ y, y @ y)
    assert 2 * V == pytest.approx(k1, rel=1e-14)
    assert Vd == pytest.approx((np.pi - theta) / (2 * np.pi), rel=1e-14)


def test_relu_accurate_near_correlation_one():
    # arccos loses half the digits at rho -> 1; the atan2 form does not
    c = 1 - 1e-12
    V, Vd = ReLU().dual(1.0, c, 1.0)
    theta = 2 * math.asin(math.sqrt((1 - c) / 2))  # 1 - c is exact here
    assert Vd == pytest.approx((math.pi - theta) / (2 * math.pi), rel=1e-12)


def test_correlations_are_clamped():
    V, Vd = ReLU().dual(1.0, 1.0 + 1e-12, 1.0)
    assert V == pytest.approx(0.5) and Vd == pytest.approx(0.5)


def test_price_theorem_for_quadrature():
    act = QuadratureActivation(np.sin, np.cos)
    # E[sin u sin v] closed form
    V, Vd = act.dual(1.0, 0.3, 0.5)
    assert V == pytest.approx(math.exp(-0.75) * math.sinh(0.3), rel=1e-12)
    assert Vd == pytest.approx(math.exp(-0.75) * math.cosh(0.3), rel=1e-12)


@pytest.mark.parametrize("variance, tol_v, tol_vd", [
    (0.5, 1e-13, 1e-13), (1.0, 1e-11, 1e-9), (4.0, 1e-6, 1e-4)])
def test_tanh_series_accuracy(variance, tol_v, tol_vd):
    # the documented accuracy, against brute-force 2-D quadrature
    for rho in (0.3, 0.9, 0.999):
        V, Vd = Tanh().dual(variance, rho * variance, variance)
        ref = _reference_quadrature(Tanh(), variance, rho * variance, variance,
                                    n=200)
        assert V == pytest.approx(ref[0], rel=tol_v)
        assert Vd == pytest.approx(ref[1], rel=tol_vd)


@pytest.mark.parametrize("act", [Tanh(), GELU(), get_activation("softplus"),
                                 get_activation("swish"),
                                 get_activation("sigmoid")], ids=repr)
def test_series_activations_match_monte_carlo(act):
    for cov in COVS[:3]:
        assert np.allclose(act.dual(*cov), _monte_carlo(act, *cov), rtol=5e-3,
                           atol=5e-3)


def test_finite_difference_derivatives_of_a_callable():
    act = QuadratureActivation(np.tanh)
    x = np.linspace(-2, 2, 9)
    assert np.allclose(act.derivative(x), 1 - np.tanh(x) ** 2, atol=1e-9)
    assert np.allclose(act.second_derivative(x),
                       -2 * np.tanh(x) * (1 - np.tanh(x) ** 2), atol=1e-6)


def test_fast_atan2():
    rng = np.random.default_rng(0)
    s = np.abs(rng.normal(size=10000)) * 10.0 ** rng.integers(-8, 8, 10000)
    c = rng.normal(size=10000) * 10.0 ** rng.integers(-8, 8, 10000)

    @njit
    def run(s, c):
        out = np.empty_like(s)
        for i in range(s.size):
            out[i] = atan2_nonneg(s[i], c[i])
        return out

    ref = np.arctan2(s, c)
    assert np.max(np.abs(run(s, c) - ref) / np.maximum(ref, 1e-300)) < 4e-15
    assert run(np.zeros(2), np.array([1.0, -1.0])).tolist() == [0.0, math.pi]


def test_registry_and_errors():
    for name in ACTIVATION_NAMES:
        assert get_activation(name) == get_activation(name)
    assert get_activation("ReLU") == ReLU()
    assert LeakyReLU(0.0) == ReLU() and LeakyReLU(0.1) != LeakyReLU(0.2)
    with pytest.raises(ValueError, match="Unknown activation 'swishy'"):
        get_activation("swishy")
    with pytest.raises(TypeError):
        get_activation(3)
    assert isinstance(get_activation(np.tanh), QuadratureActivation)
    with pytest.raises(ValueError, match="slope"):
        LeakyReLU(float("nan"))
