"""The GPyTorch bridge: torch recursion against the compiled engine.

A marginal-likelihood step needs the Gram matrix and its gradient with
respect to the hyperparameters; the torch recursion also gives gradients
with respect to the inputs and runs on GPUs, the engine is fused CPU code.
"""
import numpy as np

import skinfinite
from skinfinite.kernels import NNGP

try:
    import torch

    from skinfinite.gp import to_gpytorch
except ImportError:  # the gp extra is optional
    torch = None


class BridgeGram:
    """NNGP Gram of 2000 ReLU inputs (d=10, depth 3) and its gradient."""

    params = ["engine", "torch"]
    param_names = ["backend"]
    number = 1
    repeat = (1, 5, 60.0)
    warmup_time = 0.0
    timeout = 600.0

    def setup(self, backend):
        if torch is None:
            raise NotImplementedError("torch and gpytorch are not installed")
        skinfinite.set_config(show_progress=False)
        X = np.random.default_rng(0).standard_normal((2000, 10))
        self.X = X
        self.x = torch.tensor(X)
        self.kernel = NNGP(depth=3)
        self.gk = to_gpytorch(self.kernel, backend=backend)
        self.w = torch.ones(2000, 2000, dtype=torch.float64)
        self.time_gram_with_gradient(backend)  # compile / warm up

    def time_gram(self, backend):
        with torch.no_grad():
            self.gk(self.x).to_dense()

    def time_gram_with_gradient(self, backend):
        (self.gk(self.x).to_dense() * self.w).sum().backward()

    def time_sklearn_kernel_with_gradient(self, backend):
        # the same quantities through the scikit-learn kernel interface
        self.kernel(self.X, eval_gradient=True)
