import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process.kernels import RBF

import skinfinite
from skinfinite import SignatureKernel, flatten_sequences

from skinfinite.kernels.signature import AUTO_STEP_SQ

from ._differences import theta_gradient
from ._signatures import chen_product, signature_kernel_by_levels


@pytest.fixture
def paths(rng):
    return rng.normal(size=(5, 6, 2)) * 0.4


def _reference_gram(X, Y, depth=10):
    return np.array([[signature_kernel_by_levels(x, y, depth) for y in Y]
                     for x in X])


def test_linear_kernel_converges_to_truncated_signatures(paths):
    X, Y = paths[:3, :4], paths[3:, :5]
    ref = _reference_gram(X, Y)
    errors = [np.max(np.abs(SignatureKernel(dyadic_order=m)(X, Y) - ref))
              for m in range(5)]
    # second-order scheme: each refinement divides the error by about 4
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    assert np.all(ratios > 3.0), ratios
    assert errors[-1] < 5e-5 * np.max(np.abs(ref))


def test_high_refinement_matches_signature_inner_product(rng):
    X = rng.normal(size=(2, 3, 2)) * 0.3
    K = SignatureKernel(dyadic_order=8, layout="ntc")(X)
    np.testing.assert_allclose(K, _reference_gram(X, X, depth=14), rtol=5e-7)


@pytest.mark.parametrize("order", [0, 2])
def test_matches_pysiglib_linear(order, rng):
    pysiglib = pytest.importorskip("pysiglib")
    X = rng.normal(size=(7, 12, 3)) * 0.3
    Y = rng.normal(size=(5, 9, 3)) * 0.3
    for A, B in ((X, Y), (X, X)):
        ours = SignatureKernel(dyadic_order=order, scheme="taylor")(
            A, None if B is A else B)
        theirs = pysiglib.sig_kernel_gram(A, B, dyadic_order=order)
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=0)


@pytest.mark.parametrize("order", [0, 1])
def test_matches_pysiglib_rbf(order, rng):
    pysiglib = pytest.importorskip("pysiglib")
    X = rng.normal(size=(6, 10, 3)) * 0.5
    Y = rng.normal(size=(4, 8, 3)) * 0.5
    ell = 0.7
    # pysiglib's RBFKernel(sigma) is exp(-|x - y|^2 / sigma)
    theirs = pysiglib.sig_kernel_gram(
        X, Y, dyadic_order=order, static_kernel=pysiglib.RBFKernel(2 * ell**2))
    ours = SignatureKernel("rbf", dyadic_order=order, length_scale=ell,
                           scheme="taylor")(X, Y)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=0)
    general = SignatureKernel(RBF(ell), dyadic_order=order,
                              scheme="taylor")(X, Y)
    np.testing.assert_allclose(general, theirs, rtol=1e-10, atol=0)


def test_matches_pysiglib_transforms(rng):
    pysiglib = pytest.importorskip("pysiglib")
    X = rng.normal(size=(4, 7, 2)) * 0.3
    for opts in ({"time_aug": True}, {"lead_lag": True},
                 {"time_aug": True, "lead_lag": True}):
        theirs = pysiglib.sig_kernel_gram(X, X, dyadic_order=1, **opts)
        ours = SignatureKernel(dyadic_order=1, scheme="taylor",
                               time_augment=opts.get("time_aug", False),
                               lead_lag=opts.get("lead_lag", False))(X)
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=0)


def _explicit_transform(path, lead_lag, time, base):
    if lead_lag:
        lag = np.repeat(path, 2, axis=0)[:-1]
        lead = np.repeat(path, 2, axis=0)[1:]
        path = np.hstack([lag, lead])
    if time:
        t = np.linspace(0, 1, path.shape[0])[:, None]
        path = np.hstack([path, t])
    if base:
        path = np.vstack([np.zeros((1, path.shape[1])), path])
    return path


@pytest.mark.parametrize("lead_lag", [False, True])
@pytest.mark.parametrize("time", [False, True])
@pytest.mark.parametrize("base", [False, True])
def test_transforms_equal_explicitly_transformed_paths(lead_lag, time, base,
                                                       rng):
    paths = [rng.normal(size=(n, 2)) * 0.3 for n in (4, 6, 5)]
    explicit = [_explicit_transform(p, lead_lag, time, base) for p in paths]
    K = SignatureKernel(dyadic_order=1, lead_lag=lead_lag, time_augment=time,
                        basepoint=base)(paths)
    np.testing.assert_allclose(K, SignatureKernel(dyadic_order=1)(explicit),
                               rtol=1e-12)


def test_scale_equals_scaled_paths(paths):
    K = SignatureKernel(scale=1.7, dyadic_order=1)(paths)
    np.testing.assert_allclose(K, SignatureKernel(dyadic_order=1)(1.7 * paths),
                               rtol=1e-12)


def test_normalize(paths):
    kernel = SignatureKernel(dyadic_order=1)
    K = kernel(paths)
    d = np.diag(K)
    Kn = clone(kernel).set_params(normalize=True)(paths)
    np.testing.assert_allclose(Kn, K / np.sqrt(np.outer(d, d)), rtol=1e-12)
    np.testing.assert_array_equal(np.diag(Kn), 1.0)
    Y = paths[:2] * 1.3
    Kxy = kernel.set_params(normalize=True)(paths, Y)
    dy = SignatureKernel(dyadic_order=1).diag(Y)
    np.testing.assert_allclose(Kxy, SignatureKernel(dyadic_order=1)(paths, Y)
                               / np.sqrt(np.outer(d, dy)), rtol=1e-12)


def test_ragged_and_flattened_inputs_equal_three_d(rng):
    paths = [rng.normal(size=(n, 3)) * 0.3 for n in (5, 9, 7, 2)]
    kernel = SignatureKernel("rbf", dyadic_order=1, n_channels=3)
    K = kernel(paths)
    for i, x in enumerate(paths):
        for j, y in enumerate(paths):
            single = kernel(x[None], y[None])[0, 0]
            assert K[i, j] == pytest.approx(single, rel=1e-13)
    np.testing.assert_allclose(kernel(flatten_sequences(paths, padding="nan")),
                               K, rtol=1e-13)
    np.testing.assert_allclose(kernel(flatten_sequences(paths)), K,
                               rtol=1e-13)
    np.testing.assert_allclose(kernel.diag(paths), np.diag(K), rtol=1e-13)


def test_tiling_does_not_change_values(rng):
    X = rng.normal(size=(37, 6, 2)) * 0.4
    Y = rng.normal(size=(23, 5, 2)) * 0.4
    for static in ("linear", RBF(0.9)):
        kernel = SignatureKernel(static)
        full, cross = kernel(X), kernel(X, Y)
        with skinfinite.config_context(memory_budget=2000):
            np.testing.assert_allclose(kernel(X), full, rtol=1e-14)
            np.testing.assert_allclose(kernel(X, Y), cross, rtol=1e-14)


def test_paths_are_not_vectors():
    assert not SignatureKernel().requires_vector_input


def test_inside_gaussian_process_regressor(rng):
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import WhiteKernel

    paths = [rng.normal(size=(rng.integers(5, 12), 2)).cumsum(0) * 0.1
             for _ in range(30)]
    y = np.array([p[-1, 0] - p[0, 0] for p in paths])
    X2 = flatten_sequences(paths)
    kernel = SignatureKernel(n_channels=2, dyadic_order=0) + WhiteKernel(1e-2)
    gpr = GaussianProcessRegressor(kernel, normalize_y=True, random_state=0)
    # the optimiser tries scale=334, far too coarse for dyadic_order=0: a
    # warning, and a Gram that fails to factor, from which it recovers
    with pytest.warns(ConvergenceWarning, match="too coarse"):
        gpr.fit(X2[:24], y[:24])
    pred = gpr.predict(X2[24:])
    assert pred.shape == (6,)
    assert np.corrcoef(pred, y[24:])[0, 1] > 0.8


@pytest.mark.parametrize("params, message", [
    ({"static_kernel": "poly"}, "static_kernel"),
    ({"dyadic_order": -1}, "dyadic_order"),
    ({"dyadic_order": 1.5}, "dyadic_order"),
    ({"scale": 0.0}, "scale"),
    ({"static_kernel": "rbf", "length_scale": -1.0}, "length_scale"),
])
def test_bad_parameters_raise(params, message, paths):
    with pytest.raises(ValueError, match=message):
        SignatureKernel(**params)(paths)


def test_bad_inputs_raise(paths):
    kernel = SignatureKernel()
    with pytest.raises(ValueError, match="channels"):
        kernel(paths, paths[..., :1])
    with pytest.raises(ValueError, match="NaN"):
        bad = paths.copy()
        bad[0, 1, 0] = np.nan
        kernel(bad)
    with pytest.raises(ValueError, match="n_channels"):
        kernel(paths.reshape(5, -1))
    with pytest.raises(ValueError, match="Gradient"):
        kernel(paths, paths, eval_gradient=True)


def test_overflow_is_reported(rng):
    X = rng.normal(size=(2, 50, 3)).cumsum(axis=1) * 30
    with pytest.raises(FloatingPointError, match="non-finite"):
        SignatureKernel()(X)
    with pytest.raises(FloatingPointError, match="non-finite"):
        SignatureKernel(dyadic_order=0, scheme="taylor")(X)


# ------------------------------------------- the Cayley scheme (the default)
def _cayley_features(path, depth):
    """prod_i (1 + h_i/2)(1 - h_i/2)^-1 in the tensor algebra, levels
    0..depth: level n of one step's factor is 2^(1-n) h^(x)n."""
    feat = [np.ones(())] + [np.zeros((path.shape[1],) * n)
                            for n in range(1, depth + 1)]
    for h in np.diff(path, axis=0):
        step = [np.ones(())]
        for n in range(1, depth + 1):
            step.append(np.multiply.outer(step[-1], h)
                        * (1.0 if n == 1 else 0.5))
        feat = chen_product(feat, step, depth)
    return feat


def test_cayley_scheme_is_an_inner_product_of_features(rng):
    # the reason for positive semi-definiteness, checked independently:
    # the order-0 recursion equals <Phi(x), Phi(y)> of explicit features
    X = rng.normal(size=(3, 4, 2)) * 0.2
    Y = rng.normal(size=(2, 5, 2)) * 0.2
    fx = [_cayley_features(x, 14) for x in X]
    fy = [_cayley_features(y, 14) for y in Y]
    ref = np.array([[sum(np.sum(a * b) for a, b in zip(u, v)) for v in fy]
                    for u in fx])
    K = SignatureKernel(dyadic_order=0)(X, Y)
    np.testing.assert_allclose(K, ref, rtol=1e-12)
    # refinement is the same features of the paths with midpoints inserted
    def midpoints(P):
        return np.stack([np.insert(p, range(1, len(p)),
                                   0.5 * (p[:-1] + p[1:]), axis=0)
                         for p in P])
    np.testing.assert_allclose(SignatureKernel(dyadic_order=1)(X, Y),
                               SignatureKernel(dyadic_order=0)(
                                   midpoints(X), midpoints(Y)), rtol=1e-13)


def _two_three_point_paths():
    return np.array([[[0.0, 0.0], [0.0, -0.4], [0.6, -1.1]],
                     [[0.0, 0.0], [1.7, -1.0], [1.1, -0.7]]])


@pytest.mark.parametrize("make", [
    lambda rng: rng.normal(size=(30, 10, 2)) * 0.35,
    lambda rng: rng.normal(size=(30, 3, 2)) * 0.45,
    lambda rng: rng.normal(size=(30, 12, 3)),          # rough: auto refines
    lambda rng: rng.normal(size=(30, 40, 3)).cumsum(axis=1) / np.sqrt(40),
    lambda rng: _two_three_point_paths(),
])
@pytest.mark.parametrize("static", ["linear", "rbf", RBF(0.5)])
def test_gram_psd_on_random_paths_at_defaults(make, static, rng):
    X = make(rng)
    K = SignatureKernel(static, layout="ntc")(X)
    eig = np.linalg.eigvalsh(K)
    assert eig.min() >= -1e-12 * eig.max(), eig.min() / eig.max()


def test_pysiglibs_scheme_is_indefinite_where_the_default_is_not(rng):
    # the same paths that the test above passes with the default scheme
    X = rng.normal(size=(30, 10, 2)) * 0.35
    eig = np.linalg.eigvalsh(SignatureKernel(dyadic_order=0,
                                             scheme="taylor")(X))
    assert eig.min() < -1e-3 * eig.max()
    eig = np.linalg.eigvalsh(SignatureKernel(dyadic_order=0)(X))
    assert eig.min() > 0
    # two paths of three points: eigenvalues -0.88 and 5.2
    P = _two_three_point_paths()
    eig = np.linalg.eigvalsh(SignatureKernel(dyadic_order=0,
                                             scheme="taylor",
                                             layout="ntc")(P))
    assert eig.min() < 0
    assert np.linalg.eigvalsh(SignatureKernel(layout="ntc")(P)).min() > 0


@pytest.mark.parametrize("static", ["linear", "rbf"])
def test_converges_in_dyadic_order_to_pysiglib(static, rng):
    pysiglib = pytest.importorskip("pysiglib")
    X = rng.normal(size=(4, 8, 3)) * 0.4
    Y = rng.normal(size=(3, 6, 3)) * 0.4
    kw = {}
    if static == "rbf":
        kw = {"static_kernel": pysiglib.RBFKernel(2 * 0.6 ** 2)}
    ref = pysiglib.sig_kernel_gram(X, Y, dyadic_order=9, **kw)
    errors = [np.max(np.abs(SignatureKernel(static, dyadic_order=m,
                                            length_scale=0.6)(X, Y) / ref
                            - 1)) for m in range(6)]
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    assert np.all(ratios > 3.0), ratios
    assert errors[-1] < 5e-4, errors
    # the same limit as pysiglib's own scheme, refined
    taylor = SignatureKernel(static, dyadic_order=5, length_scale=0.6,
                             scheme="taylor")(X, Y)
    np.testing.assert_allclose(SignatureKernel(
        static, dyadic_order=5, length_scale=0.6)(X, Y), taylor, rtol=2e-4)


def test_auto_order_refines_the_longest_step(rng):
    X = rng.normal(size=(6, 8, 2)) * 0.3
    step = np.max(np.sum(np.diff(X, axis=1) ** 2, axis=2))
    for scale in (0.5, 3.0, 10.0):
        need = int(np.ceil(max(0.0, np.log(scale ** 2 * step / AUTO_STEP_SQ)
                                / np.log(4))))
        auto = SignatureKernel(scale=scale)
        np.testing.assert_array_equal(
            auto(X), SignatureKernel(scale=scale, dyadic_order=need)(X))
        np.testing.assert_array_equal(
            auto.diag(X), SignatureKernel(scale=scale,
                                          dyadic_order=need).diag(X))
    # k(X, Y) refines for the longer steps of either side
    Y = X[:2] * 4
    need = int(np.ceil(np.log(16 * step / AUTO_STEP_SQ) / np.log(4)))
    np.testing.assert_array_equal(SignatureKernel()(X, Y),
                                  SignatureKernel(dyadic_order=need)(X, Y))


def test_too_coarse_explicit_order_warns(rng):
    X = rng.normal(size=(4, 6, 3))
    with pytest.warns(ConvergenceWarning, match="dyadic_order >= ") as w:
        SignatureKernel(dyadic_order=0)(X)
    with pytest.warns(ConvergenceWarning, match="too coarse") as w2:
        SignatureKernel(dyadic_order=0).diag(X)
    assert w[0].filename == w2[0].filename == __file__
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SignatureKernel(dyadic_order=0, scheme="taylor")(X)
        SignatureKernel(dyadic_order=0)(X * 0.2)


@pytest.mark.parametrize("scheme", ["cayley", "taylor"])
@pytest.mark.parametrize("kwargs", [
    {"dyadic_order": 1}, {"static_kernel": "rbf", "length_scale": 0.8},
    {"static_kernel": "rbf", "normalize": True, "dyadic_order": 1},
    {"static_kernel": RBF(0.7)},
])
def test_gradients_of_both_schemes(scheme, kwargs, paths):
    kernel = SignatureKernel(scale=1.1, scheme=scheme, **kwargs)
    K, dK = kernel(paths, eval_gradient=True)
    np.testing.assert_allclose(K, kernel(paths), rtol=1e-14)
    np.testing.assert_allclose(dK, theta_gradient(kernel, paths), rtol=1e-6,
                               atol=1e-9)


@pytest.mark.parametrize("scheme", ["cayley", "taylor"])
def test_simulated_gpu_solver_runs_both_schemes(scheme, rng):
    from skinfinite._core.backend import cuda_simulator_enabled, simulated_gpu
    if not cuda_simulator_enabled():
        pytest.skip("numba's CUDA simulator is off")
    pytest.importorskip("numba.cuda")
    X = [rng.normal(size=(n, 2)) * 0.5 for n in (4, 6, 3)]
    Y = [rng.normal(size=(n, 2)) * 0.5 for n in (5, 2)]
    for params in ({"dyadic_order": 1},
                   {"static_kernel": "rbf", "length_scale": 0.7}):
        cpu = SignatureKernel(device="cpu", scheme=scheme, **params)
        with simulated_gpu():
            gpu = SignatureKernel(device="gpu", scheme=scheme, **params)
            K, Kxy = gpu(X), gpu(X, Y)
        np.testing.assert_allclose(K, cpu(X), rtol=1e-13)
        np.testing.assert_allclose(Kxy, cpu(X, Y), rtol=1e-13)


def test_bad_scheme_raises(paths):
    with pytest.raises(ValueError, match="scheme"):
        SignatureKernel(scheme="pade")(paths)
    with pytest.raises(ValueError, match="dyadic_order"):
        SignatureKernel(dyadic_order="fine")(paths)
