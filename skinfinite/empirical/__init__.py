"""Finite random networks and random features: the objects whose infinite-width
limits the kernels are, used to check the kernels and to approximate them."""
from .networks import (INITIALIZATIONS, ControlledResNetNetwork, ConvolutionalNetwork,
                       FullyConnectedNetwork, ResNetNetwork, draw_weights, empirical_kernels)
from .random_features import (ConvolutionalRandomFeatures, InducingPoints,
                              NeuralRandomFeatures)

__all__ = ["FullyConnectedNetwork", "ResNetNetwork", "ControlledResNetNetwork",
           "ConvolutionalNetwork", "empirical_kernels", "draw_weights", "INITIALIZATIONS",
           "NeuralRandomFeatures", "ConvolutionalRandomFeatures", "InducingPoints"]
