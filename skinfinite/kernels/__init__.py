"""Kernels of infinitely wide networks, as scikit-learn ``Kernel`` objects."""
from .convolutional import ConvNNGP, ConvNTK
from .fully_connected import NNGP, NTK, nngp_ntk
from .registry import register_architecture, registered_architectures
from .resnet import ResNetNNGP, ResNetNTK
from .signature import NeuralSignatureKernel, SignatureKernel

__all__ = ["NNGP", "NTK", "nngp_ntk", "ConvNNGP", "ConvNTK", "ResNetNNGP", "ResNetNTK",
           "SignatureKernel", "NeuralSignatureKernel",
           "register_architecture", "registered_architectures"]
