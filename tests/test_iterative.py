"""The exact iterative solver: tiled kernel products, the Nyström
preconditioner, conjugate gradients, and the estimators' solver="cg"."""
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks

import skinfinite
from skinfinite._core.tiling import LongComputationWarning
from skinfinite.kernels import NNGP, NTK, SignatureKernel
from skinfinite.linalg import iterative
from skinfinite.linalg.iterative import (NystroemPreconditioner,
                                         RowPartitionedOperator,
                                         TiledKernelOperator, default_rank,
                                         iterative_ridge, rp_cholesky,
                                         stored_bytes)
from skinfinite.models import (NNGPClassifier, NNGPRegressor, NTKClassifier,
                               NTKRegressor, SignatureKernelRegressor)
from skinfinite.models import _base

# 16 bytes per tile entry: tiles of 40 x 40 rows
SMALL_BUDGET = 16 * 40 * 40


def _data(rng, n=240, d=4, noise=0.1):
    X = rng.normal(size=(n, d))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] + noise * rng.normal(size=n)
    return X, y


class _Recording:
    """A kernel that records the shape of every block it computes."""

    def __init__(self, kernel):
        self.kernel, self.shapes = kernel, []

    def __call__(self, A, B=None):
        K = self.kernel(A, B)
        self.shapes.append(K.shape)
        return K


# ---- the operator and the preconditioner --------------------------------

def test_tiled_operator_is_the_gram_product_without_storing_it(rng):
    X, _ = _data(rng, n=130)
    kernel = _Recording(NTK(depth=2))
    op = TiledKernelOperator(kernel, X, budget=SMALL_BUDGET)
    V = rng.normal(size=(130, 3))
    K = NTK(depth=2)(X)
    assert [b.stop - b.start for b in op.blocks] == [40, 40, 40, 10]
    np.testing.assert_allclose(op.matmat(V), K @ V, rtol=1e-12, atol=1e-12)
    # no block larger than a tile; the tiles on and above the diagonal only
    assert max(r * c for r, c in kernel.shapes) <= 40 * 40
    assert len(kernel.shapes) == 4 * 5 // 2
    assert op.kernel_passes == pytest.approx(1.0)
    # the row-partitioned interface: K[block, :] @ V
    for i, rows in enumerate(op.blocks):
        np.testing.assert_allclose(op.block_matmat(i, V), K[rows] @ V,
                                   rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(RowPartitionedOperator.matmat(op, V), K @ V,
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n", [40, 130, 160])
def test_kept_tiles_are_computed_once(rng, n):
    X, _ = _data(rng, n=n)
    kernel = _Recording(NTK(depth=2))
    need = stored_bytes(n, SMALL_BUDGET)
    op = TiledKernelOperator(kernel, X, budget=SMALL_BUDGET, cache=need)
    K = NTK(depth=2)(X)
    V = rng.normal(size=(n, 2))
    np.testing.assert_allclose(op.matmat(V), K @ V, rtol=1e-12, atol=1e-12)
    calls = len(kernel.shapes)
    assert op.cached and sum(t.nbytes for t in op._tiles.values()) == need
    for _ in range(2):
        np.testing.assert_allclose(op.matmat(V), K @ V, rtol=1e-12,
                                   atol=1e-12)
    for i, rows in enumerate(op.blocks):
        np.testing.assert_allclose(op.block_matmat(i, V), K[rows] @ V,
                                   rtol=1e-12, atol=1e-12)
    # products from the kept tiles evaluate no kernel
    assert len(kernel.shapes) == calls
    assert op.kernel_passes == pytest.approx(1.0)
    # one byte short: recomputed at every product
    op = TiledKernelOperator(kernel, X, budget=SMALL_BUDGET, cache=need - 1)
    op.matmat(V)
    op.matmat(V)
    assert not op.cached and op._tiles is None
    assert op.kernel_passes == pytest.approx(2.0)


def test_kept_in_float32(rng):
    X, y = _data(rng, n=130)
    K = NTK(depth=2)(X)
    op = TiledKernelOperator(NTK(depth=2), X, SMALL_BUDGET, cache=10**8,
                             cache_dtype=np.float32)
    assert op.stored_bytes == stored_bytes(130, SMALL_BUDGET) // 2
    V = rng.normal(size=(130, 2))
    for _ in range(2):   # computed, then read from the float32 tiles
        np.testing.assert_allclose(op.matmat(V), K @ V, rtol=1e-5,
                                   atol=1e-5 * np.abs(K @ V).max())
    assert all(t.dtype == np.float32 for t in op._tiles.values())
    with pytest.raises(ValueError, match="cache_dtype must be"):
        TiledKernelOperator(NTK(depth=2), X, cache_dtype=np.int64)


def test_kept_gram_same_solution_and_one_pass(rng):
    X, y = _data(rng, n=200)
    K, alpha = NTK(depth=3)(X), 1e-2
    exact = np.linalg.solve(K + alpha * np.eye(200), y)
    sol = iterative_ridge(NTK(depth=3), X, y, alpha, Z=X[:30], tol=1e-10,
                          budget=SMALL_BUDGET, cache=10**8)
    assert sol.cached and sol.n_iter > 5
    np.testing.assert_allclose(sol.coef[:, 0], exact, rtol=1e-7, atol=1e-7)
    # K once, and the preconditioner's K_nM (2 M / n of a pass)
    assert sol.kernel_passes == pytest.approx(1 + 2 * 30 / 200)
    # inducing points among the rows: their columns are read from K
    rows = np.sort(rng.choice(200, 30, replace=False))
    kernel = _Recording(NTK(depth=3))
    sol = iterative_ridge(kernel, X, y, alpha, inducing_rows=rows, tol=1e-10,
                          budget=SMALL_BUDGET, cache=10**8)
    assert sol.cached and sol.kernel_passes == pytest.approx(1.0)
    assert (30, 30) in kernel.shapes and (200, 30) not in kernel.shapes
    np.testing.assert_allclose(sol.coef[:, 0], exact, rtol=1e-7, atol=1e-7)
    op = TiledKernelOperator(NTK(depth=3), X, SMALL_BUDGET, cache=10**8)
    with pytest.raises(ValueError, match="not kept"):
        op.columns(rows)
    op.keep()
    np.testing.assert_allclose(op.columns(rows), K[:, rows], rtol=1e-12,
                               atol=1e-12)


def test_warm_start_over_alphas_reuses_the_kept_gram(rng):
    X, y = _data(rng, n=200)
    kernel = NTK(depth=3)
    K = kernel(X)
    op = TiledKernelOperator(kernel, X, cache=10**8)
    pre = NystroemPreconditioner(kernel, X, X[:30], 1e-2)
    first = iterative_ridge(kernel, X, y, 1e-2, operator=op,
                            preconditioner=pre, tol=1e-10)
    cold = iterative_ridge(kernel, X, y, 1.2e-2, operator=op,
                           preconditioner=pre.set_alpha(1.2e-2), tol=1e-10)
    warm = iterative_ridge(kernel, X, y, 1.2e-2, operator=op,
                           preconditioner=pre, tol=1e-10, x0=first.coef)
    exact = np.linalg.solve(K + 1.2e-2 * np.eye(200), y)
    for sol in (cold, warm):
        np.testing.assert_allclose(sol.coef[:, 0], exact, rtol=1e-7,
                                   atol=1e-7)
        # neither K nor K_nM is evaluated again
        assert sol.kernel_passes == 0.0
    assert warm.n_iter < cold.n_iter
    # weighted: x0 are the coefficients c, zero weights included
    w = rng.uniform(0.0, 2.0, size=200)
    w[:3] = 0.0
    kw = dict(Z=X[:60], tol=1e-10, sqrt_weight=np.sqrt(w), max_iter=300)
    ref = iterative_ridge(kernel, X, y, 1e-2, **kw)
    again = iterative_ridge(kernel, X, y, 1e-2, x0=ref.coef, **kw)
    assert again.n_iter <= 1
    np.testing.assert_allclose(again.coef, ref.coef, rtol=1e-8, atol=1e-10)
    with pytest.raises(ValueError, match="x0 has shape"):
        iterative_ridge(kernel, X, y, 1e-2, x0=np.zeros(5), Z=X[:30])


def test_rp_cholesky_factor(rng):
    X, y = _data(rng, n=150)
    kernel = NTK(depth=3)
    K = kernel(X)
    F, pivots = rp_cholesky(kernel, X, 150, block=20, random_state=0)
    np.testing.assert_allclose(F @ F.T, K, atol=1e-6 * np.abs(K).max())
    # a low rank: K - F F^T is positive semidefinite, its trace falls with
    # the rank, and the pivots are distinct rows
    errors = []
    for rank in (10, 40):
        F, pivots = rp_cholesky(kernel, X, rank, random_state=1)
        assert F.shape == (150, rank) and len(set(pivots)) == rank
        E = K - F @ F.T
        assert np.linalg.eigvalsh(E).min() > -1e-8 * np.trace(K)
        # the factor is the Nyström approximation on its pivots
        KS = K[:, pivots]
        np.testing.assert_allclose(
            F @ F.T, KS @ np.linalg.pinv(K[np.ix_(pivots, pivots)]) @ KS.T,
            atol=1e-6 * np.abs(K).max())
        errors.append(np.trace(E))
    assert errors[1] < 0.5 * errors[0]
    # as a preconditioner: the exact solution
    pre = NystroemPreconditioner.from_factor(F, 1e-2)
    sol = iterative_ridge(kernel, X, y, 1e-2, preconditioner=pre, tol=1e-10)
    np.testing.assert_allclose(sol.coef[:, 0],
                               np.linalg.solve(K + 1e-2 * np.eye(150), y),
                               rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("budget", [None, 4000])
def test_preconditioner_is_exact_on_all_rows(rng, budget):
    # Z = X: the Nyström approximation is K itself, so P^-1 (K + alpha I)
    # is the identity; a small budget recomputes K_nM at every application
    X, _ = _data(rng, n=90)
    K, alpha = NNGP(depth=2)(X), 0.05
    d = rng.uniform(0.5, 1.5, size=90)
    pre = NystroemPreconditioner(NNGP(depth=2), X, X, alpha, d, budget)
    assert pre.cached == (budget is None)
    V = rng.normal(size=(90, 2))
    A = d[:, None] * K * d[None, :] + alpha * np.eye(90)
    np.testing.assert_allclose(pre.apply(A @ V), V, rtol=1e-6, atol=1e-6)


def test_solution_is_the_direct_solve(rng):
    X, y = _data(rng, n=200)
    Y = np.column_stack([y, np.cos(X[:, 2])])
    K, alpha = NTK(depth=3)(X), 1e-2
    sol = iterative_ridge(NTK(depth=3), X, Y, alpha, Z=X[:60], tol=1e-10,
                          budget=SMALL_BUDGET)
    exact = np.linalg.solve(K + alpha * np.eye(200), Y)
    assert sol.converged and 1 < sol.n_iter < 100
    assert sol.rank == 60
    np.testing.assert_allclose(sol.coef, exact, rtol=1e-7, atol=1e-7)
    # one symmetric pass per iteration, the preconditioner's K_nM besides
    assert sol.n_iter <= sol.kernel_passes <= sol.n_iter + 2
    # weighted ridge (K + alpha W^-1) c = y
    w = rng.uniform(0.2, 2.0, size=200)
    sol = iterative_ridge(NTK(depth=3), X, y, alpha, Z=X[:60], tol=1e-10,
                          sqrt_weight=np.sqrt(w))
    exact = np.linalg.solve(K + np.diag(alpha / w), y)
    np.testing.assert_allclose(sol.coef[:, 0], exact, rtol=1e-7, atol=1e-7)


def test_more_inducing_points_fewer_iterations(rng):
    X, y = _data(rng, n=300, d=6)
    iters = [iterative_ridge(NTK(depth=3), X, y, 1e-2, Z=X[:m],
                             tol=1e-6).n_iter for m in (10, 100, 300)]
    assert iters[0] > iters[1] > iters[2] == 1


def test_signature_kernel_on_paths(rng):
    paths = np.cumsum(rng.normal(size=(36, 8, 2)), axis=1) * 0.2
    y = paths[:, -1, 0] - paths[:, 0, 1]
    kernel = SignatureKernel("rbf", dyadic_order=0, normalize=True)
    sol = iterative_ridge(kernel, paths, y, 0.05, Z=paths[:10], tol=1e-10,
                          budget=16 * 16 * 16)
    K = kernel(paths)
    np.testing.assert_allclose(sol.coef[:, 0],
                               np.linalg.solve(K + 0.05 * np.eye(36), y),
                               rtol=1e-7, atol=1e-7)


def test_signature_regressor_predictions(rng):
    # the estimator's fixed kernel on its standardised paths, solved by CG
    paths = np.cumsum(rng.normal(size=(36, 8, 2)), axis=1) * 0.2
    y = np.sin(paths[:, -1, 0])
    model = SignatureKernelRegressor(alpha=0.05, kernel=SignatureKernel(
        "rbf", dyadic_order=0)).fit(paths[:30], y[:30])
    train = model.paths_fit_
    sol = iterative_ridge(model.kernel_, train, y[:30], 0.05,
                          Z=train.take(np.arange(10)), tol=1e-10,
                          budget=16 * 12 * 12)
    test = model._read_paths(paths[30:], reset=False)
    np.testing.assert_allclose(model.kernel_(test, train) @ sol.coef[:, 0],
                               model.predict(paths[30:]), rtol=1e-7,
                               atol=1e-8)


def test_any_row_partitioned_operator_and_preconditioner(rng):
    # the interface another engine implements: row blocks of K, and P^-1
    X, y = _data(rng, n=120)
    K, alpha = NTK(depth=2)(X), 1e-2

    class Dense(RowPartitionedOperator):
        n = 120
        blocks = [slice(0, 50), slice(50, 120)]

        def block_matmat(self, i, V):
            return K[self.blocks[i]] @ V

    pre = NystroemPreconditioner(NTK(depth=2), X, X[:30], alpha)
    sol = iterative_ridge(None, X, y, alpha, operator=Dense(),
                          preconditioner=pre, tol=1e-10)
    np.testing.assert_allclose(sol.coef[:, 0],
                               np.linalg.solve(K + alpha * np.eye(120), y),
                               rtol=1e-7, atol=1e-7)
    assert sol.rank == 30


def test_no_convergence_warns_and_keeps_best_iterate(rng):
    X, y = _data(rng)
    with pytest.warns(ConvergenceWarning, match="after 2 iterations") as w:
        sol = iterative_ridge(NTK(depth=3), X, y, 1e-4, Z=X[:5], tol=1e-12,
                              max_iter=2)
    assert not sol.converged and sol.n_iter == 2
    assert w[0].filename == __file__


def test_long_computation_warns_before_the_iterations(rng, monkeypatch):
    X, y = _data(rng, n=100)
    monkeypatch.setattr(iterative, "LONG_COMPUTATION", 0.0)
    with pytest.warns(LongComputationWarning, match="passes would take") as w:
        iterative_ridge(NTK(depth=2), X, y, 1e-2, Z=X[:10])
    assert w[0].filename == __file__
    # K kept: one pass, estimated from its first tile
    with pytest.warns(LongComputationWarning, match="first tile, so 1 pass would take"):
        iterative_ridge(NTK(depth=2), X, y, 1e-2, inducing_rows=np.arange(10),
                        cache=10**8, budget=SMALL_BUDGET)


def test_bad_input(rng):
    X, y = _data(rng, n=50)
    with pytest.raises(ValueError, match="needs alpha > 0"):
        iterative_ridge(NTK(depth=2), X, y, 0.0)

    class Short(RowPartitionedOperator):
        n = 10
    with pytest.raises(ValueError, match="operator has 10 rows"):
        iterative_ridge(NTK(depth=2), X, y, 0.1, operator=Short())
    assert default_rank(50) == 50 and default_rank(10**6) == 2000


# ---- the estimators -----------------------------------------------------

@pytest.mark.parametrize("cls, params", [
    (NTKRegressor, {}),
    (NNGPRegressor, {}),
    (NTKRegressor, {"architecture": "resnet"}),
    (NNGPRegressor, {"architecture": "resnet", "depth": 5}),
])
def test_regressors_predict_as_cholesky(rng, cls, params):
    X, y = _data(rng)
    Xt, _ = _data(rng, n=30)
    params = {"depth": 3, "alpha": 1e-2, **params}
    exact = cls(solver="cholesky", **params).fit(X, y)
    model = cls(solver="cg", tol=1e-10, n_inducing=40, random_state=0,
                **params).fit(X, y)
    assert model.solver_ == "cg" and 1 < model.n_iter_ < 100
    assert model.inducing_points_.shape == (40, 4)
    np.testing.assert_allclose(model.predict(Xt), exact.predict(Xt),
                               rtol=1e-7, atol=1e-8)
    with pytest.raises(NotImplementedError, match="'cg' solver gives"):
        model.predict(Xt, return_std=True)


def test_convolutional_regressor_predicts_as_cholesky(rng):
    X = rng.normal(size=(120, 30))
    y = X[:, :4].sum(axis=1)
    params = dict(depth=2, alpha=1e-2, architecture="convolutional")
    exact = NTKRegressor(solver="cholesky", **params).fit(X, y)
    model = NTKRegressor(solver="cg", tol=1e-10, n_inducing=30,
                         random_state=0, **params).fit(X, y)
    np.testing.assert_allclose(model.predict(X[:20]), exact.predict(X[:20]),
                               rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("cls", [NTKClassifier, NNGPClassifier])
def test_classifiers_decide_as_cholesky(rng, cls):
    X, y = _data(rng)
    labels = np.digitize(y, [-0.5, 0.5])   # three classes
    exact = cls(depth=3, alpha=1e-2, solver="cholesky").fit(X, labels)
    model = cls(depth=3, alpha=1e-2, solver="cg", tol=1e-10, n_inducing=40,
                random_state=0).fit(X, labels)
    assert model.solver_ == "cg" and model.n_iter_ > 1
    assert model.gram_cached_ == "float64" and exact.gram_cached_ is None
    np.testing.assert_allclose(model.decision_function(X),
                               exact.decision_function(X), rtol=1e-6,
                               atol=1e-8)
    np.testing.assert_array_equal(model.predict(X), exact.predict(X))


def test_kept_or_recomputed_gram_same_predictions(rng):
    X, y = _data(rng)
    params = dict(depth=3, alpha=1e-2, solver="cg", tol=1e-10,
                  n_inducing=40, random_state=0)
    exact = NTKRegressor(depth=3, alpha=1e-2, solver="cholesky").fit(X, y)
    kept = NTKRegressor(**params).fit(X, y)
    # 240 rows: K's tiles take 461 kB
    with skinfinite.config_context(gram_memory="400kB"):
        streamed = NTKRegressor(**params).fit(X, y)
    # float32 tiles (230 kB) fit, kept only when tol allows
    with skinfinite.config_context(gram_memory="300kB"):
        single = NTKRegressor(**{**params, "tol": 1e-4}).fit(X, y)
        assert NTKRegressor(**params).fit(X, y).gram_cached_ is None
    assert kept.gram_cached_ == "float64" and streamed.gram_cached_ is None
    assert single.gram_cached_ == "float32"
    np.testing.assert_allclose(single.predict(X), exact.predict(X),
                               rtol=1e-3, atol=1e-3)
    for model in (kept, streamed):
        np.testing.assert_allclose(model.predict(X), exact.predict(X),
                                   rtol=1e-7, atol=1e-8)


def test_sample_weight_as_cholesky(rng):
    X, y = _data(rng, n=150)
    w = rng.uniform(0.0, 2.0, size=150)
    w[:5] = 0.0
    exact = NNGPRegressor(alpha=1e-2, solver="cholesky").fit(X, y, w)
    model = NNGPRegressor(alpha=1e-2, solver="cg", tol=1e-10, n_inducing=30,
                          random_state=0).fit(X, y, w)
    np.testing.assert_allclose(model.predict(X), exact.predict(X),
                               rtol=1e-7, atol=1e-8)


def test_estimator_reports_no_convergence(rng):
    X, y = _data(rng)
    with pytest.warns(ConvergenceWarning,
                      match=r"did not converge.*max_iter=3.*tol=1e-12"):
        model = NTKRegressor(alpha=1e-4, solver="cg", n_inducing=5,
                             tol=1e-12, max_iter=3, random_state=0).fit(X, y)
    assert model.n_iter_ == 3


def test_estimator_errors(rng):
    X, y = _data(rng, n=50)
    with pytest.raises(ValueError, match="needs alpha > 0"):
        NTKRegressor(solver="cg").fit(X, y)
    with pytest.raises(ValueError, match="training_time needs solver"):
        NTKRegressor(solver="cg", alpha=0.1, training_time=1.0).fit(X, y)
    with pytest.raises(ValueError, match="n_inducing=60 is larger"):
        NTKRegressor(solver="cg", alpha=0.1, n_inducing=60).fit(X, y)
    with pytest.raises(ValueError, match="'solver' parameter .* must be one of"):
        NTKRegressor(solver="pcg").fit(X, y)
    with pytest.raises(ValueError, match="gram_memory"):
        skinfinite.set_config(gram_memory="lots")


def test_auto_choice(rng, monkeypatch):
    X, y = _data(rng, n=120)
    # small: the Gram and its factor fit
    assert NTKRegressor(alpha=1e-2).fit(X, y).solver_ == "cholesky"
    # two 120 x 120 float64 matrices are 230 kB
    with skinfinite.config_context(gram_memory="200kB"):
        assert NTKRegressor(alpha=1e-2).fit(X, y).solver_ == "cg"
        assert NNGPClassifier(alpha=1e-2).fit(X, y > 0).solver_ == "cg"
        # alpha too small for CG to converge in reasonable time
        assert NTKRegressor(alpha=1e-9).fit(X, y).solver_ == "nystroem"
        assert NTKRegressor().fit(X, y).solver_ == "nystroem"
        # a finite training time needs the eigendecomposition
        assert NTKRegressor(alpha=1e-2, training_time=1.0).fit(
            X, y).solver_ == "cholesky"
    with skinfinite.config_context(gram_memory="300kB"):
        assert NTKRegressor(alpha=1e-2).fit(X, y).solver_ == "cholesky"
    # beyond the sizes the exact solvers handle in reasonable time
    monkeypatch.setattr(_base, "AUTO_MAX_EXACT", 100)
    assert NTKRegressor(alpha=1e-2).fit(X, y).solver_ == "cg"
    monkeypatch.setattr(_base, "AUTO_MAX_ITERATIVE", 100)
    # beyond it, "cg" while K's tiles (4 n^2 bytes) fit in gram_memory
    model = NTKRegressor(alpha=1e-2).fit(X, y)
    assert model.solver_ == "cg" and model.gram_cached_
    with skinfinite.config_context(gram_memory="50kB"):
        assert NTKRegressor(alpha=1e-2).fit(X, y).solver_ == "nystroem"
    # 120 rows: 115 kB in float64, 58 kB in float32 (with tol >= 1e-4)
    with skinfinite.config_context(gram_memory="100kB"):
        assert NTKRegressor(alpha=1e-2).fit(X, y).solver_ == "nystroem"
        model = NTKRegressor(alpha=1e-2, tol=1e-3).fit(X, y)
        assert model.solver_ == "cg" and model.gram_cached_ == "float32"


@pytest.mark.parametrize("n, tol, solver, kept", [
    (20000, 1e-6, "cholesky", "float64"),  # 16 n^2 = 6.4 GB
    (30000, 1e-6, "cg", "float64"),       # 14.4 GB too much; K 3.6 GB
    (50000, 1e-6, "cg", "float64"),       # K 10.8 GB
    (60000, 1e-6, "nystroem", None),      # K 14.4 GB, tol too tight for f32
    (60000, 1e-3, "cg", "float32"),       # K in float32 7.2 GB
    (80000, 1e-3, "nystroem", None),      # 12.8 GB even in float32
])
def test_auto_choice_at_documented_sizes(rng, monkeypatch, n, tol, solver,
                                         kept):
    # the sizing table of the user guide, on a machine of 24 GB
    monkeypatch.setattr(_base, "_physical_memory", lambda: 24e9)
    X, y = _data(rng, n=30)
    model = NTKRegressor(alpha=1e-2, tol=tol).fit(X, y)
    assert model._resolve_solver(n, X=X, kind="ntk") == solver
    assert _base.kept_gram_dtype(n, tol) == (
        None if kept is None else np.dtype(kept))


@parametrize_with_checks([
    NTKRegressor(solver="cg", alpha=1e-2, random_state=0),
    NNGPClassifier(solver="cg", alpha=1e-2, n_inducing=5, random_state=0)])
def test_sklearn_compatible_cg(estimator, check):
    with warnings.catch_warnings():
        # CG on tiny, nearly degenerate check data may stop at max_iter
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)
