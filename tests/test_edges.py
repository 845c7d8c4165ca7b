"""Exact answers or clear errors at extreme scales and on degenerate input."""
import time
import warnings

import numpy as np
import pytest

from skinfinite import NNGP, NTK
from skinfinite.activations.definitions import get_activation


# ------------------------------------------------- piecewise-linear homogeneity
@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "abs"])
@pytest.mark.parametrize("kind", [NNGP, NTK])
def test_relu_family_homogeneous_over_extreme_scales(activation, kind, rng):
    # without biases the kernels are homogeneous of degree 2 in the inputs
    X = np.vstack([[[1.0, 0.0], [1.0, 1.0]], rng.standard_normal((6, 2))])
    k = kind(depth=2, activation=activation, bias_variance=0.0)
    ref = k(X)
    for s in [1e-150, 1e-100, 1e-78, 1e-30, 1e30, 1e77, 1e100, 1e150]:
        K = k(X * s)
        np.testing.assert_allclose(K / s ** 2, ref, rtol=1e-12, atol=0,
                                   err_msg=f"scale {s:g}")
        np.testing.assert_allclose(k(X * s, X[:3] * s) / s ** 2, ref[:, :3],
                                   rtol=1e-12, atol=0)
        w = np.linalg.eigvalsh(K / s ** 2)
        assert w.min() >= -1e-12 * w.max()


# ---------------------------------------------------------------------- erf
def _erf_nngp_reference(K0, depth, sw2, sb2):
    # closed form with 50 digits, one layer at a time on the 2 x 2 covariance
    import mpmath
    mpmath.mp.dps = 50
    K = [[mpmath.mpf(float(v)) for v in row] for row in K0]

    def v(p, q, r):
        return 2 / mpmath.pi * mpmath.asin(
            2 * r / mpmath.sqrt((1 + 2 * p) * (1 + 2 * q)))
    for _ in range(depth):
        a, b, c = K[0][0], K[1][1], K[0][1]
        K = [[sw2 * v(a, a, a) + sb2, sw2 * v(a, b, c) + sb2],
             [sw2 * v(a, b, c) + sb2, sw2 * v(b, b, b) + sb2]]
    return np.array([[float(x) for x in row] for row in K])


@pytest.mark.parametrize("scale", [1e4, 1e8, 1e12, 1e100])
def test_erf_finite_and_correct_at_large_features(scale):
    X = np.array([[scale, 0.0], [0.0, scale], [scale, scale * 1e-3]])
    k = NNGP(depth=2, activation="erf", weight_variance=1.5, bias_variance=0.1)
    K = k(X)
    assert np.all(np.isfinite(K))
    G = X @ X.T / 2
    for i, j in [(0, 1), (0, 2), (1, 2)]:
        K0 = 1.5 * G[np.ix_([i, j], [i, j])] + 0.1
        ref = _erf_nngp_reference(K0, 2, 1.5, 0.1)
        # at correlation near one the dual's sensitivity to the rounding of
        # Kxy (eps K) is 1/sqrt(K): an error eps sqrt(K) is the conditioning
        rtol = 1e-12 if i + j == 1 else 1e-12 + 8 * 2.0 ** -52 * scale
        np.testing.assert_allclose(K[np.ix_([i, j], [i, j])], ref, rtol=rtol)
        np.testing.assert_allclose(np.diag(K)[[i, j]], np.diag(ref), rtol=1e-12)
    T = NTK(depth=2, activation="erf")(X)
    assert np.all(np.isfinite(T))


def test_erf_dual_at_the_sign_limit():
    # K -> infinity: erf -> sign, E[sign u sign v] = (2/pi) asin(rho)
    act = get_activation("erf")
    K = 1e300
    for rho in [-1.0, -0.5, 0.0, 0.3, 1.0]:
        v, vd = act.dual(K, rho * K, K)
        assert np.isfinite(v) and np.isfinite(vd)
        np.testing.assert_allclose(v, 2 / np.pi * np.arcsin(rho), atol=1e-12)


# --------------------------------------------------------- chaotic-phase diagonal
@pytest.mark.parametrize("depth", [100, 200])
def test_chaotic_pair_on_identical_inputs_equals_diagonal(depth, rng):
    X = rng.standard_normal((4, 5))
    for kind in (NNGP, NTK):
        k = kind(depth=depth, activation="tanh", weight_variance=4.0)
        diag = np.diag(k(X))
        pair = np.diag(k(X, X.copy()))
        np.testing.assert_allclose(pair, diag, rtol=1e-9)
        np.testing.assert_allclose(k.diag(X), diag, rtol=1e-12)


# ---------------------------------------------------------- residual zero input
def test_infinite_depth_resnet_zero_input_is_fast_and_zero():
    from skinfinite import ResNetNNGP, ResNetNTK
    X = np.zeros((1, 3))
    k = ResNetNNGP(depth=np.inf, bias_variance=0.0)
    k(np.ones((1, 3)))                      # compiles
    start = time.perf_counter()
    K = k(X)
    # the step chooser stops at once instead of doubling to its limit
    assert time.perf_counter() - start < 2.0
    np.testing.assert_array_equal(K, [[0.0]])
    np.testing.assert_array_equal(ResNetNTK(depth=np.inf, bias_variance=0.0)(
        np.zeros((2, 3))), np.zeros((2, 2)))


# --------------------------------------------------------------------- cholesky
def test_cholesky_with_jitter_rejects_nan():
    from skinfinite.linalg.cholesky import NumericalError, cholesky_with_jitter
    A = np.eye(3)
    A[1, 2] = A[2, 1] = np.nan
    with pytest.raises(NumericalError, match="NaN or infinite"):
        cholesky_with_jitter(A)
    with pytest.raises(NumericalError, match="NaN or infinite"):
        cholesky_with_jitter(np.eye(2), alpha=np.array([0.0, np.inf]))


# --------------------------------------------------------------------- messages
def test_callable_activation_returning_nan_is_named():
    def bad(x):
        return np.where(np.abs(x) > 0.5, np.nan, x)
    X = np.random.default_rng(0).standard_normal((5, 3))
    with pytest.raises(ValueError, match="returned NaN") as info:
        NNGP(activation=bad)(X)
    assert "ReLU" not in str(info.value)
    assert "overflow" not in str(info.value)


def test_float64_overflow_message_does_not_advise_float64():
    from skinfinite.engine.tiles import raise_overflow
    from skinfinite.recursions.fully_connected import FullyConnectedSpec
    spec = FullyConnectedSpec(3, get_activation("relu"), 2.0, 0.0)
    with pytest.raises(FloatingPointError) as info:
        raise_overflow("nngp", spec, np.float64)
    assert "float32" not in str(info.value) and "float64" not in str(info.value)
    with pytest.raises(FloatingPointError, match="use float64"):
        raise_overflow("nngp", spec, np.float32)


# ------------------------------------------------------- degenerate Nystroem
def test_nystroem_low_rank_kernel_with_tiny_alpha(rng):
    from skinfinite.linalg.nystroem import nystroem_ridge
    X = rng.normal(size=(400, 3))
    y = X @ [1.0, -2.0, 0.5] + 0.01 * rng.normal(size=400)

    def linear(A, B):               # rank 3 on 50 inducing points
        return A @ B.T
    sol = nystroem_ridge(linear, X, X[:50], y, 1e-12)
    assert sol.converged
    fit = linear(X, X[:50]) @ sol.coef[:, 0]
    ref = X @ np.linalg.lstsq(X, y, rcond=None)[0]
    np.testing.assert_allclose(fit, ref, atol=1e-6)


def test_nystroem_nearly_constant_deep_kernel_fits(rng):
    from sklearn.metrics import r2_score

    from skinfinite.models import NNGPRegressor
    X, Xt = rng.normal(size=(300, 4)), rng.normal(size=(200, 4))
    f = lambda A: np.sin(A[:, 0]) + 0.5 * A[:, 1] * A[:, 2]  # noqa: E731
    params = dict(depth=10, activation="tanh", weight_variance=0.5)
    exact = r2_score(f(Xt), NNGPRegressor(**params).fit(X, f(X)).predict(Xt))
    for M in (300, 100):
        model = NNGPRegressor(solver="nystroem", n_inducing=M, random_state=0,
                              **params).fit(X, f(X))
        score = r2_score(f(Xt), model.predict(Xt))
        # before: an all-zero model (R^2 about 0) from a stalled CG
        assert score > 0.85 and exact > 0.95, (score, exact)


# ------------------------------------------------------- series activations
@pytest.mark.parametrize("name", ["tanh", "gelu"])
def test_series_tiny_variances_are_not_floored(name):
    # phi(u) ~ phi(0) + phi'(0) u: V -> phi(0)^2 + phi'(0)^2 Kxy
    act = get_activation(name)
    slope = {"tanh": 1.0, "gelu": 0.5}[name]
    for K in [1e-250, 1e-302]:
        v, vd = act.dual(K, 0.5 * K, K)
        np.testing.assert_allclose(v, slope ** 2 * 0.5 * K, rtol=1e-6)
        np.testing.assert_allclose(vd, slope ** 2, rtol=1e-6)


def test_series_truncation_at_large_variance_warns():
    from skinfinite.activations.definitions import TRUNCATION_TOL
    act = get_activation("tanh")
    with pytest.warns(RuntimeWarning, match="misses 2.86% of E"):
        v, _ = act.dual(1e16, 1e16, 1e16)
    assert 1.0 - v > TRUNCATION_TOL           # the sign-function limit is 1
    X = np.array([[1e8, 0.0], [0.0, 1e8]])
    with pytest.warns(RuntimeWarning, match="Hermite series of tanh") as w:
        NNGP(activation="tanh")(X)
    assert w[0].filename == __file__
    # within the tolerance: silent, and the series agrees with 2-D quadrature
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v, vd = act.dual(4.0, 4.0, 4.0)
    z, w = np.polynomial.hermite_e.hermegauss(200)
    np.testing.assert_allclose(v, np.tanh(2 * z) ** 2 @ w / w.sum(), rtol=1e-6)


# ------------------------------------------------- neural signature kernel
def _standardised_paths(rng, n=12, length=10, channels=3):
    P = rng.normal(size=(n, length, channels)).cumsum(1)
    return (P - P.mean((0, 1))) / P.std((0, 1))


def test_neural_signature_unconverged_default_warns(rng):
    from sklearn.exceptions import ConvergenceWarning

    from skinfinite import NeuralSignatureKernel
    from skinfinite.kernels.signature import NSK_TOL
    P = _standardised_paths(rng)
    k = NeuralSignatureKernel("erf", dyadic_order=0)
    with pytest.warns(ConvergenceWarning,
                      match="not converged at dyadic_order=0") as w:
        K = k(P)
    assert w[0].filename == __file__
    # what the warning is about: the Gram moves by more than the tolerance
    fine = NeuralSignatureKernel("erf", dyadic_order=2)(P)
    assert np.abs(K - fine).max() > NSK_TOL * np.abs(fine).max()
    with pytest.warns(ConvergenceWarning):
        d = k.diag(P)
    np.testing.assert_array_equal(d, np.diag(K))
    # converged paths stay silent, and k(X) agrees with k(X, X) there
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        K = NeuralSignatureKernel("relu")(0.05 * P)
        K2 = NeuralSignatureKernel("relu")(0.05 * P, 0.05 * P)
    np.testing.assert_allclose(np.diag(K2), np.diag(K), rtol=NSK_TOL)


def test_neural_signature_huge_values_are_warned(rng):
    # paths scaled by 10 reach 1e31 on an unstable grid: warned, not silent;
    # diag() runs the same diagonal solve as k(X)
    from sklearn.exceptions import ConvergenceWarning

    from skinfinite import NeuralSignatureKernel
    P = _standardised_paths(rng) * 10
    k = NeuralSignatureKernel("relu", dyadic_order=0)
    with pytest.warns(ConvergenceWarning, match="changes by 1 "):
        K = k(P)
    with pytest.warns(ConvergenceWarning):
        np.testing.assert_array_equal(k.diag(P), np.diag(K))


# ------------------------------------------ results independent of scheduling
_LAYOUT_KERNELS = [NNGP(depth=3), NTK(depth=3), NTK(depth=2, activation="erf")]


@pytest.mark.parametrize("kernel", _LAYOUT_KERNELS, ids=repr)
def test_pair_value_does_not_depend_on_its_tile(kernel, rng):
    # A pair's value was the last bit of whichever code path reached it: a
    # BLAS product blocked by the tile's shape, and a SIMD body or a scalar
    # remainder (chosen by the column's place and by the scratch buffers'
    # addresses) that fused multiply-adds differently.
    X = rng.normal(size=(90, 5))
    Y = rng.normal(size=(70, 5))
    full = kernel(X, Y)
    by_column = np.hstack([kernel(X, Y[j:j + 1]) for j in range(len(Y))])
    by_row = np.vstack([kernel(X[i:i + 1], Y) for i in range(len(X))])
    np.testing.assert_array_equal(full, by_column)
    np.testing.assert_array_equal(full, by_row)
    np.testing.assert_array_equal(kernel(X)[:40, 50:], kernel(X[:40], X[50:]))


def test_concurrent_calls_equal_serial_ones(rng):
    import threading

    tasks = []
    for i in range(24):
        n, m, d = rng.integers(5, 160), rng.integers(5, 160), rng.integers(1, 12)
        kernel = (NNGP if i % 2 else NTK)(depth=int(rng.integers(1, 5)))
        X = rng.normal(size=(n, d))
        tasks.append((kernel, X, rng.normal(size=(m, d)) if i % 3 else None))

    def run(task):
        kernel, X, Y = task
        return kernel(X) if Y is None else kernel(X, Y)

    serial = [run(task) for task in tasks]
    differ = []

    def work(seed):
        for i in np.random.default_rng(seed).permutation(2 * len(tasks)):
            i %= len(tasks)
            if not np.array_equal(run(tasks[i]), serial[i]):
                differ.append(i)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not differ, sorted(set(differ))


@pytest.mark.slow
def test_compiling_series_kernels_shows_no_numba_warning(tmp_path):
    import os
    import subprocess
    import sys
    code = ("import numpy as np\n"
            "from skinfinite.kernels import ConvNNGP\n"
            "X = np.random.default_rng(0).normal(size=(3, 12, 2))\n"
            "ConvNNGP(activation='tanh')(X)\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # an empty cache: the warning came at compile time only
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-W", "always", "-c", code],
                          cwd=root, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr
    assert "Numba" not in done.stderr, done.stderr[:2000]


def test_inner_products_ordered_up_to_the_threshold_then_blas(rng):
    # Ordered sums: a pair's value equals the same pair computed alone.
    # Beyond the threshold, a BLAS product within rounding of the sums.
    from skinfinite.engine.tiles import ORDERED_MAX_FEATURES, inner_products
    for d in (ORDERED_MAX_FEATURES, ORDERED_MAX_FEATURES + 1, 300):
        X, Y = rng.normal(size=(37, d)), rng.normal(size=(23, d))
        G = inner_products(X, Y)
        alone = np.array([[inner_products(X[i:i + 1], Y[j:j + 1])[0, 0]
                           for j in range(23)] for i in range(37)])
        np.testing.assert_allclose(G, X @ Y.T / d, rtol=1e-12, atol=1e-15)
        if d <= ORDERED_MAX_FEATURES:
            assert np.array_equal(G, alone)
