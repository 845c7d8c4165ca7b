"""The GPU engine on a real CUDA device against the CPU engine.

Skipped where CuPy or a GPU is missing (the simulator tests in
``test_gpu_engine.py`` cover the same code paths there).  Thresholds: float64
relative error below 1e-10, float32 below 1e-4, on fresh random inputs.
"""
import numpy as np
import pytest

from skinfinite._core.backend import cuda_simulator_enabled, gpu_available
from skinfinite.kernels import NNGP, NTK, nngp_ntk
from skinfinite.models import NNGPRegressor, NTKClassifier, NTKRegressor

pytestmark = pytest.mark.skipif(
    cuda_simulator_enabled() or not gpu_available(),
    reason="needs CuPy, numba-cuda and a CUDA device")

ACTIVATIONS = ["relu", "leaky_relu", "abs", "identity", "erf", "sin", "cos",
               "tanh", "gelu", "swish", "softplus", "sigmoid"]
TOLERANCE = {"float64": 1e-10, "float32": 1e-4}


@pytest.fixture
def data():
    seed = np.random.SeedSequence().entropy % 2**32  # fresh inputs each run
    rng = np.random.default_rng(seed)
    return rng.normal(size=(300, 7)), rng.normal(size=(170, 7)), seed


def _relative_error(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - b))
                 / np.max(np.abs(b)))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gram_and_gradients_match_cpu(activation, dtype, data):
    X, Y, seed = data
    params = dict(depth=4, activation=activation, weight_variance=1.7,
                  bias_variance=0.2, dtype=dtype)
    tol = TOLERANCE[dtype]
    for cls in (NNGP, NTK):
        cpu, gpu = cls(device="cpu", **params), cls(device="gpu", **params)
        assert _relative_error(gpu(X, Y), cpu(X, Y)) < tol, seed
        K_gpu, G_gpu = gpu(X, eval_gradient=True)
        K_cpu, G_cpu = cpu(X, eval_gradient=True)
        assert _relative_error(K_gpu, K_cpu) < tol, seed
        assert _relative_error(G_gpu, G_cpu) < tol, seed
        assert K_gpu.dtype == np.dtype(dtype)


def test_cupy_in_cupy_out_and_torch_through_dlpack(data):
    import cupy
    X, Y, _ = data
    Xd, Yd = cupy.asarray(X), cupy.asarray(Y)
    K, T = nngp_ntk(Xd, Yd, depth=3, device="auto")
    assert isinstance(K, cupy.ndarray) and isinstance(T, cupy.ndarray)
    K_cpu, T_cpu = nngp_ntk(X, Y, depth=3, device="cpu")
    assert _relative_error(T.get(), T_cpu) < 1e-10
    torch = pytest.importorskip("torch")
    Xt = torch.as_tensor(X, device="cuda")
    out = NTK(depth=3)(Xt)
    assert isinstance(out, torch.Tensor) and out.device.type == "cuda"
    assert _relative_error(out.cpu().numpy(), NTK(depth=3,
                                                  device="cpu")(X)) < 1e-10
    # mixed host and device inputs: computed on the device, output like X
    mixed = NTK(depth=3)(Xd, Y)
    assert isinstance(mixed, cupy.ndarray)


def test_bad_device_input_is_rejected_on_the_device():
    import cupy
    X = cupy.ones((5, 3))
    X[2, 1] = cupy.nan
    with pytest.raises(ValueError, match="NaN"):
        NTK(device="gpu")(X)
    with pytest.raises(ValueError, match="2D"):
        NTK(device="gpu")(cupy.ones(4))


def test_induced_out_of_memory_recovers(data):
    import cupy
    X, Y, seed = data
    expected = NTK(depth=3, device="cpu")(X, Y)
    pool = cupy.get_default_memory_pool()
    pool.free_all_blocks()
    used = pool.used_bytes()
    # room for the inputs and outputs but not for one whole tile of inner
    # products, so the first tile fails and is split
    pool.set_limit(size=used + 4 * X.nbytes + 3 * 8 * X.shape[0] * Y.shape[0])
    try:
        out = NTK(depth=3, device="gpu")(cupy.asarray(X), cupy.asarray(Y))
    finally:
        pool.set_limit(size=0)
    assert _relative_error(out.get(), expected) < 1e-10, seed


@pytest.mark.parametrize("model", [
    NTKRegressor(depth=3, alpha=1e-4),
    NTKRegressor(depth=3, training_time=10.0),
    NNGPRegressor(depth=3, alpha=1e-3),
    NTKRegressor(depth=3, alpha=1e-3, solver="nystroem", n_inducing=100)])
def test_estimators_end_to_end(model, data):
    X, Xt, seed = data
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] ** 2
    cpu = model.set_params(device="cpu").fit(X, y)
    mean_cpu = cpu.predict(Xt)
    gpu = model.set_params(device="gpu").fit(X, y)
    assert gpu.device_ == "gpu"
    np.testing.assert_allclose(gpu.predict(Xt), mean_cpu, rtol=1e-6,
                               atol=1e-8, err_msg=str(seed))
    if model.solver != "nystroem":
        std_gpu = gpu.predict(Xt, return_std=True)[1]
        std_cpu = cpu.predict(Xt, return_std=True)[1]
        np.testing.assert_allclose(std_gpu, std_cpu, rtol=1e-5, atol=1e-7)


def test_classifier_on_gpu(data):
    X, Xt, _ = data
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    gpu = NTKClassifier(depth=3, alpha=1e-3, device="gpu").fit(X, y)
    cpu = NTKClassifier(depth=3, alpha=1e-3, device="cpu").fit(X, y)
    np.testing.assert_array_equal(gpu.predict(Xt), cpu.predict(Xt))


@pytest.mark.parametrize("static_kernel", ["linear", "rbf"])
def test_signature_solver_matches_cpu(static_kernel, data):
    import cupy
    from skinfinite.kernels import SignatureKernel
    _, _, seed = data
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(40, 100, 5)) * 0.1
    Y = [rng.normal(size=(length, 5)) * 0.1 for length in (30, 100, 64)]
    params = dict(static_kernel=static_kernel, dyadic_order=1)
    cpu = SignatureKernel(device="cpu", **params)
    gpu = SignatureKernel(device="gpu", **params)
    assert _relative_error(gpu(X), cpu(X)) < 1e-10, seed
    assert _relative_error(gpu(X, Y), cpu(X, Y)) < 1e-10, seed
    out = gpu(cupy.asarray(X))
    assert isinstance(out, cupy.ndarray)


def test_signature_solver_long_paths():
    from skinfinite.kernels import SignatureKernel
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 2000, 3)) * 0.02
    K_gpu = SignatureKernel(device="gpu")(X)
    K_cpu = SignatureKernel(device="cpu")(X)
    assert _relative_error(K_gpu, K_cpu) < 1e-10


def test_gpytorch_estimators_on_cuda(data):
    torch = pytest.importorskip("torch")
    pytest.importorskip("gpytorch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA device")
    from skinfinite.models import GPRegressor, SVGPRegressor
    X, Xt, seed = data
    y = np.sin(X[:, 0]) + 0.1 * X[:, 1]
    for model in (GPRegressor(max_iter=20, random_state=0),
                  SVGPRegressor(n_inducing=64, max_iter=2, random_state=0)):
        cpu = model.set_params(device="cpu").fit(X, y).predict(Xt)
        gpu = model.set_params(device="gpu").fit(X, y).predict(Xt)
        np.testing.assert_allclose(gpu, cpu, rtol=1e-4, atol=1e-4,
                                   err_msg=str(seed))
