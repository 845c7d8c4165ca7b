"""Convolutional NNGP/NTK kernels: closed forms, Monte Carlo, protocol."""
import os

import numpy as np
import pytest

from skinfinite.empirical.networks import ConvolutionalNetwork
from skinfinite.kernels import ConvNNGP, ConvNTK


def _windows(x, d, q):
    starts = np.arange(x.shape[0] - d * (q - 1))
    return np.stack([x[s + d * np.arange(q)].ravel() for s in starts])


def _one_layer_reference(X, dilations, q, sw2, sb2, readout):
    """Depth-1 kernels written out with arc-cosine closed forms."""
    n, _, c = X.shape
    K = np.zeros((n, n))
    T = np.zeros((n, n))
    for d in dilations:
        for i in range(n):
            for j in range(n):
                A, B = _windows(X[i], d, q), _windows(X[j], d, q)
                a = sw2 / (c * q)
                S = a * A @ B.T + sb2
                r = np.sqrt(np.outer(a * (A * A).sum(1) + sb2,
                                     a * (B * B).sum(1) + sb2))
                theta = np.arccos(np.clip(S / r, -1, 1))
                step = (np.pi - theta) / (2 * np.pi)
                if readout == "ppv":
                    K[i, j] += step.mean()
                else:
                    K[i, j] += (r * (np.sin(theta) + (np.pi - theta)
                                     * np.cos(theta)) / (2 * np.pi)).mean()
                    T[i, j] += (S * step).mean()
    K = sw2 * K / len(dilations) + sb2
    return K, K + sw2 * T / len(dilations)


@pytest.mark.parametrize("readout", ["average", "ppv"])
def test_one_layer_matches_arc_cosine_formula(readout, rng):
    X = rng.normal(size=(4, 40, 2))
    K_ref, T_ref = _one_layer_reference(X, [1, 2, 4], 9, 2.0, 1.0, readout)
    K = ConvNNGP(readout=readout)(X)
    T = ConvNTK(readout=readout)(X)
    # arccos of the reference loses digits near correlation 1
    assert np.allclose(K, K_ref, rtol=1e-8, atol=0)
    assert np.allclose(T, T_ref if readout == "average" else K_ref,
                       rtol=1e-8, atol=0)


def _monte_carlo(kw, X, width, seeds):
    draws = [ConvolutionalNetwork(width=width, random_state=s, **kw).kernels(X)
             for s in range(seeds)]
    return (np.mean([k for k, _ in draws], 0), np.mean([t for _, t in draws], 0))


@pytest.mark.parametrize("kw", [dict(readout="ppv"), dict(readout="average"),
                                dict(depth=2, filter_size=3, dilation=[1, 2])],
                         ids=str)
def test_kernels_match_wide_random_networks(kw, rng):
    X = rng.normal(size=(3, 20, 2))
    K_mc, T_mc = _monte_carlo(kw, X, 256, 6)
    K, T = ConvNNGP(**kw)(X), ConvNTK(**kw)(X)
    # Monte Carlo error at this width is about 1.5% of the largest entry
    assert np.abs(K_mc - K).max() < 0.06 * np.abs(K).max()
    assert np.abs(T_mc - T).max() < 0.06 * np.abs(T).max()


@pytest.mark.slow
def test_monte_carlo_error_shrinks_like_inverse_square_root_width(rng):
    X = rng.normal(size=(3, 16, 2))
    kw = dict(depth=2, filter_size=3, dilation=[1, 2], readout="average")
    K = ConvNNGP(**kw)(X)
    errors = []
    for width in (64, 256, 1024):
        K_mc, _ = _monte_carlo(kw, X, width, 12)
        errors.append(np.abs(K_mc - K).max())
    # each 4x width should halve the error (generous band for noise)
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    assert np.all(ratios > 1.2) and np.all(ratios < 4.0), errors


def test_images_match_wide_random_networks(rng):
    X = rng.normal(size=(3, 6 * 5 * 2))
    kw = dict(image_shape=(6, 5), filter_size=3, dilation=1, depth=2,
              padding="same")
    K_mc, T_mc = _monte_carlo(kw, X, 256, 6)
    K, T = ConvNNGP(**kw)(X), ConvNTK(**kw)(X)
    assert np.abs(K_mc - K).max() < 0.06 * np.abs(K).max()
    assert np.abs(T_mc - T).max() < 0.06 * np.abs(T).max()


@pytest.mark.parametrize("act", ["relu", "erf"])
def test_filter_over_the_whole_input_is_fully_connected(act, rng):
    from skinfinite.kernels import NNGP, NTK
    X = rng.normal(size=(5, 7, 3))
    flat = X.reshape(5, -1)
    for readout in ("flatten", "average"):
        kw = dict(filter_size=7, dilation=1, activation=act, readout=readout,
                  weight_variance=1.5, bias_variance=0.3)
        fc = dict(depth=1, activation=act, weight_variance=1.5,
                  bias_variance=0.3)
        assert np.allclose(ConvNNGP(**kw)(X), NNGP(**fc)(flat), rtol=1e-12)
        assert np.allclose(ConvNTK(**kw)(X), NTK(**fc)(flat), rtol=1e-12)


def test_one_tap_filters_average_the_fully_connected_kernel(rng):
    from skinfinite.kernels import NNGP, NTK
    X = rng.normal(size=(4, 6, 3))
    kw = dict(filter_size=1, dilation=1, depth=3, activation="erf",
              readout="flatten")
    fc = dict(depth=3, activation="erf", weight_variance=2.0,
              bias_variance=1.0)
    for conv, dense in ((ConvNNGP, NNGP), (ConvNTK, NTK)):
        per_position = [dense(**fc)(X[:, s], X[:, s]) for s in range(6)]
        assert np.allclose(conv(**kw)(X), np.mean(per_position, 0),
                           rtol=1e-12)


def test_input_forms_agree(rng):
    from skinfinite import flatten_sequences
    X = [rng.normal(size=(t, 2)) for t in (20, 31, 25)]
    kernel = ConvNTK(readout="average")
    K = kernel(X)
    nan_padded = flatten_sequences(X, padding="nan")
    assert np.allclose(ConvNTK(n_channels=2)(nan_padded), K, rtol=1e-12)
    assert np.allclose(kernel(X, X[1:]), K[:, 1:], rtol=1e-12)
    same = np.stack([x[:20] for x in X])
    assert np.allclose(kernel(same), kernel(list(same)), rtol=1e-12)


def test_tiles_do_not_change_results(rng):
    import skinfinite
    X = rng.normal(size=(30, 15, 1))
    K = ConvNNGP()(X)
    with skinfinite.config_context(memory_budget=2000):
        assert np.array_equal(ConvNNGP()(X), K)


# slow: compiles several kernel variants on a cold cache
@pytest.mark.slow
def test_repr_and_sklearn_machines(rng):
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import WhiteKernel
    from sklearn.svm import SVC
    kernel = ConvNNGP(readout="ppv", n_channels=1)
    assert repr(kernel) == ("ConvNNGP(depth=1, activation='relu', "
                            "weight_variance=2, bias_variance=1, "
                            "readout='ppv', n_channels=1)")
    t = np.linspace(0, 1, 30)
    X = np.array([np.sin(2 * np.pi * f * t + rng.uniform(0, 6))
                  for f in np.repeat([1.0, 3.0], 20)])
    y = np.repeat([0, 1], 20)
    assert SVC(kernel=kernel, C=10).fit(X, y).score(X, y) == 1.0
    gpr = GaussianProcessRegressor(ConvNTK(n_channels=1) + WhiteKernel(1e-2))
    gpr.fit(X, y.astype(float))
    assert gpr.kernel_.k1.weight_variance != 2.0


@pytest.mark.parametrize("params, match", [
    (dict(readout="max"), "readout"),
    (dict(padding="full"), "padding"),
    (dict(dilation="linear"), "dilation"),
    (dict(dilation=[]), "empty"),
    (dict(filter_size=40), "receptive field"),
    (dict(depth=0), "depth"),
    (dict(weight_variance=-1.0), "weight_variance"),
])
def test_bad_parameters(params, match, rng):
    X = rng.normal(size=(2, 30, 1))
    with pytest.raises(ValueError, match=match):
        ConvNNGP(**params)(X)


def test_bad_inputs(rng):
    with pytest.raises(ValueError, match="n_channels"):
        ConvNNGP()(rng.normal(size=(3, 20)))
    with pytest.raises(ValueError, match="multiple"):
        ConvNNGP(image_shape=(4, 4))(rng.normal(size=(3, 20)))
    with pytest.raises(ValueError, match="channels"):
        ConvNNGP()(rng.normal(size=(3, 20, 2)), rng.normal(size=(3, 20, 1)))
    with pytest.raises(ValueError, match="Gradient"):
        ConvNNGP()(rng.normal(size=(3, 20, 1)), rng.normal(size=(3, 20, 1)),
                   eval_gradient=True)


def test_four_dimensional_images_read_as_their_flattened_rows(rng):
    X = rng.normal(size=(3, 6, 5, 2))     # (n, rows, columns, channels)
    flat = X.reshape(3, -1)
    # the settings of the Monte Carlo test above: no kernel compiled anew
    kernel = ConvNNGP(image_shape=(6, 5), filter_size=3, dilation=1,
                      depth=2, padding="same")
    np.testing.assert_array_equal(kernel(X), kernel(flat))
    np.testing.assert_array_equal(kernel(X[:1], X), kernel(flat[:1], flat))
    np.testing.assert_array_equal(kernel.diag(X), kernel.diag(flat))
    with pytest.raises(ValueError, match=r"4-D .*image_shape=\(6, 5\)"):
        ConvNNGP()(X)
    with pytest.raises(ValueError, match="images of \\(6, 5\\) pixels"):
        ConvNNGP(image_shape=(5, 6))(X)


def test_estimators_with_the_convolutional_architecture(rng):
    from sklearn.base import clone
    from sklearn.gaussian_process import GaussianProcessRegressor
    from skinfinite.models import NNGPRegressor, NTKClassifier, NTKRegressor
    X = rng.normal(size=(24, 30))
    y = np.sin(X[:, :5].sum(1))
    structure = ConvNNGP(readout="ppv", n_channels=1, filter_size=5)
    model = NNGPRegressor(architecture=structure, depth=1, alpha=1e-2,
                          bias_variance=1.0).fit(X, y)
    gpr = GaussianProcessRegressor(clone(structure), alpha=1e-2,
                                   optimizer=None).fit(X, y)
    mean, std = model.predict(X[:5], return_std=True)
    ref_mean, ref_std = gpr.predict(X[:5], return_std=True)
    assert np.allclose(mean, ref_mean, rtol=1e-8)
    assert np.allclose(std, ref_std, rtol=1e-6)
    ntk = NTKRegressor(architecture="convolutional", depth=2, alpha=1e-2)
    ntk.fit(X, y)
    T = ConvNTK(depth=2, n_channels=1, bias_variance=0.1)(X)
    coef = np.linalg.solve(T + 1e-2 * np.eye(24), y)
    assert np.allclose(ntk.predict(X[:3]), T[:3] @ coef, rtol=1e-8)
    clf = NTKClassifier(architecture="convolutional", depth=1)
    assert clone(clf).fit(X, y > 0).score(X, y > 0) == 1.0
    with pytest.raises(ValueError, match="NTK parametrisation"):
        NTKRegressor(architecture="convolutional",
                     parametrization="standard").fit(X, y)


def test_running_window_sums_match_direct_sums(rng):
    # a column image with (q, 1) filters is the 1-D network, computed by the
    # direct lag sums instead of the running ones of 1-D "valid" grids
    X = rng.normal(size=(3, 60, 2))
    images = X.reshape(3, -1)
    for cls in (ConvNNGP, ConvNTK):
        seq = cls(depth=2, filter_size=5, dilation=[1, 3], readout="average")
        col = cls(depth=2, filter_size=(5, 1), dilation=[1, 3],
                  readout="average", image_shape=(60, 1))
        assert np.allclose(seq(X), col(images), rtol=1e-12)
        assert np.allclose(seq(X, eval_gradient=True)[1],
                           col(images, eval_gradient=True)[1], rtol=1e-10)


@pytest.mark.parametrize("readout", ["ppv", "average"])
@pytest.mark.parametrize("length", [60, 12])
def test_running_window_sums_match_direct_sums_under_same_padding(
        readout, length, rng):
    # "same" padding: the running sums skip the taps that fall into the
    # padding; length 12 has windows longer than the series
    X = rng.normal(size=(4, length, 2)).cumsum(axis=1)
    images = X.reshape(4, -1)
    kw = dict(filter_size=9, dilation=[1, 2, 3, 5], padding="same",
              readout=readout)
    seq = ConvNNGP(**kw)
    col = ConvNNGP(**dict(kw, filter_size=(9, 1)), image_shape=(length, 1))
    K = seq(X)
    # the step function's dual has an infinite slope at correlation 1: the
    # diagonal is exact only if the equal positions are summed directly
    assert np.allclose(K, col(images), rtol=1e-13, atol=0)
    assert np.allclose(seq(X[:2], X[1:]), col(images[:2], images[1:]),
                       rtol=1e-13, atol=0)
    if readout == "average":
        ntk = ConvNTK(depth=2, **kw)
        ntk_col = ConvNTK(depth=2, **dict(kw, filter_size=(9, 1)),
                          image_shape=(length, 1))
        assert np.allclose(ntk(X), ntk_col(images), rtol=1e-12, atol=0)
        assert np.allclose(ntk(X, eval_gradient=True)[1],
                           ntk_col(images, eval_gradient=True)[1],
                           rtol=1e-10, atol=0)


# ------------------------------------------------------ strides and padding
@pytest.mark.parametrize("kw", [
    dict(depth=2, filter_size=3, dilation=[1, 2], strides=2),
    dict(depth=2, filter_size=4, dilation=[1, 3], padding="circular"),
    dict(depth=2, filter_size=3, dilation=2, padding="same", strides=3),
], ids=str)
def test_strides_and_circular_padding_match_wide_random_networks(kw, rng):
    X = rng.normal(size=(3, 17, 2))
    K_mc, T_mc = _monte_carlo(kw, X, 256, 6)
    K, T = ConvNNGP(**kw)(X), ConvNTK(**kw)(X)
    assert np.abs(K_mc - K).max() < 0.06 * np.abs(K).max()
    assert np.abs(T_mc - T).max() < 0.06 * np.abs(T).max()


def test_strided_circular_images_match_wide_random_networks(rng):
    X = rng.normal(size=(3, 7 * 6 * 2))
    kw = dict(image_shape=(7, 6), filter_size=(3, 2), dilation=1, depth=2,
              padding="circular", strides=(2, 1), readout="flatten")
    K_mc, T_mc = _monte_carlo(kw, X, 256, 6)
    K, T = ConvNNGP(**kw)(X), ConvNTK(**kw)(X)
    assert np.abs(K_mc - K).max() < 0.06 * np.abs(K).max()
    assert np.abs(T_mc - T).max() < 0.06 * np.abs(T).max()


@pytest.mark.parametrize("two_d", [False, True])
def test_circular_padding_is_invariant_to_cyclic_shifts(two_d, rng):
    # wrapped positions make the pooled kernel a function of the orbit of
    # cyclic shifts; zero padding ("same") breaks it
    if two_d:
        X = rng.normal(size=(3, 5, 6, 2))
        shifted = np.roll(X, (2, -1), axis=(1, 2))
        kw = dict(image_shape=(5, 6), filter_size=3, dilation=[1, 2])
        X, shifted = X.reshape(3, -1), shifted.reshape(3, -1)
    else:
        X = rng.normal(size=(3, 11, 2))
        shifted = np.roll(X, 4, axis=1)
        kw = dict(filter_size=4, dilation=[1, 2])
    for cls in (ConvNNGP, ConvNTK):
        k = cls(depth=2, padding="circular", **kw)
        assert np.allclose(k(shifted, X), k(X), rtol=1e-12)
        zero = cls(depth=2, padding="same", **kw)
        assert not np.allclose(zero(shifted, X), zero(X), rtol=1e-3)


def test_circular_filter_over_the_whole_input_is_fully_connected(rng):
    from skinfinite.kernels import NNGP, NTK
    X = rng.normal(size=(4, 6, 2))
    # every position sees the whole input, cyclically shifted: inner
    # products of equal shifts are the unshifted ones
    fc = dict(depth=1, activation="erf", weight_variance=1.5,
              bias_variance=0.3)
    kw = dict(filter_size=6, dilation=1, padding="circular",
              readout="flatten", **fc)
    assert np.allclose(ConvNNGP(**kw)(X), NNGP(**fc)(X.reshape(4, -1)),
                       rtol=1e-12)
    assert np.allclose(ConvNTK(**kw)(X), NTK(**fc)(X.reshape(4, -1)),
                       rtol=1e-12)


# slow: compiles several kernel variants on a cold cache
@pytest.mark.slow
@pytest.mark.parametrize("two_d", [False, True])
def test_strided_patches_average_the_fully_connected_kernel(two_d, rng):
    # filters that step by their own size see disjoint patches: one layer
    # with "flatten" is the mean of the fully connected kernels of patches
    from skinfinite.kernels import NNGP, NTK
    fc = dict(depth=1, activation="tanh", weight_variance=1.3,
              bias_variance=0.2)
    kw = dict(filter_size=3, strides=3, dilation=1, readout="flatten", **fc)
    if two_d:
        img = rng.normal(size=(4, 6, 7, 2))    # the last column is dropped
        patches = [img[:, a:a + 3, b:b + 3].reshape(4, -1)
                   for a in (0, 3) for b in (0, 3)]
        X = img.reshape(4, -1)
        kw["image_shape"] = (6, 7)
    else:
        X = rng.normal(size=(4, 10, 2))
        patches = [X[:, s:s + 3].reshape(4, -1) for s in (0, 3, 6)]
    for conv, dense in ((ConvNNGP, NNGP), (ConvNTK, NTK)):
        ref = np.mean([dense(**fc)(p) for p in patches], 0)
        assert np.allclose(conv(**kw)(X), ref, rtol=1e-12)


# slow: compiles several kernel variants on a cold cache
@pytest.mark.slow
def test_strides_gradients_match_finite_differences(rng):
    X = rng.normal(size=(3, 13, 2))
    for cls in (ConvNNGP, ConvNTK):
        kernel = cls(depth=2, filter_size=3, dilation=[1, 2], strides=2,
                     padding="circular", activation="erf")
        _, grad = kernel(X, eval_gradient=True)
        theta = kernel.theta
        for k in range(theta.size):
            step = np.zeros_like(theta)
            step[k] = 1e-6
            hi = kernel.clone_with_theta(theta + step)(X)
            lo = kernel.clone_with_theta(theta - step)(X)
            assert np.allclose(grad[:, :, k], (hi - lo) / 2e-6, rtol=1e-5,
                               atol=1e-8)


def test_bad_strides(rng):
    X = rng.normal(size=(2, 30, 1))
    with pytest.raises(ValueError, match="strides"):
        ConvNNGP(strides=0)(X)
    with pytest.raises(ValueError, match="strides"):
        ConvNNGP(strides=(1, 2, 3), image_shape=(5, 6))(rng.normal(size=(2, 30)))
    with pytest.raises(ValueError, match="receptive field"):
        ConvNNGP(filter_size=5, depth=3, strides=4, dilation=1)(X)


@pytest.mark.skipif(not os.environ.get("SKINFINITE_NT_PYTHON"),
                    reason="SKINFINITE_NT_PYTHON does not name the python of "
                           "a neural-tangents environment")
def test_values_match_neural_tangents():
    # the peer runs in its own environment (an older JAX); the comparison
    # script drives it and reports the worst relative errors
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    script = root / "asv_bench" / "peers" / "compare_conv.py"
    done = subprocess.run(
        [sys.executable, str(script), "--check", "--nt-python",
         os.environ["SKINFINITE_NT_PYTHON"]], capture_output=True, text=True,
        env=dict(os.environ, PYTHONPATH=str(root)), timeout=1800)
    assert done.returncode == 0, done.stdout + done.stderr
    import json
    worst = json.loads(done.stdout.strip().splitlines()[-1])
    worst = worst["worst_relative_error"]
    assert worst["nngp"] <= 1e-10
    # Off the Gram's diagonal the NTKs agree to rounding (1e-15).  On it
    # every position meets itself at correlation exactly 1, where
    # neural-tangents' angle atan2(sqrt(max(K11 K22 - K12^2, 0)), K12) is
    # the square root of a rounding residue, ~1e-8 instead of 0: its ReLU
    # derivative kernel is the inexact one there (8.4e-10 in the flatten
    # cases, whose readout sums only those pairs), while ours matches the
    # 50-digit reference to 3e-16 in every case.
    assert worst["ntk_off_diagonal"] <= 1e-10
    assert worst["ntk"] <= 1e-8
    assert worst["ours_nngp"] <= 1e-13 and worst["ours_ntk"] <= 1e-13
    assert worst["peer_ntk"] <= 1e-8


def _compare_script():
    import importlib.util
    path = os.path.join(os.path.dirname(__file__), os.pardir, "asv_bench",
                        "peers", "compare_conv.py")
    spec = importlib.util.spec_from_file_location("compare_conv", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("case", ["1d_valid_depth3", "1d_strided_circular",
                                  "2d_strided_flatten", "2d_circular_gap"])
def test_values_match_high_precision_reference(case):
    # the recursion in 50-digit arithmetic (mpmath), written independently
    # of the package: correlations of 1 are exactly 1 there, so the
    # derivative kernel on the Gram's diagonal is checked too
    pytest.importorskip("mpmath")
    cc = _compare_script()
    name, shape, layers, readout = next(c for c in cc.CHECKS if c[0] == case)
    X = np.random.default_rng(1).normal(size=(3,) + shape)
    refs = cc.reference(X, layers, readout, cc.SW2, cc.SB2)
    flat = X.reshape(3, -1) if len(shape) == 3 else X
    for kernel, ref in zip(cc.ours(layers, readout, shape), refs):
        err = np.abs(kernel(flat) - ref).max() / np.abs(ref).max()
        assert err <= 1e-13, (type(kernel).__name__, err)


# ------------------------------------------------------------ random features
def test_random_features_gram_error_shrinks_like_inverse_square_root(rng):
    from skinfinite.empirical import ConvolutionalRandomFeatures
    X = rng.normal(size=(4, 16, 2))
    kw = dict(filter_size=3, dilation=[1, 2], depth=2, padding="same",
              activation="erf")
    K = ConvNNGP(**kw)(X)

    def error(width):
        errs = [np.abs(F @ F.T - K).max() / np.abs(K).max() for F in (
            ConvolutionalRandomFeatures(width, random_state=s, **kw
                                        ).fit_transform(X) for s in range(8))]
        return np.mean(errs)

    errors = [error(w) for w in (32, 512)]
    # 16 times the width: a quarter of the error (generous band for noise)
    assert 2.5 < errors[0] / errors[1] < 6.5, errors


def test_random_features_transform_and_protocol(rng):
    from sklearn.base import clone
    from sklearn.linear_model import RidgeClassifier
    from sklearn.pipeline import make_pipeline
    from skinfinite.empirical import ConvolutionalRandomFeatures
    X = rng.normal(size=(6, 5 * 4))
    rf = ConvolutionalRandomFeatures(8, filter_size=3, image_shape=(5, 4),
                                     dilation=[1, 2], strides=2,
                                     readout="ppv", random_state=0)
    F = rf.fit_transform(X)
    # the filters are drawn once: transform repeats them
    assert np.array_equal(rf.transform(X[2:4]), F[2:4])
    assert F.shape == (6, 8 * 2 + 1) and np.all(F[:, -1] == 1.0)
    assert len(rf.get_feature_names_out()) == F.shape[1]
    # images as a 4-D array (channels last) are their flattened rows
    images = X.reshape(6, 5, 4, 1)
    assert np.array_equal(rf.transform(images), F)
    assert np.array_equal(clone(rf).fit_transform(images), F)
    with pytest.raises(ValueError, match="images of \\(5, 4\\) pixels"):
        clone(rf).set_params(image_shape=(4, 5)).fit(images)
    seq = ConvolutionalRandomFeatures(4, filter_size=3, n_channels=2,
                                      random_state=0)
    G = seq.fit_transform(X)                  # 10 steps of 2 channels
    assert np.allclose(G, clone(seq).fit_transform(X.reshape(6, 10, 2)))
    with pytest.raises(ValueError, match="refit"):
        clone(seq).fit(X.reshape(6, 10, 2)).transform(
            rng.normal(size=(2, 10, 3)))
    with pytest.raises(ValueError, match="n_channels"):
        ConvolutionalRandomFeatures(n_channels=3).fit(X[:, :10])
    y = np.arange(6) % 2
    make_pipeline(clone(seq), RidgeClassifier()).fit(X, y).predict(X)


def test_random_features_pass_the_sklearn_checks():
    from sklearn.utils.estimator_checks import check_estimator
    from skinfinite.empirical import ConvolutionalRandomFeatures
    check_estimator(ConvolutionalRandomFeatures(n_components=4))


@pytest.mark.parametrize("kw", [dict(n_channels=2),
                                dict(image_shape=(5, 4), dilation=[1, 2],
                                     strides=2, filter_size=3)])
def test_ppv_features_counted_equal_the_pooled_pre_activations(rng, kw):
    # one layer with the ppv readout counts positive responses in one
    # compiled loop; the general path forms every pre-activation
    from skinfinite.empirical import ConvolutionalRandomFeatures
    from skinfinite.empirical.networks import _generator
    X = rng.normal(size=(5, 5 * 4))
    rf = ConvolutionalRandomFeatures(16, readout="ppv", bias_variance=0.7,
                                     random_state=2, **kw).fit(X)
    net = rf.network_
    inputs = X if "image_shape" in kw else X.reshape(5, 10, 2)
    grids, spec = net._forward(inputs, None)
    params = net._draw(spec, grids[0].values.shape[1],
                       _generator(net.random_state))
    pooled = np.hstack(net._pooled(grids, spec, params)[0][0])
    counted = np.hstack([f[:, 0] for f in net._positive_shares(
        grids[0], spec, params, [spec.bias_variance])])
    assert 0.0 < pooled.mean() < 1.0
    np.testing.assert_allclose(counted, pooled, atol=1e-12)
    F = rf.transform(X)
    scale = np.sqrt(spec.weight_variance / (net.width * len(spec.dilations)))
    np.testing.assert_allclose(F[:, :-1], pooled * scale, atol=1e-12)


def test_ppv_features_of_several_bias_variances_in_one_pass(rng):
    # the same filters and biases under each bias variance: equal to the
    # networks drawn with each bias variance on their own
    from skinfinite.empirical.networks import ConvolutionalNetwork
    X = rng.normal(size=(6, 40, 2))
    bvs = [0.0, 0.25, 1.0, 16.0]
    kw = dict(readout="ppv", padding="same", random_state=3)
    F = ConvolutionalNetwork(32, **kw).nngp_features(X, bias_variances=bvs)
    assert F.shape[0] == len(bvs)
    for b, Fb in zip(bvs, F):
        alone = ConvolutionalNetwork(32, bias_variance=b, **kw).nngp_features(X)
        np.testing.assert_array_equal(Fb, alone)
    assert not np.array_equal(F[0], F[-1])
    with pytest.raises(ValueError, match="one layer"):
        ConvolutionalNetwork(4, depth=2, **kw).nngp_features(X, bias_variances=bvs)
    with pytest.raises(ValueError, match="bias_variances"):
        ConvolutionalNetwork(4, **kw).nngp_features(X, bias_variances=[-1.0])
