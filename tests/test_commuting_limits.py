"""Width and depth limits of 1/sqrt(depth)-scaled ResNets commute.

Width first: the infinite-width kernel at depth L converges to the flow as
1/L (tests/test_resnet.py).  Depth first: very deep networks of finite width
approach the same flow kernel as their width grows.  Both orders reach
``ResNetNNGP(depth=np.inf)``.
"""
import numpy as np
import pytest

from skinfinite.empirical.networks import ResNetNetwork
from skinfinite.kernels import ResNetNNGP


def _error(X, width, depth, seeds, reference):
    errs = [np.abs(ResNetNetwork(depth=depth, width=width, activation="relu",
                                 random_state=seed).nngp(X) - reference).max()
            for seed in seeds]
    return np.mean(errs) / np.abs(reference).max()


@pytest.fixture
def inputs(rng):
    X = rng.normal(size=(5, 3))
    return X, ResNetNNGP(depth=np.inf)(X)


def test_depth_first_then_width(inputs):
    X, limit = inputs
    # a deep network at growing width approaches the infinite-depth kernel
    errs = [_error(X, width, 128, range(4), limit) for width in (32, 128, 512)]
    assert errs[0] > errs[1] > errs[2], errs
    assert errs[2] < 0.1


def test_width_first_then_depth(inputs):
    X, limit = inputs
    gaps = [np.abs(ResNetNNGP(depth=L)(X) - limit).max() for L in (8, 32, 128)]
    assert gaps[0] > 3 * gaps[1] > 9 * gaps[2]


@pytest.mark.slow
def test_the_double_limit_does_not_depend_on_the_order(inputs):
    X, limit = inputs
    widths, depths = (64, 256, 1024), (8, 64, 512)
    table = np.array([[_error(X, w, L, range(6), limit) for L in depths]
                      for w in widths])
    # along every row (width fixed) and every column (depth fixed) the error
    # shrinks towards the same kernel
    assert np.all(table[-1] < table[0])
    assert np.all(table[:, -1] <= table[:, 0] * 1.2)
    assert table[-1, -1] < 0.1
