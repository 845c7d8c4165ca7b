#!/usr/bin/env python
"""Nested cross-validation inside the training splits of aeon's UCR/UEA sets.

For each set, the TRAIN split only is cut into 5 stratified folds (shuffled,
seed 0); ``SignatureKernelClassifier(kernel=KERNEL)`` (its defaults
otherwise, selection included) is fitted on four fifths and scored on the
fifth.  This measures a change of the search on training data, without
looking at any test split.  One JSON line per fold (accuracy, fit and total
seconds, CPU seconds, the chosen setting), then one with the mean::

    python asv_bench/peers/timeseries_nested.py --set OSULeaf --set ACSF1 \\
        --kernel conv
"""
import argparse
import json
import time
import warnings

import numpy as np
from sklearn.model_selection import StratifiedKFold

from skinfinite.models import SignatureKernelClassifier


def nested(name, kernel, folds=5):
    from aeon.datasets import load_classification
    X, y = load_classification(name, split="train")
    X = np.asarray(X, dtype=float).transpose(0, 2, 1)   # (n, length, channels)
    scores = []
    splits = StratifiedKFold(folds, shuffle=True, random_state=0).split(X, y)
    for fold, (train, test) in enumerate(splits):
        model = SignatureKernelClassifier(kernel=kernel)
        started, cpu = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X[train], y[train])
        fit = time.perf_counter() - started
        accuracy = float(np.mean(model.predict(X[test]) == y[test]))
        scores.append(accuracy)
        print(json.dumps({
            "set": name, "kernel": kernel, "fold": fold, "accuracy": accuracy,
            "fit_s": round(fit, 1),
            "total_s": round(time.perf_counter() - started, 1),
            "cpu_s": round(time.process_time() - cpu, 1),
            "chosen": {k: v for k, v in model.best_params_.items()}},
            default=str), flush=True)
    print(json.dumps({"set": name, "kernel": kernel,
                      "mean_accuracy": float(np.mean(scores))}), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", action="append", required=True,
                        help="an aeon classification set (repeatable)")
    parser.add_argument("--kernel", default="auto")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    for name in args.set:
        nested(name, args.kernel, args.folds)


if __name__ == "__main__":
    main()
