#!/usr/bin/env python
"""The exact iterative solver against the Cholesky solve and Nyström.

The data are the "ridges" problem of ``compare_nystroem.py``: standard
normal inputs in ``d`` dimensions, ``f(x) = sin(<u, x>) + 0.5 cos(2 <v, x>)
+ 0.3 <w, x>``, Gaussian noise of standard deviation 0.1 on the training
targets, ``alpha = 0.01`` (the noise variance). The model is a depth-3 ReLU
``NTKRegressor`` (``weight_variance=2``, ``bias_variance=0.1``). Test RMSE
is against the noiseless f on ``--n-test`` fresh inputs.

Tasks (JSON lines):

``fit``
    One fit and predict with ``--solver`` ("cholesky", "cg" or
    "nystroem"; ``--m`` inducing points, ``--tol``) under ``--gram-memory``
    (whether "cg" keeps K, and in which precision: ``gram_cached``):
    times, iterations, test RMSE, peak resident memory of the process.
``compare``
    ``fit`` for each of ``--solvers`` (and each ``--tol`` of "cg"), each in
    its own process (so that the peak memory is its own), then every RMSE
    and time relative to the Cholesky solve. Before, the cost of one
    kernel entry is measured on a Gram of ``--probe`` rows: the floor of
    one pass over K (``n^2 / 2`` entries) and of the passes CG took.

Examples (the measurements of the user guide's iterative-solver section)::

    nice python asv_bench/peers/compare_iterative.py compare --n 10000 \\
        --solvers cholesky cg nystroem --tol 1e-3 1e-6
    nice python asv_bench/peers/compare_iterative.py compare --n 20000 \\
        --solvers cholesky cg nystroem --tol 1e-3 --blas-threads 1
    nice python asv_bench/peers/compare_iterative.py fit --n 50000 \\
        --solver cg --tol 1e-3 --blas-threads 1
    nice python asv_bench/peers/compare_iterative.py fit --n 50000 \\
        --solver nystroem --m 6000 --tol 1e-3 --blas-threads 1

``--blas-threads 1`` because OpenBLAS's threaded Cholesky factorisation
crashes beyond n ~ 16000 with two threads on the reference machine.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# this checkout's package, not an installed one
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))
from compare_nystroem import make_ridges, rmse  # noqa: E402

DEPTH, SW2, SB2, ALPHA, NOISE = 3, 2.0, 0.1, 0.01, 0.1


def model(solver, m=None, tol=1e-6, max_iter=100, verbose=0):
    from skinfinite.models import NTKRegressor
    return NTKRegressor(depth=DEPTH, weight_variance=SW2, bias_variance=SB2,
                        alpha=ALPHA, solver=solver, n_inducing=m,
                        random_state=0, tol=tol, max_iter=max_iter,
                        verbose=verbose)


def load():
    return os.getloadavg()[0]


def task_fit(args):
    data = make_ridges(args.n, args.n_test, args.d, NOISE, seed=0)
    warm = make_ridges(300, 10, args.d, NOISE, seed=1)
    model(args.solver, m=50 if args.solver != "cholesky" else None,
          tol=1e-3).fit(warm.X, warm.y).predict(warm.X_test)
    est = model(args.solver, m=args.m, tol=args.tol, max_iter=args.max_iter,
                verbose=args.verbose)
    import skinfinite
    from threadpoolctl import threadpool_limits
    load_before = load()
    t0 = time.perf_counter()
    with skinfinite.config_context(gram_memory=args.gram_memory), \
            threadpool_limits(args.blas_threads, user_api="blas"):
        est.fit(data.X, data.y)
    t1 = time.perf_counter()
    pred = est.predict(data.X_test)
    t2 = time.perf_counter()
    print(json.dumps({
        "task": "fit", "n": args.n, "d": args.d, "solver": est.solver_,
        "M": None if est.solver_ == "cholesky"
        else int(est.inducing_points_.shape[0]),
        "tol": args.tol if est.solver_ != "cholesky" else None,
        "fit_s": round(t1 - t0, 2), "predict_s": round(t2 - t1, 2),
        "n_iter": int(est.n_iter_), "test_rmse": rmse(pred, data.f_test),
        "gram_cached": getattr(est, "gram_cached_", None),
        "gram_memory": args.gram_memory, "blas_threads": args.blas_threads,
        "peak_rss_mib": round(resource.getrusage(
            resource.RUSAGE_SELF).ru_maxrss / 1024),
        "load_1min": [round(load_before, 2), round(load(), 2)]}), flush=True)


def entry_seconds(rows, d):
    """Seconds per kernel entry of a symmetric NTK Gram (best of 3)."""
    from skinfinite.kernels import NTK
    kernel = NTK(depth=DEPTH, weight_variance=SW2, bias_variance=SB2)
    X = np.random.default_rng(2).standard_normal((rows, d))
    kernel(X[:100])
    best = np.inf
    for _ in range(3):
        t0 = time.perf_counter()
        kernel(X)
        best = min(best, time.perf_counter() - t0)
    return best / (0.5 * rows * rows)


def task_compare(args):
    per_entry = entry_seconds(args.probe, args.d)
    pass_s = per_entry * 0.5 * args.n ** 2
    print(json.dumps({"task": "probe", "rows": args.probe,
                      "ns_per_entry": round(per_entry * 1e9, 2),
                      "kernel_pass_s": round(pass_s, 2),
                      "load_1min": round(load(), 2)}), flush=True)
    runs = []
    for solver in args.solvers:
        for tol in (args.tol if solver != "cholesky" else [None]):
            cmd = [sys.executable, __file__, "fit", "--solver", solver,
                   "--n", str(args.n), "--n-test", str(args.n_test),
                   "--d", str(args.d), "--max-iter", str(args.max_iter),
                   "--gram-memory", args.gram_memory]
            if args.blas_threads is not None:
                cmd += ["--blas-threads", str(args.blas_threads)]
            if tol is not None:
                cmd += ["--tol", str(tol)]
            if args.m is not None and solver != "cholesky":
                cmd += ["--m", str(args.m)]
            rows = []
            for _ in range(args.repeat):
                out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True,
                                     check=True).stdout
                rows.append(json.loads(out.strip().splitlines()[-1]))
            # best of the repeats (the machine is shared), all listed
            row = min(rows, key=lambda r: r["fit_s"])
            row["fit_s_all"] = [r["fit_s"] for r in rows]
            if solver == "cg":
                # CG's floor: one symmetric pass of kernel evaluations per
                # iteration, or one in all when K is kept
                row["floor_s"] = round(
                    (1 if row["gram_cached"] else row["n_iter"]) * pass_s, 1)
            print(json.dumps(row), flush=True)
            runs.append(row)
    exact = [r for r in runs if r["solver"] == "cholesky"]
    if exact:
        ref = exact[0]
        for r in runs:
            if r is ref:
                continue
            print(json.dumps({
                "solver": r["solver"], "tol": r["tol"], "M": r["M"],
                "rmse_gap_to_exact": round(r["test_rmse"] / ref["test_rmse"]
                                           - 1, 5),
                "time_ratio_to_exact": round(r["fit_s"] / ref["fit_s"], 2)}),
                flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=("fit", "compare"))
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--d", type=int, default=20)
    parser.add_argument("--solver", default="cg",
                        choices=("cholesky", "cg", "nystroem"))
    parser.add_argument("--solvers", nargs="+",
                        default=["cholesky", "cg", "nystroem"])
    parser.add_argument("--m", type=int, default=None,
                        help="inducing points (Nyström) or preconditioner "
                             "rank (cg); default: the estimator's")
    parser.add_argument("--tol", type=float, nargs="+", default=[1e-6])
    parser.add_argument("--max-iter", type=int, default=100)
    parser.add_argument("--verbose", type=int, default=0,
                        help="the estimator's verbose (1: progress lines on "
                             "stderr, one per kernel pass)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="fits per solver (compare), the best kept")
    parser.add_argument("--gram-memory", default="8GB",
                        help="gram_memory of the fit: whether 'cg' keeps K "
                             "(about 4 n^2 bytes)")
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="BLAS threads of the fit (1 works around "
                             "OpenBLAS's threaded Cholesky crashing beyond "
                             "n ~ 16000 with 2 threads)")
    parser.add_argument("--probe", type=int, default=4000,
                        help="rows of the Gram timed for the cost per entry")
    args = parser.parse_args(argv)
    if args.task == "fit":
        args.tol = args.tol[0]
        task_fit(args)
    else:
        task_compare(args)


if __name__ == "__main__":
    main()
