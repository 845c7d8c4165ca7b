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

    from skinfinite._torch.bridge import to_gpytorch
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


class SVGPDefaultFit:
    """SVGPRegressor() with its defaults on 5000 rows of Friedman #1.

    The default fit: exact marginal likelihood on 1000 rows, the
    closed-form variational distribution, 5 epochs of minibatches of 1024,
    the closed form again.  The accuracy at 20000 rows is measured by
    ``asv_bench/peers/compare_svgp.py``.
    """

    number = 1
    repeat = (1, 3, 120.0)
    warmup_time = 0.0
    timeout = 900.0

    def setup(self):
        if torch is None:
            raise NotImplementedError("torch and gpytorch are not installed")
        from sklearn.datasets import make_friedman1
        skinfinite.set_config(show_progress=False)
        X, self.y = make_friedman1(5000, noise=1.0, random_state=0)
        self.X = (X - X.mean(0)) / X.std(0)

    def time_default_fit(self):
        from skinfinite.models import SVGPRegressor
        SVGPRegressor(random_state=0).fit(self.X, self.y)
