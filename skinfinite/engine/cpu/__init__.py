"""Compiled CPU tile kernels, one module per architecture; importing a module
registers its architecture (see :mod:`skinfinite.engine.registry`)."""
from . import convolutional, fully_connected, residual  # noqa: F401
