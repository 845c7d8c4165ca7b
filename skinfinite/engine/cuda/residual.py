"""CUDA kernels of the residual recursion and its flow (one thread per pair).

The Runge-Kutta stages of :mod:`skinfinite.recursions.residual` (Euler steps at finite
depth, Dormand-Prince at infinite depth), compiled by numba-cuda from the
same layer maps and duals; each thread keeps its stage derivatives in local
memory.  Imported only when a GPU (or numba's CUDA simulator) is used.
"""
from numba import cuda, float64

from ...activations.families import coefficient_row
from ..tiles import compiled_gpu_kernels, device_function, gpu_store_functions
from ...recursions.fully_connected import _hidden_layer_nb
from ...recursions.residual import make_pair_gradients

MAX_STAGES = 16  # the Dormand-Prince tableau has 12

store_pair, store_pair_gradients = gpu_store_functions()


def _make_values(dual, per_input):
    @cuda.jit
    def fused(g, x0, y0, dx, dy, sx, sy, cx, cy, param, sw2, sb2, A, B, H,
              n_layers, upper, out_k, out_t, want_k, want_t, limit, bad):
        j, i = cuda.grid(2)
        n, m = g.shape
        if i >= n or j >= m or (upper and j < i):
            return
        x, y = x0 + i, y0 + j
        n_stages = B.shape[0]
        fk = cuda.local.array(MAX_STAGES, float64)
        ft = cuda.local.array(MAX_STAGES, float64)
        k = sw2 * g[i, j] + sb2
        t = k
        for step in range(H.shape[0]):
            h = H[step]
            for s in range(n_stages):
                kin, tin = k, t
                for q in range(s):
                    kin += h * A[s, q] * fk[q]
                    tin += h * A[s, q] * ft[q]
                base = (step * n_stages + s) * n_layers
                for layer in range(n_layers):
                    idx = base + layer
                    ax = cx[idx, x] if per_input else 0.0
                    ay = cy[idx, y] if per_input else 0.0
                    v, vd = dual(dx[idx, x], kin, dy[idx, y],
                                 sx[idx, x] * sy[idx, y], ax, ay, param)
                    kin, tin = _hidden_layer_nb(v, vd, tin, sw2, sb2, 0.0)
                fk[s] = kin
                ft[s] = tin
            for s in range(n_stages):
                k += h * B[s] * fk[s]
                t += h * B[s] * ft[s]
        if store_pair(out_k, out_t, i, j, upper, k, t, want_k, want_t,
                      limit):
            cuda.atomic.add(bad, 0, 1)
    return fused


def _make_gradients(partials, per_input):
    row = device_function(coefficient_row(per_input))
    pair = device_function(make_pair_gradients(partials, row))

    @cuda.jit
    def fused(g, x0, y0, dx, dy, sx, sy, cx, cy, param, sw2, sb2, A, B, H,
              n_layers, upper, out_k, out_t, out_dk, out_dt):
        j, i = cuda.grid(2)
        n, m = g.shape
        if i >= n or j >= m or (upper and j < i):
            return
        f = cuda.local.array((6, MAX_STAGES), float64)
        state = cuda.local.array(6, float64)
        z = cuda.local.array(6, float64)
        pair(g[i, j], x0 + i, y0 + j, dx, dy, sx, sy, cx, cy, param, sw2, sb2,
             A, B, H, n_layers, state, z, f)
        store_pair_gradients(out_k, out_t, out_dk, out_dt, i, j, upper,
                             state[0], state[1], state[2], state[3],
                             state[4], state[5])
    return fused


_CACHE = {}


def gpu_kernels(activation):
    """The (values, gradients) CUDA kernels for an activation."""
    return compiled_gpu_kernels(activation, _make_values, _make_gradients,
                                _CACHE)
