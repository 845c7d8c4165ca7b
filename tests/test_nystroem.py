import pickle
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks

import skinfinite
from skinfinite.linalg.nystroem import (FalkonPreconditioner, choose_strategy,
                                  conjugate_gradient, nystroem_ridge)
from skinfinite.empirical.random_features import InducingPoints
from skinfinite.kernels import NNGP, NTK
from skinfinite.models import (NNGPClassifier, NNGPRegressor, NTKClassifier,
                               NTKRegressor)
from skinfinite.models import _base


_WEIGHT_CHECKS = ("check_sample_weights_pandas_series",
                  "check_sample_weights_not_an_array",
                  "check_sample_weights_list", "check_sample_weights_shape",
                  "check_sample_weights_not_overwritten",
                  "check_sample_weight_equivalence_on_dense_data",
                  "check_classifiers_one_label_sample_weights")


def _underfit_checks(estimator):
    # an unregularised least-squares fit on ten kernel functions scores below
    # the check's R^2 threshold of 0.5; the Nyström solver refuses
    # sample_weight (the exact solver takes it); everything else must pass
    failing = {name: "the Nyström solver takes no sample_weight"
               for name in _WEIGHT_CHECKS}
    if isinstance(estimator, NTKRegressor) and estimator.n_inducing == 10:
        failing["check_regressors_train"] = ("10 inducing points underfit "
                                             "the check's data")
    return failing


@parametrize_with_checks([
    # default n_inducing: min(n, 1000), all rows on the checks' small data
    NTKRegressor(solver="nystroem", random_state=0),
    NNGPRegressor(solver="nystroem", inducing="leverage", random_state=0),
    NTKClassifier(solver="nystroem", random_state=0),
    NNGPClassifier(solver="nystroem", random_state=0),
    # fewer inducing points than rows
    NTKRegressor(solver="nystroem", n_inducing=10, random_state=0),
    NNGPRegressor(solver="nystroem", n_inducing=10, inducing="leverage",
                  random_state=0),
    NTKClassifier(solver="nystroem", n_inducing=10, inducing="kmeans",
                  random_state=0),
    NNGPClassifier(solver="nystroem", n_inducing=10, random_state=0)],
    expected_failed_checks=_underfit_checks)
def test_sklearn_compatible_nystroem(estimator, check):
    with warnings.catch_warnings():
        # CG on tiny, nearly degenerate check data may stop at max_iter
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


def _data(rng, n=600, d=4, noise=0.1):
    X = rng.normal(size=(n, d))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2] + noise * rng.normal(size=n)
    return X, y


def _dense_nystroem(kernel, X, Z, Y, alpha):
    K_nM, K_MM = kernel(X, Z), kernel(Z)
    return np.linalg.solve(K_nM.T @ K_nM + alpha * K_MM, K_nM.T @ Y)


@pytest.mark.parametrize("strategy", ["cache", "normal", "stream"])
@pytest.mark.parametrize("alpha", [1e-2, 0.0])
def test_pcg_solves_the_nystroem_system(rng, strategy, alpha):
    X, y = _data(rng)
    Y = np.column_stack([y, np.cos(X[:, 3])])
    Z = X[rng.choice(len(X), 60, replace=False)]
    kernel = NTK(depth=3)
    sol = nystroem_ridge(kernel, X, Z, Y, alpha, tol=1e-12, max_iter=500,
                         strategy=strategy)
    ref = _dense_nystroem(kernel, X, Z, Y, alpha)
    assert sol.converged and sol.strategy == strategy
    # compare fitted values: the coefficients of an ill-conditioned K_MM
    # are less well determined than the function they define
    K_nM = kernel(X, Z)
    fit, fit_ref = K_nM @ sol.coef, K_nM @ ref
    assert np.abs(fit - fit_ref).max() < 1e-7 * np.abs(fit_ref).max()
    H = K_nM.T @ K_nM + alpha * kernel(Z)
    assert np.allclose(H @ sol.coef, K_nM.T @ Y, rtol=0, atol=1e-8 * np.abs(
        K_nM.T @ Y).max())


def test_kernel_passes_per_strategy(rng):
    X, y = _data(rng, n=300)
    Z = X[:40]
    runs = {s: nystroem_ridge(NNGP(depth=2), X, Z, y, 1e-2, strategy=s)
            for s in ("cache", "normal", "stream")}
    assert runs["cache"].kernel_passes == 1
    assert runs["normal"].kernel_passes == 1
    assert runs["stream"].kernel_passes == runs["stream"].n_iter + 1


def test_streaming_with_tiny_budget_equals_cached(rng):
    X, y = _data(rng, n=500)
    Z = X[:50]
    kernel = NTK(depth=2)
    cached = nystroem_ridge(kernel, X, Z, y, 1e-3, tol=1e-10,
                            strategy="cache")
    with skinfinite.config_context(memory_budget=2000):
        # K_nM (200 kB) and K_nM^T K_nM (20 kB) exceed 8 x 2 kB; tiles of
        # 2 rows
        assert choose_strategy(500, 50) == "stream"
        streamed = nystroem_ridge(kernel, X, Z, y, 1e-3, tol=1e-10)
    assert streamed.strategy == "stream"
    assert np.allclose(streamed.coef, cached.coef, rtol=1e-8, atol=1e-10)
    with skinfinite.config_context(memory_budget=3000):
        assert choose_strategy(500, 50) == "normal"
        normal = nystroem_ridge(kernel, X, Z, y, 1e-3, tol=1e-10)
    assert normal.strategy == "normal"
    assert np.allclose(normal.coef, cached.coef, rtol=1e-7, atol=1e-9)


def test_strategy_rule():
    budget = 2**20  # 8 MiB for K_nM or its normal matrix
    assert choose_strategy(100, 10, budget) == "normal"
    assert choose_strategy(10**6, 100, budget) == "normal"
    assert choose_strategy(10**6, 2000, budget) == "stream"
    budget = 2**30
    assert choose_strategy(10**5, 5000, budget) == "cache"
    assert choose_strategy(10**6, 5000, budget) == "normal"
    assert choose_strategy(10**6, 5000, 2**20) == "stream"


def test_preconditioner_needs_few_iterations(rng):
    X, y = _data(rng, n=2000)
    Z = X[rng.choice(len(X), 200, replace=False)]
    kernel, alpha = NTK(depth=3), 1e-3
    K_nM, K_MM = kernel(X, Z), kernel(Z)
    H = K_nM.T @ K_nM + alpha * K_MM
    b = K_nM.T @ y[:, None]
    pre = FalkonPreconditioner(K_MM, alpha, len(X))
    _, it_pre, res_pre = conjugate_gradient(lambda v: H @ v, b, pre.apply,
                                            1e-8, 200)
    _, it_plain, res_plain = conjugate_gradient(lambda v: H @ v, b,
                                                lambda r: r, 1e-8, 200)
    assert res_pre[0] <= 1e-8 and it_pre <= 40
    # plain CG is far from converged after five times as many iterations
    assert it_plain == 200 and res_plain[0] > 1e-6


def test_conjugate_gradient_matches_solve_per_column(rng):
    A = rng.normal(size=(30, 30))
    A = A @ A.T + np.eye(30)
    B = rng.normal(size=(30, 3))
    B[:, 2] = 0.0  # a zero right-hand side is solved by zero
    X, it, res = conjugate_gradient(lambda v: A @ v, B, lambda r: r, 1e-12,
                                    200)
    assert np.allclose(X, np.linalg.solve(A, B), atol=1e-9)
    assert np.all(res <= 1e-12) and np.all(X[:, 2] == 0)


def test_non_convergence_warns_and_returns_best_iterate(rng):
    X, y = _data(rng, n=400)
    Z = X[:100]
    with pytest.warns(ConvergenceWarning, match=r"after 2 iterations.*"
                      r"relative residual") as w:
        sol = nystroem_ridge(NTK(depth=3), X, Z, y, 0.0, tol=1e-14,
                             max_iter=2)
    assert w[0].filename == __file__
    assert not sol.converged and sol.n_iter == 2
    full = nystroem_ridge(NTK(depth=3), X, Z, y, 0.0, tol=1e-14,
                          max_iter=1000)
    assert np.all(sol.residual > full.residual)
    assert np.all(np.isfinite(sol.coef))
    with pytest.warns(ConvergenceWarning, match="iterations"):
        NTKRegressor(solver="nystroem", n_inducing=100, max_iter=1,
                     random_state=0).fit(X, y)


@pytest.mark.parametrize("estimator", [NTKRegressor, NNGPRegressor])
def test_all_points_inducing_recovers_exact_estimator(rng, estimator):
    X, y = _data(rng, n=300)
    Y = np.column_stack([y, X[:, 0] ** 2])
    Xt = rng.normal(size=(50, 4))
    exact = estimator(alpha=1e-2, solver="cholesky").fit(X, Y)
    nys = estimator(alpha=1e-2, solver="nystroem", n_inducing=300,
                    random_state=0, tol=1e-12).fit(X, Y)
    assert exact.solver_ == "cholesky" and nys.solver_ == "nystroem"
    assert np.allclose(nys.predict(Xt), exact.predict(Xt), rtol=1e-7,
                       atol=1e-8)


def test_error_shrinks_towards_exact_as_inducing_points_grow(rng):
    X, y = _data(rng, n=800)
    Xt = rng.normal(size=(200, 4))
    exact = NTKRegressor(alpha=1e-2).fit(X, y).predict(Xt)
    gaps = [np.abs(NTKRegressor(alpha=1e-2, solver="nystroem", n_inducing=M,
                                random_state=0).fit(X, y).predict(Xt)
                   - exact).max() for M in (50, 200, 800)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 1e-5


def test_classifiers_with_nystroem():
    X, y = load_iris(return_X_y=True)
    for cls in (NTKClassifier, NNGPClassifier):
        exact = cls(depth=2, alpha=1e-2).fit(X, y)
        nys = cls(depth=2, alpha=1e-2, solver="nystroem", n_inducing=60,
                  random_state=0).fit(X, y)
        assert exact.solver_ == "cholesky" and nys.solver_ == "nystroem"
        coef = nys.regressor_.dual_coef_
        # iris has duplicated rows, kept once among the inducing points
        M = len(nys.regressor_.inducing_points_)
        assert 55 <= M <= 60 and coef.shape == (M, 3)
        assert nys.score(X, y) > 0.93
        agree = np.mean(nys.predict(X) == exact.predict(X))
        assert agree > 0.95
        assert nys.predict_proba(X[:5]).shape == (5, 3)
        full = cls(depth=2, alpha=1e-2, solver="nystroem", n_inducing=150,
                   random_state=0, tol=1e-12).fit(X, y)
        # the normal matrix K_nM^T K_nM squares K's condition number: on
        # iris (unscaled features, ||K|| ~ 3e3, alpha 1e-2) that costs
        # about 1e-6 of accuracy
        assert np.allclose(full.decision_function(X),
                           exact.decision_function(X), atol=1e-5)


def test_pickle_round_trip(rng):
    X, y = _data(rng, n=200)
    model = NTKRegressor(solver="nystroem", n_inducing=30,
                         random_state=0).fit(X, y)
    again = pickle.loads(pickle.dumps(model))
    assert np.array_equal(again.predict(X[:5]), model.predict(X[:5]))


def test_auto_rule(rng, monkeypatch):
    X, y = _data(rng, n=120)
    assert NTKRegressor().fit(X, y).solver_ == "cholesky"
    monkeypatch.setattr(_base, "AUTO_MAX_EXACT", 100)
    model = NTKRegressor(random_state=0).fit(X, y)
    assert model.solver_ == "nystroem"
    # default n_inducing: min(n, max(1000, 2 sqrt(n))) = n here
    assert model.inducing_points_.shape == (120, 4)
    # a finite training time needs the exact solver, which auto then takes
    assert NTKRegressor(training_time=1.0).fit(X, y).solver_ == "cholesky"
    assert NNGPClassifier().fit(X, y > 0).solver_ == "nystroem"


def test_estimator_errors(rng):
    X, y = _data(rng, n=50)
    with pytest.raises(ValueError, match="n_inducing=60 is larger"):
        NTKRegressor(solver="nystroem", n_inducing=60).fit(X, y)
    with pytest.raises(ValueError, match="'solver' parameter .* must be one of"):
        NTKRegressor(solver="pcg").fit(X, y)
    with pytest.raises(ValueError, match="'inducing' parameter .* must be one of"):
        NNGPRegressor(solver="nystroem", inducing="random").fit(X, y)
    with pytest.raises(ValueError, match="'tol' parameter"):
        NNGPRegressor(solver="nystroem", tol=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="training_time needs solver"):
        NTKRegressor(solver="nystroem", training_time=1.0).fit(X, y)
    ntk = NTKRegressor(solver="nystroem", n_inducing=20).fit(X, y)
    with pytest.raises(NotImplementedError, match="solver='cholesky'"):
        ntk.predict(X, return_std=True)
    gp = NNGPRegressor(solver="nystroem", n_inducing=20).fit(X, y)
    for call in (lambda: gp.predict(X, return_cov=True),
                 lambda: gp.sample_y(X), gp.log_marginal_likelihood):
        with pytest.raises(NotImplementedError, match="solver='cholesky'"):
            call()


# ---- inducing-point selection ------------------------------------------

@pytest.mark.parametrize("method", ["uniform", "kmeans", "leverage"])
def test_inducing_selection_is_deterministic_and_unique(rng, method):
    X = rng.normal(size=(400, 3))
    make = lambda seed: InducingPoints(40, method=method, kernel=NTK(depth=2),
                                       random_state=seed).fit(X)
    a, b, c = make(0), make(0), make(1)
    assert a.points_.shape == (40, 3)
    assert np.array_equal(a.points_, b.points_)
    assert not np.array_equal(a.points_, c.points_)
    assert len(np.unique(a.points_, axis=0)) == 40
    if method == "kmeans":
        assert a.indices_ is None
    else:
        assert len(np.unique(a.indices_)) == 40
        assert np.array_equal(X[a.indices_], a.points_)


def test_duplicate_rows_are_selected_once(rng):
    X = np.repeat(rng.normal(size=(20, 2)), 3, axis=0)
    for method in ("uniform", "leverage"):
        sel = InducingPoints(30, method=method, kernel=NTK(),
                             random_state=0).fit(X)
        assert len(np.unique(sel.points_, axis=0)) == len(sel.points_)
        assert 10 <= len(sel.points_) <= 20
        assert np.array_equal(X[sel.indices_], sel.points_)


def test_leverage_favours_outliers(rng):
    # 1000 points in a tight cluster and 10 isolated ones: each outlier is
    # poorly explained by any uniform subsample, so its score is large
    centre = np.array([3.0, 0.0, 0.0])
    cluster = centre + 0.05 * rng.normal(size=(1000, 3))
    outliers = 3.0 * np.linalg.qr(rng.normal(size=(3, 3)))[0][:, :3].T
    outliers = np.vstack([outliers, -outliers, 3 * rng.normal(size=(4, 3))])
    X = np.vstack([cluster, outliers])
    is_outlier = np.arange(len(X)) >= 1000
    kernel = NNGP(depth=2, bias_variance=0.0)
    lev = InducingPoints(20, method="leverage", kernel=kernel,
                         random_state=0).fit(X)
    assert lev.scores_[is_outlier].min() > 10 * np.median(
        lev.scores_[~is_outlier])
    chosen = np.isin(np.arange(len(X)), lev.indices_)
    assert chosen[is_outlier].sum() >= 8
    uni = InducingPoints(20, random_state=0).fit(X)
    assert np.isin(uni.indices_, np.flatnonzero(is_outlier)).sum() <= 2


def test_selection_by_index_works_on_sequences(rng):
    # ragged "paths" with a kernel on their mean increments
    paths = [rng.normal(size=(rng.integers(3, 7), 2)).cumsum(0)
             for _ in range(30)]

    class MeanKernel:
        def __call__(self, A, B):
            fa = np.array([np.r_[p.mean(0), 1.0] for p in A])
            fb = np.array([np.r_[p.mean(0), 1.0] for p in B])
            return (fa @ fb.T + 1.0) ** 2

        def diag(self, A):
            return np.diag(self(A, A))

    for method in ("uniform", "leverage"):
        sel = InducingPoints(5, method=method, kernel=MeanKernel(),
                             random_state=0).fit(paths)
        assert len(sel.points_) == 5
        assert all(sel.points_[i] is paths[j]
                   for i, j in enumerate(sel.indices_))
    with pytest.raises(ValueError, match="kmeans.*vector data"):
        InducingPoints(5, method="kmeans").fit(paths)
    with pytest.raises(ValueError, match="kmeans.*vector data"):
        InducingPoints(5, method="kmeans").fit(rng.normal(size=(30, 4, 2)))


def test_inducing_errors(rng):
    X = rng.normal(size=(10, 2))
    with pytest.raises(ValueError, match="n_inducing=11 is larger"):
        InducingPoints(11).fit(X)
    with pytest.raises(ValueError, match="method must be one of"):
        InducingPoints(3, method="random").fit(X)
    with pytest.raises(ValueError, match="needs a kernel"):
        InducingPoints(3, method="leverage").fit(X)
    with pytest.raises(ValueError, match="n_inducing must be >= 1"):
        InducingPoints(0).fit(X)
