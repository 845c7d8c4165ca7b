"""Benchmarks of the infinite-depth NTK limit classifier.

Prediction of :class:`~skinfinite.models.InfiniteDepthNTKClassifier` on
``n`` test inputs with ``n`` training inputs (standard normal, dimension 10,
two classes), erf activation: power weights, the exact depth-limit weights
(the Koenigs iteration of the dual, a few hundred dual evaluations per pair),
and for scale an :class:`~skinfinite.models.NTKClassifier` of depth 100 set
up on the sphere (fit and predict), which the limit classifier replaces.
"""
import numpy as np

from skinfinite.models import InfiniteDepthNTKClassifier, NTKClassifier

D = 10
ERF_SECOND_MOMENT = 2 / np.pi * np.arcsin(2 / 3)   # E[erf(z)^2], z ~ N(0, 1)


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((2 * n, D))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    y = (X[:, 0] > 0).astype(int)
    return X[:n], y[:n], X[n:]


class LimitClassifier:
    params = ([500, 2000], ["power", "depth_limit"])
    param_names = ["n", "weighting"]
    timeout = 300

    def setup(self, n, weighting):
        self.X, self.y, self.Z = _data(n)
        self.clf = InfiniteDepthNTKClassifier(
            "erf", weighting=weighting).fit(self.X, self.y)
        self.clf.predict(self.Z[:2])

    def time_predict(self, n, weighting):
        self.clf.predict(self.Z)


class DeepNTKClassifier:
    params = [500, 2000]
    param_names = ["n"]
    timeout = 300

    def setup(self, n):
        self.X, self.y, self.Z = _data(n)
        sw2 = 1 / ERF_SECOND_MOMENT
        scale = np.sqrt(D / sw2)      # K0 = sw2 |x|^2 / d = 1
        self.X, self.Z = self.X * scale, self.Z * scale
        self.clf = NTKClassifier(depth=100, activation="erf",
                                 weight_variance=sw2, bias_variance=0.0)
        self.clf.fit(self.X[:5], self.y[:5])

    def time_fit_predict(self, n):
        self.clf.fit(self.X, self.y).predict(self.Z)
