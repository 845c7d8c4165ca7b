"""Cross-validated comparison of infinite-width networks against classic models.

The benchmark fits the infinite-width kernel machines of :mod:`skinfinite.models`
(NTK and NNGP estimators at a few depths and activations) and well-known
baselines (an RBF support vector machine, RBF kernel ridge regression and a
random forest) on small tabular datasets, and reports the cross-validated
score of each, together with the time spent fitting and predicting.

Datasets
--------
The datasets come from :mod:`skinfinite.datasets`: by default the tables
built into scikit-learn (``breast_cancer``, ``wine``, ``iris``, ``digits``
and ``diabetes``; nothing is downloaded).  A table of your own can be
benchmarked with ``csv=PATH, target=COLUMN`` (see
:func:`skinfinite.datasets.load_csv` for how it is read and preprocessed).

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
  penalty, ``alpha = 1``; network hyperparameters are the estimators'
  defaults (``weight_variance=2``, ``bias_variance=0.1``).  Nothing is
  tuned, for the baselines either.
* The score is accuracy for classification and the coefficient of
  determination R^2 for regression (the root mean squared error is reported
  as well).  Mean and standard deviation are taken over the folds; the fit
  and predict times are means per fold, in seconds of wall-clock time.  Each
  model is first fitted once, untimed, on a few rows, so that one-off costs
  such as compiling kernels are not counted.

Time series
-----------
The time-series datasets ``basic_motions`` and ``japanese_vowels`` (see
:func:`skinfinite.datasets.load_timeseries_dataset`) run only when named.
Each model is fitted once on the archive's training split and scored
(accuracy) on its test split; nothing is tuned.  They are compared among the
models that read sequences (``ModelSpec.inputs == "sequences"``): the
signature-kernel classifiers and two baselines on fixed-size features, an
RBF SVM on paths resampled to 32 points (:class:`ResampledSeries`) and a
random forest on per-channel summary statistics (:class:`SeriesSummary`).

The model registry (:data:`MODELS`) is the one place where the compared
models are defined; :func:`list_models` describes it.
"""
from ._errors import BenchmarkError
from ._models import (MODELS, KernelRidgeClassifier, ModelSpec, list_models, make_model,
                      select_models)
from ._report import check_figure_format, format_table, plot_results, write_csv
from ._runner import CSV_COLUMNS, iter_benchmark, run_benchmark
from ._sequence_features import ResampledSeries, SeriesSummary
from ._timing import best_time

__all__ = [
    "run_benchmark", "iter_benchmark", "format_table", "write_csv", "plot_results", "list_models",
    "select_models", "make_model", "MODELS", "CSV_COLUMNS", "BenchmarkError",
    "ModelSpec", "KernelRidgeClassifier", "ResampledSeries", "SeriesSummary",
    "best_time",
]
