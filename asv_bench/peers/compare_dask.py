#!/usr/bin/env python
"""Dask on one machine against the in-process engine, on the same cores.

A ``distributed.LocalCluster`` of ``--workers`` processes x 1 thread (each
worker's numba pool limited to one thread) against one process computing
with ``--workers`` numba threads. Inputs: standard normal rows, ``d = 20``,
a depth-3 ReLU NTK (``weight_variance=2``, ``bias_variance=0.1``).

``gram``
    ``NTK(depth=3)(X)`` on ``--n-gram`` rows: the NumPy Gram in process,
    against the lazy dask Gram of ``--chunk`` row blocks persisted on the
    workers (the upper tiles computed, the lower ones their transposes;
    the result stays distributed, as a distributed fit would use it).
``fit``
    The Nyström solve ``(K_nM^T K_nM + alpha K_MM) beta = K_nM^T y`` on
    ``--n-fit`` rows and ``--m`` uniform inducing points ("normal"
    strategy: one pass of kernel evaluations and rank-k updates), by
    :func:`skinfinite.linalg.nystroem.nystroem_ridge` in process against
    the same call with a :class:`skinfinite.distributed.DaskNystroemOperator`
    whose rows are persisted on the workers before the clock starts.

``cg``
    The exact solve ``(K + alpha I) c = y`` on ``--n-cg`` rows by
    Nyström-preconditioned conjugate gradients (``--m-cg`` inducing points,
    ``tol=1e-6``): :func:`skinfinite.linalg.iterative.iterative_ridge` with
    the tiled in-process operator, against the same call with a
    :class:`skinfinite.distributed.DaskKernelOperator` and a
    :class:`skinfinite.distributed.DaskNystroemPreconditioner` over rows
    persisted on the workers. Reports the iterations, the time per
    iteration and the largest array that reached the client.

Each timing is the best of ``--reps`` after an untimed warm-up (numba's
compilation); one JSON line per measurement, with the load average.

Example::

    python asv_bench/peers/compare_dask.py --n-gram 20000 --n-fit 1000000
"""
import argparse
import json
import os
import time

import numpy as np


def _worker_cpu():
    import resource
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def best_of(reps, run, client=None):
    """Best wall time of ``reps`` runs, and the CPU seconds of that run:
    this process's (client and, in a LocalCluster, the scheduler) plus the
    workers'. CPU time hardly depends on what else loads the machine."""
    best = (float("inf"), float("nan"))
    for _ in range(reps):
        workers = (sum(client.run(_worker_cpu).values()) if client else 0.0)
        cpu = time.process_time()
        start = time.perf_counter()
        run()
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu
        if client:
            cpu += sum(client.run(_worker_cpu).values()) - workers
        best = min(best, (wall, cpu))
    return best


def emit(**row):
    row["load"] = os.getloadavg()[0]
    print(json.dumps(row), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default="gram,fit")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--n-gram", type=int, default=20000)
    parser.add_argument("--n-fit", type=int, default=1000000)
    parser.add_argument("--m", type=int, default=1000)
    parser.add_argument("--n-cg", type=int, default=5000)
    parser.add_argument("--m-cg", type=int, default=500)
    parser.add_argument("--chunk", type=int, default=0,
                        help="rows per block; default n / (4 workers)")
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()

    import dask
    import dask.array as da
    from distributed import Client, LocalCluster, futures_of, wait

    from skinfinite import config_context

    from skinfinite.distributed import (DaskKernelOperator,
                                        DaskNystroemOperator,
                                        DaskNystroemPreconditioner)
    from skinfinite.kernels import NTK
    from skinfinite.linalg.iterative import iterative_ridge
    from skinfinite.linalg.nystroem import nystroem_ridge

    kernel = NTK(depth=3)
    rng = np.random.default_rng(0)
    tasks = args.tasks.split(",")
    single = "1"
    env = {"NUMBA_NUM_THREADS": single, "OMP_NUM_THREADS": single,
           "OPENBLAS_NUM_THREADS": single, "MKL_NUM_THREADS": single}
    with config_context(show_progress=False), LocalCluster(n_workers=args.workers, threads_per_worker=1,
                      processes=True, dashboard_address=None,
                      env=env, silence_logs=40) as cluster, \
            Client(cluster) as client:
        client.wait_for_workers(args.workers)

        if "gram" in tasks:
            n = args.n_gram
            X = rng.normal(size=(n, 20))
            kernel(X[:50])
            local = best_of(args.reps, lambda: kernel(X))
            chunk = args.chunk or -(-n // (4 * args.workers))
            Xd = da.from_array(X, chunks=(chunk, -1)).persist()
            wait(Xd)

            def remote():
                # new task names at each rep: nothing is reused from the last
                rows = Xd.map_blocks(np.copy, token=f"rows-{time.time_ns()}")
                K = kernel(rows).persist()
                wait(futures_of(K))
                del K
            kernel(Xd[:50]).compute()
            dask_s = best_of(args.reps, remote, client)
            emit(task="gram", n=n, chunk=chunk, workers=args.workers,
                 in_process_s=local[0], in_process_cpu_s=local[1],
                 dask_s=dask_s[0], dask_cpu_s=dask_s[1])

        if "fit" in tasks:
            n, M = args.n_fit, args.m
            X = rng.normal(size=(n, 20))
            y = np.sin(X[:, 0]) + 0.1 * rng.normal(size=n)
            Z = X[np.sort(rng.choice(n, M, replace=False))]
            nystroem_ridge(kernel, X[:2000], Z[:100], y[:2000], 1e-2)

            sol = {}

            def fit_local():
                sol["local"] = nystroem_ridge(kernel, X, Z, y, 1e-2,
                                              strategy="normal")
            local = best_of(args.reps, fit_local)
            chunk = args.chunk or min(-(-n // (4 * args.workers)), 50000)
            Xd = da.from_array(X, chunks=(chunk, -1)).persist()
            yd = da.from_array(y, chunks=chunk).persist()
            wait([Xd, yd])

            def fit_remote():
                op = DaskNystroemOperator(kernel, Xd, Z, strategy="normal")
                sol["s"] = nystroem_ridge(kernel, None, Z, yd, 1e-2,
                                          operator=op)
                sol["gathered"] = op.largest_gathered
            dask.compute(kernel(Xd[:50], Z[:10]))
            remote = best_of(args.reps, fit_remote, client)
            emit(task="fit", n=n, m=M, chunk=chunk, workers=args.workers,
                 in_process_s=local[0], in_process_cpu_s=local[1],
                 dask_s=remote[0], dask_cpu_s=remote[1],
                 n_iter=sol["s"].n_iter,
                 largest_gathered_bytes=sol["gathered"],
                 coef_rel_diff=float(np.max(np.abs(
                     sol["s"].coef - sol["local"].coef))
                     / np.max(np.abs(sol["s"].coef))))

        if "cg" in tasks:
            n, M = args.n_cg, args.m_cg
            X = rng.normal(size=(n, 20))
            y = np.sin(X[:, 0]) + 0.1 * rng.normal(size=n)
            Z = X[np.sort(rng.choice(n, M, replace=False))]
            alpha = 1e-2 * float(np.mean(kernel.diag(X[:100])))
            iterative_ridge(kernel, X[:500], y[:500], alpha, Z=Z[:50])
            sol = {}

            def cg_local():
                sol["local"] = iterative_ridge(kernel, X, y, alpha, Z=Z)
            local = best_of(args.reps, cg_local)
            chunk = args.chunk or -(-n // (2 * args.workers))
            Xd = da.from_array(X, chunks=(chunk, -1)).persist()
            wait(Xd)
            DaskKernelOperator(kernel, Xd[:500]).matmat(y[:500])

            def cg_remote():
                op = DaskKernelOperator(kernel, Xd)
                pre = DaskNystroemPreconditioner(kernel, Xd, Z, alpha)
                sol["s"] = iterative_ridge(kernel, Xd, y, alpha, Z=Z,
                                           operator=op, preconditioner=pre)
                sol["gathered"] = max(op.largest_gathered,
                                      pre.largest_gathered)
            remote = best_of(args.reps, cg_remote, client)
            it = sol["s"].n_iter
            emit(task="cg", n=n, m=M, chunk=chunk, workers=args.workers,
                 in_process_s=local[0], in_process_cpu_s=local[1],
                 dask_s=remote[0], dask_cpu_s=remote[1],
                 n_iter=it, n_iter_local=sol["local"].n_iter,
                 dask_s_per_iter=remote[0] / it,
                 largest_gathered_bytes=sol["gathered"],
                 coef_rel_diff=float(np.max(np.abs(
                     sol["s"].coef - sol["local"].coef))
                     / np.max(np.abs(sol["local"].coef))))


if __name__ == "__main__":
    main()
