"""Benchmarks of the fully-connected NNGP/NTK kernels and estimators.

The reference workload is the computation of both Gram matrices (NNGP and
NTK) of a ReLU network with 10 hidden layers, ``weight_variance=2``,
``bias_variance=0.1``, on ``n`` standard normal inputs of dimension 50, in
float64.  ``GramFullyConnected`` times skinfinite on it and ``PerLayerNumpy``
times a plain per-layer NumPy implementation of the same recursion, so that
the ratio of the two shows what the fused engine gains.

Every ``setup`` compiles the kernels on a tiny input first, so that numba's
one-off compilation is not part of any measurement.
"""
import numpy as np

import skinfinite
from skinfinite.kernels import NNGP, NTK, nngp_ntk
from skinfinite.models import NNGPClassifier, NTKRegressor

SEED = 0
D = 50
DEPTH = 10
SW2 = 2.0
SB2 = 0.1


def _inputs(n, d=D, seed=SEED):
    return np.random.default_rng(seed).standard_normal((n, d))


def per_layer_relu_nngp_ntk(X, depth, sw2=SW2, sb2=SB2, xp=np):
    """NNGP and NTK of a ReLU network, one whole-matrix operation at a time.

    The straightforward NumPy way: every step of every layer creates full
    ``n x n`` temporaries (correlations, angles, the two arc-cosine duals and
    the new kernels). It computes the same kernels as
    ``nngp_ntk(X, depth=depth, activation="relu", ...)`` in the NTK
    parametrisation, up to rounding.  ``xp`` is the array module (NumPy,
    or CuPy for the same computation on a GPU).
    """
    X = xp.asarray(X, dtype=xp.float64)
    nngp = X @ X.T
    nngp *= sw2 / X.shape[1]
    nngp += sb2
    ntk = nngp.copy()
    for _ in range(depth):
        scale = xp.sqrt(xp.diagonal(nngp))
        outer = scale[:, None] * scale[None, :]
        rho = xp.clip(nngp / outer, -1.0, 1.0)
        # each input with itself: exactly 1 (arccos is ill-conditioned there)
        xp.fill_diagonal(rho, 1.0)
        angle = xp.arccos(rho)
        dual = outer * (xp.sin(angle) + (np.pi - angle) * rho) / (2.0 * np.pi)
        dual_derivative = (np.pi - angle) / (2.0 * np.pi)
        nngp = sw2 * dual + sb2
        ntk = nngp + sw2 * dual_derivative * ntk
    return nngp, ntk


class _Slow:
    """Settings for benchmarks that take seconds per call."""

    number = 1
    repeat = (1, 5, 60.0)
    warmup_time = 0.0
    timeout = 900.0


class GramFullyConnected(_Slow):
    """skinfinite's fused engine on the reference workload, and variants."""

    params = [2000, 8000]
    param_names = ["n"]

    def setup(self, n):
        skinfinite.set_config(show_progress=False)
        self.X = _inputs(n)
        small = self.X[:64]
        nngp_ntk(small, depth=DEPTH, activation="relu",
                 weight_variance=SW2, bias_variance=SB2)
        NTK(depth=DEPTH, activation="erf")(small)

    def time_nngp_ntk_relu_depth10(self, n):
        nngp_ntk(self.X, depth=DEPTH, activation="relu",
                 weight_variance=SW2, bias_variance=SB2)

    def peakmem_nngp_ntk_relu_depth10(self, n):
        nngp_ntk(self.X, depth=DEPTH, activation="relu",
                 weight_variance=SW2, bias_variance=SB2)

    def time_ntk_erf(self, n):
        NTK(depth=DEPTH, activation="erf", weight_variance=SW2,
            bias_variance=SB2)(self.X)


class GramHermiteSeries(_Slow):
    """An activation without closed form (tanh, Hermite series), smaller n."""

    params = [1000]
    param_names = ["n"]

    def setup(self, n):
        skinfinite.set_config(show_progress=False)
        self.X = _inputs(n)
        NNGP(depth=3, activation="tanh")(self.X[:64])

    def time_tanh_quadrature(self, n):
        NNGP(depth=3, activation="tanh", weight_variance=1.5,
             bias_variance=SB2)(self.X)


class PerLayerNumpy(_Slow):
    """The per-layer NumPy reference on the reference workload."""

    params = [2000, 8000]
    param_names = ["n"]

    def setup(self, n):
        self.X = _inputs(n)

    def time_nngp_ntk_relu_depth10(self, n):
        per_layer_relu_nngp_ntk(self.X, DEPTH)

    def peakmem_nngp_ntk_relu_depth10(self, n):
        per_layer_relu_nngp_ntk(self.X, DEPTH)


class Estimators(_Slow):
    """End-to-end fit and predict of the estimators."""

    def setup(self):
        skinfinite.set_config(show_progress=False)
        rng = np.random.default_rng(SEED)
        X = rng.standard_normal((2500, 20))
        y = np.sin(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2] + 0.1 * rng.standard_normal(2500)
        self.reg_train = X[:2000], y[:2000]
        self.reg_test = X[2000:]

        from sklearn.datasets import load_digits

        digits = load_digits()
        Xd = digits.data / 16.0
        order = rng.permutation(len(Xd))
        train, test = order[:1400], order[1400:]
        self.digits_train = Xd[train], digits.target[train]
        self.digits_test = Xd[test]

        # compile on tiny problems
        NTKRegressor(depth=3, alpha=1e-3).fit(X[:20], y[:20]).predict(
            X[:5], return_std=True)
        NNGPClassifier(depth=3, alpha=1e-3).fit(
            Xd[:40], digits.target[:40]).predict(Xd[:5])

    def time_ntk_regressor_fit_predict_std(self):
        model = NTKRegressor(depth=3, activation="relu", alpha=1e-3)
        model.fit(*self.reg_train)
        model.predict(self.reg_test, return_std=True)

    def time_ntk_regressor_finite_time(self):
        model = NTKRegressor(depth=3, activation="relu", training_time=10.0)
        model.fit(*self.reg_train)
        model.predict(self.reg_test)

    def time_nngp_classifier_digits(self):
        model = NNGPClassifier(depth=3, activation="relu", alpha=1e-2)
        model.fit(*self.digits_train)
        model.predict(self.digits_test)


def _check_reference_agrees(n=200, atol=1e-10):
    """The per-layer reference and skinfinite compute the same kernels."""
    X = _inputs(n)
    K_ref, T_ref = per_layer_relu_nngp_ntk(X, DEPTH)
    K, T = nngp_ntk(X, depth=DEPTH, activation="relu", weight_variance=SW2,
                    bias_variance=SB2)
    scale = max(np.abs(T_ref).max(), 1.0)
    return (np.abs(K - K_ref).max() / scale, np.abs(T - T_ref).max() / scale)


if __name__ == "__main__":
    print("max relative differences (NNGP, NTK):", _check_reference_agrees())
