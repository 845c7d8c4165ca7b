"""Kernels of infinitely wide networks, as scikit-learn ``Kernel`` objects."""
from .convolutional import ConvNNGP, ConvNTK
from .fully_connected import NNGP, NTK, nngp_ntk
from .layered import discover_architectures, register_architecture
from .registry import registered_architectures
from .resnet import ResNetNNGP, ResNetNTK
from .signature import NeuralSignatureKernel, SignatureKernel

__all__ = ["NNGP", "NTK", "nngp_ntk", "ConvNNGP", "ConvNTK", "ResNetNNGP", "ResNetNTK",
           "SignatureKernel", "NeuralSignatureKernel",
           "register_architecture", "registered_architectures"]

# the layered architectures of skinfinite.recursions, each one module
discover_architectures()
