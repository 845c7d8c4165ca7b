"""CUDA solver of the signature kernels' Goursat PDE (linear and RBF modes).

One CUDA block solves one pair of paths by sweeping the anti-diagonals of
the (refined) grid: the cells of an anti-diagonal are independent, so the
block's threads update them together and synchronise before the next one.
Three anti-diagonals per pair are kept in a scratch array in device memory,
so path lengths are not capped by shared memory; pairs are solved in chunks
whose scratch fits the memory budget.  The update, the refinement and the
increment products are those of the CPU solver in
:mod:`skinfinite.recursions.goursat` (both schemes, CAYLEY and TAYLOR).

Imported only when a GPU (or numba's CUDA simulator) is used.
"""
import math

import numpy as np
from numba import cuda, njit

from ..._core.backend import cuda_simulator_enabled
from ...recursions.goursat import CAYLEY, LINEAR

THREADS = 128
# numba's simulator runs every thread as a Python thread: few threads there,
# which also makes each thread sweep several cells of a diagonal
SIMULATOR_THREADS = 4


@njit(inline="always")
def _increment(xp, a, ic, yp, b, jc, mode, factor, gamma):
    """The scaled increment product of coarse cell (ic, jc) of pair (a, b)."""
    total = 0.0
    if mode == LINEAR:
        for c in range(xp.shape[2]):
            total += ((xp[a, ic + 1, c] - xp[a, ic, c])
                      * (yp[b, jc + 1, c] - yp[b, jc, c]))
        return factor * total
    # RBF: second difference of exp(-gamma |x - y|^2) over the cell's corners
    for di in range(2):
        for dj in range(2):
            d2 = 0.0
            for c in range(xp.shape[2]):
                diff = xp[a, ic + di, c] - yp[b, jc + dj, c]
                d2 += diff * diff
            sign = 1.0 if di == dj else -1.0
            total += sign * math.exp(-gamma * d2)
    return factor * total


def _make_solver(increment):
    @cuda.jit
    def solve_pairs(xp, xlen, yp, ylen, rows, cols, first, mode, order,
                    scheme, factor, gamma, scratch, out):
        slot = cuda.blockIdx.x
        pair = first + slot
        if pair >= rows.shape[0]:
            return
        a, b = rows[pair], cols[pair]
        n_i = (xlen[a] - 1) << order        # fine cells along each path
        n_j = (ylen[b] - 1) << order
        refine_sq = 1.0 / ((1 << order) * (1 << order))
        diagonals = scratch[slot]
        for d in range(n_i + n_j + 1):
            now, prev, prev2 = d % 3, (d + 2) % 3, (d + 1) % 3
            i = cuda.threadIdx.x
            while i <= n_i:
                j = d - i
                if 0 <= j <= n_j:
                    if i == 0 or j == 0:
                        value = 1.0
                    else:
                        c = refine_sq * increment(
                            xp, a, (i - 1) >> order, yp, b, (j - 1) >> order,
                            mode, factor, gamma)
                        if scheme == CAYLEY:
                            ca = 1.0 + 0.5 * c / (1.0 - 0.25 * c)
                            cb = 1.0
                        else:
                            c2 = c * c / 12.0
                            ca = 1.0 + 0.5 * c + c2
                            cb = 1.0 - c2
                        # k[i, j-1] and k[i-1, j] lie on diagonal d-1, at
                        # positions i and i-1; k[i-1, j-1] on d-2 at i-1
                        value = ((diagonals[prev, i]
                                  + diagonals[prev, i - 1]) * ca
                                 - diagonals[prev2, i - 1] * cb)
                    diagonals[now, i] = value
                i += cuda.blockDim.x
            cuda.syncthreads()
        if cuda.threadIdx.x == 0:
            out[slot] = diagonals[(n_i + n_j) % 3, n_i]
    return solve_pairs


_SOLVERS = {}


def _solver():
    """The compiled solver (the simulator runs the increment as Python: its
    array stand-ins cannot enter CPU-compiled functions)."""
    simulated = cuda_simulator_enabled()
    if simulated not in _SOLVERS:
        _SOLVERS[simulated] = _make_solver(
            _increment.py_func if simulated else _increment)
    return _SOLVERS[simulated]


def solve_values(backend, x_values, x_lengths, y_values, y_lengths, rows,
                 cols, mode, order, scheme, factor, gamma, budget):
    """Signature kernels of the pairs ``(rows[k], cols[k])`` (host array).

    ``x_values``... are arrays of ``backend``; ``rows`` and ``cols`` host
    index arrays; ``budget`` bounds the scratch memory in bytes.
    """
    n_pairs = rows.shape[0]
    longest = (max(int(np.max(x_lengths)), 2) - 1) << order
    per_pair = 3 * (longest + 1) * 8
    chunk = int(max(1, min(n_pairs, budget // per_pair)))
    threads = SIMULATOR_THREADS if cuda_simulator_enabled() else THREADS
    rows_d = backend.asarray(rows, np.int64)
    cols_d = backend.asarray(cols, np.int64)
    x_lengths = backend.asarray(x_lengths, np.int64)
    y_lengths = backend.asarray(y_lengths, np.int64)
    out = np.empty(n_pairs)
    for first in range(0, n_pairs, chunk):
        count = min(chunk, n_pairs - first)
        scratch = backend.empty((count, 3, longest + 1), np.float64)
        values = backend.empty((count,), np.float64)
        _solver()[count, threads](x_values, x_lengths, y_values, y_lengths,
                                     rows_d, cols_d, first, mode, order,
                                     scheme, factor, gamma, scratch, values)
        out[first:first + count] = backend.to_host(values)
    return out
