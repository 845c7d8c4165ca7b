#!/usr/bin/env python
"""Inducing points and tolerance of the exact iterative solver, on one kept K.

The problem of ``compare_iterative.py`` (depth-3 NTK, d = 20, alpha = 0.01)
on ``n`` rows. K is computed once and kept, so that every preconditioner
(M inducing points chosen uniformly, by k-means, by ridge leverage, or by
randomly pivoted Cholesky) and tolerance costs only reads of K. Prints, as
JSON lines, the time of one kernel pass and of one read of the kept K,
then for each choice the iterations to each tol and the test RMSE relative
to a solve at tol = 1e-10.

Usage::

    OPENBLAS_NUM_THREADS=1 nice python asv_bench/peers/compare_preconditioners.py \\
        5000 250,700 uniform,kmeans,leverage,rpcholesky
"""
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))
import numpy as np  # noqa: E402
from compare_nystroem import make_ridges, rmse  # noqa: E402
from skinfinite.models import NTKRegressor  # noqa: E402
from skinfinite.models._base import _BlockKernel  # noqa: E402
from skinfinite.linalg.iterative import (  # noqa: E402
    TiledKernelOperator, NystroemPreconditioner, iterative_ridge, rp_cholesky)
from skinfinite.linalg.inducing import InducingPoints  # noqa: E402


def main(n, Ms, methods):
    data = make_ridges(n, 2000, 20, 0.1, seed=0)
    est = NTKRegressor(depth=3, weight_variance=2.0, bias_variance=0.1,
                       alpha=0.01, solver="cholesky")
    est.fit(data.X[:50], data.y[:50])
    kernel = _BlockKernel(est.kernel_, "ntk", est._fit_backend)
    y = data.y - data.y.mean()
    op = TiledKernelOperator(kernel, data.X, cache=10**11)
    t0 = time.perf_counter()
    op.matmat(y[:, None])
    kernel_pass = time.perf_counter() - t0
    t0 = time.perf_counter()
    op.matmat(y[:, None])
    read = time.perf_counter() - t0
    print(json.dumps({"n": n, "kernel_pass_s": round(kernel_pass, 2),
                      "kept_pass_s": round(read, 3),
                      "ns_per_entry": round(kernel_pass / (0.5 * n * n) * 1e9,
                                            2),
                      "load_1min": os.getloadavg()[0]}), flush=True)
    K_test = kernel(data.X_test, data.X)

    def test_rmse(coef):
        return rmse(K_test @ coef[:, 0] + data.y.mean(), data.f_test)

    ref = iterative_ridge(kernel, data.X, y, 0.01, operator=op,
                          inducing_rows=np.arange(min(n, 2000)), tol=1e-10,
                          max_iter=500)
    ref_rmse = test_rmse(ref.coef)
    print(json.dumps({"ref_iter": ref.n_iter, "ref_rmse": ref_rmse}),
          flush=True)
    for M in Ms:
        for method in methods:
            t0 = time.perf_counter()
            if method == "rpcholesky":
                F, _ = rp_cholesky(kernel, data.X, M, random_state=0)
                pre = NystroemPreconditioner.from_factor(F, 0.01)
            else:
                Z = InducingPoints(M, method=method, kernel=kernel,
                                   random_state=0).fit(data.X).points_
                pre = NystroemPreconditioner(kernel, data.X, Z, 0.01)
            setup = time.perf_counter() - t0
            for tol in (1e-2, 1e-3, 1e-4, 1e-6):
                sol = iterative_ridge(kernel, data.X, y, 0.01, operator=op,
                                      preconditioner=pre, tol=tol,
                                      max_iter=500)
                print(json.dumps({
                    "M": M, "method": method, "setup_s": round(setup, 2),
                    "tol": tol, "n_iter": sol.n_iter,
                    "rmse_gap": round(test_rmse(sol.coef) / ref_rmse - 1, 6),
                    "coef_relerr": float(np.linalg.norm(sol.coef - ref.coef)
                                         / np.linalg.norm(ref.coef))}),
                    flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), [int(m) for m in sys.argv[2].split(",")],
         sys.argv[3].split(","))
