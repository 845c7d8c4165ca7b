"""skinfinite: infinite-width and infinite-depth neural networks as
scikit-learn kernel machines."""
import os as _os

# The compiled kernels (OpenMP threads) alternate with BLAS calls (their own
# threads); with OpenMP's default busy-waiting the two pools fight over the
# cores and small solves become ~15x slower.  A user's own setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from ._core.config import config_context, get_config, set_config
from ._core.backend import DeviceUnavailableError, gpu_available
from . import activations, datasets, empirical, kernels, linalg, models, theory
from .kernels import NNGP, NTK, ResNetNNGP, ResNetNTK
from .kernels import ConvNNGP, ConvNTK
from .kernels import NeuralSignatureKernel, SignatureKernel
from ._core.sequences import flatten_sequences
from .models import NNGPClassifier, NNGPRegressor, NTKClassifier, NTKRegressor
from .models import InfiniteDepthNTKClassifier
from .models import SignatureKernelClassifier, SignatureKernelRegressor
from .models import DeepKernelMachineClassifier, DeepKernelMachineRegressor
from .models import (NNGPClassifierCV, NNGPRegressorCV, NTKClassifierCV,
                     NTKRegressorCV)
from .models import GPRegressor, SVGPClassifier, SVGPRegressor
from .models import SelectionWarning

from ._core.version import __version__

# The GPyTorch bridge and the torch duals need torch, which is optional: they
# are imported on first access, so ``import skinfinite`` never imports torch.
_TORCH_NAMES = {
    "to_gpytorch": "bridge", "SkinfiniteKernel": "bridge",
    "ExactGPModel": "bridge", "SVGPModel": "bridge",
    "register_torch_recursion": "bridge", "torch_recursion_for": "bridge",
    "expected_product": "duals", "expected_derivative_product": "duals",
    "duals": "duals",
}


def __getattr__(name):
    module = _TORCH_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'skinfinite' has no attribute {name!r}")
    import importlib
    return getattr(importlib.import_module(f"._torch.{module}", __name__), name)


def __dir__():
    return sorted(set(globals()) | set(_TORCH_NAMES))

__all__ = ["config_context", "get_config", "set_config", "gpu_available",
           "DeviceUnavailableError", "activations", "datasets", "empirical", "linalg", "theory",
           "kernels", "models", "NNGP", "NTK", "ConvNNGP", "ConvNTK", "ResNetNNGP", "ResNetNTK",
           "SignatureKernel", "NeuralSignatureKernel", "flatten_sequences",
           "NTKRegressor",
           "NTKClassifier", "NNGPRegressor", "NNGPClassifier",
           "InfiniteDepthNTKClassifier", "SignatureKernelClassifier",
           "SignatureKernelRegressor", "DeepKernelMachineRegressor",
           "DeepKernelMachineClassifier", "NTKRegressorCV", "NTKClassifierCV",
           "NNGPRegressorCV", "NNGPClassifierCV", "GPRegressor", "SVGPRegressor",
           "SVGPClassifier", "SelectionWarning", *_TORCH_NAMES, "__version__"]
