#!/usr/bin/env python
"""Side-by-side timing of signature-kernel Gram matrices: skinfinite against
pysiglib 4.0.0.

Workload: the Gram matrix K(X, X) (or, with ``--cross``, K(X, Y) for a
second set of paths, where skinfinite has no symmetric triangle to exploit)
of ``--n`` paths of ``--length`` points in
``--channels`` channels (standard normal increments scaled by 0.1, i.e.
random walks), float64, no dyadic refinement unless ``--dyadic-order`` is
given, with the linear static kernel and with the RBF static kernel
(length scale 1, i.e. pysiglib's ``RBFKernel(sigma=2)``).

Each library runs in its own fresh subprocess (so that their thread pools
never share a process) and on all cores (pysiglib ``n_jobs=-1``).  Every
round runs both libraries once each, one after the other; a round's time is
the best of ``--repeat`` calls after a warm-up call (which includes numba's
compilation).  With ``--rounds`` several rounds, the table reports the median
over rounds of each library's time and of the per-round ratios, which is
robust to a busy machine.  The two libraries' Grams are compared (largest
relative difference) in the first round.

Example::

    python asv_bench/peers/compare_signature.py --rounds 5
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap

OURS = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    import skinfinite
    from skinfinite import SignatureKernel
    n, length, channels, order, repeat, cross = map(int, sys.argv[1:7])
    static, save = sys.argv[7], sys.argv[8]
    skinfinite.set_config(show_progress=False)
    X = (np.random.default_rng(0).standard_normal((n, length, channels))
         * 0.1).cumsum(axis=1)
    Y = (np.random.default_rng(1).standard_normal((n, length, channels))
         * 0.1).cumsum(axis=1) if cross else None
    # pysiglib's scheme, so that the Grams agree to rounding; the default
    # (Cayley) scheme costs the same per cell
    kernel = SignatureKernel(static_kernel=static, dyadic_order=order,
                             scheme="taylor")
    kernel(X[:8])  # compile
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        K = kernel(X, Y)
        times.append(time.perf_counter() - t0)
    if save != "-":
        np.save(save, K)
    print(json.dumps({"library": "skinfinite", "best_s": min(times),
                      "times_s": times}))
""")

PEER = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    import pysiglib
    n, length, channels, order, repeat, cross = map(int, sys.argv[1:7])
    static, save = sys.argv[7], sys.argv[8]
    X = (np.random.default_rng(0).standard_normal((n, length, channels))
         * 0.1).cumsum(axis=1)
    Y = (np.random.default_rng(1).standard_normal((n, length, channels))
         * 0.1).cumsum(axis=1) if cross else X
    kw = dict(dyadic_order=order, n_jobs=-1)
    if static == "rbf":
        kw["static_kernel"] = pysiglib.RBFKernel(2.0)  # exp(-|x-y|^2 / 2)
    pysiglib.sig_kernel_gram(X[:8], X[:8], **kw)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        K = pysiglib.sig_kernel_gram(X, Y, **kw)
        times.append(time.perf_counter() - t0)
    if save != "-":
        np.save(save, np.asarray(K))
    print(json.dumps({"library": "pysiglib " + pysiglib.__version__
                      if hasattr(pysiglib, "__version__") else "pysiglib",
                      "best_s": min(times), "times_s": times}))
""")


def run(code, args):
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)],
                         capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"exit status {out.returncode}:\n"
                           + out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--length", type=int, default=100)
    parser.add_argument("--channels", type=int, default=5)
    parser.add_argument("--dyadic-order", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--static", nargs="+", default=["linear", "rbf"])
    parser.add_argument("--cross", action="store_true",
                        help="time K(X, Y) for another set Y of n paths "
                             "(no symmetry to exploit) instead of K(X, X)")
    args = parser.parse_args(argv)
    common = [args.n, args.length, args.channels, args.dyadic_order,
              args.repeat, int(args.cross)]
    import numpy as np

    rows = []
    for static in args.static:
        ours, theirs, ratios = [], [], []
        difference = None
        for r in range(args.rounds):
            with tempfile.TemporaryDirectory() as tmp:
                save_a = os.path.join(tmp, "a.npy") if r == 0 else "-"
                save_b = os.path.join(tmp, "b.npy") if r == 0 else "-"
                a = run(OURS, common + [static, save_a])
                b = run(PEER, common + [static, save_b])
                if r == 0:
                    Ka, Kb = np.load(save_a), np.load(save_b)
                    difference = float(np.max(np.abs(Ka - Kb) / np.abs(Kb)))
            print(json.dumps({"static": static, "round": r, "ours": a,
                              "peer": b}), flush=True)
            ours.append(a["best_s"])
            theirs.append(b["best_s"])
            ratios.append(a["best_s"] / b["best_s"])
        rows.append((static, statistics.median(ours),
                     statistics.median(theirs), statistics.median(ratios),
                     difference))
    what = "Cross Gram K(X, Y)" if args.cross else "Gram K(X, X)"
    print(f"\n{what} of {args.n} paths, length {args.length}, {args.channels} "
          f"channels, float64, dyadic order {args.dyadic_order}; medians "
          f"over {args.rounds} rounds")
    print(f"{'static':8s} {'skinfinite':>11s} {'pysiglib':>10s} "
          f"{'ratio':>7s} {'max rel diff':>13s}")
    for static, a, b, ratio, diff in rows:
        print(f"{static:8s} {a:10.3f}s {b:9.3f}s {ratio:6.2f}x {diff:13.1e}")


if __name__ == "__main__":
    main()
