"""scikit-learn estimators built on infinite-width kernels."""
from .gp import GPRegressor, SVGPClassifier, SVGPRegressor
from .nngp import NNGPClassifier, NNGPRegressor
from .ntk import NTKClassifier, NTKRegressor

__all__ = ["NTKRegressor", "NTKClassifier", "NNGPRegressor", "NNGPClassifier",
           "GPRegressor", "SVGPRegressor", "SVGPClassifier"]
