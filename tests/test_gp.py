"""GPyTorch bridge and the GP/SVGP estimators."""
import pickle
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
gpytorch = pytest.importorskip("gpytorch")

from sklearn.base import clone  # noqa: E402
from sklearn.gaussian_process import GaussianProcessRegressor  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from skinfinite import NNGP, NTK, ResNetNNGP, ResNetNTK  # noqa: E402
from skinfinite._torch.bridge import (SkinfiniteKernel, register_torch_recursion,  # noqa: E402
                           to_gpytorch, torch_recursion_for)
from skinfinite.engine.driver import gram  # noqa: E402
from skinfinite.models import (GPRegressor, NNGPRegressor,  # noqa: E402
                               SVGPClassifier, SVGPRegressor)

from ._differences import theta_gradient  # noqa: E402

KERNELS = [
    NNGP(depth=3),
    NTK(depth=3, weight_variance=1.7, bias_variance=0.3),
    NTK(depth=2, activation="tanh", parametrization="standard"),
    NNGP(depth=2, activation="erf"),
    NTK(depth=2, activation="leaky_relu"),
    ResNetNNGP(depth=5),
    ResNetNTK(depth=3, activation="gelu", branch_layers=2),
    ResNetNTK(depth=np.inf),
    ResNetNNGP(depth=np.inf, activation="erf"),
]


def _data(n=12, m=7, d=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(m, d))


def _t(a, **kw):
    return torch.tensor(a, dtype=torch.float64, **kw)


# ----------------------------------------------------------------- kernels
@pytest.mark.parametrize("kernel", KERNELS, ids=repr)
@pytest.mark.parametrize("backend", ["torch", "engine"])
def test_bridge_matches_compiled_kernel(kernel, backend):
    X, Y = _data()
    gk = to_gpytorch(kernel, backend=backend)
    with torch.no_grad():
        kxy = gk(_t(X), _t(Y)).to_dense().numpy()
        kxx = gk(_t(X)).to_dense().numpy()
        diag = gk(_t(X), diag=True).numpy()
    np.testing.assert_allclose(kxy, kernel(X, Y), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(kxx, kernel(X), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(diag, kernel.diag(X), rtol=1e-10, atol=1e-10)


def test_paths_are_reported():
    assert to_gpytorch(NNGP()).backend == "torch"
    assert to_gpytorch(ResNetNTK(depth=np.inf)).backend == "torch"
    assert to_gpytorch(NNGP(), backend="engine").backend == "engine"
    assert torch_recursion_for(NTK()) is not None


def test_batched_inputs_and_float32():
    X, Y = _data()
    gk = to_gpytorch(NTK(depth=2))
    xb = _t(np.stack([X, X[::-1]]))
    with torch.no_grad():
        out = gk(xb, xb).to_dense().numpy()
    np.testing.assert_allclose(out[1], NTK(depth=2)(X[::-1]), rtol=1e-10)
    with torch.no_grad():
        k32 = gk(torch.tensor(X, dtype=torch.float32),
                 torch.tensor(Y, dtype=torch.float32)).to_dense()
    assert k32.dtype == torch.float32
    np.testing.assert_allclose(k32.numpy(), NTK(depth=2)(X, Y), rtol=1e-5)


@pytest.mark.parametrize("kernel", [NNGP(depth=3), NTK(depth=2, activation="tanh"),
                                    ResNetNTK(depth=4),
                                    ResNetNNGP(depth=np.inf)], ids=repr)
def test_hyperparameter_gradients_match_engine_and_differences(kernel):
    X, _ = _data(8)
    gk = to_gpytorch(kernel)
    K = gk(_t(X)).to_dense()
    w = torch.tensor(np.random.default_rng(1).normal(size=K.shape))
    (K * w).sum().backward()
    names = ["bias_variance", "weight_variance"]          # theta order
    values = np.array([getattr(kernel, n) for n in names])
    # d/dlog(p) = p d/dp
    grad_torch = np.array([float(getattr(gk, "raw_" + n).grad)
                           / float(torch.sigmoid(getattr(gk, "raw_" + n).detach()))
                           for n in names]) * values
    _, analytic = kernel(X, eval_gradient=True)
    fd = theta_gradient(kernel, X)
    expect = np.einsum("ij,ijk->k", w.numpy(), analytic)
    np.testing.assert_allclose(grad_torch, expect, rtol=1e-8)
    np.testing.assert_allclose(expect, np.einsum("ij,ijk->k", w.numpy(), fd),
                               rtol=1e-5)


def test_engine_path_gradients_off_diagonal_blocks():
    X, Y = _data()
    kernel = NTK(depth=3)
    w = np.random.default_rng(2).normal(size=(X.shape[0], Y.shape[0]))
    grads = {}
    for backend in ("torch", "engine"):
        gk = to_gpytorch(kernel, backend=backend)
        (gk(_t(X), _t(Y)).to_dense() * _t(w)).sum().backward()
        grads[backend] = [float(gk.raw_weight_variance.grad),
                          float(gk.raw_bias_variance.grad)]
    np.testing.assert_allclose(grads["engine"], grads["torch"], rtol=1e-9)
    res = gram(X, Y, kernel.spec(), ("ntk",), eval_gradient=True)
    h = 1e-6
    fd = []
    for name in ("weight_variance", "bias_variance"):
        v = getattr(kernel, name)
        up = kernel.set_params(**{name: v * np.exp(h)})(X, Y)
        down = kernel.set_params(**{name: v * np.exp(-h)})(X, Y)
        kernel.set_params(**{name: v})
        fd.append((up - down) / (2 * h))
    np.testing.assert_allclose(res["ntk_gradient"],
                               np.stack(fd, -1), rtol=1e-6, atol=1e-8)


def test_gradients_reach_inputs():
    X, Y = _data(5, 4)
    gk = to_gpytorch(ResNetNTK(depth=3))
    xt, yt = _t(X, requires_grad=True), _t(Y, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: gk(a, b).to_dense(), (xt, yt))
    gk = to_gpytorch(NNGP(depth=2, activation="tanh"))
    assert torch.autograd.gradcheck(lambda a, b: gk(a, b).to_dense(), (xt, yt))


def test_hyperparameters_are_positive_parameters():
    gk = to_gpytorch(NTK(weight_variance=1.3, bias_variance=0.2,
                         bias_variance_bounds="fixed"))
    assert isinstance(gk, gpytorch.kernels.Kernel)
    assert isinstance(gk, SkinfiniteKernel)
    assert float(gk.weight_variance.detach()) == pytest.approx(1.3, rel=1e-12)
    assert not gk.raw_bias_variance.requires_grad
    gk.set_hyperparameter("weight_variance", 0.7)
    assert gk.to_sklearn().weight_variance == pytest.approx(0.7, rel=1e-12)


def test_registered_recursion_is_used():
    class Scaled(NNGP):
        pass

    calls = []

    def recursion(kernel, hyper, x1, x2, diag):
        calls.append(diag)
        return hyper["weight_variance"] * (x1 @ x2.T if not diag
                                           else (x1 * x2).sum(-1))

    register_torch_recursion(Scaled, recursion)
    try:
        gk = to_gpytorch(Scaled())
        X, _ = _data(3)
        gk(_t(X), _t(X) + 1).to_dense()
        assert calls == [False]
    finally:
        from skinfinite._torch.bridge import _RECURSIONS
        del _RECURSIONS[Scaled]


def test_bad_arguments():
    with pytest.raises(ValueError, match="backend"):
        to_gpytorch(NNGP(), backend="jax")
    with pytest.raises(TypeError, match="skinfinite kernel"):
        to_gpytorch("relu")
    with pytest.raises(ValueError, match="depth"):
        to_gpytorch(NNGP(depth=0))
    from sklearn.gaussian_process.kernels import RBF
    with pytest.raises(TypeError, match="register"):
        to_gpytorch(RBF())
    with pytest.raises((ValueError, RuntimeError), match="features|dimensions"):
        to_gpytorch(NNGP())(_t(np.ones((2, 3))), _t(np.ones((2, 4)))).to_dense()


def test_missing_gpytorch_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "gpytorch", None)
    monkeypatch.delitem(sys.modules, "skinfinite._torch.bridge", raising=False)
    with pytest.raises(ImportError, match=r'pip install "\.\[gp\]"'):
        import skinfinite._torch.bridge  # noqa: F401
    X = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(ImportError, match=r'pip install "\.\[gp\]"'):
        GPRegressor(max_iter=0).fit(X, X[:, 0])


# -------------------------------------------------------------- estimators
def _regression(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, np.sin(2 * X[:, 0]) + 0.5 * X[:, 1] + 0.1 * rng.normal(size=n)


@pytest.mark.parametrize("normalize_y", [False, True])
def test_gp_regressor_with_fixed_hyperparameters_is_the_exact_posterior(
        normalize_y):
    X, y = _regression()
    Xt = np.random.default_rng(3).normal(size=(15, 3))
    kernel = NTK(depth=2, weight_variance=1.5, bias_variance=0.2)
    gp = GPRegressor(kernel, alpha=1e-2, max_iter=0,
                     normalize_y=normalize_y).fit(X, y)
    mean, std = gp.predict(Xt, return_std=True)
    ref = GaussianProcessRegressor(kernel, alpha=1e-2 if not normalize_y else
                                   1e-2, optimizer=None,
                                   normalize_y=normalize_y).fit(X, y)
    rm, rs = ref.predict(Xt, return_std=True)
    np.testing.assert_allclose(mean, rm, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(std, rs, rtol=1e-8, atol=1e-10)
    if not normalize_y:
        nn = NNGPRegressor(depth=3, alpha=1e-2).fit(X, y)
        gp2 = GPRegressor(NNGP(depth=3), alpha=1e-2, max_iter=0,
                          normalize_y=False).fit(X, y)
        np.testing.assert_allclose(gp2.predict(Xt), nn.predict(Xt),
                                   rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(gp.log_marginal_likelihood_value_,
                                   ref.log_marginal_likelihood_value_,
                                   rtol=1e-9)


@pytest.mark.parametrize("optimizer,lr", [("adam", 0.05), ("lbfgs", 0.5)])
def test_marginal_likelihood_fit_improves(optimizer, lr):
    X, y = _regression()
    start = GPRegressor(max_iter=0, random_state=0).fit(X, y)
    gp = GPRegressor(optimizer=optimizer, learning_rate=lr, max_iter=30,
                     random_state=0).fit(X, y)
    assert gp.log_marginal_likelihood_value_ > \
        start.log_marginal_likelihood_value_ + 5
    assert gp.loss_curve_[-1] < gp.loss_curve_[0]
    assert gp.kernel_.weight_variance != 2.0
    assert gp.alpha_ > 0


def test_gp_regressor_is_deterministic_and_picklable():
    X, y = _regression(40)
    a = GPRegressor(max_iter=5, random_state=1).fit(X, y)
    b = clone(a).fit(X, y)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    c = pickle.loads(pickle.dumps(a))
    np.testing.assert_allclose(c.predict(X), a.predict(X), rtol=1e-12)


def test_svgp_with_training_inducing_points_approaches_exact():
    X, y = _regression(40)
    kernel = NNGP(depth=2, weight_variance_bounds="fixed",
                  bias_variance_bounds="fixed")
    exact = GPRegressor(kernel, alpha=0.05, max_iter=0).fit(X, y)
    svgp = SVGPRegressor(kernel, n_inducing=40, learn_inducing=False,
                         batch_size=40, max_iter=300, learning_rate=0.05,
                         alpha=0.05, fit_alpha=False, init_subset=0,
                         natural_gradient=False, random_state=0)
    # noise fixed too: only the variational distribution is trained (by
    # Adam; the closed-form update at the end then makes it exact)
    svgp.fit(X, y)
    mean, std = exact.predict(X[:10], return_std=True)
    smean, sstd = svgp.predict(X[:10], return_std=True)
    # q(u) starts at its optimum (closed form), and Adam keeps it there
    assert svgp.loss_curve_[-1] == pytest.approx(svgp.loss_curve_[0],
                                                 rel=1e-4)
    scale = np.std(y)
    assert np.abs(smean - mean).max() < 0.05 * scale
    assert np.abs(sstd - std).max() < 0.05 * scale


def test_svgp_natural_gradient_step_is_the_exact_posterior():
    # Gaussian likelihood, inducing points = training set, full batch: one
    # natural-gradient step of size one lands on the optimum, which is the
    # exact posterior.
    X, y = _regression(30)
    kernel = NTK(depth=2, weight_variance_bounds="fixed",
                 bias_variance_bounds="fixed")
    exact = GPRegressor(kernel, alpha=0.05, max_iter=0).fit(X, y)
    svgp = SVGPRegressor(kernel, n_inducing=30, learn_inducing=False,
                         batch_size=30, max_iter=3, alpha=0.05,
                         fit_alpha=False, natural_gradient=True,
                         natural_learning_rate=1.0, random_state=0).fit(X, y)
    Xt = np.random.default_rng(5).normal(size=(8, 3))
    mean, std = exact.predict(Xt, return_std=True)
    smean, sstd = svgp.predict(Xt, return_std=True)
    np.testing.assert_allclose(smean, mean, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(sstd, std, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("natural", [True, False])
def test_svgp_closed_form_variational_is_the_exact_posterior(natural):
    # no training at all: inducing points = training set and the closed-form
    # q(u) reproduce the exact posterior, up to the jitter of K_ZZ
    X, y = _regression(40)
    kernel = NNGP(depth=2)
    exact = GPRegressor(kernel, alpha=0.05, max_iter=0).fit(X, y)
    svgp = SVGPRegressor(kernel, n_inducing=40, max_iter=0, init_subset=0,
                         alpha=0.05, natural_gradient=natural,
                         random_state=0).fit(X, y)
    Xt = np.random.default_rng(7).normal(size=(8, 3))
    mean, std = exact.predict(Xt, return_std=True)
    smean, sstd = svgp.predict(Xt, return_std=True)
    np.testing.assert_allclose(smean, mean, atol=1e-4 * np.std(y))
    np.testing.assert_allclose(sstd, std, atol=1e-4 * np.std(y))


def test_svgp_starts_from_the_subset_marginal_likelihood_fit():
    # a subset as large as the data: the starting hyperparameters are the
    # exact GP's L-BFGS fit on all rows
    X, y = _regression(50)
    exact = GPRegressor(alpha=0.1, optimizer="lbfgs", learning_rate=0.5,
                        max_iter=50).fit(X, y)
    svgp = SVGPRegressor(n_inducing=20, max_iter=0, init_subset=1000,
                         random_state=0).fit(X, y)
    for name in ("weight_variance", "bias_variance"):
        assert getattr(svgp.kernel_, name) == pytest.approx(
            getattr(exact.kernel_, name), rel=1e-6)
    assert svgp.alpha_ == pytest.approx(exact.alpha_, rel=1e-6)
    cold = SVGPRegressor(n_inducing=20, max_iter=0, init_subset=0,
                         random_state=0).fit(X, y)
    assert cold.kernel_.bias_variance == pytest.approx(
        NNGP(depth=3).bias_variance)


def test_svgp_classifier_sanity():
    from sklearn.datasets import make_moons
    X, y = make_moons(200, noise=0.1, random_state=0)
    clf = SVGPClassifier(NNGP(depth=2), n_inducing=30, max_iter=30,
                         batch_size=64, learning_rate=0.05, random_state=0)
    clf.fit(X, np.where(y == 1, "b", "a"))
    assert clf.score(X, np.where(y == 1, "b", "a")) > 0.9
    p = clf.predict_proba(X)
    np.testing.assert_allclose(p.sum(1), 1.0)
    from sklearn.datasets import load_iris
    Xi, yi = load_iris(return_X_y=True)
    clf3 = SVGPClassifier(n_inducing=20, max_iter=20, learning_rate=0.05,
                          n_mc_samples=16, random_state=0).fit(Xi, yi)
    assert clf3.score(Xi, yi) > 0.9
    assert clf3.decision_function(Xi[:4]).shape == (4, 3)
    # each row's probabilities do not depend on the other rows
    np.testing.assert_allclose(clf3.predict_proba(Xi[:5]),
                               clf3.predict_proba(Xi)[:5], rtol=1e-12)
    np.testing.assert_array_equal(clf3.predict_proba(Xi[:5]),
                                  clf3.predict_proba(Xi[:5]))


@pytest.mark.parametrize("params,match", [
    ({"optimizer": "sgd"}, "optimizer"),
    ({"learning_rate": -1.0}, "learning_rate"),
    ({"max_iter": -1}, "max_iter"),
    ({"alpha": 0.0}, "alpha"),
    ({"kernel": "relu"}, "kernel"),
    ({"kernel": NNGP(depth=0)}, "depth"),
    ({"dtype": "float16"}, "dtype"),
])
def test_gp_regressor_bad_params(params, match):
    X, y = _regression(10)
    with pytest.raises((ValueError, TypeError), match=match):
        GPRegressor(**params).fit(X, y)


@pytest.mark.parametrize("params,match", [
    ({"n_inducing": 0}, "n_inducing"),
    ({"batch_size": 0}, "batch_size"),
    ({"max_iter": -2}, "max_iter"),
])
def test_svgp_bad_params(params, match):
    X, y = _regression(10)
    with pytest.raises(ValueError, match=match):
        SVGPRegressor(**params).fit(X, y)
    with pytest.raises(ValueError, match=match):
        SVGPClassifier(**params).fit(X, y > 0)


@pytest.mark.parametrize("params,match", [
    ({"inducing": "grid"}, "inducing"),
    ({"init_subset": -1}, "init_subset"),
])
def test_svgp_regressor_bad_params(params, match):
    X, y = _regression(10)
    with pytest.raises(ValueError, match=match):
        SVGPRegressor(**params).fit(X, y)


def test_single_class_is_rejected():
    X, _ = _regression(10)
    with pytest.raises(ValueError, match="one class"):
        SVGPClassifier().fit(X, np.zeros(10))


_FAST = dict(kernel=NNGP(depth=1))


@parametrize_with_checks([
    GPRegressor(max_iter=3, random_state=0, **_FAST),
    SVGPRegressor(n_inducing=10, max_iter=20, batch_size=64, learning_rate=0.05,
                  random_state=0, **_FAST),
    SVGPClassifier(n_inducing=10, max_iter=15, batch_size=64,
                   learning_rate=0.1, n_mc_samples=8, random_state=0, **_FAST),
])
def test_sklearn_compatible(estimator, check):
    check(estimator)
