"""Gaussian processes on infinite-width kernels, trained through GPyTorch.

scikit-learn estimators whose hyperparameters (the kernel's weight and bias
variances, the noise) are fitted by the exact marginal likelihood
(:class:`GPRegressor`) or by the evidence lower bound of a sparse
variational GP with inducing points and minibatches (:class:`SVGPRegressor`,
:class:`SVGPClassifier`).  They need the ``gp`` extra
(``pip install ".[gp]"`` from the source checkout); torch and gpytorch are imported when an
estimator is fitted, not when this module is imported.
"""
import warnings
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.gaussian_process.kernels import Kernel
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .._core.docstrings import fit_doc
from .._core.backend import torch_device
from .._core.config import CarriesConfig
from .._core.progress import progress
from ._base import keeps_float32
from .._core.backend import TORCH_DEVICES
from .._core.validation import Interval, Options, ValidatesParameters
from ._base import POSITIVE, encode_classes

__all__ = ["GPRegressor", "SVGPRegressor", "SVGPClassifier"]

_OPTIMIZERS = ("adam", "lbfgs")
#: How the sparse models choose their starting inducing locations (the
#: values of :class:`~skinfinite.linalg.inducing.InducingPoints` that need
#: no kernel).
_INDUCING = ("uniform", "kmeans")


def _modules():
    """Import torch, gpytorch and the bridge, or explain how to get them."""
    try:
        import gpytorch
        import torch

        from .._torch import bridge
    except ImportError as exc:
        from .._core.install import install_hint
        raise ImportError("The GPyTorch estimators need torch and gpytorch; "
                          f"{install_hint('gp')}.") from exc
    return torch, gpytorch, bridge


def _default_kernel():
    from ..kernels import NNGP
    return NNGP(depth=3)


_PATHS_ADVICE = (
    "For Gaussian-process regression on paths use "
    "skinfinite.models.SignatureKernelRegressor (predict(X, return_std=True)) "
    "or scikit-learn's GaussianProcessRegressor with SignatureKernel("
    "n_channels=C) on flatten_sequences(X, layout=...); to treat each path "
    "as one feature vector, pass flatten_sequences(X) here.")


def _check_kernel(kernel):
    from sklearn.base import clone
    if kernel is None:
        return _default_kernel()
    if not kernel.requires_vector_input:
        raise TypeError(
            f"{type(kernel).__name__} is a kernel on paths, which the GPyTorch "
            "estimators cannot train (they need a kernel on feature vectors "
            "with a torch recursion, such as NNGP or NTK).  " + _PATHS_ADVICE)
    return clone(kernel)


def _reject_paths(estimator, X):
    """Raise for path input, which the vector kernels would misread."""
    from .._core.sequences import is_nested_frame

    if is_nested_frame(X):
        what = "a nested DataFrame (series in its cells)"
    elif getattr(X, "ndim", None) == 3 or (
            isinstance(X, (list, tuple)) and len(X)
            and all(np.ndim(row) == 2 for row in X)):
        what = "a 3-D array or a list of 2-D arrays"
    else:
        return
    raise ValueError(
        f"{type(estimator).__name__} takes 2-D feature rows (n_samples, "
        f"n_features), but X is {what}: paths.  " + _PATHS_ADVICE)


def _torch_dtype(torch, dtype):
    return {"float64": torch.float64, "float32": torch.float32}[dtype]


class _TorchSession:
    """Device, dtype and a seeded, isolated torch random state."""

    def __init__(self, estimator, seed):
        torch, _, _ = _modules()
        self.torch = torch
        self.device = torch_device(torch, estimator.device)
        self.dtype = _torch_dtype(torch, estimator.dtype)
        self.seed = int(seed)
        self._fork = None

    def __enter__(self):
        devices = [self.device] if self.device.type == "cuda" else []
        self._fork = self.torch.random.fork_rng(devices=devices)
        self._fork.__enter__()
        self.torch.manual_seed(self.seed)
        return self

    def __exit__(self, *exc):
        return self._fork.__exit__(*exc)

    def tensor(self, a):
        # torch cannot wrap read-only memory (e.g. memory-mapped inputs)
        return self.torch.as_tensor(np.require(a, requirements=["C", "W"]),
                                    dtype=self.dtype, device=self.device)


def _numpy(t):
    return t.detach().cpu().numpy().astype(np.float64)


def _seed(random_state):
    return check_random_state(random_state).randint(2**31 - 1)


#: Allowed values of the parameters every GPyTorch estimator takes.
_TORCH_CONSTRAINTS = {
    "kernel": [Kernel, None],
    "learning_rate": [POSITIVE],
    "device": [Options(*TORCH_DEVICES)],
    "dtype": [Options("float64", "float32")],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}
#: ... and those of the sparse variational ones.
_SVGP_CONSTRAINTS = {
    **_TORCH_CONSTRAINTS,
    "n_inducing": [Interval(Integral, 1, None, closed="left")],
    "learn_inducing": ["boolean"],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    # zero epochs keep the initial state
    "max_iter": [Interval(Integral, 0, None, closed="left")],
}


class _GPyTorchMixin(ValidatesParameters, CarriesConfig):
    """Validation and plumbing shared by the GPyTorch estimators."""

    def _validate_common(self):
        kernel = _check_kernel(self.kernel)
        kernel.spec()  # structural parameters are checked before training
        return kernel

    def _validate_regression(self, X, y):
        """Checked inputs, targets, kernel and noise of a regressor's fit."""
        _reject_paths(self, X)
        X, y = validate_data(self, X, y, y_numeric=True, ensure_min_samples=2,
                             dtype=np.float64)
        kernel = self._validate_common()
        return X, y, kernel, float(self.alpha)

    def _training_seed(self):
        """Seed of the fit, kept so that predictions replay it."""
        seed = _seed(self.random_state)
        self._predict_seed = seed
        return seed

    def _scale_targets(self, y):
        if self.normalize_y:
            self._y_mean = float(y.mean())
            scale = float(y.std())
            self._y_scale = scale if scale > 0 else 1.0
        else:
            self._y_mean, self._y_scale = 0.0, 1.0
        return (y - self._y_mean) / self._y_scale

    def _predict_latent(self, X, batch_rows=4096):
        """Posterior mean and variance of the latent function, by row blocks."""
        check_is_fitted(self)
        _reject_paths(self, X)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        torch, gpytorch, _ = _modules()
        session = _TorchSession(self, self._predict_seed)
        self.model_.eval()
        means, variances = [], []
        with session, torch.no_grad(), self._settings(gpytorch), \
                warnings.catch_warnings():
            # predicting at the training inputs is intended here
            warnings.simplefilter("ignore", gpytorch.utils.warnings.GPInputWarning)
            for start in range(0, X.shape[0], batch_rows):
                f = self.model_(session.tensor(X[start:start + batch_rows]))
                means.append(_numpy(f.mean))
                variances.append(_numpy(f.variance))
        return np.concatenate(means, 0), np.concatenate(variances, 0)

    def _predict_targets(self, X, return_std):
        """The regressors' predictive mean, and optionally standard deviation,
        of the latent function in the units of ``y``."""
        mean, var = self._predict_latent(X)
        mean = mean * self._y_scale + self._y_mean
        if not return_std:
            return mean
        return mean, np.sqrt(np.clip(var, 0.0, None)) * self._y_scale

    def _settings(self, gpytorch):
        return gpytorch.settings.max_cholesky_size(
            getattr(self, "max_cholesky_size", 10**9))

    def _store_kernel(self):
        self.kernel_ = self.model_.covar_module.to_sklearn()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


def _train(parameters, loss_fn, optimizer, learning_rate, n_steps, desc,
           work, torch):
    """Minimise ``loss_fn()``; returns the loss at each step."""
    losses = []
    if n_steps == 0 or not parameters:  # nothing to fit
        return losses
    if optimizer == "lbfgs":
        opt = torch.optim.LBFGS(parameters, lr=learning_rate, max_iter=n_steps,
                                line_search_fn="strong_wolfe")
        with progress(n_steps, work, desc, unit="step", always=True) as bar:
            def closure():
                opt.zero_grad()
                loss = loss_fn()
                loss.backward()
                losses.append(float(loss.detach()))
                bar.set_postfix(loss=losses[-1])
                bar.update()
                return loss
            opt.step(closure)
        return losses
    opt = torch.optim.Adam(parameters, lr=learning_rate)
    with progress(n_steps, work, desc, unit="step", always=True) as bar:
        for _ in range(n_steps):
            opt.zero_grad()
            loss = loss_fn()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=losses[-1])
            bar.update()
    return losses


_KERNEL_DOC = """    kernel : skinfinite kernel, default=None
        The prior covariance: ``NNGP``, ``NTK``, ``ResNetNNGP``,
        ``ResNetNTK`` (or another kernel with a torch recursion).  Its
        hyperparameters are the starting point of the fit; bounds set to
        ``"fixed"`` keep a hyperparameter fixed.  None means
        ``NNGP(depth=3)``."""

_TORCH_DOC = """    device : {"auto", "cpu", "gpu", "cuda"}, default="auto"
        Where torch fits the model ("gpu" and "cuda" both mean the CUDA
        device); "auto" follows ``skinfinite.config_context(device=...)``,
        then uses CUDA when torch sees it.
    dtype : {"float64", "float32"}, default="float64"
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation, minibatches and Monte Carlo samples; the
        global torch random state is left untouched.
    verbose : int, default=0
        0 is silent; 1 reports the optimisation (iterations, or epochs of
        minibatches): a progress bar when stderr is a terminal, else a line
        with the loss per tenth of it; 2 a line per step."""


class GPRegressor(_GPyTorchMixin, RegressorMixin, BaseEstimator):
    __doc__ = """Exact Gaussian process regression through GPyTorch.

    The kernel's hyperparameters and the noise variance are fitted by
    maximising the exact log marginal likelihood with Adam or L-BFGS.  Up to
    ``max_cholesky_size`` training points the linear algebra is a Cholesky
    factorisation; above it GPyTorch's conjugate gradients and Lanczos
    estimates (its default for large problems) replace it.

    Parameters
    ----------
""" + _KERNEL_DOC + """
    alpha : float, default=1e-2
        Initial variance of the Gaussian observation noise (on the
        normalised targets when ``normalize_y``), > 0.
    fit_alpha : bool, default=True
        Also fit the noise variance (else it stays ``alpha``).
    normalize_y : bool, default=True
        Standardise the targets before fitting.
    optimizer : {"adam", "lbfgs"}, default="adam"
    max_iter : int, default=100
        Optimiser steps (L-BFGS: function evaluations); 0 keeps the initial
        hyperparameters.
    learning_rate : float, default=0.05
    max_cholesky_size : int, default=2000
        Largest training set solved by Cholesky; larger ones use CG.
""" + _TORCH_DOC + """

    Attributes
    ----------
    model_ : skinfinite._torch.bridge.ExactGPModel
    likelihood_ : gpytorch.likelihoods.GaussianLikelihood
    kernel_ : the fitted scikit-learn kernel
    alpha_ : float
        Fitted noise variance, in the units of ``y``.
    loss_curve_ : list of float
        Negative log marginal likelihood per training point, at each step.
    n_iter_ : int
        Loss evaluations made by the optimiser.
    log_marginal_likelihood_value_ : float
        Log marginal likelihood of the normalised targets after fitting.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite.models import GPRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 3)); y = np.sin(X[:, 0])
    >>> gp = GPRegressor(max_iter=10, random_state=0).fit(X, y)
    >>> mean, std = gp.predict(X[:3], return_std=True)
    >>> mean.shape, bool(np.all(std > 0))
    ((3,), True)
    """

    _parameter_constraints = {
        **_TORCH_CONSTRAINTS,
        "alpha": [POSITIVE],
        "fit_alpha": ["boolean"],
        "normalize_y": ["boolean"],
        "optimizer": [Options(*_OPTIMIZERS)],
        # zero steps keep the initial hyperparameters
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "max_cholesky_size": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, kernel=None, alpha=1e-2, fit_alpha=True,
                 normalize_y=True, optimizer="adam", max_iter=100,
                 learning_rate=0.05, max_cholesky_size=2000, device="auto",
                 dtype="float64", random_state=None, verbose=0):
        self.kernel = kernel
        self.alpha = alpha
        self.fit_alpha = fit_alpha
        self.normalize_y = normalize_y
        self.optimizer = optimizer
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_cholesky_size = max_cholesky_size
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    @fit_doc("Fit the hyperparameters and condition on the data.")
    def fit(self, X, y):
        X, y, kernel, noise = self._validate_regression(X, y)
        n_steps = int(self.max_iter)
        torch, gpytorch, bridge = _modules()
        seed = self._training_seed()
        target = self._scale_targets(y.astype(np.float64))
        with _TorchSession(self, seed) as s:
            x_t, y_t = s.tensor(X), s.tensor(target)
            likelihood = gpytorch.likelihoods.GaussianLikelihood(
                noise_constraint=gpytorch.constraints.GreaterThan(1e-10))
            likelihood.to(device=s.device, dtype=s.dtype)
            likelihood.noise = s.tensor(noise)
            likelihood.raw_noise.requires_grad_(bool(self.fit_alpha))
            model = bridge.ExactGPModel(x_t, y_t, likelihood,
                                        bridge.to_gpytorch(kernel))
            model.to(device=s.device, dtype=s.dtype)
            mll = gpytorch.mlls.ExactMarginalLogLikelihood(likelihood, model)
            model.train()
            likelihood.train()
            params = [p for p in model.parameters() if p.requires_grad]

            def loss_fn():
                return -mll(model(x_t), y_t)

            with self._settings(gpytorch):
                self.loss_curve_ = _train(
                    params, loss_fn, self.optimizer, self.learning_rate,
                    n_steps, "GP marginal likelihood",
                    n_steps * X.shape[0] ** 2, torch)
                with torch.no_grad():
                    final = float(loss_fn())
        self.model_, self.likelihood_ = model, likelihood
        self.n_iter_ = len(self.loss_curve_)
        self.log_marginal_likelihood_value_ = -final * X.shape[0]
        self.alpha_ = float(likelihood.noise.detach()) * self._y_scale ** 2
        self._store_kernel()
        return self

    @keeps_float32
    def predict(self, X, return_std=False):
        """Posterior mean and, optionally, standard deviation of f.

        The standard deviation is that of the latent function (the noise
        variance ``alpha_`` is not included), as in scikit-learn's
        ``GaussianProcessRegressor`` with ``alpha``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        return_std : bool, default=False

        Returns
        -------
        y_mean : ndarray of shape (n_samples,)
        y_std : ndarray of shape (n_samples,), optional
        """
        return self._predict_targets(X, return_std)


def _check_batch(estimator, n):
    return min(int(estimator.batch_size), n), min(int(estimator.n_inducing), n)


def _initial_inducing(X, n_inducing, rng):
    """A random subset of the training rows (without replacement)."""
    return X[np.sort(rng.choice(X.shape[0], n_inducing, replace=False))]


def _inducing_locations(X, n_inducing, method, rng):
    """Starting inducing locations: random rows or k-means centres."""
    from ..linalg.inducing import InducingPoints
    chosen = InducingPoints(n_inducing, method=method, random_state=rng).fit(X)
    return np.asarray(chosen.points_, dtype=np.float64)


def _subset_hyperparameters(estimator, X, target, kernel, alpha, n_rows, rng):
    """Kernel and noise fitted by the exact marginal likelihood on a random
    subset of the (normalised) targets: a starting point near the full
    data's optimum, where the ELBO alone starts far off and creeps."""
    rows = np.sort(rng.choice(X.shape[0], n_rows, replace=False))
    gp = GPRegressor(kernel, alpha=alpha, fit_alpha=estimator.fit_alpha,
                     normalize_y=False, optimizer="lbfgs",
                     max_iter=_SUBSET_EVALUATIONS, learning_rate=0.5,
                     max_cholesky_size=n_rows, device=estimator.device,
                     dtype=estimator.dtype,
                     random_state=rng.randint(2**31 - 1))
    with warnings.catch_warnings():
        # a non-converged start is still a better start
        warnings.simplefilter("ignore")
        gp.fit(X[rows], target[rows])
    # an interpolating subset fit may drive the noise to nearly nothing;
    # the minibatch ELBO needs a start inside its noise constraint
    return gp.kernel_, max(gp.alpha_, _NOISE_FLOOR)


_SUBSET_EVALUATIONS = 50
_NOISE_FLOOR = 1e-6


def _optimal_variational(model, likelihood, X, target, session,
                         batch_rows=2048):
    """Set q(u) to the ELBO's maximiser for the current hyperparameters.

    With a Gaussian likelihood it is Gaussian in closed form (Titsias 2009):
    in the whitened variables v = L^-1 u (K_ZZ = L L^T), precision
    ``P = I + A A^T / noise`` and precision times mean ``A y / noise``,
    where ``A = L^-1 K_ZX``; one pass over the data in row blocks.  This
    replaces the minibatch estimate left by the stochastic optimiser.
    """
    torch = session.torch
    gpytorch = _modules()[1]
    from linear_operator.utils.cholesky import psd_safe_cholesky
    strategy = model.variational_strategy
    # q(u) by its public class among the strategy's submodules (GPyTorch
    # keeps the module itself in a private attribute)
    families = (gpytorch.variational.CholeskyVariationalDistribution,
                gpytorch.variational.NaturalVariationalDistribution)
    distribution = next(m for m in strategy.modules()
                        if isinstance(m, families))
    with torch.no_grad():
        Z = strategy.inducing_points
        M = Z.shape[-2]
        eye = torch.eye(M, dtype=Z.dtype, device=Z.device)
        K_zz = model.covar_module(Z, Z).to_dense()
        L = psd_safe_cholesky(K_zz + strategy.jitter_val * eye)
        noise = likelihood.noise.reshape(())
        precision = torch.zeros_like(eye)
        shift = torch.zeros(M, dtype=Z.dtype, device=Z.device)
        for start in range(0, X.shape[0], batch_rows):
            x = session.tensor(X[start:start + batch_rows])
            y = session.tensor(target[start:start + batch_rows])
            A = torch.linalg.solve_triangular(
                L, model.covar_module(Z, x).to_dense(), upper=False)
            precision += A @ A.T
            shift += A @ (y - model.mean_module(x))
        precision = eye + precision / noise
        shift = shift / noise
        if hasattr(distribution, "natural_vec"):
            distribution.natural_vec.copy_(shift)
            distribution.natural_mat.copy_(-0.5 * precision)
        else:
            C = psd_safe_cholesky(precision)
            distribution.variational_mean.copy_(
                torch.cholesky_solve(shift.unsqueeze(-1), C).squeeze(-1))
            distribution.chol_variational_covar.copy_(
                psd_safe_cholesky(torch.cholesky_inverse(C)))
        # otherwise GPyTorch resets q(u) to the prior at its first call
        strategy.variational_params_initialized.fill_(1)


def _train_svgp(estimator, X, target, model, likelihood, n_latent, session):
    """Minibatch Adam on the negative ELBO; returns the mean loss per epoch."""
    torch, gpytorch, _ = _modules()
    n = X.shape[0]
    batch, _ = _check_batch(estimator, n)
    n_epochs = int(estimator.max_iter)
    rng = np.random.RandomState(session.seed)
    elbo = gpytorch.mlls.VariationalELBO(likelihood, model, num_data=n)
    natural = bool(getattr(estimator, "natural_gradient", False))
    variational = list(model.variational_parameters()) if natural else []
    params = list(model.parameters()) + [
        p for p in likelihood.parameters()
        if not any(p is q for q in model.parameters())]
    params = [p for p in params if p.requires_grad
              and not any(p is q for q in variational)]
    optimizers = ([torch.optim.Adam(params, lr=estimator.learning_rate)]
                  if params else [])
    if natural:
        optimizers.append(gpytorch.optim.NGD(
            variational, num_data=n, lr=estimator.natural_learning_rate))
    x_all, y_all = session.tensor(X), session.tensor(target)
    if target.dtype.kind in "iu":
        y_all = y_all.to(torch.long)
    curve = []
    model.train()
    likelihood.train()
    work = n_epochs * n * batch
    with progress(n_epochs, work, type(estimator).__name__, unit="epoch",
                  always=True) as bar:
        for _ in range(n_epochs):
            order = rng.permutation(n)
            total = 0.0
            for start in range(0, n, batch):
                idx = torch.as_tensor(order[start:start + batch],
                                      device=session.device)
                for opt in optimizers:
                    opt.zero_grad()
                loss = -elbo(model(x_all[idx]), y_all[idx])
                loss.backward()
                for opt in optimizers:
                    opt.step()
                total += float(loss.detach()) * idx.shape[0]
            curve.append(total / n)
            bar.set_postfix(loss=curve[-1])
            bar.update()
    return curve


_SVGP_DOC = """    n_inducing : int, default=256
        Number of inducing points (at most the number of samples),
        initialised at a random subset of the training rows.
    learn_inducing : bool, default=True
        Also train the inducing locations.
    batch_size : int, default=256
        Minibatch size.
    max_iter : int, default=20
        Epochs (passes over the training data); 0 leaves the initial state.
    learning_rate : float, default=0.01
        Adam's step size."""


class SVGPRegressor(_GPyTorchMixin, RegressorMixin, BaseEstimator):
    __doc__ = """Sparse variational GP regression (SVGP) through GPyTorch.

    A whitened variational distribution over ``n_inducing`` inducing values
    and the inducing locations, the kernel's hyperparameters and the noise
    are trained together on minibatches on the evidence lower bound
    (Hensman, Fusi and Lawrence 2013): Adam for the hyperparameters and
    locations, natural gradients for the variational distribution.  The
    cost per step is ``O(batch_size n_inducing^2 + n_inducing^3)``,
    independent of the number of samples.

    By default the fit starts from hyperparameters fitted by the exact
    marginal likelihood on a random subset of ``init_subset`` rows, with
    the variational distribution at its closed-form optimum (Gaussian
    likelihood), and ends by setting it to the optimum again for the final
    hyperparameters and locations (one more pass over the data each), so
    that the predictions do not carry the noise of the last minibatch
    steps.

    Parameters
    ----------
""" + _KERNEL_DOC + """
    n_inducing : int, default=512
        Number of inducing points (at most the number of samples).
    inducing : {"uniform", "kmeans"}, default="uniform"
        Starting inducing locations: a uniformly random subset of the
        training rows, or k-means centres of the rows
        (:class:`~skinfinite.linalg.inducing.InducingPoints`).  With
        norm-dependent kernels such as the ReLU NNGP the centres, being
        averages, sit closer to the origin than the data, and "uniform" did
        better in the measurements of the user guide.
    learn_inducing : bool, default=True
        Also train the inducing locations.
    batch_size : int, default=1024
        Minibatch size.
    max_iter : int, default=5
        Epochs (passes over the training data); 0 leaves the initial state
        (the closed-form variational distribution below is still computed).
    learning_rate : float, default=0.01
        Adam's step size for the hyperparameters and inducing locations
        (and the variational distribution when ``natural_gradient=False``).
    alpha : float, default=0.1
        Initial noise variance (on normalised targets if ``normalize_y``),
        > 0.
    fit_alpha : bool, default=True
        Also fit the noise variance.
    normalize_y : bool, default=True
    init_subset : int, default=1000
        Before the ELBO, fit the kernel's hyperparameters and the noise by
        the exact marginal likelihood (L-BFGS, 50 evaluations) on a random
        subset of this many rows, starting from ``kernel`` and ``alpha``;
        0 starts the ELBO from ``kernel`` and ``alpha`` themselves.
    natural_gradient : bool, default=True
        Train the variational distribution by natural-gradient descent
        (``gpytorch.optim.NGD``, step ``natural_learning_rate``) and only the
        hyperparameters and inducing locations by Adam; False trains all
        of them by Adam.
    natural_learning_rate : float, default=0.1
""" + _TORCH_DOC + """

    Attributes
    ----------
    model_ : skinfinite._torch.bridge.SVGPModel
    likelihood_ : gpytorch.likelihoods.GaussianLikelihood
    kernel_ : the fitted scikit-learn kernel
    alpha_ : float
        Fitted noise variance in the units of ``y``.
    inducing_points_ : ndarray of shape (n_inducing, n_features)
    loss_curve_ : list of float
        Mean negative ELBO per training point, for each epoch.
    n_iter_ : int
        Epochs run.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite.models import SVGPRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 2)); y = np.sin(X[:, 0])
    >>> reg = SVGPRegressor(n_inducing=10, max_iter=2, random_state=0)
    >>> reg.fit(X, y).predict(X[:2], return_std=True)[1].shape
    (2,)
    """

    _parameter_constraints = {
        **_SVGP_CONSTRAINTS,
        "inducing": [Options(*_INDUCING)],
        "alpha": [POSITIVE],
        "fit_alpha": ["boolean"],
        "normalize_y": ["boolean"],
        "init_subset": [Interval(Integral, 0, None, closed="left")],
        "natural_gradient": ["boolean"],
        "natural_learning_rate": [POSITIVE],
    }

    def __init__(self, kernel=None, n_inducing=512, inducing="uniform",
                 learn_inducing=True, batch_size=1024, max_iter=5,
                 learning_rate=0.01, alpha=0.1, fit_alpha=True,
                 normalize_y=True, init_subset=1000, natural_gradient=True,
                 natural_learning_rate=0.1, device="auto", dtype="float64",
                 random_state=None, verbose=0):
        self.kernel = kernel
        self.n_inducing = n_inducing
        self.inducing = inducing
        self.learn_inducing = learn_inducing
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.alpha = alpha
        self.fit_alpha = fit_alpha
        self.normalize_y = normalize_y
        self.init_subset = init_subset
        self.natural_gradient = natural_gradient
        self.natural_learning_rate = natural_learning_rate
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    @fit_doc("Train the variational GP on minibatches.")
    def fit(self, X, y):
        X, y, kernel, noise = self._validate_regression(X, y)
        _, n_inducing = _check_batch(self, X.shape[0])
        subset = int(self.init_subset)
        torch, gpytorch, bridge = _modules()
        seed = self._training_seed()
        target = self._scale_targets(y.astype(np.float64))
        rng = np.random.RandomState(seed)
        if subset:
            kernel, noise = _subset_hyperparameters(
                self, X, target, kernel, noise, min(subset, X.shape[0]), rng)
        Z = _inducing_locations(X, n_inducing, self.inducing, rng)
        with _TorchSession(self, seed) as s:
            likelihood = gpytorch.likelihoods.GaussianLikelihood(
                noise_constraint=gpytorch.constraints.GreaterThan(1e-8))
            likelihood.to(device=s.device, dtype=s.dtype)
            likelihood.noise = s.tensor(noise)
            likelihood.raw_noise.requires_grad_(bool(self.fit_alpha))
            model = bridge.SVGPModel(
                s.tensor(Z), bridge.to_gpytorch(kernel),
                learn_inducing=bool(self.learn_inducing),
                natural=bool(self.natural_gradient))
            model.to(device=s.device, dtype=s.dtype)
            likelihood.to(device=s.device, dtype=s.dtype)
            # the optimiser starts from, and hands back, the optimal q(u)
            _optimal_variational(model, likelihood, X, target, s)
            self.loss_curve_ = _train_svgp(self, X, target, model, likelihood,
                                           None, s)
            if self.max_iter:
                _optimal_variational(model, likelihood, X, target, s)
        self.model_, self.likelihood_ = model, likelihood
        self.n_iter_ = len(self.loss_curve_)
        self.alpha_ = float(likelihood.noise.detach()) * self._y_scale ** 2
        self.inducing_points_ = _numpy(
            model.variational_strategy.inducing_points)
        self._store_kernel()
        return self

    @keeps_float32
    def predict(self, X, return_std=False):
        """Predictive mean and, optionally, standard deviation of f.

        The standard deviation excludes the noise (``alpha_``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        return_std : bool, default=False

        Returns
        -------
        y_mean : ndarray of shape (n_samples,)
        y_std : ndarray of shape (n_samples,), optional
        """
        return self._predict_targets(X, return_std)


class SVGPClassifier(_GPyTorchMixin, ClassifierMixin, BaseEstimator):
    __doc__ = """Sparse variational GP classification through GPyTorch.

    Two classes: one latent function with a Bernoulli likelihood (probit
    link), whose predictive probability ``Phi(mu / sqrt(1 + var))`` is
    exact.  More classes: one independent latent function per class, all
    sharing the kernel hyperparameters, with GPyTorch's softmax likelihood
    (no mixing weights); the ELBO and the predictive probabilities are
    Monte Carlo averages over ``n_mc_samples`` draws, seeded by
    ``random_state``.

    Parameters
    ----------
""" + _KERNEL_DOC + """
""" + _SVGP_DOC + """
    n_mc_samples : int, default=64
        Monte Carlo draws for the softmax likelihood (multiclass only).
""" + _TORCH_DOC + """

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    model_ : skinfinite._torch.bridge.SVGPModel
    likelihood_ : gpytorch likelihood
    kernel_ : the fitted scikit-learn kernel
    loss_curve_ : list of float
        Mean negative ELBO per training point, for each epoch.
    n_iter_ : int
        Epochs run.
    n_features_in_ : int

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skinfinite.models import SVGPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = SVGPClassifier(n_inducing=16, max_iter=10, learning_rate=0.05,
    ...                      random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 3)
    """

    _parameter_constraints = {
        **_SVGP_CONSTRAINTS,
        "n_mc_samples": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, kernel=None, n_inducing=256, learn_inducing=True,
                 batch_size=256, max_iter=20, learning_rate=0.01,
                 n_mc_samples=64, device="auto", dtype="float64",
                 random_state=None, verbose=0):
        self.kernel = kernel
        self.n_inducing = n_inducing
        self.learn_inducing = learn_inducing
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.n_mc_samples = n_mc_samples
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    @fit_doc("Train the variational classifier on minibatches.")
    def fit(self, X, y):
        _reject_paths(self, X)
        X, y = validate_data(self, X, y, ensure_min_samples=2,
                             dtype=np.float64)
        check_classification_targets(y)
        kernel = self._validate_common()
        _, n_inducing = _check_batch(self, X.shape[0])
        codes = encode_classes(self, y)
        n_classes = len(self.classes_)
        torch, gpytorch, bridge = _modules()
        seed = self._training_seed()
        n_latent = None if n_classes == 2 else n_classes
        with _TorchSession(self, seed) as s:
            rng = np.random.RandomState(seed)
            if n_latent is None:
                Z = s.tensor(_initial_inducing(X, n_inducing, rng))
                likelihood = gpytorch.likelihoods.BernoulliLikelihood()
                target = codes.astype(np.float64)
            else:
                Z = s.tensor(np.stack([_initial_inducing(X, n_inducing, rng)
                                       for _ in range(n_classes)]))
                likelihood = gpytorch.likelihoods.SoftmaxLikelihood(
                    num_classes=n_classes, mixing_weights=False)
                target = codes.astype(np.int64)
            model = bridge.SVGPModel(
                Z, bridge.to_gpytorch(kernel), n_latent=n_latent,
                learn_inducing=bool(self.learn_inducing),
                constant_mean=True)
            model.to(device=s.device, dtype=s.dtype)
            likelihood.to(device=s.device, dtype=s.dtype)
            with gpytorch.settings.num_likelihood_samples(self.n_mc_samples):
                self.loss_curve_ = _train_svgp(self, X, target, model,
                                               likelihood, n_latent, s)
        self.model_, self.likelihood_ = model, likelihood
        self.n_iter_ = len(self.loss_curve_)
        self._store_kernel()
        return self

    def predict_proba(self, X):
        """Predictive class probabilities.

        Two classes: ``Phi(mu / sqrt(1 + var))``, exact.  More classes: the
        mean of ``softmax(mu + sqrt(var) eps)`` over ``n_mc_samples`` fixed
        standard normal draws ``eps`` (seeded by ``random_state`` and shared
        by every row, so each row's probabilities do not depend on the
        others).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        from scipy.special import ndtr, softmax
        check_is_fitted(self)
        mean, var = self._predict_latent(X)
        sd = np.sqrt(np.clip(var, 0.0, None))
        if len(self.classes_) == 2:
            p1 = ndtr(mean / np.sqrt(1.0 + sd ** 2))
            return np.column_stack([1.0 - p1, p1])
        eps = np.random.RandomState(self._predict_seed).standard_normal(
            (self.n_mc_samples, 1, mean.shape[1]))
        return softmax(mean + sd * eps, axis=-1).mean(axis=0)

    def decision_function(self, X):
        """Scores that order the classes as ``predict_proba`` does.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            Two classes: ``mu / sqrt(1 + var)``, the probit argument of
            ``classes_[1]`` (positive favours it).  More classes: the log of
            the predictive probabilities.
        """
        check_is_fitted(self)
        if len(self.classes_) == 2:
            mean, var = self._predict_latent(X)
            return mean / np.sqrt(1.0 + np.clip(var, 0.0, None))
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """The most probable class."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]
