#!/usr/bin/env python
"""Time of the built-in model selection of SignatureKernelClassifier on long series.

Synthetic univariate series (three classes: a sine whose frequency depends on
the class, a random-walk drift and noise), ``n`` training series of ``length``
points.  For each size the script fits ``SignatureKernelClassifier()`` with
its defaults (``time_budget=60``) and prints, as one JSON line:

* ``fit_s``: the whole fit (selection and refit);
* ``predict_s``: predicting ``n`` new series of the same length;
* ``gram_s``: the floor, one Gram matrix of the chosen kernel setting (as
  timed during the search; a fit cannot cost less);
* ``full_signature_gram_s``: one signature-kernel Gram on the full-length
  paths, estimated from the cells solved per second during the search (the
  cost a search at full length would pay per setting);
* ``shrunk``: whether the search was shrunk to fit the budget (the
  :class:`SelectionWarning` it raised), ``cv_rows``: rows of
  ``cv_results_`` (kernel settings times ``C`` values scored).

Example::

    python asv_bench/peers/timeseries_selection_time.py --n 100 300 --length 1000 2000
"""
import argparse
import json
import time
import warnings

import numpy as np


def make_series(n, length, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    t = np.linspace(0, 1, length)[None, :]
    freq = (2.0 + y)[:, None]
    X = np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi, (n, 1)))
    X = X + np.cumsum(rng.normal(scale=0.05, size=(n, length)), axis=1)
    X = X + rng.normal(scale=0.5, size=(n, length))
    return X[:, :, None], y


def measure(n, length, time_budget=60.0):
    import skinfinite
    from skinfinite.models import SignatureKernelClassifier
    from skinfinite.models._path_selection import SelectionWarning

    skinfinite.set_config(show_progress=False)
    X, y = make_series(n, length)
    model = SignatureKernelClassifier(time_budget=time_budget)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SelectionWarning)
        start = time.perf_counter()
        model.fit(X, y)
        fit = time.perf_counter() - start
    X_new, _ = make_series(n, length, seed=1)
    start = time.perf_counter()
    model.predict(X_new)
    predict = time.perf_counter() - start
    res = model.cv_results_
    best = [i for i, p in enumerate(res["params"])
            if {k: v for k, v in p.items() if k not in ("C",)}
            == {k: v for k, v in model.best_params_.items() if k not in ("C",)}]
    sig = [i for i, p in enumerate(res["params"]) if p["kernel"] == "signature"
           and res["gram_time"][i] > 0.05]
    full = None
    if sig:
        i = sig[-1]
        p = res["params"][i]
        used = min(length, p["max_length"] or length)
        cells = (used - 1) ** 2 * 4.0 ** p["dyadic_order"] * (1 + 3 * p["lead_lag"])
        full = res["gram_time"][i] * (length - 1) ** 2 / cells
    return {"n": n, "length": length, "fit_s": round(fit, 1),
            "predict_s": round(predict, 1),
            "gram_s": round(float(res["gram_time"][best[0]]), 2) if best else None,
            "full_signature_gram_s": None if full is None else round(full),
            "kernel": model.best_params_["kernel"],
            "max_length": model.best_params_.get("max_length"),
            "cv_accuracy": round(model.best_score_, 3),
            "cv_rows": len(res["params"]),
            "shrunk": any("time_budget" in str(w.message) for w in caught)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[100, 300])
    parser.add_argument("--length", type=int, nargs="+", default=[1000, 2000])
    parser.add_argument("--time-budget", type=float, default=60.0)
    args = parser.parse_args(argv)
    rows = []
    for n in args.n:
        for length in args.length:
            row = measure(n, length, args.time_budget)
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


if __name__ == "__main__":
    main()
