"""The estimators' fit on Dask arrays: validation and the Nyström solve."""
import numpy as np
from sklearn.utils import check_random_state

from .._core.collections import is_dask
from ..linalg.inducing import _drop_duplicate_rows
from ..linalg.nystroem import nystroem_ridge
from ._cluster import check_chunks, check_workers, require_dask
from .operators import DaskNystroemOperator


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


def fit_nystroem(est, X, Y, kernel, M, tol, max_iter):
    """Nyström coefficients with the rows of X on the Dask workers.

    The inducing points are the rows drawn as ``InducingPoints(method=
    "uniform")`` draws them from NumPy data, so that the same
    ``random_state`` gives the same fit in one process and on a cluster.
    """
    if est.inducing != "uniform":
        raise ValueError(
            f"inducing={est.inducing!r} is not available with dask arrays: "
            "use inducing='uniform', or choose the points on a NumPy "
            "subsample and fit NumPy arrays.")
    n = int(X.shape[0])
    rng = check_random_state(est.random_state)
    indices = np.sort(rng.choice(n, M, replace=False))
    rows = np.asarray(X[indices].compute())
    Z = rows[_drop_duplicate_rows(rows, np.arange(len(rows)))]
    try:
        operator = DaskNystroemOperator(kernel, X, Z)
        solution = nystroem_ridge(kernel, None, Z, Y, est.alpha, tol=tol,
                                  max_iter=max_iter, operator=operator)
    except (ValueError, TypeError, ImportError, MemoryError):
        _unfit(est)
        raise
    except Exception as exc:
        _unfit(est)
        raise RuntimeError(
            f"The distributed Nyström fit failed on the Dask cluster "
            f"({type(exc).__name__}: {exc}); the estimator is left unfitted. "
            "If workers died (out of memory: the dashboard's worker logs "
            "say so), give them more memory or smaller row chunks "
            "(X.rechunk), then fit again.") from exc
    est.inducing_points_ = Z
    est.n_iter_ = solution.n_iter
    est.jitter_ = solution.jitter
    return solution.coef
