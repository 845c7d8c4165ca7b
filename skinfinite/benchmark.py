"""Cross-validated comparison of infinite-width networks against classic models.

The benchmark fits the infinite-width kernel machines of :mod:`skinfinite.models`
(NTK and NNGP estimators at a few depths and activations) and well-known
baselines (an RBF support vector machine, RBF kernel ridge regression and a
random forest) on small tabular datasets, and reports the cross-validated
score of each, together with the time spent fitting and predicting.

Datasets
--------
The built-in datasets ship with scikit-learn, so nothing is downloaded:

=================  ==============  =========  ==========
name               task            samples    features
=================  ==============  =========  ==========
``breast_cancer``  classification  569        30
``wine``           classification  178        13
``iris``           classification  150        4
``digits``         classification  1797       64
``diabetes``       regression      442        10
=================  ==============  =========  ==========

A table of your own can be benchmarked with ``csv=PATH, target=COLUMN`` (see
:func:`load_csv` for how it is read and preprocessed).

Protocol
--------
* K-fold cross-validation with shuffling and a fixed seed; the folds are
  stratified by class for classification.  Every model sees the same folds.
* Every model is a :class:`~sklearn.pipeline.Pipeline` whose first step
  standardises the features (or, for a CSV table, imputes, standardises and
  one-hot encodes them), fitted on the training fold only.
* Regression targets are standardised on the training fold too (with
  :class:`~sklearn.compose.TransformedTargetRegressor`), so that
  regularisation strengths mean the same thing on every dataset; predictions
  are mapped back to the original units before scoring.
* The kernel machines (NTK, NNGP and the RBF kernel ridge) share one ridge
  penalty, ``alpha = 1`` (:data:`RIDGE`); network hyperparameters are the
  estimators' defaults (``weight_variance=2``, ``bias_variance=0.1``).
  Nothing is tuned, for the baselines either.
* The score is accuracy for classification and the coefficient of
  determination R^2 for regression (the root mean squared error is reported
  as well).  Mean and standard deviation are taken over the folds; the fit
  and predict times are means per fold, in seconds of wall-clock time.  Each
  model is first fitted once, untimed, on a few rows, so that one-off costs
  such as compiling kernels are not counted.

The model registry (:data:`MODELS`) is the one place where the compared
models are defined; :func:`list_models` describes it.
"""
import csv as _csv
import fnmatch
import math
import os
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.kernel_ridge import KernelRidge
from sklearn.metrics import accuracy_score, mean_squared_error, r2_score
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import LabelBinarizer, OneHotEncoder, StandardScaler
from sklearn.svm import SVC, SVR
from sklearn.utils.multiclass import unique_labels
from sklearn.utils.validation import check_is_fitted

__all__ = [
    "BenchmarkError", "Dataset", "ModelSpec", "DATASETS", "DEFAULT_DATASETS",
    "MODELS", "CSV_COLUMNS", "run_benchmark", "format_table", "write_csv",
    "plot_results", "load_dataset", "load_csv", "make_model", "list_models",
    "list_datasets", "select_models", "KernelRidgeClassifier",
]

CLASSIFICATION = "classification"
REGRESSION = "regression"
TASKS = (CLASSIFICATION, REGRESSION)

#: Columns written by :func:`write_csv`, in order.
CSV_COLUMNS = (
    "dataset", "task", "model", "score_mean", "score_std", "metric",
    "fit_time_s", "predict_time_s", "n_samples", "n_features",
    "rmse_mean", "rmse_std", "folds",
)

# A numeric target with at most this many distinct integer values is taken to
# be a class label when the task of a CSV table is inferred.
MAX_INFERRED_CLASSES = 20

# Cells read as missing in a CSV table (compared after stripping whitespace,
# case-insensitively).
MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "?", "-"})


# Ridge (noise variance) of every kernel machine: the NTK and NNGP models use
# the same penalty as the RBF kernel ridge baseline.  Regression targets are
# standardised, so it is a noise level relative to the target variance.
RIDGE = 1.0


class BenchmarkError(ValueError):
    """A benchmark was asked for something it cannot do (bad name or input)."""


class CSVNotFoundError(BenchmarkError, FileNotFoundError):
    """The CSV file given to the benchmark does not exist."""


# ================================================================== datasets
@dataclass
class Dataset:
    """A table ready for cross-validation.

    Attributes
    ----------
    name : str
        Name shown in the results.
    task : {"classification", "regression"}
    X : ndarray of shape (n_samples, n_features)
        Features; ``float`` for built-in datasets, ``object`` for CSV tables
        (numbers as floats, missing cells as NaN, text as str).
    y : ndarray of shape (n_samples,)
    preprocessor : estimator
        Unfitted transformer placed in front of every model (it is cloned for
        every fold).
    feature_names : list of str
    """

    name: str
    task: str
    X: np.ndarray
    y: np.ndarray
    preprocessor: object
    feature_names: list

    @property
    def n_samples(self):
        return self.X.shape[0]

    @property
    def n_features(self):
        return self.X.shape[1]


def _sklearn_loader(function_name, task):
    def load():
        from sklearn import datasets

        bunch = getattr(datasets, function_name)()
        names = [str(n) for n in getattr(bunch, "feature_names",
                                          range(bunch.data.shape[1]))]
        return task, np.asarray(bunch.data, dtype=float), np.asarray(bunch.target), names
    return load


#: Built-in datasets: name -> (task, loader).  All ship with scikit-learn.
DATASETS = {
    "breast_cancer": (CLASSIFICATION, _sklearn_loader("load_breast_cancer", CLASSIFICATION)),
    "wine": (CLASSIFICATION, _sklearn_loader("load_wine", CLASSIFICATION)),
    "iris": (CLASSIFICATION, _sklearn_loader("load_iris", CLASSIFICATION)),
    "digits": (CLASSIFICATION, _sklearn_loader("load_digits", CLASSIFICATION)),
    "diabetes": (REGRESSION, _sklearn_loader("load_diabetes", REGRESSION)),
}

#: Datasets used when none are named.
DEFAULT_DATASETS = ("breast_cancer", "wine", "iris", "digits", "diabetes")


def list_datasets():
    """Return the names of the built-in datasets.

    Returns
    -------
    names : list of str

    Examples
    --------
    >>> from skinfinite.benchmark import list_datasets
    >>> "wine" in list_datasets()
    True
    """
    return list(DATASETS)


def load_dataset(name):
    """Load a built-in dataset by name.

    Parameters
    ----------
    name : str
        One of :func:`list_datasets`.

    Returns
    -------
    dataset : Dataset
        Features standardised by a :class:`~sklearn.preprocessing.StandardScaler`
        placed in front of every model.

    Raises
    ------
    BenchmarkError
        If the name is unknown; the message lists the valid names.

    Examples
    --------
    >>> from skinfinite.benchmark import load_dataset
    >>> data = load_dataset("wine")
    >>> data.task, data.X.shape
    ('classification', (178, 13))
    """
    key = str(name).strip().lower().replace("-", "_")
    if key not in DATASETS:
        raise BenchmarkError(
            f"Unknown dataset {name!r}; valid names are: {', '.join(DATASETS)}. "
            "Use csv=PATH (--csv PATH) to benchmark a table of your own.")
    task, loader = DATASETS[key]
    task, X, y, names = loader()
    return Dataset(key, task, X, y, StandardScaler(), names)


# ------------------------------------------------------------------ CSV files
def _is_missing(cell):
    return cell is None or cell.strip().lower() in MISSING_TOKENS


def _to_float(cell):
    try:
        value = float(cell)
    except ValueError:
        return None
    return value


def _read_csv_columns(path):
    with open(path, newline="", encoding="utf-8-sig") as handle:
        sample = handle.read(64 * 1024)
        handle.seek(0)
        try:
            dialect = _csv.Sniffer().sniff(sample, delimiters=",;\t|")
        except _csv.Error:
            dialect = _csv.excel
        reader = _csv.reader(handle, dialect)
        try:
            header = next(reader)
        except StopIteration:
            raise BenchmarkError(f"The CSV file {path!r} is empty.") from None
        header = [h.strip() for h in header]
        rows = []
        for line_number, row in enumerate(reader, start=2):
            if not row or all(not cell.strip() for cell in row):
                continue  # blank line
            if len(row) != len(header):
                raise BenchmarkError(
                    f"Line {line_number} of {path!r} has {len(row)} fields but "
                    f"the header has {len(header)}.")
            rows.append(row)
    return header, rows


def load_csv(path, target, *, task=None, name=None):
    """Read a CSV table for benchmarking.

    The first line names the columns; the delimiter (comma, semicolon, tab or
    ``|``) is detected.  Empty cells and ``NA``, ``N/A``, ``NaN``, ``null``,
    ``None``, ``?`` and ``-`` are missing values.  A column whose present
    cells all parse as numbers is numeric; any other column is categorical.
    Rows whose target is missing are dropped.

    The features are preprocessed, inside every cross-validation fold, by a
    :class:`~sklearn.compose.ColumnTransformer`:

    * numeric columns: ``SimpleImputer(strategy="median")`` then
      ``StandardScaler()``;
    * categorical columns: ``SimpleImputer(strategy="most_frequent")`` then
      ``OneHotEncoder(handle_unknown="ignore", sparse_output=False)``.

    Parameters
    ----------
    path : str or path-like
        The CSV file.
    target : str
        Name of the column to predict.
    task : {"classification", "regression"}, optional
        Inferred when omitted: classification if the target is not numeric, or
        if it takes at most 20 distinct values that are all integers;
        regression otherwise.
    name : str, optional
        Dataset name used in the results; defaults to the file name without
        its extension.

    Returns
    -------
    dataset : Dataset

    Raises
    ------
    CSVNotFoundError
        If the file does not exist (a ``FileNotFoundError`` and a
        ``ValueError``).
    BenchmarkError
        If the target column is absent (the message lists the columns), the
        table has no feature column or no usable rows, or a regression is
        asked for on a non-numeric target.

    Examples
    --------
    >>> import tempfile, os
    >>> from skinfinite.benchmark import load_csv
    >>> path = os.path.join(tempfile.mkdtemp(), "pets.csv")
    >>> with open(path, "w") as f:
    ...     _ = f.write("weight,colour,kind\\n4.1,black,cat\\n30,,dog\\n,brown,dog\\n")
    >>> data = load_csv(path, "kind")
    >>> data.name, data.task, data.X.shape
    ('pets', 'classification', (3, 2))
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CSVNotFoundError(f"CSV file not found: {path!r}.")
    if task is not None and task not in TASKS:
        raise BenchmarkError(f"task must be one of {TASKS}, got {task!r}.")
    header, rows = _read_csv_columns(path)
    if target not in header:
        raise BenchmarkError(
            f"Target column {target!r} is not in {path!r}; its columns are: "
            f"{', '.join(repr(h) for h in header)}.")
    if len(header) < 2:
        raise BenchmarkError(f"{path!r} has no feature columns besides the target.")
    if len(set(header)) != len(header):
        duplicated = sorted({h for h in header if header.count(h) > 1})
        raise BenchmarkError(f"{path!r} has duplicated column names: {duplicated}.")

    t_index = header.index(target)
    rows = [row for row in rows if not _is_missing(row[t_index])]
    if not rows:
        raise BenchmarkError(
            f"{path!r} has no rows with a value in the target column {target!r}.")

    # Target and task.
    raw_target = [row[t_index].strip() for row in rows]
    numeric_target = [_to_float(v) for v in raw_target]
    target_is_numeric = all(v is not None and math.isfinite(v) for v in numeric_target)
    if task is None:
        if not target_is_numeric:
            task = CLASSIFICATION
        else:
            values = set(numeric_target)
            integer_valued = all(float(v).is_integer() for v in values)
            task = (CLASSIFICATION if integer_valued and len(values) <= MAX_INFERRED_CLASSES
                    else REGRESSION)
    if task == REGRESSION:
        if not target_is_numeric:
            bad = next(v for v, f in zip(raw_target, numeric_target, strict=True)
                       if f is None or not math.isfinite(f))
            raise BenchmarkError(
                f"Target column {target!r} is not numeric (it holds {bad!r}); "
                "it cannot be used for regression.")
        y = np.asarray(numeric_target, dtype=float)
    elif target_is_numeric and all(float(v).is_integer() for v in numeric_target):
        y = np.asarray(numeric_target, dtype=float).astype(np.int64)
    else:
        y = np.asarray(raw_target, dtype=object)
    if task == CLASSIFICATION and len(set(y.tolist())) < 2:
        raise BenchmarkError(
            f"Target column {target!r} holds a single class; nothing to classify.")

    # Features.
    feature_idx = [j for j in range(len(header)) if j != t_index]
    feature_names = [header[j] for j in feature_idx]
    X = np.empty((len(rows), len(feature_idx)), dtype=object)
    numeric_cols, categorical_cols = [], []
    for k, j in enumerate(feature_idx):
        cells = [row[j] for row in rows]
        missing = [_is_missing(c) for c in cells]
        parsed = [None if m else _to_float(c) for c, m in zip(cells, missing, strict=True)]
        if all(m or p is not None for m, p in zip(missing, parsed, strict=True)):
            numeric_cols.append(k)
            X[:, k] = [np.nan if p is None else p for p in parsed]
        else:
            categorical_cols.append(k)
            X[:, k] = [np.nan if m else c.strip() for c, m in zip(cells, missing, strict=True)]

    transformers = []
    if numeric_cols:
        transformers.append(("numeric", make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True),
            StandardScaler()), numeric_cols))
    if categorical_cols:
        transformers.append(("categorical", make_pipeline(
            SimpleImputer(strategy="most_frequent", keep_empty_features=True),
            OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            categorical_cols))
    preprocessor = ColumnTransformer(transformers, sparse_threshold=0.0)
    if name is None:
        name = os.path.splitext(os.path.basename(path))[0]
    return Dataset(name, task, X, y, preprocessor, feature_names)


# ==================================================================== models
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


def _infinite(family, activation, depth):
    """Factory of an NTK / NNGP estimator with the given architecture."""
    def factory(task, seed):
        from . import models  # imported late: only needed when actually run

        prefix = "NTK" if family == "ntk" else "NNGP"
        suffix = "Classifier" if task == CLASSIFICATION else "Regressor"
        cls = getattr(models, prefix + suffix)
        return cls(depth=depth, activation=activation, alpha=RIDGE)
    return factory


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


@dataclass(frozen=True)
class ModelSpec:
    """One entry of the model registry.

    Attributes
    ----------
    name : str
        Short identifier used on the command line and in the results.
    family : str
        ``"ntk"``, ``"nngp"`` or ``"baseline"``.
    description : str
    factory : callable
        ``factory(task, seed)`` returns a fresh, unfitted estimator for
        ``task`` (without preprocessing).
    default : bool
        Whether the model runs when no model filter is given.
    """

    name: str
    family: str
    description: str
    factory: Callable
    default: bool = True


def _infinite_spec(family, activation, depth, default):
    label = "NTK" if family == "ntk" else "NNGP"
    layers = "1 hidden layer" if depth == 1 else f"{depth} hidden layers"
    return ModelSpec(
        f"{family}_{activation}_d{depth}", family,
        f"{label}, {activation} network with {layers}, alpha={RIDGE:g}",
        _infinite(family, activation, depth), default)


def _build_registry():
    # Infinite-width networks: (activation, depth); the default set is kept
    # small so that the default benchmark runs in well under a minute.
    architectures = [("relu", 1), ("relu", 2), ("relu", 3), ("relu", 5),
                     ("leaky_relu", 3), ("abs", 3), ("erf", 1), ("erf", 3),
                     ("tanh", 3), ("gelu", 3), ("sin", 3), ("identity", 1)]
    defaults = {("relu", 1), ("relu", 3), ("erf", 3)}
    specs = [_infinite_spec(family, activation, depth, (activation, depth) in defaults)
             for family in ("ntk", "nngp") for activation, depth in architectures]
    specs += [
        ModelSpec("svm_rbf", "baseline",
                  "support vector machine, RBF kernel, gamma='scale' (SVC / SVR)",
                  _svm),
        ModelSpec("krr_rbf", "baseline",
                  "kernel ridge, RBF kernel, alpha=1 (one-vs-rest for classes)",
                  _krr),
        ModelSpec("rf", "baseline", "random forest, 200 trees", _forest),
    ]
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
    ['ntk_relu_d1', 'ntk_relu_d3']
    """
    return [s for s in MODELS.values() if include_all or s.default]


def select_models(patterns=None):
    """Resolve model names or patterns to registry names.

    Parameters
    ----------
    patterns : str or iterable of str, optional
        Model names, shell-style wildcards (``"ntk_*"``) or substrings
        (``"relu"``), possibly comma-separated; ``"all"`` selects every
        registered model and ``"default"`` the default set.  ``None`` selects
        the default set.  An exact name selects only that model.

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
    ['ntk_relu_d1', 'ntk_relu_d2', 'ntk_relu_d3', 'ntk_relu_d5']
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
            matched = {name for name in MODELS if key in name}
        if not matched:
            raise BenchmarkError(
                f"No model matches {token!r}; registered models are: "
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
        Steps ``"preprocess"`` and ``"model"``; regressors are wrapped in a
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
    estimator = MODELS[name].factory(task, seed)
    if task == REGRESSION:
        estimator = TransformedTargetRegressor(regressor=estimator,
                                               transformer=StandardScaler())
    pre = StandardScaler() if preprocessor is None else clone(preprocessor)
    return Pipeline([("preprocess", pre), ("model", estimator)])


# ============================================================ cross-validation
def _splitter(task, folds, seed):
    if task == CLASSIFICATION:
        return StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return KFold(n_splits=folds, shuffle=True, random_state=seed)


def _warm_up_rows(data, train, size=24):
    """A few training rows, covering every class, for an untimed first fit."""
    if data.task != CLASSIFICATION:
        return train[:size]
    _, first = np.unique(data.y[train].astype(str), return_index=True)
    rest = np.setdiff1d(np.arange(len(train)), first)[:max(size - len(first), 0)]
    return train[np.concatenate([first, rest])]


def _evaluate(name, data, splits, seed):
    # One untimed fit on a handful of rows first, so that one-off costs (such
    # as compiling kernels) do not count as fit or predict time.
    rows = _warm_up_rows(data, splits[0][0])
    make_model(name, data.task, seed=seed, preprocessor=data.preprocessor).fit(
        data.X[rows], data.y[rows]).predict(data.X[rows])
    scores, rmses, fit_times, predict_times = [], [], [], []
    for train, test in splits:
        model = make_model(name, data.task, seed=seed, preprocessor=data.preprocessor)
        start = time.perf_counter()
        model.fit(data.X[train], data.y[train])
        fit_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        prediction = model.predict(data.X[test])
        predict_times.append(time.perf_counter() - start)
        if data.task == CLASSIFICATION:
            scores.append(accuracy_score(data.y[test], prediction))
        else:
            scores.append(r2_score(data.y[test], prediction))
            rmses.append(math.sqrt(mean_squared_error(data.y[test], prediction)))
    row = {
        "score_mean": float(np.mean(scores)),
        "score_std": float(np.std(scores)),
        "fit_time_s": float(np.mean(fit_times)),
        "predict_time_s": float(np.mean(predict_times)),
        "rmse_mean": float(np.mean(rmses)) if rmses else float("nan"),
        "rmse_std": float(np.std(rmses)) if rmses else float("nan"),
    }
    return row


def _short_error(exc, limit=300):
    """One readable line describing an exception (no colour codes)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = lines[0] if lines else ""
    if len(lines) > 1:
        line += " ..."
    if len(line) > limit:
        line = line[:limit - 4] + " ..."
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


def _resolve_datasets(datasets, csv, target, task, folds):
    if isinstance(datasets, str):
        datasets = [datasets]
    names = None
    if datasets is not None:
        names = [t.strip() for d in datasets for t in str(d).split(",") if t.strip()]
    if csv is None:
        if target is not None or task is not None:
            raise BenchmarkError("target and task only apply to a CSV table (csv=PATH).")
        if names is None:
            names = list(DEFAULT_DATASETS)
        if not names:
            raise BenchmarkError("No dataset given.")
    else:
        if target is None:
            raise BenchmarkError("A CSV table needs target=COLUMN (--target COLUMN).")
        names = names or []
    loaded = []
    seen = set()
    for name in names:
        data = load_dataset(name)
        if data.name not in seen:
            seen.add(data.name)
            loaded.append(data)
    if csv is not None:
        data = load_csv(csv, target, task=task)
        if data.n_samples < folds:
            raise BenchmarkError(
                f"{csv!r} has {data.n_samples} usable rows (rows with a missing "
                f"target are dropped), fewer than the {folds} cross-validation "
                "folds; use fewer folds or more data.")
        if data.name in seen:
            data.name = f"{data.name} (csv)"
        loaded.append(data)
    return loaded


def run_benchmark(datasets=None, *, folds=5, seed=0, models=None, csv=None,
                  target=None, task=None, show_progress=True):
    """Cross-validate infinite-width networks and baselines on datasets.

    Parameters
    ----------
    datasets : str or list of str, optional
        Built-in dataset names (see :func:`list_datasets`), possibly
        comma-separated.  Defaults to all of them, unless ``csv`` is given,
        in which case only the CSV table is used unless datasets are named
        as well.
    folds : int, default=5
        Number of cross-validation folds (stratified for classification).
    seed : int, default=0
        Seed of the fold shuffling and of randomised models.
    models : str or list of str, optional
        Model names or patterns, resolved by :func:`select_models`; defaults
        to the default set of :data:`MODELS`.
    csv : str or path-like, optional
        A CSV table of your own (see :func:`load_csv`).
    target : str, optional
        The column of ``csv`` to predict; required with ``csv``.
    task : {"classification", "regression"}, optional
        Task of the CSV table; inferred when omitted.
    show_progress : bool, default=True
        Show a progress bar over (dataset, model) jobs on stderr.

    Returns
    -------
    rows : list of dict
        One per (dataset, model), in run order, with the keys of
        :data:`CSV_COLUMNS` and ``error`` (None, or the message of the
        exception that made the model fail; its scores are then NaN).

    Raises
    ------
    BenchmarkError
        For an unknown dataset or model, an unusable CSV table or too few
        rows for the folds.  All inputs are checked before any model is fit.

    Examples
    --------
    >>> from skinfinite.benchmark import run_benchmark, format_table
    >>> rows = run_benchmark("iris", folds=3, models=["svm_rbf", "krr_rbf"],
    ...                      show_progress=False)
    >>> [r["model"] for r in rows]
    ['svm_rbf', 'krr_rbf']
    >>> print(format_table(rows))  # doctest: +SKIP
    """
    folds = int(folds)
    if folds < 2:
        raise BenchmarkError(f"folds must be at least 2, got {folds}.")
    model_names = select_models(models)
    data_list = _resolve_datasets(datasets, csv, target, task, folds)
    for data in data_list:
        if data.n_samples < folds:
            raise BenchmarkError(
                f"Dataset {data.name!r} has {data.n_samples} rows, fewer than "
                f"the {folds} folds.")

    from tqdm.auto import tqdm

    from ._config import config_context

    rows = []
    jobs = [(data, name) for data in data_list for name in model_names]
    # The kernels' own progress bars would garble the one over jobs.
    with config_context(show_progress=False), tqdm(total=len(jobs), disable=not show_progress,
                             unit="job", dynamic_ncols=True) as bar:
        for data in data_list:
            splits = list(_splitter(data.task, folds, seed).split(data.X, data.y))
            for name in model_names:
                bar.set_description(f"{data.name}: {name}")
                row = {
                    "dataset": data.name, "task": data.task, "model": name,
                    "metric": "accuracy" if data.task == CLASSIFICATION else "r2",
                    "n_samples": data.n_samples, "n_features": data.n_features,
                    "folds": folds, "error": None,
                }
                try:
                    row.update(_evaluate(name, data, splits, seed))
                except Exception as exc:  # noqa: BLE001 - one failure must not stop the rest
                    message = _short_error(exc)
                    warnings.warn(f"{name} failed on {data.name}: {message}",
                                  RuntimeWarning, stacklevel=2)
                    row.update(dict.fromkeys(
                        ("score_mean", "score_std", "fit_time_s", "predict_time_s",
                         "rmse_mean", "rmse_std"), float("nan")))
                    row["error"] = message
                rows.append({key: row[key] for key in (*CSV_COLUMNS, "error")})
                bar.update(1)
    return rows


# ================================================================== reporting
def _ranked(rows):
    """Group rows by dataset (first-seen order), best score first."""
    groups = {}
    for row in rows:
        groups.setdefault(row["dataset"], []).append(row)
    for name, group in groups.items():
        groups[name] = sorted(
            group, key=lambda r: (math.isnan(r["score_mean"]), -r["score_mean"]
                                  if not math.isnan(r["score_mean"]) else 0.0))
    return groups


def _fmt_time(seconds):
    if math.isnan(seconds):
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e3:.2f}ms"
    if seconds < 1:
        return f"{seconds * 1e3:.0f}ms"
    return f"{seconds:.2f}s"


def _fmt_pair(mean, std):
    # four significant digits for the mean, the same decimals for the spread
    magnitude = math.floor(math.log10(abs(mean))) if mean and math.isfinite(mean) else 0
    decimals = max(0, 3 - magnitude)
    return f"{mean:.{decimals}f} +/- {std:.{decimals}f}"


def _align(cells, widths, right):
    parts = [c.rjust(w) if k in right else c.ljust(w)
             for k, (c, w) in enumerate(zip(cells, widths, strict=True))]
    return (" " + "  ".join(parts)).rstrip()


def format_table(rows):
    """Format benchmark rows as plain-text tables, one per dataset, best first.

    Parameters
    ----------
    rows : list of dict
        As returned by :func:`run_benchmark`.

    Returns
    -------
    text : str

    Examples
    --------
    >>> from skinfinite.benchmark import format_table
    >>> rows = [dict(dataset="toy", task="classification", model="rf",
    ...              score_mean=0.9, score_std=0.01, metric="accuracy",
    ...              fit_time_s=0.2, predict_time_s=0.01, n_samples=100,
    ...              n_features=4, folds=5)]
    >>> print(format_table(rows))
    toy: classification, 100 samples x 4 features, 5-fold CV
     rank  model  accuracy           fit time  predict time
        1  rf     0.9000 +/- 0.0100     200ms          10ms
    """
    blocks = []
    for name, group in _ranked(rows).items():
        first = group[0]
        folds = first.get("folds")
        header = (f"{name}: {first['task']}, {first['n_samples']} samples x "
                  f"{first['n_features']} features"
                  + (f", {folds}-fold CV" if folds else ""))
        regression = first["task"] == REGRESSION
        metric = "R^2" if first["metric"] == "r2" else first["metric"]
        columns = ["rank", "model", metric]
        if regression:
            columns.append("RMSE")
        columns += ["fit time", "predict time"]
        table = []
        for rank, row in enumerate(group, start=1):
            error = row.get("error")
            if error:
                cells = ["-", row["model"], "failed"]
                if regression:
                    cells.append("-")
                cells += ["-", "-"]
            else:
                cells = [str(rank), row["model"],
                         f"{row['score_mean']:.4f} +/- {row['score_std']:.4f}"]
                if regression:
                    cells.append(_fmt_pair(row["rmse_mean"], row["rmse_std"]))
                cells += [_fmt_time(row["fit_time_s"]), _fmt_time(row["predict_time_s"])]
            table.append(cells)
        widths = [max(len(columns[k]), *(len(r[k]) for r in table))
                  for k in range(len(columns))]
        # rank and times right-aligned, names and scores left-aligned
        right = {0, len(columns) - 2, len(columns) - 1}
        lines = [header] + [_align(cells, widths, right) for cells in [columns, *table]]
        errors = [r for r in group if r.get("error")]
        lines += [f"   {r['model']} failed: {r['error']}" for r in errors]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def write_csv(rows, path):
    """Write benchmark rows to a CSV file, one line per (dataset, model).

    The columns are :data:`CSV_COLUMNS`; missing numbers are empty cells.

    Parameters
    ----------
    rows : list of dict
        As returned by :func:`run_benchmark`.
    path : str or path-like

    Examples
    --------
    >>> import os, tempfile
    >>> from skinfinite.benchmark import run_benchmark, write_csv
    >>> rows = run_benchmark("iris", folds=2, models="svm_rbf", show_progress=False)
    >>> path = os.path.join(tempfile.mkdtemp(), "results.csv")
    >>> write_csv(rows, path)
    >>> open(path).readline().strip().split(",")[:3]
    ['dataset', 'task', 'model']
    """
    def cell(value):
        if isinstance(value, float):
            return "" if math.isnan(value) else repr(value)
        return "" if value is None else value

    with open(os.fspath(path), "w", newline="", encoding="utf-8") as handle:
        writer = _csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            writer.writerow([cell(row.get(column)) for column in CSV_COLUMNS])


_FAMILY_COLOURS = {"ntk": "#1f77b4", "nngp": "#2ca02c", "baseline": "#7f7f7f"}


def plot_results(rows, path):
    """Plot mean scores with fold standard deviations, one panel per dataset.

    Bars are horizontal, best model on top; NTK models are blue, NNGP models
    green and baselines grey.  The figure is drawn with the Agg backend, so
    no display is needed.

    Parameters
    ----------
    rows : list of dict
        As returned by :func:`run_benchmark`.
    path : str or path-like
        Output file; the format follows the extension (``.png``, ``.pdf``,
        ``.svg``...).

    Returns
    -------
    figure : matplotlib.figure.Figure

    Examples
    --------
    >>> import os, tempfile
    >>> from skinfinite.benchmark import run_benchmark, plot_results
    >>> rows = run_benchmark("iris", folds=2, models="svm_rbf,rf", show_progress=False)
    >>> fig = plot_results(rows, os.path.join(tempfile.mkdtemp(), "results.png"))
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    groups = _ranked(rows)
    if not groups:
        raise BenchmarkError("No results to plot.")
    n_panels = len(groups)
    ncols = min(3, n_panels)
    nrows = math.ceil(n_panels / ncols)
    n_models = max(len(g) for g in groups.values())
    panel_height = 0.32 * n_models + 1.3
    figure = Figure(figsize=(5.2 * ncols, panel_height * nrows), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (name, group) in zip(axes, groups.items(), strict=False):
        group = group[::-1]  # best at the top
        means = np.array([r["score_mean"] for r in group], dtype=float)
        stds = np.array([r["score_std"] for r in group], dtype=float)
        colours = [_FAMILY_COLOURS.get(
            MODELS[r["model"]].family if r["model"] in MODELS else "", "#9467bd")
            for r in group]
        ok = ~np.isnan(means)
        positions = np.arange(len(group))
        ax.barh(positions[ok], means[ok], xerr=stds[ok], color=np.array(colours)[ok],
                height=0.7, error_kw={"elinewidth": 1, "capsize": 2})
        ax.set_yticks(positions, [r["model"] for r in group], fontsize=8)
        metric = group[0]["metric"]
        ax.set_xlabel("R$^2$" if metric == "r2" else metric)
        ax.set_title(f"{name} ({group[0]['task']}, n={group[0]['n_samples']})",
                     fontsize=10)
        if ok.any():
            lo = float(np.min(means[ok] - stds[ok]))
            hi = float(np.max(means[ok] + stds[ok]))
            pad = 0.08 * max(hi - lo, 1e-3)
            left, right = lo - pad, hi + pad
            if lo >= 0:
                left = max(left, 0.0)
            if metric == "accuracy":
                right = min(right, 1.0)
            ax.set_xlim(left, right)
        for y_pos in positions[~ok]:
            ax.text(0.02, y_pos, "failed", transform=ax.get_yaxis_transform(),
                    va="center", fontsize=8, color="firebrick")
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
        ax.grid(axis="x", alpha=0.3)
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    families = {MODELS[r["model"]].family for r in rows if r["model"] in MODELS}
    handles = [Patch(color=_FAMILY_COLOURS[f], label=label)
               for f, label in (("ntk", "NTK"), ("nngp", "NNGP"), ("baseline", "baseline"))
               if f in families]
    if handles:
        try:
            figure.legend(handles=handles, loc="outside lower center",
                          ncols=len(handles), fontsize=8, frameon=False)
        except ValueError:  # matplotlib < 3.7 has no "outside" locations
            axes[0].legend(handles=handles, loc="lower right", fontsize=7)
    figure.savefig(os.fspath(path), dpi=120)
    return figure
