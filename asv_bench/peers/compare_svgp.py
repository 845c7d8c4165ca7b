#!/usr/bin/env python
"""Sparse variational GP against the exact GP on a large regression problem.

Data: Friedman's first regression function (scikit-learn's
``make_friedman1``, 10 features of which 5 matter, Gaussian noise of
standard deviation ``--noise``), ``--n-train`` training and ``--n-test``
test rows, features standardised.  Kernel: the NNGP of a ReLU network of
``--depth`` hidden layers.

1. Hyperparameters of the exact GP: :class:`skinfinite.models.GPRegressor`
   (exact marginal likelihood, L-BFGS, Cholesky) on a random subset of
   ``--subset`` training rows; the exact marginal likelihood on all rows
   through GPyTorch would need CG on a 20000 x 20000 kernel, too slow on a
   small CPU machine.
2. Exact reference: the exact GP posterior on **all** training rows with
   those hyperparameters: the compiled NNGP kernel and a dense Cholesky
   factorisation, the computation of :class:`skinfinite.models.NNGPRegressor`
   done in place (``exact_posterior``; NNGPRegressor itself holds three
   n x n arrays, about 10 GB at n = 20000, more than this machine could
   spare).
3. :class:`skinfinite.models.SVGPRegressor` on all training rows, all its
   hyperparameters (kernel, noise, inducing locations, variational
   distribution) fitted by the ELBO, once from the default starting point
   (``svgp``) and once warm-started at the subset's hyperparameters
   (``svgp_warm``), with the options given here; or ``SVGPRegressor()``
   with all its defaults (``svgp_default``, one fit per ``--fit-seeds``).
   ``--runs`` picks among them.

``--exact-cache FILE`` keeps the exact GP's figures (steps 1 and 2, a few
minutes) so that further SVGP runs on the same data skip them.

Both are scored by the mean test log predictive density,
``mean log N(y | mu, var_f + noise)``, and the relative gap
``(ll_exact - ll_svgp) / |ll_exact|``.

Examples::

    python asv_bench/peers/compare_svgp.py --n-train 20000 --n-test 2000 \\
        --n-inducing 1024 --batch-size 512 --epochs 20 --natural
    python asv_bench/peers/compare_svgp.py --runs svgp_default \\
        --fit-seeds 0 1 2 --exact-cache /tmp/exact20000.npz
"""
import argparse
import json
import os
import sys
import time

import numpy as np


def log_density(y, mean, var):
    return float(np.mean(-0.5 * np.log(2 * np.pi * var)
                         - 0.5 * (y - mean) ** 2 / var))


def exact_posterior(X, y, Xt, kernel, noise):
    """Exact GP posterior mean and latent variance, factorised in place.

    The computation of ``NNGPRegressor(normalize_y=True)`` (the kernel acts
    on standardised targets, the noise is given in the units of ``y``),
    written so that only one n x n array exists: NNGPRegressor keeps the
    kernel, the factor and the lower triangle L_, about 10 GB at n = 20000.
    """
    from scipy import linalg

    from skinfinite.engine.driver import diagonal, gram
    spec = kernel.spec()
    offset, scale = y.mean(), y.std()
    K = gram(X, None, spec, ("nngp",))["nngp"]
    K[np.diag_indices_from(K)] += noise / scale ** 2
    L, _ = linalg.cho_factor(K, lower=True, overwrite_a=True,
                             check_finite=False)
    alpha = linalg.cho_solve((L, True), (y - offset) / scale,
                             check_finite=False)
    Ks = gram(Xt, X, spec, ("nngp",))["nngp"]
    mean = Ks @ alpha
    V = linalg.solve_triangular(L, Ks.T, lower=True, check_finite=False)
    var = diagonal(Xt, spec, "nngp") - np.einsum("ij,ij->j", V, V)
    return mean * scale + offset, np.clip(var, 0.0, None) * scale ** 2


def exact_reference(X, y, Xt, yt, args, rng):
    """Hyperparameters on a subset, then the exact posterior on all rows."""
    from skinfinite import NNGP
    from skinfinite.models import GPRegressor
    out = {}
    t0 = time.perf_counter()
    sub = rng.choice(args.n_train, min(args.subset, args.n_train),
                     replace=False)
    hyper = GPRegressor(NNGP(depth=args.depth), optimizer="lbfgs",
                        learning_rate=0.5, max_iter=60,
                        random_state=args.seed).fit(X[sub], y[sub])
    out["hyper_fit_s"] = time.perf_counter() - t0
    kern = hyper.kernel_
    out["hyper"] = dict(weight_variance=kern.weight_variance,
                        bias_variance=kern.bias_variance, noise=hyper.alpha_)
    t0 = time.perf_counter()
    mean, var = exact_posterior(X, y, Xt, kern, hyper.alpha_)
    out["exact_s"] = time.perf_counter() - t0
    out["exact_ll"] = log_density(yt, mean, var + hyper.alpha_)
    out["exact_rmse"] = float(np.sqrt(np.mean((yt - mean) ** 2)))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-train", type=int, default=20000)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--noise", type=float, default=1.0)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--subset", type=int, default=2000)
    parser.add_argument("--n-inducing", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--learning-rate", type=float, default=0.02)
    parser.add_argument("--natural", action="store_true",
                        help="natural gradients for the variational "
                             "distribution")
    parser.add_argument("--init-subset", type=int, default=1000,
                        help="SVGPRegressor's init_subset for the svgp and "
                             "svgp_warm runs (0: start the ELBO from the "
                             "given kernel and noise)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", nargs="*", default=["svgp", "svgp_warm"],
                        choices=["svgp", "svgp_warm", "svgp_default"],
                        help="SVGP fits to score: the options above from the "
                             "default kernel and noise 0.1 (svgp) or from the "
                             "subset's hyperparameters (svgp_warm), or "
                             "SVGPRegressor() with all its defaults "
                             "(svgp_default)")
    parser.add_argument("--fit-seeds", type=int, nargs="+", default=None,
                        help="random_state of each svgp_default fit "
                             "(default: --seed)")
    parser.add_argument("--exact-cache", default=None,
                        help="npz file holding the exact GP's results for "
                             "these data (written if missing, read if "
                             "present)")
    args = parser.parse_args()

    import skinfinite
    from sklearn.datasets import make_friedman1
    from sklearn.preprocessing import StandardScaler

    from skinfinite import NNGP
    from skinfinite.models import SVGPRegressor

    skinfinite.set_config(show_progress=False)
    n = args.n_train + args.n_test
    X, y = make_friedman1(n, noise=args.noise, random_state=args.seed)
    X = StandardScaler().fit_transform(X)
    X, Xt, y, yt = X[:args.n_train], X[args.n_train:], y[:args.n_train], \
        y[args.n_train:]
    rng = np.random.default_rng(args.seed)
    result = vars(args).copy()

    if args.exact_cache and os.path.exists(args.exact_cache):
        cached = np.load(args.exact_cache)
        assert np.allclose(cached["yt"], yt), "cache is for other data"
        result.update(json.loads(str(cached["summary"])))
    else:
        result.update(exact_reference(X, y, Xt, yt, args, rng))
        if args.exact_cache:
            summary = {k: result[k] for k in ("hyper_fit_s", "hyper",
                                              "exact_s", "exact_ll",
                                              "exact_rmse")}
            np.savez(args.exact_cache, yt=yt, summary=json.dumps(summary))
    hyper = result["hyper"]
    kern = NNGP(depth=args.depth, weight_variance=hyper["weight_variance"],
                bias_variance=hyper["bias_variance"])
    y_scale = y.std()
    print(json.dumps(result), file=sys.stderr, flush=True)

    # the SVGP from the default starting point, and warm-started at the
    # subset's hyperparameters (kernel and noise; it refits them)
    starts = {"svgp": (NNGP(depth=args.depth), 0.1),
              "svgp_warm": (kern, hyper["noise"] / y_scale ** 2)}
    runs = []
    for name in args.runs:
        if name == "svgp_default" and args.fit_seeds:
            runs += [(f"svgp_default_{k}", k) for k in args.fit_seeds]
        else:
            runs.append((name, args.seed))
    for name, fit_seed in runs:
        t0 = time.perf_counter()
        if name.startswith("svgp_default"):
            svgp = SVGPRegressor(random_state=fit_seed)
        else:
            kernel, noise = starts[name]
            svgp = SVGPRegressor(kernel, n_inducing=args.n_inducing,
                                 batch_size=args.batch_size,
                                 max_iter=args.epochs,
                                 learning_rate=args.learning_rate,
                                 alpha=noise,
                                 natural_gradient=args.natural,
                                 init_subset=args.init_subset,
                                 random_state=args.seed)
        svgp.fit(X, y)
        result[name + "_fit_s"] = time.perf_counter() - t0
        mean, std = svgp.predict(Xt, return_std=True)
        result[name + "_ll"] = log_density(yt, mean, std ** 2 + svgp.alpha_)
        result[name + "_rmse"] = float(np.sqrt(np.mean((yt - mean) ** 2)))
        result[name + "_hyper"] = dict(
            weight_variance=svgp.kernel_.weight_variance,
            bias_variance=svgp.kernel_.bias_variance, noise=svgp.alpha_)
        result[name + "_loss_curve"] = svgp.loss_curve_
        result[name + "_relative_gap"] = ((result["exact_ll"]
                                           - result[name + "_ll"])
                                          / abs(result["exact_ll"]))
        print(json.dumps(result), file=sys.stderr, flush=True)
    print(json.dumps(result))
    print(f"exact GP  test log-likelihood {result['exact_ll']:.4f}  "
          f"RMSE {result['exact_rmse']:.4f}  ({result['exact_s']:.0f} s; "
          f"hyperparameters {result['hyper_fit_s']:.0f} s)")
    for name, _ in runs:
        print(f"{name:<15}test log-likelihood {result[name + '_ll']:.4f}  "
              f"RMSE {result[name + '_rmse']:.4f}  "
              f"({result[name + '_fit_s']:.0f} s)  relative gap "
              f"{100 * result[name + '_relative_gap']:.2f}%")

if __name__ == "__main__":
    main()
