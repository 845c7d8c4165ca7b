"""Selecting NTK/NNGP estimators with their defaults against tuned baselines.

Classification: ``NTKClassifierCV()`` and ``NNGPClassifierCV()`` against an
``SVC`` on the same kernel whose depth and ``C`` are tuned by an inner
5-fold grid search; regression: ``NTKRegressorCV()`` and
``NNGPRegressorCV()`` against an RBF ``KernelRidge`` tuned over ``alpha``
and ``gamma``.  Outer 5-fold cross-validation; every choice (the estimators'
grids, the baselines' grids) is fixed before the run.

``--part train`` uses only training data (scikit-learn's tables: a fixed
stratified half; the UCR sets: their TRAIN split), for investigating;
``--part all`` is the reported run (scikit-learn's tables whole, the UCR
sets TRAIN and TEST pooled).  Friedman's problems also come as fresh draws
``friedman1@SEED`` (300 samples from ``make_friedman1(random_state=SEED)``,
all of them training data: the reported run draws seed 0), and
``--ntk-variants`` adds ``NTKRegressorCV`` columns with other parameters
(a JSON list of keyword dicts; ``--nngp-variants`` the same for
``NNGPRegressorCV``), ``--columns`` keeps some of the columns
only, so that changes to the defaults can be measured on training data.

    python asv_bench/peers/compare_selection.py --task classification
    python asv_bench/peers/compare_selection.py --task regression
    python asv_bench/peers/compare_selection.py --task regression \
        --datasets friedman1@1 friedman1@3 --columns NTKRegressorCV \
        --ntk-variants '[{"input_map": "ball"}]'
"""
import argparse
import json
import time

import numpy as np
from sklearn import datasets
from sklearn.compose import TransformedTargetRegressor
from sklearn.gaussian_process.kernels import Matern
from sklearn.kernel_ridge import KernelRidge
from sklearn.model_selection import (GridSearchCV, KFold, StratifiedKFold,
                                     train_test_split)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from skinfinite.engine.cpu.fully_connected import grams_by_depth
from skinfinite.kernels.fully_connected import make_spec
from skinfinite.models import (NNGPClassifier, NNGPClassifierCV,
                               NNGPRegressor, NNGPRegressorCV, NTKClassifier,
                               NTKClassifierCV, NTKRegressor, NTKRegressorCV)
from skinfinite.models.selection import DEPTHS

CLASSIFICATION = ("iris", "wine", "breast_cancer", "digits",
                  "ItalyPowerDemand", "GunPoint", "ArrowHead", "OSULeaf")
REGRESSION = ("diabetes", "linnerud", "Covid3Month", "CardanoSentiment",
              "friedman1", "friedman2", "friedman3")
SVC_C = (0.1, 1.0, 10.0, 100.0, 1000.0)


def _aeon(name, part, loader):
    def flat(split):
        X, y = loader(name, split=split)
        return np.asarray(X, dtype=float).reshape(len(X), -1), np.asarray(y)
    X, y = flat("train")
    if part == "all":
        Xt, yt = flat("test")
        X, y = np.vstack([X, Xt]), np.concatenate([y, yt])
    return X, y


def load(name, part):
    if name[0].isupper():
        from aeon.datasets import load_classification, load_regression
        loader = (load_regression if name in REGRESSION
                  else load_classification)
        X, y = _aeon(name, part, loader)
        return X, (y.astype(float) if name in REGRESSION else y)
    if name.startswith("friedman"):   # synthetic: 300 noisy samples
        name, _, seed = name.partition("@")
        X, y = getattr(datasets, "make_" + name)(
            n_samples=300, noise=0.1 if name == "friedman3" else 1.0,
            random_state=int(seed or 0))
        if part == "train" and not seed:
            X, y = X[:150], y[:150]
        return X, y
    X, y = getattr(datasets, "load_" + name)(return_X_y=True)
    if name == "linnerud":   # exercise counts from the physiological data
        X, y = y, X
    if part == "train":
        strat = None if name in REGRESSION else y
        X, _, y, _ = train_test_split(X, y, train_size=0.5, random_state=0,
                                      stratify=strat)
    return X, y


def tuned_svc_accuracy(X, y, train, test, kind):
    """SVC on the precomputed kernel, depth and C by inner 5-fold CV."""
    scaler = StandardScaler().fit(X[train])
    Z = scaler.transform(X)
    grams = grams_by_depth(Z, make_spec(max(DEPTHS), "relu", 2.0, 0.1, "ntk"),
                           DEPTHS, (kind,))
    best = (-np.inf, None)
    inner = StratifiedKFold(5)
    for depth in DEPTHS:
        K = grams[depth][kind]
        search = GridSearchCV(SVC(kernel="precomputed"), {"C": SVC_C},
                              cv=inner).fit(K[np.ix_(train, train)], y[train])
        if search.best_score_ > best[0]:
            best = (search.best_score_, search.best_estimator_, depth)
    _, svc, depth = best
    K = grams[depth][kind]
    return svc.score(K[np.ix_(test, train)], y[test])


def classification(names, part):
    rows = {}
    for name in names:
        X, y = load(name, part)
        scores = {k: [] for k in ("NTKClassifierCV", "SVC(NTK)",
                                  "NNGPClassifierCV", "SVC(NNGP)",
                                  "NTKClassifier()", "NNGPClassifier()")}
        t0 = time.perf_counter()
        for train, test in StratifiedKFold(5).split(X, y):
            for label, model in (("NTKClassifierCV", NTKClassifierCV()),
                                 ("NNGPClassifierCV", NNGPClassifierCV()),
                                 ("NTKClassifier()", NTKClassifier()),
                                 ("NNGPClassifier()", NNGPClassifier())):
                pipe = make_pipeline(StandardScaler(), model)
                scores[label].append(pipe.fit(X[train], y[train])
                                     .score(X[test], y[test]))
            scores["SVC(NTK)"].append(tuned_svc_accuracy(X, y, train, test,
                                                         "ntk"))
            scores["SVC(NNGP)"].append(tuned_svc_accuracy(X, y, train, test,
                                                          "nngp"))
        rows[name] = {k: np.mean(v) for k, v in scores.items()}
        print(f"{name:18s} n={len(y):5d} " + " ".join(
            f"{k}={v:.4f}" for k, v in rows[name].items())
            + f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
    mean = {k: np.mean([r[k] for r in rows.values()]) for k in
            next(iter(rows.values()))}
    print("mean               " + " ".join(f"{k}={v:.4f}"
                                          for k, v in mean.items()))
    print(f"NTK gap (CV - SVC): {mean['NTKClassifierCV'] - mean['SVC(NTK)']:+.4f}"
          f"  NNGP gap: {mean['NNGPClassifierCV'] - mean['SVC(NNGP)']:+.4f}")


def tuned_krr(kernel, d):
    """Kernel ridge, ``alpha`` and ``gamma`` (the Matérn kernel: its length
    scale) by inner 5-fold search, on standardised targets ("laplacian" is
    scikit-learn's, of the L1 distance; "matern" the Euclidean exponential
    kernel, the one whose RKHS the ReLU NTK has on the sphere)."""
    grid = {"alpha": np.logspace(-3, 1, 9)}
    if kernel == "matern":
        grid["kernel"] = [Matern(length_scale=s, nu=0.5)
                          for s in np.sqrt(d) * np.logspace(-0.5, 1.5, 9)]
        kernel = "rbf"     # replaced by the grid's kernels
    else:
        grid["gamma"] = np.logspace(-3, 1, 9) / d
    return TransformedTargetRegressor(
        GridSearchCV(KernelRidge(kernel=kernel), grid, cv=5),
        transformer=StandardScaler())


def regression(names, part, variants=(), columns=None, nngp_variants=()):
    for name in names:
        X, y = load(name, part)
        Y = y.reshape(len(y), -1)
        d = X.shape[1]
        models = {"NTKRegressorCV": NTKRegressorCV,
                  "NNGPRegressorCV": NNGPRegressorCV,
                  "KRR(RBF) tuned": lambda: tuned_krr("rbf", d),
                  "NTKRegressor()": NTKRegressor,
                  "NNGPRegressor()": NNGPRegressor,
                  "KRR(Laplacian) tuned": lambda: tuned_krr("laplacian", d),
                  "KRR(Matern 1/2) tuned": lambda: tuned_krr("matern", d)}
        optional = ("KRR(Laplacian) tuned", "KRR(Matern 1/2) tuned")
        models = {k: m for k, m in models.items()
                  if (k in columns if columns else k not in optional)}
        for params in variants:
            models[f"NTKRegressorCV(**{json.dumps(params)})"] = (
                lambda params=params: NTKRegressorCV(**params))
        for params in nngp_variants:
            models[f"NNGPRegressorCV(**{json.dumps(params)})"] = (
                lambda params=params: NNGPRegressorCV(**params))
        for target in range(Y.shape[1]):
            yt = Y[:, target]
            scores = {k: [] for k in models}
            for train, test in KFold(5, shuffle=True,
                                     random_state=0).split(X):
                for label, make in models.items():
                    model = make()
                    pipe = make_pipeline(StandardScaler(), model)
                    scores[label].append(pipe.fit(X[train], yt[train])
                                         .score(X[test], yt[test]))
            print(f"{name}[{target}] n={len(yt)} " + " ".join(
                f"{k}={np.mean(v):.4f}" for k, v in scores.items()),
                flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=("classification", "regression"),
                        default="classification")
    parser.add_argument("--part", choices=("train", "all"), default="all")
    parser.add_argument("--datasets", nargs="*")
    parser.add_argument("--ntk-variants", type=json.loads, default=[],
                        help="regression: a JSON list of NTKRegressorCV "
                        "keyword dicts, one more column each")
    parser.add_argument("--nngp-variants", type=json.loads, default=[],
                        help="regression: the same for NNGPRegressorCV")
    parser.add_argument("--columns", nargs="*",
                        help="regression: the columns to keep (default: all "
                        "but the Laplacian and Matern ridges)")
    args = parser.parse_args()
    if args.task == "classification":
        classification(args.datasets or CLASSIFICATION, args.part)
    else:
        regression(args.datasets or REGRESSION, args.part, args.ntk_variants,
                   args.columns, args.nngp_variants)


if __name__ == "__main__":
    main()
