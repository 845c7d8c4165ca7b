"""Infinite ensembles of infinitely wide networks trained by gradient descent."""
import numpy as np
from sklearn.base import RegressorMixin

from .._core.backend import on_host
from .._core.docstrings import SAMPLE_WEIGHT, TARGETS, fit_doc
from .._core.validation import Options
from ..kernels.fully_connected import PARAMETRIZATIONS
from ..linalg.cholesky import cho_solve, cholesky_with_jitter, eigh_psd
from ._base import (DEVICE_CONSTRAINTS, DEVICE_DOC, NETWORK_CONSTRAINTS,
                    NON_NEGATIVE, POSITIVE, SOLVER_ATTRIBUTES_DOC,
                    SOLVER_CONSTRAINTS, SOLVER_DOC,
                    _KernelRegressorBase, _OneHotKernelClassifier)
from ._base import keeps_float32, scale_rows, weighted_gram

_NETWORK_DOC = """
    depth : int, default=3
        Number of hidden layers (fully connected) or residual blocks
        (``np.inf`` allowed for "resnet").
    activation : str, Activation or callable, default="relu"
        See :mod:`skinfinite.activations.definitions`.
    architecture : str or Kernel, default="fully_connected"
        The network: a registered name (see
        :func:`~skinfinite.kernels.register_architecture`), that is
        "fully_connected" (:class:`~skinfinite.kernels.NTK`), "resnet"
        (:class:`~skinfinite.kernels.ResNetNTK`, branches scaled by
        1/sqrt(depth)) or "convolutional" (rows of X read as one-channel
        sequences by :class:`~skinfinite.kernels.ConvNTK` with its default
        filters); or a kernel of a registered architecture, such as a
        :class:`~skinfinite.kernels.ConvNTK` or
        :class:`~skinfinite.kernels.ResNetNTK`, whose other parameters give
        the structure (for example filter_size, dilation, readout, padding,
        image_shape, n_channels; branch_layers), with this estimator's
        depth, activation and variances.
    weight_variance : float, default=2.0
        Variance of the weights times the fan-in (sw2).
    bias_variance : float, default=0.1
        Variance of the biases (sb2).
    parametrization : {"ntk", "standard"}, default="ntk"
"""

#: the attributes of the one-hot classifiers, given their regressor's name
_CLASSIFIER_ATTRIBUTES_DOC = """
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    kernel_ : Kernel
        The network's kernel, ``regressor_.kernel_``.
    regressor_ : {}
    n_features_in_ : int
    solver_ : {{"cholesky", "cg", "nystroem"}}
    n_iter_ : int
        Conjugate-gradient iterations (1 for the Cholesky solver)."""


class NTKRegressor(RegressorMixin, _KernelRegressorBase):
    __doc__ = """Mean prediction of infinitely many infinitely wide networks
    trained by gradient flow on the squared loss.

    At ``training_time=None`` (trained to convergence) the prediction is the
    kernel regression ``T(x, X) (T(X, X) + alpha I)^-1 y``; at a finite
    training time ``t`` with learning rate ``eta`` it is
    ``T(x, X) T^-1 (I - exp(-eta T t)) y`` (Lee et al., 2019).
    ``predict(X, return_std=True)`` gives the standard deviation over the
    ensemble of random initialisations, which needs the NNGP kernel too.

    Parameters
    ----------""" + _NETWORK_DOC + """    alpha : float, default=0.0
        Ridge added to the diagonal of T(X, X); jitter is added automatically
        if the matrix is numerically singular.
    training_time : float or None, default=None
        Gradient-flow time; None means infinite.
    learning_rate : float, default=1.0
    normalize_y : bool, default=False
        Centre and scale the targets before fitting.
""" + SOLVER_DOC + """        The Nyström and "cg" solvers support ``training_time=None`` and the
        mean prediction only ("auto" then picks "cholesky").
""" + DEVICE_DOC + """
    Attributes
    ----------
    X_train_ : ndarray of shape (n_samples, n_features)
        After a fit on dask arrays: None with the Nyström solver, the
        persisted dask array of the rows (left on the workers) with "cg".
    dual_coef_ : ndarray of shape (n_samples, n_targets)
        ``A y`` with ``A = T^-1 (I - exp(-eta T t))`` (``T^-1`` at infinite time).
        With the Nyström solver, shape (n_inducing, n_targets): the
        coefficients of ``T(x, Z)``.
    jitter_ : float
        Jitter that was added to the diagonal (infinite time only; of
        ``T(Z, Z)`` with the Nyström solver).
    n_features_in_ : int
""" + SOLVER_ATTRIBUTES_DOC + """

    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite.models import NTKRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(50, 3)); y = np.sin(X[:, 0])
    >>> model = NTKRegressor(depth=2, alpha=1e-3).fit(X, y)
    >>> mean, std = model.predict(X[:3], return_std=True)
    >>> mean.shape, std.shape
    ((3,), (3,))
    """

    _kernel_name = "ntk"
    _parameter_constraints = {
        **NETWORK_CONSTRAINTS,
        "parametrization": [Options(*PARAMETRIZATIONS)],
        "alpha": [NON_NEGATIVE],
        "training_time": [NON_NEGATIVE, None],
        "learning_rate": [POSITIVE],
        "normalize_y": ["boolean"],
        **SOLVER_CONSTRAINTS,
        **DEVICE_CONSTRAINTS,
    }

    def __init__(self, depth=3, activation="relu", architecture="fully_connected",
                 weight_variance=2.0,
                 bias_variance=0.1, parametrization="ntk", alpha=0.0,
                 training_time=None, learning_rate=1.0, normalize_y=False,
                 solver="auto", n_inducing=None, inducing="uniform",
                 random_state=None, tol=1e-6, max_iter=100, device="auto",
                 verbose=0):
        self.depth = depth
        self.activation = activation
        self.architecture = architecture
        self.weight_variance = weight_variance
        self.bias_variance = bias_variance
        self.parametrization = parametrization
        self.alpha = alpha
        self.training_time = training_time
        self.learning_rate = learning_rate
        self.normalize_y = normalize_y
        self.solver = solver
        self.n_inducing = n_inducing
        self.inducing = inducing
        self.random_state = random_state
        self.tol = tol
        self.max_iter = max_iter
        self.device = device
        self.verbose = verbose

    @fit_doc("Fit the infinite ensemble.", y=TARGETS,
             extra=SAMPLE_WEIGHT + """\
    Weights of the squared loss: the ridge system becomes
    ``(T + alpha W^-1) c = y`` (as in KernelRidge; gradient
    flow on the weighted loss at a finite ``training_time``); zero weights drop
    samples.  Exact (Cholesky) solver only.
""")
    def fit(self, X, y, sample_weight=None):
        X, Y = self._validate_fit(X, y, sample_weight)
        self._nngp_train = None
        self._resolve_device(X)
        solver = self._resolve_solver(X.shape[0],
                                      nystroem_ok=self.training_time is None,
                                      X=X, kind="ntk")
        if solver == "cg":
            if self.training_time is not None:
                raise ValueError("A finite training_time needs "
                                 "solver='cholesky'; the 'cg' solver gives "
                                 "the trained-to-convergence ensemble.")
            self.dual_coef_ = self._fit_cg(X, Y, "ntk")
            return self
        if solver == "nystroem":
            if self.training_time is not None:
                raise ValueError("A finite training_time needs "
                                 "solver='cholesky'; the Nyström solver "
                                 "gives the trained-to-convergence ensemble.")
            self.dual_coef_ = self._fit_nystroem(X, Y, "ntk")
            return self
        ntk = weighted_gram(self._grams(X, None, ("ntk",))["ntk"],
                            self._sqrt_weight, self._fit_backend)
        if self.training_time is None:
            self._factor, self.jitter_ = cholesky_with_jitter(ntk, self.alpha)
            del ntk
            self._eig = None
        else:
            t, eta = float(self.training_time), float(self.learning_rate)
            w, V = eigh_psd(ntk, self.alpha)
            # (1 - exp(-eta w t)) / w, with its limit eta t at w = 0
            rate = eta * t
            with np.errstate(divide="ignore", invalid="ignore"):
                f = np.where(w * rate > 1e-12, -np.expm1(-w * rate) / w, rate)
            self._eig = (V, f)
            self._factor, self.jitter_ = None, 0.0
        self.dual_coef_ = on_host(self._apply_A(Y))
        return self

    def _apply_A(self, B):
        """``A B`` on the fitting device (host ``B`` is moved there)."""
        # with weights A = D A(D T D) D, D = diag(sqrt(w))
        d, xp = getattr(self, "_sqrt_weight", None), self._fit_backend
        B = scale_rows(xp.asarray(B, np.float64), d, xp)
        if self._eig is None:
            return scale_rows(cho_solve(self._factor, B), d, xp)
        V, f = self._eig
        return scale_rows(V @ (f[:, None] * (V.T @ B)), d, xp)

    @keeps_float32
    def predict(self, X, return_std=False, return_cov=False):
        """Mean (and spread) of the ensemble's predictions.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        return_std : bool, default=False
            Also return the standard deviation over random initialisations.
        return_cov : bool, default=False
            Also return the covariance (exclusive with ``return_std``).

        Returns
        -------
        y_mean : ndarray of shape (n_samples,) or (n_samples, n_targets)
        y_std or y_cov : ndarray, optional
        """
        X, done = self._predict_start(X, return_std, return_cov)
        if done is not None:
            return done
        cross = self._grams(X, self.X_train_, ("nngp", "ntk"))
        mean = self._output_mean(on_host(
            cross["ntk"] @ self._fit_backend.asarray(self.dual_coef_)))
        if self._nngp_train is None:
            self._nngp_train = self._grams(self.X_train_, None,
                                           ("nngp",))["nngp"]
        # Sigma = K(x,x') + M K M^T - (M K(X,x') + K(x,X) M^T), M = T(x,X) A
        M = self._apply_A(cross["ntk"].T).T
        MK = M @ self._nngp_train
        if return_std:
            var = self._diag(X, "nngp") + on_host(
                np.einsum("ij,ij->i", MK, M)
                - 2 * np.einsum("ij,ij->i", M, cross["nngp"]))
            return mean, np.sqrt(self._output_var(var))
        C = M @ cross["nngp"].T
        cov = self._grams(X, None, ("nngp",))["nngp"] + MK @ M.T - C - C.T
        return mean, self._output_cov(on_host(cov))


class NTKClassifier(_OneHotKernelClassifier):
    __doc__ = """Classifier from NTK regression onto one-hot targets.

    The trained infinite ensemble of :class:`NTKRegressor` regresses the
    centred one-hot encoding of the classes; the predicted class has the
    largest output.

    Parameters
    ----------""" + _NETWORK_DOC + """    alpha : float, default=0.0
    training_time : float or None, default=None
    learning_rate : float, default=1.0
    temperature : float, default=0.1
        ``predict_proba`` returns ``softmax(f / temperature)``.
""" + SOLVER_DOC + DEVICE_DOC + _CLASSIFIER_ATTRIBUTES_DOC.format(
        "NTKRegressor") + """

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skinfinite.models import NTKClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> NTKClassifier(depth=2, alpha=1e-2).fit(X, y).score(X, y) > 0.9
    True
    """

    _regressor = NTKRegressor
    _regressor_params = ("depth", "activation", "architecture", "weight_variance",
                         "bias_variance", "parametrization", "alpha",
                         "training_time", "learning_rate", "solver",
                         "n_inducing", "inducing", "random_state", "tol",
                         "max_iter", "device")

    _parameter_constraints = {
        **NETWORK_CONSTRAINTS,
        "parametrization": [Options(*PARAMETRIZATIONS)],
        "alpha": [NON_NEGATIVE],
        "training_time": [NON_NEGATIVE, None],
        "learning_rate": [POSITIVE],
        "temperature": [POSITIVE],
        **SOLVER_CONSTRAINTS,
        **DEVICE_CONSTRAINTS,
    }

    def __init__(self, depth=3, activation="relu", architecture="fully_connected",
                 weight_variance=2.0,
                 bias_variance=0.1, parametrization="ntk", alpha=0.0,
                 training_time=None, learning_rate=1.0, temperature=0.1,
                 solver="auto", n_inducing=None, inducing="uniform",
                 random_state=None, tol=1e-6, max_iter=100, device="auto",
                 verbose=0):
        self.depth = depth
        self.activation = activation
        self.architecture = architecture
        self.weight_variance = weight_variance
        self.bias_variance = bias_variance
        self.parametrization = parametrization
        self.alpha = alpha
        self.training_time = training_time
        self.learning_rate = learning_rate
        self.temperature = temperature
        self.solver = solver
        self.n_inducing = n_inducing
        self.inducing = inducing
        self.random_state = random_state
        self.tol = tol
        self.max_iter = max_iter
        self.device = device
        self.verbose = verbose
