"""Benchmarks of the Nyström solver of the kernel-regression estimators.

Synthetic regression in 20 dimensions (the data of
``asv_bench/peers/compare_nystroem.py``), depth-3 ReLU NTK, ``alpha=0.01``.
``NystroemRegression`` times fit plus predict with the Nyström solver and,
at the same M, scikit-learn's ``Nystroem(kernel=NTK(...))`` + ``Ridge``
pipeline; ``NystroemScale`` the fit at larger n (time and peak memory).
The million-row figure of docs/performance.rst is too long for asv; it comes
from ``compare_nystroem.py scale --n 1000000``.
"""
import numpy as np
from sklearn.kernel_approximation import Nystroem
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline

import skinfinite
from skinfinite.kernels import NTK
from skinfinite.models import NTKRegressor

DEPTH, ALPHA, D = 3, 0.01, 20


def _data(n, n_test=2000, seed=0):
    rng = np.random.default_rng(seed)
    u, v, w = np.linalg.qr(rng.standard_normal((D, 3)))[0].T
    X = rng.standard_normal((n + n_test, D))
    y = (np.sin(X @ u) + 0.5 * np.cos(2 * (X @ v)) + 0.3 * (X @ w)
         + 0.1 * rng.standard_normal(n + n_test))
    return X[:n], y[:n], X[n:]


def _ours(M):
    return NTKRegressor(depth=DEPTH, alpha=ALPHA, solver="nystroem",
                        n_inducing=M, random_state=0)


def _sklearn(M):
    return make_pipeline(Nystroem(kernel=NTK(depth=DEPTH), n_components=M,
                                  random_state=0),
                         Ridge(alpha=ALPHA, fit_intercept=False))


class NystroemRegression:
    params = [500, 1000, 2000]
    param_names = ["n_inducing"]
    timeout = 600

    def setup(self, M):
        skinfinite.set_config(show_progress=False)
        self.X, self.y, self.X_test = _data(20000)
        _ours(20).fit(self.X[:100], self.y[:100])  # compile

    def time_skinfinite_fit_predict(self, M):
        _ours(M).fit(self.X, self.y).predict(self.X_test)

    def time_sklearn_nystroem_ridge_fit_predict(self, M):
        _sklearn(M).fit(self.X, self.y).predict(self.X_test)


class NystroemScale:
    params = [50000, 200000]
    param_names = ["n"]
    timeout = 1200

    def setup(self, n):
        skinfinite.set_config(show_progress=False)
        self.X, self.y, self.X_test = _data(n)
        _ours(20).fit(self.X[:100], self.y[:100])

    def time_fit_m1000(self, n):
        _ours(1000).fit(self.X, self.y)

    def peakmem_fit_m1000(self, n):
        _ours(1000).fit(self.X, self.y)
