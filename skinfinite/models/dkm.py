"""Deep kernel machines: infinitely wide networks that learn representations.

A deep kernel machine (Yang et al., ICML 2023) keeps the infinite-width
limit of a deep network but lets each hidden layer's Gram matrix ``G_l``
move away from the NNGP's: it maximises

    log P(Y | G_L) - sum_l nu_l KL(N(0, G_l) || N(0, K(G_{l-1})))

over ``G_1 .. G_L``.  ``nu`` sets how strongly each Gram is tied to the
NNGP; ``nu = inf`` is the NNGP itself.  The sparse version (Milsom et al.,
ICLR 2024) learns the Grams of a few inducing points only and trains on
minibatches.  The torch core is :mod:`skinfinite._torch.dkm`.
"""
import copy
import numbers
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .._core.docstrings import TARGETS, fit_doc
from .._core.backend import TORCH_DEVICES, torch_device
from .._core.config import CarriesConfig
from .._core.progress import progress
from ._base import keeps_float32
from .._core.validation import (Interval, Options, ValidatesParameters,
                                check_positive_int)
from ..activations.definitions import get_activation
from ..linalg.cholesky import NumericalError
from ._base import NON_NEGATIVE, POSITIVE, encode_classes

KERNELS = ("nngp", "squared_exponential")
CLASSIFIER_LIKELIHOODS = ("softmax", "gaussian")
OUTPUT_LAYERS = ("auto", "exact", "variational")
_PREDICT_CHUNK = 2048
_PROBA_SAMPLES = 256


def _import_torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the install
        from .._core.install import install_hint
        raise ImportError(
            f"Deep kernel machines need PyTorch; {install_hint('gp')}.") from exc
    return torch


def _check_nu(nu, n_layers):
    values = list(nu) if np.ndim(nu) else [nu] * n_layers
    if len(values) != n_layers:
        raise ValueError(f"nu has {len(values)} entries but depth="
                         f"{n_layers + 1} learns {n_layers} layers; give one "
                         "nu or one per learned layer.")
    out = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"nu must be a positive number, got {value!r}.")
        if not value > 0:  # also rejects NaN
            raise ValueError(f"nu must be > 0 (np.inf for the NNGP), got {value}.")
        out.append(float(value))
    return out


def _check_image_shape(image_shape, filter_size):
    """``(H, W, C)`` from ``image_shape``, or None (fully connected)."""
    if image_shape is None:
        return None
    shape = tuple(np.atleast_1d(image_shape).tolist()) if np.ndim(
        image_shape) else (image_shape,)
    if len(shape) not in (2, 3):
        raise ValueError("image_shape must be (height, width) or (height, "
                         f"width, channels), got {image_shape!r}.")
    for side in shape:
        check_positive_int(side, "image_shape entries")
    f = check_positive_int(filter_size, "filter_size")
    if f % 2 == 0:
        raise ValueError(f"filter_size must be odd (same padding), got {f}.")
    return shape + (1,) * (3 - len(shape))


_PARAMS_DOC = """
    depth : int, default=3
        Number of hidden layers of the network, as in :class:`NNGPRegressor`
        (>= 2): with ``nu=np.inf`` the machine is
        ``NNGPRegressor(depth=depth)``.  The input layer's Gram ``G_0 = sw2
        <x, y> / d + sb2`` is fixed by the data and the output covariance is
        ``K(G_{depth-1})``; the ``depth - 1`` Grams ``G_1 .. G_{depth-1}``
        between them are learned.
    nu : float or sequence of float, default=100.0 (regressor), (inf, 3.0) (classifier)
        Strength of the tie of each learned layer's Gram to its NNGP prior
        (one value, or ``depth - 1`` values), > 0.  ``np.inf`` fixes a layer at the NNGP: all
        infinite is exactly the NNGP posterior.  Values of 10 to 300 worked
        for the full machine on small regression tasks (values near 1
        overfit them), 3 to 30 with ``n_inducing=20`` and
        ``output_layer="exact"``.
    n_inducing : int or None, default=None (regressor), 100 (classifier)
        None: the full machine, whose inducing points are all training
        points (cost cubic in the number of samples, one full-batch step per
        epoch).  An int: the sparse machine with that many inducing points,
        initialised on a random subset of the training inputs and trained on
        minibatches; with fewer training samples, every sample is one.
    output_layer : {"auto", "exact", "variational"}, default="auto"
        ``"exact"``: the exact Gaussian marginal likelihood over all
        training points, full-batch steps (cubic in the number of samples);
        with ``n_inducing`` set, the hidden layers' Grams still move only
        through the inducing points, a low-rank change of the NNGP's that
        cannot follow each training target.  ``"variational"``: the
        whitened variational output layer over the inducing points
        (minibatches when ``n_inducing`` is set).  ``"auto"``: with the
        Gaussian likelihood, exact for the full machine and (classifier)
        for the sparse one on vectors; variational otherwise.
        The softmax likelihood is variational only.
    layer_kernel : {"nngp", "squared_exponential"}, default="nngp"
        Layer kernel ``K(G)``: the NNGP map ``sw2 E[phi(u) phi(v)] + sb2`` of
        ``activation``, or ``exp(-(G_xx + G_yy - 2 G_xy) / 2)``.
    activation : str, Activation or callable, default="relu"
        See :mod:`skinfinite.activations.definitions`
        (``layer_kernel="nngp"`` only).
    weight_variance : float, default=2.0
        sw2, of the input layer and of the NNGP layer map.
    bias_variance : float, default=0.1
        sb2, likewise.
    image_shape : tuple of int or None, default=None
        None: fully connected layers.  ``(height, width)`` or
        ``(height, width, channels)``: each row of ``X`` is an image
        flattened in that (row-major) order, e.g. ``(8, 8)`` for
        ``load_digits``, and the layers are convolutions with ``same``
        padding, read out at every pixel by the output layer (the
        convolutional machine of Milsom et al., ICLR 2024).  The inducing
        points then have no spatial extent: the first layer's are learned
        input patches, and each layer learns how its filters mix them.
        Needs ``n_inducing`` and the variational output layer.
    filter_size : int, default=3
        Odd side of the square filters (``image_shape`` only).
    learn_inducing : bool, default=True
        Whether the sparse machine trains its inducing inputs.
    learning_rate : float, default=0.01
        Adam step size (Adam with betas (0.8, 0.9), as published).
    max_iter : int, default=100
        Number of epochs (>= 0; 0 keeps the NNGP initialisation).
    batch_size : int, default=256
        Minibatch size of the sparse machine.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data, keep the
        parameters with the best validation score and stop when it has not
        improved by ``tol`` for ``n_iter_no_change`` epochs.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=10
    tol : float, default=1e-4
    device : {"auto", "cpu", "gpu", "cuda"}, default="auto"
        Where torch trains the machine ("gpu" and "cuda" both mean the CUDA
        device); "auto" follows ``skinfinite.config_context(device=...)``,
        then uses CUDA when torch sees it.
    dtype : {"float64", "float32"}, default="float64"
    random_state : int, RandomState or None, default=None
        Seeds the inducing subset, the minibatch order and the Monte Carlo
        draws: fits are deterministic given an int.
    verbose : int, default=0
        0 is silent; 1 reports the training epochs (a progress bar when
        stderr is a terminal, else a line with the loss per tenth of them),
        2 a line per epoch."""

_ATTRS_DOC = """
    inducing_points_ : ndarray of shape (n_inducing, n_features)
        Inducing inputs (the training inputs of the full machine); with
        ``image_shape``, inducing patches of shape (n_inducing,
        filter_size * filter_size * channels).
    loss_curve_ : list of float
        Negative objective per training sample, averaged over each epoch.
    validation_scores_ : list of float or None
        Validation score per epoch (``early_stopping`` only).
    n_iter_ : int
        Epochs run.
    n_features_in_ : int"""


#: Allowed values of the parameters both machines take.
_DKM_CONSTRAINTS = {
    "depth": [Interval(Integral, 2, None, closed="left")],
    "nu": [Interval(Real, 0, None, closed="right"), "sequence"],
    "n_inducing": [Interval(Integral, 1, None, closed="left"), None],
    "output_layer": [Options(*OUTPUT_LAYERS)],
    "layer_kernel": [Options(*KERNELS)],
    "activation": [str, "callable"],
    "weight_variance": [POSITIVE],
    "bias_variance": [NON_NEGATIVE],
    "image_shape": ["sequence", None],
    "filter_size": [Interval(Integral, 1, None, closed="left")],
    "alpha": [POSITIVE],
    "learn_inducing": ["boolean"],
    "learning_rate": [POSITIVE],
    "max_iter": [Interval(Integral, 0, None, closed="left")],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
    "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
    "tol": [NON_NEGATIVE],
    "device": [Options(*TORCH_DEVICES)],
    "dtype": [Options("float64", "float32")],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}


class _DeepKernelMachineBase(ValidatesParameters, CarriesConfig,
                             BaseEstimator):
    """Validation, the torch model and the training loop."""

    _likelihood = None
    # output_layer="auto" with the Gaussian likelihood and inducing points:
    # exact output layer (the classifier's default setting) or variational
    _auto_exact = False

    def _model_likelihood(self):
        return self._likelihood

    # ----------------------------------------------------------- settings
    def _settings(self):
        torch = _import_torch()
        # the first hidden layer's Gram is fixed by the data
        n_layers = int(self.depth) - 1
        kernel = self.layer_kernel
        settings = dict(
            torch=torch, n_layers=n_layers, nus=_check_nu(self.nu, n_layers),
            kernel=kernel,
            activation=get_activation(self.activation) if kernel == "nngp" else None,
            weight_variance=float(self.weight_variance),
            bias_variance=float(self.bias_variance),
            learning_rate=float(self.learning_rate),
            max_iter=int(self.max_iter),
            batch_size=int(self.batch_size),
            dtype=getattr(torch, self.dtype),
            device=torch_device(torch, self.device))
        output_layer = self.output_layer
        likelihood = self._model_likelihood()
        if output_layer == "exact" and likelihood != "gaussian":
            raise ValueError("output_layer='exact' needs the Gaussian "
                             "likelihood; the softmax output layer is "
                             "variational.")
        settings["exact"] = likelihood == "gaussian" and (
            output_layer == "exact"
            or (output_layer == "auto" and (
                self.n_inducing is None
                or (self._auto_exact and self.image_shape is None))))
        settings["image_shape"] = _check_image_shape(self.image_shape,
                                                     self.filter_size)
        if settings["image_shape"] is not None:
            if self.n_inducing is None:
                raise ValueError(
                    "image_shape needs n_inducing: the inducing points of a "
                    "convolutional machine are not training images.")
            if output_layer == "exact":
                raise ValueError(
                    "image_shape needs output_layer='variational' (or "
                    "'auto'); the exact output layer is fully connected only.")
            settings["exact"] = False
        return settings

    def _build(self, s, Z, n_outputs, X_train=None):
        """The torch model; ``X_train`` for an exact output layer over
        training points that are not the inducing points."""
        from .._torch.dkm import DeepKernelMachine, LayerKernel

        layer_kernel = LayerKernel(s["kernel"], s["activation"],
                                   s["weight_variance"], s["bias_variance"])
        sparse = self.n_inducing is not None
        machine, extra = DeepKernelMachine, {}
        if s["image_shape"] is not None:
            from .._torch.conv_dkm import ConvolutionalDeepKernelMachine

            generator = self._torch.Generator()
            generator.manual_seed(s.get("seed", 0))
            machine = ConvolutionalDeepKernelMachine
            extra = dict(image_shape=s["image_shape"],
                         filter_size=int(self.filter_size),
                         generator=generator)
        return machine(
            layer_kernel, Z, nus=s["nus"], likelihood=self._model_likelihood(),
            n_outputs=n_outputs, exact=s["exact"],
            learn_inducing=sparse and bool(self.learn_inducing),
            noise_variance=getattr(self, "alpha", 1.0),
            weight_variance=s["weight_variance"],
            bias_variance=s["bias_variance"],
            n_mc_samples=getattr(self, "n_mc_samples", 8),
            train_inputs=X_train,
            learn_output_scale=(bool(getattr(self, "learn_output_scale", False))
                                and self._model_likelihood() == "softmax"),
            **extra)

    def _tensor(self, a, dtype=None):
        torch = self._torch
        return torch.as_tensor(np.require(a, requirements=['C', 'W']),
                               device=self._device,
                               dtype=self._dtype if dtype is None else dtype)

    # ------------------------------------------------------------ training
    def _fit(self, X, T, init_targets, stratify=None):
        """Train on inputs ``X`` with likelihood targets ``T`` (float
        (n, C) or int labels) and initialisation targets (n, C)."""
        s = self._settings()
        torch = self._torch = s["torch"]
        self._dtype, self._device = s["dtype"], s["device"]
        rng = check_random_state(self.random_state)
        generator = torch.Generator(device=self._device)
        generator.manual_seed(int(rng.randint(2**31 - 1)))
        X_val = T_val = None
        if self.early_stopping:
            X, X_val, T, T_val, init_targets, _ = train_test_split(
                X, T, init_targets, test_size=self.validation_fraction,
                random_state=rng, stratify=stratify)
        n = X.shape[0]
        image_shape = s["image_shape"]
        if image_shape is not None and np.prod(image_shape) != X.shape[1]:
            raise ValueError(
                f"X has {X.shape[1]} features but image_shape {image_shape} "
                f"has {int(np.prod(image_shape))} pixel values.")
        if self.n_inducing is None:
            Z = X
        elif image_shape is not None:
            from .._torch.conv_dkm import sample_patches

            # seeds the initial inducing mixes of the convolutional layers
            s["seed"] = int(rng.randint(2**31 - 1))
            Z = sample_patches(X.reshape((n,) + image_shape),
                               self.n_inducing, int(self.filter_size), rng)
        else:
            # more inducing points than samples: every sample is one
            Z = X[np.sort(rng.choice(n, min(self.n_inducing, n),
                                     replace=False))]
        Xt, Tt = self._tensor(X), self._targets_tensor(T)
        sparse = self.n_inducing is not None
        model = self._build(s, self._tensor(Z), init_targets.shape[1],
                            Xt if sparse and s["exact"] else None)
        self._T_train = T if model.exact else None
        # minibatches only where the output layer is a sum over points
        minibatch = sparse and not model.exact
        chunks = ([Xt[i:i + _PREDICT_CHUNK] for i in range(0, n, _PREDICT_CHUNK)]
                  if minibatch else None)
        model.initialize(chunks, self._tensor(init_targets))
        self.loss_curve_, self.validation_scores_ = [], None
        params = [p for p in model.parameters() if p.requires_grad]
        epochs = s["max_iter"] if params else 0
        optimizer = (torch.optim.Adam(params, lr=s["learning_rate"],
                                      betas=(0.8, 0.9)) if params else None)
        best = (-np.inf, copy.deepcopy(model.state_dict()))
        if self.early_stopping:
            self.validation_scores_ = []
        stall = 0
        P = Z.shape[0]
        # per point and layer: ~20 P flops per inducing point, at every
        # pixel and filter offset of a convolutional machine
        per_point = 20 * P * (1 if image_shape is None else
                              np.prod(image_shape[:2]) * self.filter_size ** 2)
        work = epochs * s["n_layers"] * (n * per_point + P ** 3 // 3)
        self.n_iter_ = 0
        with progress(epochs, work, type(self).__name__, unit="epoch",
                      always=True) as bar:
            for epoch in range(epochs):
                if minibatch:
                    order = rng.permutation(n)
                    batches = [order[i:i + s["batch_size"]]
                               for i in range(0, n, s["batch_size"])]
                else:
                    batches = [None]
                total = 0.0
                for step, idx in enumerate(batches):
                    optimizer.zero_grad()
                    loss = self._step_loss(model, Xt, Tt, idx, n, generator,
                                           epoch, step, s)
                    loss.backward()
                    optimizer.step()
                    total += float(loss.detach()) * (1 if idx is None else len(idx))
                self.loss_curve_.append(total / (n if minibatch else 1))
                self.n_iter_ = epoch + 1
                bar.set_postfix(loss=self.loss_curve_[-1])
                bar.update(1)
                if self.early_stopping:
                    score = self._score_tensors(model, X_val, T_val)
                    self.validation_scores_.append(score)
                    if score > best[0] + self.tol:
                        best, stall = (score, copy.deepcopy(model.state_dict())), 0
                    else:
                        stall += 1
                        if score > best[0]:
                            best = (score, copy.deepcopy(model.state_dict()))
                    if stall >= self.n_iter_no_change:
                        break
        if self.early_stopping and np.isfinite(best[0]):
            model.load_state_dict(best[1])
        self._store(model, s)
        return self

    def _step_loss(self, model, Xt, Tt, idx, n, generator, epoch, step, s):
        cause = None
        try:
            if idx is None:
                objective, _ = model.objective(None, Tt, n, generator)
            else:
                index = self._torch.as_tensor(idx, device=self._device)
                objective, _ = model.objective(Xt[index], Tt[index], n,
                                               generator)
            loss = -objective / n
        except NumericalError as exc:
            cause = str(exc)
        else:
            if not bool(self._torch.isfinite(loss)):
                cause = "the loss is not finite"
        if cause is not None:
            raise FloatingPointError(
                f"Training diverged at epoch {epoch + 1}, step {step + 1}: "
                f"{cause}. Lower learning_rate (now {s['learning_rate']:g}), "
                "raise nu or standardise the inputs.")
        return loss

    def _store(self, model, s):
        self._config = {k: s[k] for k in ("nus", "kernel", "activation",
                                          "weight_variance", "bias_variance")}
        self._state = {k: v.detach().cpu().numpy()
                       for k, v in model.state_dict().items()}
        self._n_outputs = (model.q_mean.shape[1] if hasattr(model, "q_mean")
                           else self._T_train.shape[1])
        self.inducing_points_ = self._state["Z"].copy()
        if self._model_likelihood() == "gaussian":
            self.alpha_ = float(np.exp(self._state["log_noise"]))
        if isinstance(self, ClassifierMixin):
            self.output_scale_ = float(np.exp(
                self._state.get("log_output_scale", 0.0)))
        del self._torch, self._device, self._dtype

    # ---------------------------------------------------------- prediction
    def _restore(self):
        check_is_fitted(self, "_state")
        s = self._settings()
        self._torch, self._dtype, self._device = s["torch"], s["dtype"], s["device"]
        s.update(self._config)
        X_train = self._state.get("X_train")
        model = self._build(s, self._tensor(self._state["Z"]), self._n_outputs,
                            None if X_train is None else self._tensor(X_train))
        model.load_state_dict({k: self._tensor(v) for k, v in self._state.items()})
        return model

    def _marginals(self, model, X):
        torch = self._torch
        y_train = (None if self._T_train is None
                   else self._tensor(self._T_train))
        means, variances = [], []
        # an exact output layer over non-inducing training points carries
        # the (n + chunk)^2 block of training and test points: smaller chunks
        chunk = _PREDICT_CHUNK if model.X_train is None else _PREDICT_CHUNK // 4
        with torch.no_grad():
            for i in range(0, X.shape[0], chunk):
                m, v = model.latent_marginals(self._tensor(X[i:i + chunk]),
                                              y_train)
                means.append(m)
                variances.append(v)
        return torch.cat(means), torch.cat(variances)

    def _predict_marginals(self, X):
        check_is_fitted(self, "_state")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        model = self._restore()
        try:
            mean, var = self._marginals(model, X)
            return mean.cpu().numpy(), var.cpu().numpy()
        finally:
            del self._torch, self._device, self._dtype

    def layer_grams(self, X=None):
        """The learned Gram matrices ``G_1 .. G_L`` (and the output
        covariance ``K(G_L)``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), optional
            Points at which to evaluate them; by default the inducing points.

        Returns
        -------
        grams : list of ndarray
            ``depth - 1`` Gram matrices, then the output covariance; each of
            shape (n_inducing, n_inducing), or (n_samples, n_inducing) blocks
            between ``X`` and the inducing points when ``X`` is given.
        """
        check_is_fitted(self, "_state")
        if X is not None:
            X = validate_data(self, X, reset=False, dtype=np.float64)
        model = self._restore()
        try:
            with self._torch.no_grad():
                K_top, _, grams = model.propagate(
                    None if X is None else self._tensor(X))
            blocks = [(G.ii if X is None else G.ti) for G in grams + [K_top]]
            return [b.cpu().numpy() for b in blocks]
        finally:
            del self._torch, self._device, self._dtype


class DeepKernelMachineRegressor(RegressorMixin, _DeepKernelMachineBase):
    __doc__ = """Deep kernel machine regression (Gaussian likelihood, learned noise).

    Targets are standardised; the noise variance is learned.  The full
    machine maximises the exact marginal likelihood of the top layer; the
    sparse one a variational bound with minibatches, or with
    ``output_layer="exact"`` the exact marginal likelihood over all training
    points while the hidden layers move through the inducing points (the
    better choice on small data sets).  Training starts at the NNGP
    posterior.

    Parameters
    ----------""" + _PARAMS_DOC + """
    alpha : float, default=0.1
        Initial noise variance, relative to the standardised targets (> 0).

    Attributes
    ----------""" + _ATTRS_DOC + """
    alpha_ : float
        Learned noise variance (standardised targets).

    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite.models import DeepKernelMachineRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 3)); y = np.sin(X[:, 0])
    >>> dkm = DeepKernelMachineRegressor(max_iter=5, random_state=0).fit(X, y)
    >>> dkm.predict(X[:3]).shape
    (3,)
    >>> dkm = DeepKernelMachineRegressor(n_inducing=10, output_layer="exact",
    ...                                  max_iter=5, random_state=0).fit(X, y)
    >>> dkm.inducing_points_.shape
    (10, 3)
    """

    _likelihood = "gaussian"
    _parameter_constraints = _DKM_CONSTRAINTS

    def __init__(self, depth=3, nu=100.0, n_inducing=None,
                 output_layer="auto", layer_kernel="nngp",
                 activation="relu", weight_variance=2.0, bias_variance=0.1,
                 image_shape=None, filter_size=3,
                 alpha=0.1, learn_inducing=True, learning_rate=0.01,
                 max_iter=100, batch_size=256, early_stopping=False,
                 validation_fraction=0.1, n_iter_no_change=10, tol=1e-4,
                 device="auto", dtype="float64", random_state=None,
                 verbose=0):
        self.depth = depth
        self.nu = nu
        self.n_inducing = n_inducing
        self.output_layer = output_layer
        self.layer_kernel = layer_kernel
        self.activation = activation
        self.weight_variance = weight_variance
        self.bias_variance = bias_variance
        self.image_shape = image_shape
        self.filter_size = filter_size
        self.alpha = alpha
        self.learn_inducing = learn_inducing
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    @fit_doc("Train the machine.", y=TARGETS)
    def fit(self, X, y):
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True,
                             ensure_min_samples=2, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        self._y_1d = y.ndim == 1
        Y = y.reshape(len(y), -1)
        self._y_mean = Y.mean(axis=0)
        self._y_scale = Y.std(axis=0)
        self._y_scale[self._y_scale == 0] = 1.0
        Y = (Y - self._y_mean) / self._y_scale
        return self._fit(X, Y, Y)

    def _targets_tensor(self, T):
        return self._tensor(T)

    def _score_tensors(self, model, X, T):
        mean, _ = self._marginals(model, X)
        resid = T - mean.cpu().numpy()
        return float(1.0 - (resid ** 2).sum() / max((T ** 2).sum(), 1e-300))

    @keeps_float32
    def predict(self, X, return_std=False):
        """Predictive mean, and optionally the standard deviation of the
        latent function (without the noise, as :class:`NNGPRegressor`).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        return_std : bool, default=False

        Returns
        -------
        y_mean : ndarray of shape (n_samples,) or (n_samples, n_targets)
        y_std : ndarray, optional
        """
        mean, var = self._predict_marginals(X)
        mean = mean * self._y_scale + self._y_mean
        std = np.sqrt(np.clip(var, 0.0, None)) * self._y_scale
        if self._y_1d:
            mean, std = mean[:, 0], std[:, 0]
        return (mean, std) if return_std else mean

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


class DeepKernelMachineClassifier(ClassifierMixin, _DeepKernelMachineBase):
    __doc__ = """Deep kernel machine classification.

    One output function per class.  Two likelihoods:

    * ``likelihood="softmax"``: a variational Gaussian top layer whose
      expected softmax log-likelihood is estimated by Monte Carlo; training
      starts at the NNGP, with the top layer at the NNGP posterior of scaled
      one-hot targets.
    * ``likelihood="gaussian"``: regression onto centred one-hot targets
      ``onehot(y) - 1 / n_classes`` with a learned noise variance, the
      regression :class:`NNGPClassifier` does.  The full machine
      (``n_inducing=None``) uses the exact marginal likelihood and starts
      at ``NNGPClassifier(depth=depth, alpha=alpha)``
      (``max_iter=0`` predicts the same classes; the outputs agree to
      rounding with ``nu=np.inf`` and up to the ``1e-5`` relative prior
      nugget otherwise); training then moves the Grams and the noise to
      raise the objective.
      The class is the largest output.

    Parameters
    ----------""" + _PARAMS_DOC + """
    likelihood : {"softmax", "gaussian"}, default="gaussian"
        See above.
    n_mc_samples : int, default=8
        Monte Carlo samples of the softmax likelihood per training step
        (``likelihood="softmax"``).
    alpha : float, default=1e-2
        Initial noise variance of ``likelihood="gaussian"`` (> 0).
    temperature : float, default=0.1
        ``likelihood="gaussian"``: ``predict_proba`` returns
        ``softmax(f / temperature)`` of the posterior mean outputs ``f``,
        as :class:`NNGPClassifier` does.
    learn_output_scale : bool, default=False
        ``likelihood="softmax"``: learn an amplitude ``s`` of the output
        functions (the top layer's covariance is ``s^2 K(G_L)``, an inverse
        softmax temperature) with the other parameters.  Without it the
        softmax can only grow confident by moving the variational top
        layer away from its prior.

    Attributes
    ----------""" + _ATTRS_DOC + """
    classes_ : ndarray of shape (n_classes,)
    alpha_ : float
        Learned noise variance (``likelihood="gaussian"`` only).
    output_scale_ : float
        Learned output amplitude ``s`` (``learn_output_scale=True`` with the
        softmax likelihood), else 1.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skinfinite.models import DeepKernelMachineClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = DeepKernelMachineClassifier(max_iter=5, random_state=0)
    >>> clf.fit(X, y).score(X, y) > 0.9
    True
    >>> clf = DeepKernelMachineClassifier(likelihood="gaussian", max_iter=5)
    >>> clf.fit(X, y).score(X, y) > 0.9
    True

    Images, with convolutional layers (3 x 3 filters, 16 inducing patches):

    >>> from sklearn.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> conv = DeepKernelMachineClassifier(image_shape=(8, 8), n_inducing=16,
    ...                                    max_iter=2, random_state=0)
    >>> conv.fit(X[:100] / 16, y[:100]).inducing_points_.shape
    (16, 9)
    """

    _likelihood = "softmax"
    _auto_exact = True
    _parameter_constraints = {
        **_DKM_CONSTRAINTS,
        "likelihood": [Options(*CLASSIFIER_LIKELIHOODS)],
        "n_mc_samples": [Interval(Integral, 1, None, closed="left")],
        "temperature": [POSITIVE],
        "learn_output_scale": ["boolean"],
    }

    def __init__(self, depth=3, nu=(np.inf, 3.0), n_inducing=100,
                 output_layer="auto", layer_kernel="nngp",
                 activation="relu", weight_variance=2.0, bias_variance=0.1,
                 image_shape=None, filter_size=3,
                 learn_inducing=True, learning_rate=0.01, max_iter=100,
                 batch_size=256, likelihood="gaussian", n_mc_samples=8,
                 alpha=1e-2, temperature=0.1,
                 learn_output_scale=False, early_stopping=False,
                 validation_fraction=0.1, n_iter_no_change=10, tol=1e-4,
                 device="auto", dtype="float64", random_state=None,
                 verbose=0):
        self.depth = depth
        self.nu = nu
        self.n_inducing = n_inducing
        self.output_layer = output_layer
        self.layer_kernel = layer_kernel
        self.activation = activation
        self.weight_variance = weight_variance
        self.bias_variance = bias_variance
        self.image_shape = image_shape
        self.filter_size = filter_size
        self.learn_inducing = learn_inducing
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.likelihood = likelihood
        self.n_mc_samples = n_mc_samples
        self.alpha = alpha
        self.temperature = temperature
        self.learn_output_scale = learn_output_scale
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    def _model_likelihood(self):
        return self.likelihood

    @fit_doc("Train the machine.")
    def fit(self, X, y):
        X, y = validate_data(self, X, y, ensure_min_samples=2, dtype=np.float64)
        check_classification_targets(y)
        likelihood = self._model_likelihood()
        labels = encode_classes(self, y)
        k = len(self.classes_)
        centred = np.eye(k)[labels] - 1.0 / k
        if likelihood == "gaussian":
            return self._fit(X, centred, centred, stratify=labels)
        # the NNGP posterior mean of these targets has logit gaps of ~4
        return self._fit(X, labels, 4.0 * centred, stratify=labels)

    def _targets_tensor(self, T):
        if self._model_likelihood() == "gaussian":
            return self._tensor(T)
        return self._tensor(T, dtype=self._torch.int64)

    def _score_tensors(self, model, X, T):
        mean, _ = self._marginals(model, X)
        labels = T.argmax(1) if T.ndim == 2 else T
        return float(np.mean(mean.cpu().numpy().argmax(1) == labels))

    def predict_proba(self, X):
        """Class probabilities.

        ``likelihood="softmax"``: the softmax averaged over the posterior of
        the output functions (Monte Carlo, seeded by ``random_state``).
        ``likelihood="gaussian"``: ``softmax(f / temperature)`` of the
        posterior mean outputs ``f``.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        mean, var = self._predict_marginals(X)
        if self._model_likelihood() == "gaussian":
            z = mean / self.temperature
            z -= z.max(axis=1, keepdims=True)
            p = np.exp(z)
            return p / p.sum(axis=1, keepdims=True)
        torch = _import_torch()
        from .._torch.dkm import softmax_predictive

        generator = torch.Generator()
        seed = self.random_state if isinstance(self.random_state,
                                               numbers.Integral) else 0
        generator.manual_seed(int(seed))
        proba = softmax_predictive(torch.as_tensor(mean), torch.as_tensor(var),
                                   _PROBA_SAMPLES, generator)
        return proba.numpy()

    def predict(self, X):
        """Most probable class."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]
