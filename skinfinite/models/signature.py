"""Support-vector classification and kernel ridge regression of paths with
signature kernels."""
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.gaussian_process.kernels import Kernel
from sklearn.svm import SVC
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from .._core.backend import on_host
from .._core.config import CarriesConfig
from ._base import (check_sample_weight, keeps_float32, scale_rows,
                    weighted_gram)
from .._core.sequences import (Sequences, check_layout, check_sequences,
                          is_nested_frame, resolve_layout)
from .._core.tiling import plan_block
from .._core.backend import DEVICES
from .._core.sequences import LAYOUTS
from .._core.validation import Interval, Options, ValidatesParameters
from ._base import NON_NEGATIVE, POSITIVE
from ..kernels.signature import SignatureKernel
from ..linalg.cholesky import NumericalError, cho_solve, cholesky_with_jitter
from ._path_selection import FAMILIES, ClassifierScores, PathSearch, RegressorScores

__all__ = ["SignatureKernelClassifier", "SignatureKernelRegressor"]

#: Options of the default kernel, with the estimators' defaults (which differ
#: from :class:`SignatureKernel`'s: RBF static kernel and normalisation
#: classify time series well; "auto" options are chosen at fit).
KERNEL_DEFAULTS = {
    "static_kernel": "rbf", "dyadic_order": "auto", "time_augment": "auto",
    "basepoint": "auto", "lead_lag": "auto", "scale": 1.0, "length_scale": "auto",
    "normalize": True, "max_length": "auto", "device": "auto",
}
#: Options chosen by the model selection when "auto" or a list.
_SEARCHED = ("dyadic_order", "time_augment", "basepoint", "lead_lag",
             "length_scale", "max_length")

# Scratch bytes per entry of a prediction tile (the kernel block and the
# estimator's temporaries on it).
_TILE_BYTES_PER_ENTRY = 64.0

_INPUT_DOC = """
    Inputs ``X`` are paths (multivariate time series), in any of these forms:

    * a 3-D array ``(n_paths, length, n_channels)``, or aeon's and sktime's
      ``(n_paths, n_channels, length)`` (see ``layout``);
    * a list of 2-D arrays ``(length_i, n_channels)`` (or aeon's
      ``(n_channels, length_i)``) of different lengths, or a nested pandas
      DataFrame (sktime's "nested_univ");
    * the flattened 2-D form ``(n_paths, length * n_channels)`` with
      ``n_channels`` set, shorter paths padded at the end with NaN (see
      :func:`skinfinite.flatten_sequences`);
    * a 2-D array with ``n_channels=None``: each row is read as a path with
      one channel whose points are the row's features (at least 2).  This is
      the tabular form: it is validated as scikit-learn validates feature
      tables (``n_features_in_``, feature names), so the estimator works in
      any scikit-learn tool, but it only suits rows that are series.
"""

_KERNEL_PARAMS_DOC = """
    kernel : "auto", "rbf", "conv", "signature", "signature+rbf", list, None \
or Kernel, default="auto"
        The kernel on paths.  A name (or a list of names) makes the fit choose
        among these families by cross-validation on the training paths (see
        :ref:`guide_timeseries_selection`): "signature" is the
        :class:`~skinfinite.kernels.SignatureKernel` configured by the options
        below, "rbf" a Gaussian kernel on the whole standardised series
        (its width chosen from the median distance between series), "conv"
        the one-layer :class:`~skinfinite.kernels.ConvNNGP` with the
        proportion-of-positive-values readout (the infinite-width limit of
        ROCKET features) on the series plus the same kernel on their first
        differences (its bias variance chosen on a lattice),
        "signature+rbf" the sum of the best signature and RBF kernels; "auto"
        is all four.  Between families the fit keeps the first of "conv",
        "rbf", "signature", "signature+rbf" whose score is within one
        standard error of the best score.
        ``None`` is "signature" alone.  A configured kernel (such as a
        :class:`~skinfinite.kernels.NeuralSignatureKernel`) is used instead
        of the options below (which must then keep their defaults); it is
        cloned at fit; tune its parameters as ``kernel__<name>`` in
        :class:`~sklearn.model_selection.GridSearchCV`.
    static_kernel : {"linear", "rbf"} or sklearn Kernel, default="rbf"
        Kernel on the paths' points (see
        :class:`~skinfinite.kernels.SignatureKernel`).
    dyadic_order : "auto", int or list of int, default="auto"
        Refinement of the PDE grid (``2^dyadic_order`` per step).  "auto"
        tries 1 against 0 at the end of the search when the time budget
        allows it.

    time_augment : "auto", bool or list, default="auto"
        Append time in [0, 1] as a last channel ("auto": start with it, then
        try without).
    basepoint : "auto", bool or list, default="auto"
        Prepend the origin to every path ("auto": start without, then try).
    lead_lag : "auto", bool or list, default="auto"
        Use the lead-lag path ("auto": start without, then try).
    scale : float, default=1.0
        The static kernel is multiplied by ``scale^2`` (for the linear static
        kernel: the paths are scaled by ``scale``).
    length_scale : "auto", float or list, default="auto"
        Length scale of the RBF static kernel.  "auto" starts at the median
        distance between the paths' (scaled, augmented) points and moves by
        factors of 2, then of sqrt(2).
    normalize : bool, default=True
        Use ``k(x, y) / sqrt(k(x, x) k(y, y))``.
    max_length : "auto", int, None or list, default="auto"
        Paths longer than this are shortened to this many points (means of
        consecutive segments) before the signature kernel; None keeps every
        point.  "auto" searches on paths of at most 32 points first, then
        doubles the length while the time budget allows and keeps the best.
    standardize : bool, default=True
        Centre every channel and divide it by its standard deviation over all
        points of the training paths before the kernel.  Applies to a given
        ``kernel`` too.
    path_scale : "auto", float or list, default="auto"
        Multiplies the (standardised) channels before the kernel.  Time,
        added by ``time_augment`` inside the kernel, is not scaled, so
        ``path_scale`` weighs the values against time (with the RBF static
        kernel, ``length_scale`` sets the width for both).  Applies to a given
        ``kernel`` too.  "auto" starts where the median increment of the
        values equals that of time and moves by factors of 4, then 2.
    time_budget : float or None, default=60.0
        Seconds the model selection may take, as predicted by a fixed cost
        model (the signature PDE's cells and the convolutional kernel's
        pairs of windows at nominal rates of about half what two idle cores
        reach), so that the search, and the fitted model, depend on the data
        alone, not on the machine's speed or load.  Settings whose predicted
        cost would exceed it are skipped, with a :class:`SelectionWarning`
        that says so (the first setting of each family is always evaluated).
        None: no limit.
    verbose : int, default=0
        0 is silent; 1 prints one line per kernel setting the model
        selection evaluates and reports progress over the tiles of large
        Gram matrices, 2 over every Gram: a progress bar when stderr is a
        terminal, plain lines otherwise.
    n_channels : int, optional
        Number of channels; needed for the flattened 2-D form.
    layout : {"auto", "ntc", "nct"}, default="auto"
        Axis order of 3-D arrays and list entries: "ntc" (time, then
        channels) or "nct" (channels, then time: aeon, sktime); "auto"
        decides from the shapes at fit and raises where both readings fit
        (:ref:`guide_input_layouts`).  The layout found at fit
        (``layout_``) reads the paths given to predict.  The estimator reads
        the paths, so a given ``kernel``'s own ``layout`` is not used.
    device : {"auto", "cpu", "gpu"}, default="auto"
        Where the signature PDEs are solved (see
        :class:`~skinfinite.kernels.SignatureKernel` and :ref:`guide_gpu`).
"""


def _is_default(value, default):
    if isinstance(value, (list, tuple, np.ndarray)):
        return False
    try:
        return bool(value == default)
    except (TypeError, ValueError):
        return False


def _searched(value):
    """Whether a parameter asks the fit to choose ("auto" or a list)."""
    return isinstance(value, (list, tuple, np.ndarray)) or (
        isinstance(value, str) and value == "auto")


_AUTO = Options("auto")
#: Allowed values of the parameters both path estimators take.  A list
#: asks the model selection to search its entries, which it checks.
_PATH_CONSTRAINTS = {
    "kernel": [Options("auto", *FAMILIES), "sequence", None, Kernel],
    "static_kernel": [Options("linear", "rbf"), Kernel],
    "dyadic_order": [_AUTO, Interval(Integral, 0, None, closed="left"),
                     "sequence"],
    "time_augment": [_AUTO, "boolean", "sequence"],
    "basepoint": [_AUTO, "boolean", "sequence"],
    "lead_lag": [_AUTO, "boolean", "sequence"],
    "scale": [POSITIVE],
    "length_scale": [_AUTO, POSITIVE, "sequence"],
    "normalize": ["boolean"],
    "max_length": [_AUTO, Interval(Integral, 2, None, closed="left"), None,
                   "sequence"],
    "standardize": ["boolean"],
    "path_scale": [_AUTO, POSITIVE, "sequence"],
    "n_channels": [Interval(Integral, 1, None, closed="left"), None],
    "cv": [Interval(Integral, 2, None, closed="left"), "cv_object", None],
    "time_budget": [POSITIVE, None],
    "verbose": ["verbose"],
    "device": [Options(*DEVICES)],
    "layout": [Options(*LAYOUTS)],
}


class _PathEstimatorMixin(ValidatesParameters, CarriesConfig):
    """Reading paths, standardising channels, building and evaluating the kernel."""

    def _families(self):
        """The kernel families the fit chooses among (None: no selection)."""
        kernel = self.kernel
        names = [kernel] if isinstance(kernel, str) else kernel
        if isinstance(names, (list, tuple)):
            bad = [k for k in names if not isinstance(k, str)
                   or k not in FAMILIES + ("auto",)]
            if bad or not names:
                raise ValueError(f"kernel must be 'auto', one of {FAMILIES}, a list "
                                 f"of them, None or a Kernel on paths; got {kernel!r}.")
            out = []
            for k in names:
                for f in (FAMILIES if k == "auto" else (k,)):
                    if f not in out:
                        out.append(f)
            if "signature+rbf" in out:
                # the sum is built from the best of each part
                out = [f for f in ("rbf", "signature") if f not in out] + out
                out.remove("signature+rbf")
                out.append("signature+rbf")
            return out
        searched = [self._regularization_name(), "path_scale"]
        if kernel is None:
            searched += list(_SEARCHED)
            families = ["signature"]
        else:
            self._build_kernel()   # checks the kernel and the options
            families = ["given"]
        return families if any(_searched(getattr(self, k)) for k in searched) else None

    def _build_kernel(self):
        if self.kernel is None:
            options = {k: getattr(self, k) for k in KERNEL_DEFAULTS if k != "max_length"}
            return SignatureKernel(**options)
        changed = [k for k, v in KERNEL_DEFAULTS.items() if not _is_default(getattr(self, k), v)]
        if changed:
            raise ValueError(
                f"{', '.join(changed)} only configure the default kernel, but a "
                f"kernel was given; set them on the kernel instead (for example "
                f"kernel__{changed[0]}).")
        if not isinstance(self.kernel, Kernel):
            raise TypeError(f"kernel must be 'auto', one of {FAMILIES}, a list of "
                            "them, None or a scikit-learn Kernel on paths (such as "
                            f"SignatureKernel), got {type(self.kernel).__name__}.")
        return clone(self.kernel)

    def _select(self, paths, scorer, families):
        """Run the model selection; set the chosen kernel and path scale.

        Returns the chosen Gram matrix and regularisation value.
        """
        search = PathSearch(self, paths, scorer).run(families)
        params, score, kernel, path_scale, gram, value = search.chosen()
        self.best_params_ = params
        self.best_score_ = score
        self.cv_results_ = search.results()
        self.kernel_ = kernel
        self.channel_scale_ = self.channel_scale_ * path_scale
        self.paths_fit_ = Sequences(paths.values * path_scale, paths.lengths)
        return gram, value

    def _is_tabular(self, X):
        if self.n_channels is not None or isinstance(X, Sequences) \
                or is_nested_frame(X):
            return False
        if isinstance(X, (list, tuple)):
            shapes = {np.shape(row) for row in X}
            return len(shapes) <= 1 and all(len(s) <= 1 for s in shapes)
        # not np.ndim: array-likes may only support conversion by __array__
        return getattr(X, "ndim", 2) < 3

    def _read_paths(self, X, reset):
        """Validated, standardised :class:`Sequences` of ``X``."""
        X = on_host(X)
        layout = check_layout(self.layout) if reset else self.layout_
        if self._is_tabular(X):
            layout = "ntc"
            X = validate_data(self, X, reset=reset, dtype=np.float64)
            if X.shape[1] < 2:
                raise ValueError(
                    f"X has {X.shape[1]} feature(s), but each row is read as a path "
                    "of its features, which needs at least 2 points; give paths "
                    "as a 3-D array or a list of 2-D arrays.")
            seqs = check_sequences(X[:, :, None], layout="ntc")
        else:
            if reset:
                layout = resolve_layout(X, layout, self.n_channels)
            seqs = check_sequences(X, self.n_channels, layout=layout)
        if reset:
            self.layout_ = layout
            self.n_channels_in_ = seqs.n_channels
            self._fit_standardization(seqs)
        elif seqs.n_channels != self.n_channels_in_:
            raise ValueError(f"X has {seqs.n_channels} channels, but "
                             f"{type(self).__name__} was fitted on paths with "
                             f"{self.n_channels_in_}.")
        return self._standardized(seqs)

    def _fit_standardization(self, seqs, weight=None):
        n_channels = seqs.n_channels
        # a searched path scale multiplies channel_scale_ once it is chosen
        path_scale = 1.0 if _searched(self.path_scale) else \
            float(self.path_scale)
        if not self.standardize:
            self.channel_mean_ = np.zeros(n_channels)
            self.channel_scale_ = np.full(n_channels, path_scale)
            return
        points = np.concatenate([seqs.path(i) for i in range(seqs.n_paths)])
        if weight is not None:   # every point weighs as its path
            weight = np.repeat(weight, seqs.lengths)
        self.channel_mean_ = np.average(points, axis=0, weights=weight)
        std = np.sqrt(np.average((points - self.channel_mean_) ** 2, axis=0,
                                 weights=weight))
        self.channel_scale_ = path_scale / np.where(std > 0, std, 1.0)

    def _standardized(self, seqs):
        values = (seqs.values - self.channel_mean_) * self.channel_scale_
        return Sequences(values, seqs.lengths)

    def _fit_paths(self, X, y, families):
        """Validate ``X`` and ``y``, build the kernel (unless it is to be
        selected); return the training paths."""
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but "
                             "the target y is None.")
        if families is None:
            self.kernel_ = self._build_kernel()
        paths = self._read_paths(X, reset=True)
        y = np.asarray(y)
        if y.shape[0] != paths.n_paths:
            raise ValueError(f"X has {paths.n_paths} paths but y has {y.shape[0]} "
                             "entries.")
        self.paths_fit_ = paths
        return paths

    def _fit_weighted_paths(self, X, y, sample_weight, families):
        """``_fit_paths`` with weighted channel statistics; returns the
        paths and the validated weights (None without weights)."""
        paths = self._fit_paths(X, y, families)
        w = check_sample_weight(sample_weight, paths.n_paths)
        if w is not None and self.standardize:
            raw = Sequences(paths.values / self.channel_scale_
                            + self.channel_mean_, paths.lengths)
            self._fit_standardization(raw, w)
            paths = self.paths_fit_ = self._standardized(raw)
        return paths, w

    def _tiles(self, paths):
        """Row slices of the test paths for tile-by-tile prediction."""
        rows = plan_block(paths.n_paths, self.paths_fit_.n_paths,
                          _TILE_BYTES_PER_ENTRY)[0]
        return [slice(start, min(start + rows, paths.n_paths))
                for start in range(0, paths.n_paths, rows)]

    def _cross_gram(self, tile, columns=None):
        """Kernel between a tile of paths and the training paths.

        With ``columns``, only those training paths are evaluated; the other
        columns are zero (support-vector models read no other column).
        """
        train = self.paths_fit_
        if columns is None:
            return np.asarray(self.kernel_(tile, train), dtype=np.float64)
        out = np.zeros((tile.n_paths, train.n_paths))
        if len(columns):
            out[:, columns] = self.kernel_(tile, train.take(columns))
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.non_deterministic = False
        return tags


class SignatureKernelClassifier(ClassifierMixin, _PathEstimatorMixin, BaseEstimator):
    __doc__ = """Support-vector classifier of paths with a signature kernel.

    :class:`~sklearn.svm.SVC` on the precomputed Gram matrix of a
    :class:`~skinfinite.kernels.SignatureKernel` (or of a kernel you pass,
    such as a :class:`~skinfinite.kernels.NeuralSignatureKernel`).  The
    training paths are stored; predictions evaluate the kernel against the
    support vectors only, tile by tile within the memory budget
    (:func:`skinfinite.config_context`).
    """ + _INPUT_DOC + """
    By default the fit chooses the kernel and its scales, the path options
    and ``C`` by stratified cross-validation on the training paths, within
    ``time_budget`` seconds: each kernel setting's Gram matrix is computed
    once and serves every ``C``, fold and class.  Parameters set to a value
    are fixed; lists are searched as given; with every parameter fixed the
    fit is one SVC on one Gram matrix.
    """ + _INPUT_DOC + """
    Parameters
    ----------""" + _KERNEL_PARAMS_DOC + """    C : "auto", float or list, default="auto"
        Regularisation of the SVC (larger fits the training data harder).
        "auto" searches 1 to 100 by factors of 10, extended while the best
        is at an edge.
    cv : int or cross-validation splitter, default=5
        Folds of the model selection (an int: stratified, shuffled with seed
        0).
    class_weight : dict or "balanced", optional
        As in :class:`~sklearn.svm.SVC`.
    probability : bool, default=False
        Enable :meth:`predict_proba`: Platt scaling (sigmoid calibration) of
        the decision values by an internal stratified cross-validation of up
        to 5 folds (:class:`~sklearn.calibration.CalibratedClassifierCV`
        with ``ensemble=False``, which is what scikit-learn now recommends
        in place of ``SVC(probability=True)``); the fit costs a few more SVC
        fits on the same Gram matrix.  :meth:`predict` keeps the SVC's
        decision, which the most probable class can occasionally differ from.

    Attributes
    ----------
    best_params_ : dict
        The chosen setting (kernel family, its parameters, ``C``); only when
        the fit selected.
    best_score_ : float
        Its mean cross-validated accuracy.
    cv_results_ : dict of arrays
        One row per evaluated setting and ``C``: ``params``,
        ``mean_test_score``, ``std_test_score``, ``rank_test_score``,
        ``stage`` (the search stage) and ``gram_time`` (seconds for the
        setting's Gram matrix).
    classes_ : ndarray of shape (n_classes,)
    svc_ : sklearn.svm.SVC
        The fitted support-vector machine (``kernel="precomputed"``).
    calibrator_ : CalibratedClassifierCV or None
        The probability calibration (``probability=True`` only).
    kernel_ : Kernel
        The kernel used (the chosen one when the fit selected).
    paths_fit_ : Sequences
        Standardised training paths.
    support_ : ndarray
        Indices of the support vectors among the training paths.
    n_channels_in_ : int
    layout_ : {"ntc", "nct"}
        The layout the training paths were read in.
    channel_mean_, channel_scale_ : ndarray of shape (n_channels,)
        Paths enter the kernel as ``(x - channel_mean_) * channel_scale_``
        (``channel_scale_`` is ``path_scale`` over the channels' standard
        deviations; 0 and ``path_scale`` when ``standardize=False``).
    n_features_in_ : int
        Only for 2-D input read as rows (see above).

    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite.models import SignatureKernelClassifier
    >>> rng = np.random.default_rng(0)
    >>> t = np.linspace(0, 1, 20)[None, :, None]
    >>> up = t * rng.uniform(1, 2, size=(10, 1, 2))
    >>> X = np.concatenate([up, -up]); y = [0] * 10 + [1] * 10
    >>> model = SignatureKernelClassifier().fit(X, y)
    >>> model.score(-X, [1] * 10 + [0] * 10)
    1.0
    >>> model.best_params_["kernel"] in ("rbf", "conv", "signature", "signature+rbf")
    True
    """

    _parameter_constraints = {
        **_PATH_CONSTRAINTS,
        "C": [_AUTO, POSITIVE, "sequence"],
        "class_weight": [dict, Options("balanced"), None],
        "probability": ["boolean"],
    }

    def __init__(self, kernel="auto", static_kernel="rbf", dyadic_order="auto",
                 time_augment="auto", basepoint="auto", lead_lag="auto", scale=1.0,
                 length_scale="auto", normalize=True, max_length="auto",
                 standardize=True, path_scale="auto", n_channels=None, C="auto",
                 class_weight=None, probability=False, cv=5, time_budget=60.0,
                 verbose=0, device="auto", layout="auto"):
        self.kernel = kernel
        self.static_kernel = static_kernel
        self.dyadic_order = dyadic_order
        self.time_augment = time_augment
        self.basepoint = basepoint
        self.lead_lag = lead_lag
        self.scale = scale
        self.length_scale = length_scale
        self.normalize = normalize
        self.max_length = max_length
        self.standardize = standardize
        self.path_scale = path_scale
        self.n_channels = n_channels
        self.C = C
        self.class_weight = class_weight
        self.probability = probability
        self.cv = cv
        self.time_budget = time_budget
        self.verbose = verbose
        self.device = device
        self.layout = layout

    @staticmethod
    def _regularization_name():
        return "C"

    def fit(self, X, y, sample_weight=None):
        """Fit the support-vector machine on the kernel of the training paths.

        Parameters
        ----------
        X : paths (see above)
        y : array-like of shape (n_paths,)
        sample_weight : array-like of shape (n_paths,), default=None
            Per-path weights, passed to :class:`sklearn.svm.SVC` (they
            rescale ``C`` per path).

        Returns
        -------
        self
        """
        families = self._families()
        paths, sample_weight = self._fit_weighted_paths(X, y, sample_weight,
                                                        families)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if families is None:
            gram, C = np.asarray(self.kernel_(paths), dtype=np.float64), self.C
        else:
            if len(np.unique(y)) < 2:
                raise ValueError("The classifier needs samples of at least 2 "
                                 "classes; got 1 class.")
            scorer = ClassifierScores(y, self.cv, self.C, self.class_weight)
            gram, C = self._select(paths, scorer, families)
        svc = SVC(kernel="precomputed", C=C, class_weight=self.class_weight)
        self.calibrator_ = None
        if self.probability:
            self.calibrator_ = CalibratedClassifierCV(
                svc, method="sigmoid", ensemble=False,
                cv=self._calibration_folds(y)).fit(gram, y,
                                                   sample_weight=sample_weight)
            self.svc_ = self.calibrator_.calibrated_classifiers_[0].estimator
        else:
            self.svc_ = svc.fit(gram, y, sample_weight=sample_weight)
        self.classes_ = self.svc_.classes_
        self.support_ = self.svc_.support_
        return self

    @staticmethod
    def _calibration_folds(y):
        _, counts = np.unique(np.asarray(y).astype(str), return_counts=True)
        if len(counts) < 2:
            raise ValueError(f"The classifier needs samples of at least 2 classes; "
                             f"got {len(counts)} class.")
        if counts.min() < 2:
            raise ValueError("probability=True needs at least 2 paths of every "
                             "class for the calibration's cross-validation.")
        return int(min(5, counts.min()))

    def _tiled(self, X, method, model=None):
        model = self.svc_ if model is None else model
        paths = self._read_paths(X, reset=False)
        outputs = [getattr(model, method)(
            self._cross_gram(paths.take(rows), self.support_))
            for rows in self._tiles(paths)]
        return np.concatenate(outputs)

    def predict(self, X):
        """Predicted classes of the paths ``X``."""
        check_is_fitted(self)
        return self._tiled(X, "predict")

    def decision_function(self, X):
        """Decision values of the SVC (see :meth:`sklearn.svm.SVC.decision_function`)."""
        check_is_fitted(self)
        return self._tiled(X, "decision_function")

    def _has_probability(self):
        if not self.probability:
            raise AttributeError("predict_proba is not available when "
                                 "probability=False")
        return True

    @available_if(_has_probability)
    def predict_proba(self, X):
        """Class probabilities (Platt scaling; needs ``probability=True``)."""
        check_is_fitted(self)
        return self._tiled(X, "predict_proba", self.calibrator_)

    @available_if(_has_probability)
    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        return np.log(self.predict_proba(X))


class SignatureKernelRegressor(RegressorMixin, _PathEstimatorMixin, BaseEstimator):
    __doc__ = """Kernel ridge regression of paths with a signature kernel.

    The prediction is ``k(x, X) (K + alpha I)^-1 y`` with ``K`` the Gram
    matrix of a :class:`~skinfinite.kernels.SignatureKernel` (or of a kernel
    you pass).  It is also the predictive mean of a Gaussian process with
    this covariance and noise variance ``alpha``; ``predict(X,
    return_std=True)`` adds that process's predictive standard deviation
    (of the noise-free function).  The training paths are stored; predictions
    run tile by tile within the memory budget.
    """ + _INPUT_DOC + """
    By default the fit chooses the kernel and its scales, the path options
    and ``alpha`` within ``time_budget`` seconds: each kernel setting's Gram
    matrix is computed and eigendecomposed once, which gives the exact
    leave-one-out error of every ``alpha``.  Parameters set to a value are
    fixed; lists are searched as given.
    """ + _INPUT_DOC + """
    Parameters
    ----------""" + _KERNEL_PARAMS_DOC + """    alpha : "auto", float or list, default="auto"
        Ridge added to the diagonal (noise variance); jitter is added when the
        matrix is numerically singular.  "auto" searches 1e-3 to 1 by
        factors of 10, extended while the best is at an edge.
    cv : None, int or cross-validation splitter, default=None
        Scoring of the model selection: None is the exact leave-one-out
        squared error; an int is that many shuffled folds (seed 0).
    normalize_y : bool, default=False
        Centre and scale the targets before fitting.

    Attributes
    ----------
    best_params_, best_score_, cv_results_
        As for :class:`SignatureKernelClassifier`; scores are negative mean
        squared errors of the (normalised) targets.
    dual_coef_ : ndarray of shape (n_paths, n_targets)
    kernel_ : Kernel
    paths_fit_ : Sequences
    jitter_ : float
        Jitter added to the diagonal.
    n_channels_in_ : int
    layout_ : {"ntc", "nct"}
    channel_mean_, channel_scale_ : ndarray of shape (n_channels,)
    n_features_in_ : int
        Only for 2-D input read as rows.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite.models import SignatureKernelRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = np.cumsum(rng.normal(size=(30, 15, 2)), axis=1) * 0.1
    >>> y = X[:, -1, 0] - X[:, 0, 0]
    >>> model = SignatureKernelRegressor(alpha=1e-3).fit(X[:20], y[:20])
    >>> mean, std = model.predict(X[20:], return_std=True)
    >>> mean.shape, std.shape
    ((10,), (10,))
    """

    _parameter_constraints = {
        **_PATH_CONSTRAINTS,
        "alpha": [_AUTO, NON_NEGATIVE, "sequence"],
        "normalize_y": ["boolean"],
    }

    def __init__(self, kernel="auto", static_kernel="rbf", dyadic_order="auto",
                 time_augment="auto", basepoint="auto", lead_lag="auto", scale=1.0,
                 length_scale="auto", normalize=True, max_length="auto",
                 standardize=True, path_scale="auto", n_channels=None, alpha="auto",
                 normalize_y=False, cv=None, time_budget=60.0, verbose=0,
                 device="auto", layout="auto"):
        self.kernel = kernel
        self.static_kernel = static_kernel
        self.dyadic_order = dyadic_order
        self.time_augment = time_augment
        self.basepoint = basepoint
        self.lead_lag = lead_lag
        self.scale = scale
        self.length_scale = length_scale
        self.normalize = normalize
        self.max_length = max_length
        self.standardize = standardize
        self.path_scale = path_scale
        self.n_channels = n_channels
        self.alpha = alpha
        self.normalize_y = normalize_y
        self.cv = cv
        self.time_budget = time_budget
        self.verbose = verbose
        self.device = device
        self.layout = layout

    @staticmethod
    def _regularization_name():
        return "alpha"

    def fit(self, X, y, sample_weight=None):
        """Solve the kernel ridge system on the training paths.

        Parameters
        ----------
        X : paths (see above)
        y : array-like of shape (n_paths,) or (n_paths, n_targets)
        sample_weight : array-like of shape (n_paths,), default=None
            Weights of the squared loss: ``(K + alpha W^-1) c = y`` (as in
            KernelRidge); zero weights drop paths.

        Returns
        -------
        self
        """
        families = self._families()
        if families is None:
            alpha = float(self.alpha)
        paths, w = self._fit_weighted_paths(X, y, sample_weight, families)
        self._sqrt_weight = None
        if w is not None:
            keep = np.flatnonzero(w > 0)
            paths, y = paths.take(keep), np.asarray(y)[keep]
            self.paths_fit_, self._sqrt_weight = paths, np.sqrt(w[keep])
        y = self._check_targets(y, w if w is None else w[w > 0])
        if families is None:
            gram = np.asarray(self.kernel_(paths), dtype=np.float64)
        else:
            # the search scores unweighted folds; the weights enter the refit
            scorer = RegressorScores((y - self._y_mean) / self._y_scale, self.cv,
                                     self.alpha)
            gram, alpha = self._select(paths, scorer, families)
        gram = weighted_gram(gram, self._sqrt_weight, np)
        try:
            self._factor, self.jitter_ = cholesky_with_jitter(gram, alpha)
        except NumericalError as exc:
            raise NumericalError(
                "The signature kernel's Gram matrix is not positive definite, "
                f"even with jitter ({exc}).  The PDE solution is too coarse for "
                "these paths: increase dyadic_order (or alpha), or scale the "
                "paths down (scale, length_scale).") from None
        d = self._sqrt_weight
        self.dual_coef_ = scale_rows(cho_solve(self._factor, scale_rows(
            (y - self._y_mean) / self._y_scale, d, np)), d, np)
        return self

    def _check_targets(self, y, weight=None):
        y = np.asarray(y)
        if y.dtype.kind not in "biuf":
            try:
                y = y.astype(np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"y must be numeric, got an array of dtype "
                                 f"{y.dtype}.") from None
        y = y.astype(np.float64)
        if not np.isfinite(y).all():
            raise ValueError("Input y contains NaN or infinity.")
        if y.ndim not in (1, 2):
            raise ValueError(f"y must be 1-D or 2-D, got {y.ndim} dimensions.")
        self._y_1d = y.ndim == 1
        y = y.reshape(len(y), -1)
        if self.normalize_y:
            self._y_mean = np.average(y, axis=0, weights=weight)
            std = np.sqrt(np.average((y - self._y_mean) ** 2, axis=0,
                                     weights=weight))
            self._y_scale = np.where(std > 0, std, 1.0)
        else:
            self._y_mean, self._y_scale = np.zeros(y.shape[1]), np.ones(y.shape[1])
        return y

    @keeps_float32
    def predict(self, X, return_std=False):
        """Kernel ridge prediction (the Gaussian-process predictive mean).

        Parameters
        ----------
        X : paths
        return_std : bool, default=False
            Also return the predictive standard deviation of the
            Gaussian process ``k(x, x) - k(x, X) (K + alpha I)^-1 k(X, x)``
            (in target units).

        Returns
        -------
        y_mean : ndarray of shape (n_paths,) or (n_paths, n_targets)
        y_std : ndarray of shape (n_paths,) or (n_paths, n_targets), optional
        """
        check_is_fitted(self)
        paths = self._read_paths(X, reset=False)
        means, variances = [], []
        for rows in self._tiles(paths):
            tile = paths.take(rows)
            cross = self._cross_gram(tile)
            means.append(cross @ self.dual_coef_)
            if return_std:
                d = getattr(self, "_sqrt_weight", None)
                reduced = scale_rows(cho_solve(self._factor, scale_rows(
                    cross.T, d, np)), d, np)
                variances.append(self.kernel_.diag(tile)
                                 - np.einsum("ij,ji->i", cross, reduced))
        mean = np.concatenate(means) * self._y_scale + self._y_mean
        mean = mean[:, 0] if self._y_1d else mean
        if not return_std:
            return mean
        std = np.sqrt(np.clip(np.concatenate(variances), 0.0, None))[:, None] * self._y_scale
        return mean, (std[:, 0] if self._y_1d else std)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
