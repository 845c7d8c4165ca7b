"""Machinery shared by the infinite-width estimators."""
import functools
import math
import os
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .._core.backend import on_host
from .._core.collections import is_dask
from .._core.config import CarriesConfig, get_config
from .._core.docstrings import SAMPLE_WEIGHT, fit_doc
from ..linalg.inducing import InducingPoints
from ..linalg.iterative import (FLOAT32_MIN_TOL, default_rank,
                                iterative_ridge, stored_bytes)
from ..linalg.nystroem import nystroem_ridge, tile_rows
from .._core.backend import DEVICES
from .._core.validation import (Interval, Options, ValidatesParameters,
                                check_choice, check_positive_int, check_variance)
from ..kernels.registry import NETWORK_PARAMS, RegisteredArchitecture, network_kernel

SOLVERS = ("auto", "cholesky", "cg", "nystroem")
INDUCING = ("uniform", "kmeans", "leverage")
#: solver="auto" uses the exact Cholesky solve up to this many samples
AUTO_MAX_EXACT = 20000
#: solver="auto" uses the exact iterative solve up to this many samples: a
#: depth-3 kernel then takes about 20 passes of 1e9 pairs, some 15 minutes
#: on two cores; beyond, Nyström.
AUTO_MAX_ITERATIVE = 50000
#: solver="auto" takes the iterative solve only when alpha is at least this
#: fraction of the mean diagonal of the kernel: conjugate gradients need
#: about sqrt(1 + e / alpha) iterations, e the error of the preconditioner.
AUTO_MIN_RIDGE = 1e-4

#: Allowed values of the parameters the estimators share (see the glossary
#: of the user guide); each estimator's ``_parameter_constraints`` merges
#: the tables it takes.
POSITIVE = Interval(Real, 0, None, closed="neither")
NON_NEGATIVE = Interval(Real, 0, None, closed="left")
NETWORK_CONSTRAINTS = {
    "depth": [Interval(Integral, 1, None, closed="left"), Options(math.inf)],
    "activation": [str, "callable"],
    "architecture": [RegisteredArchitecture()],
    "weight_variance": [POSITIVE],
    "bias_variance": [NON_NEGATIVE],
}
SOLVER_CONSTRAINTS = {
    "solver": [Options(*SOLVERS)],
    "n_inducing": [Interval(Integral, 1, None, closed="left"), None],
    "inducing": [Options(*INDUCING)],
    "random_state": ["random_state"],
    "tol": [POSITIVE],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
}
DEVICE_CONSTRAINTS = {"device": [Options(*DEVICES)], "verbose": ["verbose"]}

DEVICE_DOC = """    device : {"auto", "cpu", "gpu"}, default="auto"
        Where Gram matrices are computed and the systems solved (see
        :ref:`guide_gpu`); "auto" follows ``skinfinite.config_context``,
        which by default uses a GPU when CuPy sees one. Predictions are NumPy
        arrays either way.
    verbose : int, default=0
        0 is silent; 1 reports progress over the tiles of large Gram
        matrices, 2 over every Gram: a progress bar when stderr is a
        terminal, plain lines otherwise.
"""

SOLVER_DOC = """    solver : {"auto", "cholesky", "cg", "nystroem"}, default="auto"
        "cholesky" solves the exact n x n system; "cg" solves the same
        system by conjugate gradients preconditioned on ``n_inducing``
        inducing points (needs ``alpha > 0``): it keeps K (its tiles on
        and above the diagonal, about ``4 n^2`` bytes) when they fit in
        ``gram_memory``, or in float32 (``2 n^2`` bytes) when ``tol >=
        1e-4``, so that K is computed once and an iteration only reads
        it; else it recomputes K in tiles at every iteration (O(n^2)
        kernel evaluations per iteration, memory O(n M), never n x n).
        "nystroem" solves the Nyström system on
        ``n_inducing`` inducing points by preconditioned conjugate gradients
        in O(n M) time per pass and O(n M) memory at most (see
        :ref:`guide_large_data`). "auto" takes "cholesky" when
        ``n_samples <= 20000`` and two n x n float64 matrices fit in
        ``gram_memory`` (:func:`skinfinite.config_context`; half of the
        physical memory by default), else "cg" up to 50000 samples (or
        beyond while it keeps K) when ``alpha`` is at least 1e-4 of the
        kernel's mean diagonal, else "nystroem" (see
        :ref:`guide_large_data`).
    n_inducing : int or None, default=None
        Number of inducing points M for "nystroem"; None means
        ``min(n_samples, max(1000, 2 * sqrt(n_samples)))``.  For "cg" the
        rank of the preconditioner; None means
        ``min(n_samples, max(500, min(2000, 10 * sqrt(n_samples))))``. A
        value larger than ``n_samples`` is an error.
    inducing : {"uniform", "kmeans", "leverage"}, default="uniform"
        How the inducing points are chosen, see
        :class:`~skinfinite.empirical.random_features.InducingPoints`.
    random_state : int, RandomState instance or None, default=None
        Seed of the inducing-point selection.
    tol : float, default=1e-6
        Relative preconditioned residual at which conjugate gradients stop.
    max_iter : int, default=100
        Conjugate-gradient iterations at most; if ``tol`` is not reached a
        ``ConvergenceWarning`` is raised and the best iterate kept.
"""

SOLVER_ATTRIBUTES_DOC = """    kernel_ : Kernel
        The network's kernel (for example :class:`~skinfinite.kernels.NTK`
        or :class:`~skinfinite.kernels.ResNetNNGP`, as ``architecture``
        says) with this estimator's depth, activation and variances, on
        ``device_``; every Gram of the fit and of the predictions is its.
    solver_ : {"cholesky", "cg", "nystroem"}
        The solver used.
    device_ : {"cpu", "gpu"}
        Where the model was fitted (and predicts). For Dask inputs, the
        client's choice for what it computes itself: each worker resolves
        ``device`` for the blocks it computes.
    inducing_points_ : ndarray of shape (n_inducing, n_features)
        Only with the Nyström and "cg" solvers (for "cg", the points of the
        preconditioner).
    n_iter_ : int
        Conjugate-gradient iterations of the Nyström or "cg" solver (for
        "cg" each is one pass over K: kernel evaluations, or reading the
        kept K); 1 (one direct solve) for the Cholesky solver.
    gram_cached_ : {"float64", "float32"} or None
        With the "cg" solver, the precision in which K was kept (computed
        once), or None if it was recomputed at every iteration; None with
        the other solvers.
"""


def _physical_memory():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return float("inf")


def gram_memory():
    """Bytes the n x n matrices of a fit may take (``gram_memory``; "auto"
    is half of the physical memory)."""
    memory = get_config()["gram_memory"]
    return 0.5 * _physical_memory() if memory == "auto" else memory


def kept_gram_dtype(n, tol):
    """Precision in which solver="cg" keeps K of n rows, or None (K is
    recomputed at every iteration): float64 if its tiles fit in
    ``gram_memory``, else float32 if they fit so and ``tol`` allows."""
    memory = gram_memory()
    if stored_bytes(n) <= memory:
        return np.float64
    if tol >= FLOAT32_MIN_TOL and stored_bytes(n, dtype=np.float32) <= memory:
        return np.float32
    return None


class _BlockKernel:
    """One output of an estimator's kernel as a ``kernel(A, B)`` callable.

    Host arrays in and out; the blocks are computed on ``backend``, or
    where ``backend`` is None on the kernel's ``device`` as resolved in
    the process that calls it.
    """

    def __init__(self, kernel, kind, backend):
        self.kernel, self.kind, self.backend = kernel, kind, backend

    def __call__(self, A, B=None):
        return self.kernel.grams(A, None if B is A else B, (self.kind,),
                                 backend=self.backend,
                                 on_device=False)[self.kind]

    def diag(self, A):
        return self.kernel.diagonals(A, (self.kind,))[self.kind]


class _NetworkParamsMixin(CarriesConfig):
    """Network description shared by every estimator on network kernels.

    ``_kernel_name`` ("nngp" or "ntk") is the output the estimator fits.
    """

    _kernel_name = None

    def _network_kernel(self, output=None, **network):
        """The validated kernel of this estimator's network (``network``
        overrides its depth, activation or variances)."""
        params = {name: network[name] if name in network
                  else getattr(self, name) for name in NETWORK_PARAMS}
        kernel = network_kernel(
            self.architecture, output or self._kernel_name,
            parametrization=getattr(self, "parametrization", "ntk"),
            **params)
        kernel.check_params()
        return kernel

    def _resolve_device(self, X):
        """Resolve ``device`` for the data ``X``, once per fit: sets
        ``device_`` and the backend that every later block uses, and gives
        ``kernel_`` that device."""
        backend = self.kernel_.backend_for(getattr(self, "device", "cpu"), X)
        self.device_ = backend.name
        self._fit_backend = backend
        if "device" in self.kernel_.get_params(deep=False):
            self.kernel_.set_params(device=backend.name)
        return backend

    def _block_kernel(self, kind):
        """``kernel_``'s output ``kind`` as the ``kernel(A, B)`` of the
        solvers.  The blocks of a Dask fit are computed on the workers, so
        there each worker resolves the estimator's own ``device`` (a worker
        with a GPU computes its blocks on it), not the client's choice."""
        if not getattr(self, "_distributed", False):
            return _BlockKernel(self.kernel_, kind, self._fit_backend)
        kernel = clone(self.kernel_)
        if "device" in kernel.get_params(deep=False):
            kernel.set_params(device=getattr(self, "device", "auto"))
        return _BlockKernel(kernel, kind, None)

    def _grams(self, X, Y, want):
        """Gram blocks of host inputs, on the fitted device (left there)."""
        return self.kernel_.grams(X, Y, want, backend=self._fit_backend)

    def _diag(self, X, want):
        return self.kernel_.diagonals(X, (want,))[want]


def check_sample_weight(sample_weight, n_samples):
    """Validated non-negative weights of shape (n_samples,), or None."""
    if sample_weight is None:
        return None
    w = np.asarray(on_host(sample_weight), dtype=np.float64)
    if w.ndim == 0:
        w = np.full(n_samples, float(w))
    if w.shape != (n_samples,):
        raise ValueError(f"sample_weight.shape == {w.shape}, expected "
                         f"({n_samples},): one weight per sample.")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("sample_weight must be finite and non-negative.")
    if not np.any(w > 0):
        raise ValueError("Sample weights must contain at least one non-zero "
                         "number.")
    return w


def weighted_gram(K, sqrt_weight, backend):
    """``D K D`` with ``D = diag(sqrt_weight)``: weighted ridge
    ``(K + alpha W^-1) c = y`` is ``c = D (D K D + alpha I)^-1 D y``, which
    stays well conditioned where weights are small."""
    if sqrt_weight is None:
        return K
    d = backend.asarray(sqrt_weight, np.float64)
    return K * d[:, None] * d[None, :]


def scale_rows(B, sqrt_weight, backend):
    if sqrt_weight is None:
        return B
    return backend.asarray(sqrt_weight, np.float64)[:, None] * B


def keeps_float32(predict):
    """Return float32 outputs for float32 input, as KernelRidge does; the
    computation itself stays in float64."""
    @functools.wraps(predict)
    def run(self, X, *args, **kwargs):
        out = predict(self, X, *args, **kwargs)
        if getattr(X, "dtype", None) != np.float32:
            return out
        if isinstance(out, tuple):
            return tuple(np.asarray(o, dtype=np.float32) for o in out)
        return np.asarray(out, dtype=np.float32)
    return run


class _KernelRegressorBase(ValidatesParameters, _NetworkParamsMixin,
                           BaseEstimator):
    """Validation, target normalisation and prediction plumbing."""

    def _validate_fit(self, X, y, sample_weight=None):
        self._distributed = is_dask(X) or is_dask(y)
        if self._distributed:   # the rows stay on the cluster
            from ..distributed.estimators import validate_fit
            return validate_fit(self, X, y, sample_weight)
        X, y = on_host(X), on_host(y)   # device arrays are validated here
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True,
                             ensure_min_samples=2, dtype=np.float64)
        self.kernel_ = self._network_kernel()
        y = np.asarray(y, dtype=np.float64)
        self._y_1d = y.ndim == 1
        y2 = y.reshape(len(y), -1)
        w = check_sample_weight(sample_weight, X.shape[0])
        self._sqrt_weight = None
        if w is not None:
            # a zero weight removes the sample (infinite noise)
            keep = w > 0
            X, y2, w = X[keep], y2[keep], w[keep]
            self._sqrt_weight = np.sqrt(w)
        if self.normalize_y:
            # weighted moments, so that integer weights repeat samples
            self._y_mean = np.average(y2, axis=0, weights=w)
            self._y_scale = np.sqrt(np.average((y2 - self._y_mean) ** 2,
                                               axis=0, weights=w))
            self._y_scale[self._y_scale == 0] = 1.0
        else:
            self._y_mean = np.zeros(y2.shape[1])
            self._y_scale = np.ones(y2.shape[1])
        self.X_train_ = X
        return X, (y2 - self._y_mean) / self._y_scale

    def _resolve_solver(self, n, nystroem_ok=True, X=None, kind="nngp"):
        """The solver to use for n samples ("auto" resolved).

        ``nystroem_ok=False`` (a model that needs the eigendecomposition)
        leaves "cholesky" only; ``X`` gives the kernel's diagonal that
        decides whether ``alpha`` is large enough for "cg".
        """
        solver = self.solver
        if getattr(self, "_distributed", False):
            from ..distributed.estimators import resolve_solver
            solver = resolve_solver(solver)
        if solver == "auto":
            memory = gram_memory()
            if not nystroem_ok or (n <= AUTO_MAX_EXACT
                                   and 16.0 * n * n <= memory):
                solver = "cholesky"
            elif (n <= AUTO_MAX_ITERATIVE
                  or kept_gram_dtype(n, self.tol) is not None) \
                    and X is not None and self.alpha > 0 \
                    and self.alpha >= AUTO_MIN_RIDGE * float(
                        np.mean(self._diag(X, kind))):
                solver = "cg"
            else:
                solver = "nystroem"
        self.solver_ = solver
        self.n_iter_ = 1
        self.gram_cached_ = None
        return solver

    def _inducing_selection(self, X, kernel, default):
        """Inducing points of the "cg" preconditioner."""
        n = X.shape[0]
        if self.n_inducing is None:
            M = default
        else:
            M = check_positive_int(self.n_inducing, "n_inducing")
            if M > n:
                raise ValueError(f"n_inducing={M} is larger than the number "
                                 f"of samples ({n}); choose n_inducing <= "
                                 f"{n} or solver='cholesky'.")
        check_choice(self.inducing, "inducing", INDUCING)
        return InducingPoints(M, method=self.inducing, kernel=kernel,
                              random_state=self.random_state).fit(X)

    def _fit_cg(self, X, Y, kind):
        """Dual coefficients by the exact iterative solve (sets ``n_iter_``)."""
        tol = check_variance(self.tol, "tol")
        max_iter = check_positive_int(self.max_iter, "max_iter")
        if not self.alpha > 0:
            raise ValueError("solver='cg' needs alpha > 0: at alpha=0 the "
                             "system is singular or nearly so and conjugate "
                             "gradients do not converge. Set alpha (the "
                             "noise variance) or use solver='cholesky'.")
        kernel = self._block_kernel(kind)
        if getattr(self, "_distributed", False):
            from ..distributed.estimators import fit_cg
            M = (default_rank(X.shape[0]) if self.n_inducing is None
                 else check_positive_int(self.n_inducing, "n_inducing"))
            self.gram_cached_ = None
            return fit_cg(self, X, Y, kernel, M, tol, max_iter)
        selection = self._inducing_selection(X, kernel,
                                             default_rank(X.shape[0]))
        kept_dtype = kept_gram_dtype(X.shape[0], tol)
        # rows of X (not k-means centres): a kept K gives their columns
        rows = selection.indices_
        solution = iterative_ridge(
            kernel, X, Y, self.alpha, Z=None if rows is not None
            else selection.points_, inducing_rows=rows,
            sqrt_weight=self._sqrt_weight, tol=tol, max_iter=max_iter,
            cache=gram_memory(), cache_dtype=kept_dtype or np.float64)
        self.inducing_points_ = selection.points_
        self.n_iter_ = solution.n_iter
        self.gram_cached_ = (np.dtype(kept_dtype).name if solution.cached
                             else None)
        self.jitter_ = 0.0
        return solution.coef

    def _fit_nystroem(self, X, Y, kind):
        """Coefficients on the inducing points (sets the Nyström attributes)."""
        n = X.shape[0]
        if self.n_inducing is None:
            M = min(n, max(1000, int(2 * np.sqrt(n))))
        else:
            M = int(self.n_inducing)
            if M > n:
                raise ValueError(f"n_inducing={M} is larger than the number "
                                 f"of samples ({n}); choose n_inducing <= "
                                 f"{n} or solver='cholesky'.")
        if self._sqrt_weight is not None:
            raise ValueError("sample_weight needs solver='cholesky'; the "
                             "Nyström solver takes unweighted samples.")
        kernel = self._block_kernel(kind)
        if getattr(self, "_distributed", False):
            from ..distributed.estimators import fit_nystroem
            return fit_nystroem(self, X, Y, kernel, M, self.tol, self.max_iter)
        selection = InducingPoints(M, method=self.inducing, kernel=kernel,
                                   random_state=self.random_state).fit(X)
        solution = nystroem_ridge(kernel, X, selection.points_, Y, self.alpha,
                                  tol=float(self.tol),
                                  max_iter=int(self.max_iter))
        self.inducing_points_ = selection.points_
        self.n_iter_ = solution.n_iter
        self.jitter_ = solution.jitter
        return solution.coef

    def _predict_tiled(self, X, Z, coef, kind):
        """``k(X, Z) @ coef`` by row tiles of ``k(X, Z)``, as a host array."""
        if is_dask(Z):   # the training rows of a distributed "cg" fit
            from ..distributed.estimators import predict_rows
            return predict_rows(self._block_kernel(kind), X, Z, coef)
        step = tile_rows(Z.shape[0])
        coef = self._fit_backend.asarray(coef, np.float64)
        return np.concatenate([
            on_host(self._grams(X[i:i + step], Z, (kind,))[kind] @ coef)
            for i in range(0, X.shape[0], step)])

    def _predict_start(self, X, return_std, return_cov):
        """The validated ``X`` and, where no exact posterior spread is asked
        for here, the finished prediction (else None): the mean alone, by
        row tiles, or the mean and standard deviation of more rows than fit
        at once, by blocks of rows."""
        if return_std and return_cov:
            raise ValueError("At most one of return_std or return_cov can be "
                             "requested.")
        X = self._validate_predict(X)
        if return_std or return_cov:
            self._require_exact("return_std or return_cov")
        else:
            Z = (self.inducing_points_ if self.solver_ == "nystroem"
                 else self.X_train_)
            return X, self._output_mean(
                self._predict_tiled(X, Z, self.dual_coef_, self._kernel_name))
        if return_cov:
            check_covariance_size(X.shape[0])
        elif X.shape[0] > self._spread_rows():
            return X, self._predict_std_by_blocks(X)
        return X, None

    def _spread_rows(self):
        """Test rows per block of ``predict(return_std=True)``: about five
        arrays of (rows, n_train) floats fit in the memory budget."""
        return tile_rows(5 * self.X_train_.shape[0] / 2)

    def _predict_std_by_blocks(self, X):
        step = self._spread_rows()
        parts = [self.predict(X[i:i + step], return_std=True)
                 for i in range(0, X.shape[0], step)]
        return (np.concatenate([p[0] for p in parts]),
                np.concatenate([p[1] for p in parts]))

    def _require_exact(self, what):
        solver = getattr(self, "solver_", "cholesky")
        if solver != "cholesky":
            name = "Nyström" if solver == "nystroem" else f"{solver!r}"
            raise NotImplementedError(
                f"{what} needs solver='cholesky'; the {name} solver gives "
                "the predictive mean only.")

    def _validate_predict(self, X):
        check_is_fitted(self)
        return validate_data(self, on_host(X), reset=False, dtype=np.float64)

    def _output_mean(self, mean):
        mean = mean * self._y_scale + self._y_mean
        return mean.ravel() if self._y_1d else mean

    def _output_var(self, var):
        # var: (n,) variance of a unit-scale output; one column per target.
        var = np.clip(var, 0.0, None)[:, None] * self._y_scale ** 2
        return var[:, 0] if var.shape[1] == 1 else var

    def _output_cov(self, cov):
        cov = cov[:, :, None] * self._y_scale ** 2
        return cov[:, :, 0] if cov.shape[2] == 1 else cov

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


def check_covariance_size(n_rows, n_temporaries=3):
    """Refuse, before any work, a predictive covariance that cannot fit."""
    need = 8.0 * n_rows * n_rows * n_temporaries
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):   # not on every platform
        return
    if need > total:
        raise MemoryError(
            f"return_cov=True for {n_rows} rows needs {n_temporaries} "
            f"matrices of {n_rows} x {n_rows} floats ({need / 1e9:.1f} GB) "
            f"while it is computed, more than this machine's "
            f"{total / 1e9:.1f} GB of memory. Use return_std=True for the "
            "marginal spread, or predict fewer rows at a time.")


def encode_classes(estimator, y):
    """Set ``estimator.classes_`` from the labels ``y`` and return their codes.

    Raises a ValueError when ``y`` holds a single class.
    """
    encoder = LabelEncoder().fit(y)
    estimator.classes_ = encoder.classes_
    if len(estimator.classes_) < 2:
        raise ValueError("The classifier needs samples of at least 2 "
                         "classes in the data, but the data contain only "
                         f"one class: {estimator.classes_[0]!r}.")
    return encoder.transform(y)


def one_hot_targets(codes, n_classes):
    """The regression targets of the one-hot classifiers: centred one-hot
    rows (every row sums to zero)."""
    return np.eye(n_classes)[codes] - 1.0 / n_classes


class _OneHotKernelClassifier(ValidatesParameters, ClassifierMixin,
                              _NetworkParamsMixin, BaseEstimator):
    """Kernel regression on one-hot targets, wrapped as a classifier.

    Subclasses set ``_regressor`` and ``_regressor_params``.
    """

    _regressor = None
    _regressor_params = ()

    @fit_doc("Fit the kernel regression onto one-hot encoded classes.",
             extra=SAMPLE_WEIGHT + "    Weights of the squared loss (exact "
                                    "solver only).\n")
    def fit(self, X, y, sample_weight=None):
        distributed = is_dask(X) or is_dask(y)
        if distributed:   # the rows stay on the cluster, the labels come here
            from ..distributed.estimators import gather_labels
            X, y = gather_labels(X, y)
        else:
            X, y = on_host(X), on_host(y)
            X, y = validate_data(self, X, y, ensure_min_samples=2,
                                 dtype=np.float64)
        check_classification_targets(y)
        codes = encode_classes(self, y)
        Y = one_hot_targets(codes, len(self.classes_))
        params = {p: getattr(self, p) for p in self._regressor_params}
        params["verbose"] = self.verbose
        self.regressor_ = self._regressor(**params).fit(
            X, Y, sample_weight=sample_weight)
        if distributed:
            self.__dict__.pop("feature_names_in_", None)
            self.n_features_in_ = self.regressor_.n_features_in_
        self.kernel_ = self.regressor_.kernel_
        self.device_ = self.regressor_.device_
        self.solver_ = self.regressor_.solver_
        self.n_iter_ = self.regressor_.n_iter_
        self.gram_cached_ = getattr(self.regressor_, "gram_cached_", None)
        return self

    def _centred_scores(self, X):
        # Outputs for the centred targets: comparing them directly keeps the
        # ranking of outputs far smaller than 1 / n_classes (deep kernels
        # give such outputs), which adding the centre back would round away.
        check_is_fitted(self)
        X = validate_data(self, on_host(X), reset=False, dtype=np.float64)
        return self.regressor_.predict(X)

    def _scores(self, X):
        return self._centred_scores(X) + 1.0 / len(self.classes_)

    def decision_function(self, X):
        """Regression outputs for each class (estimates of class indicators).

        Returns
        -------
        scores : ndarray of shape (n_samples,) for two classes (positive
            favours ``classes_[1]``), else (n_samples, n_classes).
        """
        scores = self._centred_scores(X)
        if scores.shape[1] == 2:
            return scores[:, 1] - scores[:, 0]
        return scores + 1.0 / len(self.classes_)

    def predict(self, X):
        """Class with the largest regression output."""
        scores = self._centred_scores(X)
        return self.classes_[np.argmax(scores, axis=1)]

    def predict_proba(self, X):
        """Class probabilities ``softmax(f / temperature)``.

        ``f`` are the regression outputs onto one-hot targets; their
        differences rank the classes as ``decision_function`` does.  Tune
        ``temperature`` (e.g. by log-loss) for calibrated probabilities.
        """
        z = self._centred_scores(X) / self.temperature
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)
