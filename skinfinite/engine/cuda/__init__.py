"""CUDA kernels of the recursions (numba.cuda), used when the backend is a GPU."""
