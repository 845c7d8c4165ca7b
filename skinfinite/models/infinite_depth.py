"""The classifier that an infinitely wide and infinitely deep NTK implements."""
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .._core.docstrings import fit_doc
from .._core.config import CarriesConfig
from .._core.validation import Options, ValidatesParameters, check_choice
from ..theory.depth_limit import infinite_depth_regime, koenigs_interpolant
from ._base import POSITIVE, encode_classes

WEIGHTINGS = ("power", "depth_limit")

# Inputs whose projections on the sphere are within about 1e-13 of each other
# are the same point: a scaled copy of an input differs from it by rounding.
_MATCH_GAP = 1e-26
# Below this gap 1 - <x, z> from a dot product has lost most of its digits.
_REFINE_GAP = 1e-6
_BLOCK_ENTRIES = 2 ** 21


INPUT_MAPS = ("auto", "project", "lift")


def map_to_sphere(X, input_map="project"):
    """Inputs as points of the unit sphere.

    ``"project"`` divides each row by its norm (the direction is kept, the
    norm is lost); ``"lift"`` appends a constant 1 to each row first, so that
    ``x -> (x, 1) / sqrt(||x||^2 + 1)`` keeps the norm and maps zero rows to
    a pole.

    Raises
    ------
    ValueError
        If ``input_map="project"`` meets a row of zeros, which has no
        direction on the sphere.
    """
    check_choice(input_map, "input_map", INPUT_MAPS[1:])
    if input_map == "lift":
        X = np.hstack([X, np.ones((X.shape[0], 1))])
    norms = np.linalg.norm(X, axis=1)
    if np.any(norms == 0):
        raise ValueError(
            f"X has {int(np.sum(norms == 0))} row(s) of zeros, which have no "
            "direction on the unit sphere; use input_map='lift' to keep "
            "such rows.")
    return X / norms[:, None]


def _half_squared_distances(A, B):
    """``1 - <a, b>`` for unit rows, accurate also for nearly equal rows."""
    gap = 1.0 - A @ B.T
    i, j = np.nonzero(gap < _REFINE_GAP)
    if i.size:
        gap[i, j] = 0.5 * np.sum(np.square(A[i] - B[j]), axis=1)
    return np.clip(gap, 0.0, 2.0)


class InfiniteDepthNTKClassifier(ValidatesParameters, ClassifierMixin,
                                 CarriesConfig, BaseEstimator):
    """Limit of the NTK classifier of a fully-connected network as width and
    then depth go to infinity (Radhakrishnan, Belkin and Uhler, 2023).

    Inputs are mapped onto the unit sphere, where the NTK depends on
    ``<x, z>`` only and the limit is stated: by default projected,
    ``x / ||x||``, or lifted, ``(x, 1) / sqrt(||x||^2 + 1)``, which keeps
    their norms (``input_map``).
    The network keeps the pre-activation variance ``variance`` at every
    layer and has no biases; its normalised dual ``pd`` decides the limit
    (:func:`skinfinite.theory.depth_limit.infinite_depth_regime`):

    * majority vote (``pd(0) > 0``, ``pd'(1) >= 1``; e.g. ReLU, GELU),
    * 1-nearest neighbour by angle (``pd(0) = pd'(0) = 0``),
    * singular kernel classifier ``argmax_c sum_{i: y_i = c} w(x, x_i)``
      (``pd(0) = 0 < pd'(0)``; e.g. erf, tanh, sin), with
      ``w = (1 - <x, z>)^(-alpha)``, ``alpha = ln(1/pd'(0)) / ln(pd'(1))``
      (``weighting="power"``), or with the exact depth limit of the NTK
      weights (``weighting="depth_limit"``, see
      :func:`~skinfinite.theory.depth_limit.depth_limit_weights`).

    A test input that coincides with training inputs (on the sphere) takes
    the majority label among them, in every regime: the NTK regression
    interpolates at every depth.

    The 1-nearest-neighbour rule and the power weights are the limit for
    test inputs whose inner products with the training inputs are
    nonnegative (e.g. nonnegative features).  With negative inner products
    the parity of ``pd`` matters: an odd dual (erf, tanh, sin) makes inputs
    near a training point's antipode vote against its label, which
    ``weighting="depth_limit"`` reproduces.

    Parameters
    ----------
    activation : str, Activation or callable, default="erf"
        See :mod:`skinfinite.activations.definitions`.  Activations outside the taxonomy
        (linear, or ``pd(0) > 0`` with ``pd'(1) < 1`` such as sigmoid) are
        rejected in ``fit``.
    variance : float, default=1.0
        Pre-activation variance kept at every layer (scales the inputs).
    input_map : {"auto", "project", "lift"}, default="auto"
        How inputs reach the sphere (see above); "project" rejects rows of
        zeros.  "auto" projects, unless a training row is zero: then it
        lifts (a zero row has no direction to project).
    weighting : {"power", "depth_limit"}, default="power"
        Weights of the singular-kernel regime; ignored in the others.
    tol : float, default=1e-9
        Tolerance for ``pd(0) = 0``, ``pd'(0) = 0`` and ``pd'(1) = 1``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    regime_ : InfiniteDepthRegime
        The regime, ``alpha`` and the dual's values that decided it.
    X_train_ : ndarray of shape (n_samples, n_features (+ 1 when lifted))
        Training inputs mapped onto the sphere.
    input_map_ : {"project", "lift"}
        The map used.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite.models import InfiniteDepthNTKClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = np.abs(rng.normal(size=(60, 3))); y = (X[:, 0] > X[:, 1]).astype(int)
    >>> clf = InfiniteDepthNTKClassifier(activation="erf").fit(X, y)
    >>> clf.regime_.regime, round(clf.regime_.alpha, 4)
    ('singular_kernel', 0.4441)
    >>> clf.score(X, y)
    1.0
    """

    _parameter_constraints = {
        "activation": [str, "callable"],
        "variance": [POSITIVE],
        "input_map": [Options(*INPUT_MAPS)],
        "weighting": [Options(*WEIGHTINGS)],
        "tol": [POSITIVE],
    }

    def __init__(self, activation="erf", variance=1.0, input_map="auto",
                 weighting="power", tol=1e-9):
        self.activation = activation
        self.variance = variance
        self.input_map = input_map
        self.weighting = weighting
        self.tol = tol

    @fit_doc("Map the training inputs to the sphere and decide the regime.")
    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.regime_ = infinite_depth_regime(self.activation, self.variance,
                                             self.tol)
        codes = encode_classes(self, y)
        self.input_map_ = self.input_map
        if self.input_map == "auto":
            self.input_map_ = "lift" if np.any(~X.any(axis=1)) else "project"
        self.X_train_ = map_to_sphere(X, self.input_map_)
        self._koenigs = None
        if (self.regime_.regime == "singular_kernel"
                and self.weighting == "depth_limit"):
            self._koenigs = koenigs_interpolant(self.activation,
                                                self.variance, self.tol)
        self._onehot = np.eye(len(self.classes_))[codes]
        return self

    def _weights(self, gap):
        """Per-pair weights of the regime, each row scaled to max |w| = 1."""
        regime = self.regime_.regime
        if regime == "majority_vote":
            return np.ones_like(gap)
        if regime == "nearest_neighbor":
            return (gap == gap.min(axis=1, keepdims=True)).astype(np.float64)
        if self.weighting == "power":
            sign = 1.0
            log_w = -self.regime_.alpha * np.log(gap)
        else:
            sign, log_w = self._koenigs(gap)
        top = log_w.max(axis=1, keepdims=True)
        # a row of zero weights (every inner product exactly 0 under the
        # Koenigs weights) stays zero instead of becoming 0 / 0
        top[~np.isfinite(top)] = 0.0
        return sign * np.exp(log_w - top)

    def _class_scores(self, X):
        """Class shares of the weights, ``(n_samples, n_classes)``."""
        check_is_fitted(self)
        X = map_to_sphere(validate_data(self, X, reset=False, dtype=np.float64),
                          self.input_map_)
        n_train = self.X_train_.shape[0]
        step = max(1, _BLOCK_ENTRIES // n_train)
        scores = np.empty((X.shape[0], self._onehot.shape[1]))
        for s in range(0, X.shape[0], step):
            gap = _half_squared_distances(X[s:s + step], self.X_train_)
            match = gap <= _MATCH_GAP
            hit = match.any(axis=1)
            w = np.empty_like(gap)
            w[hit] = match[hit]
            if not hit.all():
                w[~hit] = self._weights(gap[~hit])
            total = np.abs(w).sum(axis=1, keepdims=True)
            total[total == 0] = 1.0
            scores[s:s + step] = (w @ self._onehot) / total
        return scores

    def decision_function(self, X):
        """Weighted class shares of the limit classifier.

        In the singular-kernel regime with power weights these are the
        singular-kernel estimates of the class probabilities; for majority
        vote the class frequencies; for 1-nearest neighbour an indicator.

        Returns
        -------
        scores : ndarray of shape (n_samples,) for two classes (positive
            favours ``classes_[1]``), else (n_samples, n_classes).
        """
        scores = self._class_scores(X)
        return scores[:, 1] - scores[:, 0] if scores.shape[1] == 2 else scores

    def predict(self, X):
        """Class of the limit classifier for each row of ``X``."""
        scores = self._class_scores(X)
        return self.classes_[np.argmax(scores, axis=1)]
