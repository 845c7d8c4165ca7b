"""skinfinite: infinite-width and infinite-depth neural networks as
scikit-learn kernel machines."""
import os as _os

# The compiled kernels (OpenMP threads) alternate with BLAS calls (their own
# threads); with OpenMP's default busy-waiting the two pools fight over the
# cores and small solves become ~15x slower.  A user's own setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from ._config import config_context, get_config, set_config
from ._backend import DeviceUnavailableError, gpu_available
from . import activations, kernels, models
from .kernels import NNGP, NTK, ResNetNNGP, ResNetNTK
from .kernels import ConvNNGP, ConvNTK
from .kernels import NeuralSignatureKernel, SignatureKernel
from ._sequences import flatten_sequences
from .models import NNGPClassifier, NNGPRegressor, NTKClassifier, NTKRegressor
from .models import InfiniteDepthNTKClassifier
from .models import SignatureKernelClassifier, SignatureKernelRegressor
from .models import DeepKernelMachineClassifier, DeepKernelMachineRegressor

__version__ = "0.1.0"

__all__ = ["config_context", "get_config", "set_config", "gpu_available",
           "DeviceUnavailableError", "activations",
           "kernels", "models", "NNGP", "NTK", "ConvNNGP", "ConvNTK", "ResNetNNGP", "ResNetNTK",
           "SignatureKernel", "NeuralSignatureKernel", "flatten_sequences",
           "NTKRegressor",
           "NTKClassifier", "NNGPRegressor", "NNGPClassifier",
           "InfiniteDepthNTKClassifier", "SignatureKernelClassifier",
           "SignatureKernelRegressor", "DeepKernelMachineRegressor",
           "DeepKernelMachineClassifier", "__version__"]
