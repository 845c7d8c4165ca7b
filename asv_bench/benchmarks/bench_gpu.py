"""Benchmarks of the GPU engine (skipped where no GPU is available).

The workloads of ``asv_bench/gpu/check_gpu.py``: the fused NNGP+NTK Gram of
a depth-10 ReLU network against the per-layer CuPy implementation, a large
float32 Gram kept on the device, ``NTKRegressor`` fit + predict and the
signature-kernel Gram.
"""
import numpy as np

import skinfinite
from skinfinite.kernels import nngp_ntk
from skinfinite.models import NTKRegressor

from .bench_fully_connected import DEPTH, per_layer_relu_nngp_ntk


def _require_gpu():
    if not skinfinite.gpu_available():
        raise NotImplementedError("no GPU")        # asv skips the benchmark
    import cupy
    return cupy


class _GPU:
    number = 1
    repeat = (3, 10, 60.0)
    warmup_time = 0.0
    timeout = 900.0


class GramGPU(_GPU):
    params = ([20000], ["float64", "float32"])
    param_names = ["n", "dtype"]

    def setup(self, n, dtype):
        self.cupy = _require_gpu()
        rng = np.random.default_rng(0)
        self.X = self.cupy.asarray(rng.standard_normal((n, 100)))
        nngp_ntk(self.X[:64], depth=DEPTH, dtype=dtype)   # compile

    def time_fused_nngp_ntk(self, n, dtype):
        nngp_ntk(self.X, depth=DEPTH, dtype=dtype)
        self.cupy.cuda.Device().synchronize()

    def time_per_layer_cupy(self, n, dtype):
        per_layer_relu_nngp_ntk(self.X.astype(dtype), DEPTH, xp=self.cupy)
        self.cupy.cuda.Device().synchronize()


class LargeGramGPU(_GPU):
    params = [50000]
    param_names = ["n"]

    def setup(self, n):
        self.cupy = _require_gpu()
        rng = np.random.default_rng(1)
        self.X = self.cupy.asarray(rng.standard_normal((n, 100)))
        nngp_ntk(self.X[:64], depth=DEPTH, dtype="float32")

    def time_nngp_ntk_float32_on_device(self, n):
        nngp_ntk(self.X, depth=DEPTH, dtype="float32")
        self.cupy.cuda.Device().synchronize()


class RegressorGPU(_GPU):
    params = [30000]
    param_names = ["n_train"]

    def setup(self, n_train):
        _require_gpu()
        rng = np.random.default_rng(2)
        X = rng.standard_normal((n_train + 5000, 20))
        y = np.sin(X[:, 0]) + 0.1 * rng.standard_normal(len(X))
        self.train = X[:n_train], y[:n_train]
        self.test = X[n_train:]
        NTKRegressor(depth=3, alpha=1e-2, device="gpu").fit(X[:100], y[:100])

    def time_ntk_regressor_fit_predict(self, n_train):
        model = NTKRegressor(depth=3, alpha=1e-2, device="gpu")
        model.fit(*self.train).predict(self.test)


class SignatureGPU(_GPU):
    """Signature Gram of 1000 random walks of length 100 in 5 channels."""

    params = [1000]
    param_names = ["n_paths"]

    def setup(self, n_paths):
        _require_gpu()
        from skinfinite.kernels import SignatureKernel
        rng = np.random.default_rng(3)
        self.X = (rng.standard_normal((n_paths, 100, 5)) * 0.1).cumsum(axis=1)
        self.kernel = SignatureKernel(device="gpu")
        self.kernel(self.X[:4])

    def time_signature_gram_linear(self, n_paths):
        self.kernel(self.X)
