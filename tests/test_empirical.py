import pickle

import numpy as np
import pytest
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from skinfinite.empirical.random_features import NeuralRandomFeatures
from skinfinite.empirical.networks import (FullyConnectedNetwork, ResNetNetwork,
                                  draw_weights, empirical_kernels)
from skinfinite.kernels import NNGP, NTK, nngp_ntk

from ._differences import jacobian

SW2, SB2 = 1.5, 0.1


def _inputs(rng, n=6, d=4):
    X = rng.normal(size=(n, d))
    return X / np.linalg.norm(X, axis=1, keepdims=True) * np.sqrt(d)


def _relative_errors(X, width, act="relu", parametrization="ntk",
                     n_seeds=4, depth=2, **network):
    K, T = nngp_ntk(X, depth=depth, activation=act, weight_variance=SW2,
                    bias_variance=SB2, parametrization=parametrization)
    errs = []
    for seed in range(n_seeds):
        net = FullyConnectedNetwork(depth, width, act, SW2, SB2,
                                    parametrization, random_state=seed,
                                    **network)
        Ke, Te = empirical_kernels(net, X)
        errs.append((np.abs(Ke - K).max() / np.abs(K).max(),
                     np.abs(Te - T).max() / np.abs(T).max()))
    return np.mean(errs, axis=0)


@pytest.mark.parametrize("parametrization", ["ntk", "standard"])
@pytest.mark.parametrize("act", ["relu", "erf", "tanh"])
def test_fully_connected_kernels_converge(act, parametrization, rng):
    X = _inputs(rng)
    small = _relative_errors(X, 64, act, parametrization)
    large = _relative_errors(X, 2048, act, parametrization)
    # error ~ width^-1/2: a 32x wider net should be ~5.7x closer
    assert np.all(large < small / 2.5), (small, large)
    # the typical relative error at width 2048 is about 0.09 (ReLU)
    assert np.all(large < 0.15), large


@pytest.mark.parametrize("init, density, widths, bound", [
    ("gaussian", 0.1, (64, 1024), 0.15),
    ("orthogonal", 0.1, (64, 1024), 0.15),
    ("sparse", 0.5, (64, 1024), 0.15),
    # about density * width terms per unit: the same limit, reached later
    ("sparse", 0.1, (128, 4096), 0.15),
])
def test_initializations_share_the_limit(init, density, widths, bound, rng):
    X = _inputs(rng)
    small = _relative_errors(X, widths[0], "erf", init=init, density=density)
    large = _relative_errors(X, widths[1], "erf", init=init, density=density)
    assert np.all(large < small / 2.5), (small, large)
    assert np.all(large < bound), large


def test_weight_matrices(rng):
    W = draw_weights(rng, 50, 200, "orthogonal")
    assert np.allclose(W @ W.T, 200 * np.eye(50))
    W = draw_weights(rng, 200, 50, "orthogonal")
    assert np.allclose(W.T @ W, 200 * np.eye(50))
    W = draw_weights(rng, 400, 400, "sparse", density=0.2)
    assert abs(np.mean(W != 0) - 0.2) < 0.01
    assert abs(np.mean(W ** 2) - 1) < 0.05
    net = FullyConnectedNetwork(2, 300, init="sparse", random_state=0)
    net.initialize(3)
    # the input layer stays dense; the fan-in-width layers are sparse
    assert np.all(net.weights_[0] != 0)
    assert abs(np.mean(net.weights_[1] == 0) - 0.9) < 0.01


@pytest.mark.parametrize("parametrization", ["ntk", "standard"])
@pytest.mark.parametrize("act", ["relu", "erf"])
def test_fully_connected_ntk_matches_finite_differences(act, parametrization,
                                                        rng):
    X = rng.normal(size=(4, 3))
    net = FullyConnectedNetwork(3, 5, act, SW2, SB2, parametrization,
                                random_state=1).initialize(3)
    JW = jacobian(lambda: net.forward(X), net.weights_)
    Jb = jacobian(lambda: net.forward(X), net.biases_)
    if parametrization == "ntk":
        expected = JW @ JW.T + Jb @ Jb.T
    else:
        # gradients in the scaled parameters, weight learning rates / fan-in
        expected = JW @ JW.T / SW2 + Jb @ Jb.T / SB2
    assert np.allclose(net.ntk(X), expected, rtol=1e-7, atol=1e-9)
    F = net.ntk_features(X)
    assert F.shape == (4, net.n_parameters)
    assert np.allclose(F @ F.T, net.ntk(X), rtol=1e-12)
    if parametrization == "ntk":
        # layer by layer, weights then bias
        params = [p for pair in zip(net.weights_, net.biases_) for p in pair]
        J = jacobian(lambda: net.forward(X), params)
        assert np.allclose(F, J, rtol=1e-6, atol=1e-8)


def test_cross_blocks_and_features(rng):
    X, Y = rng.normal(size=(5, 3)), rng.normal(size=(3, 3))
    Z = np.vstack([X, Y])
    for net in (FullyConnectedNetwork(2, 16, "tanh", random_state=0),
                ResNetNetwork(2, 16, "tanh", random_state=0)):
        for kernel in (net.nngp, net.ntk):
            assert np.allclose(kernel(X, Y), kernel(Z)[:5, 5:], rtol=1e-12)
        F = net.nngp_features(X)
        assert np.allclose(F @ F.T, net.nngp(X))
    # the conditional covariance of the readout given the last hidden layer
    net = FullyConnectedNetwork(2, 16, "tanh", SW2, SB2,
                                random_state=0).initialize(3)
    a = np.tanh(_hidden(net, X))
    assert np.allclose(net.nngp(X), SW2 * a @ a.T / 16 + SB2)


def _hidden(net, X):
    """Last hidden pre-activations, independently of the class."""
    a = X
    for W, b in zip(net.weights_[:-1], net.biases_[:-1]):
        h = np.sqrt(net.weight_variance / a.shape[1]) * a @ W + np.sqrt(
            net.bias_variance) * b
        a = np.tanh(h)
    return h


def test_networks_draw_reproducibly(rng):
    X = rng.normal(size=(4, 3))
    a = FullyConnectedNetwork(2, 32, random_state=3).forward(X)
    b = FullyConnectedNetwork(2, 32, random_state=3).forward(X)
    assert np.array_equal(a, b)
    gen = np.random.default_rng(3)
    net = FullyConnectedNetwork(2, 32, random_state=gen)
    first = net.initialize(3).forward(X)
    assert not np.allclose(first, net.initialize(3).forward(X))
    # empirical_kernels' first draw is the network's own and leaves it alone
    net = FullyConnectedNetwork(2, 32, random_state=3)
    K, T = empirical_kernels(net, X)
    assert not hasattr(net, "weights_")
    assert np.allclose(K, net.nngp(X)) and np.allclose(T, net.ntk(X))


def test_networks_pickle(rng):
    X = rng.normal(size=(4, 3))
    for net in (FullyConnectedNetwork(2, 8, "tanh", random_state=0),
                ResNetNetwork(2, 8, "gelu", random_state=0)):
        before = net.ntk(X)
        assert np.array_equal(pickle.loads(pickle.dumps(net)).ntk(X), before)
    assert repr(FullyConnectedNetwork(2, 8)).startswith(
        "FullyConnectedNetwork(depth=2, width=8, activation='relu'")


@pytest.mark.parametrize("make, match", [
    (lambda: FullyConnectedNetwork(0, 8), "depth"),
    (lambda: FullyConnectedNetwork(2, 8, init="lsuv"), "init"),
    (lambda: FullyConnectedNetwork(2, 8, init="sparse", density=1.5), "density"),
    (lambda: FullyConnectedNetwork(2, 8, parametrization="mup"),
     "parametrization"),
    (lambda: FullyConnectedNetwork(2, 8, weight_variance=-1), "weight_variance"),
    (lambda: ResNetNetwork(2, 8, branch_scales=[1.0]), "branch_scales"),
    (lambda: ResNetNetwork(2, 8, branch_scales=[1.0, -1.0]), "branch_scales"),
    (lambda: ResNetNetwork(2, 8, n_readouts=0), "n_readouts"),
])
def test_bad_parameters(make, match):
    with pytest.raises(ValueError, match=match):
        make().initialize(3)


def test_bad_inputs(rng):
    net = FullyConnectedNetwork(2, 8).initialize(3)
    with pytest.raises(ValueError, match="drawn for 3"):
        net.ntk(rng.normal(size=(2, 4)))
    with pytest.raises(ValueError, match="NaN"):
        net.nngp(np.array([[1.0, np.nan, 0.0]]))
    with pytest.raises(ValueError, match="n_seeds"):
        empirical_kernels(net, rng.normal(size=(2, 3)), n_seeds=0)


# -- NeuralRandomFeatures -----------------------------------------------------

@pytest.mark.parametrize("kind", ["nngp", "ntk"])
def test_random_features_approach_the_kernel(kind, rng):
    X = _inputs(rng, n=5, d=3)
    kernel = (NNGP if kind == "nngp" else NTK)(depth=2, activation="erf",
                                               weight_variance=SW2,
                                               bias_variance=SB2)(X)
    widths = (32, 1024) if kind == "ntk" else (32, 4096)

    def error(width):
        errs = []
        for seed in range(8):
            F = NeuralRandomFeatures(width, depth=2, activation="erf",
                                     weight_variance=SW2, bias_variance=SB2,
                                     kind=kind, random_state=seed
                                     ).fit_transform(X)
            errs.append(np.abs(F @ F.T - kernel).max() / np.abs(kernel).max())
        return np.mean(errs)

    small, large = error(widths[0]), error(widths[1])
    assert large < small / 2.5 and large < 0.12, (small, large)


def test_random_features_dimensions(rng):
    X = rng.normal(size=(4, 3))
    # fully connected: (3*10 + 10) + (10*10 + 10) + (10*1 + 1) parameters;
    # resnet: (3*10 + 10) + 2 * (10*10 + 10), the readout is not trained
    for arch, n_nngp, n_ntk in (("fully_connected", 11, 161),
                                ("resnet", 10, 260)):
        nngp = NeuralRandomFeatures(10, depth=2, architecture=arch).fit(X)
        ntk = NeuralRandomFeatures(10, depth=2, architecture=arch,
                                   kind="ntk").fit(X)
        assert nngp.transform(X).shape == (4, n_nngp)
        assert ntk.transform(X).shape == (4, n_ntk)
        assert ntk.network_.n_parameters == n_ntk
        names = ntk.get_feature_names_out()
        assert len(names) == n_ntk and names[0] == "neuralrandomfeatures0"


def test_ridge_on_features_approaches_kernel_ridge(rng):
    X = rng.normal(size=(40, 3))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2]
    X_test = rng.normal(size=(20, 3))
    alpha = 0.1
    exact = KernelRidge(kernel=NNGP(depth=2), alpha=alpha).fit(X, y).predict(
        X_test)

    def error(width):
        errs = []
        for seed in range(3):
            # no intercept: the constant feature carries the readout bias
            model = make_pipeline(
                NeuralRandomFeatures(width, depth=2, random_state=seed),
                Ridge(alpha=alpha, fit_intercept=False))
            pred = model.fit(X, y).predict(X_test)
            errs.append(np.abs(pred - exact).max() / np.abs(exact).max())
        return np.mean(errs)

    small, large = error(64), error(4096)
    assert large < small / 2.5 and large < 0.1, (small, large)


def test_random_features_bad_parameters(rng):
    X = rng.normal(size=(4, 3))
    with pytest.raises(ValueError, match="kind"):
        NeuralRandomFeatures(kind="cntk").fit(X)
    with pytest.raises(ValueError, match="architecture"):
        NeuralRandomFeatures(architecture="cnn").fit(X)
    with pytest.raises(ValueError, match="depth"):
        NeuralRandomFeatures(depth=0).fit(X)


@parametrize_with_checks([
    NeuralRandomFeatures(),
    NeuralRandomFeatures(n_components=8, depth=2, kind="ntk"),
    NeuralRandomFeatures(n_components=16, architecture="resnet"),
    NeuralRandomFeatures(n_components=8, depth=2, kind="ntk",
                         architecture="resnet", activation="tanh"),
])
def test_sklearn_compatible(estimator, check):
    check(estimator)
