"""Convolutional NNGP/NTK kernels: Grams of sequences and images."""
import numpy as np

import skinfinite
from skinfinite.kernels import ConvNNGP, ConvNTK


def _series(n, length, channels=1):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, length, channels)).cumsum(axis=1)
    return (X - X.mean(1, keepdims=True)) / X.std(1, keepdims=True)


class RandomConvolutionGram:
    """One-layer kernel of random dilated convolutions (the infinite-width
    limit of ROCKET-style features): GunPoint's size (50 train and 150 test
    series of length 150, dilations 1..16), train Gram and test block."""

    params = (["ppv", "average"],)
    param_names = ["readout"]
    number = 1
    repeat = (1, 5, 60.0)
    warmup_time = 0.0
    timeout = 600.0

    def setup(self, readout):
        skinfinite.set_config(show_progress=False)
        self.train, self.test = _series(50, 150), _series(150, 150)
        self.kernel = ConvNNGP(readout=readout)
        self.kernel(self.train[:4])  # compile

    def time_gunpoint_size(self, readout):
        self.kernel(self.train)
        self.kernel(self.test, self.train)


class LongSeriesGram:
    """Gram of 200 series of length 500 with 8 dilations (1, 2, ..., 128,
    "same" padding so that every dilation has windows), PPV readout."""

    number = 1
    repeat = (1, 1, 1200.0)
    warmup_time = 0.0
    timeout = 1800.0

    def setup(self):
        skinfinite.set_config(show_progress=False)
        self.X = _series(200, 500)
        self.kernel = ConvNNGP(readout="ppv", padding="same",
                               dilation=[1, 2, 4, 8, 16, 32, 64, 128])
        self.kernel(self.X[:2])

    def time_gram(self):
        self.kernel(self.X)


class TimeSeriesKernelGram:
    """The kernel the time-series estimators select among (filter 9,
    dilations 1, 2, ..., 32 on length 500, "same" padding, ppv readout, the
    kernel on the series plus the kernel on their first differences): Gram
    of 100 series of length 500."""

    number = 1
    repeat = (1, 3, 600.0)
    warmup_time = 0.0
    timeout = 1800.0

    def setup(self):
        from sklearn.base import clone
        from sklearn.gaussian_process.kernels import Sum

        from skinfinite.models._path_selection import DifferencedKernel
        skinfinite.set_config(show_progress=False)
        self.X = _series(100, 500)
        conv = ConvNNGP(readout="ppv", padding="same")
        self.kernel = Sum(conv, DifferencedKernel(clone(conv)))
        self.kernel(self.X[:3])

    def time_gram(self):
        self.kernel(self.X)


class ImageGram:
    """CNN-GP and CNTK of depth 3 (3x3 filters, "same" padding, global
    average pooling) on 8x8 digits-sized images."""

    params = (["nngp", "ntk"],)
    param_names = ["output"]
    number = 1
    repeat = (1, 3, 60.0)
    warmup_time = 0.0
    timeout = 600.0

    def setup(self, output):
        skinfinite.set_config(show_progress=False)
        self.X = np.random.default_rng(0).random((100, 64))
        cls = ConvNNGP if output == "nngp" else ConvNTK
        self.kernel = cls(image_shape=(8, 8), filter_size=3, dilation=1,
                          depth=3, padding="same")
        self.kernel(self.X[:2])

    def time_gram(self, output):
        self.kernel(self.X)


class ConvolutionalGradient:
    """Gram and its gradients (log weight and bias variances), depth 2."""

    number = 1
    repeat = (1, 3, 60.0)
    warmup_time = 0.0
    timeout = 600.0

    def setup(self):
        skinfinite.set_config(show_progress=False)
        self.X = _series(40, 100, 2)
        self.kernel = ConvNTK(depth=2, filter_size=3)
        self.kernel(self.X[:2], eval_gradient=True)

    def time_gram_with_gradient(self):
        self.kernel(self.X, eval_gradient=True)


class MnistSizeImageGram:
    """CNN-GP of depth 3 (3x3 filters, "same" padding, global average
    pooling) on 28x28 images: 40 of them (the Gram of 1000 costs
    (1000 / 40) ** 2 = 625 times as much; ``asv_bench/peers/compare_conv.py``
    times it against neural-tangents)."""

    number = 1
    repeat = (1, 3, 300.0)
    warmup_time = 0.0
    timeout = 900.0

    def setup(self):
        skinfinite.set_config(show_progress=False)
        self.X = np.random.default_rng(0).random((40, 28 * 28))
        self.kernel = ConvNNGP(image_shape=(28, 28), filter_size=3,
                               dilation=1, depth=3, padding="same")
        self.kernel(self.X[:2])

    def time_gram(self):
        self.kernel(self.X)


class StridedCircularGram:
    """Strides and circular padding (the general window sums): depth 2,
    filter 4, stride 2, 100 series of length 200."""

    number = 1
    repeat = (1, 3, 60.0)
    warmup_time = 0.0
    timeout = 600.0

    def setup(self):
        skinfinite.set_config(show_progress=False)
        self.X = _series(100, 200)
        self.kernel = ConvNTK(depth=2, filter_size=4, strides=2,
                              padding="circular", dilation=[1, 2, 4])
        self.kernel(self.X[:2])

    def time_gram(self):
        self.kernel(self.X)
