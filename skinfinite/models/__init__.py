"""scikit-learn estimators built on infinite-width kernels."""
from .dkm import DeepKernelMachineClassifier, DeepKernelMachineRegressor
from .gp import GPRegressor, SVGPClassifier, SVGPRegressor
from .infinite_depth import InfiniteDepthNTKClassifier
from .nngp import NNGPClassifier, NNGPRegressor
from .ntk import NTKClassifier, NTKRegressor
from .selection import (NNGPClassifierCV, NNGPRegressorCV, NTKClassifierCV,
                        NTKRegressorCV)
from ._path_selection import SelectionWarning
from .signature import SignatureKernelClassifier, SignatureKernelRegressor

__all__ = ["NTKRegressor", "NTKClassifier", "NNGPRegressor", "NNGPClassifier",
           "InfiniteDepthNTKClassifier", "SignatureKernelClassifier",
           "SignatureKernelRegressor", "DeepKernelMachineRegressor",
           "DeepKernelMachineClassifier", "GPRegressor", "SVGPRegressor",
           "SVGPClassifier", "NTKRegressorCV", "NTKClassifierCV",
           "NNGPRegressorCV", "NNGPClassifierCV", "SelectionWarning"]
