"""Benchmarks of the closed-form model selection of the NTK/NNGP estimators.

``SelectionVsOneFit`` times ``NNGPRegressorCV`` over 10 depths x 20 alphas
(leave-one-out, the default screen on 300 samples then exact scores of the
best few candidates on all; one input scale, ``input_scales=(1.0,)``, so
that the grid is the 200 candidates and nothing else) beside one
``NNGPRegressor`` fit at the deepest depth with its default solver (a
Cholesky factorisation at these sizes), on the same ``n`` standard normal
inputs of dimension 50; the ratio of the two is what selection costs in
fits.  ``time_selection_exact`` scores every candidate on all samples
(``screen_size=None``), ``time_selection_default_scales`` selects the input
scale too (the four default factors).  Print them (best of 3, wall-clock
and CPU time; optionally for the given sizes only) with::

    OPENBLAS_NUM_THREADS=1 python asv_bench/benchmarks/bench_selection.py [n ...]

(with ``PYTHONPATH=.`` to time the checkout it is run from rather than the
installed package).
Every ``setup`` compiles the kernels on a tiny input first.
"""

import numpy as np

from skinfinite.benchmark import best_time
from skinfinite.models import NNGPRegressor, NNGPRegressorCV

DEPTHS = tuple(range(1, 11))
ALPHAS = tuple(np.logspace(-4, 2, 20))
GRID = dict(depths=DEPTHS, alphas=ALPHAS, input_scales=(1.0,))


def _data(n, d=50, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X, np.sin(X[:, 0]) + 0.1 * rng.standard_normal(n)


class SelectionVsOneFit:
    params = [500, 1000, 2000]
    param_names = ["n"]
    timeout = 600

    def setup(self, n):
        X, y = _data(20)
        NNGPRegressorCV(**GRID).fit(X, y)
        NNGPRegressorCV(**GRID, cv=5).fit(X, y)
        NNGPRegressor(depth=max(DEPTHS), alpha=1.0).fit(X, y)
        self.X, self.y = _data(n)

    def time_selection(self, n):
        NNGPRegressorCV(**GRID).fit(self.X, self.y)

    def time_one_fit(self, n):
        NNGPRegressor(depth=max(DEPTHS), alpha=1.0,
                      normalize_y=True).fit(self.X, self.y)

    def time_selection_exact(self, n):
        NNGPRegressorCV(**GRID, screen_size=None).fit(self.X, self.y)

    def time_selection_5fold(self, n):
        NNGPRegressorCV(**GRID, cv=5).fit(self.X, self.y)

    def time_selection_default_scales(self, n):
        NNGPRegressorCV(depths=DEPTHS, alphas=ALPHAS).fit(self.X, self.y)


if __name__ == "__main__":
    import os
    import sys
    bench = SelectionVsOneFit()
    exact = "--exact" in sys.argv
    scales = "--scales" in sys.argv
    sizes = [int(a) for a in sys.argv[1:] if a.isdigit()]
    for n in sizes or SelectionVsOneFit.params:
        bench.setup(n)
        one, one_cpu = best_time(lambda: bench.time_one_fit(n))
        loo, loo_cpu = best_time(lambda: bench.time_selection(n))
        kfold, kfold_cpu = best_time(lambda: bench.time_selection_5fold(n))
        line = (f"n={n}: one fit {one:.3f} s, selection (LOO) {loo:.3f} s "
                f"= {loo / one:.1f} fits (CPU time {loo_cpu / one_cpu:.1f}), "
                f"5-fold {kfold:.3f} s = {kfold / one:.1f} fits (CPU time "
                f"{kfold_cpu / one_cpu:.1f})")
        if exact:
            full, _ = best_time(lambda: bench.time_selection_exact(n), repeat=1)
            line += f", unscreened LOO {full:.3f} s = {full / one:.1f} fits"
        if scales:
            four, _ = best_time(lambda: bench.time_selection_default_scales(n))
            line += (f", LOO with the 4 default input scales {four:.3f} s = "
                     f"{four / one:.1f} fits")
        print(line + f"; load {os.getloadavg()[0]:.1f}", flush=True)
