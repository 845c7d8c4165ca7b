"""Tabular datasets: scikit-learn's built-in tables and CSV files.

A :class:`Dataset` holds the features, the target, the task and the
preprocessing to place in front of every model, so that the benchmark can
cross-validate any table the same way.
"""
import csv as _csv
import io
import math
import os
from dataclasses import dataclass

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

__all__ = [
    "CLASSIFICATION", "REGRESSION", "TASKS", "DatasetError", "CSVNotFoundError",
    "Dataset", "DATASETS", "DEFAULT_DATASETS", "list_datasets", "load_dataset",
    "load_csv",
]

CLASSIFICATION = "classification"
REGRESSION = "regression"
TASKS = (CLASSIFICATION, REGRESSION)

# A numeric target with at most this many distinct integer values is taken to
# be a class label when the task of a CSV table is inferred.
MAX_INFERRED_CLASSES = 20

# Cells read as missing in a CSV table (compared after stripping whitespace,
# case-insensitively).
MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "?", "-"})


class DatasetError(ValueError):
    """A dataset cannot be loaded: unknown name, or an unusable table."""


class CSVNotFoundError(DatasetError, FileNotFoundError):
    """The CSV file to read does not exist."""


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


# ---------------------------------------------------- scikit-learn datasets
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
    >>> from skinfinite.datasets import list_datasets
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
    DatasetError
        If the name is unknown; the message lists the valid names.

    Examples
    --------
    >>> from skinfinite.datasets import load_dataset
    >>> data = load_dataset("wine")
    >>> data.task, data.X.shape
    ('classification', (178, 13))
    """
    key = str(name).strip().lower().replace("-", "_")
    if key not in DATASETS:
        raise DatasetError(
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


def _decode(path, encoding):
    """The text of a CSV file: UTF-8, else Windows-1252 or Latin-1 (what
    spreadsheets export); ``encoding`` forces one."""
    with open(path, "rb") as handle:
        data = handle.read()
    if b"\x00" in data:
        raise DatasetError(
            f"{path!r} is not a text CSV file (it contains NUL bytes); "
            "export the table as CSV text.")
    if encoding is not None:
        try:
            return data.decode(encoding)
        except LookupError:
            raise DatasetError(f"Unknown text encoding {encoding!r}.") from None
        except UnicodeDecodeError as exc:
            raise DatasetError(
                f"{path!r} is not valid {encoding} text ({exc.reason} at byte "
                f"{exc.start}); give its encoding, or leave it out to have "
                "it detected.") from None
    # each decoding that fails is ruled out; Latin-1 decodes any bytes
    for candidate in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            return data.decode(candidate)
        except UnicodeDecodeError:
            continue
    raise AssertionError("Latin-1 decodes every byte")  # pragma: no cover


def _read_csv_columns(path, encoding=None):
    text = _decode(path, encoding)
    with io.StringIO(text, newline="") as handle:
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
            raise DatasetError(f"The CSV file {path!r} is empty.") from None
        header = [h.strip() for h in header]
        rows = []
        for line_number, row in enumerate(reader, start=2):
            if not row or all(not cell.strip() for cell in row):
                continue  # blank line
            if len(row) != len(header):
                raise DatasetError(
                    f"Line {line_number} of {path!r} has {len(row)} fields but "
                    f"the header has {len(header)}.")
            rows.append(row)
    return header, rows



def load_csv(path, target, *, task=None, name=None, encoding=None):
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
    encoding : str, optional
        Text encoding of the file.  Detected when omitted: UTF-8 (with or
        without a byte-order mark), else Windows-1252 or Latin-1, the usual
        encodings of spreadsheet exports.

    Returns
    -------
    dataset : Dataset

    Raises
    ------
    CSVNotFoundError
        If the file does not exist (a ``FileNotFoundError`` and a
        ``ValueError``).
    DatasetError
        If the target column is absent (the message lists the columns), the
        table has no feature column or no usable rows, a regression is
        asked for on a non-numeric target, the file is not text (NUL bytes)
        or not in the ``encoding`` given.

    Examples
    --------
    >>> import tempfile, os
    >>> from skinfinite.datasets import load_csv
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
        raise DatasetError(f"task must be one of {TASKS}, got {task!r}.")
    header, rows = _read_csv_columns(path, encoding)
    _check_header(header, target, path)

    t_index = header.index(target)
    rows = [row for row in rows if not _is_missing(row[t_index])]
    if not rows:
        raise DatasetError(
            f"{path!r} has no rows with a value in the target column {target!r}.")
    task, y = _target(rows, t_index, target, task)

    feature_idx = [j for j in range(len(header)) if j != t_index]
    feature_names = [header[j] for j in feature_idx]
    X, numeric_cols, categorical_cols = _features(rows, feature_idx)
    preprocessor = _preprocessor(numeric_cols, categorical_cols)
    if name is None:
        name = os.path.splitext(os.path.basename(path))[0]
    return Dataset(name, task, X, y, preprocessor, feature_names)


def _check_header(header, target, path):
    if target not in header:
        raise DatasetError(
            f"Target column {target!r} is not in {path!r}; its columns are: "
            f"{', '.join(repr(h) for h in header)}.")
    if len(header) < 2:
        raise DatasetError(f"{path!r} has no feature columns besides the target.")
    if len(set(header)) != len(header):
        duplicated = sorted({h for h in header if header.count(h) > 1})
        raise DatasetError(f"{path!r} has duplicated column names: {duplicated}.")


def _infer_task(numeric_target, target_is_numeric):
    if not target_is_numeric:
        return CLASSIFICATION
    values = set(numeric_target)
    integer_valued = all(float(v).is_integer() for v in values)
    return (CLASSIFICATION if integer_valued and len(values) <= MAX_INFERRED_CLASSES
            else REGRESSION)


def _target(rows, t_index, target, task):
    """The task (inferred when None) and the target array of a CSV table."""
    raw_target = [row[t_index].strip() for row in rows]
    numeric_target = [_to_float(v) for v in raw_target]
    target_is_numeric = all(v is not None and math.isfinite(v) for v in numeric_target)
    if task is None:
        task = _infer_task(numeric_target, target_is_numeric)
    if task == REGRESSION:
        if not target_is_numeric:
            bad = next(v for v, f in zip(raw_target, numeric_target, strict=True)
                       if f is None or not math.isfinite(f))
            raise DatasetError(
                f"Target column {target!r} is not numeric (it holds {bad!r}); "
                "it cannot be used for regression.")
        y = np.asarray(numeric_target, dtype=float)
    elif target_is_numeric and all(float(v).is_integer() for v in numeric_target):
        y = np.asarray(numeric_target, dtype=float).astype(np.int64)
    else:
        y = np.asarray(raw_target, dtype=object)
    if task == CLASSIFICATION and len(set(y.tolist())) < 2:
        raise DatasetError(
            f"Target column {target!r} holds a single class; nothing to classify.")
    return task, y


def _features(rows, feature_idx):
    """The feature matrix (object dtype) and its numeric and categorical columns."""
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
    return X, numeric_cols, categorical_cols


def _preprocessor(numeric_cols, categorical_cols):
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
    return ColumnTransformer(transformers, sparse_threshold=0.0)
