#!/usr/bin/env python
"""CPU time of the Gram of the time-series convolutional kernel.

The kernel the time-series estimators select among: one layer, filter 9,
exponential dilations, "same" padding, ppv readout, plus the same kernel on
the first differences.  Random walks, z-normalised.  One JSON line: wall
and CPU seconds (all threads) of ``K(X)``, the load average, and the CPU
time extrapolated to ``--extrapolate`` series by the number of pairs.

To compare two versions of the package, alternate runs with ``PYTHONPATH``
pointing at each checkout (see docs/guide/convolutional.rst).
"""
import argparse
import json
import os
import time

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--length", type=int, default=500)
    parser.add_argument("--extrapolate", type=int, nargs="*",
                        default=[100, 200])
    args = parser.parse_args(argv)

    from sklearn.base import clone
    from sklearn.gaussian_process.kernels import Sum

    import skinfinite
    from skinfinite.kernels import ConvNNGP
    from skinfinite.models._path_selection import DifferencedKernel
    skinfinite.set_config(show_progress=False)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.n, args.length, 1)).cumsum(axis=1)
    X = (X - X.mean(1, keepdims=True)) / X.std(1, keepdims=True)
    conv = ConvNNGP(readout="ppv", padding="same")
    kernel = Sum(conv, DifferencedKernel(clone(conv)))
    kernel(X[:3])  # compile
    start, start_cpu = time.perf_counter(), time.process_time()
    kernel(X)
    wall = time.perf_counter() - start
    cpu = time.process_time() - start_cpu
    pairs = args.n * (args.n + 1) / 2
    print(json.dumps({
        "package": os.path.dirname(skinfinite.__file__), "n": args.n,
        "length": args.length, "wall": wall, "cpu": cpu,
        "cpu_extrapolated": {m: cpu * m * (m + 1) / 2 / pairs
                             for m in args.extrapolate},
        "load": os.getloadavg()}))


if __name__ == "__main__":
    main()
