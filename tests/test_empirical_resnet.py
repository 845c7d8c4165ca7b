"""Finite-width residual networks against their infinite-width recursion."""
import numpy as np
import pytest

from skinfinite.activations.definitions import get_activation
from skinfinite.empirical.random_features import NeuralRandomFeatures
from skinfinite.empirical.networks import ResNetNetwork, empirical_kernels
from skinfinite.kernels import ResNetNNGP, ResNetNTK

from ._differences import jacobian

SW2, SB2 = 1.5, 0.1
SCALES = [1.0, 0.5, 0.25, 0.8]


def resnet_recursion(X, depth, activation, sw2, sb2, branch_scales=None):
    """NNGP and NTK of the residual network by their layer recursion.

    K_0 = T_0 = sw2 <x, y> / d + sb2, then per block
    K <- K + s^2 (sw2 V + sb2) and T <- T + s^2 (sw2 Vd T + sw2 V + sb2),
    with (V, Vd) the duals at the previous K.
    """
    act = get_activation(activation)
    scales = (np.full(depth, depth ** -0.5) if branch_scales is None
              else np.asarray(branch_scales))
    K = sw2 * X @ X.T / X.shape[1] + sb2
    T = K.copy()
    for s in scales:
        d = np.diag(K)
        V, Vd = act.dual(d[:, None], K, d[None, :])
        K, T = (K + s * s * (sw2 * V + sb2),
                T + s * s * (sw2 * Vd * T + sw2 * V + sb2))
    return K, T


def _inputs(rng, n=6, d=4):
    X = rng.normal(size=(n, d))
    return X / np.linalg.norm(X, axis=1, keepdims=True) * np.sqrt(d)


def _relative_errors(X, K, T, width, act, scales, n_readouts=None,
                     n_seeds=4):
    errs = []
    for seed in range(n_seeds):
        net = ResNetNetwork(len(SCALES), width, act, SW2, SB2,
                            branch_scales=scales, n_readouts=n_readouts,
                            random_state=seed)
        Ke, Te = empirical_kernels(net, X)
        errs.append((np.abs(Ke - K).max() / np.abs(K).max(),
                     np.abs(Te - T).max() / np.abs(T).max()))
    return np.mean(errs, axis=0)


@pytest.mark.parametrize("scales", [None, SCALES], ids=["sqrt-depth", "custom"])
@pytest.mark.parametrize("act", ["relu", "erf", "tanh"])
def test_resnet_kernels_converge(act, scales, rng):
    X = _inputs(rng)
    K, T = resnet_recursion(X, len(SCALES), act, SW2, SB2, scales)
    small = _relative_errors(X, K, T, 64, act, scales)
    # 32 random readout directions keep the wide network cheap
    large = _relative_errors(X, K, T, 1024, act, scales, n_readouts=32)
    # error ~ width^-1/2: a 16x wider net should be ~4x closer
    assert np.all(large < small / 2.5), (small, large)
    # the typical relative error at width 1024 is about 0.1 (ReLU NNGP)
    assert np.all(large < 0.2), large


@pytest.mark.parametrize("scales", [None, SCALES], ids=["sqrt-depth", "custom"])
@pytest.mark.parametrize("act", ["relu", "erf", "tanh"])
def test_recursion_matches_resnet_kernels(act, scales, rng):
    X = _inputs(rng)
    K, T = resnet_recursion(X, len(SCALES), act, SW2, SB2, scales)
    params = dict(depth=len(SCALES), activation=act, weight_variance=SW2,
                  bias_variance=SB2, branch_scales=scales)
    assert np.allclose(ResNetNNGP(**params)(X), K, rtol=1e-10, atol=1e-12)
    assert np.allclose(ResNetNTK(**params)(X), T, rtol=1e-10, atol=1e-12)


def test_wide_resnet_is_close_to_resnet_kernels(rng):
    X = _inputs(rng)
    net = ResNetNetwork(4, 2048, "erf", SW2, SB2, n_readouts=32,
                        random_state=0)
    Ke, Te = empirical_kernels(net, X, n_seeds=2)
    params = dict(depth=4, activation="erf", weight_variance=SW2,
                  bias_variance=SB2)
    K, T = ResNetNNGP(**params)(X), ResNetNTK(**params)(X)
    assert np.abs(Ke - K).max() < 0.1 * np.abs(K).max()
    assert np.abs(Te - T).max() < 0.05 * np.abs(T).max()


@pytest.mark.slow
@pytest.mark.parametrize("act", ["relu", "erf"])
def test_resnet_monte_carlo_error_rate(act, rng):
    X = _inputs(rng, n=5)
    K, T = resnet_recursion(X, len(SCALES), act, SW2, SB2)
    widths = [128, 512, 2048, 4096]
    errs = [_relative_errors(X, K, T, w, act, None, n_readouts=16,
                             n_seeds=8) for w in widths]
    for column in np.transpose(errs):
        slope = np.polyfit(np.log(widths), np.log(column), 1)[0]
        assert -0.75 < slope < -0.3, (errs, slope)


@pytest.mark.parametrize("act", ["relu", "erf"])
def test_resnet_ntk_matches_finite_differences(act, rng):
    X = rng.normal(size=(4, 3))
    net = ResNetNetwork(3, 5, act, SW2, SB2, branch_scales=[0.5, 1.0, 0.3],
                        random_state=2).initialize(3)
    # layer by layer, weights then bias: the order of ntk_features
    params = [p for pair in zip(net.weights_, net.biases_) for p in pair]
    # averaged over readouts, grad f . grad f is sum_i grad F_i . grad F_i
    # for the features F = h_L / sqrt(N)
    J = jacobian(lambda: net.nngp_features(X), params)
    expected = np.einsum("aip,bip->ab", J, J)
    assert np.allclose(net.ntk(X), expected, rtol=1e-7, atol=1e-9)
    # the gradient of the network's own output, readout not trained
    Jf = jacobian(lambda: net.forward(X), params)
    F = net.ntk_features(X)
    assert F.shape == (4, net.n_parameters)
    assert np.allclose(F, Jf, rtol=1e-6, atol=1e-8)


def test_resnet_nngp_is_the_last_stream(rng):
    X = rng.normal(size=(4, 3))
    net = ResNetNetwork(2, 7, "tanh", SW2, SB2, random_state=0).initialize(3)
    h = np.sqrt(SW2 / 3) * X @ net.weights_[0] + np.sqrt(SB2) * net.biases_[0]
    for W, b in zip(net.weights_[1:], net.biases_[1:]):
        h = h + (np.sqrt(SW2 / 7) * np.tanh(h) @ W + np.sqrt(SB2) * b) / np.sqrt(2)
    assert np.allclose(net.nngp(X), h @ h.T / 7)
    assert np.allclose(net.forward(X), h @ net.readout_ / np.sqrt(7))


def test_resnet_readout_directions_are_unbiased(rng):
    X = rng.normal(size=(3, 2))
    diffs = []
    for seed in range(200):
        exact = ResNetNetwork(2, 6, "erf", random_state=seed)
        probed = ResNetNetwork(2, 6, "erf", n_readouts=2, random_state=seed)
        # the directions are drawn after the weights: the same network
        assert np.array_equal(exact.forward(X), probed.forward(X))
        diffs.append(probed.ntk(X) - exact.ntk(X))
    diffs = np.array(diffs)
    sem = diffs.std(axis=0) / np.sqrt(len(diffs))
    assert np.all(np.abs(diffs.mean(axis=0)) < 4 * sem)
    assert np.all(diffs.std(axis=0) > 0)
    every = ResNetNetwork(2, 6, "erf", n_readouts=6, random_state=0)
    assert np.allclose(every.ntk(X),
                       ResNetNetwork(2, 6, "erf", random_state=0).ntk(X))


def test_exact_average_is_blocked_consistently(rng, monkeypatch):
    X = rng.normal(size=(5, 3))
    net = ResNetNetwork(3, 40, "relu", random_state=0)
    whole = net.ntk(X)
    # blocks of a few output units at a time give the same sum
    monkeypatch.setattr("skinfinite.empirical.networks._PROBE_BLOCK_ELEMENTS", 5 * 40 * 3)
    assert np.allclose(net.ntk(X), whole, rtol=1e-12)


@pytest.mark.parametrize("kind", ["nngp", "ntk"])
def test_resnet_random_features_approach_the_kernel(kind, rng):
    X = _inputs(rng, n=5, d=3)
    K, T = resnet_recursion(X, 2, "erf", SW2, SB2)
    kernel = K if kind == "nngp" else T
    widths = (16, 512) if kind == "ntk" else (16, 2048)

    def error(width):
        errs = []
        for seed in range(8):
            F = NeuralRandomFeatures(width, depth=2, activation="erf",
                                     weight_variance=SW2, bias_variance=SB2,
                                     kind=kind, architecture="resnet",
                                     random_state=seed).fit_transform(X)
            errs.append(np.abs(F @ F.T - kernel).max() / np.abs(kernel).max())
        return np.mean(errs)

    small, large = error(widths[0]), error(widths[1])
    assert large < small / 2.5 and large < 0.12, (small, large)
