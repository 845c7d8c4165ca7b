"""Exact kernel ridge regression by preconditioned conjugate gradients.

The system ``(K + alpha I) c = y`` is solved with K in tiles (half the
matrix, by symmetry). If the tiles fit in the memory allowed (``cache``,
about ``4 n^2`` bytes, a quarter of a Cholesky solve's), they are computed
once and kept, and an iteration only reads them; otherwise every product
``K V`` computes them on the fly and discards them, so memory stays
O(tile + n M) while each iteration costs one pass of kernel evaluations.

Conjugate gradients converge in about ``sqrt(cond)`` iterations; the kernel
matrices of wide networks have slowly decaying spectra, so without a
preconditioner ``cond ~ lambda_max / alpha`` is far too large.  The
preconditioner is the Nyström approximation of rank M on inducing points Z,

    P = K_nM K_MM^+ K_Mn + alpha I = A A^T + alpha I,   A = K_nM B,

with ``K_MM = U diag(w) U^T`` and ``B = U_r w_r^-1/2`` over the eigenvalues
above rounding level (as the Nyström solver's range solve, see
:mod:`skinfinite.linalg.nystroem`).  By Woodbury,

    P^-1 R = (R - A (alpha I + A^T A)^-1 A^T R) / alpha,

an M x M Cholesky factor and two products with an n x M matrix.  ``P``
matches ``K + alpha I`` on the top of the spectrum, so the preconditioned
matrix has eigenvalues in ``[1, 1 + e / alpha]`` with ``e`` the largest
error of the Nyström approximation (Frangella, Tropp and Udell, 2023):
the iterations fall with M.

The products with K go through a *row-partitioned kernel operator*
(:class:`RowPartitionedOperator`): any object with ``n``, ``blocks`` (row
slices), ``block_matmat(i, V)`` (``K[blocks[i], :] @ V``) and ``matmat(V)``
can be passed to :func:`iterative_ridge`, for instance one whose row blocks
live on other machines.
"""
import math
import time
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import linalg
from sklearn.exceptions import ConvergenceWarning

from .._core.config import get_config
from .._core.tiling import LONG_COMPUTATION, LongComputationWarning, progress
from .._core.validation import caller_stacklevel
from .cholesky import cho_solve, cholesky_with_jitter
from .nystroem import (_RANGE_RTOL, CACHE_FACTOR, NystroemOperator,
                       conjugate_gradient, n_rows, take)

__all__ = ["RowPartitionedOperator", "TiledKernelOperator",
           "NystroemPreconditioner", "IterativeSolution", "iterative_ridge",
           "default_rank", "rp_cholesky", "stored_bytes"]

#: Smallest tol at which the estimators keep K in float32 (when float64
#: does not fit): the rounding of K moves the solution less than this.
FLOAT32_MIN_TOL = 1e-4

#: Passes over K that conjugate gradients typically take with the Nyström
#: preconditioner (the time estimate of the long-computation warning).
TYPICAL_PASSES = 20


def default_rank(n):
    """Inducing points of the preconditioner for n rows.

    Its setup costs ``n M`` kernel entries (``2 M / n`` of one pass over K)
    and an M x M eigendecomposition; every M more points removes part of the
    spectrum that conjugate gradients would otherwise have to resolve.
    """
    return int(min(n, max(500, min(2000, 10 * math.sqrt(n)))))


def stored_bytes(n, budget=None, dtype=np.float64):
    """Bytes of the tiles on and above the diagonal of an n x n K, as
    :class:`TiledKernelOperator` keeps them (about ``4 n^2`` in float64,
    ``2 n^2`` in float32)."""
    side = tile_side(budget)
    m = -(-n // side)
    last = n - (m - 1) * side
    # full tiles, the short last row/column of tiles, the last corner
    full = (m - 1) * m // 2 * side * side
    return np.dtype(dtype).itemsize * (full + (m - 1) * side * last
                                       + last * last)


def tile_side(budget=None):
    """Rows and columns of a square tile of K: the tile and the engine's
    scratch (one inner-product block of the same size) fit in the budget."""
    budget = get_config()["memory_budget"] if budget is None else budget
    return max(1, math.isqrt(int(budget // 16)))


class RowPartitionedOperator:
    """Products ``K V`` with a symmetric n x n kernel matrix held in row blocks.

    The interface of the exact iterative solver: a subclass sets ``n`` and
    ``blocks`` (slices covering ``range(n)`` in order) and implements
    :meth:`block_matmat`; :meth:`matmat` stacks the blocks' products and may
    be overridden (to exploit symmetry, or to compute the blocks where
    their rows live and gather only the n x k result).

    Attributes
    ----------
    n : int
    blocks : list of slice
    kernel_passes : float
        Kernel evaluations so far, in units of the ``n^2 / 2`` entries of a
        symmetric pass.
    """

    n = 0
    blocks = ()
    kernel_passes = 0.0

    def block_matmat(self, i, V):
        """``K[blocks[i], :] @ V``, shape (rows of block i, k)."""
        raise NotImplementedError

    def matmat(self, V):
        """``K @ V`` for V of shape (n, k)."""
        return np.concatenate([self.block_matmat(i, V)
                               for i in range(len(self.blocks))])


class TiledKernelOperator(RowPartitionedOperator):
    """``K V`` with K computed in square tiles on the fly, stored if allowed.

    Parameters
    ----------
    kernel : callable
        ``kernel(A, B)`` returns the Gram block between the rows of A and
        B, ``kernel(A)`` the symmetric Gram of A (scikit-learn's convention).
    X : ndarray, list or Sequences
        The n rows (paths) of K.
    budget : int, optional
        Bytes of one tile and its scratch (default ``memory_budget``).
    cache : int or None, default=0
        Bytes the tiles on and above the diagonal may keep (about
        ``4 n^2``, see :func:`stored_bytes`). If they fit, the first
        product computes and keeps them and every later product only
        reads them (no kernel evaluations: a few tenths of a second per
        pass at n = 20000 instead of a pass of kernel evaluations); else
        every product recomputes them and memory stays at one tile.
    cache_dtype : {float64, float32}, default=float64
        Precision of the kept tiles. float32 halves their memory and
        rounds every entry of K by a relative ``6e-8``: the system solved
        is that of a perturbed K, whose solution is off by a relative
        ``3e-5`` (predictions ``4e-6``) at n = 4000, ``alpha = 0.01`` and a
        depth-3 NTK, growing about as ``sqrt(n) / alpha``; use it with
        ``tol >= FLOAT32_MIN_TOL``.

    Attributes
    ----------
    cached : bool
        Whether the tiles are kept.
    stored_bytes : int
        Bytes that keeping them takes.

    Notes
    -----
    :meth:`matmat` evaluates the tiles on and above the diagonal only, each
    serving both ``K[I, J] V[J]`` and ``K[I, J]^T V[I]``: half the kernel
    evaluations of the row-by-row products of :meth:`block_matmat`.
    """

    def __init__(self, kernel, X, budget=None, cache=0,
                 cache_dtype=np.float64):
        self.kernel, self.X = kernel, X
        self.n = n_rows(X)
        side = tile_side(budget)
        self.blocks = [slice(s, min(s + side, self.n))
                       for s in range(0, self.n, side)]
        self.kernel_passes = 0.0
        self.cache_dtype = np.dtype(cache_dtype)
        if self.cache_dtype not in (np.float64, np.float32):
            raise ValueError(f"cache_dtype must be float64 or float32, got "
                             f"{self.cache_dtype}.")
        self.stored_bytes = stored_bytes(self.n, budget, self.cache_dtype)
        self.cached = cache is not None and self.stored_bytes <= cache
        self._tiles = None

    def _tile(self, i, j):
        bi = self.blocks[i]
        if i == j:
            K = self.kernel(take(self.X, bi))
        else:
            K = self.kernel(take(self.X, bi), take(self.X, self.blocks[j]))
        rows, cols = bi.stop - bi.start, self.blocks[j].stop - self.blocks[j].start
        self.kernel_passes += rows * cols / (0.5 * self.n * self.n) * (
            0.5 if i == j else 1.0)
        return np.asarray(K, dtype=np.float64)

    def block_matmat(self, i, V):
        out = np.zeros((self.blocks[i].stop - self.blocks[i].start,
                        V.shape[1]))
        for j, bj in enumerate(self.blocks):
            if self._tiles is not None:
                K = (self._tiles[(i, j)] if j >= i
                     else self._tiles[(j, i)].T)
            else:
                K = self._tile(i, j)
            out += K @ V[bj]
        return out

    def matmat(self, V):
        return self._pass(V)

    def keep(self, first_tile=None):
        """Compute and keep the tiles now (if they are to be kept).

        ``first_tile(seconds, share)`` is called after the first tile with
        its time and its share of the symmetric pass (an estimate of the
        whole pass before it is made)."""
        if self.cached and self._tiles is None:
            self._pass(np.zeros((self.n, 0)), first_tile)

    def columns(self, indices):
        """``K[:, indices]`` read from the kept tiles, shape (n, len)."""
        if self._tiles is None:
            raise ValueError("The tiles are not kept; call keep() first.")
        indices = np.asarray(indices)
        side = self.blocks[0].stop
        out = np.empty((self.n, len(indices)))
        for j in np.unique(indices // side):
            where = np.flatnonzero(indices // side == j)
            offsets = indices[where] - j * side
            for i, bi in enumerate(self.blocks):
                out[bi, where] = (self._tiles[(i, j)][:, offsets] if i <= j
                                  else self._tiles[(j, i)][offsets, :].T)
        return out

    def _pass(self, V, first_tile=None):
        out = np.zeros((self.n, V.shape[1]))
        m = len(self.blocks)
        if self._tiles is not None:
            # memory-bound: each stored tile is read twice, no kernel work
            W = np.asarray(V, dtype=self.cache_dtype)
            for (i, j), K in self._tiles.items():
                bi, bj = self.blocks[i], self.blocks[j]
                out[bi] += K @ W[bj]
                if j > i:
                    out[bj] += K.T @ W[bi]
            return out
        tiles = {} if self.cached else None
        with progress(m * (m + 1) // 2, 0.5 * self.n * self.n,
                      "kernel matrix product") as bar:
            for i, bi in enumerate(self.blocks):
                for j in range(i, m):
                    bj = self.blocks[j]
                    start = time.perf_counter()
                    K = self._tile(i, j)
                    if first_tile is not None:
                        first_tile(time.perf_counter() - start,
                                   (bi.stop - bi.start) ** 2 / self.n ** 2)
                        first_tile = None
                    out[bi] += K @ V[bj]
                    if j > i:
                        out[bj] += K.T @ V[bi]
                    if tiles is not None:
                        tiles[(i, j)] = K.astype(self.cache_dtype,
                                                 copy=False)
                    bar.update()
        self._tiles = tiles
        return out


class NystroemPreconditioner:
    """``P^-1`` for ``P = D K_nM K_MM^+ K_Mn D + alpha I`` (see the module).

    Parameters
    ----------
    kernel : callable
        As for :class:`TiledKernelOperator`.
    X : ndarray, list or Sequences of n rows
    Z : ndarray, list or Sequences of M inducing points
    alpha : float
        Positive ridge of the system.
    sqrt_weight : ndarray of shape (n,), optional
        ``D``: the diagonal of the weighted system ``D K D + alpha I``.
    budget : int, optional
        Tile budget in bytes (default ``memory_budget``).
    K_nM : ndarray of shape (n, M), optional
        ``k(X, Z)`` if known (for instance read from a kept K when Z are
        rows of X): then no kernel is evaluated but ``k(Z, Z)``.

    Attributes
    ----------
    M : int
        Number of inducing points.
    rank : int
        Directions kept (eigenvalues of ``K_MM`` above rounding level).
    cached : bool
        Whether ``A = D K_nM B`` is kept (it fits in ``CACHE_FACTOR`` times
        the budget); otherwise ``K_nM`` is recomputed at every application.
    setup_seconds : float
        Time of the pass over ``K_nM``.
    """

    def __init__(self, kernel, X, Z, alpha, sqrt_weight=None, budget=None,
                 K_nM=None):
        budget = get_config()["memory_budget"] if budget is None else budget
        self.alpha = float(alpha)
        self.d = sqrt_weight
        K_MM = np.asarray(kernel(Z, Z), dtype=np.float64)
        # the divide-and-conquer driver: several times faster than "evr" here
        w, U = linalg.eigh(0.5 * (K_MM + K_MM.T), driver="evd")
        keep = w > _RANGE_RTOL * max(w[-1], 0.0)
        if not keep.any():
            raise ValueError(
                "The kernel matrix of the inducing points is zero: the kernel "
                "is identically zero on them, so nothing can be fitted.")
        self._B = U[:, keep] / np.sqrt(w[keep])
        self.rank = int(keep.sum())
        n, self.M = n_rows(X), n_rows(Z)
        self.cached = (K_nM is not None
                       or 8.0 * n * self.rank <= CACHE_FACTOR * budget)
        self._op = NystroemOperator(kernel, X, Z, "stream", budget)
        start = time.perf_counter()
        if K_nM is not None:
            self._A = self._scale(np.asarray(K_nM, dtype=np.float64)
                                  @ self._B)
            inner = self._A.T @ self._A
        elif self.cached:
            self._A = self._scale(self._op.product(
                self._B, "preconditioner setup"))
            inner = self._A.T @ self._A
        else:
            self._A = None
            inner = np.zeros((self.rank, self.rank))
            for s, e, block in self._op._blocks("preconditioner setup"):
                a = block @ self._B
                if self.d is not None:
                    a *= self.d[s:e, None]
                inner += a.T @ a
        self.setup_seconds = time.perf_counter() - start
        self._inner = 0.5 * (inner + inner.T)
        self._factor, _ = cholesky_with_jitter(self._inner, self.alpha)

    @classmethod
    def from_factor(cls, F, alpha, sqrt_weight=None, points=None):
        """The preconditioner of a low-rank factor ``K ~ F F^T`` (n x r),
        for instance that of :func:`rp_cholesky`: ``A = D F``."""
        self = cls.__new__(cls)
        self.alpha, self.d = float(alpha), sqrt_weight
        self._B = self._op = None
        self._A = self._scale(np.asarray(F, dtype=np.float64))
        self.M = self.rank = self._A.shape[1]
        self.points = points
        self.cached, self.setup_seconds = True, 0.0
        inner = self._A.T @ self._A
        self._inner = 0.5 * (inner + inner.T)
        self._factor, _ = cholesky_with_jitter(self._inner, self.alpha)
        return self

    def set_alpha(self, alpha):
        """The preconditioner of the same points for another ``alpha``:
        only the M x M factor is recomputed (no kernel evaluations)."""
        self.alpha = float(alpha)
        self._factor, _ = cholesky_with_jitter(self._inner, self.alpha)
        return self

    def _scale(self, R):
        return R if self.d is None else R * self.d[:, None]

    def apply(self, R):
        """``P^-1 R`` for R of shape (n, k)."""
        if self._A is not None:
            T = self._A.T @ R
        else:
            T = self._B.T @ self._op.transpose_product(
                self._scale(R), "preconditioner")
        S = cho_solve(self._factor, T)
        if self._A is not None:
            AS = self._A @ S
        else:
            AS = self._scale(self._op.product(self._B @ S, "preconditioner"))
        return (R - AS) / self.alpha


def rp_cholesky(kernel, X, rank, block=None, random_state=None,
                budget=None):
    """Randomly pivoted Cholesky: ``K ~ F F^T`` from ``rank`` columns of K.

    Block version (Chen, Epperly, Tropp and Webber, 2023): ``block`` pivots
    at a time are drawn with probabilities proportional to the diagonal of
    the residual ``K - F F^T``, their columns of K computed (``n * block``
    kernel evaluations), and F extended by the Cholesky factor of the
    residual on them. The pivots follow the part of the spectrum the factor
    has not yet captured, so for a given rank the factor is close to the
    best Nyström approximation at the cost of a uniform one.

    Parameters
    ----------
    kernel : callable with ``diag``
        ``kernel(A, B)`` and ``kernel.diag(A)`` as scikit-learn kernels.
    X : ndarray, list or Sequences of n rows
    rank : int
        Columns of F at most (fewer if the residual vanishes).
    block : int, optional
        Pivots per step (default ``max(1, rank // 10)``).
    random_state : int, Generator or None
    budget : int, optional
        Tile budget in bytes for the column blocks.

    Returns
    -------
    F : ndarray of shape (n, r)
    pivots : ndarray of shape (r,)
        Row indices of the pivots, in the order chosen.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite.kernels import NNGP
    >>> X = np.random.default_rng(0).normal(size=(40, 2))
    >>> F, pivots = rp_cholesky(NNGP(depth=2), X, 40, random_state=0)
    >>> bool(np.allclose(F @ F.T, NNGP(depth=2)(X), atol=1e-6))
    True
    """
    n = n_rows(X)
    rank = int(min(rank, n))
    block = max(1, rank // 10) if block is None else int(block)
    rng = np.random.default_rng(random_state)
    residual = np.asarray(kernel.diag(X), dtype=np.float64).copy()
    scale = max(float(residual.max()), 0.0)
    F = np.zeros((n, rank))
    pivots = np.empty(0, dtype=np.intp)
    step = max(1, int((get_config()["memory_budget"] if budget is None
                       else budget) // (16 * block)))
    k = 0
    while k < rank:
        total = residual.sum()
        if not total > 1e-14 * scale * n:
            break
        S = np.unique(rng.choice(n, min(block, rank - k), replace=True,
                                 p=residual / total))
        # rows whose residual is (numerically) zero add nothing
        S = S[residual[S] > 1e-14 * scale]
        if len(S) == 0:
            continue
        Xs = take(X, S)
        G = np.concatenate([
            np.asarray(kernel(take(X, slice(a, min(a + step, n))), Xs),
                       dtype=np.float64) for a in range(0, n, step)])
        G -= F[:, :k] @ F[S, :k].T
        H = 0.5 * (G[S] + G[S].T)
        w, U = linalg.eigh(H)
        keep = w > 1e-12 * max(w[-1], 0.0)
        if not keep.any():
            break
        new = G @ (U[:, keep] / np.sqrt(w[keep]))
        r = min(new.shape[1], rank - k)
        new = new[:, -r:]   # eigh: the largest last
        F[:, k:k + r] = new
        residual = np.clip(residual - np.einsum("ij,ij->i", new, new), 0.0,
                           None)
        residual[S] = 0.0
        pivots = np.concatenate([pivots, S[:r]])
        k += r
    return F[:, :k], pivots


def _warn_if_long(n, pass_seconds, passes, source):
    if pass_seconds * passes > LONG_COMPUTATION:
        warnings.warn(
            f"Exact iterative solve of {n} rows: one pass over the kernel "
            f"matrix is estimated at {pass_seconds:.0f} s from {source}, so "
            f"{passes} pass{'es' if passes != 1 else ''} would take about "
            f"{pass_seconds * passes / 60:.0f} minutes. Use solver='nystroem' "
            "(or fewer rows), a larger alpha or a looser tol. Ctrl-C stops "
            "it between tiles.", LongComputationWarning, stacklevel=caller_stacklevel())


@dataclass
class IterativeSolution:
    """Result of :func:`iterative_ridge`.

    Attributes
    ----------
    coef : ndarray of shape (n, n_targets)
        ``c``: predictions are ``k(x, X) @ coef``.
    n_iter : int
        Conjugate-gradient iterations run (each one pass over K).
    residual : ndarray of shape (n_targets,)
        Relative preconditioned residual of the returned iterate.
    converged : bool
    kernel_passes : float
        Kernel evaluations of this solve in units of a symmetric pass over
        K (``n^2 / 2`` entries), the preconditioner's ``K_nM`` included.
    rank : int
        Rank of the Nyström preconditioner.
    cached : bool
        Whether K was kept in memory (computed once, then only read).
    """

    coef: np.ndarray
    n_iter: int
    residual: np.ndarray
    converged: bool
    kernel_passes: float
    rank: int
    cached: bool = False


def iterative_ridge(kernel, X, Y, alpha, *, Z=None, sqrt_weight=None,
                    tol=1e-6, max_iter=100, operator=None,
                    preconditioner=None, budget=None, cache=0,
                    cache_dtype=np.float64, x0=None, inducing_rows=None,
                    random_state=None):
    """Solve ``(K + alpha I) c = Y`` exactly by Nyström-preconditioned CG.

    Parameters
    ----------
    kernel : callable
        ``kernel(A, B)`` returns the Gram block between the rows of A and
        B, ``kernel(A)`` the symmetric Gram (any scikit-learn kernel, or a
        skinfinite kernel on arrays or paths).
    X : ndarray, list or Sequences of length n
        Training inputs.
    Y : ndarray of shape (n,) or (n, k)
        Targets; several columns share every pass over K.
    alpha : float
        Ridge, > 0.
    Z : ndarray, list or Sequences, optional
        Inducing points of the preconditioner; by default the rows
        ``inducing_rows`` of X.
    inducing_rows : array of int, optional
        Rows of X serving as inducing points (when Z is not given); by
        default :func:`default_rank` rows drawn uniformly. When K is kept
        (``cache``), their columns of K are read from it, not computed.
    sqrt_weight : ndarray of shape (n,), optional
        Square roots of sample weights: the system becomes
        ``(D K D + alpha I) g = D Y`` and ``c = D g``, the weighted ridge
        ``(K + alpha W^-1) c = Y``.
    tol : float, default=1e-6
        Relative preconditioned residual at which CG stops.
    max_iter : int, default=100
    operator : RowPartitionedOperator, optional
        Products with K (default :class:`TiledKernelOperator` on
        ``kernel`` and ``X``).
    preconditioner : object with ``apply(R)``, optional
        ``P^-1 R`` for R of shape (n, k) (default
        :class:`NystroemPreconditioner` on ``Z``); with a distributed
        ``operator``, one whose ``K_nM`` rows live with the operator's.
    budget : int, optional
        Tile budget in bytes (default ``memory_budget``).
    cache : int or None, default=0
        Bytes the default operator may keep of K (see
        :class:`TiledKernelOperator`): when its tiles on and above the
        diagonal (``stored_bytes(n)``, about ``4 n^2``) fit, K is computed
        once and each iteration only reads it. To solve for several
        ``alpha``, pass the same cached ``operator`` to every call (and
        ``x0``, the previous solution): K is computed once for all.
    cache_dtype : {float64, float32}, default=float64
        Precision of the kept K (see :class:`TiledKernelOperator`).
    x0 : ndarray of shape (n,) or (n, k), optional
        Starting point (for instance the coefficients at a nearby
        ``alpha``; with ``sqrt_weight``, the coefficients ``c``). CG solves
        for the correction, at the cost of one more product with K.
    random_state : int, RandomState instance or None
        Seed of the default inducing points.

    Returns
    -------
    IterativeSolution
        If CG does not reach ``tol`` in ``max_iter`` iterations a
        :class:`~sklearn.exceptions.ConvergenceWarning` says so and the
        iterate of smallest residual is returned.

    Warns
    -----
    LongComputationWarning
        When :data:`TYPICAL_PASSES` passes over K are estimated (from the
        time of the preconditioner's setup) to take more than
        :data:`~skinfinite._core.tiling.LONG_COMPUTATION` seconds.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite.kernels import NTK
    >>> from skinfinite.linalg.iterative import iterative_ridge
    >>> X = np.random.default_rng(0).normal(size=(300, 3))
    >>> sol = iterative_ridge(NTK(depth=2), X, np.sin(X[:, 0]), 1e-2,
    ...                       Z=X[:50], tol=1e-10)
    >>> exact = np.linalg.solve(NTK(depth=2)(X) + 1e-2 * np.eye(300),
    ...                         np.sin(X[:, 0]))
    >>> sol.converged, np.allclose(sol.coef[:, 0], exact, atol=1e-6)
    (True, True)
    """
    Y = np.asarray(Y, dtype=np.float64)
    Y = Y.reshape(len(Y), -1)
    n = n_rows(X)
    alpha = float(alpha)
    if not alpha > 0:
        raise ValueError(
            f"The iterative solver needs alpha > 0, got alpha={alpha!r}: at "
            "alpha=0 the system is singular or nearly so and conjugate "
            "gradients do not converge. Set alpha (the noise variance) or "
            "use solver='cholesky'.")
    rows = None if inducing_rows is None else np.asarray(inducing_rows)
    if Z is None and rows is None and preconditioner is None:
        rng = np.random.default_rng(
            random_state if not hasattr(random_state, "randint")
            else random_state.randint(2**31))
        rows = np.sort(rng.choice(n, default_rank(n), replace=False))
    if Z is None and rows is not None:
        Z = take(X, rows)
    op = (TiledKernelOperator(kernel, X, budget, cache, cache_dtype)
          if operator is None else operator)
    if op.n != n:
        raise ValueError(f"The operator has {op.n} rows but X has {n}.")
    passes_before = getattr(op, "kernel_passes", 0.0)
    pre = preconditioner
    warned = False
    if pre is None:
        K_nM = None
        if rows is not None and isinstance(op, TiledKernelOperator) \
                and op.cached:
            # K is computed once, now; the preconditioner reads its columns
            def first_tile(seconds, share):
                _warn_if_long(n, seconds / share, 1, "its first tile")
            op.keep(first_tile)
            K_nM, warned = op.columns(rows), True
        pre = NystroemPreconditioner(kernel, X, Z, alpha, sqrt_weight, budget,
                                     K_nM=K_nM)
        del K_nM   # n x M: the preconditioner keeps its own A
    own = isinstance(pre, NystroemPreconditioner)
    M = pre.M if own else 0
    if own and not warned and pre.setup_seconds > 0:
        # a kept K costs one pass of kernel evaluations, then reads only
        passes = (0 if getattr(op, "_tiles", None) is not None
                  else 1 if getattr(op, "cached", False)
                  else min(max_iter, TYPICAL_PASSES))
        _warn_if_long(n, pre.setup_seconds * (0.5 * n) / max(M, 1), passes,
                      "the preconditioner's setup")
    d = sqrt_weight

    def matmat(V):
        if d is None:
            return op.matmat(V) + alpha * V
        return d[:, None] * op.matmat(d[:, None] * V) + alpha * V

    # a preconditioner built here counts its setup; a given one, its use
    nm_rows_before = (pre._op.rows_evaluated if preconditioner is not None
                      and own and pre._op is not None else 0)
    B = Y if d is None else d[:, None] * Y
    G0 = None
    if x0 is not None:
        G0 = np.asarray(x0, dtype=np.float64)
        if G0.ndim == 1:
            G0 = G0[:, None]
        if G0.shape != B.shape:
            raise ValueError(f"x0 has shape {np.shape(x0)} but the targets "
                             f"have shape {Y.shape}.")
        if d is not None:
            # c = D g: weights of zero leave g free there, start it at 0
            G0 = np.divide(G0, d[:, None], out=np.zeros_like(G0),
                           where=d[:, None] > 0)
        R0 = B - matmat(G0)

        def p_norm(R):
            return np.sqrt(np.clip(np.einsum("ij,ij->j", R, pre.apply(R)),
                                   0.0, None))
        # tol stays relative to the targets, not to the smaller residual
        # of the starting point
        ratio = p_norm(B) / np.maximum(p_norm(R0), 1e-300)
        B, cg_tol = R0, tol * float(ratio.min())
    else:
        ratio, cg_tol = 1.0, tol
    coef, n_iter, residual = conjugate_gradient(matmat, B, pre.apply, cg_tol,
                                                max_iter)
    residual = residual / ratio
    if G0 is not None:
        coef = coef + G0
    if d is not None:
        coef = d[:, None] * coef
    converged = bool(np.all(residual <= tol))
    if not converged:
        warnings.warn(
            f"Conjugate gradients of the exact solve did not converge: after "
            f"{n_iter} iterations (max_iter={max_iter}) the relative "
            f"residual is {residual.max():.3g} > tol={tol:g}; returning the "
            "iterate of smallest residual. Increase max_iter, n_inducing (a "
            "stronger preconditioner) or alpha, or loosen tol.",
            ConvergenceWarning,
            stacklevel=caller_stacklevel())
    # the preconditioner's K_nM passes: 2 M / n of a symmetric pass each
    nm_passes = ((pre._op.rows_evaluated - nm_rows_before) * M
                 / (0.5 * n * n) if own and pre._op is not None else 0.0)
    return IterativeSolution(coef, n_iter, residual, converged,
                             getattr(op, "kernel_passes", 0.0) - passes_before
                             + nm_passes, getattr(pre, "rank", 0),
                             bool(getattr(op, "cached", False)))
