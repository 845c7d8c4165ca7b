import numpy as np
import pytest
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, WhiteKernel
from sklearn.kernel_approximation import Nystroem
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

import skinfinite
from skinfinite.activations.definitions import LeakyReLU
from skinfinite.empirical.networks import FullyConnectedNetwork, empirical_kernels
from skinfinite.kernels import NNGP, NTK, nngp_ntk

CLOSED = ["relu", LeakyReLU(0.2), "abs", "identity", "erf", "sin", "cos"]


def _inputs(rng, n=6, d=4):
    X = rng.normal(size=(n, d))
    return X / np.linalg.norm(X, axis=1, keepdims=True) * np.sqrt(d)


def _mc_error(X, act, depth, width, seeds, parametrization="ntk",
              sw2=1.5, sb2=0.1):
    K, T = nngp_ntk(X, depth=depth, activation=act, weight_variance=sw2,
                    bias_variance=sb2, parametrization=parametrization)
    errs = []
    for seed in seeds:
        network = FullyConnectedNetwork(depth, width, act, sw2, sb2,
                                        parametrization, random_state=seed)
        Ke, Te = empirical_kernels(network, X)
        errs.append((np.abs(Ke - K).max() / np.abs(K).max(),
                     np.abs(Te - T).max() / np.abs(T).max()))
    return np.mean(errs, axis=0)


@pytest.mark.parametrize("act", CLOSED + ["tanh"], ids=str)
def test_kernels_match_finite_width_networks(act, rng):
    X = _inputs(rng)
    small = _mc_error(X, act, 2, 64, range(4))
    large = _mc_error(X, act, 2, 2048, range(4))
    # error ~ width^-1/2: a 32x wider net should be ~5.7x closer
    assert np.all(large < small / 2.5), (small, large)
    assert np.all(large < 0.15), large


@pytest.mark.parametrize("act", ["relu", "erf"])
def test_standard_parametrization_matches_networks(act, rng):
    X = _inputs(rng)
    small = _mc_error(X, act, 2, 64, range(4), "standard")
    large = _mc_error(X, act, 2, 2048, range(4), "standard")
    assert np.all(large < small / 2.5) and np.all(large < 0.15)


@pytest.mark.slow
@pytest.mark.parametrize("act", ["relu", "erf", "gelu", "softplus"])
def test_monte_carlo_error_rate(act, rng):
    X = _inputs(rng, n=5)
    widths = [128, 512, 2048, 8192]
    errs = [_mc_error(X, act, 3, w, range(6))[1] for w in widths]
    slope = np.polyfit(np.log(widths), np.log(errs), 1)[0]
    assert -0.75 < slope < -0.3, (errs, slope)


def test_depth_one_relu_is_arc_cosine(rng):
    X = rng.normal(size=(5, 3))
    sw2 = 2.0
    K = NNGP(depth=1, weight_variance=sw2, bias_variance=0.0)(X)
    norms = np.linalg.norm(X, axis=1)
    cos = np.clip(X @ X.T / np.outer(norms, norms), -1, 1)
    theta = np.arccos(cos)
    # degree-1 arc-cosine kernel of the scaled inputs sqrt(sw2/d) x
    k1 = (np.outer(norms, norms) * sw2 / 3 / np.pi
          * (np.sin(theta) + (np.pi - theta) * cos))
    assert np.allclose(K, sw2 * k1 / 2, rtol=1e-12, atol=1e-13)


def test_depth_one_erf_closed_form(rng):
    X = rng.normal(size=(5, 3))
    sw2, sb2 = 1.3, 0.2
    K0 = sw2 * X @ X.T / 3 + sb2
    d = np.diag(K0)
    expected = sw2 * 2 / np.pi * np.arcsin(
        2 * K0 / np.sqrt(np.outer(1 + 2 * d, 1 + 2 * d))) + sb2
    K = NNGP(depth=1, activation="erf", weight_variance=sw2,
             bias_variance=sb2)(X)
    assert np.allclose(K, expected, rtol=1e-13)


def test_gradient_with_y_is_an_error(rng):
    X = rng.normal(size=(4, 3))
    with pytest.raises(ValueError, match="Y is None"):
        NTK()(X, X, eval_gradient=True)


def test_tiles_do_not_change_results(rng):
    X = rng.normal(size=(150, 5))
    Y = rng.normal(size=(70, 5))
    K, T = nngp_ntk(X, Y, depth=4)
    Ks, Ts = nngp_ntk(X, depth=4)
    with skinfinite.config_context(memory_budget=4000):
        K2, T2 = nngp_ntk(X, Y, depth=4)
        Ks2, Ts2 = nngp_ntk(X, depth=4)
        _, g2 = NTK(activation="tanh", depth=2)(X[:30], eval_gradient=True)
    _, g = NTK(activation="tanh", depth=2)(X[:30], eval_gradient=True)
    for a, b in [(K, K2), (T, T2), (Ks, Ks2), (Ts, Ts2), (g, g2)]:
        # equal up to the rounding of differently blocked matrix products
        assert np.allclose(a, b, rtol=1e-13, atol=0)


@pytest.mark.parametrize("kernel", [NTK(), NNGP(activation="tanh")], ids=repr)
def test_results_are_reproducible(kernel, rng):
    # threads write disjoint entries, so repeated calls agree bit for bit
    X = rng.normal(size=(150, 4))
    first = kernel(X)
    assert all(np.array_equal(kernel(X), first) for _ in range(8))


@pytest.mark.parametrize("act", ["relu", "erf", "sin", "leaky_relu"])
def test_depth_1000_is_finite(act, rng):
    X = rng.normal(size=(6, 3))
    # variances in the ordered phase for the bounded activations, where the
    # NTK converges; ReLU at its critical 2.0 grows linearly
    sw2 = 2.0 if act in ("relu", "leaky_relu") else 1.0
    K, T = nngp_ntk(X, depth=1000, activation=act, weight_variance=sw2)
    assert np.all(np.isfinite(K)) and np.all(np.isfinite(T))


def test_overflow_is_reported(rng):
    X = rng.normal(size=(4, 3))
    with pytest.raises(FloatingPointError, match="weight_variance"):
        NNGP(depth=1100, weight_variance=4.0)(X)
    with pytest.raises(FloatingPointError, match="float32"):
        NTK(depth=300, weight_variance=3.0, dtype="float32")(X)
    with pytest.raises(FloatingPointError, match="overflowed"):
        NTK(depth=300, weight_variance=3.0, dtype="float32")(X, X[:2])
    # chaotic erf: the diagonal NTK grows by about 1.12 per layer, 3e49 at
    # depth 1000 (finite) and beyond float64 from about 6200 layers
    assert np.isfinite(NTK(depth=1000, activation="erf",
                           weight_variance=2.0)(X)).all()
    with pytest.raises(FloatingPointError):
        NTK(depth=7000, activation="erf", weight_variance=2.0)(X)


def test_relu_fully_connected_degenerates_with_depth():
    X = np.array([[1.0, 0.0], [0.0, 1.0]])
    K = NNGP(depth=1000, weight_variance=2.0, bias_variance=0.0)(X)
    assert K[0, 1] / np.sqrt(K[0, 0] * K[1, 1]) > 0.9999


def test_quadrature_callable_activation_agrees_with_closed_form(rng):
    X = rng.normal(size=(5, 3))
    closed = NTK(activation="sin")(X)
    quad = NTK(activation=lambda x: np.sin(x))(X)  # finite-difference derivatives
    assert np.allclose(closed, quad, rtol=1e-7)


def test_kernel_protocol():
    kernel = NTK(depth=2, activation="erf", weight_variance=1.5)
    assert not kernel.is_stationary()
    assert kernel.get_params()["depth"] == 2
    assert repr(kernel) == ("NTK(depth=2, activation='erf', "
                            "weight_variance=1.5, bias_variance=0.1)")
    combo = 2.0 * kernel + RBF() * NNGP()
    X = np.random.default_rng(0).normal(size=(5, 3))
    assert np.allclose(combo(X), 2 * kernel(X) + RBF()(X) * NNGP()(X))
    assert combo(X, eval_gradient=True)[1].shape == (5, 5, 6)
    assert NTK(activation=LeakyReLU(0.1)) == NTK(activation=LeakyReLU(0.1))


def test_gaussian_process_fits_variances(rng):
    X = rng.normal(size=(60, 3))
    y = np.sin(2 * X[:, 0]) + 0.1 * rng.normal(size=60)
    start = NTK(depth=2, weight_variance=0.5, bias_variance=1.0) + WhiteKernel(0.1)
    gpr = GaussianProcessRegressor(start, n_restarts_optimizer=1,
                                   random_state=0).fit(X, y)
    assert gpr.log_marginal_likelihood_value_ > gpr.log_marginal_likelihood(
        start.theta) + 1.0
    assert gpr.kernel_.k1.weight_variance != 0.5


def test_sklearn_kernel_machines(rng):
    X = rng.normal(size=(80, 4))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    assert SVC(kernel=NTK(depth=2)).fit(X, y).score(X, y) > 0.9
    assert KernelRidge(kernel=NTK(depth=2), alpha=1e-3).fit(X, y).score(X, y) > 0.9
    pipe = make_pipeline(Nystroem(kernel=NNGP(depth=2), n_components=40,
                                  random_state=0), Ridge(1e-3))
    assert pipe.fit(X, y).score(X, y) > 0.5


def test_grid_search_over_depth_and_activation(rng):
    X = rng.normal(size=(60, 3))
    y = np.sin(X[:, 0]) + X[:, 1] ** 2
    pipe = make_pipeline(StandardScaler(), KernelRidge(kernel=NTK(), alpha=1e-2))
    grid = GridSearchCV(pipe, {"kernelridge__kernel__depth": [1, 3],
                               "kernelridge__kernel__activation": ["relu", "erf"]},
                        cv=3).fit(X, y)
    assert grid.best_params_["kernelridge__kernel__depth"] in (1, 3)
    assert len(grid.cv_results_["params"]) == 4


@pytest.mark.parametrize("bad, match", [
    (np.array([[1.0, np.nan]]), "NaN"),
    (np.array([[1.0, np.inf]]), "infinity"),
    (np.zeros((0, 3)), "0 sample"),
    (np.zeros((2, 3, 4)), "dim 3"),
    (np.array([["a", "b"]]), "could not convert"),
])
def test_bad_inputs(bad, match):
    with pytest.raises(ValueError, match=match):
        NTK()(bad)


def test_bad_parameters(rng):
    X = rng.normal(size=(3, 2))
    with pytest.raises(ValueError, match="depth must be >= 1"):
        NTK(depth=0)(X)
    with pytest.raises(TypeError, match="depth must be an integer"):
        NTK(depth=2.5)(X)
    with pytest.raises(ValueError, match="weight_variance"):
        NTK(weight_variance=-1.0)(X)
    with pytest.raises(ValueError, match="bias_variance"):
        NNGP(bias_variance=-0.1)(X)
    with pytest.raises(ValueError, match="Unknown activation"):
        NTK(activation="foo")(X)
    with pytest.raises(ValueError, match="parametrization"):
        NTK(parametrization="mup")(X)
    with pytest.raises(ValueError, match="dtype"):
        NTK(dtype="float16")(X)
    with pytest.raises(ValueError, match="features"):
        NTK()(X, rng.normal(size=(3, 4)))


def test_progress_bar(rng, capsys):
    X = rng.normal(size=(300, 3))
    with skinfinite.config_context(show_progress=True, memory_budget=100_000):
        NTK()(X)
    assert "kernel blocks" in capsys.readouterr().err
    with skinfinite.config_context(show_progress=False, memory_budget=100_000):
        NTK()(X)
    assert capsys.readouterr().err == ""


def test_config_validation():
    with pytest.raises(ValueError, match="memory_budget"):
        skinfinite.set_config(memory_budget="lots")
    with pytest.raises(ValueError, match="Unknown configuration key"):
        skinfinite.set_config(colour="red")
    with skinfinite.config_context(memory_budget="2MiB"):
        assert skinfinite.get_config()["memory_budget"] == 2 * 2**20
