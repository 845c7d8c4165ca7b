#!/usr/bin/env python
"""Convolutional NNGP kernels: skinfinite against neural-tangents, one run.

Two sizes, both on this machine's CPU, float64:

* ``series``: the Gram of 200 series of length 500 (one channel) under one
  layer of filter 9, "same" padding, ReLU and global average pooling, with
  the 8 dilations 1, 2, ..., 128 averaged.  neural-tangents' ``stax.Conv``
  has no dilation, so it computes the dilation-1 network, whose cost is
  that of any one dilation under "same" padding; its 8-dilation time is
  8 times that.
* ``images``: a CNN-GP of depth 3 (3x3 filters, "same" padding, ReLU),
  global average pooling and a dense readout on 28x28 one-channel images,
  1000 of them.

Sizes that would take too long here are measured on fewer inputs and
extrapolated by the number of pairs, ``(n / n_measured) ** 2``; the output
says which.  The flops floor counts the products of pairs of windows that
any exact method computes: for each pair of inputs, the channel inner
products of all pairs of positions, and for each layer (and dilation) one
multiply-add per filter tap and position pair plus one dual per position
pair (about 20 flops for the arc-cosine kernel; the running window sums of
1-D inputs need 2 flops instead of one per tap).  Its time is the flops over
the peak of one core (clock x 32 float64 flops per cycle with two AVX-512
FMA units), to compare with the CPU time (all threads) of each library,
which a machine shared with other jobs still measures.

The same script, run by the neural-tangents interpreter with ``--worker``,
computes that library's values and times (it reads the inputs from a .npy
file); ``--check`` compares the values of both libraries on small inputs
(strides, circular padding, flatten too) with each other and with the same
recursion in 50-digit arithmetic (:func:`reference`, mpmath).  It exits
non-zero unless the NNGPs agree to 1e-10, the NTKs off the Gram's diagonal
(pairs of different inputs) to 1e-10, the NTKs on it to 1e-8, and ours
match the reference to 1e-13 (relative to the largest entry).  Measured:
ours 3e-16 of the reference for both kernels; the two libraries' NNGPs
2.3e-15 apart and their NTKs 1.3e-15 apart off the diagonal, but up to
8.4e-10 on it.  That is neural-tangents': an input against itself meets
each position at correlation exactly 1, where its ReLU derivative kernel
``(pi - theta) / (2 pi)`` takes ``theta = atan2(sqrt(max(K11 K22 - K12^2,
0)), K12)``, the square root of a rounding residue (~1e-8 instead of 0);
its error against the reference equals its distance to ours there.  The
NNGP does not show it: the ReLU dual ``r (sin theta + (pi - theta) cos
theta) / (2 pi)`` is stationary at theta = 0, so it moves by theta^2 ~
1e-16.  The flatten readouts, which sum only equal positions, show
the most (8.4e-10); our duals snap a squared sine below 4 eps to 0.

neural-tangents 0.6.5 needs an older JAX, in its own environment::

    python3.11 -m venv /tmp/ntenv
    /tmp/ntenv/bin/pip install "jax[cpu]==0.4.30" neural-tangents

    python asv_bench/peers/compare_conv.py --nt-python /tmp/ntenv/bin/python --check
    python asv_bench/peers/compare_conv.py --nt-python /tmp/ntenv/bin/python

Output: one JSON line per measurement on stdout.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

PEAK_FLOPS_PER_CYCLE = 32

#: small cases checked against neural-tangents: (name, input shape of one
#: input, layers as (filter, strides, padding), readout)
CHECKS = [
    ("1d_same_gap", (12, 2), [((3,), (1,), "SAME")], "average"),
    ("1d_valid_depth3", (14, 2), [((3,), (1,), "VALID")] * 3, "average"),
    ("1d_strided_circular", (13, 1), [((4,), (2,), "CIRCULAR")] * 2,
     "average"),
    ("2d_same_depth3_gap", (6, 5, 2), [((3, 3), (1, 1), "SAME")] * 3,
     "average"),
    ("2d_strided_flatten", (7, 6, 1), [((3, 2), (2, 1), "SAME")] * 2,
     "flatten"),
    ("2d_valid_flatten", (7, 6, 2), [((2, 3), (1, 1), "VALID")] * 2,
     "flatten"),
    ("2d_circular_gap", (5, 6, 1), [((3, 3), (1, 2), "CIRCULAR")] * 2,
     "average"),
]
SW2, SB2 = 2.0, 0.5


# ------------------------------------------------------------- the worker
def _nt_kernel_fn(layers, readout, sw2, sb2):
    from neural_tangents import stax
    w_std, b_std = math.sqrt(sw2), math.sqrt(sb2)
    blocks = []
    for filt, strides, padding in layers:
        blocks += [stax.Conv(1, filt, strides=strides, padding=padding,
                             W_std=w_std, b_std=b_std), stax.Relu()]
    blocks.append(stax.GlobalAvgPool() if readout == "average"
                  else stax.Flatten())
    blocks.append(stax.Dense(1, W_std=w_std, b_std=b_std))
    return stax.serial(*blocks)[2]


def worker(job):
    """Run inside the neural-tangents environment: values and times."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import jax
    jax.config.update("jax_enable_x64", True)
    import neural_tangents as nt
    X = np.load(job["inputs"])
    kernel_fn = _nt_kernel_fn(job["layers"], job["readout"], job["sw2"],
                              job["sb2"])
    batch = job.get("batch_size")
    if batch:
        kernel_fn = nt.batch(kernel_fn, batch_size=batch,
                             store_on_device=False)
    else:
        kernel_fn = jax.jit(kernel_fn, static_argnames="get")
    get = ("nngp", "ntk") if job.get("ntk") else ("nngp",)
    times, cpu = [], []
    for _ in range(job.get("repeat", 1) + 1):   # the first call compiles
        start, start_cpu = time.perf_counter(), time.process_time()
        res = kernel_fn(X, None, get=get)
        res = [np.asarray(r) for r in res]
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    out = {"library": "neural-tangents " + nt.__version__,
           "jax": jax.__version__, "seconds": min(times[1:]),
           "cpu_seconds": min(cpu[1:])}
    if job.get("values"):
        out.update({name: r.tolist() for name, r in zip(get, res)})
    return out


# ------------------------------------------------------- the driver side
def run_worker(nt_python, X, **job):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "inputs.npy")
        np.save(path, X)
        job = dict(job, inputs=path)
        done = subprocess.run(
            [nt_python, os.path.abspath(__file__), "--worker",
             json.dumps(job)], capture_output=True, text=True, check=False,
            env=dict(os.environ, JAX_PLATFORMS="cpu",
                     TF_CPP_MIN_LOG_LEVEL="3"))
    if done.returncode:
        raise RuntimeError(f"neural-tangents failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ours(layers, readout, shape, **extra):
    """The skinfinite kernels of the network ``layers`` (equal layers: one
    filter, stride and padding for all)."""
    from skinfinite.kernels import ConvNNGP, ConvNTK
    filt, strides, padding = layers[0]
    two_d = len(shape) == 3
    kw = dict(filter_size=tuple(filt) if two_d else filt[0], dilation=1,
              depth=len(layers), weight_variance=SW2, bias_variance=SB2,
              readout=readout, padding=padding.lower(),
              strides=tuple(strides) if two_d else strides[0])
    if two_d:
        kw["image_shape"] = shape[:2]
    kw.update(extra)
    return ConvNNGP(**kw), ConvNTK(**kw)


def _taps(n, f, s, padding):
    """Input position of each (output, tap) of one axis, -1 in the zero
    padding: XLA's conventions ("SAME" pads ``floor(total / 2)`` low),
    written out here independently of skinfinite's."""
    if padding == "VALID":
        out, lo = (n - f) // s + 1, 0
    else:
        out = -(-n // s)
        lo = max((out - 1) * s + f - n, 0) // 2
    u = np.arange(out)[:, None] * s + np.arange(f)[None, :] - lo
    if padding == "CIRCULAR":
        return u % n
    return np.where((u >= 0) & (u < n), u, -1)


def reference(X, layers, readout, sw2, sb2, dps=50):
    """NNGP and NTK of the ReLU network ``layers`` in ``dps``-digit
    arithmetic (mpmath): the same recursion as both libraries, on every
    pair of (input, position) at once, so that an input's variances are
    exactly the diagonal of its covariances and a correlation of 1 is
    exactly 1.  Returns float64 arrays."""
    import mpmath
    n = X.shape[0]
    grid = X.shape[1:-1] if X.ndim == 4 else (1,) + X.shape[1:-1]
    c = X.shape[-1]
    with mpmath.workdps(dps):
        mpf = np.frompyfunc(mpmath.mpf, 1, 1)
        flat = mpf(X.reshape(n * int(np.prod(grid)), c).astype(float))
        k = flat.dot(flat.T) * mpmath.mpf(sw2) / c
        th = None
        pi = mpmath.pi

        def relu(kxy, kxx, kyy):
            r = mpmath.sqrt(kxx * kyy)
            rho = min(max(kxy / r, -1), 1)
            t = mpmath.acos(rho)
            return ((r * mpmath.sin(t) + (pi - t) * kxy) / (2 * pi),
                    (pi - t) / (2 * pi))

        relu_all = np.frompyfunc(relu, 3, 2)
        v = vd = None
        for li, (filt, strides, padding) in enumerate(layers):
            filt = (1,) * (2 - len(filt)) + tuple(filt)
            strides = (1,) * (2 - len(strides)) + tuple(strides)
            rows = _taps(grid[0], filt[0], strides[0], padding)
            cols = _taps(grid[1], filt[1], strides[1], padding)
            size = int(np.prod(grid))
            src = (k, None) if li == 0 else (v, vd * th)
            new = []
            for m in src:
                if m is None:
                    new.append(None)
                    continue
                # index n * size reads the appended zero row and column
                pad = np.full((n * size + 1, n * size + 1), mpmath.mpf(0),
                              dtype=object)
                pad[:-1, :-1] = m
                acc = 0
                for ka in range(filt[0]):
                    for kb in range(filt[1]):
                        pos = rows[:, ka][:, None] * grid[1] + cols[:, kb]
                        pos = np.where((rows[:, ka][:, None] < 0)
                                       | (cols[:, kb][None, :] < 0), -1, pos)
                        idx = (np.arange(n)[:, None] * size
                               + pos.ravel()[None, :])
                        idx = np.where(pos.ravel()[None, :] < 0, n * size,
                                       idx).ravel()
                        acc = acc + pad[np.ix_(idx, idx)]
                new.append(acc * (mpmath.mpf(1) / (filt[0] * filt[1])))
            grid = (rows.shape[0], cols.shape[0])
            if li == 0:
                k = new[0] + mpmath.mpf(sb2)
                th = k.copy()
            else:
                k = new[0] * mpmath.mpf(sw2) + mpmath.mpf(sb2)
                th = k + new[1] * mpmath.mpf(sw2)
            diag = np.diagonal(k)
            v, vd = relu_all(k, diag[:, None], diag[None, :])
        size = int(np.prod(grid))

        def pool(m):
            m = m.reshape(n, size, n, size)
            if readout == "average":
                return m.sum(axis=(1, 3)) / (size * size)
            return np.trace(m, axis1=1, axis2=3) / size

        nngp = pool(v) * mpmath.mpf(sw2) + mpmath.mpf(sb2)
        ntk = nngp + pool(vd * th) * mpmath.mpf(sw2)
        return (np.asarray(nngp.tolist(), dtype=float),
                np.asarray(ntk.tolist(), dtype=float))


def check(nt_python, rng):
    """Our values and neural-tangents' against the 50-digit reference and
    against each other on the small cases.

    The errors are relative to the largest entry of each Gram.  Those of
    the two libraries against each other are split into the diagonal of
    the Gram (an input against itself, where each position meets itself
    at correlation exactly 1) and the rest (``ntk_off_diagonal``).
    """
    worst = dict.fromkeys(("nngp", "ntk", "ntk_off_diagonal", "ours_nngp",
                           "ours_ntk", "peer_nngp", "peer_ntk"), 0.0)
    results = []
    for name, shape, layers, readout in CHECKS:
        X = rng.normal(size=(4,) + shape)
        nt = run_worker(nt_python, X, layers=layers, readout=readout, sw2=SW2,
                        sb2=SB2, values=True, ntk=True)
        refs = reference(X, layers, readout, SW2, SB2)
        flat = X.reshape(4, -1) if len(shape) == 3 else X
        off = ~np.eye(len(X), dtype=bool)
        errors = {}
        kernels = ours(layers, readout, shape)
        for kind, kernel, ref in zip(("nngp", "ntk"), kernels, refs):
            peer = np.asarray(nt[kind])
            mine = kernel(flat)
            scale = np.max(np.abs(ref))
            errors[kind] = float(np.max(np.abs(mine - peer)) / scale)
            errors["ours_" + kind] = float(np.max(np.abs(mine - ref)) / scale)
            errors["peer_" + kind] = float(np.max(np.abs(peer - ref)) / scale)
            if kind == "ntk":
                errors["ntk_off_diagonal"] = float(
                    np.max(np.abs(mine - peer)[off]) / scale)
        worst = {k: max(worst[k], errors[k]) for k in worst}
        results.append({"case": name, "relative_error": errors,
                        "library": nt["library"], "jax": nt["jax"]})
    return worst, results


def passes(worst):
    """The bounds of ``--check``: both libraries' NNGPs and the NTKs off
    the Gram's diagonal to 1e-10, ours to 1e-13 of the reference; the
    peer's NTK on the diagonal to 1e-8 (see the module's docstring)."""
    return (worst["nngp"] <= 1e-10 and worst["ntk_off_diagonal"] <= 1e-10
            and worst["ntk"] <= 1e-8 and worst["ours_nngp"] <= 1e-13
            and worst["ours_ntk"] <= 1e-13)


def flops_floor(n, sizes, channels, taps, depth, n_dil, running):
    """Flops of the pairs of windows of ``n`` inputs (see the docstring)."""
    pairs = n * (n + 1) / 2
    cells = float(np.prod(sizes)) ** 2
    per_layer = cells * ((2 if running else 2 * taps) + 20)
    return pairs * (2 * channels * cells + n_dil * depth * per_layer)


def peak_flops():
    """Peak float64 flops of one core."""
    mhz = 0.0
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("cpu MHz"):
                mhz = float(line.split(":")[1])
                break
    return mhz * 1e6 * PEAK_FLOPS_PER_CYCLE


def measure(args):
    import skinfinite
    from skinfinite.benchmark import best_time
    from skinfinite.kernels import ConvNNGP
    skinfinite.set_config(show_progress=False)
    rng = np.random.default_rng(0)
    peak = peak_flops()
    rows = []
    # --------------------------------------------------------------- series
    n, length = args.series_n, 500
    X = rng.standard_normal((n, length, 1)).cumsum(axis=1)
    X = (X - X.mean(1, keepdims=True)) / X.std(1, keepdims=True)
    dils = [1, 2, 4, 8, 16, 32, 64, 128]
    kernel = ConvNNGP(filter_size=9, dilation=dils, padding="same",
                      readout="average", weight_variance=SW2,
                      bias_variance=SB2)
    kernel(X[:2])
    m = min(n, args.series_measure)
    ours_s, ours_cpu = best_time(lambda: kernel(X[:m]), args.repeat)
    scale = (n / m) ** 2
    nt_m = min(n, args.nt_series_measure)
    nt = run_worker(args.nt_python, X[:nt_m], layers=[((9,), (1,), "SAME")],
                    readout="average", sw2=SW2, sb2=SB2, batch_size=5,
                    repeat=1) if args.nt_python else None
    floor = flops_floor(n, (length,), 1, 9, 1, len(dils), running=False)
    rows.append({
        "size": f"series: {n} x {length}, 8 dilations, filter 9, same",
        "skinfinite_seconds": ours_s * scale,
        "skinfinite_cpu_seconds": ours_cpu * scale, "measured_n": m,
        "neural_tangents_seconds": (nt["seconds"] * (n / nt_m) ** 2 * len(dils)
                                    if nt else None),
        "neural_tangents_cpu_seconds": (nt["cpu_seconds"] * (n / nt_m) ** 2
                                        * len(dils) if nt else None),
        "neural_tangents_measured_n": nt_m if nt else None,
        "neural_tangents_note": "dilation 1 only (stax.Conv has no "
                                "dilation), times 8",
        "floor_flops": floor, "floor_seconds_at_peak": floor / peak,
        "skinfinite_cpu_over_floor": ours_cpu * scale / (floor / peak)})
    # --------------------------------------------------------------- images
    n = args.images_n
    imgs = rng.random((n, 28 * 28))
    kernel = ConvNNGP(image_shape=(28, 28), filter_size=3, dilation=1,
                      depth=3, padding="same", readout="average",
                      weight_variance=SW2, bias_variance=SB2)
    kernel(imgs[:2])
    m = min(n, args.images_measure)
    ours_i, ours_icpu = best_time(lambda: kernel(imgs[:m]), args.repeat)
    nt_m = min(n, args.nt_images_measure)
    nt = run_worker(args.nt_python, imgs[:nt_m].reshape(-1, 28, 28, 1),
                    layers=[((3, 3), (1, 1), "SAME")] * 3, readout="average",
                    sw2=SW2, sb2=SB2, batch_size=4,
                    repeat=1) if args.nt_python else None
    floor = flops_floor(n, (28, 28), 1, 9, 3, 1, running=False)
    rows.append({
        "size": f"images: {n} x 28x28, depth 3, 3x3, same, global pooling",
        "skinfinite_seconds": ours_i * (n / m) ** 2,
        "skinfinite_cpu_seconds": ours_icpu * (n / m) ** 2, "measured_n": m,
        "neural_tangents_seconds": (nt["seconds"] * (n / nt_m) ** 2
                                    if nt else None),
        "neural_tangents_cpu_seconds": (nt["cpu_seconds"] * (n / nt_m) ** 2
                                        if nt else None),
        "neural_tangents_measured_n": nt_m if nt else None,
        "floor_flops": floor, "floor_seconds_at_peak": floor / peak,
        "skinfinite_cpu_over_floor": ours_icpu * (n / m) ** 2
        / (floor / peak)})
    for row in rows:
        row["load"] = os.getloadavg()
        print(json.dumps(row))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--nt-python", help="python of the neural-tangents "
                        "environment")
    parser.add_argument("--check", action="store_true",
                        help="compare values on small inputs and exit")
    parser.add_argument("--series-n", type=int, default=200)
    parser.add_argument("--series-measure", type=int, default=200,
                        help="series timed (extrapolated to --series-n)")
    parser.add_argument("--nt-series-measure", type=int, default=10)
    parser.add_argument("--images-n", type=int, default=1000)
    parser.add_argument("--images-measure", type=int, default=60)
    parser.add_argument("--nt-images-measure", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    if args.check:
        if not args.nt_python:
            parser.error("--check needs --nt-python")
        worst, results = check(args.nt_python, np.random.default_rng(0))
        for r in results:
            print(json.dumps(r))
        print(json.dumps({"worst_relative_error": worst}))
        return int(not passes(worst))
    measure(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
