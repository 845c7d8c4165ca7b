#!/usr/bin/env python
"""Test accuracy of the infinite-width random-convolution kernel on UCR/UEA sets.

Protocol, fixed before any test split was looked at:

* the archive's train/test split as aeon ships it
  (``aeon.datasets.load_classification``, no download);
* every series z-normalised per channel (mean 0, standard deviation 1 over
  time);
* the kernel :class:`skinfinite.kernels.ConvNNGP` with filter_size 9,
  dilations 1, 2, 4, ... up to (T - 1) / 8, one layer, weight variance 2,
  bias variance 1, valid padding (zero "same" padding where a training
  series is shorter than the filter: JapaneseVowels), and the readout
  "ppv" (proportion of
  positive values) or "average" (ReLU then global average pooling);
* :class:`sklearn.svm.SVC` on the precomputed Gram, C chosen from
  10^-2 ... 10^4 by 3-fold stratified cross-validation (shuffled, seed 0)
  on the training split only, refitted on it, scored once on the test
  split.  Nothing else is tuned.

The baseline is 1-nearest-neighbour with the Euclidean distance on the same
z-normalised series (unequal lengths padded by repeating the last point).

``--training-cv`` (the table behind the convolutional family of the
estimators' model selection): on the *training split only*, every channel
standardised over all points, series shortened to at most 128 points (means
of consecutive segments, as the selection's coarse stages do), the
5-fold stratified cross-validated accuracy (repeated twice, seed 0; C the
best of 0.1 ... 1000) of sums of :class:`ConvNNGP` kernels ("same" padding,
bias variance 1, each Gram divided by its mean diagonal): on the series, on
their first differences, with the "ppv" and "average" readouts.  No test
split is read.

Example::

    python asv_bench/peers/timeseries_conv.py
    python asv_bench/peers/timeseries_conv.py --dataset GunPoint --readout ppv
    python asv_bench/peers/timeseries_conv.py --training-cv
"""
import argparse
import json
import time

import numpy as np
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.svm import SVC

import skinfinite
from skinfinite.kernels import ConvNNGP

DATASETS = ("GunPoint", "ItalyPowerDemand", "ArrowHead", "BasicMotions",
            "JapaneseVowels", "OSULeaf", "ACSF1", "UnitTest",
            "PickupGestureWiimoteZ")
#: Sums of kernels compared by ``--training-cv``: (input, readout) parts.
VARIANTS = {
    "series ppv": [("series", "ppv")],
    "differences ppv": [("differences", "ppv")],
    "series+differences ppv": [("series", "ppv"), ("differences", "ppv")],
    "series ppv+average": [("series", "ppv"), ("series", "average")],
    "series average": [("series", "average")],
    "series+differences ppv+average": [(i, r) for i in ("series", "differences")
                                       for r in ("ppv", "average")],
}
C_GRID = np.logspace(-2, 4, 7)


def _znorm(x):
    """(T, C) series z-normalised per channel."""
    std = x.std(axis=0, keepdims=True)
    return (x - x.mean(axis=0, keepdims=True)) / np.where(std > 0, std, 1.0)


def load(name):
    """Train and test series as lists of (T_i, C) arrays, and labels."""
    from aeon.datasets import load_classification
    out = []
    for split in ("train", "test"):
        X, y = load_classification(name, split=split)
        out.append(([_znorm(np.asarray(x, dtype=float).T) for x in X],
                    np.asarray(y)))
    return out


def _padded(series, length):
    return np.stack([np.concatenate([x, np.repeat(x[-1:], length - len(x),
                                                  axis=0)]).ravel()
                     for x in series])


def one_nn_euclidean(Xtr, ytr, Xte, yte):
    top = max(len(x) for x in Xtr + Xte)
    A, B = _padded(Xtr, top), _padded(Xte, top)
    d = (B ** 2).sum(1)[:, None] - 2 * B @ A.T + (A ** 2).sum(1)[None]
    return float(np.mean(ytr[np.argmin(d, axis=1)] == yte))


def conv_svc(Xtr, ytr, Xte, yte, readout, filter_size=9):
    short = min(len(x) for x in Xtr) < filter_size
    kernel = ConvNNGP(filter_size=filter_size, readout=readout,
                      padding="same" if short else "valid")
    start = time.perf_counter()
    Ktr = kernel(Xtr)
    Kte = kernel(Xte, Xtr)
    gram_s = time.perf_counter() - start
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    search = GridSearchCV(SVC(kernel="precomputed"), {"C": C_GRID}, cv=cv)
    search.fit(Ktr, ytr)
    return {"accuracy": float(search.score(Kte, yte)),
            "C": float(search.best_params_["C"]),
            "cv_accuracy": float(search.best_score_),
            "gram_seconds": round(gram_s, 2)}


def training_cv(name, max_length=128):
    """Cross-validated accuracy of :data:`VARIANTS` on the training split."""
    from aeon.datasets import load_classification
    from sklearn.model_selection import RepeatedStratifiedKFold
    from skinfinite._core.sequences import Sequences, check_sequences
    from skinfinite.models._path_selection import difference, shorten
    X, y = load_classification(name, split="train")
    y = np.asarray(y)
    seqs = check_sequences([np.asarray(x, dtype=float).T for x in X])
    mask = np.arange(seqs.max_length)[None, :] < seqs.lengths[:, None]
    points = seqs.values[mask]
    std = points.std(0)
    seqs = Sequences((seqs.values - points.mean(0)) / np.where(std > 0, std, 1.0),
                     seqs.lengths)
    inputs = {"series": shorten(seqs, max_length)}
    inputs["differences"] = difference(inputs["series"])
    grams, seconds = {}, {}
    for part in {p for parts in VARIANTS.values() for p in parts}:
        start = time.perf_counter()
        K = ConvNNGP(readout=part[1], padding="same")(inputs[part[0]])
        seconds[" ".join(part)] = round(time.perf_counter() - start, 1)
        grams[part] = K / np.mean(np.diag(K))
    n_splits = max(2, min(5, int(np.unique(y, return_counts=True)[1].min())))
    folds = list(RepeatedStratifiedKFold(n_splits=n_splits, n_repeats=2,
                                         random_state=0).split(y, y))
    row = {"dataset": name, "n_train": len(y), "length": int(seqs.max_length)}
    for variant, parts in VARIANTS.items():
        K = sum(grams[p] for p in parts)
        best = (-1.0, 0.0)
        for C in (0.1, 1.0, 10.0, 100.0, 1000.0):
            scores = np.array([np.mean(SVC(kernel="precomputed", C=C)
                                       .fit(K[np.ix_(tr, tr)], y[tr])
                                       .predict(K[np.ix_(te, tr)]) == y[te])
                               for tr, te in folds])
            if scores.mean() > best[0] + 1e-12:
                best = (scores.mean(), scores.std(ddof=1) / np.sqrt(len(scores)))
        row[variant] = [round(best[0], 3), round(best[1], 3)]
    row["gram_seconds"] = seconds
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", action="append", choices=DATASETS)
    parser.add_argument("--readout", action="append",
                        choices=("ppv", "average"))
    parser.add_argument("--training-cv", action="store_true",
                        help="cross-validate sums of kernels on the training "
                             "splits only")
    args = parser.parse_args()
    skinfinite.set_config(show_progress=False)
    if args.training_cv:
        for name in args.dataset or DATASETS:
            print(json.dumps(training_cv(name)), flush=True)
        return
    for name in args.dataset or DATASETS:
        (Xtr, ytr), (Xte, yte) = load(name)
        row = {"dataset": name, "n_train": len(Xtr), "n_test": len(Xte),
               "length": max(len(x) for x in Xtr),
               "channels": Xtr[0].shape[1],
               "1nn_euclidean": one_nn_euclidean(Xtr, ytr, Xte, yte)}
        for readout in args.readout or ("ppv", "average"):
            row[readout] = conv_svc(Xtr, ytr, Xte, yte, readout)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
