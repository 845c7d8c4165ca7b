"""CUDA kernels of the residual recursion and its flow (one thread per pair).

The flow of :mod:`skinfinite.recursions.residual` (Euler steps at finite
depth, Dormand-Prince at infinite depth), compiled by numba-cuda from the
branches and the Runge-Kutta scheme the CPU kernels compile, with one lane:
each thread keeps its state and stage slopes in local memory.  Imported only
when a GPU (or numba's CUDA simulator) is used.
"""
from numba import cuda, float64

from ...activations.families import coefficient_row
from ...recursions.residual import gradient_branch, input_state, values_branch
from ...recursions.runge_kutta import COMPILED_STEPS, compiled_flow
from ..tiles import compiled_gpu_kernels, device_function, gpu_store_functions

MAX_STAGES = 16  # the Dormand-Prince tableau has 12

store_pair, store_pair_gradients = gpu_store_functions()
start_pair = device_function(input_state)


def _device_flow(make_branch, dual, per_input):
    """The flow of a branch as a device function (Python throughout in the
    simulator, where ``dual`` is Python too)."""
    row = device_function(coefficient_row(per_input))
    branch = device_function(make_branch(dual, row))
    steps = tuple(device_function(step) for step in COMPILED_STEPS)
    return device_function(compiled_flow(branch, steps))


def _make_values(dual, per_input):
    flow = _device_flow(values_branch, dual, per_input)

    @cuda.jit
    def fused(g, x0, y0, dx, dy, sx, sy, cx, cy, param, sw2, sb2, A, B, H,
              n_layers, upper, out_k, out_t, want_k, want_t, limit, bad):
        j, i = cuda.grid(2)
        n, m = g.shape
        if i >= n or j >= m or (upper and j < i):
            return
        y = cuda.local.array((2, 1), float64)
        z = cuda.local.array((2, 1), float64)
        f = cuda.local.array((MAX_STAGES, 2, 1), float64)
        start_pair(y, 0, g[i, j], sw2, sb2)
        flow(y, z, f, A, B, H, 1, (dx, dy, sx, sy, cx, cy, param, sw2, sb2,
                                   n_layers, x0 + i, y0 + j))
        if store_pair(out_k, out_t, i, j, upper, y[0, 0], y[1, 0], want_k,
                      want_t, limit):
            cuda.atomic.add(bad, 0, 1)
    return fused


def _make_gradients(partials, per_input):
    flow = _device_flow(gradient_branch, partials, per_input)

    @cuda.jit
    def fused(g, x0, y0, dx, dy, sx, sy, cx, cy, param, sw2, sb2, A, B, H,
              n_layers, upper, out_k, out_t, out_dk, out_dt):
        j, i = cuda.grid(2)
        n, m = g.shape
        if i >= n or j >= m or (upper and j < i):
            return
        y = cuda.local.array((6, 1), float64)
        z = cuda.local.array((6, 1), float64)
        f = cuda.local.array((MAX_STAGES, 6, 1), float64)
        start_pair(y, 0, g[i, j], sw2, sb2)
        flow(y, z, f, A, B, H, 1, (dx, dy, sx, sy, cx, cy, param, sw2, sb2,
                                   n_layers, x0 + i, y0 + j))
        store_pair_gradients(out_k, out_t, out_dk, out_dt, i, j, upper,
                             y[0, 0], y[1, 0], y[2, 0], y[3, 0], y[4, 0],
                             y[5, 0])
    return fused


_CACHE = {}


def gpu_kernels(activation):
    """The (values, gradients) CUDA kernels for an activation."""
    return compiled_gpu_kernels(activation, _make_values, _make_gradients,
                                _CACHE)
