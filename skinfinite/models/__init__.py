"""scikit-learn estimators built on infinite-width kernels."""
from .infinite_depth import InfiniteDepthNTKClassifier
from .nngp import NNGPClassifier, NNGPRegressor
from .ntk import NTKClassifier, NTKRegressor

__all__ = ["NTKRegressor", "NTKClassifier", "NNGPRegressor", "NNGPClassifier",
           "InfiniteDepthNTKClassifier"]
