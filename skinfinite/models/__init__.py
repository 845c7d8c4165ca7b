"""scikit-learn estimators built on infinite-width kernels."""
from .nngp import NNGPClassifier, NNGPRegressor
from .ntk import NTKClassifier, NTKRegressor

__all__ = ["NTKRegressor", "NTKClassifier", "NNGPRegressor", "NNGPClassifier"]
