"""Benchmarks of deep kernel machines (need torch).

``SparseEpoch`` times one training epoch of the sparse machine on the
reference workload: 50000 rows of 10 standard normal features, 100 inducing
points, 3 learned layers, minibatches of 256, float64, on the CPU (the
initialisation at the NNGP is included: one pass over the data).
``ConvolutionalEpoch`` times one epoch of the convolutional machine on the
1797 ``load_digits`` images (8 x 8), 3 x 3 filters.
"""
import numpy as np

import skinfinite  # before torch: sets OMP_WAIT_POLICY for both thread pools

N, D, N_INDUCING, DEPTH = 50000, 10, 100, 4  # 3 learned layers


def _data(n=N, d=D, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X, np.sin(X[:, 0]) + 0.1 * rng.standard_normal(n)


class SparseEpoch:
    params = ["relu", "erf", "tanh"]
    param_names = ["activation"]
    timeout = 600

    def setup(self, activation):
        try:
            import torch  # noqa: F401
        except ImportError:
            raise NotImplementedError("torch is not installed")
        skinfinite.set_config(show_progress=False)
        self.X, self.y = _data()

    def time_one_epoch(self, activation):
        from skinfinite.models import DeepKernelMachineRegressor

        DeepKernelMachineRegressor(
            depth=DEPTH, n_inducing=N_INDUCING, activation=activation,
            max_iter=1, batch_size=256, device="cpu",
            random_state=0).fit(self.X, self.y)


class FullFit:
    """400 rows, 20 epochs: the full machine (every training point inducing)
    and 20 inducing points under the exact output layer."""

    params = [0, 20]
    param_names = ["n_inducing"]

    def setup(self, n_inducing):
        try:
            import torch  # noqa: F401
        except ImportError:
            raise NotImplementedError("torch is not installed")
        skinfinite.set_config(show_progress=False)
        self.X, self.y = _data(n=400)

    def time_fit(self, n_inducing):
        from skinfinite.models import DeepKernelMachineRegressor

        DeepKernelMachineRegressor(n_inducing=n_inducing or None,
                                   output_layer="exact", max_iter=20,
                                   device="cpu",
                                   random_state=0).fit(self.X, self.y)


class ConvolutionalEpoch:
    """One epoch on the digits as 8 x 8 images: 64 or 128 inducing points,
    depth 2 or 3 (1 or 2 learned convolutional layers), minibatches of 128."""

    params = ([64, 128], [2, 3])
    param_names = ["n_inducing", "depth"]
    timeout = 300

    def setup(self, n_inducing, depth):
        try:
            import torch  # noqa: F401
        except ImportError:
            raise NotImplementedError("torch is not installed")
        from sklearn.datasets import load_digits

        skinfinite.set_config(show_progress=False)
        X, self.y = load_digits(return_X_y=True)
        self.X = X / 16.0

    def time_one_epoch(self, n_inducing, depth):
        from skinfinite.models import DeepKernelMachineClassifier

        DeepKernelMachineClassifier(
            image_shape=(8, 8), n_inducing=n_inducing, depth=depth,
            likelihood="gaussian", max_iter=1, batch_size=128, device="cpu",
            random_state=0).fit(self.X, self.y)
