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

Example::

    python asv_bench/peers/timeseries_conv.py
    python asv_bench/peers/timeseries_conv.py --dataset GunPoint --readout ppv
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
            "JapaneseVowels", "OSULeaf", "ACSF1")
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", action="append", choices=DATASETS)
    parser.add_argument("--readout", action="append",
                        choices=("ppv", "average"))
    args = parser.parse_args()
    skinfinite.set_config(show_progress=False)
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
