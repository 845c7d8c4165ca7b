from sklearn.base import clone
import warnings

import numpy as np
import pytest

from skinfinite import NeuralSignatureKernel, SignatureKernel, flatten_sequences
from skinfinite.empirical.networks import ControlledResNetNetwork


@pytest.fixture
def paths(rng):
    # random walks with small steps: the PDE grid resolves them
    return rng.normal(size=(4, 6, 2)).cumsum(axis=1) * 0.2


@pytest.mark.parametrize("order", [0, 2])
def test_identity_equals_signature_kernel(order, paths, rng):
    Y = rng.normal(size=(3, 5, 2)) * 0.3
    neural = NeuralSignatureKernel("identity", dyadic_order=order)
    # the neural scheme reduces to pysiglib's for the identity
    sig = SignatureKernel(dyadic_order=order, scheme="taylor")
    np.testing.assert_allclose(neural(paths, Y), sig(paths, Y), rtol=1e-12)
    np.testing.assert_allclose(neural(paths), sig(paths), rtol=1e-12)
    np.testing.assert_allclose(neural.diag(paths), sig.diag(paths),
                               rtol=1e-12)


def test_identity_with_variances_is_an_affine_signature_kernel(paths):
    # K + sb2/sA2 solves the linear PDE with increments scaled by sA2 and
    # boundary value s02 + sb2/sA2
    sa2, sb2, s02 = 1.7, 0.3, 0.6
    K = NeuralSignatureKernel("identity", sa2, sb2, s02, dyadic_order=2)(paths)
    beta = sb2 / sa2
    expected = (s02 + beta) * SignatureKernel(
        dyadic_order=2, scale=np.sqrt(sa2), scheme="taylor")(paths) - beta
    np.testing.assert_allclose(K, expected, rtol=1e-12)


@pytest.mark.parametrize("activation", ["relu", "erf", "tanh"])
def test_converges_in_dyadic_order(activation, paths):
    values = [NeuralSignatureKernel(activation, 2.0, 0.1,
                                    dyadic_order=m)(paths) for m in range(5)]
    gaps = [np.max(np.abs(values[m + 1] - values[m])) for m in range(4)]
    assert gaps[-1] < gaps[0] / 10
    assert gaps[-1] < 1e-3


def test_diagonal_solve_is_close_to_the_pair_solve(paths):
    kernel = NeuralSignatureKernel("relu", 2.0, dyadic_order=2)
    K = kernel(paths)
    cross = kernel(paths, paths)
    off = ~np.eye(len(paths), dtype=bool)
    np.testing.assert_allclose(K[off], cross[off], rtol=1e-13)
    # diagonal solve (predicted-corrected) against the pair solve
    np.testing.assert_allclose(np.diag(K), np.diag(cross), rtol=1e-4)


def test_ragged_and_flattened_inputs(rng):
    paths = [rng.normal(size=(n, 2)).cumsum(0) * 0.2 for n in (4, 7, 5)]
    kernel = NeuralSignatureKernel("erf", 1.5, 0.1, dyadic_order=1,
                                   n_channels=2)
    K = kernel(paths)
    for i, x in enumerate(paths):
        for j, y in enumerate(paths):
            if i != j:
                assert K[i, j] == pytest.approx(kernel(x[None], y[None])[0, 0],
                                                rel=1e-13)
        assert K[i, i] == pytest.approx(kernel.diag([x])[0], rel=1e-13)
    np.testing.assert_allclose(kernel(flatten_sequences(paths)), K,
                               rtol=1e-13)


def _mc_errors(kernel, network, X, widths, n_seeds):
    K = kernel(X)
    errors = []
    for width in widths:
        E = clone_network(network, width).kernel(X, n_seeds=n_seeds)
        errors.append(np.mean(np.abs(E - K)) / np.max(np.abs(K)))
    return errors


def clone_network(network, width):
    params = dict(vars(network))
    params["width"] = width
    return ControlledResNetNetwork(**params)


def test_relu_matches_wide_controlled_resnets(paths):
    X = paths[:3, :4]
    kernel = NeuralSignatureKernel("relu", 2.0, 0.1, dyadic_order=3)
    net = ControlledResNetNetwork(activation="relu", weight_variance=2.0,
                                  bias_variance=0.1, dyadic_order=2,
                                  random_state=0)
    errors = _mc_errors(kernel, net, X, (16, 400), n_seeds=4)
    assert errors[1] < errors[0] / 2
    assert errors[1] < 0.03


@pytest.mark.slow
@pytest.mark.parametrize("activation", ["relu", "erf", "tanh"])
def test_matches_wide_controlled_resnets(activation, paths):
    kernel = NeuralSignatureKernel(activation, 2.0, 0.1, 0.8, dyadic_order=4)
    net = ControlledResNetNetwork(activation=activation, weight_variance=2.0,
                                  bias_variance=0.1, initial_variance=0.8,
                                  dyadic_order=3, random_state=1)
    errors = _mc_errors(kernel, net, paths, (32, 128, 1024), n_seeds=6)
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.03


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_inhomogeneous_is_the_limit_of_fresh_weights(activation, paths):
    kernel = NeuralSignatureKernel(activation, 1.5, 0.2, 0.7, dyadic_order=1,
                                   homogeneous=False)
    net = ControlledResNetNetwork(activation=activation, weight_variance=1.5,
                                  bias_variance=0.2, initial_variance=0.7,
                                  dyadic_order=1, homogeneous=False,
                                  random_state=3)
    errors = _mc_errors(kernel, net, paths, (8, 512), n_seeds=8)
    assert errors[1] < errors[0] / 2
    assert errors[1] < 0.03
    K = kernel(paths)
    np.testing.assert_allclose(kernel.diag(paths), np.diag(K), rtol=1e-12)
    # paths that never move at the same time: only the initial covariance
    x = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    y = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    k = NeuralSignatureKernel(activation, homogeneous=False,
                              layout="ntc")(x[None], y[None])
    assert k[0, 0] == pytest.approx(1.0, rel=1e-14)


def test_inhomogeneous_needs_equal_lengths(rng):
    paths = [rng.normal(size=(4, 2)), rng.normal(size=(5, 2))]
    with pytest.raises(ValueError, match="equal length"):
        NeuralSignatureKernel(homogeneous=False)(paths)


def test_inside_gaussian_process_regressor(rng):
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import WhiteKernel

    paths = rng.normal(size=(30, 6, 2)).cumsum(axis=1) * 0.2
    y = paths[:, -1, 0] - paths[:, 0, 0]
    kernel = NeuralSignatureKernel("relu", 2.0, n_channels=2) \
        + WhiteKernel(1e-2)
    gpr = GaussianProcessRegressor(kernel, normalize_y=True).fit(
        flatten_sequences(paths[:24]), y[:24])
    pred = gpr.predict(flatten_sequences(paths[24:]))
    assert np.corrcoef(pred, y[24:])[0, 1] > 0.8


@pytest.mark.parametrize("params, error", [
    ({"weight_variance": 0.0}, ValueError),
    ({"bias_variance": -1.0}, ValueError),
    ({"initial_variance": 0.0}, ValueError),
    ({"dyadic_order": -1}, ValueError),
    ({"activation": "nope"}, ValueError),
])
def test_bad_parameters(params, error, paths):
    with pytest.raises(error):
        NeuralSignatureKernel(**params)(paths)


def test_unstable_coarse_grid_is_reported(rng):
    X = rng.normal(size=(2, 40, 3)).cumsum(axis=1) * 100
    with pytest.raises(FloatingPointError, match="non-finite"):
        NeuralSignatureKernel("relu", 2.0)(X)


# ------------------------------------------------ dyadic_order="auto"
def _standardised(rng, n=12, length=10, channels=3):
    P = rng.normal(size=(n, length, channels)).cumsum(1)
    return (P - P.mean((0, 1))) / P.std((0, 1))


def _diagonal_at(kernel, X, order):
    return clone(kernel).set_params(dyadic_order=order).diag(X)


@pytest.mark.parametrize("activation, scale", [("relu", 0.4), ("erf", 1.0),
                                               ("tanh", 1.0)])
def test_auto_order_is_converged_to_the_tolerance(activation, scale, rng):
    from sklearn.exceptions import ConvergenceWarning

    from skinfinite.kernels.signature import NSK_TOL
    X = _standardised(rng) * scale
    kernel = NeuralSignatureKernel(activation, 2.0, 0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        K = kernel(X)
        cross = kernel(X, X)
        d = kernel.diag(X)
    np.testing.assert_array_equal(d, np.diag(K))
    # the two routes to k(x, x) agree to the tolerance ...
    np.testing.assert_allclose(np.diag(cross), d, rtol=NSK_TOL)
    # ... and so does the next order
    order = next(m for m in range(13)
                 if np.array_equal(_diagonal_at(kernel, X, m), d))
    finer = _diagonal_at(kernel, X, order + 1)
    assert np.max(np.abs(finer / d - 1)) <= NSK_TOL
    if order > 0:       # and the order below was not
        coarse = _diagonal_at(kernel, X, order - 1)
        assert np.max(np.abs(d / coarse - 1)) > NSK_TOL
    eig = np.linalg.eigvalsh(K)
    assert eig.min() > -1e-8 * eig.max()


@pytest.mark.slow
def test_auto_order_repairs_the_tanh_gram():
    # order 0 on 30 standardised paths: an indefinite Gram far from the limit
    X = _standardised(np.random.default_rng(0), n=30)
    with pytest.warns(Warning):
        coarse = NeuralSignatureKernel("tanh", dyadic_order=0)(X)
    K = NeuralSignatureKernel("tanh")(X)
    fine = NeuralSignatureKernel("tanh", dyadic_order=3)(X)
    assert np.linalg.eigvalsh(coarse).min() < -1e-3 * np.abs(coarse).max()
    assert np.linalg.eigvalsh(K).min() > -1e-8 * np.abs(K).max()
    assert np.max(np.abs(K - fine)) < 0.05 * np.max(np.abs(fine))


def test_auto_order_bound_warns(rng, monkeypatch):
    from sklearn.exceptions import ConvergenceWarning

    import skinfinite.kernels.signature as sig
    X = _standardised(rng)
    monkeypatch.setattr(sig, "NSK_AUTO_SECONDS", 0.0)
    with pytest.warns(ConvergenceWarning, match="stops at 0") as w:
        K = NeuralSignatureKernel("erf", 2.0)(X)
    assert w[0].filename == __file__
    np.testing.assert_array_equal(
        K, NeuralSignatureKernel("erf", 2.0, dyadic_order=0)(X))
    monkeypatch.setattr(sig, "NSK_AUTO_SECONDS", 60.0)
    monkeypatch.setattr(sig, "NSK_AUTO_MEMORY", 1e-9)
    with pytest.warns(ConvergenceWarning, match="MB"):
        NeuralSignatureKernel("erf", 2.0).diag(X)


def test_huge_values_raise_alike_in_call_and_diag(rng):
    # k(x, x) reaches 8e245 here (and 2e137 on paths scaled by 30)
    X = _standardised(rng) * 100
    kernel = NeuralSignatureKernel("relu", 2.0, dyadic_order=2)
    with pytest.raises(FloatingPointError, match="beyond 1e\\+150"):
        kernel(X)
    with pytest.raises(FloatingPointError, match="beyond 1e\\+150"):
        kernel.diag(X)
    with pytest.raises(FloatingPointError, match="beyond 1e\\+150"):
        kernel(X[:3], X[3:])


def test_diag_raises_where_call_raises(rng):
    # a grid too coarse for the paths: diag() and k(X) fail alike, or agree
    X = rng.normal(size=(3, 40, 3)).cumsum(axis=1) * 100
    for activation in ("erf", "relu"):
        kernel = NeuralSignatureKernel(activation, 2.0, dyadic_order=0)
        outcomes = []
        for call in (kernel, kernel.diag):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    outcomes.append(call(X))
                except FloatingPointError as exc:
                    outcomes.append(str(exc))
        if isinstance(outcomes[0], str):
            assert outcomes[1] == outcomes[0]
        else:
            assert np.all(np.isfinite(outcomes[1]))
            np.testing.assert_array_equal(outcomes[1], np.diag(outcomes[0]))
