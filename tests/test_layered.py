"""An architecture added by its layer maps alone (tests/_layered_example.py):
its kernels against the fully-connected ones, an independent closed form
and a finite random network, through the estimators, and the discovery of
definitions in a package."""
import pickle
import sys
import textwrap

import numpy as np
import pytest
from sklearn.base import clone

from skinfinite.kernels import NNGP, NTK
from skinfinite.kernels.layered import discover_architectures
from skinfinite.kernels.registry import (get_architecture,
                                         unregister_architecture)
from skinfinite.models import NNGPRegressor, NTKRegressor
from skinfinite.recursions.layered import LayeredRecursion

from ._differences import theta_gradient
from ._layered_example import DecayingNNGP, DecayingNTK, input_layer


@pytest.fixture
def X():
    return np.random.default_rng(3).normal(size=(7, 4))


# each activation compiles the architecture's kernel once (seconds): a closed
# form and a Hermite series by default, the other closed forms when slow
@pytest.mark.parametrize("activation", [
    "relu", "tanh", pytest.param("erf", marks=pytest.mark.slow),
    pytest.param("sin", marks=pytest.mark.slow)])
@pytest.mark.parametrize("parametrization", ["nngp", "ntk"])
def test_no_decay_is_the_fully_connected_network(X, activation,
                                                  parametrization):
    cls, ref = ((DecayingNNGP, NNGP) if parametrization == "nngp"
                else (DecayingNTK, NTK))
    params = dict(depth=3, activation=activation, weight_variance=1.6,
                  bias_variance=0.2)
    ours = cls(decay=1.0, **params)
    np.testing.assert_allclose(ours(X), ref(**params)(X), rtol=1e-12,
                               atol=1e-14)
    np.testing.assert_allclose(ours(X[:3], X[2:]), ref(**params)(X[:3], X[2:]),
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ours.diag(X), ref(**params).diag(X),
                               rtol=1e-12)


def _relu_reference(X, Y, depth, sw2, sb2, decay):
    """The arc-cosine recursion written out for ReLU (NNGP, NTK)."""
    d = X.shape[1]
    kxy = sw2 * X @ Y.T / d + sb2
    kxx = sw2 * np.sum(X * X, 1) / d + sb2
    kyy = sw2 * np.sum(Y * Y, 1) / d + sb2
    t = kxy.copy()
    for layer in range(depth):
        w = sw2 * decay ** (layer + 1)
        r = np.sqrt(np.outer(kxx, kyy))
        theta = np.arccos(np.clip(kxy / r, -1.0, 1.0))
        v = r * (np.sin(theta) + (np.pi - theta) * np.cos(theta)) / (2 * np.pi)
        vd = (np.pi - theta) / (2 * np.pi)
        kxy = w * v + sb2
        t = kxy + w * vd * t
        kxx = w * kxx / 2 + sb2
        kyy = w * kyy / 2 + sb2
    return kxy, t


def test_relu_against_the_closed_form(X):
    Y = X[:3] + 0.3     # no parallel pairs: arccos loses digits at 1
    params = dict(depth=4, weight_variance=1.7, bias_variance=0.3, decay=0.6)
    K, T = _relu_reference(X, Y, 4, 1.7, 0.3, 0.6)
    np.testing.assert_allclose(DecayingNNGP(**params)(X, Y), K, rtol=1e-10)
    np.testing.assert_allclose(DecayingNTK(**params)(X, Y), T, rtol=1e-10)
    K, T = _relu_reference(X, X, 4, 1.7, 0.3, 0.6)
    off = ~np.eye(len(X), dtype=bool)
    np.testing.assert_allclose(DecayingNTK(**params)(X)[off], T[off],
                               rtol=1e-10)


@pytest.mark.slow
def test_nngp_against_finite_networks():
    """The output covariance of wide random networks (many outputs, a few
    draws) within Monte Carlo error of the NNGP."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5, 3))
    depth, sw2, sb2, decay, width, outputs = 2, 1.8, 0.2, 0.7, 1000, 1000
    total = np.zeros((5, 5))
    draws = 48
    for _ in range(draws):
        h = (X @ rng.normal(size=(3, width)) * np.sqrt(sw2 / 3)
             + rng.normal(size=width) * np.sqrt(sb2))
        for layer in range(depth):
            n_out = outputs if layer == depth - 1 else width
            w2 = sw2 * decay ** (layer + 1)
            h = (np.maximum(h, 0) @ rng.normal(size=(width, n_out))
                 * np.sqrt(w2 / width) + rng.normal(size=n_out) * np.sqrt(sb2))
        total += h @ h.T / outputs
    expected = DecayingNNGP(depth=depth, weight_variance=sw2,
                            bias_variance=sb2, decay=decay)(X)
    np.testing.assert_allclose(total / draws, expected, rtol=0.04,
                               atol=0.02 * expected.max())


def test_gradients_are_derivatives_in_the_log_hyperparameters(X):
    kernel = DecayingNTK(depth=3, activation="erf", weight_variance=1.3,
                         bias_variance=0.2, decay=0.9)
    K, grad = kernel(X, eval_gradient=True)
    assert [h.name for h in kernel.hyperparameters] == [
        "bias_variance", "decay", "weight_variance"]
    np.testing.assert_allclose(grad, theta_gradient(kernel, X, h=1e-4),
                               rtol=1e-6, atol=1e-9)
    fixed = clone(kernel).set_params(decay_bounds="fixed")
    np.testing.assert_allclose(fixed(X, eval_gradient=True)[1],
                               grad[..., [0, 2]], rtol=1e-12)
    with pytest.raises(ValueError, match="Y is None"):
        kernel(X, X, eval_gradient=True)


def test_the_kernels_are_scikit_learn_kernels(X):
    kernel = DecayingNNGP(2, "erf", 1.5, decay=0.5, dtype="float32")
    assert kernel.get_params()["decay"] == 0.5
    assert kernel.depth == 2 and kernel.weight_variance == 1.5
    np.testing.assert_allclose(np.exp(kernel.theta), [0.1, 0.5, 1.5])
    again = pickle.loads(pickle.dumps(kernel))
    assert again == kernel and repr(again) == repr(kernel)
    assert kernel(X).dtype == np.float32
    assert "decay" in DecayingNTK.__doc__
    with pytest.raises(ValueError, match="decay"):
        DecayingNNGP(decay=-1.0)(X)
    with pytest.raises(TypeError):
        DecayingNNGP(no_such_parameter=1)


@pytest.mark.parametrize("model", [NNGPRegressor, NTKRegressor])
def test_the_estimators_take_the_architecture_by_name(X, model):
    y = np.sin(X[:, 0])
    est = model(architecture="decaying", depth=2, alpha=1e-3).fit(X, y)
    assert type(est.kernel_).__name__ in ("DecayingNNGP", "DecayingNTK")
    assert est.predict(X).shape == (7,)
    # an instance gives the structure (its decay); the estimator the rest
    est = model(architecture=DecayingNTK(decay=0.5), depth=2,
                alpha=1e-3).fit(X, y)
    assert est.kernel_.decay == 0.5 and est.kernel_.depth == 2


def test_definitions_are_checked():
    hyper = {"weight_variance": (1.0, "fixed"), "bias_variance": (0.1, "fixed")}
    with pytest.raises(ValueError, match="bias_variance"):
        LayeredRecursion("bad", input_layer, input_layer,
                         {"weight_variance": (1.0, "fixed")})
    with pytest.raises(ValueError, match="in that order"):
        LayeredRecursion("bad", input_layer, input_layer, hyper)
    with pytest.raises(ValueError, match="identifier"):
        LayeredRecursion("not a name", input_layer, input_layer, hyper)


def test_a_module_of_the_package_is_an_architecture(tmp_path, monkeypatch,
                                                    X):
    package = tmp_path / "more_recursions"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "standard.py").write_text(textwrap.dedent('''
        from skinfinite.recursions.layered import LayeredRecursion

        # the standard parametrisation: the weights' learning rates are
        # divided by the fan-in
        def input_layer(g, weight_variance, bias_variance):
            return weight_variance * g + bias_variance, g + 1.0

        def hidden_layer(layer, v, vd, t, weight_variance, bias_variance):
            k = weight_variance * v + bias_variance
            return k, v + 1.0 + weight_variance * vd * t

        STANDARD = LayeredRecursion(
            "standard", input_layer, hidden_layer,
            {"weight_variance": (2.0, (1e-2, 1e2)),
             "bias_variance": (0.1, (1e-5, 1e2))})
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    import more_recursions
    try:
        assert discover_architectures(more_recursions) == ["standard"]
        arch, _ = get_architecture("standard")
        np.testing.assert_allclose(
            arch.ntk(depth=2)(X), NTK(depth=2, parametrization="standard")(X),
            rtol=1e-12)
    finally:
        unregister_architecture("standard")
        sys.modules.pop("more_recursions.standard", None)
        sys.modules.pop("more_recursions", None)
