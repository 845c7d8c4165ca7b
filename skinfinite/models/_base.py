"""Machinery shared by the infinite-width estimators."""
import functools
import os

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .._core.backend import CPUBackend, gpu_backend, on_host
from .._core.collections import is_dask
from .._core.config import CarriesConfig
from ..linalg.inducing import InducingPoints
from ..linalg.nystroem import nystroem_ridge, tile_rows
from .._core.validation import check_choice, check_positive_int, check_variance
from ..engine.driver import diagonal, gram, select_backend
from ..kernels.convolutional import EstimatorSpec, _ConvolutionalKernel
from ..kernels.fully_connected import make_spec
from ..kernels.resnet import make_residual_spec

ARCHITECTURES = ("fully_connected", "resnet", "convolutional")
SOLVERS = ("auto", "cholesky", "nystroem")
INDUCING = ("uniform", "kmeans", "leverage")
#: solver="auto" uses the exact Cholesky solve up to this many samples
AUTO_MAX_EXACT = 20000

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

SOLVER_DOC = """    solver : {"auto", "cholesky", "nystroem"}, default="auto"
        "cholesky" solves the exact n x n system; "nystroem" solves the
        Nyström system on ``n_inducing`` inducing points by preconditioned
        conjugate gradients (see :ref:`guide_large_data`) in O(n M) time per
        pass and O(n M) memory at most. "auto" takes "cholesky" when
        ``n_samples <= 20000`` and two n x n float64 matrices take at most
        half of the physical memory, else "nystroem".
    n_inducing : int or None, default=None
        Number of inducing points M for "nystroem"; None means
        ``min(n_samples, max(1000, 2 * sqrt(n_samples)))``. A value larger
        than ``n_samples`` is an error.
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

SOLVER_ATTRIBUTES_DOC = """    solver_ : {"cholesky", "nystroem"}
        The solver used.
    device_ : {"cpu", "gpu"}
        Where the model was fitted (and predicts).
    inducing_points_ : ndarray of shape (n_inducing, n_features)
        Only with the Nyström solver.
    n_iter_ : int
        Conjugate-gradient iterations of the Nyström solver; 1 (one direct
        solve) for the Cholesky solver.
"""


def _physical_memory():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return float("inf")


class _BlockKernel:
    """One output of an estimator's recursion as a ``kernel(A, B)`` callable.

    Host arrays in and out; the blocks are computed on ``backend``.
    """

    def __init__(self, spec, kind, backend=None):
        self.spec, self.kind = spec, kind
        self.backend = CPUBackend() if backend is None else backend

    def __call__(self, A, B=None):
        if isinstance(self.spec, EstimatorSpec):
            return self.spec.gram(A, None if B is A else B,
                                  (self.kind,))[self.kind]
        to = self.backend.asarray
        B = None if B is None or B is A else to(B, np.float64)
        return gram(to(A, np.float64), B, self.spec, (self.kind,),
                    backend=self.backend)[self.kind]

    def diag(self, A):
        if isinstance(self.spec, EstimatorSpec):
            return self.spec.diag(A, self.kind)
        return diagonal(A, self.spec, self.kind)


class _NetworkParamsMixin(CarriesConfig):
    """Network description shared by every estimator on fully-connected kernels."""

    def _spec(self):
        architecture = self.architecture
        parametrization = getattr(self, "parametrization", "ntk")
        if isinstance(architecture, _ConvolutionalKernel) or (
                architecture == "convolutional"):
            if parametrization != "ntk":
                raise ValueError("The convolutional architecture is defined "
                                 "in the NTK parametrisation only.")
            return EstimatorSpec(architecture, self.depth, self.activation,
                                 self.weight_variance, self.bias_variance)
        architecture = check_choice(architecture, "architecture",
                                    ARCHITECTURES)
        if architecture == "resnet":
            if parametrization != "ntk":
                raise ValueError("The resnet architecture is defined in the "
                                 "NTK parametrisation only.")
            return make_residual_spec(self.depth, self.activation,
                                      self.weight_variance,
                                      self.bias_variance)
        return make_spec(self.depth, self.activation, self.weight_variance,
                         self.bias_variance, parametrization)

    def _resolve_device(self, X):
        """Set ``device_`` for the data ``X`` from the ``device`` parameter."""
        backend = select_backend(getattr(self, "device", "cpu"), self.spec_, X)
        self.device_ = backend.name
        return backend

    def _backend(self):
        return (gpu_backend() if getattr(self, "device_", "cpu") == "gpu"
                else CPUBackend())

    def _grams(self, X, Y, want):
        """Gram blocks of host inputs, on the fitted device (left there)."""
        if isinstance(self.spec_, EstimatorSpec):
            return self.spec_.gram(X, Y, want)
        backend = self._backend()
        to = backend.asarray
        return gram(to(X, np.float64), None if Y is None else to(Y, np.float64),
                    self.spec_, want, backend=backend, on_device=True)

    def _diag(self, X, want):
        if isinstance(self.spec_, EstimatorSpec):
            return self.spec_.diag(X, want)
        return diagonal(X, self.spec_, want)


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


class _KernelRegressorBase(_NetworkParamsMixin, BaseEstimator):
    """Validation, target normalisation and prediction plumbing."""

    def _validate_fit(self, X, y, sample_weight=None):
        self._distributed = is_dask(X) or is_dask(y)
        if self._distributed:   # the rows stay on the cluster
            from ..distributed.estimators import validate_fit
            return validate_fit(self, X, y, sample_weight)
        X, y = on_host(X), on_host(y)   # device arrays are validated here
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True,
                             ensure_min_samples=2, dtype=np.float64)
        self.spec_ = self._spec()
        check_variance(self.alpha, "alpha", allow_zero=True)
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

    def _resolve_solver(self, n, nystroem_ok=True):
        """The solver to use for n samples ("auto" resolved)."""
        solver = check_choice(self.solver, "solver", SOLVERS)
        if getattr(self, "_distributed", False):
            from ..distributed.estimators import resolve_solver
            solver = resolve_solver(solver)
        if solver == "auto":
            exact_fits = 16.0 * n * n <= 0.5 * _physical_memory()
            solver = ("cholesky" if not nystroem_ok
                      or (n <= AUTO_MAX_EXACT and exact_fits) else "nystroem")
        self.solver_ = solver
        self.n_iter_ = 1
        return solver

    def _fit_nystroem(self, X, Y, kind):
        """Coefficients on the inducing points (sets the Nyström attributes)."""
        n = X.shape[0]
        if self.n_inducing is None:
            M = min(n, max(1000, int(2 * np.sqrt(n))))
        else:
            M = check_positive_int(self.n_inducing, "n_inducing")
            if M > n:
                raise ValueError(f"n_inducing={M} is larger than the number "
                                 f"of samples ({n}); choose n_inducing <= "
                                 f"{n} or solver='cholesky'.")
        if self._sqrt_weight is not None:
            raise ValueError("sample_weight needs solver='cholesky'; the "
                             "Nyström solver takes unweighted samples.")
        check_choice(self.inducing, "inducing", INDUCING)
        tol = check_variance(self.tol, "tol")
        max_iter = check_positive_int(self.max_iter, "max_iter")
        kernel = _BlockKernel(self.spec_, kind, self._backend())
        if getattr(self, "_distributed", False):
            from ..distributed.estimators import fit_nystroem
            return fit_nystroem(self, X, Y, kernel, M, tol, max_iter)
        selection = InducingPoints(M, method=self.inducing, kernel=kernel,
                                   random_state=self.random_state).fit(X)
        solution = nystroem_ridge(kernel, X, selection.points_, Y, self.alpha,
                                  tol=tol, max_iter=max_iter)
        self.inducing_points_ = selection.points_
        self.n_iter_ = solution.n_iter
        self.jitter_ = solution.jitter
        return solution.coef

    def _predict_tiled(self, X, Z, coef, kind):
        """``k(X, Z) @ coef`` by row tiles of ``k(X, Z)``, as a host array."""
        step = tile_rows(Z.shape[0])
        coef = self._backend().asarray(coef, np.float64)
        return np.concatenate([
            on_host(self._grams(X[i:i + step], Z, (kind,))[kind] @ coef)
            for i in range(0, X.shape[0], step)])

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
        if getattr(self, "solver_", "cholesky") != "cholesky":
            raise NotImplementedError(
                f"{what} needs solver='cholesky'; the Nyström solver gives "
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


class _OneHotKernelClassifier(ClassifierMixin, _NetworkParamsMixin,
                              BaseEstimator):
    """Kernel regression on one-hot targets, wrapped as a classifier.

    Subclasses set ``_regressor`` and ``_regressor_params``.
    """

    _regressor = None
    _regressor_params = ()

    def fit(self, X, y, sample_weight=None):
        """Fit the kernel regression onto one-hot encoded classes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the squared loss (exact solver only).

        Returns
        -------
        self
        """
        X, y = on_host(X), on_host(y)
        X, y = validate_data(self, X, y, ensure_min_samples=2,
                             dtype=np.float64)
        check_classification_targets(y)
        check_variance(self.temperature, "temperature")
        codes = encode_classes(self, y)
        Y = one_hot_targets(codes, len(self.classes_))
        params = {p: getattr(self, p) for p in self._regressor_params}
        params["verbose"] = self.verbose
        self.regressor_ = self._regressor(**params).fit(
            X, Y, sample_weight=sample_weight)
        self.device_ = self.regressor_.device_
        self.solver_ = self.regressor_.solver_
        self.n_iter_ = self.regressor_.n_iter_
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
