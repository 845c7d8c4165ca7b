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
from ..linalg.cholesky import cho_solve, cholesky_with_jitter
from ..linalg.iterative import RowPartitionedOperator, tile_side
from ..linalg.nystroem import _RANGE_RTOL, NORMAL_MAX_M, STRATEGIES
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


def _tile_products(kernel, xi, xj, vi, vj, side):
    """``(K_ij V_j, K_ij^T V_i)`` of one tile above the diagonal, or
    ``K_ii V_i`` of a diagonal tile (``xj`` None), in sub-tiles of ``side``
    rows: a worker holds one sub-tile of K at a time, never the tile."""
    if xj is None:
        # the sub-tiles on and above the diagonal, each serving both halves
        out = np.zeros_like(vi)
        cuts = range(0, len(xi), side)
        for s in cuts:
            a = slice(s, min(s + side, len(xi)))
            for t in cuts:
                if t < s:
                    continue
                b = slice(t, min(t + side, len(xi)))
                if s == t:
                    out[a] += np.asarray(kernel(xi[a]), np.float64) @ vi[a]
                    continue
                block = _gram_block(kernel, xi[a], xi[b])
                out[a] += block @ vi[b]
                out[b] += block.T @ vi[a]
        return out
    left, right = np.zeros_like(vi), np.zeros_like(vj)
    for s in range(0, len(xi), side):
        a = slice(s, min(s + side, len(xi)))
        for t in range(0, len(xj), side):
            b = slice(t, min(t + side, len(xj)))
            block = _gram_block(kernel, xi[a], xj[b])
            left[a] += block @ vj[b]
            right[b] += block.T @ vi[a]
    return left, right


def _first(pair):
    return pair[0]


def _second(pair):
    return pair[1]


def _low_rank_rows(kernel, x, Z, B):
    """``k(x, Z) B``: the row block of the preconditioner's factor A."""
    return _gram_block(kernel, x, Z) @ B


def _gram_of(block):
    return block.T @ block


def _precondition_rows(a, S, r):
    return (r - a @ S)


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


class DaskKernelOperator(RowPartitionedOperator, _Gathers):
    """Products with the exact n x n kernel matrix, by tiles on workers.

    A :class:`~skinfinite.linalg.iterative.RowPartitionedOperator` whose row
    blocks are the chunks of a dask array: each product ``K V`` cuts ``V``
    (n x k) into the same row blocks, the worker of tile ``(i, j)``,
    ``i <= j``, computes ``K_ij`` in sub-tiles (never stored) and returns
    ``K_ij V_j`` and ``K_ij^T V_i``; the pieces of each row block are summed
    on the workers and the client gathers the n x k result. Half of the
    kernel matrix is evaluated per product, as in one process.

    Parameters
    ----------
    kernel : callable
        ``kernel(A, B)`` returns the Gram block between the rows of A and B,
        ``kernel(A)`` the symmetric Gram of A.
    X : dask array of shape (n, ...)
        Its row chunks are the blocks; rows of other blocks travel to the
        worker of a tile (n x d bytes per product at most per worker).
    budget : int, optional
        Bytes of one sub-tile and its scratch on a worker (default
        ``memory_budget``).

    Attributes
    ----------
    blocks : list of slice
        The row chunks of X.
    kernel_passes : float
        Kernel evaluations so far, in symmetric passes (``n^2 / 2``).
    gathered_bytes : list of int
        Bytes of each result that reached the client.
    """

    def __init__(self, kernel, X, budget=None):
        import dask

        require_dask()
        self.kernel = kernel
        self.X = check_chunks(X, "X")
        self.n = int(self.X.shape[0])
        check_workers()
        _Gathers.__init__(self)
        # the kernel once on the cluster: tasks name it, nobody re-pickles it
        self.X, self._kernel = dask.persist(
            self.X, dask.delayed(kernel, pure=True))
        self._x = _row_blocks(self.X)
        starts = np.cumsum((0,) + self.X.chunks[0])
        self.blocks = [slice(int(a), int(b))
                       for a, b in zip(starts[:-1], starts[1:])]
        self._side = tile_side(budget)
        self.kernel_passes = 0.0
        self._all = None
        self.shape = (self.n, self.n)

    def block_matmat(self, i, V):
        """``K[blocks[i], :] @ V``, computed on a worker."""
        import dask

        if self._all is None:
            # all rows as one task result, fetched once per worker
            (self._all,) = dask.persist(
                dask.delayed(np.concatenate, pure=True)(self._x))
        V = np.asarray(V, dtype=np.float64).reshape(self.n, -1)
        rows = dask.delayed(_kernel_rows, pure=True)
        block = self.blocks[i]
        self.kernel_passes += 2.0 * (block.stop - block.start) / self.n
        return self._compute(rows(self._kernel, self._x[i], self._all,
                                  dask.delayed(V, pure=True), block.start))

    def matmat(self, V):
        """``K V`` for V of shape (n, k) (or (n,))."""
        import dask

        V = np.asarray(V, dtype=np.float64)
        one = V.ndim == 1
        V = V.reshape(self.n, -1)
        vs = [dask.delayed(np.ascontiguousarray(V[b]), pure=True)
              for b in self.blocks]
        tile = dask.delayed(_tile_products, pure=True)
        first = dask.delayed(_first, pure=True)
        second = dask.delayed(_second, pure=True)
        m = len(self.blocks)
        parts = [[] for _ in range(m)]
        for i in range(m):
            parts[i].append(tile(self._kernel, self._x[i], None, vs[i], None,
                                 self._side))
            for j in range(i + 1, m):
                pair = tile(self._kernel, self._x[i], self._x[j], vs[i],
                            vs[j], self._side)
                parts[i].append(first(pair))
                parts[j].append(second(pair))
        out = np.concatenate(self._compute([_tree_sum(p) for p in parts]))
        self.kernel_passes += 1.0
        return out[:, 0] if one else out


class DaskNystroemPreconditioner(_Gathers):
    """The Nyström preconditioner of the exact solve, rows on the workers.

    ``P^-1 R = (R - A (alpha I + A^T A)^-1 A^T R) / alpha`` with
    ``A = K_nM B`` as in
    :class:`~skinfinite.linalg.iterative.NystroemPreconditioner`; the row
    blocks ``A_i = k(X_i, Z) B`` (n x rank in all) are computed once and
    kept on the workers of the rows, or recomputed at every application
    when they would take more than half of the workers' memory. An
    application sends the blocks of ``R`` (n x k), sums ``A_i^T R_i``
    (rank x k) in a tree, solves with the rank x rank factor on a worker
    and gathers ``R - A S`` (n x k): only n-sized and M-sized arrays move.

    Parameters
    ----------
    kernel : callable
    X : dask array of shape (n, ...)
    Z : ndarray of shape (M, ...)
        Inducing points.
    alpha : float
        Positive ridge.
    cache : bool or "auto", default="auto"

    Attributes
    ----------
    M, rank : int
    cached : bool
    gathered_bytes : list of int
    """

    def __init__(self, kernel, X, Z, alpha, cache="auto"):
        import dask
        from scipy import linalg

        require_dask()
        _Gathers.__init__(self)
        self.alpha = float(alpha)
        self.kernel = kernel
        X = check_chunks(X, "X")
        self.n = int(X.shape[0])
        self.M = len(Z)
        K_MM = np.asarray(kernel(Z, Z), dtype=np.float64)
        w, U = linalg.eigh(0.5 * (K_MM + K_MM.T))
        keep = w > _RANGE_RTOL * max(w[-1], 0.0)
        if not keep.any():
            raise ValueError(
                "The kernel matrix of the inducing points is zero: the kernel "
                "is identically zero on them, so nothing can be fitted.")
        B = U[:, keep] / np.sqrt(w[keep])
        self.rank = int(keep.sum())
        if cache == "auto":
            memory = _worker_memory()
            cache = memory is None or 8.0 * self.n * self.rank <= 0.5 * memory
        self.cached = bool(cache)
        self._x = _row_blocks(X)
        self._z, self._b, self._kernel = dask.persist(
            dask.delayed(np.asarray(Z), pure=True), dask.delayed(B, pure=True),
            dask.delayed(kernel, pure=True))
        rows = dask.delayed(_low_rank_rows, pure=True)
        blocks = [rows(self._kernel, x, self._z, self._b) for x in self._x]
        if self.cached:
            blocks = list(dask.persist(*blocks))
        self._a = blocks
        gram = dask.delayed(_gram_of, pure=True)
        inner = self._compute(_tree_sum([gram(a) for a in blocks]))
        factor, _ = cholesky_with_jitter(0.5 * (inner + inner.T), self.alpha)
        (self._factor,) = dask.persist(dask.delayed(factor, pure=True))
        starts = np.cumsum((0,) + X.chunks[0])
        self._blocks = [slice(int(a), int(b))
                        for a, b in zip(starts[:-1], starts[1:])]

    def apply(self, R):
        """``P^-1 R`` for R of shape (n, k)."""
        import dask

        R = np.asarray(R, dtype=np.float64)
        rs = [dask.delayed(np.ascontiguousarray(R[b]), pure=True)
              for b in self._blocks]
        tdot = dask.delayed(_tdot, pure=True)
        T = _tree_sum([tdot(a, r) for a, r in zip(self._a, rs)])
        S = dask.delayed(cho_solve, pure=True)(self._factor, T)
        rows = dask.delayed(_precondition_rows, pure=True)
        out = self._compute([rows(a, S, r) for a, r in zip(self._a, rs)])
        return np.concatenate(out) / self.alpha
