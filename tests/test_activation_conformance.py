"""One activation, three implementations: compiled CPU, CUDA and torch.

Every activation of ``ACTIVATION_NAMES`` has its Gaussian duals written once
as compiled scalar functions (:mod:`skinfinite.activations.duals`): the CPU
kernels inline them, the CUDA kernels are compiled from the same functions
(their Python source in numba's CUDA simulator), and the torch duals
(:mod:`skinfinite._torch.duals`) restate the closed forms for autograd.  On
one grid of covariances (all correlations including exactly +-1 and zero
variances, at scales from 2^-500 (3e-151) to 2^498 (8e149) where the dual
is homogeneous)
this file checks that

* the compiled partials are the central differences of the compiled duals,
* the piecewise-linear duals are homogeneous (V of degree 1, Vd of 0),
* the torch duals equal the compiled ones and their autograd derivatives
  equal the compiled partials,
* the CUDA device functions equal the CPU ones,

and, for every activation, that the fully-connected recursion built from
these duals gives the same NNGP and NTK in all its dialects: the compiled
CPU engine, the CUDA kernels (simulator) and the torch recursion of the
GPyTorch bridge against the layer maps evaluated in NumPy.
"""
import warnings

import numpy as np
import pytest

from skinfinite._core.backend import cuda_simulator_enabled

try:    # the simulator swaps this module-level name inside kernels
    from numba import cuda
except ImportError:     # pragma: no cover - numba without numba.cuda
    cuda = None
from skinfinite.activations.definitions import ACTIVATION_NAMES, get_activation
from skinfinite.activations.families import (Erf, PiecewiseLinear, Series,
                                             Trig, dual_family)

NAMES = sorted(ACTIVATION_NAMES)
# Scales of the covariances per family, powers of two so that scaling is
# exact (homogeneity is then a property of the formulas, not of the inputs'
# rounding): 2^-500 is about 3e-151 and 2^498 about 8e149.  The arc-cosine
# duals are exact at every scale; erf is bounded and sin/cos decay, so the
# extreme scales are their limits (2^26 ~ 7e7 and 2^54 ~ 2e16 are where
# erf's denominator used to cancel); the Hermite series are accurate at
# moderate variances only (they warn beyond).
SCALES = {
    PiecewiseLinear: tuple(2.0 ** e for e in (-500, -332, -260, -100, 0, 100,
                                               256, 332, 498)),
    Erf: tuple(2.0 ** e for e in (-500, -100, 0, 26, 54, 100, 498)),
    Trig: tuple(2.0 ** e for e in (-500, -100, -10, 0, 5, 100, 498)),
    Series: tuple(2.0 ** e for e in (-500, -100, -30, -10, 0)),
}
# central differences of the duals where they are smooth (away from |rho|=1
# for the piecewise-linear ones) and the variances are moderate
FD_RHO_MAX = 0.98


def _family(name):
    return type(dual_family(get_activation(name)))


def _unit_grid():
    """Variances and correlations at unit scale (flat arrays)."""
    rng = np.random.default_rng(20261205)
    kxx = rng.uniform(0.05, 2.0, 24)
    kyy = rng.uniform(0.05, 2.0, 24)
    rho = np.concatenate([
        [1.0, -1.0, 1.0 - 1e-9, -1.0 + 1e-9, 1.0 - 1e-13, 0.0, 1e-12, 0.5],
        rng.uniform(-1.0, 1.0, 16)])
    kxy = rho * np.sqrt(kxx * kyy)
    # identical inputs (Kxx = Kxy = Kyy) and zero-variance inputs
    k = np.array([0.3, 1.0, 1.7])
    kxx = np.concatenate([kxx, k, [0.0, 0.0, 1.2]])
    kyy = np.concatenate([kyy, k, [0.0, 0.9, 0.0]])
    kxy = np.concatenate([kxy, k, [0.0, 0.0, 0.0]])
    return kxx, kxy, kyy


def grid(name):
    """``[(scale, (kxx, kxy, kyy))]`` for the activation's family."""
    base = _unit_grid()
    return [(s, tuple(s * a for a in base)) for s in SCALES[_family(name)]]


def _compiled(act, kxx, kxy, kyy):
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # no truncation warnings on the grid
        return (np.array(act.dual(kxx, kxy, kyy)),
                np.array(act.dual_partials(kxx, kxy, kyy)))


def _close(actual, expected, rtol, atol_fraction, what="", floor=0.0):
    """|actual - expected| <= rtol |expected| + atol_fraction max|expected|
    + floor entry-wise, the maximum taken along the last axis (cancellation
    leaves small values absolutely but not relatively accurate)."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert np.all(np.isfinite(actual)) and np.all(np.isfinite(expected)), what
    bound = rtol * np.abs(expected) + floor + atol_fraction * np.max(
        np.abs(expected), axis=-1, keepdims=True, initial=0.0)
    error = np.abs(actual - expected)
    bad = error > bound
    assert not bad.any(), (
        f"{what}: {bad.sum()} of {bad.size} entries differ, worst "
        f"{actual[bad][np.argmax((error - bound)[bad])]!r} against "
        f"{expected[bad][np.argmax((error - bound)[bad])]!r}")


# -------------------------------------------------------------- compiled
@pytest.mark.parametrize("name", NAMES)
def test_compiled_duals_and_partials_agree(name):
    act = get_activation(name)
    for scale, k in grid(name):
        values, partials = _compiled(act, *k)
        assert np.all(np.isfinite(values)) and np.all(np.isfinite(partials)), \
            scale
        # the same values from both entry points
        np.testing.assert_allclose(partials[:2], values, rtol=1e-14, atol=0,
                                   err_msg=f"scale {scale:g}")


@pytest.mark.parametrize("name", NAMES)
def test_compiled_partials_are_derivatives(name):
    act = get_activation(name)
    kxx, kxy, kyy = _unit_grid()
    keep = (np.abs(kxy) <= FD_RHO_MAX * np.sqrt(kxx * kyy)) & (kxx > 0.05) \
        & (kyy > 0.05)
    k = np.array([kxx[keep], kxy[keep], kyy[keep]])
    partials = _compiled(act, *k)[1]
    h = 1e-6
    for i in range(3):
        step = np.zeros_like(k)
        step[i] = h
        up, down = _compiled(act, *(k + step))[0], _compiled(act, *(k - step))[0]
        fd = (up - down) / (2 * h)
        for which in range(2):
            _close(partials[2 + 3 * which + i], fd[which], 1e-6, 1e-7,
                   f"d{'V' if which == 0 else 'Vd'}/dK[{i}]")


@pytest.mark.parametrize("name", [n for n in NAMES
                                  if _family(n) is PiecewiseLinear])
def test_piecewise_linear_duals_are_homogeneous(name):
    # V(sK) = s V(K), Vd(sK) = Vd(K); the partials of V have degree 0, those
    # of Vd degree -1
    act = get_activation(name)
    (_, unit), *_ = [g for g in grid(name) if g[0] == 1.0]
    ref_v, ref_p = _compiled(act, *unit)
    degrees = np.array([1, 0, 0, 0, 0, -1, -1, -1])
    for scale, k in grid(name):
        values, partials = _compiled(act, *k)
        scaled = partials / scale ** degrees[:, None]
        _close(scaled, ref_p, 1e-12, 1e-15, f"scale {scale:g}")


# ----------------------------------------------------------------- torch
@pytest.mark.parametrize("name", NAMES)
def test_torch_duals_equal_compiled_duals(name):
    torch = pytest.importorskip("torch")
    from skinfinite._torch.duals import (duals, expected_derivative_product,
                                         expected_product)
    act = get_activation(name)
    for scale, k in grid(name):
        values, partials = _compiled(act, *k)
        leaves = [torch.tensor(a, requires_grad=True) for a in k]
        tv, tvd = duals(act, *leaves)
        what = f"{name} at scale {scale:g}"
        _close(tv.detach().numpy(), values[0], 1e-12, 1e-14, what + ": V")
        _close(tvd.detach().numpy(), values[1], 1e-12, 1e-14, what + ": Vd")
        # one dual at a time gives the same tensors
        assert torch.equal(expected_product(act, *leaves), tv)
        assert torch.equal(expected_derivative_product(act, *leaves), tvd)
        # autograd derivatives against the compiled partials (all entries
        # are independent, so the gradient of the sum is element-wise)
        compared = _derivatives_compared(name, scale, k)
        for which, out in enumerate((tv, tvd)):
            grads = torch.autograd.grad(out.sum(), leaves, retain_graph=True)
            assert all(torch.isfinite(g).all() for g in grads), what
            got = np.array([g.numpy() for g in grads])[:, compared]
            want = partials[2 + 3 * which:5 + 3 * which, compared]
            # near |rho| = 1 the partials inherit the rounding of r (about
            # eps / (1 - |rho|) relative), so the floor is relative to the
            # gradient's size
            floor = 1e-9 * np.max(np.abs(want), initial=0.0)
            for i in range(3):
                _close(got[i], want[i], 1e-9, 0.0,
                       f"{what}: d{'V' if which == 0 else 'Vd'}/dK[{i}]",
                       floor=floor)


def _derivatives_compared(name, scale, k):
    """Where the compiled partials and torch's autograd are both accurate.

    Series coefficients' K-derivatives are quadratures of phi'(sqrt(K) z) z /
    (2 sqrt(K)), whose rounding grows like eps / sqrt(K) in both (relative
    differences of 1e-11 at K = 1e-9, 1e-4 at K = 1e-24 for softplus); at a
    zero variance they are infinite term by term (c_1(K) ~ sqrt(K)), where
    the compiled rows floor 1/sqrt(K) and torch takes sqrt's derivative at
    0 as zero."""
    every = np.ones(k[0].shape, bool)
    if _family(name) is not Series:
        return every
    if scale < 2.0 ** -30:
        return ~every
    return (k[0] > 0) & (k[2] > 0)


# ------------------------------------------------------------------- CUDA
def _simulator_available():
    return cuda_simulator_enabled() and cuda is not None


def _device_results(act, kxx, kxy, kyy):
    """The duals and partials from the CUDA device functions, one thread per
    covariance, as the engine's kernels call them."""
    from skinfinite.engine.tiles import device_function

    # the functions compile_gpu_kernels builds the CUDA kernels from
    dual = device_function(act.scalar_dual)
    partials = device_function(act.scalar_partials)
    param = float(dual_family(act).param)
    per_input = not act.closed_form

    @cuda.jit
    def run(kxx, kxy, kyy, r, cx, cy, param, out):
        i = cuda.grid(1)
        if i < kxx.shape[0]:
            # closed forms get a scalar for the coefficient rows, as in the
            # engine's kernels
            ax = cx[i] if per_input else 0.0
            ay = cy[i] if per_input else 0.0
            v = dual(kxx[i], kxy[i], kyy[i], r[i], ax, ay, param)
            p = partials(kxx[i], kxy[i], kyy[i], r[i], ax, ay, param)
            out[i, 0] = v[0]
            out[i, 1] = v[1]
            for j in range(8):
                out[i, 2 + j] = p[j]

    n = kxx.shape[0]
    out = np.zeros((n, 10))
    r = np.sqrt(kxx) * np.sqrt(kyy)     # as the engine passes it
    run[(n + 31) // 32, 32](kxx, kxy, kyy, r, act.coefficients(kxx),
                            act.coefficients(kyy), param, out)
    return out.T


@pytest.mark.skipif(not _simulator_available(),
                    reason="numba's CUDA simulator is off or numba.cuda is "
                           "missing")
@pytest.mark.parametrize("name", NAMES)
def test_cuda_device_functions_equal_cpu(name):
    act = get_activation(name)
    for scale, k in grid(name):
        values, partials = _compiled(act, *k)
        device = _device_results(act, *k)
        what = f"{name} at scale {scale:g}"
        _close(device[:2], values, 1e-13, 1e-15, what)
        _close(device[2:], partials, 1e-12, 1e-14, what)


# ------------------------------------------- the recursion in every dialect
def _numpy_recursion(act, X, Y, depth, sw2, sb2, std):
    """The fully-connected layer maps on NumPy arrays with the activation's
    NumPy duals: the one source the engines are compared against."""
    from skinfinite.recursions.fully_connected import (hidden_layer,
                                                       input_layer)
    d = X.shape[1]
    kx = sw2 * np.sum(X * X, 1)[:, None] / d + sb2
    ky = sw2 * np.sum(Y * Y, 1)[None, :] / d + sb2
    k, t = input_layer(X @ Y.T / d, sw2, sb2, std)
    for _ in range(depth):
        v, vd = act.dual(np.broadcast_to(kx, k.shape), k,
                         np.broadcast_to(ky, k.shape))
        k, t = hidden_layer(v, vd, t, sw2, sb2, std)
        kx = sw2 * act.dual(kx, kx, kx)[0] + sb2
        ky = sw2 * act.dual(ky, ky, ky)[0] + sb2
    return k, t


@pytest.mark.parametrize("name", NAMES)
def test_fully_connected_recursion_in_every_dialect(name):
    from skinfinite._core.backend import simulated_gpu
    from skinfinite.kernels import NNGP, NTK, nngp_ntk
    rng = np.random.default_rng(11)
    # a single CUDA block: the simulator runs each thread in Python
    X, Y = rng.normal(size=(4, 3)), rng.normal(size=(3, 3))
    act = get_activation(name)
    for parametrization, std in (("ntk", 0.0), ("standard", 1.0)):
        params = dict(depth=2, activation=name, weight_variance=1.3,
                      bias_variance=0.2, parametrization=parametrization)
        want = _numpy_recursion(act, X, Y, 2, 1.3, 0.2, std)
        what = f"{name}, {parametrization}"
        got = {"cpu": nngp_ntk(X, Y, device="cpu", **params)}
        if _simulator_available():
            with simulated_gpu():
                got["cuda"] = nngp_ntk(X, Y, device="gpu", **params)
        try:
            import torch
            from skinfinite._torch.bridge import fully_connected_recursion
        except ImportError:
            torch = None
        if torch is not None:
            hyper = {"weight_variance": torch.tensor(1.3, dtype=torch.float64),
                     "bias_variance": torch.tensor(0.2, dtype=torch.float64)}
            x1, x2 = torch.from_numpy(X), torch.from_numpy(Y)
            got["torch"] = tuple(
                fully_connected_recursion(cls(**params), hyper, x1, x2,
                                          False).numpy()
                for cls in (NNGP, NTK))
        for dialect, (k, t) in got.items():
            _close(k, want[0], 1e-12, 1e-14, f"{what}: NNGP on {dialect}")
            _close(t, want[1], 1e-12, 1e-14, f"{what}: NTK on {dialect}")
