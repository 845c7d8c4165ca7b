#!/usr/bin/env python
"""Peer benchmark: infinite-width NNGP + NTK Gram matrices of a fully connected
ReLU network computed with neural-tangents (JAX, float64).

Standalone script, NOT part of the package; run it inside the separate peer
virtual environment (see the docs), e.g.

    /work/venvs/nt/bin/python asv_bench/peers/neural_tangents_fc.py --n 8000
    /work/venvs/nt/bin/python asv_bench/peers/neural_tangents_fc.py --selfcheck

Network (NTK parametrisation, neural_tangents.stax defaults):

    [Dense(512, W_std=sqrt(sw2), b_std=sqrt(sb2)), Relu()] * depth
    + Dense(1, W_std=sqrt(sw2), b_std=sqrt(sb2))

Depth mapping: ``depth`` hidden Dense+Relu blocks plus the readout Dense give
exactly ``depth`` ReLU kernel steps on top of the input kernel
K0 = sw2 <x, y> / d + sb2, i.e. they equal our kernel with depth=``depth``
(checked by ``--selfcheck`` against the analytic arc-cosine recursion).

Threads: nothing is configured; XLA's CPU backend uses its default (all
visible cores for intra-op parallelism).

Output: one JSON line on stdout.
"""

import argparse
import json
import math
import os
import sys
import time

# Silence TensorFlow's C++ log chatter (neural-tangents imports TF via tf2jax).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import neural_tangents  # noqa: E402
from neural_tangents import stax  # noqa: E402

LIBRARY = "neural-tangents " + getattr(neural_tangents, "__version__", "0.6.5")
GET = ("nngp", "ntk")


def build_kernel_fn(depth, sw2=2.0, sb2=0.1, width=512):
    w_std, b_std = math.sqrt(sw2), math.sqrt(sb2)
    layers = []
    for _ in range(depth):
        layers += [stax.Dense(width, W_std=w_std, b_std=b_std), stax.Relu()]
    layers.append(stax.Dense(1, W_std=w_std, b_std=b_std))
    _, _, kernel_fn = stax.serial(*layers)
    return kernel_fn


def make_inputs(n, d, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d))


def arccos_reference(x, depth, sw2=2.0, sb2=0.1):
    """Analytic NNGP/NTK recursion for our kernel definition (numpy, float64).

    K0 = sw2 <x,y>/d + sb2, T0 = K0; then ``depth`` times:
      t   = arccos(kxy / sqrt(kxx kyy))
      E1  = sqrt(kxx kyy) (sin t + (pi - t) cos t) / (2 pi)   # E[relu relu]
      E0  = (pi - t) / (2 pi)                                 # E[relu' relu']
      K'  = sw2 E1 + sb2
      T'  = K' + sw2 E0 T
    """
    x = np.asarray(x, dtype=np.float64)
    k = sw2 * (x @ x.T) / x.shape[1] + sb2
    t_ntk = k.copy()
    for _ in range(depth):
        diag = np.sqrt(np.diag(k))
        norm = np.outer(diag, diag)
        cos = np.clip(k / norm, -1.0, 1.0)
        # x == y on the diagonal: force t = 0 exactly. Otherwise a 1-ulp
        # rounding of cos gives t ~ 1e-8 (arccos is ill-conditioned at 1) and
        # an NTK diagonal error of ~1e-8..1e-7.
        np.fill_diagonal(cos, 1.0)
        theta = np.arccos(cos)
        e1 = norm * (np.sin(theta) + (np.pi - theta) * cos) / (2 * np.pi)
        e0 = (np.pi - theta) / (2 * np.pi)
        k_new = sw2 * e1 + sb2
        t_ntk = k_new + sw2 * e0 * t_ntk
        k = k_new
    return k, t_ntk


def selfcheck(n=5, d=3, depth=2, sw2=2.0, sb2=0.1, seed=0):
    x = make_inputs(n, d, seed)
    kernel_fn = build_kernel_fn(depth, sw2, sb2)
    nngp, ntk = kernel_fn(x, None, GET)
    nngp, ntk = np.asarray(nngp), np.asarray(ntk)
    out = {"library": LIBRARY, "selfcheck": True, "n": n, "d": d,
           "nt_depth": depth, "sw2": sw2, "sb2": sb2}
    # Compare against our recursion with depth-1, depth, depth+1 ReLU steps
    # to pin down the mapping exactly.
    for ours in (depth - 1, depth, depth + 1):
        if ours < 0:
            continue
        k_ref, t_ref = arccos_reference(x, ours, sw2, sb2)
        out[f"ours_depth_{ours}"] = {
            "max_abs_diff_nngp": float(np.max(np.abs(nngp - k_ref))),
            "max_abs_diff_ntk": float(np.max(np.abs(ntk - t_ref))),
        }
    out["max_abs_nngp"] = float(np.max(np.abs(nngp)))
    out["max_abs_ntk"] = float(np.max(np.abs(ntk)))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=8000)
    p.add_argument("--d", type=int, default=50)
    p.add_argument("--depth", type=int, default=10)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--sw2", type=float, default=2.0)
    p.add_argument("--sb2", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", metavar="PATH", default=None,
                   help="directory; writes X.npy, nngp.npy, ntk.npy "
                        "(meant for small n)")
    p.add_argument("--selfcheck", action="store_true",
                   help="compare with the analytic arc-cosine recursion "
                        "for n=5, d=3, depth=2 and exit")
    args = p.parse_args(argv)

    if args.selfcheck:
        print(json.dumps(selfcheck(sw2=args.sw2, sb2=args.sb2)))
        return 0

    kernel_fn = jax.jit(build_kernel_fn(args.depth, args.sw2, args.sb2),
                        static_argnums=(2,))
    x = make_inputs(args.n, args.d, args.seed)
    xj = jax.device_put(x)
    jax.block_until_ready(xj)

    def run():
        res = kernel_fn(xj, None, GET)
        res.nngp.block_until_ready()
        res.ntk.block_until_ready()
        return res

    t0 = time.perf_counter()
    res = run()
    first = time.perf_counter() - t0

    times = []
    for _ in range(args.repeat):
        del res
        t0 = time.perf_counter()
        res = run()
        times.append(time.perf_counter() - t0)

    if args.save:
        os.makedirs(args.save, exist_ok=True)
        np.save(os.path.join(args.save, "X.npy"), x)
        np.save(os.path.join(args.save, "nngp.npy"), np.asarray(res.nngp))
        np.save(os.path.join(args.save, "ntk.npy"), np.asarray(res.ntk))

    out = {
        "library": LIBRARY,
        "n": args.n,
        "d": args.d,
        "depth": args.depth,
        "compile_plus_first_s": first,
        "best_s": min(times) if times else None,
        "jax": jax.__version__,
        "times_s": times,
        "dtype": str(res.nngp.dtype),
        "backend": jax.default_backend(),
        "cpu_count": os.cpu_count(),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
