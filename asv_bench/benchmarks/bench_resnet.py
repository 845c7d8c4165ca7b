"""Residual-network kernels: the infinite-depth flow against finite depth."""
import numpy as np

import skinfinite
from skinfinite.kernels import ResNetNTK


class ResNetGram:
    """NTK Gram of 4000 ReLU inputs (d=50): depth 64 against depth=inf."""

    params = [64, float("inf")]
    param_names = ["depth"]
    number = 1
    repeat = (1, 5, 60.0)
    warmup_time = 0.0
    timeout = 600.0

    def setup(self, depth):
        skinfinite.set_config(show_progress=False)
        self.X = np.random.default_rng(0).standard_normal((4000, 50))
        self.kernel = ResNetNTK(depth=depth if np.isfinite(depth) else np.inf)
        self.kernel(self.X[:64])  # compile

    def time_resnet_ntk_relu(self, depth):
        self.kernel(self.X)

    def peakmem_resnet_ntk_relu(self, depth):
        self.kernel(self.X)
