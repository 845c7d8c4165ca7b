#!/usr/bin/env python
"""Time table of SignatureKernelClassifier's defaults: series count x length.

Synthetic univariate random walks of three classes (the class sets the drift
and the frequency of a faint sine), ``n`` training and ``n`` test series of
``length`` points.  For each size it prints one JSON line:

* ``fit_s``, ``predict_s``: ``SignatureKernelClassifier(kernel=KERNEL).fit``
  (selection included, ``time_budget=60``; ``--kernel``, default "auto")
  and ``predict`` on the test series;
* ``family_s``: the seconds of the Gram matrices of each kernel family
  during the search (from ``cv_results_["gram_time"]``), the split of the
  fit between families;
* ``chosen``: the chosen family and its ``max_length``/``n_components``;
* ``exact_conv_gram_s``: the floor of the exact convolutional kernel at full
  length, one Gram of ``ConvNNGP(readout="ppv", padding="same")`` on the
  series plus its first differences; timed on ``--floor-n`` series and
  extrapolated by the number of pairs (it grows as n^2);
* ``features_s``: the random-feature route's floor, the feature map of the
  same kernel at full length with 1000 filters per dilation on all ``n``
  series (linear in n and in the filters), and ``features_gram_s`` the
  Gram of those features.

Example::

    OPENBLAS_NUM_THREADS=1 python asv_bench/peers/timeseries_time_table.py --quick
    OPENBLAS_NUM_THREADS=1 python asv_bench/peers/timeseries_time_table.py --quick \\
        --kernel conv
    python asv_bench/peers/timeseries_time_table.py --n 100 200 400 \\
        --length 250 500 1000 2000
"""
import argparse
import json
import time
import warnings

import numpy as np

from skinfinite.kernels import ConvNNGP
from skinfinite.models import SignatureKernelClassifier
from skinfinite.models._path_selection import ConvRandomFeatureKernel

QUICK = [(100, 250), (100, 500), (200, 500)]


def make_series(n, length, seed=0, n_classes=3):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    t = np.linspace(0, 1, length)[None, :]
    steps = rng.normal(size=(n, length)) + 0.05 * (y[:, None] - 1)
    X = np.cumsum(steps, axis=1) / np.sqrt(length)
    X = X + 0.3 * np.sin(2 * np.pi * (2 + y[:, None]) * t)
    return X[:, :, None], y


def exact_floor(X, n):
    """Seconds of one exact Gram at full length on n series, extrapolated
    by pairs from the len(X) series timed."""
    conv = ConvNNGP(readout="ppv", padding="same")
    started = time.perf_counter()
    conv(X)
    conv(np.diff(X, axis=1))
    seconds = time.perf_counter() - started
    m = len(X)
    return seconds * (n * (n + 1)) / (m * (m + 1))


def row(n, length, floor_n, kernel="auto"):
    X, y = make_series(n, length, seed=0)
    Xt, yt = make_series(n, length, seed=1)
    X = (X - X.mean()) / X.std()
    Xt = (Xt - X.mean()) / X.std()
    out = {"n": n, "length": length, "kernel": kernel}
    model = SignatureKernelClassifier(kernel=kernel)
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X, y)
    out["fit_s"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    accuracy = float(np.mean(model.predict(Xt) == yt))
    out["predict_s"] = round(time.perf_counter() - started, 1)
    out["accuracy"] = round(accuracy, 3)
    out["shrunk"] = any("time_budget" in str(w.message) for w in caught)
    family, seen = {}, set()
    res = model.cv_results_
    for params, seconds in zip(res["params"], res["gram_time"]):
        key = tuple(sorted((k, str(v)) for k, v in params.items() if k != "C"))
        if key in seen:
            continue
        seen.add(key)
        family[params["kernel"]] = family.get(params["kernel"], 0.0) + seconds
    out["family_s"] = {k: round(v, 1) for k, v in family.items()}
    best = model.best_params_
    out["chosen"] = {k: best[k] for k in ("kernel", "max_length", "n_components")
                     if k in best}
    m = min(n, floor_n)
    out["exact_conv_gram_s"] = round(exact_floor(X[:m], n), 1)
    kernel = ConvRandomFeatureKernel(1000)
    started = time.perf_counter()
    F = kernel.features(X)
    out["features_s"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    F @ F.T
    out["features_gram_s"] = round(time.perf_counter() - started, 2)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[100, 200, 400])
    parser.add_argument("--length", type=int, nargs="+",
                        default=[250, 500, 1000, 2000])
    parser.add_argument("--quick", action="store_true",
                        help=f"only the sizes {QUICK}")
    parser.add_argument("--kernel", default="auto",
                        help='the classifier\'s kernel family ("auto", "conv", ...)')
    parser.add_argument("--floor-n", type=int, default=10,
                        help="series the exact Gram floor is timed on")
    args = parser.parse_args()
    sizes = QUICK if args.quick else [(n, t) for t in args.length for n in args.n]
    # compile every kernel once before timing
    row(20, 40, 4, args.kernel)
    for n, length in sizes:
        print(json.dumps(row(n, length, args.floor_n, args.kernel)), flush=True)


if __name__ == "__main__":
    main()
