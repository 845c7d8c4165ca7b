#!/usr/bin/env python
"""Nyström NTK regression at scale, against the exact solve and scikit-learn.

Synthetic regression in ``d`` dimensions: standard normal inputs,
``f(x) = sin(<u, x>) + 0.5 cos(2 <v, x>) + 0.3 <w, x>`` for fixed unit
vectors u, v, w, and Gaussian noise of standard deviation ``--noise``
(default 0.1) on the training targets. The model is a depth-3 ReLU NTK
(``weight_variance=2``, ``bias_variance=0.1``) with ``alpha`` the noise
variance (0.01 by default). Errors are test RMSE against the noiseless f on
``--n-test`` fresh inputs (``test_rmse``), and against noisy test targets
(``test_rmse_noisy``).

``--problem friedman1`` instead uses :func:`sklearn.datasets.make_friedman1`
(20 features uniform on [0, 1], of which 5 matter, Gaussian noise of
standard deviation ``--noise``, default 1.0, on training and test targets)
with the usual protocol: inputs standardised by a ``StandardScaler`` fitted
on the training rows, ``normalize_y=True``, and ``alpha`` chosen from a
grid by the exact model's RMSE on a validation split of the training rows
(``--n-select`` rows fitted, the next ``--n-select // 2`` validated; the
same alpha then serves the exact and every Nyström model). Test RMSE is
reported both against the noisy held-out targets (``test_rmse_noisy``)
and against the noiseless function (``test_rmse``). ``--alpha`` overrides
the choice of alpha for either problem.

Tasks (each prints JSON lines; run each in its own process so that the peak
resident memory, from ``resource.getrusage``, belongs to it alone):

``scale``
    ``NTKRegressor(solver="nystroem", n_inducing=M)`` fit and predict on
    ``--n`` rows: times, CG iterations, strategy, peak RSS.
``exact``
    The exact (Cholesky) NTKRegressor against Nyström with each of ``--m``
    at the same ``--n``: test RMSE of each and the relative gap.
``alphas``
    For each of ``--m`` and ``--inducing``: the Nyström solution for every
    ``alpha`` of the grid (``ALPHA_GRID`` and 3.0) from one ``K_nM``, by an
    eigendecomposition of the whitened normal matrix; test RMSE of each.
    The best of these is what any choice of ``alpha`` (by cross-validation
    or otherwise) could reach, to compare with the exact solve's.
``peer``
    Ours against ``make_pipeline(Nystroem(kernel=NTK(...),
    n_components=M), Ridge(alpha, fit_intercept=False))`` on the same data
    in the same run (the same estimator: Ridge on the Nyström features
    minimises the same objective). Best of ``--repeat`` fit + predict.

Examples::

    python asv_bench/peers/compare_nystroem.py scale --n 1000000 --m 2000
    python asv_bench/peers/compare_nystroem.py exact --n 20000 --m 1000 2000 4000
    python asv_bench/peers/compare_nystroem.py peer --n 20000 --m 2000
    python asv_bench/peers/compare_nystroem.py exact --problem friedman1 \
        --n 20000 --m 1000 2000 4000 --inducing uniform leverage
    python asv_bench/peers/compare_nystroem.py alphas --problem friedman1 \
        --n 20000 --m 2000 4000 --inducing uniform kmeans
"""
import argparse
import itertools
import json
import resource
import time

import numpy as np

DEPTH, SW2, SB2 = 3, 2.0, 0.1
PROBLEMS = ("ridges", "friedman1")
DEFAULT_NOISE = {"ridges": 0.1, "friedman1": 1.0}
ALPHA_GRID = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)

# Set once in main() from the command line.
SETUP = {"problem": "ridges", "noise": 0.1, "alpha": 0.01,
         "normalize_y": False}


class Data:
    """Training rows, test rows, noisy and noiseless test targets."""

    def __init__(self, X, y, X_test, y_test, f_test):
        self.X, self.y, self.X_test = X, y, X_test
        self.y_test, self.f_test = y_test, f_test


def make_ridges(n, n_test, d, noise, seed):
    rng = np.random.default_rng(seed)
    u, v, w = np.linalg.qr(rng.standard_normal((d, 3)))[0].T

    def f(X):
        return np.sin(X @ u) + 0.5 * np.cos(2 * (X @ v)) + 0.3 * (X @ w)

    X = rng.standard_normal((n, d))
    y = f(X) + noise * rng.standard_normal(n)
    X_test = rng.standard_normal((n_test, d))
    # Drawn after X_test so that the training data and test inputs are those
    # of the original (noiseless-test) version of this problem.
    f_test = f(X_test)
    y_test = f_test + noise * rng.standard_normal(n_test)
    return Data(X, y, X_test, y_test, f_test)


def friedman1_mean(X):
    return (10 * np.sin(np.pi * X[:, 0] * X[:, 1]) + 20 * (X[:, 2] - 0.5) ** 2
            + 10 * X[:, 3] + 5 * X[:, 4])


def make_friedman1_data(n, n_test, d, noise, seed):
    from sklearn.datasets import make_friedman1
    from sklearn.preprocessing import StandardScaler
    X, y = make_friedman1(n_samples=n + n_test, n_features=d, noise=noise,
                          random_state=seed)
    f = friedman1_mean(X)
    scaler = StandardScaler().fit(X[:n])
    return Data(scaler.transform(X[:n]), y[:n], scaler.transform(X[n:]),
                y[n:], f[n:])


def make_data(n, n_test, d, seed=0):
    if SETUP["problem"] == "friedman1":
        return make_friedman1_data(n, n_test, d, SETUP["noise"], seed)
    return make_ridges(n, n_test, d, SETUP["noise"], seed)


def rmse(a, b):
    return float(np.sqrt(np.mean((a - b) ** 2)))


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ours(alpha=None, **kw):
    from skinfinite.models import NTKRegressor
    return NTKRegressor(depth=DEPTH, weight_variance=SW2, bias_variance=SB2,
                        alpha=SETUP["alpha"] if alpha is None else alpha,
                        normalize_y=SETUP["normalize_y"], **kw)


def select_alpha(data, n_select, d):
    """The grid alpha with the exact model's least validation RMSE."""
    n_fit, n_val = n_select, n_select // 2
    if n_fit + n_val > len(data.y):
        raise ValueError("--n-select too large for --n")
    X, y = data.X[:n_fit], data.y[:n_fit]
    X_val, y_val = data.X[n_fit:n_fit + n_val], data.y[n_fit:n_fit + n_val]
    scores = {}
    for alpha in ALPHA_GRID:
        pred = ours(alpha=alpha, solver="cholesky").fit(X, y).predict(X_val)
        scores[alpha] = rmse(pred, y_val)
    best = min(scores, key=scores.get)
    print(json.dumps({"task": "select_alpha", "problem": SETUP["problem"],
                      "n_fit": n_fit, "n_validation": n_val,
                      "validation_rmse": scores, "alpha": best}), flush=True)
    return best


def errors(pred, data):
    return {"test_rmse": rmse(pred, data.f_test),
            "test_rmse_noisy": rmse(pred, data.y_test)}


def sklearn_pipeline(M, seed):
    from sklearn.kernel_approximation import Nystroem
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from skinfinite.kernels import NTK
    kernel = NTK(depth=DEPTH, weight_variance=SW2, bias_variance=SB2)
    return make_pipeline(Nystroem(kernel=kernel, n_components=M,
                                  random_state=seed),
                         Ridge(alpha=SETUP["alpha"], fit_intercept=False))


def timed(model, X, y, X_test):
    t0 = time.perf_counter()
    model.fit(X, y)
    t1 = time.perf_counter()
    pred = model.predict(X_test)
    t2 = time.perf_counter()
    return pred, t1 - t0, t2 - t1


def warm_up(d):
    data = make_data(300, 10, d, seed=1)
    ours(solver="nystroem", n_inducing=50, random_state=0).fit(
        data.X, data.y).predict(data.X_test)


def task_scale(args):
    t0 = time.perf_counter()
    data = make_data(args.n, args.n_test, args.d)
    t_data = time.perf_counter() - t0
    warm_up(args.d)
    prepare_alpha(data, args)
    for M, inducing in itertools.product(args.m, args.inducing):
        model = ours(solver=args.solver, n_inducing=M, random_state=0,
                     inducing=inducing)
        pred, t_fit, t_pred = timed(model, data.X, data.y, data.X_test)
        print(json.dumps({
            "task": "scale", "problem": SETUP["problem"], "n": args.n, "n_test": args.n_test, "d": args.d,
            "M": M, "solver": model.solver_, "inducing": inducing,
            "alpha": SETUP["alpha"],
            "fit_s": round(t_fit, 2), "predict_s": round(t_pred, 2),
            "data_s": round(t_data, 2), "cg_iterations": model.n_iter_,
            **errors(pred, data),
            "peak_rss_mib": round(peak_rss_mib())}), flush=True)


def task_exact(args):
    data = make_data(args.n, args.n_test, args.d)
    warm_up(args.d)
    prepare_alpha(data, args)
    rows = []
    for M, inducing in itertools.product(args.m, args.inducing):
        model = ours(solver="nystroem", n_inducing=M, random_state=0,
                     inducing=inducing)
        pred, t_fit, t_pred = timed(model, data.X, data.y, data.X_test)
        rows.append({"task": "exact", "problem": SETUP["problem"],
                     "solver": "nystroem", "M": M, "n": args.n,
                     "inducing": inducing, "alpha": SETUP["alpha"],
                     "fit_s": round(t_fit, 2), "predict_s": round(t_pred, 2),
                     "cg_iterations": model.n_iter_, **errors(pred, data)})
        print(json.dumps(rows[-1]), flush=True)
    pred, t_fit, t_pred = timed(ours(solver="cholesky"), data.X, data.y,
                                data.X_test)
    exact = errors(pred, data)
    print(json.dumps({"task": "exact", "problem": SETUP["problem"],
                      "solver": "cholesky", "n": args.n,
                      "alpha": SETUP["alpha"],
                      "fit_s": round(t_fit, 2), "predict_s": round(t_pred, 2),
                      **exact}), flush=True)
    for row in rows:
        gaps = {"M": row["M"], "inducing": row["inducing"]}
        for key in exact:
            gaps[key.replace("test_rmse", "relative_gap_to_exact")] = (
                row[key] / exact[key] - 1)
        print(json.dumps(gaps), flush=True)


def nystroem_alpha_path(X, y, X_test, Z, kernel, alphas):
    """Predictions of the Nyström solution for each alpha, from one K_nM.

    ``(K_nM^T K_nM + alpha K_MM) beta = K_nM^T y``; with ``K_MM = T^T T``
    and ``T^-T K_nM^T K_nM T^-1 = U diag(s) U^T``,
    ``beta = T^-1 U (s + alpha)^-1 U^T T^-T K_nM^T y``.
    """
    from scipy import linalg
    K_nM, K_tM, K_MM = kernel(X, Z), kernel(X_test, Z), kernel(Z)
    M = K_MM.shape[0]
    T = linalg.cholesky(K_MM + 1e-10 * np.trace(K_MM) / M * np.eye(M))
    T_inv = linalg.solve_triangular(T, np.eye(M))
    s, U = linalg.eigh(T_inv.T @ (K_nM.T @ K_nM) @ T_inv)
    c = U.T @ (T_inv.T @ (K_nM.T @ y))
    return {a: K_tM @ (T_inv @ (U @ (c / (s + a)))) for a in alphas}


def task_alphas(args):
    from skinfinite.empirical.random_features import InducingPoints
    from skinfinite.kernels import NTK
    data = make_data(args.n, args.n_test, args.d)
    kernel = NTK(depth=DEPTH, weight_variance=SW2, bias_variance=SB2)
    offset, scale = ((data.y.mean(), data.y.std()) if SETUP["normalize_y"]
                     else (0.0, 1.0))
    alphas = ALPHA_GRID + (3.0,)
    for M, inducing in itertools.product(args.m, args.inducing):
        t0 = time.perf_counter()
        Z = InducingPoints(M, method=inducing, kernel=kernel,
                           random_state=0).fit(data.X).points_
        preds = nystroem_alpha_path(data.X, (data.y - offset) / scale,
                                    data.X_test, Z, kernel, alphas)
        print(json.dumps({
            "task": "alphas", "problem": SETUP["problem"], "n": args.n,
            "M": M, "inducing": inducing,
            "seconds": round(time.perf_counter() - t0, 1),
            "errors_by_alpha": {a: errors(p * scale + offset, data)
                                for a, p in preds.items()}}), flush=True)


def task_peer(args):
    if SETUP["normalize_y"]:
        # Ridge(fit_intercept=False) on the features does not centre y.
        raise SystemExit("peer: only --problem ridges")
    data = make_data(args.n, args.n_test, args.d)
    X, y, X_test = data.X, data.y, data.X_test
    warm_up(args.d)
    prepare_alpha(data, args)
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
                                  **errors(pred, data)}
        for row in best.values():
            print(json.dumps(row), flush=True)
        ratio = (best["sklearn Nystroem+Ridge"]["total_s"]
                 / best["skinfinite"]["total_s"])
        print(json.dumps({"M": M, "speedup_vs_sklearn": round(ratio, 2)}),
              flush=True)


def prepare_alpha(data, args):
    """Fix SETUP["alpha"]: given, chosen on validation, or the noise variance."""
    if args.alpha is not None:
        SETUP["alpha"] = args.alpha
    elif SETUP["problem"] == "ridges":
        SETUP["alpha"] = float(f"{SETUP['noise'] ** 2:.12g}")
    else:
        SETUP["alpha"] = select_alpha(data, args.n_select, args.d)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("task", choices=("scale", "exact", "alphas", "peer"))
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--n-test", type=int, default=10000)
    parser.add_argument("--d", type=int, default=20)
    parser.add_argument("--m", type=int, nargs="+", default=[2000])
    parser.add_argument("--inducing", nargs="+", default=["uniform"],
                        choices=("uniform", "kmeans", "leverage"))
    parser.add_argument("--problem", choices=PROBLEMS, default="ridges")
    parser.add_argument("--noise", type=float, default=None,
                        help="noise standard deviation (default: the "
                             "problem's, 0.1 for ridges, 1.0 for friedman1)")
    parser.add_argument("--alpha", type=float, default=None,
                        help="default: the noise variance for ridges, "
                             "chosen on a validation split otherwise")
    parser.add_argument("--n-select", type=int, default=4000,
                        help="rows fitted when choosing alpha")
    parser.add_argument("--solver", default="nystroem",
                        help="scale task: 'nystroem' or 'auto'")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    noise = DEFAULT_NOISE[args.problem] if args.noise is None else args.noise
    SETUP.update(problem=args.problem, noise=noise,
                 normalize_y=args.problem != "ridges")
    import skinfinite
    skinfinite.set_config(show_progress=False)
    {"scale": task_scale, "exact": task_exact, "alphas": task_alphas,
     "peer": task_peer}[args.task](args)


if __name__ == "__main__":
    main()
