"""The fused tile kernel of every layered recursion, and the engine's entry
for architectures defined by their layer maps alone.

:func:`fused_values` runs an input map and ``depth`` hidden maps over a block
of pairs; the fully-connected kernels call it with their own maps, and
:func:`register_layered` compiles the plain-Python maps of a
:class:`~skinfinite.recursions.layered.LayeredRecursion` into it.
"""
import numpy as np
from numba import njit, prange

from ..._core.fastmath import FASTMATH
from ...activations.families import coefficient_row
from ..registry import register
from ..tiles import BLOCK as _BLOCK
from ..tiles import paired_row, row_iterations, store_block


@njit(inline="always", fastmath=FASTMATH)
def fused_values(dual, row, first, hidden, g, r0, c0, dx, dy, sx, sy, cx, cy,
                 param, params, upper, mirror, out_k, out_t, want_k, want_t,
                 limit, layer0, resume):
    """Values of a block of pairs through ``first(g, params)`` and
    ``hidden(layer, v, vd, t, params)`` for every layer.

    Full-size arrays plus block offsets (not views) keep one compiled
    signature per dtype whatever the block layout.  With ``mirror`` the
    transposed entries are written too (symmetric Grams), which costs less
    than a separate pass.  Returns the number of non-finite values.  ``row``
    gives the coefficient rows the dual reads: a scalar for closed forms,
    which keeps their inner loop free of array views.

    The per-input arrays may hold a range of layers only, the first of which
    is hidden layer ``layer0``; with ``resume`` the pairs start from the
    values ``out_k``, ``out_t`` hold (the previous range's) instead of the
    input layer (see :func:`skinfinite.engine.driver.gram`).
    """
    n, m = g.shape
    depth = dx.shape[0]
    bad = 0
    for row_pair in prange(row_iterations(n, upper)):
        kb = np.empty(_BLOCK)
        tb = np.empty(_BLOCK)
        for half in range(2 if upper else 1):
            irow = paired_row(row_pair, half, n)
            if irow < 0:
                break
            # blocks stay aligned to _BLOCK: a few pairs below the diagonal
            # are computed twice, which is cheaper than ragged blocks
            j_first = (irow // _BLOCK) * _BLOCK if upper else 0
            for j0 in range(j_first, m, _BLOCK):
                nb = min(_BLOCK, m - j0)
                for jj in range(nb):
                    if resume:
                        kb[jj] = out_k[r0 + irow, c0 + j0 + jj]
                        tb[jj] = out_t[r0 + irow, c0 + j0 + jj]
                    else:
                        kb[jj], tb[jj] = first(g[irow, j0 + jj], params)
                for layer in range(depth):
                    kxx = dx[layer, r0 + irow]
                    sqx = sx[layer, r0 + irow]
                    ax = row(param, cx, layer, r0 + irow)
                    for jj in range(nb):
                        col = c0 + j0 + jj
                        ay = row(param, cy, layer, col)
                        v, vd = dual(kxx, kb[jj], dy[layer, col],
                                     sqx * sy[layer, col], ax, ay, param)
                        kb[jj], tb[jj] = hidden(layer0 + layer, v, vd, tb[jj],
                                                params)
                bad += store_block(kb, tb, nb, r0 + irow, c0 + j0, out_k,
                                   out_t, want_k, want_t, mirror, limit,
                                   r0 + irow if upper else 0)
    return bad


def _make_values(definition, dual, per_input):
    first, hidden = definition.compiled_maps()
    row = coefficient_row(per_input)

    @njit(parallel=True, fastmath=FASTMATH)
    def values(g, r0, c0, dx, dy, sx, sy, cx, cy, param, params, upper,
               mirror, out_k, out_t, want_k, want_t, limit):
        return fused_values(dual, row, first, hidden, g, r0, c0, dx, dy, sx,
                            sy, cx, cy, param, params, upper, mirror, out_k,
                            out_t, want_k, want_t, limit, 0, False)
    return values


def _make_layer_values(definition, dual, per_input):
    # the values kernel over a range of layers (compiled on first use)
    first, hidden = definition.compiled_maps()
    row = coefficient_row(per_input)

    @njit(parallel=True, fastmath=FASTMATH)
    def values(g, r0, c0, dx, dy, sx, sy, cx, cy, param, params, upper,
               mirror, out_k, out_t, want_k, want_t, limit, layer0, resume):
        return fused_values(dual, row, first, hidden, g, r0, c0, dx, dy, sx,
                            sy, cx, cy, param, params, upper, mirror, out_k,
                            out_t, want_k, want_t, limit, layer0, resume)
    return values


def _no_gradients(*args):
    raise NotImplementedError(
        "Layered architectures carry no tangents in the engine; their "
        "kernels differentiate the Gram matrix in the hyperparameters.")


_CACHE = {}


def register_layered(definition):
    """Register the kernels of a layered architecture with the engine: its
    maps are compiled, once per process and activation, into
    :func:`fused_values` on first use."""
    def kernels(activation):
        # compiled for the activation's own dual (the kernels close over the
        # maps, so numba cannot keep them on disk)
        key = (definition, activation.scalar_dual)
        if key not in _CACHE:
            _CACHE[key] = (_make_values(definition, activation.scalar_dual,
                                        not activation.closed_form),
                           _no_gradients)
        return _CACHE[key]

    def layer_kernels(activation):
        key = (definition, activation.scalar_dual, "layers")
        if key not in _CACHE:
            _CACHE[key] = (_make_layer_values(
                definition, activation.scalar_dual,
                not activation.closed_form), _no_gradients)
        return _CACHE[key]

    return register(definition.record, cpu_kernels=kernels,
                    kernel_arguments=_kernel_arguments,
                    cpu_layer_kernels=layer_kernels)


def _kernel_arguments(spec, parameter):
    # the non-family parameter: these kernels are compiled for one dual
    return (spec.activation.parameter, spec.values)
