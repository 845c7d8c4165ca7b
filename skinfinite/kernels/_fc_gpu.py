"""CUDA kernels of the fully-connected recursion (one thread per pair).

They are compiled by numba-cuda from the layer maps and scalar duals the CPU
kernels use, so both devices evaluate the same formulas.  Imported only when
a GPU (or numba's CUDA simulator) is used.
"""
from numba import cuda

from ._engine import compiled_gpu_kernels
from ._fc_recursion import (_hidden_layer_nb, _hidden_tangents_nb,
                            _input_layer_nb, _input_tangents_nb)


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
        if want_k:
            out_k[i, j] = k
            if upper:
                out_k[j, i] = k
        if want_t:
            out_t[i, j] = t
            if upper:
                out_t[j, i] = t
        # NaN fails every comparison; limit is the output dtype's maximum
        if (want_k and not abs(k) <= limit) or (want_t and not abs(t) <= limit):
            cuda.atomic.add(bad, 0, 1)
    return fused


def _make_gradients(partials, per_input):
    @cuda.jit
    def fused(g, x0, y0, dx, dy, sx, sy, cx, cy, param, sw2, sb2, std, upper,
              out_k, out_t, out_dk, out_dt):
        j, i = cuda.grid(2)
        n, m = g.shape
        if i >= n or j >= m or (upper and j < i):
            return
        x, y = x0 + i, y0 + j
        gij = g[i, j]
        k, t = _input_layer_nb(gij, sw2, sb2, std)
        dk_w, dk_b, dt_w, dt_b = _input_tangents_nb(gij, sw2, sb2, std)
        for layer in range(dx.shape[0]):
            ax = cx[layer, x] if per_input else 0.0
            ay = cy[layer, y] if per_input else 0.0
            p = partials(dx[layer, 0, x], k, dy[layer, 0, y],
                         sx[layer, x] * sy[layer, y], ax, ay, param)
            nk, nt = _hidden_layer_nb(p[0], p[1], t, sw2, sb2, std)
            dk_w, dk_b, dt_w, dt_b = _hidden_tangents_nb(
                p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7],
                dx[layer, 1, x], dk_w, dy[layer, 1, y],
                dx[layer, 2, x], dk_b, dy[layer, 2, y],
                t, dt_w, dt_b, sw2, sb2, std)
            k, t = nk, nt
        for mirrored in range(2 if upper else 1):
            a, b = (j, i) if mirrored else (i, j)
            out_k[a, b] = k
            out_t[a, b] = t
            out_dk[a, b, 0] = dk_w
            out_dk[a, b, 1] = dk_b
            out_dt[a, b, 0] = dt_w
            out_dt[a, b, 1] = dt_b
    return fused


_CACHE = {}


def gpu_kernels(activation):
    """The (values, gradients) CUDA kernels for an activation."""
    return compiled_gpu_kernels(activation, _make_values, _make_gradients,
                                _CACHE)
