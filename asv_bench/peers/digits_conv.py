#!/usr/bin/env python
"""Digits (8x8) by 5-fold cross-validation: the convolutional NNGP
classifier against the fully connected one (and the convolutional deep
kernel machine, with ``--dkm``).

Protocol, fixed before any score was seen:

* ``sklearn.datasets.load_digits``, pixel intensities divided by 16;
* outer: ``StratifiedKFold(5, shuffle=True, random_state=0)``; each model's
  setting is chosen by an inner ``StratifiedKFold(3, shuffle=True,
  random_state=1)`` on the outer training folds only (best mean inner
  accuracy, ties to the earlier setting), refitted on them, scored once on
  the outer test fold;
* ``NNGPClassifier`` (fully connected): ``depth`` in 1, 2, 3 and ``alpha``
  in 1e-10, 1e-2, the other parameters at their defaults;
* ``NNGPClassifier(architecture=ConvNNGP(image_shape=(8, 8),
  filter_size=3, dilation=1, padding="same"))``, readout "average" (global
  average pooling) or "flatten", ``depth`` in 1, 2, 3, ``alpha`` in 1e-10,
  1e-2;
* ``--dkm``: ``DeepKernelMachineClassifier(image_shape=(8, 8),
  n_inducing=128, depth=2, nu=10, likelihood="gaussian", max_iter=100,
  learning_rate=0.03, batch_size=128)``, the setting of the guide's
  digits comparison (no inner search: about 5 minutes per fit here).

The kernels have no fitted parameters, so each setting's Gram of all 1797
images is computed once and sliced per fold; the classifier is then the
regression onto centred one-hot targets the ``NNGPClassifier`` computes,
which the script checks against ``NNGPClassifier.fit(...).predict(...)``
on the first outer fold (identical predictions, or it stops).

Example::

    python asv_bench/peers/digits_conv.py
    python asv_bench/peers/digits_conv.py --dkm
"""
import argparse
import itertools
import json
import time

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from sklearn.datasets import load_digits
from sklearn.model_selection import StratifiedKFold

import skinfinite
from skinfinite.kernels import ConvNNGP
from skinfinite.models import NNGPClassifier

DEPTHS = (1, 2, 3)
ALPHAS = (1e-10, 1e-2)


def _conv(readout):
    return ConvNNGP(image_shape=(8, 8), filter_size=3, dilation=1,
                    padding="same", readout=readout)


def settings():
    """(model, setting) -> classifier factory."""
    out = {}
    for depth, alpha in itertools.product(DEPTHS, ALPHAS):
        out[("fully connected", (depth, alpha))] = (
            lambda d=depth, a=alpha: NNGPClassifier(depth=d, alpha=a))
        for readout in ("average", "flatten"):
            out[(f"convolutional ({readout})", (depth, alpha))] = (
                lambda d=depth, a=alpha, r=readout: NNGPClassifier(
                    architecture=_conv(r), depth=d, alpha=a))
    return out


def predict(K, train, test, y, alpha):
    """The NNGP classifier's regression onto centred one-hot targets."""
    classes = np.unique(y[train])
    Y = (y[train][:, None] == classes[None, :]) - 1.0 / classes.size
    factor = cho_factor(K[np.ix_(train, train)]
                        + alpha * np.eye(train.size), lower=True)
    return classes[np.argmax(K[np.ix_(test, train)] @ cho_solve(factor, Y),
                             axis=1)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dkm", action="store_true")
    args = parser.parse_args(argv)
    skinfinite.set_config(show_progress=False)
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    factories = settings()
    grams, seconds = {}, {}
    for (model, (depth, alpha)), make in factories.items():
        key = (model, depth)
        if key in grams:
            continue
        start = time.process_time()
        kernel = make().fit(X[:20], y[:20]).kernel_
        grams[key] = kernel(X)
        seconds[key] = time.process_time() - start
        print(json.dumps({"gram": f"{model}, depth {depth}",
                          "cpu_seconds": round(seconds[key], 1)}), flush=True)
    outer = StratifiedKFold(5, shuffle=True, random_state=0)
    models = sorted({m for m, _ in factories})
    scores = {m: [] for m in models}
    chosen = {m: [] for m in models}
    if args.dkm:
        scores["convolutional DKM"] = []
    for fold, (train, test) in enumerate(outer.split(X, y)):
        inner = list(StratifiedKFold(3, shuffle=True, random_state=1).split(
            X[train], y[train]))
        for model in models:
            best, best_score = None, -1.0
            for (m, (depth, alpha)) in factories:
                if m != model:
                    continue
                K = grams[(m, depth)]
                acc = np.mean([np.mean(predict(K, train[a], train[b], y, alpha)
                                       == y[train[b]]) for a, b in inner])
                if acc > best_score:
                    best, best_score = (depth, alpha), acc
            depth, alpha = best
            pred = predict(grams[(model, depth)], train, test, y, alpha)
            if fold == 0:
                clf = factories[(model, best)]().fit(X[train], y[train])
                if not np.array_equal(clf.predict(X[test]), pred):
                    raise RuntimeError(f"{model}: sliced Gram predictions "
                                       "differ from NNGPClassifier's.")
            scores[model].append(float(np.mean(pred == y[test])))
            chosen[model].append({"depth": depth, "alpha": alpha,
                                  "inner_accuracy": round(best_score, 4)})
        if args.dkm:
            from skinfinite.models import DeepKernelMachineClassifier
            clf = DeepKernelMachineClassifier(
                image_shape=(8, 8), n_inducing=128, depth=2, nu=10,
                likelihood="gaussian", max_iter=100, learning_rate=0.03,
                batch_size=128, device="cpu", random_state=0)
            scores["convolutional DKM"].append(
                float(clf.fit(X[train], y[train]).score(X[test], y[test])))
        print(json.dumps({"fold": fold, **{m: s[-1] for m, s in
                                           scores.items()}}), flush=True)
    for model, s in scores.items():
        print(json.dumps({"model": model, "mean_accuracy": np.mean(s),
                          "std_error": np.std(s, ddof=1) / np.sqrt(len(s)),
                          "folds": s, "chosen": chosen.get(model)}))


if __name__ == "__main__":
    main()
