"""Exact Bayesian inference with infinitely wide networks (NNGP posteriors)."""
import numpy as np
from sklearn.base import RegressorMixin
from sklearn.utils import check_random_state

from .._core.backend import on_host
from .._core.docstrings import SAMPLE_WEIGHT, TARGETS, fit_doc
from ..linalg.cholesky import cho_solve, cholesky_with_jitter, solve_lower
from ._base import (DEVICE_CONSTRAINTS, DEVICE_DOC, NETWORK_CONSTRAINTS,
                    NON_NEGATIVE, POSITIVE, SOLVER_ATTRIBUTES_DOC,
                    SOLVER_CONSTRAINTS, SOLVER_DOC,
                    _KernelRegressorBase, _OneHotKernelClassifier)
from ._base import keeps_float32, scale_rows, weighted_gram
from .ntk import _CLASSIFIER_ATTRIBUTES_DOC, _NETWORK_DOC

_NNGP_NETWORK_DOC = _NETWORK_DOC.replace(
    '    parametrization : {"ntk", "standard"}, default="ntk"\n', "")


class NNGPRegressor(RegressorMixin, _KernelRegressorBase):
    __doc__ = """Posterior of a Bayesian infinitely wide network (a Gaussian process).

    The prior over functions is the NNGP of a fully-connected network; with
    Gaussian observation noise of variance ``alpha`` the posterior is exact.
    Equivalent to ``GaussianProcessRegressor(kernel=NNGP(...), alpha=alpha,
    optimizer=None)``, with jitter escalation instead of a failure when the
    kernel matrix is numerically singular.

    Parameters
    ----------""" + _NNGP_NETWORK_DOC + """    alpha : float, default=1e-10
        Noise variance added to the diagonal.
    normalize_y : bool, default=False
""" + SOLVER_DOC + """        The Nyström and "cg" solvers give the posterior mean only (no ``return_std``,
        ``return_cov``, ``sample_y`` or ``log_marginal_likelihood``).
""" + DEVICE_DOC + """
    Attributes
    ----------
    X_train_ : ndarray of shape (n_samples, n_features)
        After a fit on dask arrays: None with the Nyström solver, the
        persisted dask array of the rows (left on the workers) with "cg".
    dual_coef_ : ndarray of shape (n_samples, n_targets)
        ``(K + alpha I)^-1 y``; with the Nyström solver, shape
        (n_inducing, n_targets), the coefficients of ``K(x, Z)``.
    L_ : ndarray of shape (n_samples, n_samples)
        Lower Cholesky factor of ``K + (alpha + jitter_) I`` (Cholesky
        solver only).
    jitter_ : float
    n_features_in_ : int
""" + SOLVER_ATTRIBUTES_DOC + """

    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite.models import NNGPRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(50, 3)); y = np.sin(X[:, 0])
    >>> gp = NNGPRegressor(depth=2, alpha=1e-2).fit(X, y)
    >>> gp.sample_y(X[:4], n_samples=3).shape
    (4, 3)
    """

    _kernel_name = "nngp"
    _parameter_constraints = {
        **NETWORK_CONSTRAINTS,
        "alpha": [NON_NEGATIVE],
        "normalize_y": ["boolean"],
        **SOLVER_CONSTRAINTS,
        **DEVICE_CONSTRAINTS,
    }

    def __init__(self, depth=3, activation="relu", architecture="fully_connected",
                 weight_variance=2.0,
                 bias_variance=0.1, alpha=1e-10, normalize_y=False,
                 solver="auto", n_inducing=None, inducing="uniform",
                 random_state=None, tol=1e-6, max_iter=100, device="auto",
                 verbose=0):
        self.depth = depth
        self.activation = activation
        self.architecture = architecture
        self.weight_variance = weight_variance
        self.bias_variance = bias_variance
        self.alpha = alpha
        self.normalize_y = normalize_y
        self.solver = solver
        self.n_inducing = n_inducing
        self.inducing = inducing
        self.random_state = random_state
        self.tol = tol
        self.max_iter = max_iter
        self.device = device
        self.verbose = verbose

    @fit_doc("Condition the prior on the training data.", y=TARGETS,
             extra=SAMPLE_WEIGHT + """\
    Noise variance ``alpha / w`` per sample: the ridge system becomes
    ``(K + alpha W^-1) c = y`` (as in KernelRidge); zero weights drop
    samples.  Exact (Cholesky) solver only.
""")
    def fit(self, X, y, sample_weight=None):
        X, Y = self._validate_fit(X, y, sample_weight)
        self._Y = Y
        self._resolve_device(X)
        solver = self._resolve_solver(X.shape[0], X=X, kind="nngp")
        if solver == "cg":
            self.dual_coef_ = self._fit_cg(X, Y, "nngp")
            return self
        if solver == "nystroem":
            self.dual_coef_ = self._fit_nystroem(X, Y, "nngp")
            return self
        d, xp = self._sqrt_weight, self._fit_backend
        K = weighted_gram(self._grams(X, None, ("nngp",))["nngp"], d, xp)
        self._factor, self.jitter_ = cholesky_with_jitter(K, self.alpha)
        del K
        self.L_ = np.tril(self._factor[0])
        self.dual_coef_ = on_host(scale_rows(
            cho_solve(self._factor, scale_rows(Y, d, xp)), d, xp))
        return self

    @keeps_float32
    def predict(self, X, return_std=False, return_cov=False):
        """Posterior mean, and optionally standard deviation or covariance.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        return_std, return_cov : bool, default=False

        Returns
        -------
        y_mean : ndarray of shape (n_samples,) or (n_samples, n_targets)
        y_std or y_cov : ndarray, optional
        """
        X, done = self._predict_start(X, return_std, return_cov)
        if done is not None:
            return done
        K_trans = self._grams(X, self.X_train_, ("nngp",))["nngp"]
        mean = self._output_mean(on_host(
            K_trans @ self._fit_backend.asarray(self.dual_coef_)))
        V = solve_lower(self.L_, scale_rows(K_trans.T, self._sqrt_weight,
                                            self._fit_backend))
        if return_std:
            var = self._diag(X, "nngp") - on_host(
                np.einsum("ij,ij->j", V, V))
            return mean, np.sqrt(self._output_var(var))
        cov = on_host(self._grams(X, None, ("nngp",))["nngp"] - V.T @ V)
        return mean, self._output_cov(cov)

    def sample_y(self, X, n_samples=1, random_state=0):
        """Draw functions from the posterior at ``X``.

        Returns
        -------
        y_samples : ndarray of shape (n_samples_X, n_samples) or
            (n_samples_X, n_targets, n_samples)
        """
        rng = check_random_state(random_state)
        mean, cov = self.predict(X, return_cov=True)
        if mean.ndim == 1:
            return rng.multivariate_normal(mean, cov, n_samples).T
        return np.stack([rng.multivariate_normal(mean[:, t], cov[..., t],
                                                 n_samples).T
                         for t in range(mean.shape[1])], axis=1)

    def log_marginal_likelihood(self):
        """Log evidence of the training targets under the fitted prior.

        Summed over targets, on the (normalised) targets the model was fitted
        to, as :class:`sklearn.gaussian_process.GaussianProcessRegressor`.
        """
        from sklearn.utils.validation import check_is_fitted
        check_is_fitted(self)
        self._require_exact("log_marginal_likelihood")
        n = self._Y.shape[0]
        fit_term = -0.5 * np.einsum("ik,ik->k", self._Y, self.dual_coef_)
        log_det = float(np.log(np.diag(self.L_)).sum())
        if self._sqrt_weight is not None:   # det(K + alpha W^-1)
            log_det -= float(np.log(self._sqrt_weight).sum())
        return float(np.sum(fit_term - log_det - 0.5 * n * np.log(2 * np.pi)))


class NNGPClassifier(_OneHotKernelClassifier):
    __doc__ = """Classifier from the NNGP posterior mean on one-hot targets.

    Parameters
    ----------""" + _NNGP_NETWORK_DOC + """    alpha : float, default=1e-10
        Noise variance.
    temperature : float, default=0.1
        ``predict_proba`` returns ``softmax(f / temperature)``.
""" + SOLVER_DOC + DEVICE_DOC + _CLASSIFIER_ATTRIBUTES_DOC.format(
        "NNGPRegressor") + """

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skinfinite.models import NNGPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> NNGPClassifier(depth=2, alpha=1e-2).fit(X, y).score(X, y) > 0.9
    True
    """

    _regressor = NNGPRegressor
    _regressor_params = ("depth", "activation", "architecture", "weight_variance",
                         "bias_variance", "alpha", "solver", "n_inducing",
                         "inducing", "random_state", "tol", "max_iter",
                         "device")

    _parameter_constraints = {
        **NETWORK_CONSTRAINTS,
        "alpha": [NON_NEGATIVE],
        "temperature": [POSITIVE],
        **SOLVER_CONSTRAINTS,
        **DEVICE_CONSTRAINTS,
    }

    def __init__(self, depth=3, activation="relu", architecture="fully_connected",
                 weight_variance=2.0,
                 bias_variance=0.1, alpha=1e-10, temperature=0.1,
                 solver="auto", n_inducing=None, inducing="uniform",
                 random_state=None, tol=1e-6, max_iter=100, device="auto",
                 verbose=0):
        self.depth = depth
        self.activation = activation
        self.architecture = architecture
        self.weight_variance = weight_variance
        self.bias_variance = bias_variance
        self.alpha = alpha
        self.temperature = temperature
        self.solver = solver
        self.n_inducing = n_inducing
        self.inducing = inducing
        self.random_state = random_state
        self.tol = tol
        self.max_iter = max_iter
        self.device = device
        self.verbose = verbose
