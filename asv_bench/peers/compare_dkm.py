#!/usr/bin/env python
"""Deep kernel machines against the NNGP with the same layer kernel.

Regression: test RMSE on random 70/30 splits (inputs standardised on the
training part) of

* ``diabetes`` (scikit-learn's, 442 rows, 10 features);
* ``friedman1``, ``friedman2``, ``friedman3``: scikit-learn's
  ``make_friedman1/2/3`` with 400 rows and Gaussian noise of standard
  deviation 1.0, 50.0 and 0.05 (about 20%, 15% and 15% of the target's
  standard deviation), seed 0.

The NNGP is that of a ReLU network with ``n_layers + 1`` hidden layers
(``--n-layers`` counts the learned layers; the machines get
``depth=n_layers + 1``)
(``weight_variance=2``, ``bias_variance=0.1``) with its noise variance fitted
by marginal likelihood: the deep kernel machine with ``nu=np.inf``, which is
``NNGPRegressor(depth=n_layers + 1, alpha=<that noise>)`` (tested to
rounding).  The deep kernel machine is the full one (all training points
inducing) or, with ``--inducing P``, one whose learned layers move through
``P`` inducing points under the exact output layer over all training points
(``n_inducing=P, output_layer="exact"``), with finite ``nu``: one fixed
``--nu``, or (``--nu-grid``) the
``nu`` of the grid with the lowest RMSE on a validation split (25%) of the
training part (or the lowest mean RMSE of ``--cv-folds`` folds), refitted
on the whole training part.  The test part is used
for nothing but the reported RMSE.

Classification: ``load_digits``, ``--splits-classifier`` stratified 70/30
splits (seeds 0, 1, ...), test accuracy of ``NNGPClassifier(depth=3)``
(alpha 1e-10 and 1e-2) and of the ``DeepKernelMachineClassifier``
(``--likelihood softmax`` or ``gaussian``, the latter the same regression
onto centred one-hot targets as the ``NNGPClassifier``).  With the Gaussian
likelihood the machine with ``nu=inf`` is also scored: the NNGP with its
noise variance learned by marginal likelihood like the machine's.  With
``--nu-grid-classifier`` the machine's ``nu`` is the one with the best
accuracy on a stratified 25% validation part of the training part (ties go
to the earlier entry of the grid); an entry is one ``nu`` for every layer
or one per layer joined by ``:`` (``inf:3`` learns the last of two layers
only).  ``--learn-output-scale`` gives the softmax machine a learned
output amplitude.  The run ends with the mean paired accuracy difference
between the machine and each NNGP classifier, its standard error over the
splits, and the splits won, tied and lost.  ``--pixels`` gives every model
the pixel intensities scaled to [0, 1] instead of standardised inputs.

Validation pilot (``--part validation``): for the splits of
``--pilot-splits``, the stratified 25% validation part of the training part
that ``--nu-grid-classifier`` uses, or with ``--cv-folds k`` the k
stratified folds of the training part (inputs standardised on the rest of
the training part), and the errors on it of the NNGP classifiers and of each machine of
``--configs``, a JSON list of ``DeepKernelMachineClassifier`` keyword
dicts (``Infinity`` for ``np.inf``); the test parts are not touched.

Images (``--part images``): the convolutional machine on ``load_digits``
as 8 x 8 images of pixel intensities scaled to [0, 1]
(``DeepKernelMachineClassifier(image_shape=(8, 8), ...)`` with
``--inducing-classifier`` inducing patches, ``--n-layers`` learned
convolutional layers, ``--nu-classifier``, ``--likelihood``,
``--epochs-classifier``, ``--learning-rate`` and ``--batch-size``), against
``NNGPClassifier(depth=3)`` (alpha 1e-10 and 1e-2) on standardised inputs
and, alpha 1e-10, on the same scaled pixels; the same stratified 70/30
splits as the classification part, then the paired summary.

Speed: one epoch of the sparse regressor on 50000 rows of 10 features, 100
inducing points, 3 layers, batches of 256, float64, CPU.

Example::

    python asv_bench/peers/compare_dkm.py --splits 3
"""
import argparse
import json
import time

import numpy as np

import skinfinite  # before torch (thread pool settings)
from sklearn.datasets import (load_diabetes, load_digits, make_friedman1,
                              make_friedman2, make_friedman3)
from sklearn.model_selection import (KFold, StratifiedKFold,
                                     train_test_split)
from sklearn.preprocessing import StandardScaler

from skinfinite.models import (DeepKernelMachineClassifier,
                               DeepKernelMachineRegressor, NNGPClassifier)


def regression_tasks():
    yield ("diabetes",) + tuple(load_diabetes(return_X_y=True))
    yield ("friedman1",) + make_friedman1(400, noise=1.0, random_state=0)
    yield ("friedman2",) + make_friedman2(400, noise=50.0, random_state=0)
    yield ("friedman3",) + make_friedman3(400, noise=0.05, random_state=0)


def _split(X, y, seed, stratify=None):
    Xa, Xb, ya, yb = train_test_split(X, y, test_size=0.3, random_state=seed,
                                      stratify=stratify)
    scaler = StandardScaler().fit(Xa)
    return scaler.transform(Xa), scaler.transform(Xb), ya, yb


def _pixel_split(X, y, seed):
    """The stratified split of ``_split``, pixel intensities scaled to [0, 1]."""
    return train_test_split(X / 16.0, y, test_size=0.3, random_state=seed,
                            stratify=y)


def _rmse(model, X, y):
    return float(np.sqrt(np.mean((model.predict(X) - y) ** 2)))


def _regressor(args, nu, seed):
    # nu=inf is the NNGP whatever the inducing points: fit it as the full one
    inducing = args.inducing if args.inducing and np.isfinite(nu) else None
    return DeepKernelMachineRegressor(
        depth=args.n_layers + 1, nu=nu, n_inducing=inducing,
        output_layer="exact", max_iter=args.epochs,
        learning_rate=args.learning_rate, device="cpu", random_state=seed)


def _choose_nu(args, X, y, seed):
    """The nu of the grid with the lowest RMSE on a validation split of the
    training data (the test data are not seen)."""
    if not args.nu_grid:
        return args.nu
    if args.cv_folds > 1:
        folds = list(KFold(args.cv_folds, shuffle=True,
                           random_state=seed + 1000).split(X))
    else:
        folds = [train_test_split(np.arange(len(y)), test_size=0.25,
                                  random_state=seed + 1000)]
    scores = {nu: np.mean([_rmse(_regressor(args, nu, seed).fit(X[a], y[a]),
                                 X[v], y[v]) for a, v in folds])
              for nu in args.nu_grid}
    return min(scores, key=scores.get)


def regression(args):
    label = (f"nu by validation from {args.nu_grid}" if args.nu_grid
             else f"nu={args.nu:g}")
    if args.inducing:
        label += f", {args.inducing} inducing"
    print(f"| task | NNGP RMSE | DKM RMSE ({label}) | DKM / NNGP | nu chosen |")
    print("|---|---|---|---|---|")
    wins = n_tasks = 0
    for name, X, y in regression_tasks():
        if args.tasks and name not in args.tasks.split(","):
            continue
        n_tasks += 1
        scores, chosen = [], []
        for seed in range(args.splits):
            Xa, Xb, ya, yb = _split(X, y, seed)
            nu = _choose_nu(args, Xa, ya, seed)
            chosen.append(nu)
            scores.append([_rmse(_regressor(args, v, seed).fit(Xa, ya), Xb, yb)
                           for v in (np.inf, nu)])
        nngp, dkm = np.mean(scores, axis=0)
        wins += dkm < nngp
        print(f"| {name} | {nngp:.4g} | {dkm:.4g} | {dkm / nngp:.3f} | "
              f"{', '.join(f'{v:g}' for v in chosen)} |", flush=True)
    print(f"DKM better on {wins} of {n_tasks} tasks")


def _nu_entry(text):
    """One grid entry: a float, or per-layer floats joined by ':'."""
    values = [float(v) for v in text.split(":")]
    return values[0] if len(values) == 1 else tuple(values)


def _nu_label(nu):
    return ":".join(f"{v:g}" for v in np.atleast_1d(nu))


def _classifier(args, nu):
    inducing = (args.inducing_classifier
                if args.inducing_classifier and np.isfinite(nu).any() else None)
    return DeepKernelMachineClassifier(
        depth=args.n_layers + 1, nu=nu, n_inducing=inducing,
        output_layer=args.output_layer_classifier,
        likelihood=args.likelihood, max_iter=args.epochs_classifier,
        learn_output_scale=args.learn_output_scale,
        device="cpu", random_state=0)


def _classification_split(args, X, y, seed):
    """Test accuracies of one stratified split: the NNGP classifiers, then
    the deep kernel machine(s)."""
    Xa, Xb, ya, yb = (_pixel_split(X, y, seed) if args.pixels
                      else _split(X, y, seed, stratify=y))
    out = {}
    for alpha in (1e-10, 1e-2):
        out[f"NNGPClassifier(alpha={alpha:g})"] = NNGPClassifier(
            depth=args.n_layers + 1, alpha=alpha).fit(Xa, ya).score(Xb, yb)
    nu = args.nu_classifier
    if args.nu_grid_classifier:
        # nu by accuracy on a stratified 25% validation part of the
        # training part (the test part is not seen)
        Xc, Xv, yc, yv = train_test_split(Xa, ya, test_size=0.25,
                                          random_state=seed + 1000,
                                          stratify=ya)
        scores = {v: _classifier(args, v).fit(Xc, yc).score(Xv, yv)
                  for v in args.nu_grid_classifier}
        print(f"  split {seed}: validation accuracy "
              + ", ".join(f"nu={_nu_label(v)} {a:.4f}"
                          for v, a in scores.items()),
              flush=True)
        nu = max(scores, key=scores.get)
    for v in ([np.inf] if args.likelihood == "gaussian" else []) + [nu]:
        start = time.perf_counter()
        clf = _classifier(args, v).fit(Xa, ya)
        key = ("DKM nu=inf (NNGP, noise by marginal likelihood)"
               if not np.isfinite(v).any() else "DKM")
        out[key] = clf.score(Xb, yb)
        print(f"  split {seed}: DeepKernelMachineClassifier(likelihood="
              f"{args.likelihood}, nu={_nu_label(v)}, "
              f"n_inducing={clf.n_inducing}, "
              f"output_layer={args.output_layer_classifier}, max_iter="
              f"{args.epochs_classifier}) accuracy {out[key]:.4f} (noise "
              f"{getattr(clf, 'alpha_', float('nan')):.4g}, "
              f"{time.perf_counter() - start:.0f} s)", flush=True)
    return out, nu


def classification(args):
    X, y = load_digits(return_X_y=True)
    results, chosen = [], []
    seeds = range(args.first_split, args.first_split + args.splits_classifier)
    for seed in seeds:
        out, nu = _classification_split(args, X, y, seed)
        results.append(out)
        chosen.append(nu)
    print(f"digits, {args.splits_classifier} stratified 70/30 splits (seeds "
          f"{seeds[0]} to {seeds[-1]}), test "
          f"accuracy per split and mean (DKM nu chosen: "
          f"{', '.join(_nu_label(v) for v in chosen)}):")
    for key in results[0]:
        accs = [r[key] for r in results]
        print(f"| {key} | {' | '.join(f'{a:.4f}' for a in accs)} | "
              f"{np.mean(accs):.4f} |", flush=True)
    for key in [k for k in results[0] if k.startswith("NNGPClassifier")]:
        _paired_summary(results, "DKM", key)


def images(args):
    X, y = load_digits(return_X_y=True)
    results = []
    seeds = range(args.first_split, args.first_split + args.splits_classifier)
    for seed in seeds:
        Xa, Xb, ya, yb = _split(X, y, seed, stratify=y)
        Pa, Pb, _, _ = _pixel_split(X, y, seed)
        out = {f"NNGPClassifier(alpha={alpha:g})": NNGPClassifier(
            depth=3, alpha=alpha).fit(Xa, ya).score(Xb, yb)
            for alpha in (1e-10, 1e-2)}
        out["NNGPClassifier(alpha=1e-10), pixels / 16"] = NNGPClassifier(
            depth=3, alpha=1e-10).fit(Pa, ya).score(Pb, yb)
        start = time.perf_counter()
        clf = DeepKernelMachineClassifier(
            image_shape=(8, 8), n_inducing=args.inducing_classifier,
            depth=args.n_layers + 1, nu=args.nu_classifier,
            likelihood=args.likelihood, max_iter=args.epochs_classifier,
            learning_rate=args.learning_rate, batch_size=args.batch_size,
            device="cpu", random_state=0)
        out["convolutional DKM"] = clf.fit(Pa, ya).score(Pb, yb)
        print(f"  split {seed}: " + ", ".join(
            f"{k} {v:.4f}" for k, v in out.items())
            + f" ({time.perf_counter() - start:.0f} s)", flush=True)
        results.append(out)
    print(f"digits as 8 x 8 images, {len(results)} stratified 70/30 splits "
          f"(seeds {seeds[0]} to {seeds[-1]}), mean test accuracy:")
    for key in results[0]:
        print(f"| {key} | {np.mean([r[key] for r in results]):.4f} |")
    for key in [k for k in results[0] if k.startswith("NNGPClassifier")]:
        _paired_summary(results, "convolutional DKM", key)


def _paired_summary(results, model, baseline):
    """Mean paired accuracy difference with its standard error, and the
    splits won, tied and lost."""
    diff = np.array([r[model] - r[baseline] for r in results])
    sem = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else np.nan
    print(f"{model} - {baseline}: mean {diff.mean():+.5f} (standard error "
          f"{sem:.5f}), better on {int((diff > 0).sum())}, equal on "
          f"{int((diff == 0).sum())}, worse on {int((diff < 0).sum())} of "
          f"{len(diff)} splits", flush=True)


def _pilot_folds(args, Xa, ya, seed):
    """The validation parts of one split's training part: the 25% part of
    ``--nu-grid-classifier`` or (``--cv-folds`` > 1) stratified folds."""
    if args.cv_folds > 1:
        return list(StratifiedKFold(args.cv_folds, shuffle=True,
                                    random_state=seed + 1000).split(Xa, ya))
    return [train_test_split(np.arange(len(ya)), test_size=0.25,
                             random_state=seed + 1000, stratify=ya)]


def validation_pilot(args):
    X, y = load_digits(return_X_y=True)
    configs = json.loads(args.configs)
    names = ([f"NNGPClassifier(alpha={a:g})" for a in (1e-10, 1e-2)]
             + [str(c) for c in configs])
    for seed in args.pilot_splits:
        Xa, _, ya, _ = train_test_split(X, y, test_size=0.3, random_state=seed,
                                        stratify=y)
        errors = dict.fromkeys(names, 0)
        for a, v in _pilot_folds(args, Xa, ya, seed):
            scaler = StandardScaler().fit(Xa[a])
            Xc, Xv, yc, yv = scaler.transform(Xa[a]), scaler.transform(Xa[v]), \
                ya[a], ya[v]
            models = [NNGPClassifier(depth=args.n_layers + 1, alpha=alpha)
                      for alpha in (1e-10, 1e-2)]
            models += [DeepKernelMachineClassifier(
                **{"depth": args.n_layers + 1, "device": "cpu",
                   "random_state": 0, **config}) for config in configs]
            for name, model in zip(names, models):
                start = time.perf_counter()
                wrong = int(np.sum(model.fit(Xc, yc).predict(Xv) != yv))
                errors[name] += wrong
                loss = (f", loss {model.loss_curve_[0]:.3f} to "
                        f"{model.loss_curve_[-1]:.3f}"
                        if getattr(model, "loss_curve_", None) else "")
                print(f"split {seed}: {name} {wrong} of {len(yv)} validation "
                      f"digits wrong ({time.perf_counter() - start:.0f} s"
                      f"{loss})", flush=True)
        if args.cv_folds > 1:
            for name in names:
                print(f"split {seed}, {args.cv_folds} folds: {name} "
                      f"{errors[name]} of {len(ya)} wrong", flush=True)


def speed(args):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50000, 10))
    y = np.sin(X[:, 0]) + 0.1 * rng.standard_normal(50000)
    for activation in args.activations.split(","):
        start = time.perf_counter()
        DeepKernelMachineRegressor(depth=4, n_inducing=100, max_iter=1,
                                   activation=activation, device="cpu",
                                   random_state=0).fit(X, y)
        print(f"one epoch, 50000 x 10, 100 inducing, 3 layers, {activation}: "
              f"{time.perf_counter() - start:.1f} s", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", default="regression,classification,speed")
    parser.add_argument("--splits", type=int, default=3)
    parser.add_argument("--n-layers", type=int, default=2,
                        help="learned layers (the machines' depth minus 1)")
    parser.add_argument("--nu", type=float, default=100.0)
    parser.add_argument("--nu-grid", type=lambda s: [float(v) for v in s.split(",")],
                        default=None, help="e.g. 30,100,300,1000: choose nu "
                        "per split by validation on the training part")
    parser.add_argument("--cv-folds", type=int, default=1,
                        help="with --nu-grid: 1 is one 25%% validation split, "
                        "k > 1 k-fold cross-validation on the training part")
    parser.add_argument("--tasks", default="",
                        help="comma-separated subset of the regression tasks")
    parser.add_argument("--inducing", type=int, default=0,
                        help="regression: inducing points of the learned "
                        "layers, with the exact output layer over all "
                        "training points (0: the full machine)")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--learning-rate", type=float, default=0.01)
    parser.add_argument("--batch-size", type=int, default=256,
                        help="--part images: minibatch size")
    parser.add_argument("--likelihood", default="softmax")
    parser.add_argument("--nu-classifier", type=_nu_entry, default=100.0,
                        help="one nu, or per-layer values joined by ':'")
    parser.add_argument("--inducing-classifier", type=int, default=500,
                        help="0: the full machine")
    parser.add_argument("--epochs-classifier", type=int, default=50)
    parser.add_argument("--output-layer-classifier", default="auto")
    parser.add_argument("--splits-classifier", type=int, default=1)
    parser.add_argument("--pixels", action="store_true",
                        help="classification: every model on the pixel "
                        "intensities / 16 instead of standardised inputs")
    parser.add_argument("--first-split", type=int, default=0,
                        help="seed of the first classification split")
    parser.add_argument("--nu-grid-classifier",
                        type=lambda s: [_nu_entry(v) for v in s.split(",")],
                        default=None, help="choose nu (or the NNGP) by "
                        "accuracy on a validation part of the training part; "
                        "e.g. inf:3,3 (per-layer values joined by ':')")
    parser.add_argument("--learn-output-scale", action="store_true",
                        help="softmax likelihood: learn the output scale")
    parser.add_argument("--configs", default="[]",
                        help="--part validation: JSON list of "
                        "DeepKernelMachineClassifier keyword dicts")
    parser.add_argument("--pilot-splits",
                        type=lambda s: [int(v) for v in s.split(",")],
                        default=[0], help="--part validation: split seeds")
    parser.add_argument("--activations", default="relu,erf,tanh")
    args = parser.parse_args()
    skinfinite.set_config(show_progress=False)
    parts = args.part.split(",")
    if "regression" in parts:
        regression(args)
    if "classification" in parts:
        classification(args)
    if "validation" in parts:
        validation_pilot(args)
    if "images" in parts:
        images(args)
    if "speed" in parts:
        speed(args)


if __name__ == "__main__":
    main()
