"""The compared models: the registry, its factories and a kernel ridge classifier."""
import fnmatch
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.kernel_ridge import KernelRidge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelBinarizer, StandardScaler
from sklearn.svm import SVC, SVR
from sklearn.utils.multiclass import unique_labels
from sklearn.utils.validation import check_is_fitted

from ..datasets._tabular import CLASSIFICATION, REGRESSION, TASKS
from ._errors import BenchmarkError

__all__ = ["RIDGE", "TABULAR", "SEQUENCES", "KernelRidgeClassifier", "ModelSpec",
           "MODELS", "list_models", "select_models", "make_model"]

# Ridge (noise variance) of every kernel machine: the NTK and NNGP models use
# the same penalty as the RBF kernel ridge baseline.  Regression targets are
# standardised, so it is a noise level relative to the target variance.
RIDGE = 1.0

# Kinds of input a model reads: rows of features, or paths (time series).
TABULAR = "tabular"
SEQUENCES = "sequences"


class KernelRidgeClassifier(ClassifierMixin, BaseEstimator):
    """Kernel ridge regression on one-hot (+1/-1) class indicators.

    The predicted class is the one with the largest regressed indicator, as in
    :class:`~sklearn.linear_model.RidgeClassifier` but with a kernel.

    Parameters
    ----------
    alpha : float, default=1.0
        Ridge penalty.
    kernel : str or callable, default="rbf"
        Passed to :class:`~sklearn.kernel_ridge.KernelRidge`.
    gamma : float, optional
        Kernel coefficient; ``None`` uses the scikit-learn default
        (1 / n_features for "rbf").

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skinfinite.benchmark import KernelRidgeClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = KernelRidgeClassifier().fit(X, y)
    >>> round(clf.score(X, y), 2) > 0.9
    True
    """

    def __init__(self, alpha=1.0, kernel="rbf", gamma=None):
        self.alpha = alpha
        self.kernel = kernel
        self.gamma = gamma

    def fit(self, X, y):
        self.classes_ = unique_labels(y)
        self._binarizer = LabelBinarizer(neg_label=-1, pos_label=1).fit(y)
        Y = self._binarizer.transform(y).astype(float)
        self.ridge_ = KernelRidge(alpha=self.alpha, kernel=self.kernel,
                                  gamma=self.gamma).fit(X, Y)
        self.n_features_in_ = self.ridge_.n_features_in_
        return self

    def decision_function(self, X):
        check_is_fitted(self, "ridge_")
        scores = self.ridge_.predict(X)
        return scores.ravel() if scores.shape[1] == 1 else scores

    def predict(self, X):
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[np.argmax(scores, axis=1)]


def _infinite(family, activation, depth, architecture="fully_connected"):
    """Factory of an NTK / NNGP estimator with the given architecture."""
    def factory(task, seed):
        from .. import models  # imported late: only needed when actually run

        prefix = "NTK" if family == "ntk" else "NNGP"
        suffix = "Classifier" if task == CLASSIFICATION else "Regressor"
        cls = getattr(models, prefix + suffix)
        extra = ({"architecture": "resnet", "weight_variance": 1.0}
                 if architecture == "resnet" else {})
        return cls(depth=depth, activation=activation, alpha=RIDGE, **extra)
    return factory


def _selecting(family, activation):
    """Factory of a selecting NTK / NNGP estimator (depth and alpha chosen by
    exact leave-one-out on the training fold, default grids; the default
    activations where ``activation`` is None)."""
    def factory(task, seed):
        from .. import models

        prefix = "NTK" if family == "ntk" else "NNGP"
        suffix = "ClassifierCV" if task == CLASSIFICATION else "RegressorCV"
        cls = getattr(models, prefix + suffix)
        return cls() if activation is None else cls(activations=(activation,))
    return factory


def _deep_kernel_machine(task, seed):
    """Factory of a deep kernel machine (2 learned ReLU layers).

    Regression: 20 inducing points for the learned layers and the exact
    output layer over all training points, nu=10 (the setting that
    cross-validation picked most often in docs/performance.rst).
    Classification: the classifier's defaults (100 inducing points, exact
    Gaussian output layer on one-hot targets, nu=(inf, 3), 100 epochs).
    """
    from .. import models  # imported late: needs torch, only when run

    if task == CLASSIFICATION:
        return models.DeepKernelMachineClassifier(
            depth=3, device="cpu", random_state=seed)
    return models.DeepKernelMachineRegressor(
        depth=3, nu=10.0, n_inducing=20, output_layer="exact",
        max_iter=200, device="cpu", random_state=seed)


def _infinite_depth_limit(task, seed):
    """Factory of the classifier an infinitely deep erf NTK becomes."""
    from .. import models

    return models.InfiniteDepthNTKClassifier(activation="erf")


def _svm(task, seed):
    if task == CLASSIFICATION:
        return SVC(kernel="rbf", gamma="scale")
    return SVR(kernel="rbf", gamma="scale")


def _krr(task, seed):
    if task == CLASSIFICATION:
        return KernelRidgeClassifier(alpha=RIDGE, kernel="rbf")
    return KernelRidge(alpha=RIDGE, kernel="rbf")


def _forest(task, seed):
    cls = RandomForestClassifier if task == CLASSIFICATION else RandomForestRegressor
    return cls(n_estimators=200, random_state=seed)


def _resampled_svm(task, seed):
    from sklearn.pipeline import make_pipeline

    from ._sequence_features import ResampledSeries

    return make_pipeline(ResampledSeries(n_points=SEQUENCE_POINTS, layout=SEQUENCE_LAYOUT),
                         StandardScaler(), _svm(task, seed))


def _summary_forest(task, seed):
    from sklearn.pipeline import make_pipeline

    from ._sequence_features import SeriesSummary

    return make_pipeline(SeriesSummary(layout=SEQUENCE_LAYOUT), _forest(task, seed))


# Points every path is resampled to for the RBF SVM baseline on sequences.
SEQUENCE_POINTS = 32

# The time-series datasets come from skinfinite's loaders, (length, n_channels)
# per path; said explicitly so that no shape is left to layout="auto".
SEQUENCE_LAYOUT = "ntc"

# Grid searched by 3-fold cross-validation on the training split for the
# neural signature kernel (the rest of its settings are fixed).
SIGNATURE_C = [1.0, 100.0]
SIGNATURE_ALPHA = [1e-2, 1.0]
# Seconds of built-in model selection per fit of the selecting estimators.
SIGNATURE_TIME_BUDGET = 30.0


def _signature_select(task, seed):
    from ..models import SignatureKernelClassifier, SignatureKernelRegressor

    if task == CLASSIFICATION:
        return SignatureKernelClassifier(time_budget=SIGNATURE_TIME_BUDGET,
                                         layout=SEQUENCE_LAYOUT)
    return SignatureKernelRegressor(time_budget=SIGNATURE_TIME_BUDGET,
                                         layout=SEQUENCE_LAYOUT)


def _neural_signature_search(task, seed):
    from sklearn.model_selection import GridSearchCV

    from ..kernels import NeuralSignatureKernel
    from ..models import SignatureKernelClassifier, SignatureKernelRegressor

    kernel = NeuralSignatureKernel("relu", bias_variance=0.1, time_augment=True)
    if task == CLASSIFICATION:
        return GridSearchCV(SignatureKernelClassifier(kernel=kernel, path_scale=0.1,
                                                      layout=SEQUENCE_LAYOUT),
                            {"C": SIGNATURE_C}, cv=3)
    return GridSearchCV(SignatureKernelRegressor(kernel=kernel, path_scale=0.1,
                                                 layout=SEQUENCE_LAYOUT),
                        {"alpha": SIGNATURE_ALPHA}, cv=3)


@dataclass(frozen=True)
class ModelSpec:
    """One entry of the model registry.

    Attributes
    ----------
    name : str
        Short identifier used on the command line and in the results.
    family : str
        ``"ntk"``, ``"nngp"``, ``"dkm"`` or ``"baseline"``.
    description : str
    factory : callable
        ``factory(task, seed)`` returns a fresh, unfitted estimator for
        ``task`` (without preprocessing).
    default : bool
        Whether the model runs when no model filter is given.
    inputs : {"tabular", "sequences"}
        What the model reads: rows of features (tabular datasets), or paths
        (the time-series datasets).  A dataset runs only the selected models
        that read its kind of input.
    tasks : tuple of {"classification", "regression"}
        The tasks the model solves; a dataset of another task skips it.
    """

    name: str
    family: str
    description: str
    factory: Callable
    default: bool = True
    inputs: str = TABULAR
    tasks: tuple = TASKS


def _infinite_spec(family, activation, depth, default):
    label = "NTK" if family == "ntk" else "NNGP"
    layers = "1 hidden layer" if depth == 1 else f"{depth} hidden layers"
    return ModelSpec(
        f"{family}_{activation}_d{depth}", family,
        f"{label}, {activation} network with {layers}, alpha={RIDGE:g}",
        _infinite(family, activation, depth), default)


def _selecting_spec(family, activation, default):
    from ..models.selection import ALPHAS, DEPTHS, NTK_REGRESSOR_ACTIVATIONS
    label = "NTK" if family == "ntk" else "NNGP"
    if activation is None:
        name = f"{family}_cv"
        network = ("ReLU network (regression: "
                   + " or ".join(NTK_REGRESSOR_ACTIVATIONS)
                   + ", the second kept only if clearly better)"
                   if family == "ntk" else "ReLU network")
    else:
        name = f"{family}_{activation}_cv"
        network = f"{activation} network"
    return ModelSpec(
        name, family,
        f"{label}, {network}, depth in {list(DEPTHS)} and "
        f"{len(ALPHAS)} alphas from {min(ALPHAS):g} to {max(ALPHAS):g} chosen "
        "by exact leave-one-out on the training fold",
        _selecting(family, activation), default)


def _resnet_spec(family, activation, default):
    label = "NTK" if family == "ntk" else "NNGP"
    return ModelSpec(
        f"{family}_resnet_{activation}_dinf", family,
        f"{label}, infinitely deep {activation} ResNet (1/sqrt(depth) "
        f"branches, weight_variance=1), alpha={RIDGE:g}",
        _infinite(family, activation, np.inf, "resnet"), default)


def _sequence_specs():
    """Models of the time-series datasets: sequence kernels and baselines."""
    return [
        ModelSpec("sig_select", "signature",
                  "SignatureKernelClassifier / SignatureKernelRegressor with "
                  "their defaults: kernel (signature, convolutional, RBF on "
                  "the series, signature + RBF), scales, path options and C / "
                  "alpha chosen at fit by cross-validation on the training "
                  f"split, time_budget={SIGNATURE_TIME_BUDGET:g}s",
                  _signature_select, inputs=SEQUENCES),
        ModelSpec("neural_sig_relu", "signature",
                  "neural signature kernel (ReLU controlled ResNet, bias variance "
                  "0.1, time augmentation, path_scale=0.1) SVC / kernel ridge; C / "
                  "alpha chosen by 3-fold CV on the training split",
                  _neural_signature_search, default=False, inputs=SEQUENCES),
        ModelSpec("svm_rbf_resampled", "baseline",
                  f"RBF SVM (gamma='scale') on paths resampled to "
                  f"{SEQUENCE_POINTS} points, flattened and standardised",
                  _resampled_svm, inputs=SEQUENCES),
        ModelSpec("rf_summary", "baseline",
                  "random forest, 200 trees, on per-channel summary statistics",
                  _summary_forest, inputs=SEQUENCES),
    ]


def _build_registry():
    # Infinite-width networks: the selecting estimators by default (depth and
    # alpha chosen on each training fold), fixed depths on request.
    specs = [_selecting_spec(family, None, True) for family in ("ntk", "nngp")]
    specs += [_selecting_spec("ntk", "relu", False)]
    specs += [_selecting_spec(family, "erf", False)
              for family in ("ntk", "nngp")]
    architectures = [("relu", 1), ("relu", 2), ("relu", 3), ("relu", 5),
                     ("leaky_relu", 3), ("abs", 3), ("erf", 1), ("erf", 3),
                     ("tanh", 3), ("gelu", 3), ("sin", 3), ("identity", 1)]
    specs += [_infinite_spec(family, activation, depth, False)
              for family in ("ntk", "nngp") for activation, depth in architectures]
    specs += [_resnet_spec(family, activation, activation == "relu")
              for family in ("ntk", "nngp") for activation in ("relu", "erf")]
    # opt-in: needs torch and trains by gradient steps (seconds per fold)
    specs.append(ModelSpec(
        "dkm_relu_l2", "dkm",
        "deep kernel machine, 2 learned ReLU layers (NNGP depth 3); "
        "regression: 20 inducing points, exact output layer, nu=10, 200 Adam "
        "epochs; classification: 100 inducing points, exact Gaussian output "
        "layer, nu=(inf, 3), 100 epochs (needs torch)",
        _deep_kernel_machine, default=False))
    specs.append(ModelSpec(
        "ntk_limit_erf", "ntk",
        "infinitely deep erf NTK: its limit classifier (singular kernel "
        "(1 - <x, z>)^-alpha on the unit sphere)", _infinite_depth_limit,
        default=False, tasks=(CLASSIFICATION,)))
    specs += [
        ModelSpec("svm_rbf", "baseline",
                  "support vector machine, RBF kernel, gamma='scale' (SVC / SVR)",
                  _svm),
        ModelSpec("krr_rbf", "baseline",
                  "kernel ridge, RBF kernel, alpha=1 (one-vs-rest for classes)",
                  _krr),
        ModelSpec("rf", "baseline", "random forest, 200 trees", _forest),
    ]
    specs += _sequence_specs()
    return {spec.name: spec for spec in specs}


#: The model registry: name -> :class:`ModelSpec`.
MODELS = _build_registry()


def list_models(include_all=True):
    """Return the model registry as a list of specs.

    Parameters
    ----------
    include_all : bool, default=True
        If False, only the models run by default.

    Returns
    -------
    specs : list of ModelSpec

    Examples
    --------
    >>> from skinfinite.benchmark import list_models
    >>> [s.name for s in list_models(include_all=False)][:2]
    ['ntk_cv', 'nngp_cv']
    """
    return [s for s in MODELS.values() if include_all or s.default]


def select_models(patterns=None):
    """Resolve model names or patterns to registry names.

    Parameters
    ----------
    patterns : str or iterable of str, optional
        Model names or shell-style wildcards (``"ntk_*"``, ``"*relu*"``),
        possibly comma-separated; ``"all"`` selects every registered model
        and ``"default"`` the default set.  ``None`` selects the default set.
        A name without a wildcard selects only the model of that exact name.

    Returns
    -------
    names : list of str
        Without repeats, in the order of the patterns (the models one pattern
        matches in registry order).

    Raises
    ------
    BenchmarkError
        If a pattern matches no model.

    Examples
    --------
    >>> from skinfinite.benchmark import select_models
    >>> select_models("rf,svm_rbf")
    ['rf', 'svm_rbf']
    >>> select_models("ntk_relu_*")
    ['ntk_relu_cv', 'ntk_relu_d1', 'ntk_relu_d2', 'ntk_relu_d3', 'ntk_relu_d5']
    """
    if patterns is None:
        return [s.name for s in list_models(include_all=False)]
    if isinstance(patterns, str):
        patterns = [patterns]
    tokens = [t.strip() for p in patterns for t in str(p).split(",") if t.strip()]
    if not tokens:
        raise BenchmarkError("No model names given.")
    chosen = []
    for token in tokens:
        key = token.lower()
        if key == "all":
            matched = set(MODELS)
        elif key == "default":
            matched = {s.name for s in list_models(include_all=False)}
        elif key in MODELS:
            matched = {key}
        elif any(ch in key for ch in "*?["):
            matched = set(fnmatch.filter(MODELS, key))
        else:
            matched = set()
        if not matched:
            partial = [name for name in MODELS if key in name]
            hint = (f" (to select every model whose name contains it, use "
                    f"the wildcard '*{key}*': {', '.join(partial)})"
                    if partial and not any(ch in key for ch in "*?[") else "")
            raise BenchmarkError(
                f"No model matches {token!r}{hint}; registered models are: "
                f"{', '.join(MODELS)}.")
        chosen += [name for name in MODELS if name in matched and name not in chosen]
    return chosen


def make_model(name, task, *, seed=0, preprocessor=None):
    """Build a fresh estimator from the registry.

    Parameters
    ----------
    name : str
        A registered model name (see :func:`list_models`).
    task : {"classification", "regression"}
    seed : int, default=0
        Seed for randomised models.
    preprocessor : transformer, optional
        Placed first in the pipeline (cloned); defaults to a
        :class:`~sklearn.preprocessing.StandardScaler`.

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        Steps ``"preprocess"`` (``"passthrough"`` for the sequence models,
        which read paths) and ``"model"``; regressors are wrapped in a
        :class:`~sklearn.compose.TransformedTargetRegressor` that standardises
        the target.

    Examples
    --------
    >>> from skinfinite.benchmark import make_model
    >>> make_model("svm_rbf", "classification").steps[1][1]
    SVC()
    """
    if name not in MODELS:
        raise BenchmarkError(
            f"Unknown model {name!r}; registered models are: {', '.join(MODELS)}.")
    if task not in TASKS:
        raise BenchmarkError(f"task must be one of {TASKS}, got {task!r}.")
    spec = MODELS[name]
    if task not in spec.tasks:
        raise BenchmarkError(f"Model {name!r} solves {' and '.join(spec.tasks)} "
                             f"tasks only, not {task}.")
    estimator = spec.factory(task, seed)
    if task == REGRESSION:
        estimator = TransformedTargetRegressor(regressor=estimator,
                                               transformer=StandardScaler())
    if spec.inputs == SEQUENCES:
        # Sequence models scale their paths themselves; a tabular
        # preprocessor cannot read paths.
        pre = "passthrough"
    else:
        pre = StandardScaler() if preprocessor is None else clone(preprocessor)
    return Pipeline([("preprocess", pre), ("model", estimator)])
