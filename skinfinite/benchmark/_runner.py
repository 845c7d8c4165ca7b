"""Cross-validation of the registered models on datasets."""
import math
import re
import sys
import time
import warnings

import numpy as np
from sklearn.metrics import accuracy_score, mean_squared_error, r2_score
from sklearn.model_selection import KFold, StratifiedKFold

from .._core.validation import caller_stacklevel
from ..datasets import TimeSeriesDataset, load_csv, load_dataset
from ..datasets._tabular import CLASSIFICATION, DEFAULT_DATASETS
from ..datasets._timeseries import TIMESERIES_DATASETS, load_timeseries_dataset
from ._errors import BenchmarkError
from ._models import MODELS, SEQUENCES, TABULAR, make_model, select_models

__all__ = ["CSV_COLUMNS", "run_benchmark", "iter_benchmark"]

#: Columns written by :func:`write_csv`, in order.
CSV_COLUMNS = (
    "dataset", "task", "model", "score_mean", "score_std", "metric",
    "fit_time_s", "predict_time_s", "n_samples", "n_features",
    "rmse_mean", "rmse_std", "folds",
)

_SCORE_KEYS = ("score_mean", "score_std", "fit_time_s", "predict_time_s",
               "rmse_mean", "rmse_std")


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
    with warnings.catch_warnings():
        # a handful of rows warns of itself (classes of one sample, ...)
        warnings.simplefilter("ignore")
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


def _evaluate_split(name, data, seed):
    """Fit on the training split, score on the test split (time series)."""
    rows = _warm_up_rows_of(data.y_train)
    warm_X = [data.X_train[i] for i in rows]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        make_model(name, data.task, seed=seed).fit(warm_X, data.y_train[rows]).predict(warm_X)
    model = make_model(name, data.task, seed=seed)
    start = time.perf_counter()
    model.fit(data.X_train, data.y_train)
    fit_time = time.perf_counter() - start
    start = time.perf_counter()
    prediction = model.predict(data.X_test)
    predict_time = time.perf_counter() - start
    return {
        "score_mean": float(accuracy_score(data.y_test, prediction)),
        "score_std": float("nan"),
        "fit_time_s": fit_time,
        "predict_time_s": predict_time,
        "rmse_mean": float("nan"),
        "rmse_std": float("nan"),
    }


def _warm_up_rows_of(y, per_class=3):
    """Indices of a few labels of every class (enough for an inner 3-fold CV)."""
    labels = np.asarray(y).astype(str)
    return np.concatenate([np.flatnonzero(labels == label)[:per_class]
                           for label in np.unique(labels)])


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


def _dataset_names(datasets, csv, target, task):
    """The built-in dataset names asked for, after checking the CSV arguments."""
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
    return names


def _load_csv_table(csv, target, task, folds, seen, encoding=None):
    data = load_csv(csv, target, task=task, encoding=encoding)
    if data.n_samples < folds:
        raise BenchmarkError(
            f"{csv!r} has {data.n_samples} usable rows (rows with a missing "
            f"target are dropped), fewer than the {folds} cross-validation "
            "folds; use fewer folds or more data.")
    if data.name in seen:
        data.name = f"{data.name} (csv)"
    return data


def _resolve_datasets(datasets, csv, target, task, folds, encoding=None):
    loaded = []
    seen = set()
    for name in _dataset_names(datasets, csv, target, task):
        key = str(name).strip().lower().replace("-", "_")
        data = (load_timeseries_dataset(key) if key in TIMESERIES_DATASETS
                else load_dataset(name))
        if data.name not in seen:
            seen.add(data.name)
            loaded.append(data)
    if csv is not None:
        loaded.append(_load_csv_table(csv, target, task, folds, seen, encoding))
    return loaded


def _run_job(data, name, splits, seed, folds):
    """The result row of one model on one dataset; a failure is recorded, not raised."""
    series = isinstance(data, TimeSeriesDataset)
    row = {
        "dataset": data.name, "task": data.task, "model": name,
        "metric": "accuracy" if data.task == CLASSIFICATION else "r2",
        # time series: training series, channels, and folds 0 for the fixed split
        "n_samples": len(data.X_train) if series else data.n_samples,
        "n_features": data.n_channels if series else data.n_features,
        "folds": 0 if series else folds, "error": None,
    }
    try:
        row.update(_evaluate_split(name, data, seed) if series
                   else _evaluate(name, data, splits, seed))
    except Exception as exc:  # noqa: BLE001 - one failure must not stop the rest
        message = _short_error(exc)
        warnings.warn(f"{name} failed on {data.name}: {message}",
                      RuntimeWarning, stacklevel=caller_stacklevel())
        row.update(dict.fromkeys(_SCORE_KEYS, float("nan")))
        row["error"] = message
    return {key: row[key] for key in (*CSV_COLUMNS, "error")}


def run_benchmark(datasets=None, *, folds=5, seed=0, models=None, csv=None,
                  target=None, task=None, show_progress=True, encoding=None):
    """Cross-validate infinite-width networks and baselines on datasets.

    Parameters
    ----------
    datasets : str or list of str, optional
        Built-in dataset names (see
        :func:`~skinfinite.datasets.list_datasets`), possibly comma-separated.
        Defaults to all of them, unless ``csv`` is given, in which case only
        the CSV table is used unless datasets are named as well.  The
        time-series datasets (:func:`~skinfinite.datasets.list_timeseries_datasets`:
        ``basic_motions``, ``japanese_vowels``) run only when named; they are
        scored on their fixed train/test split (``folds`` does not apply) by
        the models that read sequences.
    folds : int, default=5
        Number of cross-validation folds (stratified for classification).
    seed : int, default=0
        Seed of the fold shuffling and of randomised models.
    models : str or list of str, optional
        Model names or wildcard patterns, resolved by :func:`select_models`;
        defaults to the default set of :data:`MODELS`.  Each dataset runs the
        selected models that read its kind of input (``ModelSpec.inputs``).
    csv : str or path-like, optional
        A CSV table of your own (see :func:`~skinfinite.datasets.load_csv`).
    target : str, optional
        The column of ``csv`` to predict; required with ``csv``.
    task : {"classification", "regression"}, optional
        Task of the CSV table; inferred when omitted.
    show_progress : bool, default=True
        Report progress over (dataset, model) jobs on stderr: a progress bar
        on a terminal, one plain line per finished job otherwise (a log
        file).
    encoding : str, optional
        Text encoding of ``csv``; detected when omitted.

    Returns
    -------
    rows : list of dict
        One per (dataset, model), in run order, with the keys of
        :data:`CSV_COLUMNS` and ``error`` (None, or the message of the
        exception that made the model fail; its scores are then NaN).  For a
        time-series dataset, ``folds`` is 0 (the fixed split), ``score_std``
        is NaN, ``n_samples`` counts the training series and ``n_features``
        the channels.

    Raises
    ------
    BenchmarkError
        For an unknown model, inconsistent arguments or too few rows for the
        folds.
    ~skinfinite.datasets.DatasetError
        For an unknown dataset or an unusable CSV table
        (:class:`~skinfinite.datasets.CSVNotFoundError` if it does not exist).

    All inputs are checked before any model is fit; both errors are
    ``ValueError``.

    See Also
    --------
    iter_benchmark : The rows one at a time, as each job finishes.

    Examples
    --------
    >>> from skinfinite.benchmark import run_benchmark, format_table
    >>> rows = run_benchmark("iris", folds=3, models=["svm_rbf", "krr_rbf"],
    ...                      show_progress=False)
    >>> [r["model"] for r in rows]
    ['svm_rbf', 'krr_rbf']
    >>> print(format_table(rows))  # doctest: +SKIP
    """
    return list(iter_benchmark(
        datasets, folds=folds, seed=seed, models=models, csv=csv,
        target=target, task=task, show_progress=show_progress,
        encoding=encoding))


def iter_benchmark(datasets=None, *, folds=5, seed=0, models=None, csv=None,
                   target=None, task=None, show_progress=True, encoding=None,
                   backend=None):
    """The rows of :func:`run_benchmark`, each as soon as its job finishes.

    Takes the parameters of :func:`run_benchmark` and checks them all (and
    loads the datasets) when called, before any model is fit; the returned
    iterator then runs one (dataset, model) job per row.  The jobs of a
    dataset are consecutive, so its table can be printed, or the rows so far
    saved, as soon as the next dataset starts; an interrupted run keeps the
    rows already yielded.

    backend : str, optional
        A joblib backend that runs the jobs in parallel, such as "dask" for
        the active Dask client's cluster (each job's fit and predict times
        are measured where it runs); the rows still come in job order.
        None runs them one after another in this process.

    Returns
    -------
    rows : iterator of dict
        Its attribute ``pending`` lists the (dataset name, model name) jobs
        not run yet, so a dataset is complete when none of its jobs is
        pending.

    Examples
    --------
    >>> from skinfinite.benchmark import iter_benchmark
    >>> for row in iter_benchmark("iris", folds=2, models="svm_rbf,krr_rbf",
    ...                           show_progress=False):
    ...     print(row["dataset"], row["model"])
    iris svm_rbf
    iris krr_rbf
    """
    folds = int(folds)
    if folds < 2:
        raise BenchmarkError(f"folds must be at least 2, got {folds}.")
    model_names = select_models(models)
    data_list = _resolve_datasets(datasets, csv, target, task, folds, encoding)
    jobs = [(data, name) for data in data_list
            for name in _models_reading(data, model_names)]
    for data in data_list:
        if isinstance(data, TimeSeriesDataset):
            continue
        if data.n_samples < folds:
            raise BenchmarkError(
                f"Dataset {data.name!r} has {data.n_samples} rows, fewer than "
                f"the {folds} folds.")
    return _Rows(jobs, folds, seed, show_progress, backend)


class _Rows:
    """The iterator of :func:`iter_benchmark`, with the jobs still pending."""

    def __init__(self, jobs, folds, seed, show_progress, backend=None):
        self.pending = [(data.name, name) for data, name in jobs]
        run = _run_jobs if backend is None else _run_jobs_on
        self._rows = run(jobs, folds, seed, show_progress, self.pending,
                         *(() if backend is None else (backend,)))

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._rows)


def _run_jobs(jobs, folds, seed, show_progress, pending):
    from .._core.config import config_context

    splits = {}
    with _progress(len(jobs), show_progress) as report:
        for number, (data, name) in enumerate(jobs, start=1):
            if id(data) not in splits:
                splits[id(data)] = (None if isinstance(data, TimeSeriesDataset) else
                                    list(_splitter(data.task, folds, seed).split(data.X, data.y)))
            report.start(f"{data.name}: {name}")
            start = time.perf_counter()
            # The kernels' own progress bars would garble the one over jobs.
            with config_context(show_progress=False):
                row = _run_job(data, name, splits[id(data)], seed, folds)
            report.done(number, row, time.perf_counter() - start)
            pending.pop(0)
            yield row


def _quiet_job(data, name, splits, seed, folds):
    from .._core.config import config_context

    with config_context(show_progress=False):
        return _run_job(data, name, splits, seed, folds)


def _run_jobs_on(jobs, folds, seed, show_progress, pending, backend):
    """The jobs of :func:`_run_jobs` run by a joblib backend, in order."""
    import joblib

    splits = {}
    for data, _ in jobs:
        if id(data) not in splits:
            splits[id(data)] = (None if isinstance(data, TimeSeriesDataset) else
                                list(_splitter(data.task, folds, seed).split(data.X, data.y)))
    with _progress(len(jobs), show_progress) as report, \
            joblib.parallel_config(backend):
        rows = joblib.Parallel(n_jobs=-1, return_as="generator")(
            joblib.delayed(_quiet_job)(data, name, splits[id(data)], seed, folds)
            for data, name in jobs)
        last = time.perf_counter()
        for number, ((data, name), row) in enumerate(zip(jobs, rows), start=1):
            report.start(f"{data.name}: {name}")
            now = time.perf_counter()
            report.done(number, row, now - last)
            last = now
            pending.pop(0)
            yield row


class _progress:
    """Progress over jobs on stderr: a bar on a terminal, plain lines in a
    log (where a bar's redraws would each become a line)."""

    def __init__(self, total, enabled):
        self.total = total
        self.bar = None
        # a notebook draws tqdm.auto's bar as a widget
        self.lines = enabled and not (_is_terminal(sys.stderr)
                                      or "ipykernel" in sys.modules)
        if enabled and not self.lines:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=total, unit="job", dynamic_ncols=True,
                            file=sys.stderr)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self.bar is not None:
            self.bar.close()

    def start(self, description):
        if self.bar is not None:
            self.bar.set_description(description)

    def done(self, number, row, seconds):
        if self.bar is not None:
            self.bar.update(1)
        elif self.lines:
            score = ("failed" if row["error"] else
                     f"{row['metric']} {row['score_mean']:.4f}")
            print(f"[{number}/{self.total}] {row['dataset']}: {row['model']}: "
                  f"{score} ({seconds:.1f} s)", file=sys.stderr, flush=True)


def _is_terminal(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # replaced or closed streams
        return False


def _models_reading(data, model_names):
    """The selected models that read the dataset's kind of input and solve
    its task."""
    inputs = SEQUENCES if isinstance(data, TimeSeriesDataset) else TABULAR

    def fits(spec):
        return spec.inputs == inputs and data.task in spec.tasks

    names = [name for name in model_names if fits(MODELS[name])]
    if not names:
        kind = "time-series" if inputs == SEQUENCES else "tabular"
        raise BenchmarkError(
            f"None of the selected models reads the {kind} dataset "
            f"{data.name!r} (a {data.task} task); models for it are: "
            f"{', '.join(n for n, s in MODELS.items() if fits(s))}.")
    return names
