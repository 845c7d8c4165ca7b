"""CPU seconds of a few compiled kernels, for two checkouts side by side.

A change to a compiled kernel (the fully connected gradients, the
convolutional recursion) should leave its speed unchanged.  This script
times the same calls in a fresh process for each checkout, alternating them
round by round so that both see the same load, and prints the best CPU
seconds of each::

    OPENBLAS_NUM_THREADS=1 python asv_bench/peers/compiled_speed.py \\
        --old /path/to/old/checkout --new . --rounds 4

(``git worktree add /tmp/old <commit>`` gives an old checkout.)  Each
process compiles first, outside the timing; use the checkouts' own numba
caches, or expect the first round to compile.
"""

import argparse
import json
import os
import subprocess
import sys


def measure(repeat):
    import time
    import timeit

    import numpy as np
    import skinfinite
    from skinfinite.kernels import NTK, ConvNNGP, ConvNTK
    skinfinite.set_config(show_progress=False)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 20))
    Z = rng.standard_normal((2000, 20))
    S = rng.standard_normal((30, 300, 1)).cumsum(1)
    S = (S - S.mean(1, keepdims=True)) / S.std(1, keepdims=True)
    cases = {
        "NTK tanh depth 10, gradients, n=300":
            lambda: NTK(depth=10, activation="tanh")(X, eval_gradient=True),
        "NTK relu depth 10, n=2000": lambda: NTK(depth=10)(Z),
        "ConvNNGP ppv same, 30 x 300":
            lambda: ConvNNGP(readout="ppv", padding="same")(S),
        "ConvNTK valid depth 2, gradients, 12 x 150":
            lambda: ConvNTK(readout="average", padding="valid", depth=2,
                            filter_size=5, dilation=[1, 2, 4])(
                                S[:12, :150], eval_gradient=True),
    }
    out = {}
    for name, f in cases.items():
        f()   # compiles
        # the standard library's timer: old checkouts lack the package's
        out[name] = min(timeit.repeat(f, timer=time.process_time, number=1,
                                      repeat=repeat))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", help="checkout of the old code")
    parser.add_argument("--new", default=".", help="checkout of the new code")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.repeat)))
        return
    checkouts = {"new": os.path.abspath(args.new)}
    if args.old:
        checkouts = {"old": os.path.abspath(args.old), **checkouts}
    best = {}
    for _ in range(args.rounds):
        for label, path in checkouts.items():
            env = dict(os.environ, PYTHONPATH=path)
            # run from the checkout's parent so that its copy is imported
            res = subprocess.run([sys.executable, os.path.abspath(__file__),
                                  "--worker", "--repeat", str(args.repeat)],
                                 env=env, cwd=os.path.dirname(path),
                                 capture_output=True, text=True, check=True)
            for name, sec in json.loads(res.stdout.strip().splitlines()[-1]).items():
                key = (name, label)
                best[key] = min(best.get(key, float("inf")), sec)
    names = list(dict.fromkeys(n for n, _ in best))
    print(f"{'case':<45}" + "".join(f"{label:>10}" for label in checkouts))
    for name in names:
        print(f"{name:<45}" + "".join(f"{best[(name, label)]:10.3f}"
                                      for label in checkouts))


if __name__ == "__main__":
    main()
