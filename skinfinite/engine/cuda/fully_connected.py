"""CUDA kernels of the fully-connected recursion (one thread per pair).

They are compiled by numba-cuda from the layer maps and scalar duals the CPU
kernels use, so both devices evaluate the same formulas.  Imported only when
a GPU (or numba's CUDA simulator) is used.
"""
from numba import cuda

from ...activations.families import coefficient_row
from ..tiles import compiled_gpu_kernels, device_function, gpu_store_functions
from ...recursions.fully_connected import (_hidden_layer_nb, _input_layer_nb,
                                           make_layer_gradients,
                                           make_pair_gradients)

store_pair, store_pair_gradients = gpu_store_functions()


def _make_values(dual, per_input):
    # One thread per pair (columns along x, so that writes coalesce); the
    # layer maps and duals are the CPU kernels' own, compiled for the device.
    # Closed-form duals ignore their coefficient rows: a scalar stands in
    # (per_input is a compile-time constant, so the branch is pruned).
    @cuda.jit
    def fused(g, x0, y0, dx, dy, sx, sy, cx, cy, param, sw2, sb2, std, upper,
              out_k, out_t, want_k, want_t, limit, bad):
        j, i = cuda.grid(2)
        n, m = g.shape
        if i >= n or j >= m or (upper and j < i):
            return
        x, y = x0 + i, y0 + j
        k, t = _input_layer_nb(g[i, j], sw2, sb2, std)
        for layer in range(dx.shape[0]):
            ax = cx[layer, x] if per_input else 0.0
            ay = cy[layer, y] if per_input else 0.0
            v, vd = dual(dx[layer, x], k, dy[layer, y],
                         sx[layer, x] * sy[layer, y], ax, ay, param)
            k, t = _hidden_layer_nb(v, vd, t, sw2, sb2, std)
        if store_pair(out_k, out_t, i, j, upper, k, t, want_k, want_t,
                      limit):
            cuda.atomic.add(bad, 0, 1)
    return fused


def _make_gradients(partials, per_input):
    row = device_function(coefficient_row(per_input))
    layers = device_function(make_layer_gradients(partials, row))
    pair = device_function(make_pair_gradients(partials, row, layers))

    @cuda.jit
    def fused(g, x0, y0, dx, dy, sx, sy, cx, cy, param, sw2, sb2, std, upper,
              out_k, out_t, out_dk, out_dt):
        j, i = cuda.grid(2)
        n, m = g.shape
        if i >= n or j >= m or (upper and j < i):
            return
        k, t, dk_w, dk_b, dt_w, dt_b = pair(
            g[i, j], x0 + i, y0 + j, dx, dy, sx, sy, cx, cy, param, sw2, sb2,
            std)
        store_pair_gradients(out_k, out_t, out_dk, out_dt, i, j, upper, k, t,
                             dk_w, dk_b, dt_w, dt_b)
    return fused


_CACHE = {}


def gpu_kernels(activation):
    """The (values, gradients) CUDA kernels for an activation."""
    return compiled_gpu_kernels(activation, _make_values, _make_gradients,
                                _CACHE)
