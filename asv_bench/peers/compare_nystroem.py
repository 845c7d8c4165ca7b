#!/usr/bin/env python
"""Nyström NTK regression at scale, against the exact solve and scikit-learn.

Synthetic regression in ``d`` dimensions: standard normal inputs,
``f(x) = sin(<u, x>) + 0.5 cos(2 <v, x>) + 0.3 <w, x>`` for fixed unit
vectors u, v, w, and Gaussian noise of standard deviation 0.1 on the training
targets. The model is a depth-3 ReLU NTK (``weight_variance=2``,
``bias_variance=0.1``) with ``alpha = 0.01`` (the noise variance). Errors
are test RMSE against the noiseless f on ``--n-test`` fresh inputs.

Tasks (each prints JSON lines; run each in its own process so that the peak
resident memory, from ``resource.getrusage``, belongs to it alone):

``scale``
    ``NTKRegressor(solver="nystroem", n_inducing=M)`` fit and predict on
    ``--n`` rows: times, CG iterations, strategy, peak RSS.
``exact``
    The exact (Cholesky) NTKRegressor against Nyström with each of ``--m``
    at the same ``--n``: test RMSE of each and the relative gap.
``peer``
    Ours against ``make_pipeline(Nystroem(kernel=NTK(...),
    n_components=M), Ridge(alpha, fit_intercept=False))`` on the same data
    in the same run (the same estimator: Ridge on the Nyström features
    minimises the same objective). Best of ``--repeat`` fit + predict.

Examples::

    python asv_bench/peers/compare_nystroem.py scale --n 1000000 --m 2000
    python asv_bench/peers/compare_nystroem.py exact --n 20000 --m 1000 2000 4000
    python asv_bench/peers/compare_nystroem.py peer --n 20000 --m 2000
"""
import argparse
import json
import resource
import time

import numpy as np

DEPTH, SW2, SB2, ALPHA, NOISE = 3, 2.0, 0.1, 0.01, 0.1


def make_data(n, n_test, d, seed=0):
    rng = np.random.default_rng(seed)
    u, v, w = np.linalg.qr(rng.standard_normal((d, 3)))[0].T

    def f(X):
        return np.sin(X @ u) + 0.5 * np.cos(2 * (X @ v)) + 0.3 * (X @ w)

    X = rng.standard_normal((n, d))
    y = f(X) + NOISE * rng.standard_normal(n)
    X_test = rng.standard_normal((n_test, d))
    return X, y, X_test, f(X_test)


def rmse(a, b):
    return float(np.sqrt(np.mean((a - b) ** 2)))


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ours(**kw):
    from skinfinite.models import NTKRegressor
    return NTKRegressor(depth=DEPTH, weight_variance=SW2, bias_variance=SB2,
                        alpha=ALPHA, **kw)


def sklearn_pipeline(M, seed):
    from sklearn.kernel_approximation import Nystroem
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from skinfinite.kernels import NTK
    kernel = NTK(depth=DEPTH, weight_variance=SW2, bias_variance=SB2)
    return make_pipeline(Nystroem(kernel=kernel, n_components=M,
                                  random_state=seed),
                         Ridge(alpha=ALPHA, fit_intercept=False))


def timed(model, X, y, X_test):
    t0 = time.perf_counter()
    model.fit(X, y)
    t1 = time.perf_counter()
    pred = model.predict(X_test)
    t2 = time.perf_counter()
    return pred, t1 - t0, t2 - t1


def warm_up(d):
    X, y, Xt, _ = make_data(300, 10, d, seed=1)
    ours(solver="nystroem", n_inducing=50, random_state=0).fit(X, y).predict(Xt)


def task_scale(args):
    t0 = time.perf_counter()
    X, y, X_test, f_test = make_data(args.n, args.n_test, args.d)
    t_data = time.perf_counter() - t0
    warm_up(args.d)
    for M in args.m:
        model = ours(solver=args.solver, n_inducing=M, random_state=0,
                     inducing=args.inducing)
        pred, t_fit, t_pred = timed(model, X, y, X_test)
        print(json.dumps({
            "task": "scale", "n": args.n, "n_test": args.n_test, "d": args.d,
            "M": M, "solver": model.solver_, "inducing": args.inducing,
            "fit_s": round(t_fit, 2), "predict_s": round(t_pred, 2),
            "data_s": round(t_data, 2), "cg_iterations": model.n_iter_,
            "test_rmse": rmse(pred, f_test),
            "peak_rss_mib": round(peak_rss_mib())}), flush=True)


def task_exact(args):
    X, y, X_test, f_test = make_data(args.n, args.n_test, args.d)
    warm_up(args.d)
    rows = []
    for M in args.m:
        model = ours(solver="nystroem", n_inducing=M, random_state=0,
                     inducing=args.inducing)
        pred, t_fit, t_pred = timed(model, X, y, X_test)
        rows.append({"task": "exact", "solver": "nystroem", "M": M,
                     "n": args.n, "inducing": args.inducing,
                     "fit_s": round(t_fit, 2), "predict_s": round(t_pred, 2),
                     "cg_iterations": model.n_iter_,
                     "test_rmse": rmse(pred, f_test)})
        print(json.dumps(rows[-1]), flush=True)
    pred, t_fit, t_pred = timed(ours(solver="cholesky"), X, y, X_test)
    exact = rmse(pred, f_test)
    print(json.dumps({"task": "exact", "solver": "cholesky", "n": args.n,
                      "fit_s": round(t_fit, 2), "predict_s": round(t_pred, 2),
                      "test_rmse": exact}), flush=True)
    for row in rows:
        print(json.dumps({"M": row["M"], "relative_gap_to_exact":
                          row["test_rmse"] / exact - 1}), flush=True)


def task_peer(args):
    X, y, X_test, f_test = make_data(args.n, args.n_test, args.d)
    warm_up(args.d)
    sklearn_pipeline(20, 0).fit(X[:100], y[:100])
    for M in args.m:
        best = {}
        for _ in range(args.repeat):
            for name, model in (("skinfinite", ours(solver="nystroem",
                                                    n_inducing=M,
                                                    random_state=0)),
                                ("sklearn Nystroem+Ridge",
                                 sklearn_pipeline(M, 0))):
                pred, t_fit, t_pred = timed(model, X, y, X_test)
                total = t_fit + t_pred
                if name not in best or total < best[name]["total_s"]:
                    best[name] = {"task": "peer", "model": name, "M": M,
                                  "n": args.n, "fit_s": round(t_fit, 2),
                                  "predict_s": round(t_pred, 2),
                                  "total_s": round(total, 2),
                                  "test_rmse": rmse(pred, f_test)}
        for row in best.values():
            print(json.dumps(row), flush=True)
        ratio = (best["sklearn Nystroem+Ridge"]["total_s"]
                 / best["skinfinite"]["total_s"])
        print(json.dumps({"M": M, "speedup_vs_sklearn": round(ratio, 2)}),
              flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("task", choices=("scale", "exact", "peer"))
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--n-test", type=int, default=10000)
    parser.add_argument("--d", type=int, default=20)
    parser.add_argument("--m", type=int, nargs="+", default=[2000])
    parser.add_argument("--inducing", default="uniform")
    parser.add_argument("--solver", default="nystroem",
                        help="scale task: 'nystroem' or 'auto'")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    import skinfinite
    skinfinite.set_config(show_progress=False)
    {"scale": task_scale, "exact": task_exact, "peer": task_peer}[args.task](args)


if __name__ == "__main__":
    main()
