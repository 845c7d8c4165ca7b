#!/usr/bin/env python
"""Side-by-side timing of the fully-connected NNGP + NTK Gram computation.

Runs, one after the other on the same machine and inputs:

* skinfinite (``skinfinite.kernels.nngp_ntk``), with its peak extra memory;
* the per-layer NumPy implementation of the asv suite
  (``benchmarks/bench_fully_connected.py``: one full n x n temporary per
  operation and layer, the straightforward way);
* neural-tangents 0.6.5 (jit), through ``neural_tangents_fc.py`` run by the
  Python of a separate environment (``--nt-python``), if given.

Each runs in a fresh subprocess; times are the best of ``--repeat`` calls
after one warm-up call (which includes compilation).  Prints a JSON line per
implementation and a summary table with the ratios.

Example::

    python asv_bench/peers/compare_fully_connected.py --n 8000 --depth 10 \\
        --nt-python /path/to/nt-venv/bin/python
"""
import argparse
import json
import os
import subprocess
import sys
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))

OURS = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    import skinfinite
    from skinfinite.kernels import nngp_ntk
    n, d, depth, repeat = map(int, sys.argv[1:5])
    skinfinite.set_config(show_progress=False)
    X = np.random.default_rng(0).standard_normal((n, d))
    nngp_ntk(X[:200], depth=depth, weight_variance=2.0, bias_variance=0.1)

    def rss(field):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) * 1024

    times = []
    before = rss("VmRSS")
    for _ in range(repeat):
        t0 = time.perf_counter()
        K, T = nngp_ntk(X, depth=depth, weight_variance=2.0, bias_variance=0.1)
        times.append(time.perf_counter() - t0)
        del K, T
    budget = skinfinite.get_config()["memory_budget"]
    print(json.dumps({"library": "skinfinite", "best_s": min(times),
                      "times_s": times,
                      "peak_extra_bytes": rss("VmHWM") - before,
                      "outputs_bytes": 2 * 8 * n * n,
                      "tile_budget_bytes": budget}))
""")

PER_LAYER = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    n, d, depth, repeat, bench_dir = sys.argv[1:6]
    n, d, depth, repeat = map(int, (n, d, depth, repeat))
    sys.path.insert(0, bench_dir)
    from bench_fully_connected import per_layer_relu_nngp_ntk
    X = np.random.default_rng(0).standard_normal((n, d))
    per_layer_relu_nngp_ntk(X[:200], depth)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        per_layer_relu_nngp_ntk(X, depth)
        times.append(time.perf_counter() - t0)
    print(json.dumps({"library": "per-layer NumPy", "best_s": min(times),
                      "times_s": times}))
""")



def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8000)
    parser.add_argument("--d", type=int, default=50)
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--nt-python", default=None,
                        help="Python of an environment with neural-tangents")
    parser.add_argument("--skip-per-layer", action="store_true")
    args = parser.parse_args(argv)
    sizes = [str(args.n), str(args.d), str(args.depth), str(args.repeat)]
    results = [run([sys.executable, "-c", OURS, *sizes])]
    if not args.skip_per_layer:
        bench_dir = os.path.join(os.path.dirname(HERE), "benchmarks")
        results.append(run([sys.executable, "-c", PER_LAYER, *sizes,
                            bench_dir]))
    if args.nt_python:
        nt = run([args.nt_python, os.path.join(HERE, "neural_tangents_fc.py"),
                  "--n", sizes[0], "--d", sizes[1], "--depth", sizes[2],
                  "--repeat", sizes[3]])
        results.append(nt)
    for r in results:
        print(json.dumps(r))
    ours = results[0]["best_s"]
    print(f"\nNNGP + NTK Gram, n={args.n}, d={args.d}, depth={args.depth}, "
          "ReLU, float64")
    print(f"{'implementation':<28}{'best (s)':>10}{'vs skinfinite':>15}")
    for r in results:
        print(f"{r['library']:<28}{r['best_s']:>10.3f}"
              f"{r['best_s'] / ours:>14.1f}x")
    mem = results[0]
    print(f"\nskinfinite peak extra memory: {mem['peak_extra_bytes'] / 2**20:.0f}"
          f" MiB (outputs {mem['outputs_bytes'] / 2**20:.0f} MiB + tile budget "
          f"{mem['tile_budget_bytes'] / 2**20:.0f} MiB)")


if __name__ == "__main__":
    main()
