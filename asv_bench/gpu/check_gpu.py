"""One-shot check of the GPU engine on a CUDA machine: correctness, then speed.

Run from the repository root on a machine with CuPy, numba-cuda and a GPU::

    python asv_bench/gpu/check_gpu.py --out results/

1. ``pytest tests/test_gpu_device.py``: every activation, float64 and
   float32, values and gradients against the CPU engine on fresh random
   inputs, CuPy/torch inputs, estimators end to end and an induced
   out-of-memory that must recover.
2. The floors of the fused recursion (bytes moved, operations) for the
   measured sizes, from the device's specifications given on the command
   line.
3. Timings, side by side in this one run (median of ``--repeat`` calls after
   a warm-up that compiles the kernels):

   * fused NNGP+NTK Gram (ReLU, depth 10, d = 100, n = 20000) against the
     per-layer CuPy implementation of ``asv_bench/benchmarks``, float64 and
     float32;
   * n = 50000, float32, Gram kept on the device;
   * ``NTKRegressor`` fit + predict, 30000 training and 5000 test points,
     float64;
   * the signature-kernel Gram of 1000 paths of length 100 in 5 channels,
     float64, linear static kernel (against pysiglib on the GPU when it is
     installed), and of a few paths of length 2000.

``--smoke`` runs the same code on tiny sizes in numba's CUDA simulator with
NumPy arrays (no GPU, meaningless timings): a check of the script itself.
Results are printed and written to ``<out>/gpu_check.json``.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "asv_bench"))

DEPTH = 10


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=".", help="folder for the JSON")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes in the CUDA simulator (no GPU)")
    parser.add_argument("--skip-tests", action="store_true")
    parser.add_argument("--cpu-reference", type=int, nargs="*",
                        metavar="N", help="only time NTKRegressor on the CPU "
                        "at these training sizes and extrapolate to 30000")
    parser.add_argument("--bandwidth", type=float, default=3.35e12,
                        help="memory bandwidth, bytes/s (H100 SXM: 3.35e12)")
    parser.add_argument("--fp64-rate", type=float, default=3.4e13,
                        help="FP64 operations/s without tensor cores, an "
                        "FMA counting as two (H100 SXM: 3.4e13)")
    return parser.parse_args()


def main():
    args = parse_args()
    if args.smoke:
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
    results = {"argv": sys.argv[1:]}
    if args.cpu_reference:
        results["cpu_reference"] = cpu_reference(args.cpu_reference)
        print(json.dumps(results, indent=2))
        return 0
    if not args.skip_tests and not args.smoke:
        results["tests_returncode"] = run_device_tests()
    sizes = ({"fc": 40, "large": 60, "train": 50, "test": 20, "paths": 4,
              "long": 12} if args.smoke
             else {"fc": 20000, "large": 50000, "train": 30000,
                   "test": 5000, "paths": 1000, "long": 2000})
    env = Environment(args.smoke)
    results["device"] = env.describe()
    results["floors"] = floors(sizes, args.bandwidth, args.fp64_rate)
    results["fused_vs_per_layer"] = time_fused_vs_per_layer(
        env, sizes["fc"], args.repeat)
    results["large_float32_on_device"] = time_large_float32(
        env, sizes["large"], args.repeat)
    results["ntk_regressor"] = time_regressor(env, sizes["train"],
                                              sizes["test"])
    results["signature"] = time_signature(env, sizes["paths"],
                                          sizes["long"], args.repeat)
    print(json.dumps(results, indent=2))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(results, indent=2))
    return results.get("tests_returncode", 0)


def run_device_tests():
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs",
                           "-p", "no:cacheprovider",
                           str(ROOT / "tests" / "test_gpu_device.py")],
                          cwd=ROOT)
    return done.returncode


class Environment:
    """The array module, a synchronising clock and the GPU context."""

    def __init__(self, smoke):
        import numpy as np
        self.np = np
        self.smoke = smoke
        if smoke:
            from skinfinite._core.backend import simulated_gpu
            self.xp = np
            self._context = simulated_gpu()
            self._context.__enter__()
        else:
            import cupy
            self.xp = cupy

    def sync(self):
        if not self.smoke:
            self.xp.cuda.Device().synchronize()

    def describe(self):
        if self.smoke:
            return "numba CUDA simulator (smoke run, timings meaningless)"
        props = self.xp.cuda.runtime.getDeviceProperties(0)
        return props["name"].decode()

    def inputs(self, n, d, seed=0):
        rng = self.np.random.default_rng(seed)
        return rng.standard_normal((n, d))

    def best_of(self, fn, repeat):
        fn()                                   # compile and warm up
        self.sync()
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            fn()
            self.sync()
            times.append(time.perf_counter() - start)
        return statistics.median(times)


def floors(sizes, bandwidth, fp64_rate):
    """Lower bounds of the fused NNGP+NTK Gram: bytes moved and operations.

    Per pair the kernel reads one inner product (8 bytes) and writes two
    outputs; a symmetric Gram computes half of the pairs but writes all
    entries.  A ReLU layer costs about 60 floating-point operations per pair
    (one square root, one division, the degree-10 arctangent polynomial and
    the layer map), counted as FP64 operations.
    """
    out = {}
    for name, n, itemsize in (("fc_float64", sizes["fc"], 8),
                              ("fc_float32", sizes["fc"], 4),
                              ("large_float32", sizes["large"], 4)):
        pairs = n * n
        bytes_moved = pairs * (8 + 8 / 2 + 2 * itemsize)  # g written + read
        operations = pairs / 2 * DEPTH * 60
        out[name] = {"bytes": bytes_moved, "operations": operations,
                     "memory_floor_s": bytes_moved / bandwidth,
                     "compute_floor_s": operations / fp64_rate}
    return out


def time_fused_vs_per_layer(env, n, repeat):
    from benchmarks.bench_fully_connected import per_layer_relu_nngp_ntk
    from skinfinite.kernels import nngp_ntk
    X = env.xp.asarray(env.inputs(n, 100))
    result = {"n": n, "d": 100, "depth": DEPTH}
    for dtype in ("float64", "float32"):
        Xd = X.astype(dtype)
        fused = env.best_of(lambda: nngp_ntk(X, depth=DEPTH, dtype=dtype,
                                             device="gpu"), repeat)
        per_layer = env.best_of(
            lambda: per_layer_relu_nngp_ntk(Xd, DEPTH, xp=env.xp), repeat)
        K, T = nngp_ntk(X, depth=DEPTH, dtype=dtype, device="gpu")
        K_ref, T_ref = per_layer_relu_nngp_ntk(X, DEPTH, xp=env.xp)
        error = float(env.xp.max(env.xp.abs(T - T_ref))
                      / env.xp.max(env.xp.abs(T_ref)))
        result[dtype] = {"fused_s": fused, "per_layer_s": per_layer,
                         "speedup": per_layer / fused,
                         "relative_difference": error}
        del K, T, K_ref, T_ref
    return result


def time_large_float32(env, n, repeat):
    from skinfinite.kernels import nngp_ntk
    X = env.xp.asarray(env.inputs(n, 100, seed=1))
    seconds = env.best_of(lambda: nngp_ntk(X, depth=DEPTH, dtype="float32",
                                           device="gpu"), repeat)
    return {"n": n, "d": 100, "depth": DEPTH, "seconds": seconds}


def time_regressor(env, n_train, n_test):
    from skinfinite.models import NTKRegressor
    rng = env.np.random.default_rng(2)
    X = rng.standard_normal((n_train + n_test, 20))
    y = env.np.sin(X[:, 0]) + 0.1 * rng.standard_normal(len(X))
    model = NTKRegressor(depth=3, alpha=1e-2, device="gpu")
    model.fit(X[:200], y[:200]).predict(X[:10])   # compile
    env.sync()
    start = time.perf_counter()
    model.fit(X[:n_train], y[:n_train])
    prediction = model.predict(X[n_train:])
    env.sync()
    seconds = time.perf_counter() - start
    rmse = float(env.np.sqrt(env.np.mean((prediction - y[n_train:]) ** 2)))
    return {"n_train": n_train, "n_test": n_test, "d": 20, "depth": 3,
            "seconds": seconds, "test_rmse": rmse}


def cpu_reference(sizes, n_test=5000, target=30000):
    """``NTKRegressor`` fit + predict on the CPU, extrapolated to ``target``.

    The time is fitted as ``a n^2 + b n^3`` (Gram matrices, Cholesky
    factorisation) by least squares on the measured sizes.
    """
    import numpy as np
    from skinfinite.models import NTKRegressor
    rng = np.random.default_rng(2)
    X = rng.standard_normal((max(sizes) + n_test, 20))
    y = np.sin(X[:, 0]) + 0.1 * rng.standard_normal(len(X))
    NTKRegressor(depth=3, device="cpu").fit(X[:100], y[:100]).predict(X[:5])
    measured = {}
    for n in sizes:
        start = time.perf_counter()
        model = NTKRegressor(depth=3, alpha=1e-2, device="cpu")
        model.fit(X[:n], y[:n]).predict(X[n:n + n_test])
        measured[n] = time.perf_counter() - start
    n = np.array(sorted(measured), dtype=float)
    t = np.array([measured[k] for k in sorted(measured)])
    coef, *_ = np.linalg.lstsq(np.stack([n ** 2, n ** 3], axis=1), t,
                               rcond=None)
    return {"n_test": n_test, "seconds": measured,
            "extrapolated_n": target,
            "extrapolated_seconds": float(coef @ [target ** 2, target ** 3])}


def time_signature(env, n_paths, long_length, repeat):
    from skinfinite.kernels import SignatureKernel
    rng = env.np.random.default_rng(3)
    # random walks, as in asv_bench/peers/compare_signature.py
    X = (rng.standard_normal((n_paths, 100, 5)) * 0.1).cumsum(axis=1)
    kernel = SignatureKernel(device="gpu")
    result = {"n_paths": n_paths, "length": 100, "channels": 5,
              "skinfinite_s": env.best_of(lambda: kernel(X), repeat)}
    try:
        import pysiglib
        import torch
        Xt = torch.as_tensor(X, device="cuda")
        result["pysiglib_s"] = env.best_of(
            lambda: pysiglib.sig_kernel_gram(Xt, Xt, dyadic_order=0), repeat)
        result["speedup"] = result["pysiglib_s"] / result["skinfinite_s"]
    except Exception as exc:   # not installed, or no CUDA build
        result["pysiglib"] = f"not measured: {exc}"
    long_paths = rng.standard_normal((4, long_length, 3)) * 0.02
    result["long_paths"] = {
        "length": long_length,
        "seconds": env.best_of(lambda: kernel(long_paths), 1)}
    return result


if __name__ == "__main__":
    sys.exit(main())
