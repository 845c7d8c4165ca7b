"""scikit-learn estimators built on infinite-width kernels."""
from .dkm import DeepKernelMachineClassifier, DeepKernelMachineRegressor
from .nngp import NNGPClassifier, NNGPRegressor
from .ntk import NTKClassifier, NTKRegressor

__all__ = ["NTKRegressor", "NTKClassifier", "NNGPRegressor", "NNGPClassifier",
           "DeepKernelMachineRegressor", "DeepKernelMachineClassifier"]
