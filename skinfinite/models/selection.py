"""Built-in model selection for the NTK and NNGP estimators.

``NTKRegressorCV`` and friends choose the depth, the ridge ``alpha`` (and the
NTK training time, the weight and bias variances) the way
:class:`~sklearn.linear_model.RidgeCV` chooses its ridge: for about the cost
of one fit.  One pass of the depth recursion gives the Gram matrix of every
depth; one eigendecomposition per depth gives the exact leave-one-out or
k-fold residuals of every ``alpha`` in closed form, and the marginal
likelihood as well.  Past ``screen_size`` samples a screen on a subset
(coarse to fine: every candidate on half of it first when there are many
kernels) passes the best few candidates on to exact scores on all
samples.  The
chosen model is then refitted as the plain estimator, so predictions are
exactly those of, say, ``NNGPRegressor(depth=depth_, alpha=alpha_, ...)``
on the inputs after ``input_map``.

The closed forms: with ``H = (K + alpha I)^-1 = V diag(1 / (w + alpha)) V^T``
and a held-out block ``v`` (the rest ``f`` trains), the residuals of the
model fitted on ``f`` are ``H_vv^-1 (H z)_v`` with ``z = y - m_f`` and
``m_f`` the mean of ``y`` over ``f`` (zero unless the targets are
normalised).  Leave-one-out is the case of single-sample blocks.
"""
import itertools
import numbers
import time
import warnings
from numbers import Integral

import numpy as np
import scipy.linalg
import scipy.stats
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import check_cv
from sklearn.utils import check_random_state, resample
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .._core.backend import on_host
from .._core.backend import CPUBackend
from .._core.docstrings import SAMPLE_WEIGHT, TARGETS, fit_doc
from .._core.threads import blas_threads_for
from .._core.validation import (Interval, Options, ValidatesParameters,
                                caller_stacklevel)
from ..kernels.registry import RegisteredArchitecture
from ._base import (DEVICE_CONSTRAINTS, POSITIVE, _NetworkParamsMixin,
                    check_sample_weight, encode_classes, one_hot_targets)
from ._path_selection import SelectionWarning
from .nngp import NNGPClassifier, NNGPRegressor
from .ntk import NTKClassifier, NTKRegressor

__all__ = ["NTKRegressorCV", "NTKClassifierCV", "NNGPRegressorCV",
           "NNGPClassifierCV"]

#: default grids, chosen by cross-validation on training splits of public
#: data (see the "Model selection" section of the estimators guide)
DEPTHS = (1, 2, 3, 4, 6, 8)
ALPHAS = tuple(np.logspace(-4, 3, 15))

#: past this many samples every candidate is first scored on a random
#: subset of this size (see ``screen_size``)
SCREEN_SIZE = 300
#: kernels (depth and variances) whose best candidates the screen passes on
SCREEN_KERNELS = 2
#: with more kernels than this, a coarse screen of every candidate on half
#: the screening samples passes the best this many kernels on to the screen
FINE_KERNELS = 4

#: How the selecting estimators map their inputs before the kernel (see
#: ``input_map``); the default was chosen by cross-validation on training
#: splits of public regression data.
INPUT_MAPS = ("lift", "ball", None)
INPUT_MAP = "lift"

#: Factors the regressors try on their (standardised) inputs before
#: ``input_map``: with the lift, a smaller factor brings the rows closer to
#: the pole, where the kernel depends on Euclidean distances and is
#: smoother, the part a length scale plays for an RBF kernel.  The first is
#: the reference: another is kept only if it beats it significantly (see
#: ``input_scales``).  Chosen by cross-validation on training splits of
#: public regression data.
INPUT_SCALES = (1.0, 0.25, 0.5, 2.0)
#: Activations the selecting estimators try, the first the reference (see
#: ``activations``).  The NTK regressor's ReLU kernel is the rough one
#: (the RKHS of the Laplace kernel on the sphere), and on smooth targets
#: the erf network's kernel, in closed form at the same cost, beats it by
#: more than its noise; the NNGP regressor's ReLU kernel is smooth already,
#: and the other activation gained it nothing on average.  Chosen by
#: cross-validation on training splits of public regression data.
ACTIVATIONS = ("relu",)
NTK_REGRESSOR_ACTIVATIONS = ("relu", "erf")
#: level of the one-sided paired t-test by which another input scale (or
#: activation) must beat the reference one, shared among the others
#: (Bonferroni)
SCALE_TEST_LEVEL = 0.05

CRITERIA = ("cv", "evidence")
REGRESSION_SCORES = ("neg_mean_squared_error", "r2")
CLASSIFICATION_SCORES = ("accuracy",)

_SELECTION_DOC = """
    depths : sequence of int, default=(1, 2, 3, 4, 6, 8)
        Depths to try; all come from one pass of the recursion (for the
        "resnet" architecture, whose branches scale with the depth, one Gram
        per depth).
    alphas : sequence of float, default=numpy.logspace(-4, 3, 15)
        Ridges (noise variances) to try, all positive.
    weight_variances : sequence of float, default=(2.0,)
        Weight variances to try; each costs one more pass.
    bias_variances : sequence of float, default=(0.1,)
        Bias variances to try; each costs one more pass.
    activations : sequence of str, Activation or callable, default=("relu",)
        Activations to try (:class:`NTKRegressorCV`'s default is
        ``("relu", "erf")``), the first the reference: the grid is selected
        for each (on the screening subset when ``screen_size`` applies),
        and another replaces the first only if its held-out scores beat
        the first's in a one-sided paired t-test at level 0.05 shared
        among the others (per sample for leave-one-out, per fold for
        k-fold), as for ``input_scales``. Each costs one more selection.
    architecture : str or Kernel, default="fully_connected"
        A registered architecture or a kernel of one, as in
        :class:`NTKRegressor`.
    cv : None, int, cross-validation generator or iterable, default=None
        None is exact leave-one-out in closed form; an int k is k-fold
        (stratified for classifiers, unshuffled, as in
        :class:`~sklearn.model_selection.GridSearchCV`); a splitter or
        iterable of (train, test) must partition the samples (every sample
        either trains or is held out), which keeps the block formulas exact.
    scoring : str or None, default=None
        None is the negative mean squared error for regressors and the
        accuracy for classifiers (its ties, common on easy data, broken by
        the squared error of the one-hot outputs, whose mean is in no
        table); regressors also take "r2" (with
        leave-one-out, computed over all held-out predictions together).
    criterion : {"cv", "evidence"}, default="cv"
        "cv" scores each candidate by the cross-validation ``cv``; "evidence"
        by the log marginal likelihood of the training targets (the model as
        a Gaussian process with noise variance ``alpha``).
    input_map : {"lift", "ball"} or None, default="lift" (regressors), None
        (classifiers)
        Map applied to the inputs (in ``fit`` and in every prediction)
        before the kernel: the ReLU kernels grow with the norm of their
        inputs, so predictions at rows far from the training data grow
        without bound; "lift" maps ``x`` to ``(x, sqrt(d))`` scaled onto a
        sphere of radius ``sqrt(d)`` in ``d + 1`` dimensions (the norm kept
        as an angle), "ball" to ``x / sqrt(1 + |x|^2 / d)``; None keeps
        ``X``. Best after standardising the
        features.
    screen_size : int >= 10 or None, default=300
        With more samples than this, candidates are first scored the same
        way on a random subset of ``screen_size`` samples (stratified for
        classifiers; with criterion="cv" the eigendecompositions in single
        precision, the scores from them in double): with more than four
        kernels (depths and variances), every candidate on a random half of
        that subset first and the candidates of its four best kernels on
        the whole subset, else every candidate on the whole subset. The
        best candidate of each of the two best kernels there and the two
        ridges beside the best one are then scored exactly on all samples,
        each through one Cholesky factorisation, and the best of those is
        chosen. None scores every candidate on all samples (one
        eigendecomposition per kernel), as a grid search would.
    random_state : int, RandomState instance or None, default=0
        Seed of the screening subset.
    verbose : int, default=0
        0 is silent; 1 reports the stages of the selection (and is passed
        to the refitted estimator).
"""

_SELECTION_ATTRIBUTES_DOC = """
    depth_, alpha_, weight_variance_, bias_variance_ : the chosen values
    activation_ : str, Activation or callable
        The chosen activation (``best_params_`` hold the parameters of the
        grid, ``cv_results_`` the candidates' scores with this
        activation).
    best_params_ : dict
    best_score_ : float
        Mean cross-validated score (or log evidence) of the chosen values.
    best_index_ : int
        Its row in ``cv_results_``.
    cv_results_ : dict of ndarrays
        As :class:`~sklearn.model_selection.GridSearchCV`'s, rows in the
        same order: ``param_<name>``, ``params``, ``mean_test_score``,
        ``std_test_score``, ``rank_test_score`` and, for k-fold,
        ``split<i>_test_score``. After a screen (``screen_size``) the test
        scores are those on all samples of the candidates rescored, NaN
        (ranked last) for the others, ``mean_screen_score`` and
        ``rank_screen_score`` the scores on the screening subset (NaN,
        ranked last, for the kernels a coarse screen did not pass on) and,
        after a coarse screen, ``mean_coarse_score`` and
        ``rank_coarse_score`` every candidate's score on its half of the
        subset.
    best_estimator_ : the plain estimator refitted on all data (after
        ``input_map``) with the chosen values; predictions are its
        predictions of the mapped inputs.
    kernel_ : Kernel
        The chosen network's kernel, that of ``best_estimator_``.
    n_features_in_ : int
"""


def _check_grid(values, name, kind, allow_none=False):
    """A 1-D tuple of valid grid values, or a ValueError naming the bad one."""
    if isinstance(values, (str, bytes)) or np.ndim(values) == 0:
        raise ValueError(f"{name} must be a non-empty sequence, got "
                         f"{values!r}.")
    values = list(values)
    if not values:
        raise ValueError(f"{name} must be a non-empty sequence, got an empty "
                         "one.")
    out = []
    for v in values:
        if v is None and allow_none:
            out.append(None)
            continue
        if kind == "int":
            ok = (isinstance(v, numbers.Integral) and not isinstance(v, bool)
                  and v >= 1)
            what = "integers >= 1"
        elif kind == "activation":
            ok = isinstance(v, str) or callable(v)
            what = "activation names, Activation objects or callables"
        else:
            ok = (isinstance(v, numbers.Real) and not isinstance(v, bool)
                  and np.isfinite(v) and (v >= 0 if kind == "nonneg"
                                          else v > 0))
            what = ("finite non-negative numbers" if kind == "nonneg"
                    else "finite positive numbers")
        if not ok:
            extra = " or None" if allow_none else ""
            raise ValueError(f"{name} must hold {what}{extra}; got {v!r}.")
        out.append(v if kind == "activation" else int(v) if kind == "int"
                   else None if v is None else float(v))
    if len(set(out)) != len(out):
        raise ValueError(f"{name} holds a value twice: {values!r}.")
    return tuple(out)


def map_inputs(X, input_map):
    """Inputs of bounded norm, so that the ReLU kernels, which grow with the
    norm of their inputs, do not extrapolate linearly to far rows.

    ``"ball"``: ``x / sqrt(1 + |x|^2 / d)``, inside the ball of radius
    ``sqrt(d)``, close to ``x`` for small rows; ``"lift"``: ``(x, sqrt(d))``
    scaled onto the sphere of radius ``sqrt(d)`` in ``d + 1`` dimensions
    (the norm kept as an angle); None: ``X`` unchanged.  The dtype of ``X``
    is kept.
    """
    if input_map is None:
        return X
    Z = np.asarray(X, dtype=np.float64)
    d = Z.shape[1]
    shrink = np.sqrt(1.0 + np.einsum("ij,ij->i", Z, Z) / d)[:, None]
    if input_map == "lift":
        Z = np.hstack([Z, np.full((Z.shape[0], 1), np.sqrt(d))])
    return (Z / shrink).astype(X.dtype, copy=False)


def _kept_weights(sample_weight, n):
    """(weights of the kept samples or None, mask or slice of them): zero
    weights drop samples, as in the plain estimators."""
    weight = check_sample_weight(sample_weight, n)
    if weight is None:
        return None, slice(None)
    keep = weight > 0
    if keep.sum() < 3:
        raise ValueError("The selection needs at least 3 samples of "
                         f"positive weight; got {int(keep.sum())}.")
    return weight[keep], keep


def _best_of_kernels(mean, tie, kernels, count, finite=False):
    """Indices of the best candidate (highest ``mean``, then ``tie``) of
    each of the ``count`` best kernels, best first; ``kernels[i]`` is the
    kernel of candidate i.  ``finite``: candidates with non-finite scores
    are passed over (else they rank last)."""
    order = np.lexsort((-tie, -np.nan_to_num(mean, nan=-np.inf)))
    best = {}
    for i in order:
        if finite and not np.isfinite(mean[i]):
            continue
        best.setdefault(kernels[i], i)
        if len(best) == count:
            break
    return list(best.values())


def _fold_threads(splits):
    """The BLAS thread rule for the held-out blocks of ``splits``: their
    solves are a fold's size, whatever the threads were set to for all
    samples."""
    return blas_threads_for(max(len(test) for _, test in splits))


def _rank(mean):
    """Ranks as GridSearchCV gives them: ties share the better rank,
    non-finite scores come last."""
    finite = np.isfinite(mean)
    rank = np.full(len(mean), finite.sum() + 1, dtype=np.int32)
    rank[finite] = scipy.stats.rankdata(-mean[finite], method="min")
    return rank


class _Data:
    """The samples a stage scores: inputs, targets and weights.

    ``grams``: a dict shared by the stages of a screen, in which the Grams
    of the samples of ``root`` are kept (see
    :meth:`_SelectionBase._grams_of`), or None; ``rows``: the rows of those
    samples this stage takes (None: all)."""

    def __init__(self, X, Y, centre, weight, evidence_targets, grams=None,
                 rows=None, root=None):
        self.X, self.Y, self.centre = X, Y, centre
        self.weight = weight
        self.sqrt_weight = None if weight is None else np.sqrt(weight)
        self.evidence_targets = evidence_targets
        self.grams, self.rows = grams, rows
        self.root = self if root is None else root

    def take(self, rows):
        return _Data(self.X[rows], self.Y[rows], self.centre,
                     None if self.weight is None else self.weight[rows],
                     None if self.evidence_targets is None
                     else self.evidence_targets[rows], self.grams,
                     rows if self.rows is None else self.rows[rows],
                     self.root)


#: Allowed values of the parameters every selecting estimator takes; the
#: grids' entries are checked in ``_check_grid``.
_SELECTION_CONSTRAINTS = {
    "depths": ["sequence"],
    "alphas": ["sequence"],
    "weight_variances": ["sequence"],
    "bias_variances": ["sequence"],
    "activations": ["sequence"],
    "architecture": [RegisteredArchitecture()],
    "cv": [Interval(Integral, 2, None, closed="left"), "cv_object", None],
    "criterion": [Options(*CRITERIA)],
    "input_map": [Options(*INPUT_MAPS[:-1]), None],
    "screen_size": [Interval(Integral, 10, None, closed="left"), None],
    "random_state": ["random_state"],
    "device": DEVICE_CONSTRAINTS["device"],
    "verbose": DEVICE_CONSTRAINTS["verbose"],
}
_NTK_SELECTION_CONSTRAINTS = {
    "training_times": ["sequence"],
    "learning_rate": [POSITIVE],
    "parametrization": [Options("ntk", "standard")],
}


class _SelectionBase(ValidatesParameters, _NetworkParamsMixin, BaseEstimator):
    """Grid of kernels x ridges scored in closed form, then one refit."""

    _plain = None           # the estimator refitted with the chosen values
    _kernel_name = None     # "nngp" or "ntk"
    _is_classifier = False

    # ---------------------------------------------------------------- grids
    def _grids(self):
        grids = {
            "alpha": _check_grid(self.alphas, "alphas", "positive"),
            "bias_variance": _check_grid(self.bias_variances,
                                         "bias_variances", "nonneg"),
            "depth": _check_grid(self.depths, "depths", "int"),
            "weight_variance": _check_grid(self.weight_variances,
                                           "weight_variances", "positive"),
        }
        times = getattr(self, "training_times", (None,))
        if self._kernel_name == "ntk":
            grids["training_time"] = _check_grid(times, "training_times",
                                                 "nonneg", allow_none=True)
        return grids

    def _kernels(self, X, wv, bv, depths):
        """{depth: Gram} for one (weight, bias) variance setting."""
        kernel = self._network_kernel(depth=depths[-1], weight_variance=wv,
                                      bias_variance=bv,
                                      activation=self.activation_)
        grams = kernel.grams_by_depth(X, depths, (self._kernel_name,),
                                      backend=CPUBackend())
        return {d: grams[d][self._kernel_name] for d in depths}

    def _grams_of(self, data, wv, bv, depths, grid_depths):
        """{depth: Gram of ``data``} for one (weight, bias) variance
        setting: blocks of the Grams of ``data.root`` of every depth of the
        grid, computed once and kept in ``data.grams`` when it is a dict,
        else from a pass of its own."""
        if data.grams is None:
            return self._kernels(data.X, wv, bv, depths)
        if (wv, bv) not in data.grams:
            data.grams[(wv, bv)] = self._kernels(data.root.X, wv, bv,
                                                 sorted(grid_depths))
        grams = data.grams[(wv, bv)]
        if data.rows is None:
            return {d: grams[d] for d in depths}
        block = np.ix_(data.rows, data.rows)
        return {d: grams[d][block] for d in depths}

    def _network_params(self, depth, wv, bv):
        params = {"depth": depth, "activation": self.activation_,
                  "architecture": self.architecture,
                  "weight_variance": wv, "bias_variance": bv}
        if self._kernel_name == "ntk":
            params["parametrization"] = self.parametrization
        return params

    # --------------------------------------------------------------- scores
    def _splits(self, X, y_for_split):
        if self.criterion == "evidence" or self.cv is None:
            return None
        cv = check_cv(self.cv, y_for_split, classifier=self._is_classifier)
        n = X.shape[0]
        splits = []
        for train, test in cv.split(X, y_for_split):
            train, test = np.asarray(train), np.asarray(test)
            if (len(train) + len(test) != n
                    or len(np.union1d(train, test)) != n):
                raise ValueError(
                    "The closed-form k-fold scores need splits that "
                    "partition the samples (each sample trains or is held "
                    "out, as KFold and StratifiedKFold do); this cv leaves "
                    "samples out of both.")
            splits.append((train, test))
        return splits

    @staticmethod
    def _restrict(splits, rows, n):
        """The splits of all samples seen on the samples ``rows`` (indices
        into them), folds left with nothing held out dropped."""
        if splits is None:
            return None
        position = np.full(n, -1)
        position[rows] = np.arange(len(rows))
        out = []
        for train, test in splits:
            train, test = position[train], position[test]
            train, test = train[train >= 0], test[test >= 0]
            if len(test):
                out.append((train, test))
        return out

    def _check_times(self, grids, splits):
        times = grids.get("training_time", (None,))
        finite_times = any(t is not None for t in times)
        if finite_times and self.criterion == "evidence":
            raise ValueError("criterion='evidence' is defined for "
                             "training_time=None only; drop the finite "
                             "training_times or use criterion='cv'.")
        if finite_times and self.cv is None:
            raise ValueError(
                "Finite training_times have no closed-form leave-one-out; "
                "set cv to a number of folds (e.g. cv=5).")
        return times, finite_times

    def _score_table(self, data, grids, splits, only=None, keep=None,
                     screening=False, passed=None):
        """Scores of candidates: {key: per-split (or per-sample) array}.

        Every candidate of ``grids`` (of the kernels ``passed``, a set of
        (bias variance, depth, weight variance), if given) through one
        eigendecomposition per kernel, or, given ``only`` (a list of keys),
        just those, through one Cholesky factorisation each (see
        :meth:`_finalist_scores`).  ``screening``: the scores of a screen,
        whose eigendecompositions may be in single precision (see
        :meth:`_spectral_scores`).
        """
        times, finite_times = self._check_times(grids, splits)
        # many factorisations of one size in a row: below a thousand rows
        # a threaded BLAS waits for its threads more than they help
        with blas_threads_for(data.X.shape[0]):
            table = {}
            for wv in grids["weight_variance"]:
                for bv in grids["bias_variance"]:
                    keys = None if only is None else [
                        k for k in only if k[4] == wv and k[1] == bv]
                    if keys == []:
                        continue
                    depths = sorted(grids["depth"] if keys is None
                                    else {k[2] for k in keys})
                    if passed is not None:
                        depths = [d for d in depths if (bv, d, wv) in passed]
                        if not depths:
                            continue
                    kernels = self._grams_of(data, wv, bv, depths,
                                             grids["depth"])
                    for d in depths:
                        K = kernels.pop(d)
                        if finite_times:
                            scores = self._per_fold_scores(
                                K, data, grids["alpha"], times, splits)
                        elif keys is None:
                            scores = self._spectral_scores(
                                K, data, grids["alpha"], splits,
                                single=screening and self.criterion == "cv")
                        else:
                            scores = {
                                (k[0], None): self._finalist_scores(
                                    k, K, data, splits, keep)
                                for k in keys if k[2] == d}
                        for (a, t), s in scores.items():
                            key = (a, bv, d, t, wv)
                            if keys is None or key in keys:
                                table[key] = s
                        del K
            return table

    def _spectral_scores(self, K, data, alphas, splits, single=False):
        """Every ``alpha`` from one eigendecomposition of ``D K D``.

        ``single``: the eigendecomposition in single precision, about three
        times faster (the scores are then computed in double precision from
        it); for a screen, whose scores only choose the candidates rescored
        exactly."""
        d = data.sqrt_weight
        if d is not None:
            K = K * d[:, None] * d[None, :]
        if single:
            K = K.astype(np.float32)
        # the divide-and-conquer driver is several times faster than the
        # default one here, and every eigenvector is needed
        w, V = scipy.linalg.eigh(K, check_finite=False, driver="evd",
                                 overwrite_a=d is not None or single)
        if single:
            w, V = w.astype(np.float64), V.astype(np.float64)
        w = np.clip(w, 0.0, None)
        if d is not None:
            V = d[:, None] * V       # H = D (D K D + a I)^-1 D = V' V'^T
        out = {}
        if self.criterion == "evidence":
            VtY = V.T @ data.evidence_targets
            q = VtY.shape[1]
            for a in alphas:
                out[(a, None)] = self._evidence(
                    np.sum(VtY ** 2 / (w + a)[:, None]),
                    q * np.sum(np.log(w + a)), data)
            return out
        Y = data.Y
        n, q = Y.shape
        VtY = V.T @ Y
        Vt1 = V.sum(axis=0)
        # every alpha at once: a few matrix products instead of three
        # matrix-vector products per alpha
        inv = 1.0 / (w[:, None] + np.asarray(alphas)[None, :])   # (n, A)
        HY = (V @ (inv[:, :, None] * VtY[:, None, :]).reshape(n, -1)
              ).reshape(n, len(alphas), q)
        H1 = V @ (inv * Vt1[:, None])
        if splits is not None:
            return self._spectral_fold_scores(data, V, inv, HY, H1, alphas,
                                              splits, single)
        h_diag = (V ** 2) @ inv
        # the leave-one-out residuals of every alpha at once, as
        # _block_scores gives them for one
        if data.centre:
            HY = HY - self._loo_means(data)[:, None, :] * H1[:, :, None]
        R = HY / h_diag[:, :, None]
        for a, scores in zip(alphas, self._many_loo_scores(
                Y, Y[:, None] - R, data.weight)):
            out[(a, None)] = scores
        return out

    def _many_loo_scores(self, Y, preds, weight=None):
        """``_loo_scores`` of each of the predictions ``preds`` (n, k, q)."""
        return [self._loo_scores(Y, preds[:, i], weight)
                for i in range(preds.shape[1])]

    @staticmethod
    def _loo_means(data):
        """(n, q): the weighted mean of the targets without sample i."""
        Y, sw = data.Y, data.weight
        w = np.ones(Y.shape[0]) if sw is None else sw
        total = w @ Y
        return (total - w[:, None] * Y) / (w.sum() - w)[:, None]

    def _spectral_fold_scores(self, data, V, inv, HY, H1, alphas, splits,
                              single=False):
        """k-fold scores of every alpha: per fold, the held-out blocks
        ``H_vv = V_v diag(inv) V_v^T`` of all alphas and one batched solve
        (``HY``, ``H1``: ``H y`` and ``H 1`` per alpha).  ``single``: the
        blocks' products in single precision (the eigenvectors are no more
        precise then), twice as fast."""
        Y, sw = data.Y, data.weight
        root = np.sqrt(inv.T)                      # (alphas, n)
        if single:
            V, root = V.astype(np.float32), root.astype(np.float32)
        scores = []
        with _fold_threads(splits):
            for train, test in splits:
                m = len(test)
                Vv = V[test]
                # H_vv = B B^T with B = V_v diag(inv)^(1/2): a product of
                # a matrix with its own transpose is a symmetric rank-k
                # update, half a general product's work and (measured) ten
                # times faster than one product of all alphas stacked
                blocks = np.empty((len(alphas), m, m))
                for i in range(len(alphas)):
                    B = Vv * root[i]
                    blocks[i] = B @ B.T
                Z = HY[test].transpose(1, 0, 2)         # (alphas, m, q)
                if data.centre:
                    mean = np.average(Y[train], axis=0, weights=None
                                      if sw is None else sw[train])
                    Z = Z - mean[None, None, :] * H1[test].T[:, :, None]
                # batched LU: for stacks of small systems NumPy's loop is
                # about twice as fast as SciPy's Cholesky solve
                R = np.linalg.solve(blocks, Z)
                held = Y[test]
                scores.append(self._fold_scores(
                    held, held[None] - R, None if sw is None else sw[test]))
        scores = np.stack(scores, axis=1)          # (alphas, folds, ...)
        return {(a, None): s for a, s in zip(alphas, scores)}

    def _finalist_scores(self, key, K, data, splits, keep):
        """Scores of one candidate rescored on all samples, through its own
        Cholesky factorisation; ``keep(key, scores, gram)`` may hold on to
        the Gram ``K``, so that the refit of the chosen candidate takes it
        instead of computing it again.  (Fitting the plain estimator of
        every finalist to reuse its factor costs more than factorising
        again: its fit does more than factorise, and only one is kept.)
        """
        scores = self._factored_scores(K, data, key[0], splits)
        if keep is not None:
            keep(key, scores, (data.X, K))
        return scores

    def _factored_scores(self, K, data, a, splits):
        """The scores of one ``alpha`` through a Cholesky factorisation
        ``D K D + a I = U^T U`` (about two factorisations' work with the
        inverse of ``U``, several times less than an eigendecomposition):
        ``H = D U^-1 U^-T D``, never formed."""
        d = data.sqrt_weight
        # Fortran order and the upper factor: LAPACK works in place, and
        # inverts an upper Fortran-ordered factor fastest (measured)
        A = np.array(K, order="F")
        if d is not None:
            A *= d[:, None] * d[None, :]
        A.flat[::A.shape[0] + 1] += a
        U, info = scipy.linalg.lapack.dpotrf(A, lower=0, overwrite_a=1,
                                             clean=1)
        if info != 0:     # not positive definite in floating point
            return self._spectral_scores(K, data, (a,), splits)[(a, None)]
        log_det = 2.0 * np.sum(np.log(np.diag(U)))
        if self.criterion == "evidence":
            Yn = data.evidence_targets
            B = Yn if d is None else d[:, None] * Yn
            W = scipy.linalg.solve_triangular(U, B, trans="T", lower=False,
                                              check_finite=False)
            return self._evidence(np.sum(W ** 2), Yn.shape[1] * log_det,
                                  data)
        Y = data.Y
        n = Y.shape[0]
        B = np.hstack([Y, np.ones((n, 1))])
        if d is not None:
            B = d[:, None] * B
        HB = scipy.linalg.cho_solve((U, False), B, check_finite=False)
        if d is not None:
            HB = d[:, None] * HB
        Uinv, info = scipy.linalg.lapack.dtrtri(U, lower=0, overwrite_c=1)
        if d is not None:
            Uinv *= d[:, None]     # rows of D U^-1: H = (D U^-1) (D U^-1)^T
        if splits is None:
            h_diag = np.einsum("ij,ij->i", Uinv, Uinv)

            def h_block(t):
                return None
        else:
            h_diag = None

            def h_block(t):
                C = Uinv[t]
                return C @ C.T
        return self._block_scores(data, HB[:, :-1], HB[:, -1], h_diag,
                                  h_block, splits)

    def _evidence(self, quad, log_det, data):
        """Log marginal likelihood from ``y^T H y`` and ``log det(D K D +
        a I)`` summed over targets, as the plain estimator reports it."""
        n, q = data.evidence_targets.shape
        if data.sqrt_weight is not None:     # det(K + a W^-1)
            log_det = log_det - 2.0 * q * np.sum(np.log(data.sqrt_weight))
        return np.array([-0.5 * quad - 0.5 * log_det
                         - 0.5 * q * n * np.log(2 * np.pi)])

    def _block_scores(self, data, HY, H1, h_diag, h_block, splits):
        """Held-out residuals ``H_vv^-1 (H z)_v`` scored, from ``H y``,
        ``H 1`` and the diagonal (leave-one-out) or blocks (k-fold) of
        ``H``."""
        Y, sw = data.Y, data.weight
        if splits is None:
            if data.centre:
                HY = HY - self._loo_means(data) * H1[:, None]
            return self._loo_scores(Y, Y - HY / h_diag[:, None], sw)
        scores = []
        with _fold_threads(splits):
            for train, test in splits:
                Z = HY[test]
                if data.centre:
                    mean = np.average(Y[train], axis=0, weights=None
                                      if sw is None else sw[train])
                    Z = Z - mean * H1[test, None]
                R = scipy.linalg.solve(h_block(test), Z, assume_a="pos",
                                       check_finite=False)
                scores.append(self._fold_score(
                    Y[test], Y[test] - R, None if sw is None else sw[test]))
        return np.array(scores)

    def _per_fold_scores(self, K, data, alphas, times, splits):
        """k-fold scores through one eigendecomposition per training fold
        (finite training times: the gradient-flow filter is no ridge, so
        the block formulas do not apply)."""
        eta = self.learning_rate
        Y, sw, d = data.Y, data.weight, data.sqrt_weight
        scores = {(a, t): [] for a in alphas for t in times}
        for train, test in splits:
            Kff = K[np.ix_(train, train)]
            cross = K[np.ix_(test, train)]
            if d is not None:
                Kff *= d[train, None] * d[None, train]
                cross = cross * d[None, train]
            w, V = scipy.linalg.eigh(Kff, check_finite=False, driver="evd",
                                     overwrite_a=True)
            mean = (np.average(Y[train], axis=0,
                               weights=None if sw is None else sw[train])
                    if data.centre else 0.0)
            Z = Y[train] - mean
            if d is not None:
                Z = d[train, None] * Z
            VtZ = V.T @ Z
            cross = cross @ V
            for a in alphas:
                ww = np.clip(w + a, 0.0, None)
                for t in times:
                    if t is None:
                        f = 1.0 / ww
                    else:
                        rate = eta * t
                        with np.errstate(divide="ignore", invalid="ignore"):
                            f = np.where(ww * rate > 1e-12,
                                         -np.expm1(-ww * rate) / ww, rate)
                    pred = mean + cross @ (f[:, None] * VtZ)
                    scores[(a, t)].append(self._fold_score(
                        Y[test], pred, None if sw is None else sw[test]))
        return {key: np.array(s) for key, s in scores.items()}

    # ------------------------------------------------------------ selection
    def _screen_rows(self, n, labels):
        """Rows of the screening stage, or None to score every candidate
        on all samples."""
        size = self.screen_size
        if size is None or n <= size:
            return None
        rng = check_random_state(self.random_state)
        stratify = labels if self._is_classifier else None
        if stratify is not None:
            counts = np.bincount(labels)
            # every class must train in every fold of the screen too
            need = (self.cv if isinstance(self.cv, Integral) else 2) + 1
            if counts.min() * size < need * n:
                return None
        rows = resample(np.arange(n), replace=False, n_samples=size,
                        random_state=rng, stratify=stratify)
        return np.sort(rows)

    def _summarise(self, rows, splits, weight):
        """(mean, std, tie-break, per-split scores) of each candidate."""
        # classifiers score (accuracy, squared error of the one-hot
        # outputs): the second breaks ties of the first, which are common
        loo_weights = weight if splits is None else None
        if len({np.shape(r) for r in rows}) == 1:
            # every candidate at once, by the same reductions as one
            R = np.stack(rows)
            w = (loo_weights if loo_weights is not None
                 and R.shape[1] == len(loo_weights) else None)
            m = np.average(R, axis=1, weights=w)
            first = R[:, :, 0] if R.ndim == 3 else R
            mean = m[:, 0] if R.ndim == 3 else m
            tie = m[:, 1] if R.ndim == 3 else np.zeros(len(R))
            std = np.sqrt(np.average((first - mean[:, None]) ** 2, axis=1,
                                     weights=w))
            return (np.asarray(mean, dtype=float), std,
                    np.asarray(tie, dtype=float), list(first))
        mean, std, tie = [], [], []
        for r in rows:
            w = (loo_weights if loo_weights is not None
                 and len(r) == len(loo_weights) else None)
            m = np.average(r, axis=0, weights=w)
            first = r[:, 0] if r.ndim == 2 else r
            mean.append(np.atleast_1d(m)[0])
            tie.append(m[1] if r.ndim == 2 else 0.0)
            centred = (first - mean[-1]) ** 2
            std.append(np.sqrt(np.average(centred, weights=w)))
        first = [r[:, 0] if r.ndim == 2 else r for r in rows]
        return (np.array(mean, dtype=float), np.array(std, dtype=float),
                np.array(tie, dtype=float), first)

    def _select(self, X, Y, centre, y_for_split, keep, labels=None,
                weight=None, evidence_targets=None, training=None,
                screen_table=None, record=None):
        """Score the grid on the kept samples (``keep`` of the rows of
        ``y_for_split``, which the folds split) and set the chosen values.

        ``training`` (the refit's inputs, targets and weights): given, the
        refit of a candidate rescored after a screen takes the Gram the
        rescoring computed.
        ``screen_table``: (rows, table) of an exact selection on the same
        inputs' rows ``rows`` (leave-one-out or evidence), the screen's
        scores if it screens the same rows; ``record``: a list to which an
        exact selection appends its table."""
        grids = self._grids()
        names = sorted(grids)
        candidates = [dict(zip(names, values))
                      for values in itertools.product(*(grids[k]
                                                        for k in names))]
        keys = [(c["alpha"], c["bias_variance"], c["depth"],
                 c.get("training_time"), c["weight_variance"])
                for c in candidates]
        n = X.shape[0]
        full = _Data(X, Y, centre, weight, evidence_targets)
        results = {}
        for k in names:
            # filled as GridSearchCV fills them: a masked array of a list
            # is built element by element, slowly
            column = np.empty(len(candidates), dtype=object)
            column[:] = [c[k] for c in candidates]
            results[f"param_{k}"] = np.ma.masked_array(column)
        results["params"] = candidates
        n_all = len(y_for_split)
        kept = np.arange(n_all)[keep]
        all_splits = self._splits(np.empty((n_all, 0)), y_for_split)
        screen = self._screen_rows(n, labels)
        start = time.perf_counter()
        finalists = None
        if screen is not None:
            part = full.take(screen)
            # the coarse screen's Grams are blocks of the screen's: one pass
            # of the recursion for both (one on all samples as well would
            # cost more than it saves: it keeps every depth)
            part.grams, part.rows, part.root = {}, None, part
            splits = self._restrict(all_splits, kept[screen], n_all)
            self._check_splits(splits, None if labels is None
                               else labels[screen], screened=True)
            passed = None
            if (screen_table is not None and splits is None
                    and np.array_equal(screen_table[0], screen)):
                table = screen_table[1]
            else:
                passed = self._coarse_screen(part, grids, keys, candidates,
                                             all_splits, kept[screen], n_all,
                                             None if labels is None
                                             else labels[screen], results)
                table = self._score_table(part, grids, splits,
                                          screening=True, passed=passed)
            mean, tie = self._partial_means(table, keys, splits, part.weight)
            self._check_scores(mean, candidates, screened=True,
                               scored=np.array([k in table for k in keys]))
            results["mean_screen_score"] = mean
            results["rank_screen_score"] = _rank(mean)
            finalists = self._finalists(keys, mean, tie, grids["alpha"])
            self._say(1, f"screened {len(table)} candidates on {len(screen)} "
                         f"of {n} samples in "
                         f"{time.perf_counter() - start:.2f} s; rescoring "
                         f"{len(finalists)} on all samples")
        splits = self._restrict(all_splits, kept, n_all)
        self._check_splits(splits, labels)
        leader = []

        def keep_best(key, scores, gram):
            # the order of the choice below: best mean, then tie-break, then
            # the first in the grid
            mean, _, tie, _ = self._summarise([scores], splits, weight)
            if not np.isfinite(mean[0]):
                return
            order = (mean[0], tie[0], -keys.index(key))
            if not leader or order > leader[0]:
                leader[:] = [order, key, gram]
        table = self._score_table(
            full, grids, splits, only=finalists,
            keep=None if training is None else keep_best)
        if record is not None and finalists is None:
            record.append(table)
        rows = [table.get(k) for k in keys]
        filled = [r for r in rows if r is not None]
        mean, std, tie, first = self._summarise(filled, splits, weight)
        at = [i for i, r in enumerate(rows) if r is not None]

        def spread(values):
            out = np.full(len(rows), np.nan)
            out[at] = values
            return out
        if splits is not None:
            for i in range(len(splits)):
                results[f"split{i}_test_score"] = spread([f[i]
                                                          for f in first])
        results["mean_test_score"] = spread(mean)
        results["std_test_score"] = spread(std)
        tie = spread(tie)
        mean = results["mean_test_score"]
        if finalists is None:
            self._check_scores(mean, candidates)
        rank = _rank(mean)
        results["rank_test_score"] = rank
        self.cv_results_ = results
        best = np.flatnonzero(rank == 1)
        self.best_index_ = int(best[np.argmax(tie[best])])
        self.best_score_ = float(mean[self.best_index_])
        self.best_params_ = dict(candidates[self.best_index_])
        self._best_scores = first[at.index(self.best_index_)]
        for name, value in self.best_params_.items():
            setattr(self, name + "_", value)
        self._finalist = (leader[2] if leader
                          and leader[1] == keys[self.best_index_] else None)
        self._say(1, f"chose {self.best_params_} (score "
                     f"{self.best_score_:.6g}) in "
                     f"{time.perf_counter() - start:.2f} s")

    def _coarse_screen(self, part, grids, keys, candidates, all_splits,
                       rows, n_all, labels, results):
        """The (bias variance, depth, weight variance) of the
        ``FINE_KERNELS`` kernels whose best candidates score best on a
        random half of the screening samples ``part`` (``rows`` of all
        samples), all the kernels (None) when there are no more; the
        scores go to ``results`` as ``mean_coarse_score``."""
        kernels = list(itertools.product(grids["bias_variance"],
                                         grids["depth"],
                                         grids["weight_variance"]))
        n = part.X.shape[0]
        coarse = (None if len(kernels) <= FINE_KERNELS
                  else self._coarse_rows(n, labels))
        if coarse is None:
            return None
        size = len(coarse)
        splits = self._restrict(all_splits, rows[coarse], n_all)
        self._check_splits(splits, None if labels is None
                           else labels[coarse], screened=True)
        table = self._score_table(part.take(coarse), grids, splits,
                                  screening=True)
        mean, tie = self._partial_means(table, keys, splits,
                                        None if part.weight is None
                                        else part.weight[coarse])
        self._check_scores(mean, candidates, screened=True)
        results["mean_coarse_score"] = mean
        results["rank_coarse_score"] = _rank(mean)
        kernel_of = [(k[1], k[2], k[4]) for k in keys]
        passed = [kernel_of[i] for i in _best_of_kernels(mean, tie, kernel_of,
                                                          FINE_KERNELS)]
        self._say(1, f"screened {len(keys)} candidates on {size} of "
                     f"{n} screening samples; passing on {len(passed)} "
                     "kernels")
        return set(passed)

    def _coarse_rows(self, n, labels):
        """Rows (of the ``n`` screening samples) of the coarse screen, a
        random half (stratified for classifiers), or None where it would be
        too small or lack a class in a training fold."""
        size = n // 2
        if size < 10:
            return None
        stratify = labels if self._is_classifier else None
        if stratify is not None:
            counts = np.bincount(labels)
            # every class must train in every fold of the coarse screen
            need = (self.cv if isinstance(self.cv, Integral) else 2) + 1
            if counts[counts > 0].min() * size < need * n:
                return None
        return np.sort(resample(np.arange(n), replace=False, n_samples=size,
                                random_state=0, stratify=stratify))

    def _partial_means(self, table, keys, splits, weight):
        """(mean, tie-break) of each candidate of ``table``, NaN for the
        candidates it lacks."""
        at = [i for i, k in enumerate(keys) if k in table]
        mean, _, tie, _ = self._summarise([table[keys[i]] for i in at],
                                          splits, weight)
        out = np.full((2, len(keys)), np.nan)
        out[0, at], out[1, at] = mean, tie
        return out[0], out[1]

    def _finalists(self, keys, mean, tie, alphas):
        """Keys rescored on all samples after the screen: the best
        candidate of each of the ``SCREEN_KERNELS`` best kernels, and the
        ridges beside the best one."""
        chosen = [keys[i] for i in _best_of_kernels(
            mean, tie, [k[1:] for k in keys], SCREEN_KERNELS, finite=True)]
        # a subset's ridge can be one grid step off that of all samples
        alphas = list(alphas)
        best = chosen[0]
        at = alphas.index(best[0])
        for j in (at - 1, at + 1):
            if 0 <= j < len(alphas):
                chosen.append((alphas[j],) + best[1:])
        return chosen

    def _select_variants(self, scales, mapped, Y, centre, y_for_split,
                         keep, labels=None, weight=None,
                         evidence_targets=None, training=()):
        """Choose the activation (of ``activations``) and input scale (of
        ``scales``; ``mapped(factor)``: the inputs after it), select the
        grid for them on all samples (as :meth:`_select`; ``training``: the
        refit's targets and weights) and return the scale and its inputs.

        With more than one (activation, scale) each is selected on the
        screening subset (all samples when there is none; see
        :meth:`_variant_results`). For each activation the best scale
        replaces the first only if its best candidate's held-out scores
        (per sample for leave-one-out, per fold for k-fold) beat those of
        the first's best in a one-sided paired t-test at level
        ``SCALE_TEST_LEVEL`` shared among the other scales; the best
        activation so found then replaces the first activation the same
        way, so that noise in a small sample does not move the defaults.
        A single score per candidate (the evidence, or "r2" with
        leave-one-out) is compared as it is.
        """
        activations = _check_grid(self.activations, "activations",
                                  "activation")
        screen_table = None
        if len(activations) == 1 and len(scales) == 1:
            chosen = (activations[0], scales[0])
        else:
            rows, results = self._variant_results(
                activations, scales, mapped, Y, centre, y_for_split, keep,
                labels, weight, evidence_targets)

            def winner(options):
                best = options[int(np.nanargmax([results[o][0]
                                                  for o in options]))]
                gain = results[best][1] - results[options[0]][1]
                if best != options[0] and len(gain) > 2:
                    error = np.std(gain, ddof=1) / np.sqrt(len(gain))
                    level = SCALE_TEST_LEVEL / (len(options) - 1)
                    if not np.mean(gain) > scipy.stats.t.ppf(
                            1 - level, len(gain) - 1) * error:
                        return options[0]
                return best
            chosen = winner([winner([(a, f) for f in scales])
                             for a in activations])
            self._say(1, f"chose activation {chosen[0]}, input scale "
                         f"{chosen[1]:g}")
            if rows is None:       # the selection on all samples is made
                self.__dict__.update(results[chosen][2])
                return chosen[1], mapped(chosen[1])
            screen_table = (rows, results[chosen][3])
        self.activation_ = chosen[0]
        Xm = mapped(chosen[1])
        self._select(Xm[keep], Y, centre, y_for_split, keep, labels=labels,
                     weight=weight, evidence_targets=evidence_targets,
                     training=(Xm, *training), screen_table=screen_table)
        return chosen[1], Xm

    def _variant_results(self, activations, scales, mapped, Y, centre,
                         y_for_split, keep, labels, weight,
                         evidence_targets):
        """(screening rows or None, {(activation, scale): (best score, its
        held-out scores, the fitted state, the exact table on the rows)})
        of the selection of every (activation, scale) on the screening
        subset, or on all samples where there is none."""
        rows = self._screen_rows(Y.shape[0], labels)
        if rows is not None:
            y_for_split = np.asarray(y_for_split)[keep][rows]
            Y, evidence_targets = Y[rows], evidence_targets[rows]
            labels = None if labels is None else labels[rows]
            weight = None if weight is None else weight[rows]
        results = {}
        for activation in activations:
            self.activation_ = activation
            for factor in scales:
                X = mapped(factor)[keep]
                tables = []
                self._select(X if rows is None else X[rows], Y, centre,
                             y_for_split, keep if rows is None
                             else slice(None), labels=labels,
                             weight=weight,
                             evidence_targets=evidence_targets,
                             record=tables)
                state = {k: v for k, v in vars(self).items()
                         if k.endswith("_") or k == "_best_scores"}
                scores = np.asarray(self._best_scores, dtype=float)
                if scores.ndim == 2:    # classifiers: (accuracy, -error)
                    scores = scores[:, 0]
                results[(activation, factor)] = (
                    self.best_score_, np.ravel(scores), state,
                    tables[0] if tables else None)
            self._say(1, f"{activation}: " + ", ".join(
                f"input scale {f:g} {results[(activation, f)][0]:.6g}"
                for f in scales) + " (on "
                f"{'all' if rows is None else len(rows)} samples)")
        return rows, results

    def _check_scores(self, mean, candidates, screened=False, scored=None):
        """Errors or warnings for scores that do not choose, among the
        candidates ``scored`` (a mask; all if None): those a coarse screen
        did not pass on were checked there."""
        if scored is not None:
            mean = mean[scored]
            candidates = [c for c, s in zip(candidates, scored) if s]
        bad = ~np.isfinite(mean)
        where = "on the screening samples " if screened else ""
        if np.all(bad):
            raise FloatingPointError(
                f"Every candidate scored NaN or inf {where}; check the data "
                "for extreme values or narrow the grids.")
        if np.any(bad):
            warnings.warn(
                f"{int(bad.sum())} of {len(mean)} candidates scored NaN or "
                f"inf {where}(for example {candidates[np.argmax(bad)]}) and "
                "rank last; check the data for extreme values or narrow the "
                "grids.", SelectionWarning, stacklevel=caller_stacklevel())
        good = mean[~bad]
        if len(good) > 1 and np.ptp(good) == 0:
            warnings.warn(
                f"Every candidate scored the same {where}({good[0]:.6g}), so "
                "the data do not choose; the first one is kept. Check the "
                "targets (constant?) and widen the grids.", SelectionWarning,
                stacklevel=caller_stacklevel())

    def _check_splits(self, splits, labels, screened=False):
        pass

    def _mapped(self, X):
        """Validated prediction inputs after ``input_map`` (float32 kept,
        as the plain estimators return float32 for it)."""
        check_is_fitted(self)
        X = validate_data(self, on_host(X), reset=False,
                          dtype=[np.float64, np.float32])
        scale = getattr(self, "input_scale_", 1.0)
        if scale != 1.0:
            X = (X * scale).astype(X.dtype, copy=False)
        return map_inputs(X, self.input_map)

    def _say(self, level, message):
        if self.verbose >= level:
            print(f"[{type(self).__name__}] {message}", flush=True)

    def _plain_params(self, key):
        """Parameters of the plain estimator of candidate ``key``."""
        alpha, bv, depth, t, wv = key
        params = self._network_params(depth, wv, bv)
        params.update(alpha=alpha, solver="cholesky", device=self.device,
                      verbose=self.verbose, **self._extra_params())
        if self._kernel_name == "ntk":
            params.update(training_time=t, learning_rate=self.learning_rate)
        return params

    def _fit_plain(self, key, training, gram=None):
        """The plain estimator of candidate ``key`` fitted on ``training``
        (the inputs after ``input_map``, the targets, the weights); given
        ``gram``, the Gram of its kept samples, a fit on the host takes it
        instead of computing it again."""
        estimator = self._plain(**self._plain_params(key))
        if gram is None:
            return estimator.fit(*training)
        Xk, K = gram
        name = self._kernel_name
        fitted = []

        def given(target):
            def grams(A, B, want):
                if (B is None and tuple(want) == (name,)
                        and isinstance(target._fit_backend, CPUBackend)
                        and A.shape == Xk.shape and np.array_equal(A, Xk)):
                    return {name: K}
                return type(target)._grams(target, A, B, want)
            # an instance attribute for the fit only: pickles and clones of
            # the fitted estimator never see it
            target._grams = grams
            fitted.append(target)
            return target

        if hasattr(estimator, "_regressor"):   # classifiers fit a regressor
            plain = estimator._regressor
            estimator._regressor = lambda **p: given(plain(**p))
        else:
            given(estimator)
        try:
            estimator.fit(*training)
        finally:
            estimator.__dict__.pop("_regressor", None)
            for target in fitted:
                target.__dict__.pop("_grams", None)
        return estimator

    def _refit(self, X, y, sample_weight):
        gram = self.__dict__.pop("_finalist", None)
        key = (self.alpha_, self.bias_variance_, self.depth_,
               getattr(self, "training_time_", None), self.weight_variance_)
        best = self._fit_plain(key, (X, y, sample_weight), gram=gram)
        self.best_estimator_ = best
        fitted = getattr(self.best_estimator_, "regressor_",
                         self.best_estimator_)
        self.kernel_ = fitted.kernel_
        self.device_ = fitted.device_
        return self

    def _extra_params(self):
        return {}


# ------------------------------------------------------------------ regressors
#: The parameters and docs the two regressors add to the selection's.
_REGRESSOR_CV_CONSTRAINTS = {
    "scoring": [Options(*REGRESSION_SCORES), None],
    "normalize_y": ["boolean"],
    "input_scales": ["sequence"],
}
_REGRESSOR_CV_DOC = """    input_scales : sequence of float, default=(1.0, 0.25, 0.5, 2.0)
        Factors applied to the inputs before ``input_map``, the part a
        length scale plays for an RBF kernel (after the lift a smaller
        factor gives a smoother kernel of Euclidean distances). Every
        factor is selected on the screening subset (all samples when
        ``screen_size`` does not apply); the best replaces the first only
        if its held-out scores beat the first's in a one-sided paired
        t-test at level 0.05 shared among the other factors (per sample for
        leave-one-out, per fold for k-fold; a single score, the evidence or
        leave-one-out "r2", is compared as it is). ``(1.0,)`` turns this
        off.
    device : {"auto", "cpu", "gpu"}, default="auto"
        Where the refitted model runs; the selection runs on the CPU.
"""


class _RegressorCV(RegressorMixin, _SelectionBase):

    def _extra_params(self):
        return {"normalize_y": self.normalize_y}

    def _loo_scores(self, Y, pred, weight=None):
        if self._scoring() == "r2":
            w = np.ones(len(Y)) if weight is None else weight
            ss_res = w @ (Y - pred) ** 2
            ss_tot = w @ (Y - np.average(Y, axis=0, weights=w)) ** 2
            with np.errstate(divide="ignore", invalid="ignore"):
                r2 = np.where(ss_tot > 0, 1 - ss_res / ss_tot, 0.0)
            return np.array([np.mean(r2)])
        return -np.mean((Y - pred) ** 2, axis=1)

    def _many_loo_scores(self, Y, preds, weight=None):
        if self._scoring() == "r2":
            return super()._many_loo_scores(Y, preds, weight)
        # every prediction at once: a loop of small reductions costs more
        return list(-np.mean((Y[:, None] - preds) ** 2, axis=2).T)

    def _fold_score(self, Y, pred, weight=None):
        if self._scoring() == "r2":
            from sklearn.metrics import r2_score
            return r2_score(Y, pred, sample_weight=weight)
        return -np.average(np.mean((Y - pred) ** 2, axis=1), weights=weight)

    def _fold_scores(self, Y, preds, weight=None):
        """``_fold_score`` of each of a stack of predictions."""
        if self._scoring() == "r2":
            return np.array([self._fold_score(Y, p, weight) for p in preds])
        return -np.average(np.mean((Y[None] - preds) ** 2, axis=2), axis=1,
                           weights=weight)

    def _scoring(self):
        return ("neg_mean_squared_error" if self.scoring is None
                else self.scoring)

    @fit_doc("Score every candidate in closed form, then refit the best.",
             y=TARGETS, extra=SAMPLE_WEIGHT + """\
    Weights of the squared loss, as in the plain estimator (noise
    variance ``alpha / w`` per sample; zero weights drop samples).
    Each held-out sample is predicted by the weighted model fitted
    without it, and the scores are weighted by the held-out
    samples' weights.
""")
    def fit(self, X, y, sample_weight=None):
        X, y = on_host(X), on_host(y)
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True,
                             ensure_min_samples=3, dtype=np.float64)
        Y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        scales = _check_grid(self.input_scales, "input_scales", "positive")
        weight, keep = _kept_weights(sample_weight, X.shape[0])
        Yk = Y[keep]
        if np.all(np.ptp(Yk, axis=0) == 0):
            warnings.warn("The targets are constant; every candidate "
                          "predicts them alike, so the selection is "
                          "arbitrary.", SelectionWarning,
                          stacklevel=caller_stacklevel())
        centre = bool(self.normalize_y)
        evidence_targets = Yk
        if centre:
            mean = np.average(Yk, axis=0, weights=weight)
            scale = np.sqrt(np.average((Yk - mean) ** 2, axis=0,
                                       weights=weight))
            scale[scale == 0] = 1.0
            evidence_targets = (Yk - mean) / scale

        def mapped(factor):
            return map_inputs(X if factor == 1.0 else X * factor,
                              self.input_map)
        self.input_scale_, Xm = self._select_variants(
            scales, mapped, Yk, centre, Y[:, 0], keep, weight=weight,
            evidence_targets=evidence_targets, training=(y, sample_weight))
        return self._refit(Xm, y, sample_weight)

    def predict(self, X, return_std=False, return_cov=False):
        """Predictions of ``best_estimator_`` (see its ``predict``)."""
        X = self._mapped(X)
        return self.best_estimator_.predict(X, return_std=return_std,
                                            return_cov=return_cov)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


class NNGPRegressorCV(_RegressorCV):
    __doc__ = """NNGP regression with its depth and noise chosen in closed form.

    Every depth comes from one pass of the recursion and every ``alpha``
    from one eigendecomposition per depth (exact leave-one-out or k-fold
    residuals, or the log marginal likelihood); the best candidate is then
    refitted as :class:`NNGPRegressor`, whose predictions it returns.

    Parameters
    ----------""" + _SELECTION_DOC + """    normalize_y : bool, default=True
        Centre and scale the targets (then ``alpha`` is a noise level
        relative to the target variance).
""" + _REGRESSOR_CV_DOC + """
    Attributes
    ----------""" + _SELECTION_ATTRIBUTES_DOC + """    input_scale_ : float
        The chosen input scale (``best_params_`` hold the parameters of
        the plain estimator, refitted on the scaled inputs);
        ``cv_results_`` are the candidates' scores at this scale.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from skinfinite.models import NNGPRegressorCV
    >>> X, y = load_diabetes(return_X_y=True)
    >>> model = NNGPRegressorCV(depths=(1, 2, 3)).fit(X[:200], y[:200])
    >>> model.depth_ in (1, 2, 3)
    True
    """

    _plain = NNGPRegressor
    _kernel_name = "nngp"

    _parameter_constraints = {
        **_SELECTION_CONSTRAINTS,
        **_REGRESSOR_CV_CONSTRAINTS,
    }

    def __init__(self, depths=DEPTHS, alphas=ALPHAS, weight_variances=(2.0,),
                 bias_variances=(0.1,), activations=ACTIVATIONS,
                 architecture="fully_connected", cv=None, scoring=None,
                 criterion="cv", normalize_y=True, input_map=INPUT_MAP,
                 input_scales=INPUT_SCALES, screen_size=SCREEN_SIZE,
                 random_state=0,
                 device="auto", verbose=0):
        self.depths = depths
        self.alphas = alphas
        self.weight_variances = weight_variances
        self.bias_variances = bias_variances
        self.activations = activations
        self.architecture = architecture
        self.cv = cv
        self.scoring = scoring
        self.criterion = criterion
        self.normalize_y = normalize_y
        self.input_map = input_map
        self.input_scales = input_scales
        self.screen_size = screen_size
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def log_marginal_likelihood(self):
        """Log evidence of the refitted model (see :class:`NNGPRegressor`)."""
        check_is_fitted(self)
        return self.best_estimator_.log_marginal_likelihood()

    def sample_y(self, X, n_samples=1, random_state=0):
        """Posterior draws of the refitted model."""
        check_is_fitted(self)
        return self.best_estimator_.sample_y(X, n_samples, random_state)


class NTKRegressorCV(_RegressorCV):
    __doc__ = """NTK regression with its depth, ridge and training time chosen
    in closed form.

    As :class:`NNGPRegressorCV` on the NTK; finite ``training_times`` need
    k-fold ``cv`` (one eigendecomposition per training fold and depth
    serves every ``alpha`` and time). ``criterion="evidence"`` treats the
    NTK as a Gaussian-process covariance.

    Parameters
    ----------""" + _SELECTION_DOC + """    training_times : sequence of float or None, default=(None,)
        Gradient-flow times; None is training to convergence.
    learning_rate : float, default=1.0
    parametrization : {"ntk", "standard"}, default="ntk"
    normalize_y : bool, default=True
""" + _REGRESSOR_CV_DOC + """
    Attributes
    ----------""" + _SELECTION_ATTRIBUTES_DOC + """    training_time_ : float or None
    input_scale_ : float
        As in :class:`NNGPRegressorCV`.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from skinfinite.models import NTKRegressorCV
    >>> X, y = load_diabetes(return_X_y=True)
    >>> model = NTKRegressorCV(depths=(1, 2)).fit(X[:200], y[:200])
    >>> sorted(model.best_params_)
    ['alpha', 'bias_variance', 'depth', 'training_time', 'weight_variance']
    """

    _plain = NTKRegressor
    _kernel_name = "ntk"

    _parameter_constraints = {
        **_SELECTION_CONSTRAINTS,
        **_NTK_SELECTION_CONSTRAINTS,
        **_REGRESSOR_CV_CONSTRAINTS,
    }

    def __init__(self, depths=DEPTHS, alphas=ALPHAS, weight_variances=(2.0,),
                 bias_variances=(0.1,), training_times=(None,),
                 learning_rate=1.0, activations=NTK_REGRESSOR_ACTIVATIONS,
                 architecture="fully_connected", parametrization="ntk",
                 cv=None, scoring=None, criterion="cv", normalize_y=True,
                 input_map=INPUT_MAP, input_scales=INPUT_SCALES,
                 screen_size=SCREEN_SIZE,
                 random_state=0,
                 device="auto", verbose=0):
        self.depths = depths
        self.alphas = alphas
        self.weight_variances = weight_variances
        self.bias_variances = bias_variances
        self.training_times = training_times
        self.learning_rate = learning_rate
        self.activations = activations
        self.architecture = architecture
        self.parametrization = parametrization
        self.cv = cv
        self.scoring = scoring
        self.criterion = criterion
        self.normalize_y = normalize_y
        self.input_map = input_map
        self.input_scales = input_scales
        self.screen_size = screen_size
        self.random_state = random_state
        self.device = device
        self.verbose = verbose


# ----------------------------------------------------------------- classifiers
class _ClassifierCV(ClassifierMixin, _SelectionBase):
    _is_classifier = True

    def _extra_params(self):
        return {"temperature": self.temperature}

    def _loo_scores(self, Y, pred, weight=None):
        right = np.argmax(pred, axis=1) == np.argmax(Y, axis=1)
        return np.stack([right, -np.sum((Y - pred) ** 2, axis=1)], axis=1)

    def _many_loo_scores(self, Y, preds, weight=None):
        right = np.argmax(preds, axis=2) == np.argmax(Y, axis=1)[:, None]
        scores = np.stack([right, -np.sum((Y[:, None] - preds) ** 2,
                                          axis=2)], axis=2)
        return [scores[:, i] for i in range(preds.shape[1])]

    def _fold_score(self, Y, pred, weight=None):
        right = np.argmax(pred, axis=1) == np.argmax(Y, axis=1)
        return np.array([np.average(right, weights=weight),
                         -np.average(np.sum((Y - pred) ** 2, axis=1),
                                     weights=weight)])

    def _fold_scores(self, Y, preds, weight=None):
        """``_fold_score`` of each of a stack of predictions."""
        right = np.argmax(preds, axis=2) == np.argmax(Y, axis=1)[None]
        return np.stack([
            np.average(right, axis=1, weights=weight),
            -np.average(np.sum((Y[None] - preds) ** 2, axis=2), axis=1,
                        weights=weight)], axis=1)

    def _check_splits(self, splits, codes, screened=False):
        if splits is None:
            if self.criterion == "evidence" or screened:
                return
            counts = np.bincount(codes, minlength=len(self.classes_))
            if counts.min() < 2:
                single = self.classes_[counts < 2].tolist()
                warnings.warn(
                    f"Classes {single!r} have a single sample: leaving it out "
                    "is scored with the class still among the outputs (its "
                    "one-hot column), which a classifier refitted without "
                    "the sample would not have. Give such classes more "
                    "samples or use criterion='evidence'.", SelectionWarning,
                    stacklevel=caller_stacklevel())
            return
        for i, (train, _) in enumerate(splits):
            present = np.unique(codes[train])
            if len(present) < len(self.classes_):
                missing = np.setdiff1d(np.arange(len(self.classes_)), present)
                where = " on the screening samples" if screened else ""
                raise ValueError(
                    f"Training fold {i} of cv{where} has no sample of class "
                    f"{self.classes_[missing[0]].tolist()!r}; use fewer "
                    "folds or a stratified splitter"
                    + (", or a larger screen_size." if screened else "."))

    @fit_doc("Score every candidate in closed form, then refit the best.",
             extra=SAMPLE_WEIGHT + """\
    Weights of the squared loss on the one-hot targets, as in the
    plain classifier; zero weights drop samples. Accuracies are
    weighted by the held-out samples' weights.
""")
    def fit(self, X, y, sample_weight=None):
        X, y = on_host(X), on_host(y)
        X, y = validate_data(self, X, y, ensure_min_samples=2,
                             dtype=np.float64)
        check_classification_targets(y)
        codes = encode_classes(self, y)
        X = map_inputs(X, self.input_map)
        weight, keep = _kept_weights(sample_weight, X.shape[0])
        codes = codes[keep]
        Y = one_hot_targets(codes, len(self.classes_))
        self._select_variants((1.0,), lambda factor: X, Y, False, y, keep,
                              labels=codes, weight=weight,
                              evidence_targets=Y,
                              training=(y, sample_weight))
        return self._refit(X, y, sample_weight)

    def decision_function(self, X):
        """Decision function of ``best_estimator_``."""
        X = self._mapped(X)
        return self.best_estimator_.decision_function(X)

    def predict(self, X):
        """Classes predicted by ``best_estimator_``."""
        X = self._mapped(X)
        return self.best_estimator_.predict(X)

    def predict_proba(self, X):
        """Class probabilities of ``best_estimator_``."""
        X = self._mapped(X)
        return self.best_estimator_.predict_proba(X)


class NNGPClassifierCV(_ClassifierCV):
    __doc__ = """NNGP classifier with its depth and noise chosen in closed form.

    The candidates are scored by the exact leave-one-out (or k-fold)
    accuracy of :class:`NNGPClassifier`, all ridges from one
    eigendecomposition per depth; the best is refitted.

    Parameters
    ----------""" + _SELECTION_DOC + """    temperature : float, default=0.1
        See :class:`NNGPClassifier`.
    device : {"auto", "cpu", "gpu"}, default="auto"
        Where the refitted model runs; the selection runs on the CPU.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)""" + _SELECTION_ATTRIBUTES_DOC + """
    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skinfinite.models import NNGPClassifierCV
    >>> X, y = load_iris(return_X_y=True)
    >>> NNGPClassifierCV().fit(X, y).score(X, y) > 0.9
    True
    """

    _plain = NNGPClassifier
    _kernel_name = "nngp"

    _parameter_constraints = {
        **_SELECTION_CONSTRAINTS,
        "scoring": [Options(*CLASSIFICATION_SCORES), None],
        "temperature": [POSITIVE],
    }

    def __init__(self, depths=DEPTHS, alphas=ALPHAS, weight_variances=(2.0,),
                 bias_variances=(0.1,), activations=ACTIVATIONS,
                 architecture="fully_connected", cv=None, scoring=None,
                 criterion="cv", temperature=0.1, input_map=None,
                 screen_size=SCREEN_SIZE,
                 random_state=0,
                 device="auto", verbose=0):
        self.depths = depths
        self.alphas = alphas
        self.weight_variances = weight_variances
        self.bias_variances = bias_variances
        self.activations = activations
        self.architecture = architecture
        self.cv = cv
        self.scoring = scoring
        self.criterion = criterion
        self.temperature = temperature
        self.input_map = input_map
        self.screen_size = screen_size
        self.random_state = random_state
        self.device = device
        self.verbose = verbose


class NTKClassifierCV(_ClassifierCV):
    __doc__ = """NTK classifier with its depth, ridge and training time chosen
    in closed form.

    As :class:`NNGPClassifierCV` on the NTK (see :class:`NTKRegressorCV` for
    finite training times).

    Parameters
    ----------""" + _SELECTION_DOC + """    training_times : sequence of float or None, default=(None,)
    learning_rate : float, default=1.0
    parametrization : {"ntk", "standard"}, default="ntk"
    temperature : float, default=0.1
    device : {"auto", "cpu", "gpu"}, default="auto"

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)""" + _SELECTION_ATTRIBUTES_DOC + """    training_time_ : float or None

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skinfinite.models import NTKClassifierCV
    >>> X, y = load_iris(return_X_y=True)
    >>> NTKClassifierCV(cv=5).fit(X, y).score(X, y) > 0.9
    True
    """

    _plain = NTKClassifier
    _kernel_name = "ntk"
    _parameter_constraints = {
        **_SELECTION_CONSTRAINTS,
        **_NTK_SELECTION_CONSTRAINTS,
        "scoring": [Options(*CLASSIFICATION_SCORES), None],
        "temperature": [POSITIVE],
    }

    def __init__(self, depths=DEPTHS, alphas=ALPHAS, weight_variances=(2.0,),
                 bias_variances=(0.1,), training_times=(None,),
                 learning_rate=1.0, activations=ACTIVATIONS,
                 architecture="fully_connected", parametrization="ntk",
                 cv=None, scoring=None, criterion="cv", temperature=0.1,
                 input_map=None, screen_size=SCREEN_SIZE,
                 random_state=0,
                 device="auto", verbose=0):
        self.depths = depths
        self.alphas = alphas
        self.weight_variances = weight_variances
        self.bias_variances = bias_variances
        self.training_times = training_times
        self.learning_rate = learning_rate
        self.activations = activations
        self.architecture = architecture
        self.parametrization = parametrization
        self.cv = cv
        self.scoring = scoring
        self.criterion = criterion
        self.temperature = temperature
        self.input_map = input_map
        self.screen_size = screen_size
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
