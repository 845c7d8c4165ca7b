"""Kernel operators whose rows live on Dask workers.

Both operators hold the rows of X as the blocks of a dask array, partitioned
across the workers. A product ``matmat(V)`` sends ``V`` to the workers, each
block multiplies where its rows are, and the partial products are summed in
a tree on the workers: what reaches the client is M-sized (Nyström) or
n-sized (exact) — never an n x M or n x n block.  Both operators have the
``matmat(V)`` interface of :class:`~skinfinite.linalg.nystroem.NystroemOperator`,
so the conjugate-gradient solvers of :mod:`skinfinite.linalg` drive them
unchanged.
"""
import numpy as np
from scipy.linalg.blas import dsyrk

from .._core.collections import is_dask
from ..linalg.nystroem import NORMAL_MAX_M, STRATEGIES
from ._cluster import check_chunks, check_workers, current_client, require_dask


def _gram_block(kernel, x, z):
    return np.asarray(kernel(x, z), dtype=np.float64)


def _normal_part(kernel, x, z, y):
    """``(upper(K^T K), K^T y)`` of one row block, K computed here."""
    block = _gram_block(kernel, x, z)
    H = dsyrk(1.0, block.T, beta=0.0, c=np.zeros((block.shape[1],) * 2,
                                                   order="F"), overwrite_c=1)
    return np.triu(H), block.T @ y


def _tdot(block, y):
    return block.T @ y


def _apply(block, V):
    return block.T @ (block @ V)


def _apply_streamed(kernel, x, z, V):
    return _apply(_gram_block(kernel, x, z), V)


def _kernel_rows(kernel, x, X, V, start):
    """``k(x, X) V`` for the rows x = X[start:start + len(x)].

    The diagonal block is the symmetric ``k(x)``, as in one process: the
    kernel of a row with itself is exact there, where ``k(x, x')`` through
    the angle's arccos would lose half of the digits at x' = x.
    """
    stop = start + len(x)
    out = np.asarray(kernel(x), dtype=np.float64) @ V[start:stop]
    if start > 0:
        out += _gram_block(kernel, x, X[:start]) @ V[:start]
    if stop < len(X):
        out += _gram_block(kernel, x, X[stop:]) @ V[stop:]
    return out


def _add(a, b):
    if isinstance(a, tuple):
        return tuple(p + q for p, q in zip(a, b))
    return a + b


def _tree_sum(parts):
    """Pairwise sums as tasks: the reduction runs on the workers."""
    from dask import delayed

    add = delayed(_add, pure=True)
    while len(parts) > 1:
        parts = [add(parts[k], parts[k + 1]) if k + 1 < len(parts)
                 else parts[k] for k in range(0, len(parts), 2)]
    return parts[0]


def _nbytes(result):
    if isinstance(result, (tuple, list)):
        return sum(_nbytes(r) for r in result)
    return int(np.asarray(result).nbytes)


def _row_blocks(A):
    return list(A.to_delayed().ravel())


def _worker_memory():
    client = current_client()
    if client is None:
        return None
    limits = [w.get("memory_limit") or 0 for w in
              client.scheduler_info().get("workers", {}).values()]
    return sum(limits) or None


def choose_distributed_strategy(n, M):
    """ "normal" up to ``NORMAL_MAX_M`` inducing points (one pass of kernel
    evaluations; each row block sends one M x M matrix); above, "cache"
    when ``K_nM`` takes at most half of the workers' memory, else
    "stream" (``K_nM`` recomputed at every iteration)."""
    if M <= NORMAL_MAX_M:
        return "normal"
    memory = _worker_memory()
    if memory is None or 8.0 * n * M <= 0.5 * memory:
        return "cache"
    return "stream"


class _Gathers:
    """Records what reaches the client, to keep it M- or n-sized."""

    def __init__(self):
        self.gathered_bytes = []

    def _compute(self, obj):
        import dask

        (result,) = dask.compute(obj)
        self.gathered_bytes.append(_nbytes(result))
        return result

    @property
    def largest_gathered(self):
        """Bytes of the largest result that reached the client."""
        return max(self.gathered_bytes, default=0)


class DaskNystroemOperator(_Gathers):
    """Products with ``K_nM^T K_nM`` where the rows of X live.

    Parameters
    ----------
    kernel : callable
        ``kernel(A, B)`` returns the Gram block between the rows of A and B;
        it is pickled to the workers.
    X : dask array of shape (n, ...)
        Training inputs, one row block per chunk of axis 0.
    Z : ndarray of shape (M, ...)
        Inducing points (sent once to every worker that needs them).
    strategy : {"auto", "normal", "cache", "stream"}, default="auto"
        * "normal": each row block computes its ``K_i`` and returns
          ``K_i^T K_i`` (M x M) once; CG then runs on the client.
        * "cache": the blocks ``K_i`` are computed once and kept (persisted)
          on the workers; each product sends ``V`` (M x k) and gathers the
          tree-summed ``sum_i K_i^T (K_i V)`` (M x k).
        * "stream": as "cache", with ``K_i`` recomputed at every product.

        "auto" follows :func:`choose_distributed_strategy`.

    Attributes
    ----------
    gathered_bytes : list of int
        Bytes of each result that reached the client.
    """

    def __init__(self, kernel, X, Z, strategy="auto"):
        import dask

        require_dask()
        self.kernel = kernel
        self.X = check_chunks(X, "X")
        self.Z = np.asarray(Z)
        self.n, self.M = int(self.X.shape[0]), len(self.Z)
        if strategy == "auto":
            strategy = choose_distributed_strategy(self.n, self.M)
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be 'auto' or one of "
                             f"{STRATEGIES}, got {strategy!r}.")
        self.strategy = strategy
        check_workers()
        super().__init__()
        self._x = _row_blocks(self.X)
        self._z = dask.delayed(self.Z, pure=True)
        self._blocks = None
        self._H = None
        self.rows_evaluated = 0

    @property
    def passes(self):
        """Passes of kernel evaluations over K_nM so far."""
        return self.rows_evaluated / self.n

    def _targets(self, Y):
        da = require_dask()
        if not is_dask(Y):
            Y = np.asarray(Y, dtype=np.float64)
            Y = da.from_array(Y.reshape(len(Y), -1),
                              chunks=(self.X.chunks[0], -1))
        Y = Y.reshape(Y.shape[0], 1) if Y.ndim == 1 else Y
        return _row_blocks(Y.astype(np.float64).rechunk(
            (self.X.chunks[0], -1)))

    def prepare(self, Y):
        """One pass over the rows: ``K_nM^T Y`` (and ``H`` or the cache)."""
        import dask

        ys = self._targets(Y)
        if self.strategy == "normal":
            part = dask.delayed(_normal_part, pure=True)
            H, rhs = self._compute(_tree_sum(
                [part(self.kernel, x, self._z, y) for x, y in zip(self._x, ys)]))
            self._H = H + np.triu(H, 1).T
            self.rows_evaluated += self.n
            return rhs
        if self.strategy == "cache":
            block = dask.delayed(_gram_block, pure=True)
            self._blocks = dask.persist(
                *[block(self.kernel, x, self._z) for x in self._x])
            self.rows_evaluated += self.n
            tdot = dask.delayed(_tdot, pure=True)
            return self._compute(_tree_sum(
                [tdot(b, y) for b, y in zip(self._blocks, ys)]))
        block = dask.delayed(_gram_block, pure=True)
        tdot = dask.delayed(_tdot, pure=True)
        self.rows_evaluated += self.n
        return self._compute(_tree_sum(
            [tdot(block(self.kernel, x, self._z), y)
             for x, y in zip(self._x, ys)]))

    def matmat(self, V):
        """``K_nM^T K_nM V``."""
        import dask

        if self._H is not None:
            return self._H @ V
        V = dask.delayed(np.ascontiguousarray(V), pure=True)
        if self._blocks is not None:
            apply = dask.delayed(_apply, pure=True)
            return self._compute(_tree_sum([apply(b, V)
                                            for b in self._blocks]))
        apply = dask.delayed(_apply_streamed, pure=True)
        self.rows_evaluated += self.n
        return self._compute(_tree_sum([apply(self.kernel, x, self._z, V)
                                        for x in self._x]))


class DaskKernelOperator(_Gathers):
    """Products with the exact n x n kernel matrix, by row blocks on workers.

    Each product ``K V`` sends ``V`` (n x k) to the workers; the worker of
    row block i computes ``k(X_i, X) V`` in place (the kernel matrix is
    never stored) and the client gathers the n x k result.

    Parameters
    ----------
    kernel : callable
        ``kernel(A, B)`` returns the Gram block between the rows of A and B.
    X : dask array of shape (n, ...)

    Attributes
    ----------
    gathered_bytes : list of int
        Bytes of each result that reached the client.
    """

    def __init__(self, kernel, X):
        import dask

        require_dask()
        self.kernel = kernel
        self.X = check_chunks(X, "X")
        self.n = int(self.X.shape[0])
        check_workers()
        super().__init__()
        self._x = _row_blocks(self.X)
        # all rows as one task result: each worker fetches it once per product
        self._all = dask.delayed(np.concatenate, pure=True)(self._x)
        self.shape = (self.n, self.n)

    def matmat(self, V):
        """``K V`` for V of shape (n, k)."""
        import dask

        V = np.asarray(V, dtype=np.float64)
        one = V.ndim == 1
        V = dask.delayed(V.reshape(self.n, -1), pure=True)
        rows = dask.delayed(_kernel_rows, pure=True)
        starts = np.cumsum((0,) + self.X.chunks[0][:-1])
        parts = self._compute([rows(self.kernel, x, self._all, V, int(s))
                               for x, s in zip(self._x, starts)])
        out = np.concatenate(parts)
        return out[:, 0] if one else out
