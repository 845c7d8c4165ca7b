"""Skip the doctests of modules whose optional dependencies are missing.

Without CuPy there is no GPU to test on: the GPU engine's tests then run its
CUDA kernels in numba's CUDA simulator, which must be chosen before numba is
first imported.
"""
import importlib.util
import os

if importlib.util.find_spec("cupy") is None:
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

collect_ignore_glob = []
if importlib.util.find_spec("torch") is None:
    collect_ignore_glob += ["skinfinite/_torch_duals.py", "skinfinite/_dkm.py",
                            "skinfinite/models/dkm.py"]
if importlib.util.find_spec("gpytorch") is None:
    collect_ignore_glob += ["skinfinite/gp.py", "skinfinite/models/gp.py"]
