"""Where computations run: the CPU (NumPy) or a CUDA GPU (CuPy + numba-cuda).

A *backend* bundles an array module and the few linear-algebra and memory
operations the engine and the solvers need, so that the same code runs on
both.  The GPU backend needs the optional ``gpu`` extra; nothing here imports
CuPy or numba-cuda until a GPU is asked for.

Inputs decide the output's kind ("array in, array out"): NumPy in gives NumPy
out, CuPy in gives CuPy out (no round trip to the host) and torch tensors come
back as torch tensors on their own device, exchanged through DLPack.
"""
import functools
from contextlib import contextmanager

import numpy as np
from scipy import linalg as sp_linalg

from .config import config_context, get_config
from .install import install_hint
from .threads import one_blas_thread
from .validation import (check_choice, check_device_matrix,
                          check_same_features, check_vector_input)

DEVICES = ("auto", "cpu", "gpu")
INSTALL_HINT = (install_hint("gpu")
                + " on a machine with an NVIDIA GPU and its driver")


class DeviceUnavailableError(RuntimeError, ImportError):
    """``device="gpu"`` was requested where no usable GPU is available."""


#: Order above which the host Cholesky factorisation runs on one BLAS thread.
SERIAL_CHOLESKY_FROM = 15000


# ------------------------------------------------------------------ backends
class CPUBackend:
    """NumPy and SciPy on the host."""

    name = "cpu"
    xp = np
    oom_errors = (MemoryError,)

    def asarray(self, a, dtype=None):
        return np.ascontiguousarray(a, dtype=dtype)

    def to_host(self, a):
        return a

    def empty(self, shape, dtype):
        return np.empty(shape, dtype)

    def free_memory(self):
        return float("inf")

    def release_memory(self):
        pass

    def cho_factor(self, A):
        """``(L, True)`` with ``L`` lower triangular (upper part arbitrary);
        raises ``LinAlgError`` if ``A`` is not positive definite."""
        if A.shape[0] > SERIAL_CHOLESKY_FROM:
            # OpenBLAS 0.3.30's threaded dpotrf (bundled with NumPy and SciPy
            # wheels) segfaults from about n = 16000 on with two threads;
            # one thread factors those sizes correctly.
            with one_blas_thread():
                return sp_linalg.cho_factor(A, lower=True, check_finite=False)
        return sp_linalg.cho_factor(A, lower=True, check_finite=False)

    def cho_solve(self, factor, B):
        return sp_linalg.cho_solve(factor, B, check_finite=False)

    def solve_triangular(self, L, B, trans=0):
        return sp_linalg.solve_triangular(L, B, lower=True, trans=trans,
                                          check_finite=False)

    def eigh(self, A):
        return sp_linalg.eigh(A, check_finite=False)


class CuPyBackend(CPUBackend):
    """CuPy arrays and cuSOLVER; the fused kernels are compiled by numba-cuda."""

    name = "gpu"

    def __init__(self, cupy):
        self.xp = cupy
        self.oom_errors = (cupy.cuda.memory.OutOfMemoryError, MemoryError)

    def __reduce__(self):
        # a module does not pickle: the unpickling process finds its own
        return (gpu_backend, ())

    def asarray(self, a, dtype=None):
        return self.xp.ascontiguousarray(self.xp.asarray(a, dtype=dtype))

    def to_host(self, a):
        return self.xp.asnumpy(a)

    def empty(self, shape, dtype):
        return self.xp.empty(shape, dtype)

    def free_memory(self):
        free, _ = self.xp.cuda.runtime.memGetInfo()
        pool = self.xp.get_default_memory_pool()
        # blocks cached by CuPy's pool are free for our allocations too
        return free + pool.free_bytes()

    def release_memory(self):
        self.xp.get_default_memory_pool().free_all_blocks()

    def cho_factor(self, A):
        import cupyx
        with cupyx.errstate(linalg="raise"):
            L = self.xp.linalg.cholesky(A)
        # cuSOLVER reports failure through ``info``; NaNs catch what slips by
        if not bool(self.xp.isfinite(L.diagonal()).all()):
            raise np.linalg.LinAlgError("matrix is not positive definite")
        return L, True

    def cho_solve(self, factor, B):
        L = factor[0]
        y = self.solve_triangular(L, self.asarray(B, np.float64))
        return self.solve_triangular(L, y, trans=1)

    def solve_triangular(self, L, B, trans=0):
        from cupyx.scipy.linalg import solve_triangular
        return solve_triangular(L, B, lower=True, trans=trans)

    def eigh(self, A):
        return self.xp.linalg.eigh(A)


class SimulatedGPUBackend(CPUBackend):
    """The GPU code path on the CPU: NumPy arrays, numba's CUDA simulator.

    For testing the GPU engine where there is no GPU: the CUDA kernels run
    (slowly) in numba's simulator, which must be enabled before
    ``numba.cuda`` is first imported (``NUMBA_ENABLE_CUDASIM=1``).
    ``memory_limit`` (bytes) makes larger single allocations raise
    ``MemoryError``, like a device running out of memory.
    """

    name = "gpu"

    def __init__(self, memory_limit=None):
        if not cuda_simulator_enabled():
            raise RuntimeError("Set NUMBA_ENABLE_CUDASIM=1 before numba.cuda "
                               "is imported to simulate the GPU.")
        self.memory_limit = memory_limit

    def empty(self, shape, dtype):
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        if self.memory_limit is not None and nbytes > self.memory_limit:
            raise MemoryError(f"simulated device: {nbytes} bytes requested, "
                              f"limit {self.memory_limit}")
        return np.empty(shape, dtype)


def cuda_simulator_enabled():
    """Whether numba runs CUDA kernels in its CPU simulator."""
    from numba import config
    return bool(config.ENABLE_CUDASIM)


# ------------------------------------------------------- device resolution
@contextmanager
def simulated_gpu(memory_limit=None):
    """Run ``device="gpu"`` work on :class:`SimulatedGPUBackend` meanwhile.

    The same as ``config_context(gpu_backend=SimulatedGPUBackend(...))``:
    the setting is process-wide and travels with the estimators and
    kernels pickled to worker processes.
    """
    backend = SimulatedGPUBackend(memory_limit)
    with config_context(gpu_backend=backend):
        yield backend


@functools.lru_cache(maxsize=1)
def _cupy_backend():
    """The CuPy backend, or the reason why there is none (a string)."""
    try:
        import cupy
    except ImportError:
        return "CuPy is not installed"
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "CuPy sees no CUDA device"
    except Exception as exc:  # driver missing, no device, ...
        return f"CuPy cannot reach a CUDA device ({exc})"
    try:
        from numba import cuda
        if not cuda.is_available():
            return "numba-cuda sees no CUDA device"
    except ImportError:
        return "numba-cuda is not installed"
    return CuPyBackend(cupy)


def gpu_available():
    """Whether ``device="auto"`` would run on a GPU.

    Examples
    --------
    >>> from skinfinite import gpu_available
    >>> isinstance(gpu_available(), bool)
    True
    """
    return (get_config()["gpu_backend"] is not None
            or not isinstance(_cupy_backend(), str))


def gpu_backend():
    """The GPU backend, or a :class:`DeviceUnavailableError` saying why not.

    The configuration's ``gpu_backend`` where one is set, else CuPy's.
    """
    configured = get_config()["gpu_backend"]
    if configured is not None:
        return configured
    backend = _cupy_backend()
    if isinstance(backend, str):
        raise DeviceUnavailableError(
            f'device="gpu" was requested but {backend}; {INSTALL_HINT}, or '
            'use device="cpu".')
    return backend


def check_device(device):
    """Validate a ``device`` parameter."""
    return check_choice(device, "device", DEVICES)


def resolve_backend(device, *arrays):
    """The backend that runs a computation on ``arrays``.

    ``device="auto"`` defers to ``config_context(device=...)``; where that is
    "auto" too, arrays already on a GPU keep the work there, and otherwise the
    GPU is used when one is available.
    """
    device = check_device(device)
    if device == "auto":
        device = get_config()["device"]
    if device == "cpu":
        return CPUBackend()
    if device == "gpu":
        return gpu_backend()
    on_device = any(array_kind(a) in ("cupy", "torch-cuda") for a in arrays
                    if a is not None)
    return gpu_backend() if on_device or gpu_available() else CPUBackend()


TORCH_DEVICES = DEVICES + ("cuda",)


def backend_unless(device, missing, *arrays):
    """:func:`resolve_backend`, unless the GPU lacks what the work needs.

    ``missing`` names what the GPU path cannot do for this work (None when
    it can): then "auto" falls back to the CPU and an explicit "gpu" (as
    the parameter or the configuration) is a ``NotImplementedError``.
    """
    backend = resolve_backend(device, *arrays)
    if backend.name != "gpu" or missing is None:
        return backend
    if "gpu" in (device, get_config()["device"]):
        raise NotImplementedError(f"There is no GPU {missing} yet; use "
                                  'device="cpu".')
    return CPUBackend()


def torch_device(torch, device):
    """The ``torch.device`` of an estimator trained with torch.

    Takes the values of :data:`DEVICES` ("gpu" means CUDA; "auto" follows
    the configuration, then uses CUDA when torch sees it) and "cuda".
    """
    check_choice(device, "device", TORCH_DEVICES)
    if device == "auto":
        device = get_config()["device"]
        if device == "auto":
            device = "gpu" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DeviceUnavailableError(
            f"device={device!r} was requested but torch sees no CUDA device; "
            "install a CUDA build of torch on a machine with an NVIDIA GPU, "
            'or use device="cpu".')
    return torch.device("cuda")


# ---------------------------------------------------------- array exchange
def array_kind(a):
    """"numpy", "cupy", "torch-cpu", "torch-cuda" or "other" (array-likes)."""
    module = type(a).__module__.split(".")[0]
    if module == "cupy":
        return "cupy"
    if module == "torch":
        return "torch-cuda" if a.device.type == "cuda" else "torch-cpu"
    return "numpy" if isinstance(a, np.ndarray) else "other"


def like_input(result, reference):
    """Return ``result`` (an array of some backend) as ``reference``'s kind."""
    kind = array_kind(reference)
    on_host = isinstance(result, np.ndarray)
    if kind == "cupy":
        if on_host:
            import cupy
            return cupy.asarray(result)
        return result
    if kind.startswith("torch"):
        import torch
        if on_host:
            return torch.from_numpy(np.ascontiguousarray(result)).to(
                reference.device)
        return torch.from_dlpack(result).to(reference.device)
    return result if on_host else result.get()


def backend_of(a):
    """The backend an array belongs to (CPU for NumPy, GPU for CuPy)."""
    return CPUBackend() if isinstance(a, np.ndarray) else gpu_backend()



def on_host(a):
    """CuPy arrays and tensors as NumPy arrays; anything else unchanged."""
    kind = array_kind(a)
    if kind == "cupy":
        return a.get()
    if kind.startswith("torch"):
        return np.from_dlpack(a.detach().cpu())
    return a


def is_device_array(a):
    """Whether ``a`` lives in GPU memory (CuPy array or CUDA tensor)."""
    return array_kind(a) in ("cupy", "torch-cuda")


def check_inputs(X, Y, backend):
    """Validated float64 ``X`` and ``Y`` (or None) as arrays of ``backend``.

    Host inputs are checked with scikit-learn's ``check_array``; device inputs
    are checked on the device, so a CuPy array never visits the host unless
    the computation runs there.
    """
    X = _check_one(X, "X", backend)
    if Y is not None:
        Y = _check_one(Y, "Y", backend)
        check_same_features(X, Y)
    return X, Y


def _check_one(A, name, backend):
    kind = array_kind(A)
    if kind in ("cupy", "torch-cuda"):
        import cupy
        A = cupy.from_dlpack(A.detach()) if kind == "torch-cuda" else A
        A = check_device_matrix(A, cupy, name)
        return A if backend.name == "gpu" else A.get()
    if kind == "torch-cpu":
        A = np.from_dlpack(A.detach())
    return backend.asarray(check_vector_input(A, name), np.float64)
