"""Choice of inducing points for Nyström approximations."""
import numpy as np
from scipy import linalg
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state

from .nystroem import n_rows, take, tile_rows
from .._core.validation import check_choice, check_positive_int, check_vector_input
from .cholesky import cholesky_with_jitter

METHODS = ("uniform", "kmeans", "leverage")


class InducingPoints(BaseEstimator):
    """Select ``n_inducing`` inducing points from training inputs.

    * ``"uniform"``: a uniformly random subset of the rows, without
      replacement.
    * ``"kmeans"``: the centres of :class:`~sklearn.cluster.MiniBatchKMeans`
      (``n_init=3``, k-means++ initialisation) fitted on a uniform subsample
      of at most ``max(10000, 20 * n_inducing)`` rows. The centres are new
      points, not rows, so this needs vector data (a 2-D array).
    * ``"leverage"``: rows drawn without replacement with probabilities
      proportional to approximate ridge-leverage scores (Musco and Musco,
      2017). A uniform subsample S of ``n_inducing`` rows gives
      ``l_i = k(x_i, x_i) - k(x_i, S) (K_SS + mu I)^-1 k(S, x_i)``, computed
      in a second pass over all rows (``n * n_inducing`` kernel
      evaluations); ``mu`` is ``regularization`` or, by default, the ridge at
      which the subsample's effective dimension
      ``sum_j s_j / (s_j + mu)`` (``s_j`` the eigenvalues of ``K_SS``) is
      ``n_inducing / 2``. Rows that the subsample explains poorly (outliers,
      sparse regions) are favoured.

    Selected rows that are exact copies of each other are kept once (array
    inputs), so ``points_`` may have fewer than ``n_inducing`` rows when X
    has duplicates.

    "uniform" and "leverage" select rows by index, so they apply to any
    indexable inputs (for instance arrays or lists of sequences) as long as
    ``kernel`` accepts them.

    Parameters
    ----------
    n_inducing : int, default=100
        Number of points M; must not exceed the number of rows.
    method : {"uniform", "kmeans", "leverage"}, default="uniform"
    kernel : callable, default=None
        Needed by "leverage": ``kernel(A, B)`` returns a Gram block and
        ``kernel.diag(A)`` its diagonal, as scikit-learn kernels do.
    regularization : float, default=None
        Ridge ``mu`` of the leverage scores; None chooses it as above.
    random_state : int, RandomState instance or None, default=None
        Makes the selection deterministic.

    Attributes
    ----------
    indices_ : ndarray of shape (n_inducing,) or None
        Sorted row indices of the selected points (None for "kmeans").
    points_ : ndarray or list
        The inducing points.
    scores_ : ndarray of shape (n_samples,) or None
        Approximate leverage scores ("leverage" only).

    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite.empirical.random_features import InducingPoints
    >>> X = np.random.default_rng(0).normal(size=(100, 3))
    >>> ip = InducingPoints(10, random_state=0).fit(X)
    >>> ip.points_.shape, len(np.unique(ip.indices_))
    ((10, 3), 10)
    """

    def __init__(self, n_inducing=100, *, method="uniform", kernel=None,
                 regularization=None, random_state=None):
        self.n_inducing = n_inducing
        self.method = method
        self.kernel = kernel
        self.regularization = regularization
        self.random_state = random_state

    def fit(self, X, y=None):
        """Select the inducing points among (or, for "kmeans", near) X.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...) or list
        y : None
            Ignored.

        Returns
        -------
        self
        """
        check_choice(self.method, "method", METHODS)
        M = check_positive_int(self.n_inducing, "n_inducing")
        if self.method == "kmeans":
            X = _vector_input(X)
        elif not isinstance(X, (np.ndarray, list)):
            X = np.asarray(X)
        n = n_rows(X)
        if n == 0:
            raise ValueError("X has no samples.")
        if M > n:
            raise ValueError(f"n_inducing={M} is larger than the number of "
                             f"samples ({n}); choose n_inducing <= {n}.")
        rng = check_random_state(self.random_state)
        self.scores_ = None
        if self.method == "uniform":
            self.indices_ = np.sort(rng.choice(n, M, replace=False))
        elif self.method == "leverage":
            self.scores_ = self._leverage_scores(X, M, rng)
            p = self.scores_ / self.scores_.sum()
            self.indices_ = np.sort(rng.choice(n, M, replace=False, p=p))
        else:
            self.indices_ = None
            self.points_ = _kmeans_centres(X, M, rng)
            return self
        if isinstance(X, np.ndarray):
            self.indices_ = _drop_duplicate_rows(X, self.indices_)
        self.points_ = take(X, self.indices_)
        return self

    def _leverage_scores(self, X, M, rng):
        if self.kernel is None:
            raise ValueError('method="leverage" needs a kernel.')
        n = n_rows(X)
        S = take(X, np.sort(rng.choice(n, M, replace=False)))
        K_SS = np.asarray(self.kernel(S, S), dtype=np.float64)
        K_SS = 0.5 * (K_SS + K_SS.T)
        mu = (_ridge_for_dimension(K_SS, M / 2) if self.regularization is None
              else float(self.regularization))
        (L, _), _ = cholesky_with_jitter(K_SS, mu)
        scores = np.empty(n)
        step = tile_rows(M)
        for start in range(0, n, step):
            rows = X[start:start + step]
            B = np.asarray(self.kernel(rows, S), dtype=np.float64)
            V = linalg.solve_triangular(L, B.T, lower=True, check_finite=False)
            scores[start:start + len(B)] = (np.asarray(self.kernel.diag(rows))
                                            - np.einsum("ij,ij->j", V, V))
        # every row keeps a small chance, so M distinct rows can be drawn
        floor = 1e-12 * max(float(scores.max()), 1e-300)
        return np.clip(scores, floor, None)


def _drop_duplicate_rows(X, indices):
    """Keep the first of selected rows that are equal: copies add identical
    kernel columns, which make K_MM singular and nothing else."""
    rows = X[indices].reshape(len(indices), -1)
    _, first = np.unique(rows, axis=0, return_index=True)
    return indices if len(first) == len(indices) else indices[np.sort(first)]


def _vector_input(X):
    try:
        return check_vector_input(X)
    except ValueError as exc:
        raise ValueError(
            'method="kmeans" needs vector data (a finite 2-D numeric array); '
            'use "uniform" or "leverage" for other inputs such as '
            f"sequences. ({exc})") from exc


def _kmeans_centres(X, M, rng):
    from sklearn.cluster import MiniBatchKMeans

    n = X.shape[0]
    size = min(n, max(10000, 20 * M))
    rows = X if size == n else X[rng.choice(n, size, replace=False)]
    km = MiniBatchKMeans(n_clusters=M, n_init=3, batch_size=max(1024, 2 * M),
                         random_state=rng.randint(2**31 - 1))
    return km.fit(rows).cluster_centers_


def _ridge_for_dimension(K, target):
    """Ridge mu at which ``sum_j s_j / (s_j + mu)`` equals ``target``."""
    s = np.clip(linalg.eigvalsh(K, check_finite=False), 0.0, None)
    lo, hi = 1e-12 * max(s.max(), 1e-300), max(s.max(), 1e-300)
    for _ in range(100):  # bisection in log space
        mid = np.sqrt(lo * hi)
        if np.sum(s / (s + mid)) > target:
            lo = mid
        else:
            hi = mid
    return hi
