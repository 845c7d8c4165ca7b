"""Drivers that evaluate the recursions on a backend: the CPU driver and the
CUDA kernels."""
