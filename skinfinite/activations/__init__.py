"""Activation functions and their dual kernel maps.

One :class:`Activation` owns an activation's function, its derivative and the
maps that turn a layer's input covariance into its output covariance (the
duals); the compiled engines, CPU and GPU, read them through the activation's
family (:mod:`.families`).
"""
from .definitions import (ACTIVATION_NAMES, TRUNCATION_TOL, Abs, Activation, Cos, Erf,
                          GELU, Identity, LeakyReLU, QuadratureActivation, ReLU, Sigmoid,
                          Sin, Softplus, Swish, Tanh, get_activation)
from .definitions import __all__
