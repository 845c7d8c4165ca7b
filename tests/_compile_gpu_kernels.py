"""Compile every CUDA kernel (fully-connected and residual recursions,
signature PDE, convolutional values and gradients) to PTX for an H100
(sm_90), no GPU needed.

Run as a script with numba-cuda and NVVM/NVRTC installed; exits non-zero and
prints the failures if any kernel does not compile, or exits with
``CANNOT_COMPILE`` if this machine cannot compile CUDA code at all (no
numba-cuda, NVVM, NVRTC or whatever else compiling the first real kernel
needs, such as the CUDA driver library).  Used by tests/test_gpu_engine.py in
a subprocess, because a process runs numba's CUDA target either for real or
in its simulator, never both.
"""
import re
import sys

#: exit status: the toolchain is missing, nothing was tested
CANNOT_COMPILE = 77

# Errors that mean a missing or unusable CUDA toolchain, not a kernel that
# fails to compile.  numba wraps errors raised while typing a call (where
# device functions are compiled) into a TypingError that quotes them.
_TOOLCHAIN = re.compile(
    r"CudaSupportError|CudaDriverError|NvvmSupportError|NvrtcSupportError|"
    r"CCSupportError|libcuda|libnvvm|libdevice|cuInit|CUDA driver|"
    r"[Dd]river library|NVVM (cannot|not)|NVRTC (cannot|not)")

try:
    from numba import cuda, types
except ImportError as exc:  # no numba.cuda: numba-cuda is not installed
    print(f"numba's CUDA target is missing: {exc}")
    sys.exit(CANNOT_COMPILE)

from skinfinite.activations.definitions import get_activation
from skinfinite.engine.cuda import fully_connected as _fc_gpu, goursat as _goursat_gpu, residual as _residual_gpu

ACTIVATIONS = ["relu", "leaky_relu", "abs", "identity", "erf", "sin", "cos",
               "tanh", "gelu", "swish", "softplus", "sigmoid"]


def signatures(out_dtype, residual=False):
    f64, i64, b1 = types.float64, types.int64, types.boolean
    mat = types.Array(f64, 2, "A")
    out = types.Array(out_dtype, 2, "A")
    out3 = types.Array(out_dtype, 3, "A")
    rows = types.Array(f64, 2, "C")
    coefficients = types.Array(f64, 3, "C")
    stages3 = types.Array(f64, 3, "C")
    inputs = (mat, i64, i64)
    scalars = (f64, f64, f64, f64)
    if residual:   # param, sw2, sb2, tableau A, B, steps H, layers per branch
        scalars = (f64, f64, f64, types.Array(f64, 2, "C"),
                   types.Array(f64, 1, "C"), types.Array(f64, 1, "C"), i64)
    scalars += (b1,)
    values = (inputs + (rows, rows, rows, rows, coefficients, coefficients)
              + scalars + (out, out, b1, b1, f64,
                           types.Array(types.int32, 1, "C")))
    gradients = (inputs + (stages3, stages3, rows, rows, coefficients,
                           coefficients) + scalars + (out, out, out3, out3))
    return values, gradients


def compile_goursat():
    f64, i64 = types.float64, types.int64
    paths = types.Array(f64, 3, "C")
    index = types.Array(i64, 1, "C")
    sig = (paths, index, paths, index, index, index, i64, i64, i64, i64, f64,
           f64,
           types.Array(f64, 3, "C"), types.Array(f64, 1, "C"))
    try:
        ptx, _ = cuda.compile_ptx(_goursat_gpu._solver().py_func, sig,
                                  cc=(9, 0))
        assert ".target sm_90" in ptx
    except Exception as exc:
        return [f"signature solver: {exc}"]
    return []


#: one activation of each dual family the convolutional kernels specialise
#: on: piecewise linear, erf, trigonometric, series (per-input rows)
CONV_ACTIVATIONS = ["relu", "erf", "sin", "gelu"]


def compile_convolutional():
    """The values and tangents kernels of the convolutional recursion, typed
    from the arguments their launches build (host arrays stand in)."""
    import numpy as np
    from numba import typeof
    from skinfinite._core.backend import CPUBackend
    from skinfinite.engine.cuda import convolutional as conv_gpu
    from skinfinite.kernels import ConvNTK
    from skinfinite.kernels.convolutional import _prepared
    rng = np.random.default_rng(0)
    X = [rng.normal(size=(t, 2)) for t in (7, 9)]
    rows = np.array([0, 0, 1], dtype=np.int64)
    cols = np.array([0, 1, 1], dtype=np.int64)
    failures = []
    for name in CONV_ACTIVATIONS:
        x, _, spec = ConvNTK(activation=name, filter_size=3,
                             dilation=[1, 2])._inputs(X, None)
        prep = _prepared(x, spec, True)
        launches = [
            ("values", conv_gpu.values_launch(CPUBackend(), x, x, spec, rows,
                                              cols, prep, prep, True)),
            ("tangents", conv_gpu.tangents_launch(
                CPUBackend(), x, spec, rows, cols, prep[0], prep[1], prep[3],
                prep[2]))]
        for what, (kernel, args) in launches:
            try:
                ptx, _ = cuda.compile_ptx(
                    kernel.py_func, tuple(typeof(a) for a in args),
                    cc=(9, 0))
                assert ".target sm_90" in ptx
            except Exception as exc:
                failures.append(f"convolutional {what} {name}: {exc}")
    return failures


def _toolchain_missing(exc):
    if isinstance(exc, (ImportError, OSError)):
        return True
    names = {type(e).__name__ for e in (exc, exc.__cause__, exc.__context__)
             if e is not None}
    return bool(_TOOLCHAIN.search(" ".join(names) + " " + str(exc)))


def probe():
    """Compile the first real kernel (CPU-compiled duals inlined as device
    functions, as in every kernel); the reason if the toolchain cannot."""
    kernel = _fc_gpu.gpu_kernels(get_activation("relu"))[0]
    try:
        cuda.compile_ptx(kernel.py_func, signatures(types.float64)[0],
                         cc=(9, 0))
    except Exception as exc:
        if _toolchain_missing(exc):
            return f"{type(exc).__name__}: {exc}"
    # a kernel that fails to compile for another reason is reported by main
    return None


def main():
    reason = probe()
    if reason is not None:
        print(f"cannot compile CUDA kernels here: {reason}"[:2000])
        return CANNOT_COMPILE
    failures = []
    for name in ACTIVATIONS:
        activation = get_activation(name)
        for module, residual in ((_fc_gpu, False), (_residual_gpu, True)):
            kernels = module.gpu_kernels(activation)
            for dtype in (types.float64, types.float32):
                for kernel, sig in zip(kernels, signatures(dtype, residual)):
                    try:
                        ptx, _ = cuda.compile_ptx(kernel.py_func, sig,
                                                  cc=(9, 0))
                        assert ".target sm_90" in ptx
                    except Exception as exc:  # report every failure at once
                        failures.append(f"{module.__name__} {name} {dtype}: "
                                        f"{exc}")
    failures += compile_goursat()
    failures += compile_convolutional()
    print("\n".join(failures)
          or f"compiled {len(ACTIVATIONS) * 8 + 1 + 2 * len(CONV_ACTIVATIONS)}"
             " kernels")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
