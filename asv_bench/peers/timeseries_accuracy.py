#!/usr/bin/env python
"""Test accuracy of signature-kernel classifiers on UCR/UEA time-series sets.

Two protocols.

``--protocol defaults`` (the one reported in docs/guide/timeseries.rst):
:class:`~skinfinite.models.SignatureKernelClassifier` with its defaults,
whose fit chooses the kernel and its parameters by cross-validation on the
training split (the defaults were frozen before any test split was scored),
on every UCR/UEA set bundled with aeon (:data:`AEON_SETS`), against
1-nearest-neighbour with Euclidean distance (computed here; paths of other
lengths are linearly interpolated to the training paths' median length),
1-nearest-neighbour DTW (aeon's ``KNeighborsTimeSeriesClassifier`` with
full-window DTW, computed here, ``--dtw``), and the published MiniRocket and
HIVE-COTE 2 accuracies (:data:`PUBLISHED`).  Reports test accuracy and the
fit and predict times.

``--protocol grid`` (the earlier protocol):

* the archive's fixed train/test split, as shipped
  (:func:`skinfinite.datasets.load_timeseries_dataset`);
* hyperparameters chosen on the training split only, by a grid search with
  5-fold stratified cross-validation (shuffled, seed 0) scored by accuracy,
  refitted on the whole training split;
* the refitted model is scored once on the test split.

The classifier is :class:`skinfinite.models.SignatureKernelClassifier` with
its defaults (RBF static kernel, time augmentation, normalised kernel,
channels standardised on the training paths) and the grid :data:`GRIDS`.
``--model neural_relu`` runs the same protocol with a
:class:`~skinfinite.kernels.NeuralSignatureKernel` (ReLU, bias variance 0.1,
time augmentation) passed as the classifier's ``kernel``.

Example::

    python asv_bench/peers/timeseries_accuracy.py --protocol defaults --dtw
    python asv_bench/peers/timeseries_accuracy.py --protocol defaults --set GunPoint
    python asv_bench/peers/timeseries_accuracy.py            # grid, both datasets
    python asv_bench/peers/timeseries_accuracy.py --dataset basic_motions
    python asv_bench/peers/timeseries_accuracy.py --model neural_relu
"""
import argparse
import json
import time

import numpy as np
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skinfinite.datasets import load_timeseries_dataset
from skinfinite.kernels import NeuralSignatureKernel
from skinfinite.models import SignatureKernelClassifier

#: Grids searched on the training split, by model.
GRIDS = {
    "signature_rbf": {
        "path_scale": [0.1, 0.25, 0.5],
        "length_scale": [0.5, 1.0, 2.0],
        "scale": [0.5, 1.0],
        "C": [1.0, 100.0],
    },
    # ReLU neural signature kernel (not normalised): the state variance grows
    # quickly along rough paths, so the paths are scaled down further.
    "neural_relu": {
        "path_scale": [0.05, 0.1],
        "kernel__weight_variance": [1.0, 2.0],
        "C": [1.0, 100.0],
    },
}

DATASETS = ("basic_motions", "japanese_vowels")


def make_search(model="signature_rbf", n_jobs=None):
    """The grid search of the protocol for ``model``."""
    if model == "signature_rbf":
        # the fixed signature kernel of the grid (no built-in selection)
        estimator = SignatureKernelClassifier(
            kernel=None, dyadic_order=0, time_augment=True, basepoint=False,
            lead_lag=False, max_length=None, length_scale=1.0, path_scale=1.0, C=1.0)
    elif model == "neural_relu":
        estimator = SignatureKernelClassifier(kernel=NeuralSignatureKernel(
            "relu", bias_variance=0.1, time_augment=True), path_scale=1.0, C=1.0)
    else:
        raise ValueError(f"unknown model {model!r}; known: {', '.join(GRIDS)}")
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    return GridSearchCV(estimator, GRIDS[model], cv=folds, scoring="accuracy",
                        n_jobs=n_jobs)


def evaluate(dataset, model="signature_rbf", n_jobs=None):
    """Run the protocol on one dataset; return a dict of results."""
    data = load_timeseries_dataset(dataset)
    search = make_search(model, n_jobs)
    start = time.perf_counter()
    search.fit(data.X_train, data.y_train)
    search_time = time.perf_counter() - start
    start = time.perf_counter()
    accuracy = float(search.score(data.X_test, data.y_test))
    predict_time = time.perf_counter() - start
    return {
        "dataset": dataset, "model": model,
        "test_accuracy": accuracy,
        "cv_accuracy": float(search.best_score_),
        "best_params": {k: (float(v) if isinstance(v, (int, float, np.floating)) else v)
                        for k, v in search.best_params_.items()},
        "candidates": len(search.cv_results_["params"]),
        "search_time_s": round(search_time, 2),
        "test_predict_time_s": round(predict_time, 2),
    }


#: UCR/UEA sets bundled with aeon 1.6 (no download).
AEON_SETS = ("UnitTest", "GunPoint", "ItalyPowerDemand", "ArrowHead", "BasicMotions",
             "JapaneseVowels", "PickupGestureWiimoteZ", "OSULeaf", "ACSF1")

#: Published test accuracies (mean over 30 resamples): MiniRocket (Dempster
#: et al., angus924/minirocket results) and HIVE-COTE 2 (aeon's results
#: table, resample 0 is the archive's split but the mean is reported here).
PUBLISHED = {
    "MiniRocket": {"GunPoint": 0.992, "ArrowHead": 0.881, "ItalyPowerDemand": 0.960,
                   "OSULeaf": 0.958, "ACSF1": 0.822},
}


def _to_paths(X):
    """aeon's (n, channels, length) array or list of (channels, length_i)
    arrays as paths (n, length, channels) or a list of (length_i, channels)."""
    if isinstance(X, np.ndarray):
        return np.ascontiguousarray(np.transpose(X, (0, 2, 1)))
    return [np.ascontiguousarray(np.asarray(x).T) for x in X]


def _hc2():
    import os

    import aeon
    import pandas as pd
    path = os.path.join(os.path.dirname(aeon.__file__), "testing",
                        "example_results_files", "classification", "accuracy",
                        "HC2_accuracy.csv")
    table = pd.read_csv(path, index_col=0)
    return {name: float(row.mean()) for name, row in table.iterrows()}


def _one_nn_euclidean(X_train, y_train, X_test, y_test):
    from skinfinite.models._path_selection import _common_length, _sq_distances
    from skinfinite._core.sequences import check_sequences
    train, test = check_sequences(X_train), check_sequences(X_test)
    length = train.max_length if train.equal_lengths else int(np.median(train.lengths))
    a, b = _common_length(train, length), _common_length(test, length)
    nearest = np.argmin(_sq_distances(b, a), axis=1)
    return float(np.mean(np.asarray(y_train)[nearest] == np.asarray(y_test)))


def _one_nn_dtw(name):
    from aeon.classification.distance_based import KNeighborsTimeSeriesClassifier
    from aeon.datasets import load_classification
    X, y = load_classification(name, split="train")
    Xt, yt = load_classification(name, split="test")
    model = KNeighborsTimeSeriesClassifier(n_neighbors=1, distance="dtw")
    return float(model.fit(X, y).score(Xt, yt))


def evaluate_defaults(name, dtw=False, time_budget=None):
    """Fit ``SignatureKernelClassifier()`` on the training split of ``name``
    and score it once on the test split; baselines beside it."""
    from aeon.datasets import load_classification
    X, y = load_classification(name, split="train")
    Xt, yt = load_classification(name, split="test")
    X, Xt = _to_paths(X), _to_paths(Xt)
    params = {} if time_budget is None else {"time_budget": time_budget}
    model = SignatureKernelClassifier(**params)
    start = time.perf_counter()
    model.fit(X, y)
    fit_time = time.perf_counter() - start
    start = time.perf_counter()
    accuracy = float(np.mean(model.predict(Xt) == yt))
    predict_time = time.perf_counter() - start
    result = {
        "dataset": name, "n_train": len(y), "n_test": len(yt),
        "length": int(max(np.shape(x)[0] for x in X)), "channels": int(np.shape(X[0])[1]),
        "test_accuracy": accuracy, "cv_accuracy": float(model.best_score_),
        "best_params": {k: (float(v) if isinstance(v, (float, np.floating)) else v)
                        for k, v in model.best_params_.items()},
        "fit_time_s": round(fit_time, 1), "predict_time_s": round(predict_time, 1),
        "1nn_euclidean": _one_nn_euclidean(X, y, Xt, yt),
        "hc2": _hc2().get(name),
        "minirocket": PUBLISHED["MiniRocket"].get(name),
    }
    if dtw:
        result["1nn_dtw"] = _one_nn_dtw(name)
    return result


def _fmt(value):
    return "   -  " if value is None else f"{value:6.3f}"


def main_defaults(args):
    results = []
    for name in args.set or AEON_SETS:
        result = evaluate_defaults(name, args.dtw, args.time_budget)
        print(json.dumps(result), flush=True)
        results.append(result)
    print()
    print(f"{'dataset':<22} {'n':>4} {'len':>5} {'ch':>3} {'ours':>6} {'1NN-ED':>6} "
          f"{'1NN-DTW':>7} {'MiniR':>6} {'HC2':>6} {'fit s':>6} {'pred s':>6}  kernel")
    for r in results:
        print(f"{r['dataset']:<22} {r['n_train']:>4} {r['length']:>5} {r['channels']:>3} "
              f"{r['test_accuracy']:6.3f} {r['1nn_euclidean']:6.3f} "
              f"{_fmt(r.get('1nn_dtw')):>7} {_fmt(r['minirocket'])} {_fmt(r['hc2'])} "
              f"{r['fit_time_s']:6.1f} {r['predict_time_s']:6.1f}  "
              f"{r['best_params']['kernel']}")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", choices=("grid", "defaults"), default="grid")
    parser.add_argument("--dataset", action="append", choices=DATASETS)
    parser.add_argument("--set", action="append", choices=AEON_SETS,
                        help="aeon set of the defaults protocol (repeatable)")
    parser.add_argument("--dtw", action="store_true",
                        help="also run 1-NN DTW (aeon) in the defaults protocol")
    parser.add_argument("--time-budget", type=float, default=None,
                        help="time_budget of the classifier (default: its default)")
    parser.add_argument("--model", action="append", choices=tuple(GRIDS))
    parser.add_argument("--n-jobs", type=int, default=None)
    args = parser.parse_args(argv)
    import skinfinite

    skinfinite.set_config(show_progress=False)
    if args.protocol == "defaults":
        return main_defaults(args)
    results = []
    for dataset in args.dataset or DATASETS:
        for model in args.model or tuple(GRIDS):
            result = evaluate(dataset, model, args.n_jobs)
            print(json.dumps(result), flush=True)
            results.append(result)
    print()
    print(f"{'dataset':<16} {'model':<16} {'CV acc':>7} {'test acc':>8}  best parameters")
    for r in results:
        params = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in r["best_params"].items())
        print(f"{r['dataset']:<16} {r['model']:<16} {r['cv_accuracy']:>7.3f} "
              f"{r['test_accuracy']:>8.3f}  {params}")
    return results


if __name__ == "__main__":
    main()
