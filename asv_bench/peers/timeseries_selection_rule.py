#!/usr/bin/env python
"""Optimism of the model selection, measured inside the training splits.

For each UCR/UEA set bundled with aeon, the *training split only* is cut
into 5 stratified outer folds (shuffled, seed 1).  On each outer training
part ``SignatureKernelClassifier()`` runs its default selection; the model
it chooses (the one-standard-error rule between families, the default) and
the model of the family with the best score (the plain argmax) are both
scored on the outer held-out part.  The two rules see the same search and
differ only in the final choice between families.  No test split is read.

Prints one JSON line per set: the held-out accuracy of both rules, the mean
best inner score, and per outer fold the families chosen and every
family's best inner score and standard error.

Example::

    python asv_bench/peers/timeseries_selection_rule.py UnitTest ArrowHead
"""
import json
import sys
import time
import warnings

import numpy as np
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import SVC

import skinfinite
from skinfinite._core.sequences import Sequences
from skinfinite.models import SignatureKernelClassifier
from skinfinite.models import _path_selection

SETS = ("UnitTest", "ArrowHead", "GunPoint", "PickupGestureWiimoteZ",
        "ItalyPowerDemand")


def _recording():
    """Make the search keep its argmax choice before the rule replaces it."""
    log = {}
    prefer = _path_selection.PathSearch._prefer

    def patched(self):
        log["argmax"] = self.best
        log["search"] = self
        log["families"] = {f: (round(r[0], 3), round(self.family_error[f], 3))
                           for f, r in self.family_best.items()}
        prefer(self)
    _path_selection.PathSearch._prefer = patched
    return log


def nested(name, log):
    from aeon.datasets import load_classification
    X, y = load_classification(name, split="train")
    X = [np.asarray(x, dtype=float).T for x in X]
    y = np.asarray(y)
    argmax, rule, inner, picks = [], [], [], []
    folds = StratifiedKFold(5, shuffle=True, random_state=1)
    for tr, te in folds.split(np.zeros(len(y)), y):
        model = SignatureKernelClassifier().fit([X[i] for i in tr], y[tr])
        X_te = [X[i] for i in te]
        rule.append(np.mean(model.predict(X_te) == y[te]))
        score, _, K, setting, C = log["argmax"]
        inner.append(score)
        # the argmax setting, on paths scaled by its own path scale
        factor = setting.get("path_scale", 1.0) / model.best_params_.get("path_scale", 1.0)
        test = model._read_paths(X_te, reset=False)
        train = model.paths_fit_
        K_te = log["search"].kernel(setting)(
            Sequences(test.values * factor, test.lengths),
            Sequences(train.values * factor, train.lengths))
        svc = SVC(kernel="precomputed", C=C).fit(K, y[tr])
        argmax.append(np.mean(svc.predict(np.asarray(K_te)) == y[te]))
        picks.append({"argmax": setting["kernel"], "rule": model.best_params_["kernel"],
                      "families": log["families"]})
    return {"dataset": name, "argmax": round(float(np.mean(argmax)), 3),
            "one_standard_error": round(float(np.mean(rule)), 3),
            "best_inner_score": round(float(np.mean(inner)), 3), "folds": picks}


def main(argv=None):
    names = (sys.argv[1:] if argv is None else argv) or SETS
    skinfinite.set_config(show_progress=False)
    warnings.simplefilter("ignore")
    log = _recording()
    for name in names:
        start = time.perf_counter()
        row = nested(name, log)
        row["seconds"] = round(time.perf_counter() - start)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
