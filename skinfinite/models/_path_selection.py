"""Built-in model selection of the path estimators.

One Gram matrix per kernel setting; every regularisation value, fold and
class reuses it (support-vector machines on precomputed sub-blocks, kernel
ridge through one eigendecomposition).  Scales start from median heuristics
and are refined on a lattice around the best point until all its neighbours
have been evaluated, so the chosen point is never at an edge of the searched
grid unless a hard bound or the time budget stops the search (which is then
reported).
"""
import hashlib
import numbers
import time
import warnings

import numpy as np
from sklearn import config_context
from sklearn.base import clone
from sklearn.gaussian_process.kernels import Sum
from sklearn.model_selection import KFold, StratifiedKFold, check_cv
from sklearn.svm import SVC

from .._core.sequences import Sequences, check_sequences
from .._core.validation import caller_stacklevel
from ..kernels._base import PathInputKernel
from ..kernels.signature import SignatureKernel
from .._core.path_transforms import transform

#: Kernel families on paths the estimators choose among.
FAMILIES = ("rbf", "conv", "signature", "signature+rbf")
#: The families in the order the selection prefers them when their scores
#: are within one standard error (see ``PathSearch._prefer``): the limit of
#: random convolutions first, which classified held-out series best in the
#: published comparisons (ROCKET, MiniRocket) and, on the training splits of
#: the public UCR/UEA sets, most often within the noise of the best family;
#: then the fewest parameters.
FAMILY_PRIOR = ("conv", "rbf", "signature", "signature+rbf", "given")
#: Families whose Gram matrices cost enough to share the time budget.
_COSTLY = ("conv", "signature", "given")
#: Longest path (points) of the first, coarse stage of the signature search.
COARSE_LENGTH = 32
#: Longest path of the first stage of the convolutional kernel's search.
CONV_COARSE_LENGTH = 64
#: The convolutional family sums the kernel on the paths and on their first
#: differences (chosen by cross-validation on the training splits of the
#: public UCR/UEA sets; see docs/guide/timeseries.rst).
CONV_DIFFERENCES = True
#: Step of the convolutional kernel's bias-variance lattice.
_BIAS_STEP = 4.0
#: Nominal cells per second of the cost model that spends ``time_budget``
#: (signature: PDE cells; convolutional: pairs of windows times dilations):
#: about half of what 2 idle cores reach (1.3e9 and 8.6e8 measured; the
#: random-feature route, in multiply-adds: 6.4e9 measured).  Fixed
#: rates, not measured ones, so that the search, and so the fitted model,
#: depend on the data alone and not on the machine's load.
_CELLS_PER_SECOND = {"signature": 5e8, "conv": 4e8, "conv_rf": 3e9}
#: Filters per dilation the convolutional family's random-feature route may
#: use at full length when the exact kernel there exceeds the budget: the
#: largest that fits what is left of the family's share.  One value: on the
#: training splits of OSULeaf and ACSF1 (5-fold, two seeds) 1000 to 8000
#: filters scored within one fold's noise of each other (OSULeaf 0.91-0.92,
#: ACSF1 0.66-0.70, 1000 best), so the cheapest leaves the budget to the
#: bias variance's refinement.
CONV_RF_COMPONENTS = (1000,)
#: Full-length Grams the exact convolutional search costs, about: where
#: they do not fit the family's share, the random features are the search.
CONV_EXACT_GRAMS = 4.0
#: Seed of the random-feature route's filters (the fit depends on the data
#: alone).
CONV_RF_SEED = 0
#: Bytes of random features held at once by ``grams_by_bias``.
FEATURE_BYTES = 2 ** 28
# Lattice steps (factors) of the scale axes, and how many steps the search
# may move from its heuristic start.
_PATH_SCALE_STEP = 4.0
_LENGTH_SCALE_STEP = 2.0
_MAX_STEPS = 4
_C_GRID = (1.0, 10.0, 100.0)
_C_BOUNDS = (1e-4, 1e6)
_ALPHA_GRID = (1e-3, 1e-2, 1e-1, 1.0)
_ALPHA_BOUNDS = (1e-8, 1e4)
_TIE = 1e-12


class SelectionWarning(UserWarning):
    """The built-in model selection shrank its search or could not choose."""


# ----------------------------------------------------------------- kernels

def shorten(seqs, n_points):
    """Paths longer than ``n_points`` as the means of ``n_points`` consecutive
    segments of nearly equal length (piecewise aggregate approximation)."""
    if n_points is None or seqs.max_length <= n_points:
        return seqs
    n, _, c = seqs.values.shape
    lengths = np.minimum(seqs.lengths, n_points)
    out = np.empty((n, n_points, c))
    for length in np.unique(seqs.lengths):
        rows = np.flatnonzero(seqs.lengths == length)
        v = seqs.values[rows, :length]
        if length <= n_points:
            out[rows, :length] = v
            out[rows, length:] = v[:, -1:]
            continue
        edges = np.round(np.linspace(0, length, n_points + 1)).astype(int)
        total = np.concatenate([np.zeros((len(rows), 1, c)),
                                np.cumsum(v, axis=1)], axis=1)
        widths = np.diff(edges)[None, :, None]
        out[rows] = (total[:, edges[1:]] - total[:, edges[:-1]]) / widths
    return Sequences(out, lengths.astype(np.int64))


class _MappedKernel(PathInputKernel):
    """A kernel on paths applied after a map of the paths (``_map``)."""

    def _map(self, X):
        raise NotImplementedError

    def __call__(self, X, Y=None, eval_gradient=False):
        if eval_gradient:
            raise ValueError(f"{type(self).__name__} has no hyperparameter "
                             "gradient.")
        return self.kernel(self._map(X), None if Y is None else self._map(Y))

    def diag(self, X):
        return self.kernel.diag(self._map(X))


class ShortenedKernel(_MappedKernel):
    """A kernel on paths applied after :func:`shorten` to ``n_points``."""

    def __init__(self, kernel, n_points=None, n_channels=None):
        self.kernel = kernel
        self.n_channels = n_channels
        self.n_points = n_points

    def _map(self, X):
        return shorten(check_sequences(X, self.n_channels), self.n_points)

    def __repr__(self):
        return f"ShortenedKernel({self.kernel!r}, n_points={self.n_points})"


def difference(seqs):
    """First differences of every path (one point fewer; a one-point path
    keeps one zero increment)."""
    values = np.diff(seqs.values, axis=1)
    if values.shape[1] == 0:
        values = np.zeros_like(seqs.values)
    lengths = np.maximum(seqs.lengths - 1, 1)
    for i in np.flatnonzero(lengths < values.shape[1]):
        values[i, lengths[i]:] = values[i, lengths[i] - 1]
    return Sequences(values, lengths.astype(np.int64))


class DifferencedKernel(_MappedKernel):
    """A kernel on paths applied to their first differences.

    Summed with the same kernel on the paths themselves, it gives a
    convolutional kernel both the levels and the slopes of a series, as
    MiniRocket and MultiRocket feed both to their random convolutions.
    """

    def __init__(self, kernel, n_channels=None):
        self.kernel = kernel
        self.n_channels = n_channels

    def _map(self, X):
        return difference(check_sequences(X, self.n_channels))

    def __repr__(self):
        return f"DifferencedKernel({self.kernel!r})"


def _common_length(seqs, length):
    """Every path linearly interpolated to ``length`` points, flattened."""
    if seqs.equal_lengths and seqs.max_length == length:
        return seqs.values.reshape(seqs.n_paths, -1)
    grid = np.linspace(0.0, 1.0, length)
    out = np.empty((seqs.n_paths, length, seqs.n_channels))
    for i in range(seqs.n_paths):
        p = seqs.path(i)
        t = np.linspace(0.0, 1.0, len(p))
        for c in range(seqs.n_channels):
            out[i, :, c] = np.interp(grid, t, p[:, c])
    return out.reshape(seqs.n_paths, -1)


def _at_length(kernel, X, length):
    """The paths of X (in ``kernel.n_channels``' layout) and their values
    interpolated to ``length`` points, flattened; ``length=None`` takes the
    paths' own, common length."""
    seqs = check_sequences(X, kernel.n_channels)
    if length is None:
        if not seqs.equal_lengths:
            raise ValueError(f"{type(kernel).__name__} with length=None needs "
                             "paths of equal length; set length.")
        length = seqs.max_length
    return seqs, _common_length(seqs, length)


class SeriesRBFKernel(PathInputKernel):
    r"""Gaussian kernel on whole series: ``exp(-|x - y|^2 / (2 length_scale^2))``
    with ``|x - y|`` the Euclidean distance of the paths' points, flattened.

    Paths of other lengths than ``length`` are linearly interpolated to
    ``length`` points first (``length=None`` needs equal lengths).
    """

    def __init__(self, length_scale=1.0, length=None, n_channels=None):
        self.length_scale = length_scale
        self.length = length
        self.n_channels = n_channels

    def _flat(self, X, length):
        return _at_length(self, X, length)[1]

    def __call__(self, X, Y=None, eval_gradient=False):
        if eval_gradient:
            raise ValueError("SeriesRBFKernel has no hyperparameter gradient.")
        x = self._flat(X, self.length)
        y = x if Y is None else self._flat(Y, self.length or
                                           check_sequences(X, self.n_channels).max_length)
        if x.shape[1] != y.shape[1]:
            raise ValueError(f"X and Y have paths of {x.shape[1]} and {y.shape[1]} "
                             "values; set length to compare paths of other lengths.")
        return np.exp(-_sq_distances(x, y) / (2.0 * float(self.length_scale) ** 2))

    def diag(self, X):
        return np.ones(check_sequences(X, self.n_channels).n_paths)

    def is_stationary(self):
        return True

    def __repr__(self):
        return f"SeriesRBFKernel(length_scale={self.length_scale:.4g})"


class ConvRandomFeatureKernel(PathInputKernel):
    r"""Random-feature approximation of the convolutional family's kernel.

    ``Phi(X) Phi(Y)^T`` with ``Phi`` the features of
    :class:`~skinfinite.empirical.ConvolutionalRandomFeatures` (one layer,
    ``n_components`` filters per dilation, "ppv" readout, "same" padding) on
    the paths and, with ``differences``, on their first differences, the two
    maps concatenated.  It converges to ``ConvNNGP(readout="ppv",
    padding="same", bias_variance=bias_variance)`` (plus the same kernel on
    the differences) at the rate ``n_components ** -0.5``, at a cost linear
    in the number of paths.  The filters follow from ``random_state`` alone,
    so every call (and every clone or pickled copy) uses the same features.

    Parameters
    ----------
    n_components : int, default=1000
        Filters per dilation of each map.
    bias_variance : float, default=1.0
    differences : bool, default=True
        Also map the first differences of the paths.
    length : int or None, default=None
        Paths are linearly interpolated to ``length`` points first (the
        dilations follow the length, so all paths need one); None needs
        paths of equal length.
    random_state : int, default=0
        Seed of the filters.
    n_channels : int or None, default=None
        Channels of paths given as 2-D arrays.
    """

    def __init__(self, n_components=1000, bias_variance=1.0, differences=True,
                 length=None, random_state=0, n_channels=None):
        self.n_components = n_components
        self.bias_variance = bias_variance
        self.differences = differences
        self.length = length
        self.random_state = random_state
        self.n_channels = n_channels

    def _values(self, X):
        seqs, values = _at_length(self, X, self.length)
        return values.reshape(seqs.n_paths, -1, seqs.n_channels)

    def _maps(self, X):
        """(values, fitted feature map) of the paths and their differences."""
        from ..empirical.random_features import ConvolutionalRandomFeatures
        values = self._values(X)
        maps = [values]
        if self.differences and values.shape[1] > 2:
            maps.append(np.diff(values, axis=1))
        for part, v in enumerate(maps):
            rf = ConvolutionalRandomFeatures(
                self.n_components, readout="ppv", padding="same",
                bias_variance=self.bias_variance,
                random_state=int(self.random_state) + part)
            yield v, rf.fit(v[:1])

    def features(self, X):
        """The random features ``Phi(X)``, shape (n_paths, n_features)."""
        return np.hstack([rf.transform(v) for v, rf in self._maps(X)])

    def grams_by_bias(self, X, bias_variances):
        """The Gram matrices of X under each of ``bias_variances`` (in place
        of ``bias_variance``), equal to those of kernels cloned with each,
        from one pass over the paths: the filters' responses are formed once
        and compared with every bias.  Features of at most
        :data:`FEATURE_BYTES` are held at a time (more passes otherwise).

        Returns
        -------
        grams : ndarray of shape (len(bias_variances), n_paths, n_paths)
        """
        bvs = np.asarray(bias_variances, dtype=np.float64).reshape(-1)
        grams = None
        for v, rf in self._maps(X):
            n = v.shape[0]
            if grams is None:
                grams = np.zeros((bvs.size, n, n))
            width = rf.transform(v[:1]).shape[1] - 1
            per = max(1, int(FEATURE_BYTES // (8 * n * width)))
            for start in range(0, bvs.size, per):
                part = bvs[start:start + per]
                F = rf.network_.nngp_features(v, bias_variances=part)
                for b, Fb in enumerate(F):
                    # the readout bias adds its variance to every entry
                    grams[start + b] += Fb @ Fb.T + part[b]
        return grams

    def _cached_features(self, X):
        # predict maps the same training (support) paths for every tile
        seqs = check_sequences(X, self.n_channels)
        digest = hashlib.blake2b(np.ascontiguousarray(seqs.values).tobytes(),
                                 digest_size=16)
        digest.update(np.asarray(seqs.lengths, dtype=np.int64).tobytes())
        key = (digest.hexdigest(), _key(self.get_params()))
        cache = getattr(self, "_cache", None)
        if cache is not None and cache[0] == key:
            return cache[1]
        F = self.features(seqs)
        self._cache = (key, F)
        return F

    def __call__(self, X, Y=None, eval_gradient=False):
        if eval_gradient:
            raise ValueError("ConvRandomFeatureKernel has no hyperparameter "
                             "gradient: its features are fixed random "
                             "functions; use ConvNNGP for gradients.")
        F = self.features(X)
        if Y is None:
            return F @ F.T
        return F @ self._cached_features(Y).T

    def diag(self, X):
        F = self.features(X)
        return np.einsum("ij,ij->i", F, F)

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_cache", None)
        return state

    def __repr__(self):
        return (f"ConvRandomFeatureKernel(n_components={self.n_components}, "
                f"bias_variance={float(self.bias_variance):.4g}, "
                f"differences={self.differences})")


def _conv_lattice():
    """Bias variances of the convolutional search: the lattice of
    ``_BIAS_STEP`` up to ``_MAX_STEPS`` steps from one, with the half steps
    of the refinement, beyond the last step too (powers of two, exact in
    floating point)."""
    return _BIAS_STEP ** (np.arange(-2 * _MAX_STEPS - 1, 2 * _MAX_STEPS + 2) / 2.0)


def _sq_distances(x, y):
    d = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    return np.maximum(d, 0.0)


def _median_nonzero(d):
    d = d[d > 1e-12 * max(d.max(initial=0.0), 1e-300)]
    return float(np.median(d)) if d.size else 0.0


# ------------------------------------------------------------------ grids

def _check_grid(value, name, integer=False, allowed=None):
    """"auto", a fixed value or a list of candidates; returns (mode, values)."""
    if isinstance(value, str) and value == "auto":
        return "auto", None
    values = list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value]
    if not values:
        raise ValueError(f"{name} is an empty list; give at least one candidate "
                         "value or 'auto'.")
    for v in values:
        if allowed is not None:
            if not any(v is a or (isinstance(v, type(a)) and v == a) for a in allowed):
                raise ValueError(f"{name} candidates must be in {allowed} (or "
                                 f"'auto'); got {v!r}.")
            continue
        if integer:
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral) \
                    or v < 0:
                raise ValueError(f"{name} candidates must be integers >= 0 "
                                 f"(or 'auto'); got {v!r}.")
        elif isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real) \
                or not np.isfinite(v) or v <= 0:
            raise ValueError(f"{name} candidates must be finite numbers > 0 "
                             f"(or 'auto'); got {v!r}.")
    mode = "list" if isinstance(value, (list, tuple, np.ndarray)) else "fixed"
    return mode, values


# ----------------------------------------------------------------- scoring

class ClassifierScores:
    """Cross-validated accuracy of SVCs on sub-blocks of one Gram matrix."""

    name = "C"

    def __init__(self, y, cv, C, class_weight):
        self.y = np.asarray(y)
        self.mode, self.values = _check_grid(C, "C")
        self.class_weight = class_weight
        splitter = check_cv(cv, self.y, classifier=True)
        if isinstance(cv, numbers.Integral):
            largest = int(np.unique(self.y, return_counts=True)[1].max())
            n_splits = min(int(cv), largest)
            if n_splits < 2:
                raise ValueError(f"The model selection needs at least 2 paths of "
                                 f"some class for cv={cv} folds.")
            if n_splits < cv:
                warnings.warn(
                    f"cv={cv} folds, but the largest class has {largest} paths: "
                    f"the model selection uses {n_splits} stratified folds.",
                    SelectionWarning, stacklevel=caller_stacklevel())
            splitter = StratifiedKFold(n_splits, shuffle=True, random_state=0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.folds = list(splitter.split(np.zeros(len(self.y)), self.y))
        classes = np.unique(self.y)
        for k, (train, _) in enumerate(self.folds):
            present = np.unique(self.y[train])
            if len(present) < 2:
                raise ValueError(
                    f"The training part of cross-validation fold {k} holds only "
                    f"class {present[0]!r}: use fewer folds (cv) or more paths "
                    "per class.")
            missing = np.setdiff1d(classes, present)
            if missing.size:
                warnings.warn(
                    f"Class(es) {missing.tolist()} are missing from the training "
                    f"part of cross-validation fold {k} (too few paths for "
                    f"{len(self.folds)} folds): that fold cannot predict them and "
                    "scores them as errors.  Use fewer folds (cv) or more paths "
                    "per class.", SelectionWarning,
                    stacklevel=caller_stacklevel())
                break
        del caught  # replaced by the clearer warning above
        counts = np.unique(self.y, return_counts=True)[1]
        self.chance = counts.max() / counts.sum()

    def grid(self):
        return list(_C_GRID) if self.mode == "auto" else list(self.values)

    def fold_scores(self, K, C):
        out = []
        # the blocks are checked once here; the many small fits skip it
        with config_context(assume_finite=True, skip_parameter_validation=True):
            for train, test in self.folds:
                svc = SVC(kernel="precomputed", C=C, class_weight=self.class_weight)
                svc.fit(K[np.ix_(train, train)], self.y[train])
                out.append(np.mean(svc.predict(K[np.ix_(test, train)])
                                   == self.y[test]))
        return np.array(out)

    def __call__(self, K):
        return _scan(self, K, _C_BOUNDS)


class RegressorScores:
    """Kernel ridge scores (negative mean squared error) for every ``alpha``
    from one eigendecomposition per fold; exact leave-one-out for ``cv=None``."""

    name = "alpha"

    def __init__(self, y, cv, alpha):
        self.y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        self.mode, self.values = _check_grid(alpha, "alpha")
        if self.mode != "auto" and any(v == 0 for v in self.values):
            raise ValueError("alpha candidates must be > 0 for the selection.")
        self.cv = cv
        if cv is not None:
            splitter = check_cv(cv)
            if isinstance(cv, numbers.Integral):
                splitter = KFold(int(cv), shuffle=True, random_state=0)
            self.folds = list(splitter.split(self.y))
        self.chance = -float(np.mean((self.y - self.y.mean(0)) ** 2))
        self._eig = None

    def grid(self):
        return list(_ALPHA_GRID) if self.mode == "auto" else list(self.values)

    def fold_scores(self, K, alpha):
        if self.cv is None:
            w, V = self._eig
            Vy = V.T @ self.y
            fitted = V @ (Vy * (w / (w + alpha))[:, None])
            hat = np.einsum("ij,j,ij->i", V, w / (w + alpha), V)
            loo = (self.y - fitted) / (1.0 - hat)[:, None]
            return -np.mean(loo ** 2, axis=1)
        out = []
        for (train, test), (w, V) in zip(self.folds, self._eig):
            coef = V @ ((V.T @ self.y[train]) / (w + alpha)[:, None])
            pred = K[np.ix_(test, train)] @ coef
            out.append(-np.mean((self.y[test] - pred) ** 2))
        return np.array(out)

    def __call__(self, K):
        if self.cv is None:
            self._eig = np.linalg.eigh(K)
        else:
            self._eig = [np.linalg.eigh(K[np.ix_(tr, tr)]) for tr, _ in self.folds]
        try:
            return _scan(self, K, _ALPHA_BOUNDS)
        finally:
            self._eig = None


def _scan(scorer, K, bounds):
    """Scores of every regularisation value (the grid extended by factors of
    10 while its best is strictly at an edge); returns the rows, sorted, and
    the chosen value: the middle of the best plateau."""
    rows = {v: scorer.fold_scores(K, v) for v in scorer.grid()}
    while scorer.mode == "auto":
        keys = sorted(rows)
        means = [rows[k].mean() for k in keys]
        best = int(np.argmax(means))
        if best == 0 and means[0] > means[1] + _TIE and keys[0] / 10 >= bounds[0]:
            rows[keys[0] / 10] = scorer.fold_scores(K, keys[0] / 10)
        elif best == len(keys) - 1 and means[-1] > means[-2] + _TIE \
                and keys[-1] * 10 <= bounds[1]:
            rows[keys[-1] * 10] = scorer.fold_scores(K, keys[-1] * 10)
        else:
            break
    keys = sorted(rows)
    means = np.array([rows[k].mean() for k in keys])
    tied = np.flatnonzero(means >= means.max() - _TIE)
    chosen = keys[tied[len(tied) // 2]]
    return [(k, rows[k]) for k in keys], chosen, float(means.max())


# ------------------------------------------------------------------ search

class PathSearch:
    """The staged search of one estimator's fit.

    Parameters
    ----------
    estimator : the path estimator (its parameters say what to search)
    paths : Sequences, standardised (``path_scale`` 1)
    scorer : ClassifierScores or RegressorScores
    """

    def __init__(self, estimator, paths, scorer):
        self.est = estimator
        self.paths = paths
        self.scorer = scorer
        budget = estimator.time_budget
        self.budget = None if budget is None else float(budget)
        self.start = time.perf_counter()
        self.spent = 0.0       # predicted seconds of the costly settings so far
        self.deadline = self.budget
        self.rows = []
        self.best = None       # (score, key, gram, setting)
        self.family_best = {}
        self.family_error = {}   # standard error of each family's best score
        self.skipped = []
        self.verbose = int(getattr(estimator, "verbose", 0) or 0)
        self._ready = {}       # key -> (Gram, seconds) computed ahead of scoring

    # ---- bookkeeping
    def elapsed(self):
        """Seconds spent by the cost model (not the wall clock)."""
        return self.spent

    def fits(self, seconds):
        return self.deadline is None or self.elapsed() + seconds <= self.deadline

    def say(self, message):
        if self.verbose:
            print(f"[{type(self.est).__name__}] "
                  f"{time.perf_counter() - self.start:7.1f}s {message}",
                  flush=True)

    def evaluate(self, setting, stage):
        """Score one kernel setting (dict); returns its best score."""
        key = _key(setting)
        for row in self.rows:
            if row["key"] == key:
                return row["score"]
        if key in self._ready:
            K, gram_time = self._ready.pop(key)
        else:
            started = time.perf_counter()
            K = self.gram(setting)
            gram_time = time.perf_counter() - started
        rows, chosen, score = self.scorer(K)
        for value, folds in rows:
            params = _public(setting)
            params[self.scorer.name] = value
            self.rows.append({"key": key, "params": params, "mean": folds.mean(),
                              "std": folds.std(), "stage": stage,
                              "gram_time": gram_time, "score": score})
        self.say(f"{stage:<11} score {score:.4f} ({self.scorer.name}={chosen:g}, "
                 f"Gram {gram_time:.2f}s) {_public(setting)}")
        record = (score, key, K, setting, chosen)
        family = setting["kernel"]
        if family not in self.family_best or score > self.family_best[family][0] + _TIE:
            self.family_best[family] = record
            self.family_error[family] = _standard_error(dict(rows)[chosen])
        if self.best is None or score > self.best[0] + _TIE:
            self.best = record
        return score

    def scaled(self, ps, n_points=None):
        seqs = shorten(self.paths, n_points)
        return Sequences(seqs.values * ps, seqs.lengths)

    def gram(self, setting):
        kernel = self.kernel(setting)
        ps = setting.get("path_scale", 1.0)
        K = np.asarray(kernel(self.scaled(ps)), dtype=np.float64)
        if not np.all(np.isfinite(K)):
            raise FloatingPointError(
                f"The kernel of setting {_public(setting)} produced non-finite "
                "values; fix path_scale or scale to smaller values.")
        return K

    def kernel(self, setting):
        """The kernel object of a setting (on paths scaled by its path_scale)."""
        family = setting["kernel"]
        if family == "rbf":
            return SeriesRBFKernel(setting["length_scale"], setting["length"])
        if family == "given":
            return clone(self.est.kernel)
        if family == "conv" and "n_components" in setting:
            return ConvRandomFeatureKernel(
                setting["n_components"], setting["bias_variance"],
                setting.get("differences", False), setting["length"],
                random_state=CONV_RF_SEED)
        if family == "conv":
            from ..kernels import ConvNNGP
            # "same" padding: paths of any length, shorter than a filter too
            conv = ConvNNGP(readout="ppv", padding="same",
                            bias_variance=setting["bias_variance"])
            if setting.get("differences", False):
                conv = Sum(conv, DifferencedKernel(clone(conv)))
            if setting["max_length"] is None:
                return conv
            return ShortenedKernel(conv, setting["max_length"])
        if family == "signature+rbf":
            sig, rbf = setting["parts"]
            ps = sig["path_scale"]
            rbf = dict(rbf, length_scale=rbf["length_scale"] * ps)
            return Sum(self.kernel(sig), self.kernel(rbf))
        est = self.est
        sig = SignatureKernel(
            static_kernel=est.static_kernel, dyadic_order=setting["dyadic_order"],
            time_augment=setting["time_augment"], basepoint=setting["basepoint"],
            lead_lag=setting["lead_lag"], scale=est.scale,
            length_scale=setting.get("length_scale", 1.0), normalize=est.normalize,
            device=est.device)
        if setting["max_length"] is None or setting["max_length"] >= self.paths.max_length:
            return sig
        return ShortenedKernel(sig, setting["max_length"])

    def cells(self, setting):
        """Work of the Gram of a setting (signature: PDE cells; convolutional:
        pairs of windows times dilations), in units of its family's rate."""
        length = min(self.paths.max_length, setting["max_length"] or np.inf)
        n = self.paths.n_paths
        if "n_components" in setting:
            return self._rf_work(setting)
        if setting["kernel"] == "conv":
            parts = 2.0 if setting.get("differences", False) else 1.0
            return parts * (0.5 * n * n + n) * length ** 2 * max(np.log2(length), 1.0)
        if setting["lead_lag"]:
            length = 2 * length - 1
        length += bool(setting["basepoint"])
        return (0.5 * n * n + n) * (length - 1) ** 2 * 4.0 ** setting["dyadic_order"]

    def _rf_work(self, setting, n_bias=1):
        """Multiply-adds of the random-feature route for ``n_bias`` bias
        variances in one pass: the filters over every position and dilation
        of each map, one comparison per bias there (measured at about 0.6
        multiply-adds), and the Gram of the features of each bias (at a
        quarter of the weight: BLAS runs it faster than the features)."""
        length = setting["length"] or self.paths.max_length
        n, c = self.paths.n_paths, self.paths.n_channels
        dilations = max(np.floor(np.log2(max(length - 1, 1) / 8.0)) + 1, 1)
        parts = 2.0 if setting.get("differences", False) else 1.0
        features = parts * setting["n_components"] * dilations
        return (n * length * (9 * c + 0.6 * n_bias) * features
                + 0.25 * n * n * features * n_bias)

    def seconds(self, setting, n_bias=1):
        """Predicted seconds of a setting's Gram under the fixed cost model
        (of ``n_bias`` Grams in one pass, for the random-feature route)."""
        if "n_components" in setting:
            return self._rf_work(setting, n_bias) / _CELLS_PER_SECOND["conv_rf"]
        return self.cells(setting) / _CELLS_PER_SECOND[setting["kernel"]]

    def signature_evaluate(self, setting, stage, required=False):
        """Evaluate a signature setting when its predicted time fits."""
        if any(r["key"] == _key(setting) for r in self.rows):
            return True
        seconds = self.seconds(setting)
        if not required and not self.fits(seconds):
            self.skipped.append(f"{stage} {_public(setting)} (about {seconds:.0f}s)")
            self.say(f"skip {stage}: predicted {seconds:.1f}s exceeds the budget")
            return False
        self.evaluate(setting, stage)
        self.spent += seconds
        return True

    # ---- stages
    def run(self, families):
        costly = [f for f in families if f in _COSTLY]
        for family in families:
            if family in _COSTLY and self.budget is not None:
                # each costly family may use its share of what is left
                share = (self.budget - self.elapsed()) / len(costly)
                self.deadline = self.elapsed() + max(share, 0.0)
                costly.remove(family)
            getattr(self, "_" + family.replace("+", "_"))()
        if self.best is None:
            raise ValueError("The model selection evaluated no setting.")
        self._prefer()
        self._report()
        return self

    def _prefer(self):
        """One-standard-error rule between families: the first family of
        :data:`FAMILY_PRIOR` whose best score is within one standard error of
        the best score of all.  The best of many settings is an optimistic
        estimate on few training paths; a family that is as good within the
        noise of the folds and is the stronger one a priori is the safer
        choice."""
        top = max(self.family_best, key=lambda f: self.family_best[f][0])
        floor = self.family_best[top][0] - self.family_error[top]
        for family in FAMILY_PRIOR:
            if family in self.family_best and \
                    self.family_best[family][0] >= floor - _TIE:
                if family != top:
                    self.say(f"prefer {family} (score {self.family_best[family][0]:.4f}) "
                             f"within one standard error of {top}'s "
                             f"{self.family_best[top][0]:.4f}")
                self.best = self.family_best[family]
                return

    def _given(self):
        for ps in self._path_scales_fixed(1.0):
            self.evaluate({"kernel": "given", "path_scale": ps}, "given")
        if self.est.path_scale == "auto":
            self._climb_1d(lambda i: {"kernel": "given", "path_scale": self._ps0 *
                                      _PATH_SCALE_STEP ** i}, "given")

    def _path_scales_fixed(self, default):
        mode, values = _check_grid(self.est.path_scale, "path_scale")
        if mode == "auto":
            self._ps0 = self.path_scale_heuristic(COARSE_LENGTH, True)
            return [self._ps0]
        return values

    def _climb_1d(self, make, stage, budgeted=False):
        scores = {}
        # the heuristic start first: ties go to the setting evaluated first
        for i in (0, -1, 1):
            scores[i] = self._eval(make(i), stage, budgeted)
        while True:
            valid = {k: v for k, v in scores.items() if v is not None}
            best = max(valid, key=lambda k: (valid[k], -abs(k)))
            new = [j for j in (best - 1, best + 1) if j not in scores
                   and abs(j) <= _MAX_STEPS]
            if not new:
                return best
            for j in new:
                scores[j] = self._eval(make(j), stage, budgeted)

    def _eval(self, setting, stage, budgeted):
        if budgeted:
            return (self.evaluate(setting, stage)
                    if self.signature_evaluate(setting, stage) else None)
        return self.evaluate(setting, stage)

    def _conv(self):
        """The convolutional (ROCKET-limit) kernel: bias variance on a lattice
        on shortened paths, then longer paths while the budget allows; or,
        where the exact kernel's search at full length would not fit the
        family's share of the budget, every stage through random features
        at full length."""
        route = self._conv_route()
        if route is not None:
            self._conv_features(route)
            return
        full = self.paths.max_length
        coarse = min(full, CONV_COARSE_LENGTH)
        base = {"kernel": "conv", "max_length": None if coarse >= full else coarse,
                "differences": CONV_DIFFERENCES}
        first = [True]

        def make(i, setting=base):
            return dict(setting, bias_variance=_BIAS_STEP ** i)

        def run(setting, stage):
            required, first[0] = first[0], False
            if not self.signature_evaluate(setting, stage, required=required):
                return None
            return self._score_of(setting)
        scores = {}
        for i in (0, -1, 1):
            scores[i] = run(make(i), "conv")
        while True:
            valid = {k: v for k, v in scores.items() if v is not None}
            best = max(valid, key=lambda k: (valid[k], -abs(k)))
            new = [j for j in (best - 1, best + 1) if j not in scores
                   and abs(j) <= _MAX_STEPS]
            if not new:
                break
            for j in new:
                scores[j] = run(make(j), "conv")
        best_setting, score = make(best), scores[best]
        length, short = coarse, False
        while length < full:
            length = min(2 * length, full)
            trial = dict(best_setting, max_length=None if length >= full else length)
            s = run(trial, "conv length")
            if s is None:
                short = True
                break
            if s > score + _TIE:
                best_setting, score = trial, s
        if short:
            # the exact kernel stopped short of the full length: the same
            # kernel at full length through random features, at the cost
            # of features linear in the number of paths
            trial = self._conv_random_features(best_setting)
            s = None if trial is None else run(trial, "conv features")
            if s is not None and s > score + _TIE:
                best_setting, score = trial, s
        for f in (_BIAS_STEP ** -0.5, _BIAS_STEP ** 0.5):
            run(dict(best_setting, bias_variance=best_setting["bias_variance"] * f),
                "conv refine")

    def _conv_route(self):
        """The random-feature setting that the family is searched with at
        every stage, or None for the exact kernel.  The exact search costs
        about :data:`CONV_EXACT_GRAMS` of its Grams at full length (the
        lengths doubling up to it, the refinement there); where those do not
        fit the family's share and one pass of the features over the whole
        bias lattice does, the features are the search."""
        if self.deadline is None:
            return None
        exact = {"kernel": "conv", "max_length": None,
                 "differences": CONV_DIFFERENCES, "bias_variance": 1.0}
        if self.fits(CONV_EXACT_GRAMS * self.seconds(exact)):
            return None
        return self._conv_random_features(exact, len(_conv_lattice()),
                                          report=False)

    def _conv_features(self, base):
        """The bias-variance lattice and its refinement through the random
        features at full length; the Grams of the whole lattice come from
        one pass (``ConvRandomFeatureKernel.grams_by_bias``), charged to the
        budget once."""
        biases = _conv_lattice()
        kernel = self.kernel(base)
        started = time.perf_counter()
        grams = kernel.grams_by_bias(self.scaled(1.0), biases)
        each = (time.perf_counter() - started) / len(biases)
        self.spent += self.seconds(base, len(biases))
        self.say(f"conv features: {len(biases)} bias variances in one pass, "
                 f"{each * len(biases):.2f}s")
        for b, K in zip(biases, grams):
            self._ready[_key(dict(base, bias_variance=b))] = (K, each)
        del grams

        def make(i):
            return dict(base, bias_variance=_BIAS_STEP ** i)
        best = self._climb_1d(make, "conv features")
        for f in (-0.5, 0.5):
            self.evaluate(make(best + f), "conv refine")
        self._ready.clear()

    def _conv_random_features(self, setting, n_bias=1, report=True):
        """The random-feature setting at full length with the most filters
        of :data:`CONV_RF_COMPONENTS` whose ``n_bias`` Grams (one pass) fit
        the budget; None if none does (a skipped setting, with
        ``report``)."""
        seqs = self.paths
        base = dict(setting, max_length=None,
                    length=None if seqs.equal_lengths else seqs.max_length)
        for m in sorted(CONV_RF_COMPONENTS, reverse=True):
            trial = dict(base, n_components=m)
            if self.fits(self.seconds(trial, n_bias)):
                return trial
        if report:
            trial = dict(base, n_components=min(CONV_RF_COMPONENTS))
            seconds = self.seconds(trial, n_bias)
            self.skipped.append(f"conv features {_public(trial)} (about "
                                f"{seconds:.0f}s)")
            self.say(f"skip conv features: predicted {seconds:.1f}s exceeds "
                     "the budget")
        return None

    def _rbf(self):
        seqs = self.paths
        length = None if seqs.equal_lengths else int(np.median(seqs.lengths))
        flat = _common_length(seqs, length or seqs.max_length)
        sample = flat[:1000]
        base = np.sqrt(_median_nonzero(_sq_distances(sample, sample)))
        if base == 0.0:
            warnings.warn("All training paths are equal: every kernel setting "
                          "gives the same Gram matrix.", SelectionWarning,
                          stacklevel=caller_stacklevel())
            base = 1.0
        self._rbf_base = (base, length)

        def make(i, step=_LENGTH_SCALE_STEP):
            return {"kernel": "rbf", "length_scale": base * step ** i, "length": length}
        best = self._climb_1d(make, "rbf")
        # one finer step on each side of the best
        for half in (-0.5, 0.5):
            self.evaluate(make(best + half), "rbf refine")

    def _signature_options(self):
        """Candidate values of the options set to "auto" or lists."""
        est = self.est
        opts = {}
        for name in ("time_augment", "basepoint", "lead_lag"):
            mode, values = _check_grid(getattr(est, name), name,
                                       allowed=(True, False))
            opts[name] = (mode, values)
        opts["dyadic_order"] = _check_grid(est.dyadic_order, "dyadic_order",
                                           integer=True)
        mode, values = _check_grid(est.max_length, "max_length", integer=True) \
            if est.max_length is not None else ("fixed", [None])
        if mode != "auto" and any(v is not None and v < 2 for v in values):
            raise ValueError(f"max_length must be >= 2 (or None or 'auto'), got "
                             f"{est.max_length!r}.")
        opts["max_length"] = (mode, values)
        opts["path_scale"] = _check_grid(est.path_scale, "path_scale")
        opts["length_scale"] = _check_grid(est.length_scale, "length_scale")
        return opts

    def path_scale_heuristic(self, n_points, time_augment):
        """Path scale that makes the median increment of the values that of time."""
        if not time_augment:
            return 1.0
        seqs = shorten(self.paths, n_points)
        inc = np.linalg.norm(np.diff(seqs.values, axis=1), axis=2)
        step = np.repeat(1.0 / (seqs.lengths - 1), seqs.max_length - 1)
        mask = (np.arange(seqs.max_length - 1)[None, :] < (seqs.lengths - 1)[:, None])
        value = _median_nonzero(inc[mask])
        if value == 0.0:
            warnings.warn("Every training path is constant: the signature kernel "
                          "sees only the paths' levels.", SelectionWarning,
                          stacklevel=caller_stacklevel())
            return 1.0
        return float(np.median(step)) / value

    def length_scale_heuristic(self, setting):
        """Median distance between the (transformed, scaled) points of the paths."""
        seqs = self.scaled(setting["path_scale"], setting["max_length"])
        seqs = transform(seqs, setting["lead_lag"], setting["time_augment"],
                         setting["basepoint"])
        rng = np.random.default_rng(0)
        points = np.concatenate([seqs.path(i) for i in range(seqs.n_paths)])
        if len(points) > 1500:
            points = points[rng.choice(len(points), 1500, replace=False)]
        base = np.sqrt(_median_nonzero(_sq_distances(points, points)))
        return base if base > 0 else 1.0

    def _signature(self):
        opts = self._signature_options()
        first = {name: (values[0] if mode != "auto" else None)
                 for name, (mode, values) in opts.items()}
        # the heuristic starting point of the automatic options
        auto_default = {"time_augment": True, "basepoint": False, "lead_lag": False,
                        "dyadic_order": 0}
        setting = {"kernel": "signature"}
        for name, value in auto_default.items():
            setting[name] = value if opts[name][0] == "auto" else first[name]
        full = self.paths.max_length
        ml_mode, ml_values = opts["max_length"]
        coarse = min(full, COARSE_LENGTH) if ml_mode == "auto" else ml_values[0]
        setting["max_length"] = None if coarse is None or coarse >= full else coarse
        ps_mode, ps_values = opts["path_scale"]
        ls_mode, ls_values = opts["length_scale"]
        rbf_static = isinstance(self.est.static_kernel, str) and self.est.static_kernel == "rbf"

        def lattice(setting):
            """Climb the (path_scale, length_scale) lattice at this setting."""
            ps0 = self.path_scale_heuristic(setting["max_length"] or full,
                                            setting["time_augment"])
            ps_axis = (lambda i: ps0 * _PATH_SCALE_STEP ** i) if ps_mode == "auto" \
                else (lambda i: ps_values[i])
            ps_range = (0, -1, 1) if ps_mode == "auto" else range(len(ps_values))
            if not setting["time_augment"] and ps_mode == "auto":
                ps_range = (0,)   # no time channel: path_scale and width trade
            bases = {}

            def make(i, j):
                s = dict(setting, path_scale=ps_axis(i))
                if not rbf_static:
                    return s
                if ls_mode == "auto":
                    if i not in bases:
                        bases[i] = self.length_scale_heuristic(s)
                    s["length_scale"] = bases[i] * _LENGTH_SCALE_STEP ** j
                else:
                    s["length_scale"] = ls_values[j]
                return s
            ls_range = ((0, -1, 1) if ls_mode == "auto" else range(len(ls_values))) \
                if rbf_static else range(0, 1)
            scores = {}
            first = True
            for i in ps_range:
                for j in ls_range:
                    ok = self.signature_evaluate(make(i, j), "signature", required=first)
                    first = False
                    if ok:
                        scores[(i, j)] = self._score_of(make(i, j))
            while True:
                best = max(scores, key=lambda k: (scores[k], -abs(k[0]) - abs(k[1])))
                i, j = best
                new = []
                if ps_mode == "auto" and setting["time_augment"]:
                    new += [(i + d, j) for d in (-1, 1)]
                if ls_mode == "auto" and rbf_static:
                    new += [(i, j + d) for d in (-1, 1)]
                new = [k for k in new if k not in scores
                       and max(abs(k[0]), abs(k[1])) <= _MAX_STEPS]
                if not new:
                    break
                progress = False
                for k in new:
                    if self.signature_evaluate(make(*k), "signature"):
                        scores[k] = self._score_of(make(*k))
                        progress = True
                    else:
                        scores[k] = -np.inf
                if not progress:
                    break
            return make(*best), scores[best]

        best, score = lattice(setting)
        # path options, each tried alone at the best point
        for name in ("lead_lag", "basepoint", "time_augment"):
            mode, values = opts[name]
            candidates = [not best[name]] if mode == "auto" else \
                [v for v in values if v != best[name]]
            for value in candidates:
                trial = dict(best, **{name: value})
                if rbf_static and ls_mode == "auto":
                    ratio = best["length_scale"] / self.length_scale_heuristic(best)
                    trial["length_scale"] = self.length_scale_heuristic(trial) * ratio
                if self.signature_evaluate(trial, "options"):
                    s = self._score_of(trial)
                    if s > score + _TIE:
                        best, score = trial, s
        if any(best[name] != setting[name] for name in ("lead_lag", "basepoint",
                                                           "time_augment")):
            best, score = lattice(dict(best))
        # finer resolutions while they fit
        if ml_mode == "auto":
            length = COARSE_LENGTH
            while length < full:
                length = min(2 * length, full)
                trial = dict(best, max_length=None if length >= full else length)
                if not self.signature_evaluate(trial, "resolution"):
                    break
                s = self._score_of(trial)
                if s > score + _TIE:
                    best, score = trial, s
        elif ml_mode == "list":
            for value in ml_values[1:]:
                trial = dict(best, max_length=None if value is None or value >= full
                             else value)
                if self.signature_evaluate(trial, "resolution", required=True):
                    s = self._score_of(trial)
                    if s > score + _TIE:
                        best, score = trial, s
        # half steps around the best point
        refine = []
        if ps_mode == "auto" and best["time_augment"]:
            refine += [dict(best, path_scale=best["path_scale"] * f)
                       for f in (0.5, 2.0)]
        if ls_mode == "auto" and rbf_static:
            refine += [dict(best, length_scale=best["length_scale"] * f)
                       for f in (2 ** -0.5, 2 ** 0.5)]
        for trial in refine:
            if self.signature_evaluate(trial, "refine"):
                s = self._score_of(trial)
                if s > score + _TIE:
                    best, score = trial, s
        mode, values = opts["dyadic_order"]
        candidates = [1] if mode == "auto" else values[1:]
        for order in candidates:
            trial = dict(best, dyadic_order=order)
            if self.signature_evaluate(trial, "dyadic", required=mode != "auto"):
                s = self._score_of(trial)
                if s > score + _TIE:
                    best, score = trial, s

    def _score_of(self, setting):
        key = _key(setting)
        for row in self.rows:
            if row["key"] == key:
                return row["score"]
        raise KeyError(key)

    def _signature_rbf(self):
        if "signature" not in self.family_best or "rbf" not in self.family_best:
            return
        sig = self.family_best["signature"][3]
        rbf = self.family_best["rbf"][3]
        setting = {"kernel": "signature+rbf", "parts": (sig, rbf),
                   "path_scale": sig["path_scale"]}
        key = _key(setting)
        K = self.family_best["signature"][2] + self.family_best["rbf"][2]
        rows, chosen, score = self.scorer(K)
        for value, folds in rows:
            params = _public(setting)
            params[self.scorer.name] = value
            self.rows.append({"key": key, "params": params, "mean": folds.mean(),
                              "std": folds.std(), "stage": "sum", "gram_time": 0.0,
                              "score": score})
        self.say(f"sum         score {score:.4f} ({self.scorer.name}={chosen:g})")
        self.family_best["signature+rbf"] = (score, key, K, setting, chosen)
        self.family_error["signature+rbf"] = _standard_error(dict(rows)[chosen])
        if score > self.best[0] + _TIE:
            self.best = (score, key, K, setting, chosen)

    def _report(self):
        if self.skipped:
            warnings.warn(
                f"The model selection was shrunk to fit time_budget="
                f"{self.budget:g}s: it skipped {len(self.skipped)} kernel "
                f"setting(s), first {self.skipped[0]}.  Raise time_budget (or set "
                "it to None) for the full search.", SelectionWarning,
                stacklevel=caller_stacklevel())
        means = np.array([r["mean"] for r in self.rows])
        if means.max() <= self.scorer.chance + _TIE:
            warnings.warn(
                f"No setting of the model selection scored better than the "
                f"constant prediction ({self.scorer.chance:.4g}); every candidate "
                f"scored at most {means.max():.4g}, so the choice is arbitrary.  "
                "Check the data and the labels.", SelectionWarning,
                stacklevel=caller_stacklevel())

    # ---- results
    def results(self):
        params = [r["params"] for r in self.rows]
        means = np.array([r["mean"] for r in self.rows])
        order = np.argsort(-means, kind="stable")
        rank = np.empty(len(means), dtype=np.int32)
        rank[order] = np.arange(1, len(means) + 1)
        # tied scores share the lowest rank, as in GridSearchCV
        for i in range(1, len(order)):
            if means[order[i]] >= means[order[i - 1]] - _TIE:
                rank[order[i]] = rank[order[i - 1]]
        return {"params": params, "mean_test_score": means,
                "std_test_score": np.array([r["std"] for r in self.rows]),
                "rank_test_score": rank,
                "stage": np.array([r["stage"] for r in self.rows], dtype=object),
                "gram_time": np.array([r["gram_time"] for r in self.rows])}

    def chosen(self):
        """(best_params, best_score, kernel, path_scale, gram, regularisation)."""
        score, _, K, setting, value = self.best
        params = _public(setting)
        params[self.scorer.name] = value
        return params, score, self.kernel(setting), setting.get("path_scale", 1.0), \
            K, value


def _standard_error(folds):
    """Standard error of the mean of the fold scores (0 for one fold)."""
    folds = np.asarray(folds, dtype=np.float64)
    if folds.size < 2:
        return 0.0
    return float(folds.std(ddof=1) / np.sqrt(folds.size))


def _public(setting):
    """The setting as reported in ``best_params_`` and ``cv_results_``."""
    family = setting["kernel"]
    if family == "signature+rbf":
        sig, rbf = setting["parts"]
        out = {"kernel": family}
        out.update({k: v for k, v in _public(sig).items() if k != "kernel"})
        out["rbf_length_scale"] = float(rbf["length_scale"])
        return out
    out = {}
    for k, v in setting.items():
        if k in ("parts", "length"):
            continue
        out[k] = float(v) if isinstance(v, (float, np.floating)) else v
    return out


def _key(setting):
    def norm(v):
        if isinstance(v, dict):
            return tuple(sorted((k, norm(x)) for k, x in v.items()))
        if isinstance(v, tuple):
            return tuple(norm(x) for x in v)
        if isinstance(v, float):
            return round(v, 12)
        return v
    return norm(setting)
