"""What the screen of the NTK/NNGP selection loses against scoring every
candidate on all samples, on training data only.

For each problem the selecting estimator with its default grids (one input
scale and one activation, ``input_scales=(1.0,)`` and
``activations=("relu",)``, for the regressors) is fitted once with
``screen_size=None`` (every candidate scored exactly on all samples) and
three times with the default screen (``random_state`` 0, 1, 2: three
screening subsets); the regret of a screened fit is the exact score of the
best candidate minus the exact score of the screened choice, relative to
the former (0: the screen chose the best).  The problems are fresh draws of
Friedman's three problems and of the selection benchmark's data
(``asv_bench/benchmarks/bench_selection.py``), all of them training data,
and the first rows of the digits training half of ``compare_selection.py``.
``--fine-kernels`` sets how many kernels the coarse screen passes on.

    python asv_bench/peers/screen_regret.py 500 1000
"""
import argparse

import numpy as np
from sklearn import datasets
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import skinfinite.models.selection as selection
from skinfinite.models import (NNGPClassifierCV, NNGPRegressorCV,
                               NTKClassifierCV, NTKRegressorCV)


def problems(n):
    for name in ("friedman1", "friedman2", "friedman3"):
        for seed in (21, 22):
            X, y = getattr(datasets, "make_" + name)(
                n_samples=n, noise=0.1 if name == "friedman3" else 1.0,
                random_state=seed)
            yield f"{name}@{seed}", X, y, False
    for seed in (3, 4):
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((n, 50))
        yield (f"bench@{seed}", X,
               np.sin(X[:, 0]) + 0.1 * rng.standard_normal(n), False)
    X, y = datasets.load_digits(return_X_y=True)
    X, _, y, _ = train_test_split(X, y, train_size=0.5, random_state=0,
                                  stratify=y)
    yield "digits-train", X[:n], y[:n], True


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[500, 1000])
    parser.add_argument("--fine-kernels", type=int)
    args = parser.parse_args()
    if args.fine_kernels:
        selection.FINE_KERNELS = args.fine_kernels
    regrets = []
    for n in args.sizes:
        for name, X, y, classify in problems(n):
            X = StandardScaler().fit_transform(X)
            kinds = ((NNGPClassifierCV, NTKClassifierCV) if classify
                     else (NNGPRegressorCV, NTKRegressorCV))
            extra = {} if classify else {"input_scales": (1.0,),
                                          "activations": ("relu",)}
            for kind in kinds:
                exact = kind(screen_size=None, **extra).fit(X, y).cv_results_
                score = {tuple(sorted(p.items())): s for p, s in
                         zip(exact["params"], exact["mean_test_score"])}
                top = np.max(exact["mean_test_score"])
                regret = np.mean([
                    (top - score[tuple(sorted(kind(random_state=seed,
                                                   **extra).fit(X, y)
                                              .best_params_.items()))])
                    / abs(top) for seed in (0, 1, 2)])
                regrets.append(regret)
                print(f"n={n} {name:14s} {kind.__name__:17s} regret "
                      f"{regret:.5f}", flush=True)
    regrets = np.array(regrets)
    print(f"mean relative regret {regrets.mean():.5f}, max "
          f"{regrets.max():.5f}, none in {np.mean(regrets == 0):.2f} of the "
          "cases")


if __name__ == "__main__":
    main()
