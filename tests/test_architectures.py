"""The architecture registry and the fitted ``kernel_`` of the NTK and NNGP
estimators: a network registered here reaches every estimator through
``architecture=``, which computes its Grams on the backend resolved once."""
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, Kernel
from sklearn.kernel_ridge import KernelRidge

from skinfinite._core.backend import CPUBackend
from skinfinite.kernels import (NNGP, NTK, ConvNNGP, ConvNTK, ResNetNNGP,
                                ResNetNTK)
from skinfinite.kernels._base import NetworkKernel
from skinfinite.kernels.registry import (get_architecture, network_kernel,
                                         register_architecture,
                                         registered_architectures,
                                         unregister_architecture)
from skinfinite.models import (NNGPClassifier, NNGPClassifierCV,
                               NNGPRegressor, NTKClassifier, NTKRegressor,
                               NTKRegressorCV)


class _LinearNetwork(NetworkKernel, Kernel):
    """Kernels of a network with the identity activation, in NumPy:
    ``K' = sw2 K + sb2`` and ``T' = K' + sw2 T`` from the input layer.

    Records the backend of every Gram it is asked for.
    """

    log = []

    def __init__(self, depth=2, activation="identity", weight_variance=1.0,
                 bias_variance=0.1):
        self.depth = depth
        self.activation = activation
        self.weight_variance = weight_variance
        self.bias_variance = bias_variance

    def check_params(self):
        if self.activation != "identity":
            raise ValueError("the linear network has activation='identity'.")

    def backend_for(self, device="auto", *arrays):
        self.log.append(("backend_for", device))
        return CPUBackend()

    def _pairs(self, inner):
        sw2, sb2 = self.weight_variance, self.bias_variance
        K = sw2 * inner + sb2
        T = K
        for _ in range(self.depth):
            K = sw2 * K + sb2
            T = K + sw2 * T
        return {"nngp": K, "ntk": T}

    def grams(self, X, Y=None, want=None, *, backend=None, on_device=True):
        self.log.append(("grams", backend))
        Y = X if Y is None else Y
        out = self._pairs(X @ Y.T / X.shape[1])
        return {w: out[w] for w in self._want(want)}

    def diagonals(self, X, want=None):
        out = self._pairs(np.einsum("ij,ij->i", X, X) / X.shape[1])
        return {w: out[w] for w in self._want(want)}

    def __call__(self, X, Y=None, eval_gradient=False):
        return self.grams(X, Y)[self._output]

    def diag(self, X):
        return self.diagonals(X)[self._output]

    def is_stationary(self):
        return False


class LinearNNGP(_LinearNetwork):
    _output = "nngp"


class LinearNTK(_LinearNetwork):
    _output = "ntk"


@pytest.fixture
def linear_architecture():
    register_architecture("linear", LinearNNGP, LinearNTK)
    _LinearNetwork.log.clear()
    yield
    unregister_architecture("linear")


def _data(rng, n=30, d=4):
    X = rng.normal(size=(n, d))
    return X, np.sin(X[:, 0]) + X[:, 1], rng.normal(size=(6, d))


def test_the_builtin_architectures_are_registered():
    assert {"fully_connected", "resnet",
            "convolutional"} <= set(registered_architectures())
    arch, structure = get_architecture("resnet")
    assert (arch.nngp, arch.ntk, structure) == (ResNetNNGP, ResNetNTK, None)
    arch, structure = get_architecture(ConvNNGP(filter_size=3))
    assert arch.name == "convolutional" and structure["filter_size"] == 3


def test_unknown_architectures_list_the_registered_ones(rng):
    X, y, _ = _data(rng)
    with pytest.raises(ValueError, match="'fully_connected', .*'resnet'"):
        NTKRegressor(architecture="transformer").fit(X, y)
    with pytest.raises(ValueError, match="registered architecture.*NTK"):
        NNGPRegressor(architecture=RBF()).fit(X, y)
    with pytest.raises(TypeError, match="NetworkKernel"):
        register_architecture("rbf", RBF, RBF)


def test_a_registered_architecture_reaches_the_estimators(
        rng, linear_architecture):
    X, y, Xt = _data(rng)
    params = dict(depth=3, activation="identity", weight_variance=1.3,
                  bias_variance=0.2)
    # the linear network's kernels are the fully connected ones of the
    # identity activation: an independent reference for the routing
    for given in ("linear", LinearNTK(depth=1, activation="relu")):
        model = NTKRegressor(architecture=given, alpha=1e-2, **params)
        mean, std = model.fit(X, y).predict(Xt, return_std=True)
        assert type(model.kernel_) is LinearNTK
        assert model.kernel_.get_params() == params
        ref = NTKRegressor(alpha=1e-2, **params).fit(X, y)
        ref_mean, ref_std = ref.predict(Xt, return_std=True)
        np.testing.assert_allclose(mean, ref_mean, rtol=1e-10)
        np.testing.assert_allclose(std, ref_std, rtol=1e-6, atol=1e-10)
    gp = NNGPClassifier(architecture="linear", alpha=1e-2, **params)
    assert type(gp.fit(X, y > 0).kernel_) is LinearNNGP
    cv = NTKRegressorCV(architecture="linear", depths=(1, 2),
                        activations=("identity",), alphas=(1e-2, 1.0)).fit(X, y)
    assert type(cv.kernel_) is LinearNTK
    assert cv.kernel_.depth == cv.depth_
    with pytest.raises(ValueError, match="activation='identity'"):
        NTKRegressor(architecture="linear", activation="relu").fit(X, y)
    with pytest.raises(ValueError, match="NTK parametrisation"):
        NTKRegressor(architecture="linear", activation="identity",
                     parametrization="standard").fit(X, y)


def test_the_device_is_resolved_once_per_fit(rng, linear_architecture):
    X, y, Xt = _data(rng)
    model = NTKRegressor(architecture="linear", activation="identity",
                         alpha=1e-2, device="cpu").fit(X, y)
    model.predict(Xt, return_std=True)
    model.predict(Xt, return_cov=True)
    calls = _LinearNetwork.log
    assert calls.count(("backend_for", "cpu")) == 1
    backends = [b for name, b in calls if name == "grams"]
    assert len(backends) >= 4
    assert all(b is model._fit_backend for b in backends)
    nystroem = NNGPRegressor(architecture="linear", activation="identity",
                             alpha=1e-2, solver="nystroem", n_inducing=8,
                             random_state=0).fit(X, y)
    assert sum(name == "backend_for" for name, _ in calls) == 2
    assert nystroem.predict(Xt).shape == (6,)


@pytest.mark.parametrize("model,kernel", [
    (NTKRegressor(depth=2, weight_variance=1.5, bias_variance=0.3,
                  parametrization="standard", alpha=1e-3),
     NTK(depth=2, weight_variance=1.5, bias_variance=0.3,
         parametrization="standard")),
    (NNGPRegressor(depth=2, activation="erf", alpha=1e-3),
     NNGP(depth=2, activation="erf")),
    (NTKRegressor(architecture="resnet", depth=np.inf, weight_variance=1.0,
                  alpha=1e-3),
     ResNetNTK(depth=np.inf)),
    (NTKRegressor(architecture=ResNetNTK(branch_layers=2), depth=3,
                  weight_variance=1.0, alpha=1e-3),
     ResNetNTK(depth=3, branch_layers=2)),
    (NNGPRegressor(architecture="convolutional", depth=1, alpha=1e-3),
     ConvNNGP(depth=1, bias_variance=0.1, n_channels=1)),
    (NTKRegressor(architecture=ConvNNGP(filter_size=3, readout="flatten",
                                        n_channels=1),
                  depth=2, alpha=1e-3),
     ConvNTK(filter_size=3, readout="flatten", n_channels=1, depth=2,
             bias_variance=0.1)),
])
def test_kernel_is_the_fitted_kernel(model, kernel, rng):
    X, y, Xt = _data(rng, d=10)
    model.fit(X, y)
    assert type(model.kernel_) is type(kernel)
    # the kernel's own device parameter is where the model was fitted
    expected = kernel.get_params()
    if "device" in expected:
        expected["device"] = model.device_
    assert model.kernel_.get_params() == expected
    ridge = KernelRidge(kernel=kernel, alpha=1e-3).fit(X, y)
    # solved by Cholesky against KernelRidge's solver: rounding apart
    np.testing.assert_allclose(model.predict(Xt), ridge.predict(Xt),
                               rtol=1e-7, atol=1e-8)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict(Xt), model.predict(Xt))
    assert not hasattr(clone(model), "kernel_")


def test_classifiers_and_cv_share_their_regressors_kernel(rng):
    X, y, _ = _data(rng)
    clf = NTKClassifier(depth=2).fit(X, y > 0)
    assert clf.kernel_ is clf.regressor_.kernel_
    assert isinstance(clf.kernel_, NTK)
    cv = NNGPClassifierCV(depths=(1, 2), alphas=(1e-2, 1.0)).fit(X, y > 0)
    assert isinstance(cv.kernel_, NNGP) and cv.kernel_.depth == cv.depth_
    gp = GaussianProcessRegressor(cv.kernel_, alpha=cv.alpha_,
                                  optimizer=None)
    assert gp.fit(X, y).predict(X[:2]).shape == (2,)


def test_network_kernel_keeps_the_structure_of_a_kernel_instance():
    kernel = network_kernel(ConvNNGP(filter_size=4, dilation=2), "ntk",
                            depth=2, activation="erf", weight_variance=1.0,
                            bias_variance=0.5)
    assert isinstance(kernel, ConvNTK)
    assert (kernel.filter_size, kernel.dilation, kernel.depth,
            kernel.activation) == (4, 2, 2, "erf")
    # the registered defaults apply to names only
    assert network_kernel("convolutional", "nngp", depth=1,
                          activation="relu", weight_variance=2.0,
                          bias_variance=1.0).n_channels == 1
    assert network_kernel(NTK(parametrization="standard"), "ntk", depth=1,
                          activation="relu", weight_variance=2.0,
                          bias_variance=1.0).parametrization == "ntk"
