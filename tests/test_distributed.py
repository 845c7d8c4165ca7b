"""Gram matrices, solvers and estimators on a Dask cluster of two processes."""
import os
import signal
import time

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

from skinfinite.distributed import (DaskKernelOperator,  # noqa: E402
                                    DaskNystroemOperator, check_workers,
                                    connect)
from skinfinite.distributed import _cluster  # noqa: E402
from skinfinite.distributed.operators import _Gathers  # noqa: E402
from skinfinite.kernels import (NNGP, NTK, ConvNTK, ResNetNTK,  # noqa: E402
                                SignatureKernel)
from skinfinite.linalg.nystroem import nystroem_ridge  # noqa: E402
from skinfinite.models import NTKRegressor  # noqa: E402


@pytest.fixture(scope="module")
def client():
    # one cluster for the module: worker processes are slow to start
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1,
                                  processes=True, dashboard_address=":0",
                                  silence_logs=40) as cluster, \
            distributed.Client(cluster) as c:
        c.wait_for_workers(2)
        yield c


def _relative(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


@pytest.fixture
def gathered(monkeypatch):
    """The byte sizes of every result an operator gathers on the client."""
    sizes = []
    original = _Gathers._compute

    def record(self, obj):
        out = original(self, obj)
        sizes.append(self.gathered_bytes[-1])
        return out
    monkeypatch.setattr(_Gathers, "_compute", record)
    return sizes


def _check_grams(cases):
    for kernel, A, B in cases:
        Ad = da.from_array(A, chunks=(10,) + A.shape[1:])
        lazy = kernel(Ad)
        assert isinstance(lazy, da.Array)
        assert lazy.chunks[0] == Ad.chunks[0]
        assert _relative(lazy.compute(), kernel(A)) < 1e-10, kernel
        cross = kernel(Ad, B).compute()
        assert _relative(cross, kernel(A, B)) < 1e-10, kernel


def test_grams_equal_single_process(client, rng):
    X = rng.normal(size=(45, 6))
    Y = rng.normal(size=(13, 6))
    _check_grams([(NNGP(depth=3), X, Y), (NTK(depth=3), X, Y)])
    rows_here = NTK(depth=3)(X, da.from_array(Y, chunks=5)).compute()
    assert _relative(rows_here, NTK(depth=3)(X, Y)) < 1e-10
    # NumPy in still gives NumPy out
    assert type(NTK(depth=3)(X)) is np.ndarray


@pytest.mark.slow
def test_grams_of_every_architecture_equal_single_process(client, rng):
    # slow: every worker process compiles these kernels first
    X = rng.normal(size=(45, 6))
    S = rng.normal(size=(23, 12, 2)) * 0.3
    _check_grams([(ResNetNTK(depth=2), X, X[:13]),
                  (ConvNTK(filter_size=3, depth=2, layout="ntc"), S, S[:5]),
                  (SignatureKernel(dyadic_order=1, layout="ntc"), S, S[:5])])


def test_nystroem_fit_equals_single_process(client, rng, gathered):
    n, M = 600, 80
    X = rng.normal(size=(n, 5))
    y = np.sin(X[:, 0]) + 0.1 * rng.normal(size=n)
    # a tight tol: the partial sums are added in another order than in one
    # process, and CG's stopping iterate is that close to the solution only
    kw = dict(depth=3, alpha=1e-2, solver="nystroem", n_inducing=M,
              random_state=0, tol=1e-12, max_iter=500, normalize_y=True)
    local = NTKRegressor(**kw).fit(X, y)
    Xd, yd = da.from_array(X, chunks=150), da.from_array(y, chunks=150)
    remote = NTKRegressor(**kw).fit(Xd, yd)
    np.testing.assert_array_equal(remote.inducing_points_,
                                  local.inducing_points_)
    assert _relative(remote.dual_coef_, local.dual_coef_) < 1e-10
    assert _relative(remote.predict(X[:40]), local.predict(X[:40])) < 1e-10
    assert remote.solver_ == "nystroem" and remote.n_features_in_ == 5
    # M x M and M x k reach the client, nothing n x M (let alone n x n)
    assert gathered and max(gathered) <= 8 * (M * M + M)
    # the cached strategy: every iteration gathers an M x k product
    gathered.clear()
    op = DaskNystroemOperator(NTK(depth=3), Xd, X[:M], strategy="cache")
    sol = nystroem_ridge(NTK(depth=3), None, X[:M], yd, 1e-2, tol=1e-12,
                         max_iter=500, operator=op)
    ref = nystroem_ridge(NTK(depth=3), X, X[:M], y, 1e-2, tol=1e-12,
                         max_iter=500, strategy="cache")
    assert _relative(sol.coef, ref.coef) < 1e-10
    assert len(gathered) == sol.n_iter + 1 and max(gathered) == 8 * M
    # the exact operator: n-sized products only
    gathered.clear()
    V = rng.normal(size=(n, 2))
    exact = DaskKernelOperator(NTK(depth=3), Xd)
    assert _relative(exact.matmat(V), NTK(depth=3)(X) @ V) < 1e-10
    assert gathered == [8 * n * 2]


def test_worker_killed_mid_solve(client, rng):
    n, M = 400, 50
    X = rng.normal(size=(n, 4))
    y = np.cos(X[:, 1])
    Xd = da.from_array(X, chunks=100)
    # a tight tol: BLAS may round a recomputed block's products differently
    # (alignment), and CG stopped at 1e-6 would show it at 1e-8
    solve = dict(tol=1e-12, max_iter=500)
    reference = nystroem_ridge(
        NTK(depth=2), None, X[:M], y, 1e-2,
        operator=DaskNystroemOperator(NTK(depth=2), Xd, X[:M],
                                      strategy="cache"), **solve).coef
    op = DaskNystroemOperator(NTK(depth=2), Xd, X[:M], strategy="cache")
    calls, matmat = [], op.matmat
    victim = sorted(client.scheduler_info()["workers"])[0]
    pid = client.run(os.getpid, workers=[victim])[victim]

    def kill_on_third(V):
        calls.append(1)
        if len(calls) == 3:
            # the worker holding half of the cached K_nM blocks dies; the
            # scheduler recomputes them from the rows' lineage
            os.kill(pid, signal.SIGKILL)
            time.sleep(1.0)
        return matmat(V)
    op.matmat = kill_on_third
    sol = nystroem_ridge(NTK(depth=2), None, X[:M], y, 1e-2, operator=op,
                         **solve)
    assert len(calls) > 3
    # the lost blocks are recomputed by the same code from the same rows
    assert _relative(sol.coef, reference) < 1e-10
    client.wait_for_workers(2, timeout=60)


def test_gridsearch_on_the_dask_joblib_backend(client, rng):
    import joblib
    from sklearn.model_selection import GridSearchCV

    X = rng.normal(size=(60, 3))
    y = X[:, 0] ** 2
    grid = {"depth": [1, 2], "alpha": [1e-3, 1e-1]}
    local = GridSearchCV(NTKRegressor(), grid, cv=2).fit(X, y)
    with joblib.parallel_config("dask"):
        remote = GridSearchCV(NTKRegressor(), grid, cv=2, n_jobs=-1).fit(X, y)
    assert remote.best_params_ == local.best_params_
    np.testing.assert_allclose(remote.cv_results_["mean_test_score"],
                               local.cv_results_["mean_test_score"],
                               rtol=1e-10)


def test_bad_input_says_what_to_do(client, rng):
    X = da.from_array(rng.normal(size=(40, 3)), chunks=10)
    unknown = X[X[:, 0] > 0]
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        NTK()(unknown)
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        NTKRegressor(solver="cg").fit(unknown, unknown[:, 0])
    from skinfinite.models import NNGPClassifier
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        NNGPClassifier().fit(X, unknown[:, 0] > 0)
    with pytest.raises(ValueError, match="solver='nystroem'"):
        NTKRegressor(solver="cholesky").fit(X, X[:, 0])
    with pytest.raises(ValueError, match="inducing='uniform'"):
        NTKRegressor(solver="nystroem", inducing="kmeans",
                     n_inducing=5).fit(X, X[:, 0])
    with pytest.raises(ConnectionError, match="No Dask scheduler"):
        connect("tcp://127.0.0.1:9", timeout=1)

    worker = sorted(client.scheduler_info()["workers"])[0]

    def set_version(value):
        import skinfinite
        skinfinite.__version__ = value

    import skinfinite
    own = skinfinite.__version__
    try:
        _cluster._CHECKED.clear()
        client.run(set_version, "0.0.1", workers=[worker])
        with pytest.raises(RuntimeError, match="another skinfinite version"):
            check_workers(client)
        with pytest.raises(RuntimeError, match="0.0.1"):
            NTK()(X)
    finally:
        client.run(set_version, own, workers=[worker])

    def hide():
        import sys
        sys.modules["skinfinite_saved"] = sys.modules["skinfinite"]
        sys.modules["skinfinite"] = None

    def restore():
        import sys
        sys.modules["skinfinite"] = sys.modules.pop("skinfinite_saved")

    try:
        _cluster._CHECKED.clear()
        client.run(hide, workers=[worker])
        with pytest.raises(RuntimeError, match="cannot import skinfinite"):
            check_workers(client)
    finally:
        client.run(restore, workers=[worker])
    _cluster._CHECKED.clear()
    check_workers(client)


def test_benchmark_runs_its_jobs_on_the_cluster(client, capsys):
    from skinfinite.benchmark import iter_benchmark
    from skinfinite.cli import main

    models = "krr_rbf,svm_rbf"
    here = list(iter_benchmark("iris", folds=2, models=models,
                               show_progress=False))
    there = list(iter_benchmark("iris", folds=2, models=models,
                                show_progress=False, backend="dask"))
    assert [r["model"] for r in there] == [r["model"] for r in here]
    assert [r["score_mean"] for r in there] == [r["score_mean"] for r in here]
    assert main(["benchmark", "--dataset", "iris", "--folds", "2", "--quiet",
                 "--models", models, "--scheduler",
                 client.scheduler.address]) == 0
    assert "krr_rbf" in capsys.readouterr().out


def test_failed_solve_leaves_the_estimator_unfitted(monkeypatch, rng):
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    def lost(self, Y):
        raise OSError("Timed out trying to connect to tcp://10.0.0.7:40000")
    monkeypatch.setattr(DaskNystroemOperator, "prepare", lost)
    X = da.from_array(rng.normal(size=(30, 2)), chunks=10)
    model = NTKRegressor(solver="nystroem", n_inducing=5, random_state=0)
    with pytest.raises(RuntimeError, match="left unfitted"):
        model.fit(X, X[:, 0])
    with pytest.raises(NotFittedError):
        check_is_fitted(model)


def test_exact_cg_fit_equals_single_process(client, rng, gathered):
    n, M = 300, 100
    X = rng.normal(size=(n, 4))
    y = np.sin(X[:, 0]) + 0.1 * rng.normal(size=n)
    kw = dict(depth=2, alpha=1.0, solver="cg", n_inducing=M,
              random_state=0, tol=1e-12, max_iter=300, normalize_y=True)
    local = NTKRegressor(**kw).fit(X, y)
    Xd, yd = da.from_array(X, chunks=80), da.from_array(y, chunks=80)
    remote = NTKRegressor(**kw).fit(Xd, yd)
    assert remote.solver_ == "cg"
    np.testing.assert_array_equal(remote.inducing_points_,
                                  local.inducing_points_)
    # the same iterations to the same tolerance (the partial sums' order
    # may move the stopping test by one iteration)
    assert abs(remote.n_iter_ - local.n_iter_) <= 1
    assert _relative(remote.dual_coef_, local.dual_coef_) < 1e-10
    assert _relative(remote.predict(X[:30]), local.predict(X[:30])) < 1e-10
    # n-sized vectors and the preconditioner's M x M matrix reach the client;
    # nothing n x M, let alone n x n
    assert gathered and max(gathered) <= 8 * max(n, M * M)
    assert max(gathered) < 8 * n * M
    with pytest.raises(NotImplementedError, match="solver='cholesky'"):
        remote.predict(X[:3], return_std=True)


def test_exact_operator_is_row_partitioned(client, rng, gathered):
    from skinfinite.distributed import DaskNystroemPreconditioner
    from skinfinite.linalg.iterative import (NystroemPreconditioner,
                                             RowPartitionedOperator,
                                             TiledKernelOperator)

    n = 130
    X = rng.normal(size=(n, 3))
    V = rng.normal(size=(n, 2))
    kernel = NTK(depth=2)
    # sub-tiles of 16 rows inside the tiles of the 40-row chunks
    op = DaskKernelOperator(kernel, da.from_array(X, chunks=40),
                            budget=16 * 16 * 16)
    assert isinstance(op, RowPartitionedOperator)
    assert [b.stop - b.start for b in op.blocks] == [40, 40, 40, 10]
    K = kernel(X)
    assert _relative(op.matmat(V), K @ V) < 1e-12
    assert op.kernel_passes == 1.0
    assert _relative(op.block_matmat(1, V), K[40:80] @ V) < 1e-12
    assert _relative(op.matmat(V), TiledKernelOperator(kernel, X).matmat(V)) \
        < 1e-12
    Z = X[::13]
    pre = DaskNystroemPreconditioner(kernel, da.from_array(X, chunks=40), Z,
                                     0.1)
    ref = NystroemPreconditioner(kernel, X, Z, 0.1)
    assert pre.rank == ref.rank and pre.cached
    assert _relative(pre.apply(V), ref.apply(V)) < 1e-10
    streamed = DaskNystroemPreconditioner(
        kernel, da.from_array(X, chunks=40), Z, 0.1, cache=False)
    assert _relative(streamed.apply(V), ref.apply(V)) < 1e-10
    assert max(gathered) <= 8 * max(n * 2, len(Z) ** 2)


def test_classifiers_on_dask_arrays(client, rng):
    from skinfinite.models import NNGPClassifier, NTKClassifier

    X = rng.normal(size=(120, 4))
    y = np.where(X[:, 0] + X[:, 1] > 0, "a", "b")
    Xd, yd = da.from_array(X, chunks=40), da.from_array(y, chunks=40)
    for cls, solver in [(NTKClassifier, "nystroem"), (NNGPClassifier, "cg")]:
        kw = dict(depth=2, alpha=1e-1, solver=solver, n_inducing=30,
                  random_state=0, tol=1e-12, max_iter=300)
        local, remote = cls(**kw).fit(X, y), cls(**kw).fit(Xd, yd)
        assert list(remote.classes_) == ["a", "b"]
        assert remote.n_features_in_ == 4 and remote.solver_ == solver
        assert _relative(remote.decision_function(X),
                         local.decision_function(X)) < 1e-8
        np.testing.assert_array_equal(remote.predict(Xd), local.predict(X))
    with pytest.raises(ValueError, match="one label per row"):
        NTKClassifier(solver="nystroem").fit(Xd, y[:-1])


def test_sequence_estimators_and_spread_on_dask_arrays(client, rng):
    from skinfinite.models import NNGPRegressor, SignatureKernelRegressor

    # paths (n, T, C) chunked along the rows: the paths are gathered, the
    # fit runs in one process
    S = rng.normal(size=(24, 8, 2)).cumsum(axis=1) * 0.2
    t = S[:, -1, 0]
    Sd = da.from_array(S, chunks=(8, 8, 2))
    kw = dict(dyadic_order=1, alpha=1e-2)
    local = SignatureKernelRegressor(**kw).fit(S, t)
    remote = SignatureKernelRegressor(**kw).fit(Sd, da.from_array(t, chunks=8))
    np.testing.assert_allclose(remote.predict(Sd), local.predict(S),
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(remote.predict(Sd, return_std=True)[1],
                               local.predict(S, return_std=True)[1],
                               rtol=1e-10, atol=1e-14)
    # an exact model predicts dask rows with its spread (as NumPy)
    X = rng.normal(size=(50, 3))
    model = NNGPRegressor(depth=2, alpha=1e-2).fit(X, X[:, 0])
    mean, std = model.predict(da.from_array(X[:20], chunks=7),
                              return_std=True)
    ref = model.predict(X[:20], return_std=True)
    assert isinstance(std, np.ndarray)
    np.testing.assert_allclose(std, ref[1], rtol=1e-12)
    np.testing.assert_allclose(mean, ref[0], rtol=1e-12)
    # a distributed fit has no spread: the error says which solver has it
    nys = NNGPRegressor(depth=2, alpha=1e-2, solver="nystroem", n_inducing=10,
                        random_state=0).fit(da.from_array(X, chunks=25),
                                            X[:, 0])
    with pytest.raises(NotImplementedError, match="solver='cholesky'"):
        nys.predict(X[:3], return_std=True)


def _limit_address_space(extra):
    """Cap this worker's address space at its current size plus ``extra``
    bytes: a larger allocation fails with MemoryError, as on a worker that
    ran out of memory."""
    import resource
    with open("/proc/self/status") as status:
        size = next(int(line.split()[1]) * 1024 for line in status
                    if line.startswith("VmSize:"))
    old = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (size + extra, old[1]))
    return old


def _restore_address_space(old):
    import resource
    resource.setrlimit(resource.RLIMIT_AS, tuple(old))


def test_worker_out_of_memory_is_reported(client, rng):
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    n, M = 4000, 3000
    X = da.from_array(rng.normal(size=(n, 2)), chunks=2000)
    y = X[:, 0]
    model = NTKRegressor(depth=1, alpha=1e-2, solver="nystroem",
                         n_inducing=M, random_state=0)
    # a 2000 x 3000 block (46 MiB) and its scratch, with 16 MiB to spare
    old = client.run(_limit_address_space, 16 * 2**20)
    try:
        with pytest.raises(MemoryError) as info:
            model.fit(X, y)
    finally:
        for worker, limits in old.items():
            client.run(_restore_address_space, limits, workers=[worker])
    message = str(info.value)
    assert "out of memory" in message and "2000 x 3000" in message
    assert "smaller row chunks" in message and "more memory" in message
    with pytest.raises(NotFittedError):
        check_is_fitted(model)


def test_killed_worker_is_reported_as_memory(monkeypatch, rng):
    from types import SimpleNamespace

    from distributed.scheduler import KilledWorker

    def killed(self, Y):
        raise KilledWorker("_normal_part-123",
                           SimpleNamespace(address="tcp://127.0.0.1:4000"), 3)
    monkeypatch.setattr(DaskNystroemOperator, "prepare", killed)
    X = da.from_array(rng.normal(size=(30, 2)), chunks=10)
    model = NTKRegressor(solver="nystroem", n_inducing=5, random_state=0)
    with pytest.raises(RuntimeError, match="memory_limit") as info:
        model.fit(X, X[:, 0])
    assert "10 x 5" in str(info.value)
    assert "smaller row chunks" in str(info.value)


def _simulate_gpu_here():
    """On a worker: a GPU backend (numba's CUDA simulator) as a GPU worker
    resolves it for itself, and a count of the GPU engine's Gram calls."""
    import skinfinite
    from skinfinite._core.backend import SimulatedGPUBackend
    from skinfinite.engine.cuda import driver

    skinfinite.set_config(gpu_backend=SimulatedGPUBackend())
    original = getattr(driver.gram, "__wrapped__", driver.gram)

    def counted(*args, **kwargs):
        counted.calls += 1
        return original(*args, **kwargs)
    counted.calls = 0
    counted.__wrapped__ = original
    driver.gram = counted


def _gpu_gram_calls():
    from skinfinite.engine.cuda import driver
    return getattr(driver.gram, "calls", 0)


@pytest.fixture(scope="module")
def gpu_client():
    # a worker whose GPU is numba's CUDA simulator, chosen in its
    # environment before numba starts; the client itself has no GPU
    pytest.importorskip("numba.cuda")
    simulator = {"NUMBA_ENABLE_CUDASIM": "1"}
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1,
                                  processes=True, dashboard_address=":0",
                                  silence_logs=40, env=simulator) as cluster, \
            distributed.Client(cluster) as c:
        c.wait_for_workers(1)
        c.run(_simulate_gpu_here)
        yield c


@pytest.fixture
def gpu_calls(gpu_client):
    """Reads the simulated-GPU worker's count of GPU Gram calls."""
    from skinfinite import gpu_available
    if gpu_available():
        pytest.skip("the client has a GPU: the check is that only the "
                    "worker has one")
    return lambda: next(iter(gpu_client.run(_gpu_gram_calls).values()))


def test_gpu_worker_computes_its_blocks_on_its_gpu(gpu_calls, rng):
    calls = gpu_calls
    X = rng.normal(size=(6, 3))
    Xd = da.from_array(X, chunks=3)
    for kernel in (NNGP(depth=2), NTK(depth=2)):
        before = calls()
        lazy = kernel(Xd).compute()
        assert calls() > before, kernel   # the worker's GPU engine ran
        assert type(lazy) is np.ndarray
        assert _relative(lazy, kernel.set_params(device="cpu")(X)) < 1e-12
        # "cpu" stays on the CPU of the worker
        before = calls()
        assert _relative(kernel(Xd).compute(), lazy) < 1e-12
        assert calls() == before


def test_gpu_worker_computes_the_solver_blocks(gpu_calls, rng):
    from sklearn.base import clone

    calls = gpu_calls
    # an estimator fitted on a client without GPU: its "auto" is resolved
    # on the worker, which computes the solver's blocks on its GPU
    X = rng.normal(size=(6, 3))
    Xd = da.from_array(X, chunks=3)
    y = np.sin(X[:, 0])
    yd = da.from_array(y, chunks=3)
    model = NTKRegressor(depth=2, alpha=1e-2, solver="cg", tol=1e-12,
                         n_inducing=3)
    before = calls()
    fitted = clone(model).fit(Xd, yd)
    assert calls() > before
    assert fitted.device_ == "cpu"   # the client's, for its own work
    on_cpu = clone(model).set_params(device="cpu")
    before = calls()
    on_cpu.fit(Xd, yd)
    assert calls() == before
    assert _relative(fitted.dual_coef_, on_cpu.dual_coef_) < 1e-10
