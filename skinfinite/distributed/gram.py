"""Lazy Gram matrices of Dask arrays, computed block by block on workers."""
import numpy as np

from .._core.collections import is_dask
from .._core.validation import check_dtype
from ._cluster import check_chunks, check_workers, require_dask


def _pair(kernel, x, y):
    return np.asarray(kernel(x, y))


def _square(kernel, x):
    return np.asarray(kernel(x))


def _transposed(block):
    # a view: no copy on the worker of the upper tile, and a column-major
    # array is sent as such when the tile moves
    return block.T


def dask_gram(kernel, X, Y=None, eval_gradient=False):
    """``kernel(X, Y)`` as a lazy dask array of row-block x row-block tiles.

    Parameters
    ----------
    kernel : scikit-learn Kernel of skinfinite
        Called on each pair of row blocks, on the worker that computes the
        tile, by the same compiled engine as in one process.
    X : dask array or array-like of shape (n, ...)
        Rows are split as the chunks of axis 0; other axes are one chunk.
        A NumPy X is cut into blocks of Y's first chunk size.
    Y : dask array or array-like of shape (m, ...), default=None
        None computes ``k(X, X)``: the tiles on and above the diagonal, the
        others as their transposes.
    eval_gradient : bool, default=False
        Not available for Dask inputs (an error).

    Returns
    -------
    K : dask array of shape (n, m)
        Chunks ``(X.chunks[0], Y.chunks[0])``; nothing is computed until
        ``.compute()`` or ``.persist()``.

    Examples
    --------
    >>> import numpy as np, dask.array as da
    >>> from skinfinite.kernels import NTK
    >>> X = np.random.default_rng(0).normal(size=(60, 3))
    >>> K = NTK(depth=2)(da.from_array(X, chunks=25))
    >>> K.chunks
    ((25, 25, 10), (25, 25, 10))
    >>> bool(np.allclose(K.compute(), NTK(depth=2)(X), rtol=1e-12))
    True
    """
    da = require_dask()
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    if eval_gradient:
        raise ValueError(
            "eval_gradient=True is not available for dask arrays: the "
            "gradient has n x n x n_hyperparameters entries. Fit the "
            "hyperparameters on a NumPy subsample, or compute X first.")
    if not is_dask(X):   # NumPy rows against dask columns
        Y = check_chunks(Y, "Y")
        X = da.from_array(np.asarray(X), chunks=(Y.chunks[0][0],)
                          + tuple(-1 for _ in np.shape(X)[1:]))
    X = check_chunks(X, "X")
    symmetric = Y is None
    if symmetric:
        Y = X
    elif not is_dask(Y):
        Y = da.from_array(np.asarray(Y), chunks=(X.chunks[0][0],)
                          + tuple(-1 for _ in np.shape(Y)[1:]))
    else:
        Y = check_chunks(Y, "Y")
    check_workers()
    dtype = np.dtype(check_dtype(getattr(kernel, "dtype", "float64")))
    name = "skinfinite-gram-" + tokenize(kernel, X, None if symmetric else Y)
    tail_x, tail_y = (0,) * (X.ndim - 1), (0,) * (Y.ndim - 1)
    dsk = {}
    for i in range(len(X.chunks[0])):
        for j in range(len(Y.chunks[0])):
            xi, yj = (X.name, i) + tail_x, (Y.name, j) + tail_y
            if not symmetric:
                dsk[(name, i, j)] = (_pair, kernel, xi, yj)
            elif i == j:
                dsk[(name, i, j)] = (_square, kernel, xi)
            elif i < j:
                dsk[(name, i, j)] = (_pair, kernel, xi, yj)
            else:
                dsk[(name, i, j)] = (_transposed, (name, j, i))
    deps = [X] if symmetric else [X, Y]
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=deps)
    return da.Array(graph, name, (X.chunks[0], Y.chunks[0]), dtype=dtype)
