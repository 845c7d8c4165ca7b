"""Drivers that evaluate the recursions on a backend: the CPU driver and the
CUDA kernels, found through :mod:`.registry`."""
from . import cpu  # noqa: F401  (registers the architectures' kernels)
