#!/usr/bin/env python
"""Test accuracy of signature-kernel classifiers on BasicMotions and JapaneseVowels.

Protocol (the one reported in docs/guide/timeseries.rst):

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

    python asv_bench/peers/timeseries_accuracy.py            # both datasets
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
        estimator = SignatureKernelClassifier()
    elif model == "neural_relu":
        estimator = SignatureKernelClassifier(kernel=NeuralSignatureKernel(
            "relu", bias_variance=0.1, time_augment=True))
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", action="append", choices=DATASETS)
    parser.add_argument("--model", action="append", choices=tuple(GRIDS))
    parser.add_argument("--n-jobs", type=int, default=None)
    args = parser.parse_args(argv)
    import skinfinite

    skinfinite.set_config(show_progress=False)
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
