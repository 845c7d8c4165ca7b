import pickle

import numpy as np
import pytest
from scipy.linalg import expm
from sklearn.base import clone
from sklearn.datasets import load_digits, load_iris
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.kernel_ridge import KernelRidge
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from skinfinite.kernels import NNGP, NTK, ResNetNNGP, ResNetNTK, nngp_ntk
from skinfinite.models import (NNGPClassifier, NNGPRegressor, NTKClassifier,
                               NTKRegressor)
from skinfinite.linalg.cholesky import NumericalError, cholesky_with_jitter


@parametrize_with_checks([NTKRegressor(), NTKRegressor(training_time=2.0),
                          NNGPRegressor(), NTKClassifier(), NNGPClassifier(),
                          NTKRegressor(architecture="resnet", depth=np.inf),
                          NNGPClassifier(architecture="resnet", depth=4)],
                         expected_failed_checks=lambda est: (
                             {"check_sample_weight_equivalence_on_dense_data":
                              "at alpha=0 repeated samples make the Gram "
                              "singular; its jitter moves predictions by 5e-9"}
                             if est.depth == np.inf else {}))
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _data(rng, n=40, d=3):
    X = rng.normal(size=(n, d))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1]
    return X, y


def test_ntk_regressor_infinite_time_is_kernel_regression(rng):
    X, y = _data(rng)
    Xt = rng.normal(size=(7, 3))
    model = NTKRegressor(depth=2, alpha=1e-3).fit(X, y)
    krr = KernelRidge(kernel=NTK(depth=2), alpha=1e-3).fit(X, y)
    assert np.allclose(model.predict(Xt), krr.predict(Xt), rtol=1e-9)


def test_resnet_architecture_uses_the_resnet_kernels(rng):
    X, y = _data(rng)
    Xt = rng.normal(size=(5, 3))
    for depth in (6, np.inf):
        model = NTKRegressor(architecture="resnet", depth=depth, alpha=1e-3,
                             weight_variance=1.0).fit(X, y)
        krr = KernelRidge(kernel=ResNetNTK(depth=depth), alpha=1e-3).fit(X, y)
        assert np.allclose(model.predict(Xt), krr.predict(Xt), rtol=1e-8)
        gp = NNGPRegressor(architecture="resnet", depth=depth, alpha=1e-2,
                           weight_variance=1.0).fit(X, y)
        ref = GaussianProcessRegressor(ResNetNNGP(depth=depth), alpha=1e-2,
                                       optimizer=None).fit(X, y)
        assert np.allclose(gp.predict(Xt), ref.predict(Xt), rtol=1e-8)
    with pytest.raises(ValueError, match="architecture"):
        NTKRegressor(architecture="cnn").fit(X, y)
    with pytest.raises(ValueError, match="NTK parametrisation"):
        NTKRegressor(architecture="resnet", parametrization="standard").fit(X, y)


def test_ntk_regressor_large_time_matches_infinite_time(rng):
    X, y = _data(rng)
    Xt = rng.normal(size=(7, 3))
    inf = NTKRegressor(alpha=1e-2).fit(X, y)
    late = NTKRegressor(alpha=1e-2, training_time=1e5).fit(X, y)
    m1, s1 = inf.predict(Xt, return_std=True)
    m2, s2 = late.predict(Xt, return_std=True)
    assert np.allclose(m1, m2, rtol=1e-8) and np.allclose(s1, s2, rtol=1e-6)


def test_ntk_gradient_flow_closed_form(rng):
    X, y = _data(rng, n=15)
    Xt = rng.normal(size=(4, 3))
    eta, t = 0.3, 2.0
    model = NTKRegressor(depth=2, training_time=t, learning_rate=eta).fit(X, y)
    K, T = nngp_ntk(X, depth=2)
    Kt, Tt = nngp_ntk(Xt, X, depth=2)
    Ktt, _ = nngp_ntk(Xt, depth=2)
    A = np.linalg.solve(T, np.eye(15) - expm(-eta * t * T))
    assert np.allclose(model.predict(Xt), Tt @ A @ y, rtol=1e-8)
    # covariance of the ensemble (Lee et al. 2019)
    M = Tt @ A
    cov = Ktt + M @ K @ M.T - M @ Kt.T - Kt @ M.T
    _, got = model.predict(Xt, return_cov=True)
    assert np.allclose(got, cov, rtol=1e-7, atol=1e-10)
    _, std = model.predict(Xt, return_std=True)
    assert np.allclose(std, np.sqrt(np.diag(cov)), rtol=1e-7)


def test_ntk_at_time_zero_is_the_prior(rng):
    X, y = _data(rng)
    Xt = rng.normal(size=(5, 3))
    mean, std = NTKRegressor(training_time=0.0).fit(X, y).predict(
        Xt, return_std=True)
    assert np.allclose(mean, 0)
    assert np.allclose(std ** 2, NNGP().diag(Xt))


def test_ntk_training_points_are_interpolated(rng):
    X, y = _data(rng)
    mean, std = NTKRegressor().fit(X, y).predict(X, return_std=True)
    assert np.allclose(mean, y, atol=1e-6) and np.all(std < 1e-3)


def test_nngp_regressor_equals_gaussian_process(rng):
    X, y = _data(rng)
    Xt = rng.normal(size=(6, 3))
    for normalize_y in (False, True):
        ours = NNGPRegressor(depth=2, activation="erf", alpha=1e-2,
                             normalize_y=normalize_y).fit(X, y)
        ref = GaussianProcessRegressor(NNGP(depth=2, activation="erf"),
                                       alpha=1e-2, optimizer=None,
                                       normalize_y=normalize_y).fit(X, y)
        for kw in ({}, {"return_std": True}, {"return_cov": True}):
            a, b = ours.predict(Xt, **kw), ref.predict(Xt, **kw)
            a, b = (a, b) if kw else ((a,), (b,))
            for got, want in zip(a, b):
                assert np.allclose(got, want, rtol=1e-8, atol=1e-12)
        if not normalize_y:
            assert ours.log_marginal_likelihood() == pytest.approx(
                ref.log_marginal_likelihood_value_, rel=1e-10)


def test_multi_output_regression(rng):
    X, y = _data(rng)
    Y = np.column_stack([y, 2 * y + 1])
    Xt = rng.normal(size=(5, 3))
    for model in (NTKRegressor(alpha=1e-3), NNGPRegressor(alpha=1e-2)):
        mean, std = model.fit(X, Y).predict(Xt, return_std=True)
        single = clone(model).fit(X, y).predict(Xt)
        assert mean.shape == (5, 2) and std.shape == (5, 2)
        assert np.allclose(mean[:, 0], single)
    samples = NNGPRegressor(alpha=1e-2).fit(X, Y).sample_y(Xt, 4)
    assert samples.shape == (5, 2, 4)


def test_sample_y_statistics(rng):
    X, y = _data(rng, n=20)
    Xt = rng.normal(size=(3, 3))
    model = NNGPRegressor(alpha=1e-2).fit(X, y)
    draws = model.sample_y(Xt, n_samples=20000, random_state=1)
    mean, std = model.predict(Xt, return_std=True)
    assert np.allclose(draws.mean(1), mean, atol=5 * std.max() / np.sqrt(2e4))
    assert np.allclose(draws.std(1), std, rtol=0.05)


def test_classifiers_on_real_data():
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    Xtr, Xte, ytr, yte = train_test_split(X, y, train_size=600, random_state=0)
    for model in (NTKClassifier(alpha=1e-2), NNGPClassifier(alpha=1e-2)):
        model.fit(Xtr, ytr)
        assert model.score(Xte, yte) > 0.9
        proba = model.predict_proba(Xte[:20])
        assert np.allclose(proba.sum(1), 1)
        assert np.array_equal(model.classes_[proba.argmax(1)],
                              model.predict(Xte[:20]))


def test_binary_decision_function(rng):
    X = rng.normal(size=(50, 2))
    y = np.where(X[:, 0] > 0, "yes", "no")
    model = NTKClassifier(alpha=1e-2).fit(X, y)
    dec = model.decision_function(X)
    assert dec.shape == (50,)
    assert np.array_equal(np.where(dec > 0, "yes", "no"), model.predict(X))


def test_one_class_is_an_error(rng):
    X = rng.normal(size=(5, 2))
    with pytest.raises(ValueError, match="only one class"):
        NNGPClassifier().fit(X, np.ones(5))


def test_jitter_escalation_and_singular_error(rng):
    X, y = _data(rng, n=10)
    Xd = np.vstack([X, X[:3]])
    yd = np.concatenate([y, y[:3]])
    model = NTKRegressor().fit(Xd, yd)
    assert model.jitter_ > 0 and np.all(np.isfinite(model.predict(X)))
    with pytest.raises(NumericalError, match="not positive definite"):
        cholesky_with_jitter(-np.eye(3))


@pytest.mark.parametrize("Model", [NTKRegressor, NNGPRegressor, NTKClassifier,
                                   NNGPClassifier])
def test_bad_input(Model, rng):
    X, y = _data(rng, n=10)
    if Model in (NTKClassifier, NNGPClassifier):
        y = (y > 0).astype(int)
    model = Model().fit(X, y)
    with pytest.raises(ValueError, match="features"):
        model.predict(rng.normal(size=(2, 4)))
    with pytest.raises(ValueError, match="NaN"):
        model.predict(np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="1 sample"):
        Model().fit(X[:1], y[:1])
    with pytest.raises(ValueError, match="dim 3"):
        Model().fit(X.reshape(10, 3, 1), y)
    with pytest.raises(ValueError):
        Model().fit(np.array([["a", "b", "c"]] * 10), y)
    with pytest.raises(ValueError, match="depth"):
        Model(depth=0).fit(X, y)
    with pytest.raises(ValueError, match="weight_variance"):
        Model(weight_variance=-2.0).fit(X, y)
    with pytest.raises(ValueError, match="alpha"):
        Model(alpha=-1.0).fit(X, y)


def test_grid_search_pipeline_and_pickle():
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), NTKClassifier(alpha=1e-2))
    grid = GridSearchCV(pipe, {"ntkclassifier__depth": [1, 3],
                               "ntkclassifier__activation": ["relu", "erf",
                                                             "tanh"]}, cv=3)
    grid.fit(X, y)
    assert grid.best_score_ > 0.9
    restored = pickle.loads(pickle.dumps(grid.best_estimator_))
    assert np.array_equal(restored.predict(X), grid.predict(X))
