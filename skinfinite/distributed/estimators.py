"""The estimators' fit on Dask arrays: validation and the Nyström solve."""
from contextlib import contextmanager

import numpy as np
from sklearn.utils import check_random_state

from .._core.collections import is_dask
from ..linalg.inducing import _drop_duplicate_rows
from ..linalg.iterative import iterative_ridge
from ..linalg.nystroem import nystroem_ridge
from ._cluster import check_chunks, check_workers, require_dask
from .operators import (DaskKernelOperator, DaskNystroemOperator,
                        DaskNystroemPreconditioner, _tree_sum)


def validate_fit(est, X, y, sample_weight=None):
    """``_validate_fit`` of the regressors for Dask inputs.

    Returns the rows of X as a persisted float64 dask array and the
    normalised targets as a dask array of shape (n, n_targets), chunked as X.
    """
    da = require_dask()
    import dask

    if sample_weight is not None:
        raise ValueError("sample_weight is not available with dask arrays "
                         "(it needs solver='cholesky'); fit NumPy arrays.")
    X = check_chunks(X, "X")
    if X.ndim != 2:
        raise ValueError(f"Expected a 2-D dask array X of shape (n_samples, "
                         f"n_features), got {X.ndim} dimension(s).")
    if not np.issubdtype(X.dtype, np.number):
        raise ValueError(f"X must be numeric, got dtype {X.dtype}.")
    if is_dask(y):
        y = check_chunks(y, "y")
    else:
        y = da.from_array(np.asarray(y), chunks=(X.chunks[0],)
                          + tuple(-1 for _ in np.shape(y)[1:]))
    if y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
        raise ValueError(f"y has shape {y.shape}; expected ({X.shape[0]},) "
                         f"or ({X.shape[0]}, n_targets) to match X.")
    if X.shape[0] < 2:
        raise ValueError(f"Found array with {X.shape[0]} sample(s) while a "
                         "minimum of 2 is required.")
    check_workers()
    est.kernel_ = est._network_kernel()
    X = X.astype(np.float64)
    y2 = y.astype(np.float64).reshape(y.shape[0], -1).rechunk(
        (X.chunks[0], -1))
    X, y2 = dask.persist(X, y2)
    finite, mean, scale = dask.compute(
        da.isfinite(X).all() & da.isfinite(y2).all(), y2.mean(axis=0),
        y2.std(axis=0))
    if not finite:
        raise ValueError("Input X or y contains NaN or infinity.")
    for name in ("feature_names_in_",):
        est.__dict__.pop(name, None)
    est.n_features_in_ = int(X.shape[1])
    est._y_1d = y.ndim == 1
    est._sqrt_weight = None
    if est.normalize_y:
        scale = np.array(scale, dtype=np.float64)
        scale[scale == 0] = 1.0
        est._y_mean, est._y_scale = np.asarray(mean, np.float64), scale
    else:
        est._y_mean = np.zeros(y2.shape[1])
        est._y_scale = np.ones(y2.shape[1])
    # the rows stay on the cluster; predictions need only the inducing points
    est.X_train_ = None
    est._distributed = True
    return X, (y2 - est._y_mean) / est._y_scale


def gather_labels(X, y):
    """The classifiers' inputs for Dask: X checked (its rows stay on the
    cluster), the labels y computed on the client (n values: they are
    encoded there into the one-hot targets)."""
    require_dask()
    X = check_chunks(X, "X")
    if is_dask(y):
        y = check_chunks(y, "y").compute()
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"y has shape {y.shape}; expected ({X.shape[0]},): "
                         "one label per row of X.")
    return X, y


def resolve_solver(solver):
    """The solver for Dask inputs: "auto" is "nystroem"."""
    if solver == "cholesky":
        raise ValueError(
            "solver='cholesky' needs the n x n kernel matrix in one process; "
            "with dask arrays use solver='nystroem' (or 'auto'), or fit "
            "NumPy arrays (X.compute()).")
    return "nystroem" if solver == "auto" else solver


def _unfit(est):
    for name in [k for k in est.__dict__
                 if k.endswith("_") and not k.startswith("__")]:
        del est.__dict__[name]


def _uniform_rows(est, X, M):
    """The rows that ``InducingPoints(method="uniform")`` draws from NumPy
    data with the same ``random_state``: one process and a cluster agree."""
    if est.inducing != "uniform":
        raise ValueError(
            f"inducing={est.inducing!r} is not available with dask arrays: "
            "use inducing='uniform', or choose the points on a NumPy "
            "subsample and fit NumPy arrays.")
    n = int(X.shape[0])
    rng = check_random_state(est.random_state)
    indices = np.sort(rng.choice(n, M, replace=False))
    rows = np.asarray(X[indices].compute())
    return rows[_drop_duplicate_rows(rows, np.arange(len(rows)))]


def _failed(est, exc, solver, X, M):
    """The error to raise for a failed distributed fit (estimator unfitted).

    Running out of memory on a worker shows as a ``MemoryError`` of the
    task (an allocation refused) or as Dask's ``KilledWorker`` (the nanny
    killed a worker past its ``memory_limit``, three times); both name the
    block that a task holds and what to change.
    """
    _unfit(est)
    rows = max(X.chunks[0])
    block = (f"each task holds a block of {rows} x {M} float64 "
             f"({8.0 * rows * M / 2**20:.0f} MiB) besides its rows")
    advice = (f"Cut X into smaller row chunks (X.rechunk({max(1, rows // 4)}"
              ", ...) or X.rechunk('64MiB')) or give the workers more memory "
              "(LocalCluster(memory_limit=...), `dask worker "
              "--memory-limit ...`), then fit again.")
    if isinstance(exc, MemoryError):
        return MemoryError(
            f"A Dask worker ran out of memory in the distributed {solver} "
            f"fit ({exc}): {block}. {advice} The estimator is left "
            "unfitted.")
    if type(exc).__name__ == "KilledWorker":
        return RuntimeError(
            f"Dask workers died while computing the distributed {solver} "
            f"fit ({exc}). Most often a worker ran out of memory: {block}, "
            "and the nanny restarts a worker past its memory_limit (the "
            f"worker logs say so). {advice} The estimator is left unfitted.")
    if isinstance(exc, (ValueError, TypeError, ImportError)):
        return exc
    return RuntimeError(
        f"The distributed {solver} fit failed on the Dask cluster "
        f"({type(exc).__name__}: {exc}); the estimator is left unfitted. "
        "If workers died (out of memory: the dashboard's worker logs "
        f"say so): {advice}")


@contextmanager
def _reporting_failures(est, solver, X, M):
    """Re-raise a failed distributed solve as :func:`_failed`'s error."""
    try:
        yield
    except Exception as exc:
        error = _failed(est, exc, solver, X, M)
        if error is exc:
            raise
        raise error from exc


def fit_cg(est, X, Y, kernel, M, tol, max_iter):
    """Exact coefficients by conjugate gradients with the rows on the workers.

    Every product with K runs as tiles on the workers
    (:class:`DaskKernelOperator`), the Nyström preconditioner's factor stays
    there too (:class:`DaskNystroemPreconditioner`); the iterations run on
    the client on n-sized vectors. The preconditioner's points are drawn as
    for NumPy data, so one process and a cluster give the same fit.
    """
    n = int(X.shape[0])
    if M > n:
        raise ValueError(f"n_inducing={M} is larger than the number of "
                         f"samples ({n}); choose n_inducing <= {n}.")
    Z = _uniform_rows(est, X, M)
    with _reporting_failures(est, "conjugate-gradient", X, len(Z)):
        Y = np.asarray(Y.compute(), dtype=np.float64)
        operator = DaskKernelOperator(kernel, X)
        pre = DaskNystroemPreconditioner(kernel, operator.X, Z, est.alpha)
        solution = iterative_ridge(kernel, operator.X, Y, est.alpha, Z=Z,
                                   tol=tol, max_iter=max_iter,
                                   operator=operator, preconditioner=pre)
    est.inducing_points_ = Z
    est.n_iter_ = solution.n_iter
    est.jitter_ = 0.0
    # the exact predictor needs every training row: they stay on the workers
    est.X_train_ = operator.X
    return solution.coef


def _cross_rows(kernel, x, rows, coef):
    return np.asarray(kernel(x, rows), dtype=np.float64) @ coef


def predict_rows(kernel, X, X_train, coef):
    """``k(X, X_train) @ coef`` with the training rows on the workers.

    The worker of each training block multiplies its block of
    ``k(X, X_train)`` with its rows of ``coef``; the (len(X), k) partial
    products are summed in a tree on the workers.
    """
    import dask

    X = dask.delayed(np.asarray(X), pure=True)
    cross = dask.delayed(_cross_rows, pure=True)
    starts = np.cumsum((0,) + X_train.chunks[0])
    parts = [cross(kernel, X, x, coef[a:b])
             for x, a, b in zip(X_train.to_delayed().ravel(), starts[:-1],
                                starts[1:])]
    (out,) = dask.compute(_tree_sum(parts))
    return out


def fit_nystroem(est, X, Y, kernel, M, tol, max_iter):
    """Nyström coefficients with the rows of X on the Dask workers.

    The inducing points are the rows drawn as ``InducingPoints(method=
    "uniform")`` draws them from NumPy data, so that the same
    ``random_state`` gives the same fit in one process and on a cluster.
    """
    Z = _uniform_rows(est, X, M)
    with _reporting_failures(est, "Nyström", X, len(Z)):
        operator = DaskNystroemOperator(kernel, X, Z)
        solution = nystroem_ridge(kernel, None, Z, Y, est.alpha, tol=tol,
                                  max_iter=max_iter, operator=operator)
    est.inducing_points_ = Z
    est.n_iter_ = solution.n_iter
    est.jitter_ = solution.jitter
    return solution.coef
