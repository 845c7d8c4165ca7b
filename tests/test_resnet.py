import numpy as np
import pytest

import skinfinite
from skinfinite.activations.definitions import get_activation
from skinfinite.kernels import ResNetNNGP, ResNetNTK



@pytest.fixture
def X(rng):
    return rng.normal(size=(6, 3))


def _finite_recursion(X, act, scales, sw2, sb2):
    """The residual recursion written out with the activation's dual."""
    phi = get_activation(act)
    K = sw2 * X @ X.T / X.shape[1] + sb2
    T = K.copy()
    for s in scales:
        d = np.diag(K)
        V, Vd = phi.dual(d[:, None], K, d[None, :])
        K, T = (K + s ** 2 * (sw2 * V + sb2),
                T + s ** 2 * (sw2 * (Vd * T + V) + sb2))
    return K, T


@pytest.mark.parametrize("act", ["relu", "erf", "tanh"])
def test_finite_depth_matches_written_out_recursion(act, X):
    scales = [0.5, 1.0, 0.2, 0.7]
    K, T = _finite_recursion(X, act, scales, 1.3, 0.2)
    kw = dict(depth=4, activation=act, weight_variance=1.3, bias_variance=0.2,
              branch_scales=scales)
    assert np.allclose(ResNetNNGP(**kw)(X), K, rtol=1e-12)
    assert np.allclose(ResNetNTK(**kw)(X), T, rtol=1e-12)
    default = _finite_recursion(X, act, [0.5] * 4, 1.3, 0.2)
    assert np.allclose(ResNetNTK(depth=4, activation=act, weight_variance=1.3,
                                 bias_variance=0.2)(X), default[1], rtol=1e-12)


@pytest.mark.parametrize("act", ["relu", "erf", "tanh"])
def test_finite_depth_approaches_the_flow_at_rate_one_over_depth(act, X):
    kw = dict(activation=act, weight_variance=1.5)
    K_inf = ResNetNNGP(depth=np.inf, **kw)(X)
    T_inf = ResNetNTK(depth=np.inf, **kw)(X)
    gaps = [(np.abs(ResNetNNGP(depth=L, **kw)(X) - K_inf).max(),
             np.abs(ResNetNTK(depth=L, **kw)(X) - T_inf).max())
            for L in (16, 64, 256)]
    for (k1, t1), (k2, t2) in zip(gaps, gaps[1:]):
        assert 3.5 < k1 / k2 < 4.5 and 3.5 < t1 / t2 < 4.5, gaps


def test_relu_diagonal_closed_form(X):
    sw2, sb2 = 1.5, 0.3
    K0 = sw2 * np.sum(X ** 2, 1) / 3 + sb2
    expected = (K0 + 2 * sb2 / sw2) * np.exp(sw2 / 2) - 2 * sb2 / sw2
    got = ResNetNNGP(depth=np.inf, weight_variance=sw2, bias_variance=sb2)
    assert np.allclose(got.diag(X), expected, rtol=1e-11)
    assert np.allclose(np.diag(got(X)), expected, rtol=1e-11)


def test_linear_network_flow_closed_form(X):
    # identity activation: dK/dt = sw2 K + sb2 for every pair, and
    # dT/dt = sw2 (T + K) + sb2
    sw2, sb2 = 0.8, 0.2
    K0 = sw2 * X @ X.T / 3 + sb2
    c = sb2 / sw2
    K = (K0 + c) * np.exp(sw2) - c
    T = np.exp(sw2) * (K0 + sw2 * (K0 + c))
    kw = dict(depth=np.inf, activation="identity", weight_variance=sw2,
              bias_variance=sb2)
    assert np.allclose(ResNetNNGP(**kw)(X), K, rtol=1e-9)
    assert np.allclose(ResNetNTK(**kw)(X), T, rtol=1e-9)


@pytest.mark.parametrize("depth", [6, np.inf])
def test_tiles_do_not_change_results(depth, rng):
    X = rng.normal(size=(40, 3))
    kernel = ResNetNTK(depth=depth, activation="erf")
    full = kernel(X)
    with skinfinite.config_context(memory_budget=2000):
        assert np.allclose(kernel(X), full, rtol=1e-7)


def test_results_are_reproducible(rng):
    X = rng.normal(size=(150, 4))
    kernel = ResNetNTK(depth=np.inf)
    first = kernel(X)
    assert all(np.array_equal(kernel(X), first) for _ in range(5))


def test_ode_tolerance_controls_accuracy(X):
    coarse = ResNetNTK(depth=np.inf, ode_tolerance=1e-4)(X)
    fine = ResNetNTK(depth=np.inf, ode_tolerance=1e-9)(X)
    assert np.abs(coarse - fine).max() < 1e-3 * np.abs(fine).max()


@pytest.mark.parametrize("kw, error, match", [
    (dict(depth=0), ValueError, "depth must be >= 1"),
    (dict(depth=-3), ValueError, "depth must be >= 1"),
    (dict(depth=2.5), ValueError, "whole numbers"),
    (dict(depth=3, branch_scales=[1.0, 1.0]), ValueError, "3"),
    (dict(depth=2, branch_scales=[1.0, -1.0]), ValueError, "positive"),
    (dict(depth=np.inf, branch_scales=[1.0]), ValueError, "finite depth"),
    (dict(depth=-np.inf), ValueError, "depth"),
    (dict(ode_tolerance=0.0), ValueError, "ode_tolerance"),
    (dict(weight_variance=-1.0), ValueError, "weight_variance"),
])
def test_bad_parameters(kw, error, match, X):
    with pytest.raises(error, match=match):
        ResNetNTK(**kw)(X)


def _two_layer_branch_network(X, depth, width, sw2, sb2, act, seed):
    """Empirical NNGP and NTK of a ResNet with two-layer branches (NumPy)."""
    rng = np.random.default_rng(seed)
    phi = get_activation(act)
    n, d = X.shape
    s = 1 / np.sqrt(depth)
    cw, cb = np.sqrt(sw2 / width), np.sqrt(sb2)
    W0 = rng.standard_normal((d, width))
    h = np.sqrt(sw2 / d) * X @ W0 + cb * rng.standard_normal(width)
    blocks = []
    for _ in range(depth):
        W1, W2 = rng.standard_normal((2, width, width))
        b1, b2 = rng.standard_normal((2, width))
        u = phi(h)
        a = cw * u @ W1 + cb * b1
        w = phi(a)
        blocks.append((h, u, a, w, W1, W2))
        h = h + s * (cw * w @ W2 + cb * b2)
    K = h @ h.T / width
    # backpropagate f = v . h / sqrt(width) for a random readout v
    delta = np.tile(rng.standard_normal(width) / np.sqrt(width), (n, 1))
    T = np.zeros((n, n))

    def add(delta, inputs, coef_w, coef_b):
        dd = delta @ delta.T
        return dd * (coef_w ** 2 * inputs @ inputs.T + coef_b ** 2)

    for h_in, u, a, w, W1, W2 in reversed(blocks):
        T += add(delta, w, s * cw, s * cb)
        delta_a = s * cw * (delta @ W2.T) * phi.derivative(a)
        T += add(delta_a, u, cw, cb)
        delta = delta + cw * (delta_a @ W1.T) * phi.derivative(h_in)
    T += add(delta, X, np.sqrt(sw2 / d), cb)
    return K, T


@pytest.mark.parametrize("act, widths", [
    ("erf", (32, 1024)),
    pytest.param("relu", (64, 4096), marks=pytest.mark.slow),
])
def test_two_layer_branches_match_finite_width_networks(act, widths, rng):
    X = rng.normal(size=(4, 3))
    kw = dict(depth=2, activation=act, weight_variance=1.2, bias_variance=0.2,
              branch_layers=2)
    K, T = ResNetNNGP(**kw)(X), ResNetNTK(**kw)(X)

    def error(width):
        runs = [_two_layer_branch_network(X, 2, width, 1.2, 0.2, act, seed)
                for seed in range(8)]
        return (np.abs(np.mean([r[0] for r in runs], 0) - K).max() / K.max(),
                np.abs(np.mean([r[1] for r in runs], 0) - T).max() / T.max())

    small, large = np.array(error(widths[0])), np.array(error(widths[1]))
    assert np.all(large < small / 2.5) and np.all(large < 0.05), (small, large)


def test_two_layer_branches_written_out(X):
    phi = get_activation("tanh")
    sw2, sb2, depth = 1.1, 0.3, 3
    K = sw2 * X @ X.T / 3 + sb2
    T = K.copy()
    for _ in range(depth):
        A, TA = K, T
        for _ in range(2):
            d = np.diag(A)
            V, Vd = phi.dual(d[:, None], A, d[None, :])
            A, TA = sw2 * V + sb2, sw2 * V + sb2 + sw2 * Vd * TA
        K, T = K + A / depth, T + TA / depth
    kw = dict(depth=depth, activation="tanh", weight_variance=sw2,
              bias_variance=sb2, branch_layers=2)
    assert np.allclose(ResNetNNGP(**kw)(X), K, rtol=1e-12)
    assert np.allclose(ResNetNTK(**kw)(X), T, rtol=1e-12)


def test_two_layer_branches_approach_the_flow(X):
    K = ResNetNTK(depth=np.inf, activation="erf", branch_layers=2)(X)
    gaps = [np.abs(ResNetNTK(depth=L, activation="erf", branch_layers=2)(X)
                   - K).max() for L in (16, 64)]
    assert 3.5 < gaps[0] / gaps[1] < 4.5
    with pytest.raises(ValueError, match="branch_layers"):
        ResNetNTK(branch_layers=0)(X)
