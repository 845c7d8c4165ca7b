"""Signature kernels: Gram matrices of paths (Goursat PDE on the CPU)."""
import numpy as np

import skinfinite
from skinfinite import NeuralSignatureKernel, SignatureKernel


def _paths(n, length, channels):
    rng = np.random.default_rng(0)
    return (rng.standard_normal((n, length, channels)) * 0.1).cumsum(axis=1)


class SignatureGram:
    """Gram of 200 paths, length 100, 5 channels, float64 (the workload of
    ``asv_bench/peers/compare_signature.py``)."""

    params = (["linear", "rbf"], [0, 2])
    param_names = ["static_kernel", "dyadic_order"]
    number = 1
    repeat = (1, 5, 60.0)
    warmup_time = 0.0
    timeout = 600.0

    def setup(self, static_kernel, dyadic_order):
        skinfinite.set_config(show_progress=False)
        self.X = _paths(200, 100, 5)
        self.kernel = SignatureKernel(static_kernel, dyadic_order=dyadic_order)
        self.kernel(self.X[:8])  # compile

    def time_gram(self, static_kernel, dyadic_order):
        self.kernel(self.X)

    def peakmem_gram(self, static_kernel, dyadic_order):
        self.kernel(self.X)


class SignatureGradient:
    """Gram and its gradients (log scale, log length scale), RBF static."""

    number = 1
    repeat = (1, 5, 60.0)
    warmup_time = 0.0
    timeout = 600.0

    def setup(self):
        skinfinite.set_config(show_progress=False)
        self.X = _paths(100, 50, 3)
        self.kernel = SignatureKernel("rbf")
        self.kernel(self.X[:8], eval_gradient=True)

    def time_gram_with_gradient(self):
        self.kernel(self.X, eval_gradient=True)


class NeuralSignatureGram:
    """Neural signature kernel Gram, 100 paths of length 50, 3 channels."""

    params = ["relu", "erf"]
    param_names = ["activation"]
    number = 1
    repeat = (1, 5, 60.0)
    warmup_time = 0.0
    timeout = 600.0

    def setup(self, activation):
        skinfinite.set_config(show_progress=False)
        self.X = _paths(100, 50, 3)
        self.kernel = NeuralSignatureKernel(activation, weight_variance=2.0,
                                            dyadic_order=1)
        self.kernel(self.X[:8])

    def time_gram(self, activation):
        self.kernel(self.X)

    def peakmem_gram(self, activation):
        self.kernel(self.X)
