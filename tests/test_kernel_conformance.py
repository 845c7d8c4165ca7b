"""Every kernel through the same generic checks.

In the manner of scikit-learn's ``gaussian_process/tests/test_kernels.py``:
one list of kernel instances (each architecture with several activations
and depths, the sequence kernels on their own inputs, and sums and products
with scikit-learn kernels) and one test per property, run on every entry:

* gradients (``eval_gradient=True``) against central differences in the
  log-hyperparameters, and fixed bounds removing their columns;
* ``theta`` and ``bounds``: logs of the hyperparameters, a round trip
  through ``clone_with_theta`` and the ``theta`` setter;
* ``diag(X)`` equals the diagonal of ``k(X)``;
* ``clone`` and pickling give equal kernels with equal values, and equal
  ``repr``;
* ``k(X)`` is symmetric and positive semi-definite (smallest eigenvalue
  above ``-1e-10`` times the largest);
* ``k(X)`` equals ``k(X, X)``, and a cross block equals its part of the Gram;
* float32 inputs give the values of the same inputs in float64, and
  ``dtype="float32"`` gives float32 values close to float64.

A check that a kernel legitimately fails today is marked ``xfail(strict)``
on that case only, with the reason; the mark must go once it passes.
Inputs are small so that the default suite stays fast; the heavier cases
are marked slow.
"""
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.gaussian_process.kernels import (RBF, ConstantKernel,
                                              DotProduct)

from skinfinite.activations.definitions import LeakyReLU
from skinfinite.kernels import (NNGP, NTK, ConvNNGP, ConvNTK,
                                NeuralSignatureKernel, ResNetNNGP, ResNetNTK,
                                SignatureKernel)

from ._differences import theta_gradient
from ._layered_example import DecayingNTK


# ------------------------------------------------------------------ inputs
def _vectors(rng):
    return rng.normal(size=(6, 3))


def _sequences(rng):
    return rng.normal(size=(5, 12, 2))


def _ragged(rng):
    return [rng.normal(size=(t, 2)) for t in (12, 17, 9, 14, 11)]


def _flat_sequences(rng):
    return rng.normal(size=(5, 12 * 2))


def _images(rng):
    # 6 x 5 images with 2 channels, flattened
    return rng.normal(size=(5, 6 * 5 * 2))


def _paths(rng):
    # random walks with small steps: the PDE grids resolve them
    return rng.normal(size=(5, 6, 2)).cumsum(axis=1) * 0.2


def _rough_paths(rng):
    # independent points: rough paths, where a coarse grid shows its error
    return rng.normal(size=(6, 4, 2)) * 0.7


def _flat_paths(rng):
    return _paths(rng).reshape(5, -1)


def _vary(inputs, fn):
    """Apply ``fn`` to an array input or to every entry of a list input."""
    return [fn(x) for x in inputs] if isinstance(inputs, list) else fn(inputs)


def _split(inputs, stop, start):
    return inputs[:stop], inputs[start:]


# ------------------------------------------------------------------ kernels
SIGNATURE_TAYLOR_ORDER_ZERO = (
    "the Taylor scheme at dyadic_order=0 gives indefinite Grams on rough "
    "paths (the default Cayley scheme is an inner product of features)")
NEURAL_DIAGONAL = (
    "the diagonal of k(X) comes from the diagonal solver (predicted-"
    "corrected), which differs from the pair solve of k(X, X) by the "
    "scheme's error")

# (id, kernel, inputs, {check: reason} of the checks it fails today, slow)
_SPECS = [
    ("NNGP-relu-3", NNGP(depth=3), _vectors),
    ("NNGP-tanh-2-standard", NNGP(depth=2, activation="tanh",
                                  parametrization="standard",
                                  weight_variance=1.5, bias_variance=0.3),
     _vectors),
    ("NNGP-sin-2", NNGP(depth=2, activation="sin", weight_variance=1.7,
                        bias_variance=0.3), _vectors),
    ("NTK-erf-3", NTK(depth=3, activation="erf", weight_variance=1.7,
                      bias_variance=0.3), _vectors),
    ("NTK-leaky-2-standard", NTK(depth=2, activation=LeakyReLU(0.2),
                                 parametrization="standard"), _vectors),
    ("NTK-relu-1", NTK(depth=1), _vectors),
    ("NTK-gelu-4", NTK(depth=4, activation="gelu", weight_variance=1.2),
     _vectors),
    # an architecture added by its layer maps alone (gradients by central
    # differences of the Gram)
    # (one entry: each compiles the architecture's kernel for itself)
    ("DecayingNTK-relu-3", DecayingNTK(depth=3, decay=0.7,
                                       weight_variance=1.4), _vectors),
    ("ResNetNNGP-relu-3-scales", ResNetNNGP(depth=3,
                                            branch_scales=[0.5, 1.0, 0.2]),
     _vectors),
    ("ResNetNTK-erf-5", ResNetNTK(depth=5, activation="erf"), _vectors),
    ("ResNetNTK-erf-4-branch2", ResNetNTK(depth=4, activation="erf",
                                          branch_layers=2), _vectors),
    ("ResNetNTK-relu-inf", ResNetNTK(depth=np.inf), _vectors),
    ("ResNetNNGP-tanh-inf", ResNetNNGP(depth=np.inf, activation="tanh"),
     _vectors, {}, True),
    ("ResNetNTK-erf-inf-branch2", ResNetNTK(depth=np.inf, activation="erf",
                                            branch_layers=2), _vectors,
     {}, True),
    ("ConvNNGP-ppv", ConvNNGP(readout="ppv", weight_variance=1.7,
                              bias_variance=0.6), _sequences),
    ("ConvNTK-ppv", ConvNTK(readout="ppv", weight_variance=1.7,
                            bias_variance=0.6), _sequences),
    ("ConvNNGP-2-dilations", ConvNNGP(depth=2, filter_size=3,
                                      dilation=[1, 2], weight_variance=1.7,
                                      bias_variance=0.6), _sequences),
    ("ConvNTK-2-dilations", ConvNTK(depth=2, filter_size=3, dilation=[1, 2],
                                    weight_variance=1.7, bias_variance=0.6),
     _sequences),
    ("ConvNTK-erf-same-flatten", ConvNTK(depth=2, filter_size=3,
                                         activation="erf", padding="same",
                                         readout="flatten",
                                         weight_variance=1.7,
                                         bias_variance=0.6), _sequences),
    ("ConvNNGP-tanh-dilation2", ConvNNGP(depth=2, filter_size=3,
                                         activation="tanh", dilation=2,
                                         weight_variance=1.7,
                                         bias_variance=0.6), _sequences),
    ("ConvNNGP-ragged", ConvNNGP(readout="ppv"), _ragged),
    ("ConvNTK-ragged", ConvNTK(depth=2, filter_size=3), _ragged),
    ("ConvNNGP-images", ConvNNGP(image_shape=(6, 5), filter_size=3,
                                 dilation=1, depth=2, padding="same"),
     _images),
    ("ConvNTK-images", ConvNTK(image_shape=(6, 5, 2), filter_size=(3, 2),
                               dilation=1, readout="flatten"), _images),
    ("SignatureKernel-auto", SignatureKernel(scale=0.9), _rough_paths),
    ("SignatureKernel-taylor-order0",
     SignatureKernel(dyadic_order=0, scheme="taylor", scale=0.9),
     _rough_paths,
     {"test_gram_is_symmetric_and_psd": SIGNATURE_TAYLOR_ORDER_ZERO}),
    ("SignatureKernel-order1", SignatureKernel(dyadic_order=1, scale=0.9),
     _paths),
    ("SignatureKernel-rbf", SignatureKernel("rbf", length_scale=0.8,
                                            scale=0.9), _paths),
    ("SignatureKernel-normalized", SignatureKernel(normalize=True,
                                                   dyadic_order=1,
                                                   scale=0.9), _paths),
    ("SignatureKernel-rbf-normalized-time",
     SignatureKernel("rbf", normalize=True, time_augment=True, scale=0.9),
     _paths),
    ("SignatureKernel-sklearn-RBF", SignatureKernel(RBF(0.7), scale=0.9),
     _paths),
    ("SignatureKernel-rbf-order1-leadlag",
     SignatureKernel("rbf", dyadic_order=1, lead_lag=True, basepoint=True),
     _paths),
    ("NeuralSignatureKernel-relu", NeuralSignatureKernel(
        "relu", 2.0, 0.1, dyadic_order=1), _paths,
     {"test_auto_equals_cross": NEURAL_DIAGONAL}),
    ("NeuralSignatureKernel-erf-inhomogeneous", NeuralSignatureKernel(
        "erf", 1.5, 0.1, 0.7, dyadic_order=1, homogeneous=False), _paths),
    ("NeuralSignatureKernel-tanh-order2", NeuralSignatureKernel(
        "tanh", 1.5, 0.2, dyadic_order=2), _paths,
     {"test_auto_equals_cross": NEURAL_DIAGONAL}, True),
    # sums and products with scikit-learn kernels
    ("NNGP+RBF", NNGP(depth=2) + RBF(1.5), _vectors),
    ("2*NTK-erf", 2.0 * NTK(depth=2, activation="erf"), _vectors),
    ("NTK*DotProduct", NTK(depth=2) * DotProduct(0.5), _vectors),
    ("ResNetNTK+Constant", ResNetNTK(depth=3) + ConstantKernel(0.5),
     _vectors),
    ("ConvNTK+RBF", ConvNTK(n_channels=2, filter_size=3) + RBF(3.0),
     _flat_sequences),
    ("Constant*SignatureKernel", ConstantKernel(2.0)
     * SignatureKernel(n_channels=2, dyadic_order=1), _flat_paths),
    ("NeuralSignatureKernel+RBF", NeuralSignatureKernel(
        "relu", n_channels=2, dyadic_order=1) + RBF(2.0), _flat_paths,
     {"test_auto_equals_cross": NEURAL_DIAGONAL}),
]


def _cases(check):
    """The kernel list as pytest parameters for one check, with that check's
    expected failures marked."""
    out = []
    for spec in _SPECS:
        name, kernel, inputs = spec[:3]
        failing = spec[3] if len(spec) > 3 else {}
        slow = len(spec) > 4 and spec[4]
        marks = [pytest.mark.slow] if slow else []
        if check in failing:
            marks.append(pytest.mark.xfail(strict=True,
                                           reason=failing[check]))
        out.append(pytest.param(kernel, inputs, id=name, marks=marks))
    return out


def _hyperparameters(kernel):
    return [h for h in kernel.hyperparameters if not h.fixed]


def _fixable(kernel):
    """The free hyperparameters' names whose bounds can be set to "fixed"."""
    params = kernel.get_params()
    return [h.name for h in _hyperparameters(kernel)
            if h.name + "_bounds" in params]


# ------------------------------------------------------------------ checks
@pytest.mark.parametrize("kernel, inputs",
                         _cases("test_gradient_matches_finite_differences"))
def test_gradient_matches_finite_differences(kernel, inputs, rng):
    X = inputs(rng)
    K, dK = kernel(X, eval_gradient=True)
    n = len(X)
    assert dK.shape == (n, n, kernel.n_dims)
    np.testing.assert_allclose(K, kernel(X), rtol=1e-12, atol=0)
    if kernel.n_dims == 0:
        return
    fd = theta_gradient(kernel, X)
    for i in range(kernel.n_dims):
        scale = np.abs(fd[..., i]).max()
        np.testing.assert_allclose(dK[..., i], fd[..., i], rtol=1e-6,
                                   atol=1e-6 * scale, err_msg=f"column {i}")


@pytest.mark.parametrize("kernel, inputs",
                         _cases("test_fixed_bounds_drop_gradient_columns"))
def test_fixed_bounds_drop_gradient_columns(kernel, inputs, rng):
    X = inputs(rng)
    _, full = kernel(X, eval_gradient=True)
    names = [h.name for h in _hyperparameters(kernel)]
    for name in _fixable(kernel):
        fixed = clone(kernel).set_params(**{name + "_bounds": "fixed"})
        keep = [i for i, other in enumerate(names) if other != name]
        assert fixed.n_dims == len(keep)
        np.testing.assert_array_equal(fixed.theta, kernel.theta[keep])
        _, grad = fixed(X, eval_gradient=True)
        np.testing.assert_allclose(grad, full[..., keep], rtol=1e-12, atol=0)


@pytest.mark.parametrize("kernel, inputs", _cases("test_theta_round_trip"))
def test_theta_round_trip(kernel, inputs, rng):
    free = _hyperparameters(kernel)
    params = kernel.get_params()
    assert kernel.n_dims == len(free) == len(kernel.theta)
    np.testing.assert_allclose(
        kernel.theta, np.log([params[h.name] for h in free]), rtol=1e-15)
    # scikit-learn gives an empty 1-D array without hyperparameters
    assert kernel.bounds.reshape(-1, 2).shape == (len(free), 2)
    for h, row in zip(free, kernel.bounds):
        np.testing.assert_allclose(row, np.log(np.ravel(h.bounds)),
                                   rtol=1e-15)
    X = inputs(rng)
    same = kernel.clone_with_theta(kernel.theta)
    assert same is not kernel
    # exp(log(v)) is v up to rounding
    np.testing.assert_allclose(same.theta, kernel.theta, rtol=1e-15)
    np.testing.assert_allclose(same(X), kernel(X), rtol=1e-13, atol=0)
    # a step inside the bounds and back
    bounds = kernel.bounds.reshape(-1, 2)
    theta = np.clip(kernel.theta + np.log(1.3), bounds[:, 0], bounds[:, 1])
    moved = kernel.clone_with_theta(theta)
    np.testing.assert_allclose(moved.theta, theta, rtol=1e-14)
    for h, value in zip(free, np.exp(theta)):
        assert moved.get_params()[h.name] == pytest.approx(value, rel=1e-14)
    np.testing.assert_allclose(kernel.theta,
                               np.log([params[h.name] for h in free]))
    setter = clone(kernel)
    setter.theta = theta
    assert setter.get_params() == moved.get_params()
    back = moved.clone_with_theta(kernel.theta)
    np.testing.assert_allclose(back(X), kernel(X), rtol=1e-13, atol=0)


@pytest.mark.parametrize("kernel, inputs",
                         _cases("test_diag_is_the_gram_diagonal"))
def test_diag_is_the_gram_diagonal(kernel, inputs, rng):
    X = inputs(rng)
    d = kernel.diag(X)
    assert d.shape == (len(X),)
    np.testing.assert_allclose(d, np.diag(kernel(X)), rtol=1e-12, atol=0)


@pytest.mark.parametrize("kernel, inputs", _cases("test_clone_and_pickle"))
def test_clone_and_pickle(kernel, inputs, rng):
    X = inputs(rng)
    K = kernel(X)
    for copy in (clone(kernel), pickle.loads(pickle.dumps(kernel))):
        assert copy == kernel and copy is not kernel
        assert repr(copy) == repr(kernel)
        np.testing.assert_array_equal(copy(X), K)
    # repr names the kernel (or the package's operands of a sum/product)
    assert all(type(k).__name__ in repr(kernel) for k in _operands(kernel)
               if type(k).__module__.startswith("skinfinite"))
    assert not kernel.is_stationary()


def _compound(kernel):
    return set(kernel.get_params(deep=False)) >= {"k1", "k2"}


def _operands(kernel):
    if _compound(kernel):
        params = kernel.get_params(deep=False)
        return _operands(params["k1"]) + _operands(params["k2"])
    return [kernel]


@pytest.mark.parametrize("kernel, inputs",
                         _cases("test_gram_is_symmetric_and_psd"))
def test_gram_is_symmetric_and_psd(kernel, inputs, rng):
    K = kernel(inputs(rng))
    np.testing.assert_array_equal(K, K.T)
    eig = np.linalg.eigvalsh(K)
    assert eig.min() >= -1e-10 * eig.max(), eig


@pytest.mark.parametrize("kernel, inputs", _cases("test_auto_equals_cross"))
def test_auto_equals_cross(kernel, inputs, rng):
    X = inputs(rng)
    K = kernel(X)
    np.testing.assert_allclose(kernel(X, X), K, rtol=1e-12, atol=0)
    A, B = _split(X, 3, 2)
    np.testing.assert_allclose(kernel(A, B), K[:3, 2:], rtol=1e-12, atol=0)


@pytest.mark.parametrize("kernel, inputs", _cases("test_float32"))
def test_float32(kernel, inputs, rng):
    X32 = _vary(inputs(rng), lambda x: x.astype(np.float32))
    X64 = _vary(X32, lambda x: x.astype(np.float64))
    K = kernel(X64)
    # scikit-learn's operands of a sum or product compute in the inputs'
    # precision; the package's kernels in float64
    rtol = 1e-12 if not _compound(kernel) else 1e-6
    np.testing.assert_allclose(kernel(X32), K, rtol=rtol, atol=0)
    if "dtype" in kernel.get_params():
        single = clone(kernel).set_params(dtype="float32")(X64)
        assert single.dtype == np.float32
        np.testing.assert_allclose(single, K, rtol=1e-6,
                                   atol=1e-6 * np.abs(K).max())
