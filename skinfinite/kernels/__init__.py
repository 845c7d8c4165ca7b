"""Kernels of infinitely wide networks, as scikit-learn ``Kernel`` objects."""
from .fully_connected import NNGP, NTK, nngp_ntk

__all__ = ["NNGP", "NTK", "nngp_ntk"]
