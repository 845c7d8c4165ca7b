"""The GPU engine on machines without a GPU.

* the CUDA kernels run in numba's CUDA simulator (see the root conftest) on
  the same inputs as the CPU engine and must agree with it to rounding;
* every kernel compiles to PTX for an H100 when numba-cuda and NVVM are
  installed (no GPU needed);
* ``device`` handling: errors that say how to install the GPU extra, the
  configuration, CPU fallbacks and torch tensors in and out.

The same comparisons on a real GPU are in ``tests/test_gpu_device.py``.
"""
import importlib.util
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone

import skinfinite
from skinfinite._core.backend import (DeviceUnavailableError, cuda_simulator_enabled,
                                 gpu_available, simulated_gpu)
from skinfinite.kernels import NNGP, NTK, ResNetNTK, nngp_ntk
from skinfinite.models import (NNGPClassifier, NNGPRegressor, NTKClassifier,
                               NTKRegressor)

from ._layered_example import DecayingNTK

def _simulator_available():
    # numba.cuda is numba's own (older numba) or the numba-cuda package
    return (cuda_simulator_enabled()
            and importlib.util.find_spec("numba.cuda") is not None)


simulator = pytest.mark.skipif(
    not _simulator_available(),
    reason="numba's CUDA simulator is off (NUMBA_ENABLE_CUDASIM) or "
           "numba.cuda is missing")
no_gpu = pytest.mark.skipif(gpu_available(), reason="a GPU is available")

# inputs fit a single CUDA block of 16 x 16 threads: the simulator runs
# every thread as a Python thread
ACTIVATIONS = ["relu", "leaky_relu", "abs", "erf", "sin", "cos", "tanh",
               "gelu"]


@pytest.fixture
def inputs():
    rng = np.random.default_rng(7)
    return rng.normal(size=(11, 3)), rng.normal(size=(9, 3))


def _relative_error(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


@simulator
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_simulated_gpu_matches_cpu(activation, inputs):
    X, Y = inputs
    params = dict(depth=3, activation=activation, bias_variance=0.2,
                  weight_variance=1.5)
    cpu_k, cpu_t = nngp_ntk(X, Y, device="cpu", **params)
    cpu_sym = NTK(device="cpu", **params)(X, eval_gradient=True)
    with simulated_gpu():
        gpu_k, gpu_t = nngp_ntk(X, Y, device="gpu", **params)
        gpu_sym = NTK(device="gpu", **params)(X, eval_gradient=True)
    assert _relative_error(gpu_k, cpu_k) < 1e-12
    assert _relative_error(gpu_t, cpu_t) < 1e-12
    assert _relative_error(gpu_sym[0], cpu_sym[0]) < 1e-12
    assert _relative_error(gpu_sym[1], cpu_sym[1]) < 1e-12
    np.testing.assert_array_equal(gpu_sym[0], gpu_sym[0].T)


@simulator
def test_simulated_gpu_float32_and_standard_parametrization(inputs):
    X, _ = inputs
    kernel = NNGP(depth=4, activation="erf", dtype="float32")
    ntk = NTK(depth=2, parametrization="standard")
    with simulated_gpu():
        k32 = clone(kernel).set_params(device="gpu")(X)
        t_std = clone(ntk).set_params(device="gpu")(X)
    assert k32.dtype == np.float32
    assert _relative_error(k32, kernel(X)) < 1e-6
    assert _relative_error(t_std, ntk(X)) < 1e-12


@simulator
def test_out_of_memory_splits_tiles_and_recovers(inputs):
    X, Y = inputs
    expected = NTK(depth=2)(X, Y)
    expected_sym = NTK(depth=2)(X)
    # the whole 11 x 9 tile of inner products (792 bytes) does not fit
    with simulated_gpu(memory_limit=300):
        np.testing.assert_allclose(NTK(depth=2, device="gpu")(X, Y),
                                   expected, rtol=1e-13)
        np.testing.assert_allclose(NTK(depth=2, device="gpu")(X),
                                   expected_sym, rtol=1e-13)
    with simulated_gpu(memory_limit=0), pytest.raises(MemoryError):
        NTK(depth=2, device="gpu")(X)


@simulator
@pytest.mark.parametrize("model", [
    NTKRegressor(depth=2, alpha=1e-3),
    NTKRegressor(depth=2, training_time=5.0),
    NNGPRegressor(depth=2, alpha=1e-3),
    NTKRegressor(architecture="resnet", depth=3, alpha=1e-3)])
def test_simulated_gpu_estimators_match_cpu(model, inputs):
    X, Xt = inputs
    y = np.sin(X[:, 0]) + X[:, 1]
    cpu = clone(model).set_params(device="cpu").fit(X, y)
    with simulated_gpu():
        gpu = clone(model).set_params(device="gpu").fit(X, y)
        assert gpu.device_ == "gpu"
        mean, std = gpu.predict(Xt, return_std=True)
        _, cov = gpu.predict(Xt, return_cov=True)
    cpu_mean, cpu_std = cpu.predict(Xt, return_std=True)
    _, cpu_cov = cpu.predict(Xt, return_cov=True)
    np.testing.assert_allclose(mean, cpu_mean, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(std, cpu_std, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(cov, cpu_cov, rtol=1e-6, atol=1e-9)


@simulator
def test_simulated_gpu_nystroem_solver(inputs):
    X, Xt = inputs
    y = np.cos(X[:, 0]) * X[:, 2]
    model = NTKRegressor(depth=2, alpha=1e-2, solver="nystroem", n_inducing=6,
                         random_state=0)
    cpu = clone(model).set_params(device="cpu").fit(X, y)
    with simulated_gpu():
        gpu = clone(model).set_params(device="gpu").fit(X, y)
        np.testing.assert_allclose(gpu.predict(Xt), cpu.predict(Xt),
                                   rtol=1e-8, atol=1e-10)
    assert gpu.solver_ == "nystroem"


@simulator
def test_simulated_gpu_classifier_and_auto_device(inputs):
    X, Xt = inputs
    y = (X[:, 0] > 0).astype(int)
    cpu = NNGPClassifier(depth=2, alpha=1e-2, device="cpu").fit(X, y)
    with simulated_gpu():
        gpu = NNGPClassifier(depth=2, alpha=1e-2).fit(X, y)
        assert gpu.device_ == "gpu"            # "auto" finds the device
        with skinfinite.config_context(device="cpu"):
            assert NTKClassifier(depth=2).fit(X, y).device_ == "cpu"
        np.testing.assert_allclose(gpu.predict_proba(Xt),
                                   cpu.predict_proba(Xt), rtol=1e-8)


def test_gpu_backend_setting_is_checked():
    with pytest.raises(ValueError, match="gpu_backend must be None"):
        skinfinite.set_config(gpu_backend="cupy")


@simulator
def test_simulated_gpu_is_a_configuration_setting(inputs):
    from skinfinite.kernels import ConvNTK
    X, Xt = inputs
    y = np.sin(X[:, 0])
    conv = ConvNTK(filter_size=2, n_channels=1)
    with simulated_gpu() as backend:
        assert skinfinite.get_config()["gpu_backend"] is backend
        model = NTKRegressor(depth=2, alpha=1e-2).fit(X, y)
        # resolved once: every block of the fit and predictions runs there
        assert model._fit_backend is backend
        assert model.kernel_.device == "gpu"
        pickled = pickle.dumps(model)
        on_gpu = NTKRegressor(architecture=conv, depth=1, device="gpu",
                              alpha=1e-2).fit(X, y)
        assert on_gpu.device_ == "gpu"
        # an architecture without GPU kernels: an error on "gpu", the CPU
        # on "auto"
        with pytest.raises(NotImplementedError):
            NTKRegressor(architecture=DecayingNTK(), device="gpu").fit(X, y)
        assert NTKRegressor(architecture=DecayingNTK()).fit(X, y).device_ \
            == "cpu"
    np.testing.assert_allclose(
        on_gpu.predict(Xt), NTKRegressor(architecture=conv, depth=1,
                                         alpha=1e-2).fit(X, y).predict(Xt),
        rtol=1e-10)
    assert skinfinite.get_config()["gpu_backend"] is None
    assert not isinstance(NTKRegressor(depth=2).fit(X, y)._fit_backend,
                          type(backend))
    # the setting travels with the pickled model
    again = pickle.loads(pickled)
    np.testing.assert_array_equal(again.predict(Xt), model.predict(Xt))


@simulator
@pytest.mark.parametrize("params", [
    dict(depth=3),
    dict(depth=np.inf, activation="erf"),
    dict(depth=4, activation="tanh", branch_layers=2)])
def test_simulated_gpu_residual_kernels_match_cpu(params):
    rng = np.random.default_rng(5)
    X, Y = rng.normal(size=(7, 3)), rng.normal(size=(5, 3))
    cpu = ResNetNTK(device="cpu", **params)
    with simulated_gpu():
        gpu = ResNetNTK(device="gpu", **params)
        K, dK = gpu(X, eval_gradient=True)
        K_cross = gpu(X, Y)
    K_cpu, dK_cpu = cpu(X, eval_gradient=True)
    assert _relative_error(K, K_cpu) < 1e-12
    assert _relative_error(dK, dK_cpu) < 1e-12
    assert _relative_error(K_cross, cpu(X, Y)) < 1e-12


CANNOT_COMPILE = 77   # _compile_gpu_kernels.CANNOT_COMPILE


def test_gpu_kernels_compile_to_ptx():
    """Real CUDA compilation (sm_90) of every kernel, without a GPU."""
    script = Path(__file__).with_name("_compile_gpu_kernels.py")
    root = str(Path(skinfinite.__file__).parents[1])
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0",
               PYTHONPATH=os.pathsep.join(
                   filter(None, [root, os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, str(script)], capture_output=True,
                          text=True, env=env, timeout=600)
    if done.returncode == CANNOT_COMPILE:
        # the script compiles a real kernel first: this skips exactly when
        # the toolchain (numba-cuda[cu12], NVVM, the driver library) is short
        pytest.skip(done.stdout.strip()[-300:])
    assert done.returncode == 0, done.stdout + done.stderr


@no_gpu
@pytest.mark.parametrize("call", [
    lambda X: NTK(device="gpu")(X),
    lambda X: nngp_ntk(X, device="gpu"),
    lambda X: NNGPRegressor(device="gpu").fit(X, X[:, 0])])
def test_gpu_request_without_gpu_says_how_to_install(call, inputs):
    with pytest.raises(DeviceUnavailableError,
                       match=r'pip install "\.\[gpu\]"'):
        call(inputs[0])


@no_gpu
def test_configured_gpu_without_gpu_is_an_error(inputs):
    with skinfinite.config_context(device="gpu"):
        with pytest.raises(DeviceUnavailableError):
            NTK()(inputs[0])
        # an explicit device wins over the configuration
        assert NTK(device="cpu")(inputs[0]).shape == (11, 11)


@pytest.mark.parametrize("bad", ["cuda", "GPU", None])
def test_bad_device_values(bad, inputs):
    with pytest.raises(ValueError, match="device"):
        NTK(device=bad)(inputs[0])
    with pytest.raises(ValueError, match="device"):
        NTKRegressor(device=bad).fit(inputs[0], inputs[0][:, 0])
    with pytest.raises(ValueError, match="device"):
        skinfinite.set_config(device=bad)


def test_auto_device_on_cpu_keeps_numpy(inputs):
    X, _ = inputs
    with skinfinite.config_context(device="cpu"):
        model = NTKRegressor(depth=2, alpha=1e-3).fit(X, X[:, 0])
    assert model.device_ == "cpu"
    assert isinstance(model.predict(X), np.ndarray)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))


def test_torch_tensors_in_and_out(inputs):
    torch = pytest.importorskip("torch")
    X, Y = inputs
    kernel = NTK(depth=2, device="cpu")
    out = kernel(torch.from_numpy(X), torch.from_numpy(Y))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    np.testing.assert_array_equal(out.numpy(), kernel(X, Y))
    K, grad = kernel(torch.from_numpy(X), eval_gradient=True)
    assert isinstance(grad, torch.Tensor) and grad.shape == (11, 11, 2)
    with pytest.raises(ValueError, match="NaN"):
        kernel(torch.full((3, 2), float("nan")))
    model = NTKRegressor(depth=2, alpha=1e-3, device="cpu")
    model.fit(torch.from_numpy(X), torch.from_numpy(X[:, 0]))
    np.testing.assert_allclose(model.predict(torch.from_numpy(Y)),
                               model.predict(Y))


@pytest.fixture
def ragged_paths():
    rng = np.random.default_rng(3)
    X = [rng.normal(size=(length, 2)) * 0.4 for length in (5, 7, 4, 6)]
    Y = [rng.normal(size=(length, 2)) * 0.4 for length in (6, 3, 5)]
    return X, Y


@simulator
@pytest.mark.parametrize("params", [
    dict(),
    dict(static_kernel="rbf", dyadic_order=1, length_scale=0.7, scale=1.3),
    dict(normalize=True, time_augment=True, lead_lag=True)])
def test_simulated_gpu_signature_solver_matches_cpu(params, ragged_paths):
    from skinfinite.kernels import SignatureKernel
    X, Y = ragged_paths
    cpu = SignatureKernel(device="cpu", **params)
    with simulated_gpu():
        gpu = SignatureKernel(device="gpu", **params)
        K, K_cross = gpu(X), gpu(X, Y)
    np.testing.assert_allclose(K, cpu(X), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(K_cross, cpu(X, Y), rtol=1e-13, atol=1e-15)


@simulator
def test_signature_gpu_limits_are_explicit(ragged_paths):
    from sklearn.gaussian_process.kernels import RBF

    from skinfinite.kernels import NeuralSignatureKernel, SignatureKernel
    X, _ = ragged_paths
    with simulated_gpu():
        with pytest.raises(NotImplementedError, match="gradients"):
            SignatureKernel(device="gpu")(X, eval_gradient=True)
        with pytest.raises(NotImplementedError, match="static kernel"):
            SignatureKernel(static_kernel=RBF(), device="gpu")(X)
        with pytest.raises(NotImplementedError, match="no GPU solver"):
            NeuralSignatureKernel(device="gpu")(X)
        # "auto" solves what the GPU solver does not cover on the CPU
        K, dK = SignatureKernel()(X, eval_gradient=True)
    np.testing.assert_allclose(K, SignatureKernel(device="cpu")(X))


def test_torch_estimators_take_the_same_device_values(inputs):
    torch = pytest.importorskip("torch")
    from skinfinite._core.backend import torch_device
    assert torch_device(torch, "cpu").type == "cpu"
    with skinfinite.config_context(device="cpu"):
        assert torch_device(torch, "auto").type == "cpu"
    if not torch.cuda.is_available():
        for device in ("gpu", "cuda"):
            with pytest.raises(DeviceUnavailableError, match="CUDA"):
                torch_device(torch, device)
    with pytest.raises(ValueError, match="device"):
        torch_device(torch, "tpu")


#: the readouts, paddings and a series activation, each on a tiny network
CONV_CASES = [
    dict(readout="average", depth=2, filter_size=3, dilation=[1, 2]),
    dict(readout="ppv", filter_size=3, dilation=[1, 3], padding="same"),
    dict(readout="flatten", depth=2, filter_size=2, strides=2,
         padding="circular", activation="gelu"),
]


@simulator
@pytest.mark.parametrize("kw", CONV_CASES, ids=str)
def test_simulated_gpu_convolutional_kernels_match_cpu(kw):
    from skinfinite.kernels import ConvNNGP, ConvNTK
    rng = np.random.default_rng(3)
    # tiny: the simulator runs every thread of every block in Python
    X = [rng.normal(size=(t, 2)) for t in (7, 9, 8)]
    Y = rng.normal(size=(2, 8, 2))
    for cls in (ConvNNGP, ConvNTK):
        cpu = cls(device="cpu", **kw)
        with simulated_gpu():
            gpu = cls(device="gpu", **kw)
            gpu_sym, gpu_xy, gpu_diag = gpu(X), gpu(X, Y), gpu.diag(X)
        assert _relative_error(gpu_sym, cpu(X)) < 1e-12
        assert _relative_error(gpu_xy, cpu(X, Y)) < 1e-12
        assert _relative_error(gpu_diag, cpu.diag(X)) < 1e-12
        np.testing.assert_array_equal(gpu_sym, gpu_sym.T)


@simulator
def test_simulated_gpu_convolutional_images_and_estimators():
    from skinfinite.kernels import ConvNNGP
    rng = np.random.default_rng(4)
    X = rng.normal(size=(3, 4 * 3 * 2))
    kw = dict(image_shape=(4, 3), filter_size=(2, 3), depth=2, dilation=1,
              padding="same", strides=(2, 1), activation="erf")
    with simulated_gpu():
        gpu = ConvNNGP(device="gpu", **kw)(X)
        model = NNGPRegressor(architecture=ConvNNGP(**kw), depth=2,
                              activation="erf", device="gpu").fit(X, X[:, 0])
        pred_gpu = model.predict(X)
    assert _relative_error(gpu, ConvNNGP(device="cpu", **kw)(X)) < 1e-12
    ref = NNGPRegressor(architecture=ConvNNGP(**kw), depth=2,
                        activation="erf", device="cpu").fit(X, X[:, 0])
    assert np.allclose(pred_gpu, ref.predict(X), rtol=1e-10)


@simulator
@pytest.mark.parametrize("kw", CONV_CASES, ids=str)
def test_simulated_gpu_convolutional_gradients_match_cpu(kw, monkeypatch):
    from skinfinite.kernels import ConvNNGP, ConvNTK
    launches = _count_tangent_launches(monkeypatch)
    rng = np.random.default_rng(5)
    # tiny: the simulator runs every thread of every block in Python
    X = [rng.normal(size=(t, 2)) for t in (7, 9, 8)]
    for cls in (ConvNNGP, ConvNTK):
        K_cpu, dK_cpu = cls(device="cpu", **kw)(X, eval_gradient=True)
        with simulated_gpu():
            K, dK = cls(device="gpu", **kw)(X, eval_gradient=True)
        assert _relative_error(K, K_cpu) < 1e-12
        assert _relative_error(dK, dK_cpu) < 1e-12
        assert dK.shape == (3, 3, 2)
    assert launches == [6, 6]     # the upper triangle, on the device


def _count_tangent_launches(monkeypatch):
    # the pairs each device launch computes: the gradients must run there
    from skinfinite.engine.cuda import convolutional as cuda_engine
    launches = []
    run = cuda_engine.pair_tangents

    def counted(backend, x, spec, rows, *args):
        launches.append(rows.shape[0])
        return run(backend, x, spec, rows, *args)

    monkeypatch.setattr(cuda_engine, "pair_tangents", counted)
    return launches


@simulator
def test_simulated_gpu_convolutional_image_gradients_match_cpu(monkeypatch):
    from skinfinite.kernels import ConvNTK
    launches = _count_tangent_launches(monkeypatch)
    rng = np.random.default_rng(6)
    X = rng.normal(size=(2, 4 * 3 * 2))
    kw = dict(image_shape=(4, 3), filter_size=(2, 3), depth=2, dilation=1,
              padding="same", strides=(2, 1), activation="erf")
    K_cpu, dK_cpu = ConvNTK(device="cpu", **kw)(X, eval_gradient=True)
    with simulated_gpu():
        K, dK = ConvNTK(device="gpu", **kw)(X, eval_gradient=True)
    assert _relative_error(K, K_cpu) < 1e-12
    assert _relative_error(dK, dK_cpu) < 1e-12
    assert launches == [3]
