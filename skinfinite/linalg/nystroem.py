"""Nyström kernel ridge regression solved by preconditioned conjugate gradients.

With inducing points Z (M of them) the estimator is ``f(x) = k(x, Z) beta``
where ``beta`` solves the Nyström (subset-of-regressors) normal equations

    (K_nM^T K_nM + alpha K_MM) beta = K_nM^T y.

``alpha`` is not rescaled: it is the ``alpha`` of the exact solve
``(K + alpha I) c = y``. With Z = X the system becomes
``K (K + alpha I) beta = K y``, whose solution ``beta = (K + alpha I)^-1 y``
is the exact one, so the Nyström estimator converges to the exact estimator
as M grows to n.

The system is solved by conjugate gradients with the FALKON preconditioner
(Rudi, Carratino and Rosasco, 2017): since ``K_nM^T K_nM ~ (n/M) K_MM^2``
for a uniform choice of Z,

    P = T^T (n/M T T^T + alpha I) T,   K_MM = T^T T,

is cheap to invert (two M x M Cholesky factors) and ``P^-1 H`` is close to
the identity. The n x n kernel matrix is never formed; ``K_nM`` is computed
in row tiles and either reduced once to ``K_nM^T K_nM`` (M x M), cached, or
recomputed at every iteration (see :func:`choose_strategy`).
"""
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import linalg
from scipy.linalg.blas import dsyrk
from sklearn.exceptions import ConvergenceWarning

from .._core.config import get_config
from .._core.tiling import progress
from .._core.validation import caller_stacklevel
from .cholesky import cholesky_with_jitter

STRATEGIES = ("cache", "normal", "stream")

#: K_nM (or K_nM^T K_nM) is kept when it needs at most this many times the
#: tile budget ``memory_budget`` (2 GiB at the default 256 MiB).
CACHE_FACTOR = 8

#: Up to this M, "normal" is preferred to "cache" (see choose_strategy).
NORMAL_MAX_M = 4096


def take(X, indices):
    """Rows ``indices`` (an integer array or a slice) of an array, of a
    :class:`~skinfinite._core.sequences.Sequences`, or items of a list
    (ragged sequences)."""
    if isinstance(X, np.ndarray) or hasattr(X, "n_paths"):
        return X.take(indices) if hasattr(X, "n_paths") else X[indices]
    if isinstance(indices, slice):
        return X[indices]
    return [X[i] for i in indices]


def n_rows(X):
    if isinstance(X, np.ndarray):
        return X.shape[0]
    return X.n_paths if hasattr(X, "n_paths") else len(X)


def tile_rows(n_inducing, budget=None):
    """Rows per tile of K_nM: the tile and the engine's scratch (one
    inner-product block of the same size) fit in ``memory_budget``."""
    budget = get_config()["memory_budget"] if budget is None else budget
    return max(1, int(budget // (16 * max(n_inducing, 1))))


def choose_strategy(n, n_inducing, budget=None):
    """How the products with ``K_nM^T K_nM`` are computed.

    * "normal": one pass of kernel evaluations accumulates
      ``K_nM^T K_nM`` (M x M, a symmetric rank-k update per tile: n M^2
      multiply-adds), after which an iteration costs M^2 per right-hand
      side. Chosen when the M x M matrix (8 M^2 bytes) fits in
      ``CACHE_FACTOR * memory_budget`` and either ``M <= NORMAL_MAX_M`` or
      ``K_nM`` does not fit there.
    * "cache": ``K_nM`` (8 n M bytes) fits in that budget and M is larger;
      one pass of kernel evaluations, then an iteration streams the cached
      tiles twice (16 n M bytes).
    * "stream": neither fits; ``K_nM`` is recomputed tile by tile at every
      iteration (memory O(tile)).

    Why: on the reference machine (2 cores) a depth-3 ReLU NTK pair costs
    about 25 ns, the rank-k update about M / (150 GFLOP/s) per pair (13 ns
    at M = 2000) and a pass over the cache about 1 ns per pair and
    iteration; CG takes 10 to 80 iterations, so accumulating once beats
    re-reading the cache up to M of a few thousand, and beats recomputing
    ``K_nM`` at every M.
    """
    budget = get_config()["memory_budget"] if budget is None else budget
    limit = CACHE_FACTOR * budget
    cache_fits = 8.0 * n * n_inducing <= limit
    if 8.0 * n_inducing ** 2 <= limit and (n_inducing <= NORMAL_MAX_M
                                           or not cache_fits):
        return "normal"
    if cache_fits:
        return "cache"
    return "stream"


class FalkonPreconditioner:
    """Inverse of ``P = T^T (n/M T T^T + alpha I) T`` with ``K_MM = T^T T``.

    Parameters
    ----------
    K_MM : ndarray of shape (M, M)
    alpha : float
        Ridge of the Nyström system (not rescaled).
    n : int
        Number of training rows.

    Attributes
    ----------
    jitter : float
        Jitter added to ``K_MM`` for its Cholesky factor.
    """

    def __init__(self, K_MM, alpha, n):
        M = K_MM.shape[0]
        (L, _), self.jitter = cholesky_with_jitter(K_MM)
        self._L = np.tril(L)
        # T T^T = L^T L with T = L^T
        inner = (n / M) * (self._L.T @ self._L)
        (G, _), self.inner_jitter = cholesky_with_jitter(inner, alpha)
        self._G = np.tril(G)

    def apply(self, R):
        """``P^-1 R`` = ``T^-1 A^-1 A^-T T^-T R`` with ``A^T A`` the inner matrix."""
        solve = linalg.solve_triangular
        V = solve(self._L, R, lower=True, check_finite=False)
        V = solve(self._G, V, lower=True, check_finite=False)
        V = solve(self._G, V, lower=True, trans="T", check_finite=False)
        return solve(self._L, V, lower=True, trans="T", check_finite=False)


class NystroemOperator:
    """Products with ``H = K_nM^T K_nM`` without forming the n x n kernel.

    Parameters
    ----------
    kernel : callable
        ``kernel(A, B)`` returns the Gram block between the rows of A and B.
    X : ndarray or list
        Training inputs (rows are taken by slices).
    Z : ndarray or list
        Inducing points.
    strategy : {"cache", "normal", "stream"}
        See :func:`choose_strategy`.
    budget : int, optional
        Tile budget in bytes (default ``memory_budget``).
    """

    def __init__(self, kernel, X, Z, strategy, budget=None):
        self.kernel, self.X, self.Z = kernel, X, Z
        self.n, self.M = n_rows(X), n_rows(Z)
        self.strategy = strategy
        self.rows = tile_rows(self.M, budget)
        self.rows_evaluated = 0
        self._tiles = None
        self._H = None

    def _blocks(self, desc):
        starts = range(0, self.n, self.rows)
        with progress(len(starts), float(self.n) * self.M, desc) as bar:
            for start in starts:
                stop = min(start + self.rows, self.n)
                if self._tiles is not None and len(self._tiles) > start // self.rows:
                    block = self._tiles[start // self.rows]
                else:
                    block = np.asarray(
                        self.kernel(take(self.X, slice(start, stop)), self.Z),
                        dtype=np.float64)
                    self.rows_evaluated += stop - start
                yield start, stop, block
                bar.update()

    @property
    def passes(self):
        """Passes of kernel evaluations over K_nM so far."""
        return self.rows_evaluated / self.n

    def prepare(self, Y):
        """One pass over the data: ``K_nM^T Y``, and the cache or ``H``."""
        rhs = np.zeros((self.M, Y.shape[1]))
        if self.strategy == "normal":
            H = np.zeros((self.M, self.M), order="F")
        tiles = []
        for start, stop, block in self._blocks("Nystroem setup"):
            rhs += block.T @ Y[start:stop]
            if self.strategy == "cache":
                tiles.append(block)
            elif self.strategy == "normal":
                # block.T is Fortran-ordered: upper triangle of block^T block
                H = dsyrk(1.0, block.T, beta=1.0, c=H, overwrite_c=1)
        if self.strategy == "cache":
            self._tiles = tiles
        elif self.strategy == "normal":
            upper = np.triu(H)
            self._H = upper + np.triu(upper, 1).T
        return rhs

    def product(self, V, desc="Nystroem product"):
        """``K_nM V``, shape (n, k), from the cached or recomputed tiles."""
        out = np.empty((self.n, V.shape[1]))
        for start, stop, block in self._blocks(desc):
            out[start:stop] = block @ V
        return out

    def transpose_product(self, U, desc="Nystroem product"):
        """``K_nM^T U``, shape (M, k), from the cached or recomputed tiles."""
        out = np.zeros((self.M, U.shape[1]))
        for start, stop, block in self._blocks(desc):
            out += block.T @ U[start:stop]
        return out

    def matmat(self, V):
        """``K_nM^T K_nM V``."""
        if self._H is not None:
            return self._H @ V
        out = np.zeros_like(V)
        for _, _, block in self._blocks("Nystroem CG iteration"):
            out += block.T @ (block @ V)
        return out


@dataclass
class NystroemSolution:
    """Result of :func:`nystroem_ridge`.

    Attributes
    ----------
    coef : ndarray of shape (M, n_targets)
        ``beta``: predictions are ``k(x, Z) @ coef``.
    n_iter : int
        Conjugate-gradient iterations run.
    residual : ndarray of shape (n_targets,)
        Relative preconditioned residual of the returned iterate.
    converged : bool
    jitter : float
        Jitter added to ``K_MM``.
    strategy : str
        How ``K_nM`` was handled ("cache", "normal" or "stream").
    kernel_passes : int
        Passes of kernel evaluations over the n x M block.
    """

    coef: np.ndarray
    n_iter: int
    residual: np.ndarray
    converged: bool
    jitter: float
    strategy: str
    kernel_passes: int


def conjugate_gradient(matmat, B, precondition, tol=1e-6, max_iter=100):
    """Preconditioned conjugate gradients on several right-hand sides at once.

    Each column runs its own CG recursion (its own step lengths); the
    products with the matrix are made for all columns together. A column
    stops when its relative preconditioned residual
    ``sqrt(r^T P^-1 r / b^T P^-1 b)`` falls to ``tol``.

    Parameters
    ----------
    matmat : callable
        ``matmat(V)`` returns ``H V`` for a symmetric positive (semi)definite H.
    B : ndarray of shape (M, k)
    precondition : callable
        ``precondition(R)`` returns ``P^-1 R``.
    tol : float
    max_iter : int

    Returns
    -------
    X : ndarray of shape (M, k)
        The iterate of smallest residual of each column.
    n_iter : int
    residual : ndarray of shape (k,)
        Relative preconditioned residual of the returned iterate.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite.linalg.nystroem import conjugate_gradient
    >>> A = np.diag([1.0, 2.0, 3.0]); b = np.ones((3, 1))
    >>> x, it, res = conjugate_gradient(lambda v: A @ v, b, lambda r: r, 1e-12)
    >>> np.allclose(x[:, 0], [1, 1 / 2, 1 / 3]), it
    (True, 3)
    """
    X = np.zeros_like(B)
    R = B.copy()
    Z = precondition(R)
    rz = np.einsum("ij,ij->j", R, Z)
    norm_b = np.sqrt(np.clip(rz, 0.0, None))
    norm_b[norm_b == 0] = 1.0
    residual = np.sqrt(np.clip(rz, 0.0, None)) / norm_b
    best, best_res = X.copy(), residual.copy()
    active = residual > tol
    P = Z.copy()
    n_iter = 0
    while active.any() and n_iter < max_iter:
        n_iter += 1
        HP = np.zeros_like(P)
        HP[:, active] = matmat(P[:, active])
        pHp = np.einsum("ij,ij->j", P, HP)
        # a column whose curvature vanished cannot progress
        step = np.where(active & (pHp > 0), rz / np.where(pHp > 0, pHp, 1.0),
                        0.0)
        active &= pHp > 0
        X += step * P
        R -= step * HP
        Z = precondition(R)
        rz_new = np.einsum("ij,ij->j", R, Z)
        residual = np.sqrt(np.clip(rz_new, 0.0, None)) / norm_b
        improved = active & (residual < best_res)
        best[:, improved] = X[:, improved]
        best_res[improved] = residual[improved]
        beta = np.where(active & (rz > 0), rz_new / np.where(rz > 0, rz, 1.0),
                        0.0)
        P = Z + beta * P
        rz = rz_new
        active &= residual > tol
    return best, n_iter, best_res


def nystroem_ridge(kernel, X, Z, Y, alpha, *, tol=1e-6, max_iter=100,
                   strategy="auto", budget=None, operator=None):
    """Solve ``(K_nM^T K_nM + alpha K_MM) beta = K_nM^T Y`` by FALKON-PCG.

    Parameters
    ----------
    kernel : callable
        ``kernel(A, B)`` returns the Gram block between rows of A and B.
    X : ndarray or list of length n
        Training inputs.
    Z : ndarray or list of length M
        Inducing points.
    Y : ndarray of shape (n,) or (n, k)
        Targets; several columns are solved together.
    alpha : float
        Noise variance of the exact system ``(K + alpha I) c = y`` (used
        unscaled, see the module docstring).
    tol : float, default=1e-6
        Relative preconditioned residual at which CG stops.
    max_iter : int, default=100
    strategy : {"auto", "cache", "normal", "stream"}, default="auto"
        See :func:`choose_strategy`.
    budget : int, optional
        Tile budget in bytes (default ``memory_budget``).
    operator : object, optional
        Computes the products with ``K_nM^T K_nM`` instead of a
        :class:`NystroemOperator` of ``X``: it has ``n``, ``strategy``,
        ``passes``, ``prepare(Y)`` (returns ``K_nM^T Y``) and ``matmat(V)``,
        such as :class:`~skinfinite.distributed.DaskNystroemOperator` over
        rows on a Dask cluster (``Y`` is then left to it).

    Returns
    -------
    NystroemSolution
        If CG does not reach ``tol`` in ``max_iter`` iterations a
        :class:`~sklearn.exceptions.ConvergenceWarning` names the number of
        iterations and the residual, and the iterate of smallest residual is
        returned.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite.kernels import NTK
    >>> from skinfinite.linalg.nystroem import nystroem_ridge
    >>> X = np.random.default_rng(0).normal(size=(200, 3))
    >>> sol = nystroem_ridge(NTK(depth=2), X, X[:50], np.sin(X[:, 0]), 1e-2)
    >>> sol.coef.shape, sol.converged
    ((50, 1), True)
    """
    M = n_rows(Z)
    if operator is None:
        Y = np.asarray(Y, dtype=np.float64)
        Y = Y.reshape(len(Y), -1)
        n = n_rows(X)
        if strategy == "auto":
            strategy = choose_strategy(n, M, budget)
    else:
        n, strategy = operator.n, operator.strategy
    K_MM = np.asarray(kernel(Z, Z), dtype=np.float64)
    K_MM = 0.5 * (K_MM + K_MM.T)
    pre = FalkonPreconditioner(K_MM, alpha, n)
    op = (NystroemOperator(kernel, X, Z, strategy, budget)
          if operator is None else operator)
    rhs = op.prepare(Y)

    jitter = pre.jitter
    if pre.jitter == 0 and pre.inner_jitter == 0:
        def matmat(V):
            return op.matmat(V) + alpha * (K_MM @ V)

        coef, n_iter, residual = conjugate_gradient(matmat, rhs, pre.apply,
                                                    tol, max_iter)
    if pre.jitter > 0 or pre.inner_jitter > 0 or np.any(residual > tol):
        # K_MM is numerically singular or nearly so (a low-rank kernel, one
        # nearly constant at depth, or inducing points the kernel cannot
        # tell apart): the preconditioner then amplifies directions that
        # K_nM^T K_nM does not resolve and CG breaks down at once.  Solve in
        # the well-resolved range of K_MM instead.
        found = _range_solve(op, K_MM, rhs, alpha, n, tol, max_iter)
        if pre.jitter > 0 or pre.inner_jitter > 0 or np.all(found[2] <= tol):
            coef, n_iter, residual = found
            jitter = 0.0
    converged = bool(np.all(residual <= tol))
    if not converged:
        warnings.warn(
            f"Nystroem conjugate gradients did not converge: after {n_iter} "
            f"iterations the relative residual is {residual.max():.3g} "
            f"(tol={tol:g}); returning the iterate of smallest residual. "
            + ("The system is numerically singular at this alpha (conjugate "
               "gradients made no progress): increase alpha."
               if residual.min() >= 0.5 else
               "Increase max_iter or alpha, or loosen tol."),
            ConvergenceWarning, stacklevel=caller_stacklevel())
    return NystroemSolution(coef, n_iter, residual, converged, jitter,
                            strategy, op.passes)


#: Eigenvalues of K_MM below this fraction of the largest are dropped by
#: :func:`_range_solve`: K_nM^T K_nM squares them, so below about sqrt(eps)
#: their directions are lost in the rounding of the largest ones.
_RANGE_RTOL = 1e-7


def _range_solve(op, K_MM, rhs, alpha, n, tol, max_iter):
    """The Nyström system restricted to the numerical range of ``K_MM``.

    With ``K_MM = U diag(w) U^T`` and ``beta = B g``, ``B = U_r w_r^-1/2``
    over the eigenvalues above rounding level, the system becomes
    ``(B^T K_nM^T K_nM B + alpha I) g = B^T K_nM^T y``, and FALKON's
    approximation ``K_nM^T K_nM ~ (n/M) K_MM^2`` turns its preconditioner
    into the diagonal ``(n/M) w_r + alpha``.  Directions of ``beta`` in the
    null space of ``K_MM`` leave ``k(x, Z) beta`` unchanged wherever the
    kernel's features span those of Z, so nothing of the fit is lost.
    """
    M = K_MM.shape[0]
    w, U = linalg.eigh(K_MM)
    keep = w > _RANGE_RTOL * max(w[-1], 0.0)
    if not keep.any():
        raise ValueError(
            "The kernel matrix of the inducing points is zero: the kernel "
            "is identically zero on them, so nothing can be fitted.")
    w_r = w[keep]
    B = U[:, keep] / np.sqrt(w_r)
    diag = (n / M) * w_r + alpha

    def matmat(V):
        return B.T @ op.matmat(B @ V) + alpha * V

    g, n_iter, residual = conjugate_gradient(
        matmat, B.T @ rhs, lambda R: R / diag[:, None], tol, max_iter)
    return B @ g, n_iter, residual
