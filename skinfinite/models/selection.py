"""Built-in model selection for the NTK and NNGP estimators.

``NTKRegressorCV`` and friends choose the depth, the ridge ``alpha`` (and the
NTK training time, the weight and bias variances) the way
:class:`~sklearn.linear_model.RidgeCV` chooses its ridge: for about the cost
of one fit.  One pass of the depth recursion gives the Gram matrix of every
depth; one eigendecomposition per depth gives the exact leave-one-out or
k-fold residuals of every ``alpha`` in closed form, and the marginal
likelihood as well.  The chosen model is then refitted as the plain
estimator, so predictions are exactly those of, say,
``NNGPRegressor(depth=depth_, alpha=alpha_, ...)``.

The closed forms: with ``H = (K + alpha I)^-1 = V diag(1 / (w + alpha)) V^T``
and a held-out block ``v`` (the rest ``f`` trains), the residuals of the
model fitted on ``f`` are ``H_vv^-1 (H z)_v`` with ``z = y - m_f`` and
``m_f`` the mean of ``y`` over ``f`` (zero unless the targets are
normalised).  Leave-one-out is the case of single-sample blocks.
"""
import itertools
import numbers
import warnings

import numpy as np
import scipy.linalg
import scipy.stats
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import check_cv
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .._core.backend import on_host
from .._core.validation import check_choice
from ..engine.driver import gram
from ..engine.cpu.fully_connected import grams_by_depth
from ._base import ARCHITECTURES, _NetworkParamsMixin, encode_classes, \
    one_hot_targets
from .nngp import NNGPClassifier, NNGPRegressor
from .ntk import NTKClassifier, NTKRegressor

__all__ = ["NTKRegressorCV", "NTKClassifierCV", "NNGPRegressorCV",
           "NNGPClassifierCV"]

#: default grids, chosen by cross-validation on training splits of public
#: data (see the "Model selection" section of the estimators guide)
DEPTHS = (1, 2, 3, 4, 6, 8)
ALPHAS = tuple(np.logspace(-4, 3, 15))

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
    activation : str, Activation or callable, default="relu"
    architecture : {"fully_connected", "resnet"}, default="fully_connected"
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
"""

_SELECTION_ATTRIBUTES_DOC = """
    depth_, alpha_, weight_variance_, bias_variance_ : the chosen values
    best_params_ : dict
    best_score_ : float
        Mean cross-validated score (or log evidence) of the chosen values.
    best_index_ : int
        Its row in ``cv_results_``.
    cv_results_ : dict of ndarrays
        As :class:`~sklearn.model_selection.GridSearchCV`'s, rows in the
        same order: ``param_<name>``, ``params``, ``mean_test_score``,
        ``std_test_score``, ``rank_test_score`` and, for k-fold,
        ``split<i>_test_score``.
    best_estimator_ : the plain estimator refitted on all data with the
        chosen values; predictions are its predictions.
    spec_ : the chosen network's kernel recursion
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
        else:
            ok = (isinstance(v, numbers.Real) and not isinstance(v, bool)
                  and np.isfinite(v) and (v >= 0 if kind == "nonneg"
                                          else v > 0))
            what = ("finite non-negative numbers" if kind == "nonneg"
                    else "finite positive numbers")
        if not ok:
            extra = " or None" if allow_none else ""
            raise ValueError(f"{name} must hold {what}{extra}; got {v!r}.")
        out.append(int(v) if kind == "int" else (None if v is None
                                                  else float(v)))
    if len(set(out)) != len(out):
        raise ValueError(f"{name} holds a value twice: {values!r}.")
    return tuple(out)


class _SelectionBase(_NetworkParamsMixin, BaseEstimator):
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
        architecture = check_choice(self.architecture, "architecture",
                                    ARCHITECTURES)
        params = self._network_params(depths[-1], wv, bv)
        spec = self._plain(**params)._spec()
        if architecture == "fully_connected":
            grams = grams_by_depth(X, spec, depths, (self._kernel_name,))
            return {d: grams[d][self._kernel_name] for d in depths}
        return {d: gram(X, None, self._plain(**self._network_params(
            d, wv, bv))._spec(), (self._kernel_name,))[self._kernel_name]
            for d in depths}

    def _network_params(self, depth, wv, bv):
        params = {"depth": depth, "activation": self.activation,
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

    def _score_table(self, X, Y, centre, grids, splits):
        """Scores of every candidate: {key: per-split (or per-sample) array}.

        ``Y`` are the targets the plain estimator fits (raw for the
        regression mean, which centring and scaling leave unchanged but for
        the mean itself, see the module docstring).
        """
        times = grids.get("training_time", (None,))
        finite_times = any(t is not None for t in times)
        if finite_times and self.criterion == "evidence":
            raise ValueError("criterion='evidence' is defined for "
                             "training_time=None only; drop the finite "
                             "training_times or use criterion='cv'.")
        if finite_times and splits is None:
            raise ValueError(
                "Finite training_times have no closed-form leave-one-out; "
                "set cv to a number of folds (e.g. cv=5).")
        depths = sorted(grids["depth"])
        table = {}
        for wv in grids["weight_variance"]:
            for bv in grids["bias_variance"]:
                kernels = self._kernels(X, wv, bv, depths)
                for d in depths:
                    K = kernels.pop(d)
                    for (a, t), s in self._kernel_scores(
                            K, Y, centre, grids["alpha"], times, splits,
                            finite_times).items():
                        table[(a, bv, d, t, wv)] = s
        return table

    def _kernel_scores(self, K, Y, centre, alphas, times, splits,
                       finite_times):
        if finite_times:
            return self._per_fold_scores(K, Y, centre, alphas, times, splits)
        w, V = scipy.linalg.eigh(K, check_finite=False)
        w = np.clip(w, 0.0, None)
        out = {}
        if self.criterion == "evidence":
            Yn = self._evidence_targets
            VtY = V.T @ Yn
            n, q = Yn.shape
            for a in alphas:
                lml = (-0.5 * np.sum(VtY ** 2 / (w + a)[:, None])
                       - 0.5 * q * np.sum(np.log(w + a))
                       - 0.5 * q * n * np.log(2 * np.pi))
                out[(a, None)] = np.array([lml])
            return out
        VtY = V.T @ Y
        Vt1 = V.sum(axis=0) if centre else None
        V2 = V ** 2 if splits is None else None
        n = Y.shape[0]
        for a in alphas:
            inv = 1.0 / (w + a)
            HY = V @ (inv[:, None] * VtY)
            H1 = V @ (inv * Vt1) if centre else None
            if splits is None:
                if centre:
                    mean = (Y.sum(axis=0) - Y) / (n - 1)
                    HY = HY - mean * H1[:, None]
                R = HY / (V2 @ inv)[:, None]
                out[(a, None)] = self._loo_scores(Y, Y - R)
            else:
                scores = []
                for train, test in splits:
                    Z = HY[test]
                    if centre:
                        Z = Z - Y[train].mean(axis=0) * H1[test, None]
                    Vv = V[test]
                    Hvv = (Vv * inv) @ Vv.T
                    R = scipy.linalg.solve(Hvv, Z, assume_a="pos",
                                           check_finite=False)
                    scores.append(self._fold_score(Y[test], Y[test] - R))
                out[(a, None)] = np.array(scores)
        return out

    def _per_fold_scores(self, K, Y, centre, alphas, times, splits):
        """k-fold scores through one eigendecomposition per training fold
        (finite training times: the gradient-flow filter is no ridge, so
        the block formulas do not apply)."""
        eta = self.learning_rate
        scores = {(a, t): [] for a in alphas for t in times}
        for train, test in splits:
            w, V = scipy.linalg.eigh(K[np.ix_(train, train)],
                                     check_finite=False)
            mean = Y[train].mean(axis=0) if centre else 0.0
            VtZ = V.T @ (Y[train] - mean)
            cross = K[np.ix_(test, train)] @ V
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
                    scores[(a, t)].append(self._fold_score(Y[test], pred))
        return {key: np.array(s) for key, s in scores.items()}

    # ------------------------------------------------------------------ fit
    def _select(self, X, Y, centre, y_for_split):
        check_choice(self.criterion, "criterion", CRITERIA)
        grids = self._grids()
        splits = self._splits(X, y_for_split)
        self._check_splits(splits)
        table = self._score_table(X, Y, centre, grids, splits)
        names = sorted(grids)
        candidates = [dict(zip(names, values))
                      for values in itertools.product(*(grids[k]
                                                        for k in names))]
        rows = [table[(c["alpha"], c["bias_variance"], c["depth"],
                       c.get("training_time"), c["weight_variance"])]
                for c in candidates]
        results = {f"param_{k}": np.ma.masked_array(
            [c[k] for c in candidates], dtype=object) for k in names}
        results["params"] = candidates
        # classifiers score (accuracy, squared error of the one-hot
        # outputs): the second breaks ties of the first, which are common
        tie_break = np.array([np.mean(r[:, 1]) if r.ndim == 2 else 0.0
                              for r in rows])
        rows = [r[:, 0] if r.ndim == 2 else r for r in rows]
        if splits is not None:
            for i in range(len(splits)):
                results[f"split{i}_test_score"] = np.array([r[i]
                                                            for r in rows])
        mean = np.array([np.mean(r) for r in rows])
        results["mean_test_score"] = mean
        results["std_test_score"] = np.array([np.std(r) for r in rows])
        if not np.all(np.isfinite(mean)):
            raise FloatingPointError(
                "Some candidates scored NaN or inf; check the data for "
                "extreme values or narrow the grids.")
        # ties share the better rank, as in GridSearchCV
        rank = scipy.stats.rankdata(-mean, method="min").astype(np.int32)
        results["rank_test_score"] = rank
        self.cv_results_ = results
        best = np.flatnonzero(rank == 1)
        self.best_index_ = int(best[np.argmax(tie_break[best])])
        self.best_score_ = float(mean[self.best_index_])
        self.best_params_ = dict(candidates[self.best_index_])
        if len(mean) > 1 and np.ptp(mean) == 0 and np.ptp(tie_break) == 0:
            warnings.warn(
                "Every candidate of the grid scored the same "
                f"({self.best_score_:.6g}), so the data do not choose; the "
                f"first one, {self.best_params_}, is kept. Check the targets "
                "(constant?) and widen the grids.", UserWarning,
                stacklevel=3)
        for name, value in self.best_params_.items():
            setattr(self, name + "_", value)

    def _check_splits(self, splits):
        pass

    def _refit(self, X, y):
        params = self._network_params(self.depth_, self.weight_variance_,
                                      self.bias_variance_)
        params.update(alpha=self.alpha_, solver="cholesky",
                      device=self.device, **self._extra_params())
        if self._kernel_name == "ntk":
            params.update(training_time=self.training_time_,
                          learning_rate=self.learning_rate)
        self.best_estimator_ = self._plain(**params).fit(X, y)
        fitted = getattr(self.best_estimator_, "regressor_",
                         self.best_estimator_)
        self.spec_ = fitted.spec_
        self.device_ = fitted.device_
        return self

    def _extra_params(self):
        return {}


# ------------------------------------------------------------------ regressors
class _RegressorCV(RegressorMixin, _SelectionBase):

    def _extra_params(self):
        return {"normalize_y": self.normalize_y}

    def _loo_scores(self, Y, pred):
        scoring = self._scoring()
        if scoring == "r2":
            ss_res = np.sum((Y - pred) ** 2, axis=0)
            ss_tot = np.sum((Y - Y.mean(axis=0)) ** 2, axis=0)
            with np.errstate(divide="ignore", invalid="ignore"):
                r2 = np.where(ss_tot > 0, 1 - ss_res / ss_tot, 0.0)
            return np.array([np.mean(r2)])
        return -np.mean((Y - pred) ** 2, axis=1)

    def _fold_score(self, Y, pred):
        if self._scoring() == "r2":
            from sklearn.metrics import r2_score
            return r2_score(Y, pred)
        return -np.mean((Y - pred) ** 2)

    def _scoring(self):
        return ("neg_mean_squared_error" if self.scoring is None
                else check_choice(self.scoring, "scoring", REGRESSION_SCORES))

    def fit(self, X, y):
        """Score every candidate in closed form, then refit the best.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)

        Returns
        -------
        self
        """
        X, y = on_host(X), on_host(y)
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True,
                             ensure_min_samples=3, dtype=np.float64)
        self._scoring()
        Y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        if np.all(np.ptp(Y, axis=0) == 0):
            warnings.warn("The targets are constant; every candidate "
                          "predicts them alike, so the selection is "
                          "arbitrary.", UserWarning, stacklevel=2)
        centre = bool(self.normalize_y)
        if centre:
            scale = Y.std(axis=0)
            scale[scale == 0] = 1.0
            self._evidence_targets = (Y - Y.mean(axis=0)) / scale
        else:
            self._evidence_targets = Y
        self._select(X, Y, centre, Y[:, 0])
        del self._evidence_targets
        return self._refit(X, y)

    def predict(self, X, return_std=False, return_cov=False):
        """Predictions of ``best_estimator_`` (see its ``predict``)."""
        check_is_fitted(self)
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
    device : {"auto", "cpu", "gpu"}, default="auto"
        Where the refitted model runs; the selection runs on the CPU.

    Attributes
    ----------""" + _SELECTION_ATTRIBUTES_DOC + """
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

    def __init__(self, depths=DEPTHS, alphas=ALPHAS, weight_variances=(2.0,),
                 bias_variances=(0.1,), activation="relu",
                 architecture="fully_connected", cv=None, scoring=None,
                 criterion="cv", normalize_y=True, device="auto"):
        self.depths = depths
        self.alphas = alphas
        self.weight_variances = weight_variances
        self.bias_variances = bias_variances
        self.activation = activation
        self.architecture = architecture
        self.cv = cv
        self.scoring = scoring
        self.criterion = criterion
        self.normalize_y = normalize_y
        self.device = device

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
    device : {"auto", "cpu", "gpu"}, default="auto"
        Where the refitted model runs; the selection runs on the CPU.

    Attributes
    ----------""" + _SELECTION_ATTRIBUTES_DOC + """    training_time_ : float or None

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

    def __init__(self, depths=DEPTHS, alphas=ALPHAS, weight_variances=(2.0,),
                 bias_variances=(0.1,), training_times=(None,),
                 learning_rate=1.0, activation="relu",
                 architecture="fully_connected", parametrization="ntk",
                 cv=None, scoring=None, criterion="cv", normalize_y=True,
                 device="auto"):
        self.depths = depths
        self.alphas = alphas
        self.weight_variances = weight_variances
        self.bias_variances = bias_variances
        self.training_times = training_times
        self.learning_rate = learning_rate
        self.activation = activation
        self.architecture = architecture
        self.parametrization = parametrization
        self.cv = cv
        self.scoring = scoring
        self.criterion = criterion
        self.normalize_y = normalize_y
        self.device = device


# ----------------------------------------------------------------- classifiers
class _ClassifierCV(ClassifierMixin, _SelectionBase):
    _is_classifier = True

    def _extra_params(self):
        return {"temperature": self.temperature}

    def _loo_scores(self, Y, pred):
        right = np.argmax(pred, axis=1) == np.argmax(Y, axis=1)
        return np.stack([right, -np.sum((Y - pred) ** 2, axis=1)], axis=1)

    def _fold_score(self, Y, pred):
        right = np.argmax(pred, axis=1) == np.argmax(Y, axis=1)
        return np.array([np.mean(right),
                         -np.mean(np.sum((Y - pred) ** 2, axis=1))])

    def _check_splits(self, splits):
        codes = self._codes
        if splits is None:
            if self.criterion == "evidence":
                return
            counts = np.bincount(codes, minlength=len(self.classes_))
            if counts.min() < 2:
                single = self.classes_[counts < 2].tolist()
                warnings.warn(
                    f"Classes {single!r} have a single sample: leaving it out "
                    "is scored with the class still among the outputs (its "
                    "one-hot column), which a classifier refitted without "
                    "the sample would not have. Give such classes more "
                    "samples or use criterion='evidence'.", UserWarning,
                    stacklevel=4)
            return
        for i, (train, _) in enumerate(splits):
            present = np.unique(codes[train])
            if len(present) < len(self.classes_):
                missing = np.setdiff1d(np.arange(len(self.classes_)), present)
                raise ValueError(
                    f"Training fold {i} of cv has no sample of class "
                    f"{self.classes_[missing[0]].tolist()!r}; use fewer folds or a "
                    "stratified splitter.")

    def fit(self, X, y):
        """Score every candidate in closed form, then refit the best.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self
        """
        if self.scoring is not None:
            check_choice(self.scoring, "scoring", CLASSIFICATION_SCORES)
        X, y = on_host(X), on_host(y)
        X, y = validate_data(self, X, y, ensure_min_samples=2,
                             dtype=np.float64)
        check_classification_targets(y)
        self._codes = encode_classes(self, y)
        Y = one_hot_targets(self._codes, len(self.classes_))
        self._evidence_targets = Y
        try:
            self._select(X, Y, False, y)
        finally:
            del self._evidence_targets, self._codes
        return self._refit(X, y)

    def decision_function(self, X):
        """Decision function of ``best_estimator_``."""
        check_is_fitted(self)
        return self.best_estimator_.decision_function(X)

    def predict(self, X):
        """Classes predicted by ``best_estimator_``."""
        check_is_fitted(self)
        return self.best_estimator_.predict(X)

    def predict_proba(self, X):
        """Class probabilities of ``best_estimator_``."""
        check_is_fitted(self)
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

    def __init__(self, depths=DEPTHS, alphas=ALPHAS, weight_variances=(2.0,),
                 bias_variances=(0.1,), activation="relu",
                 architecture="fully_connected", cv=None, scoring=None,
                 criterion="cv", temperature=0.1, device="auto"):
        self.depths = depths
        self.alphas = alphas
        self.weight_variances = weight_variances
        self.bias_variances = bias_variances
        self.activation = activation
        self.architecture = architecture
        self.cv = cv
        self.scoring = scoring
        self.criterion = criterion
        self.temperature = temperature
        self.device = device


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

    def __init__(self, depths=DEPTHS, alphas=ALPHAS, weight_variances=(2.0,),
                 bias_variances=(0.1,), training_times=(None,),
                 learning_rate=1.0, activation="relu",
                 architecture="fully_connected", parametrization="ntk",
                 cv=None, scoring=None, criterion="cv", temperature=0.1,
                 device="auto"):
        self.depths = depths
        self.alphas = alphas
        self.weight_variances = weight_variances
        self.bias_variances = bias_variances
        self.training_times = training_times
        self.learning_rate = learning_rate
        self.activation = activation
        self.architecture = architecture
        self.parametrization = parametrization
        self.cv = cv
        self.scoring = scoring
        self.criterion = criterion
        self.temperature = temperature
        self.device = device
