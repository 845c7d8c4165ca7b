"""What the tile kernels of every architecture and both drivers share.

Compiled pieces of the tile kernels (pairing the rows of a triangular block,
writing a block of pairs and its mirror), the caches of kernels compiled for
one activation, the per-input arrays the kernels read, and the overflow
message.
"""
import numpy as np
from numba import njit, prange

from .._core.backend import cuda_simulator_enabled
from .._core.fastmath import FASTMATH

BLOCK = 64  # columns processed together by one thread; small enough for L1


@njit(inline="always")
def row_iterations(n, upper):
    """Parallel iterations over the rows of a (possibly triangular) block."""
    return (n + 1) // 2 if upper else n


@njit(inline="always")
def paired_row(row_pair, half, n):
    """The row handled by ``half`` (0 or 1) of a parallel iteration, or -1.

    In a triangular block row i has n - i pairs: pairing row p with row
    n-1-p gives every iteration the same work.
    """
    first = np.int64(row_pair)  # parfor indices may be unsigned
    if half == 0:
        return first
    second = n - 1 - first
    return second if second != first else -1


@njit(inline="always", fastmath=FASTMATH)
def store_block(kb, tb, nb, row, col0, out_k, out_t, want_k, want_t, mirror,
                limit, first_col):
    """Write one row block (and its transpose); count values out of range.

    Columns before ``first_col`` are skipped: in a triangular block they
    belong to another row, whose thread writes them (both orders would
    differ in the last bit, and the race would make results irreproducible).
    """
    bad = 0
    for jj in range(nb):
        col = col0 + jj
        if col < first_col:
            continue
        # NaN fails every comparison; limit is the output dtype's maximum
        bad += ((want_k and not abs(kb[jj]) <= limit)
                + (want_t and not abs(tb[jj]) <= limit))
        if want_k:
            out_k[row, col] = kb[jj]
            if mirror:
                out_k[col, row] = kb[jj]
        if want_t:
            out_t[row, col] = tb[jj]
            if mirror:
                out_t[col, row] = tb[jj]
    return bad


def compiled_kernels(activation, cached, make_values, make_gradients, cache):
    """The (values, gradients) tile kernels of a recursion for an activation.

    ``cached`` are the recursion's kernels generic in the activation family
    (see :mod:`skinfinite.activations.families`), which numba keeps in its
    disk cache; they serve every activation with a known family.  Any other
    activation gets kernels compiled for its duals by
    ``make_*(dual, per_input)``, once per process, kept in ``cache``, a dict
    owned by the architecture's kernel module.  Either way the kernels take
    :func:`~skinfinite.activations.families.kernel_parameter` as their
    parameter.
    """
    if activation.family is not None:
        return cached
    key = activation.scalar_dual
    if key not in cache:
        per_input = not activation.closed_form
        cache[key] = (make_values(activation.scalar_dual, per_input),
                      make_gradients(activation.scalar_partials, per_input))
    return cache[key]


def device_function(function):
    """An inlined numba function for CUDA kernels (its Python source in
    numba's CUDA simulator, whose array stand-ins cannot enter compiled
    functions)."""
    return function.py_func if cuda_simulator_enabled() else function


@njit(inline="always")
def _store_pair(out_k, out_t, i, j, upper, k, t, want_k, want_t, limit):
    # returns 1 if a written value is out of the output dtype's range
    if want_k:
        out_k[i, j] = k
        if upper:
            out_k[j, i] = k
    if want_t:
        out_t[i, j] = t
        if upper:
            out_t[j, i] = t
    # NaN fails every comparison
    return int((want_k and not abs(k) <= limit)
               or (want_t and not abs(t) <= limit))


@njit(inline="always")
def store_pair_gradients(out_k, out_t, out_dk, out_dt, i, j, upper, k, t,
                          dk_w, dk_b, dt_w, dt_b):
    for mirrored in range(2 if upper else 1):
        a, b = (j, i) if mirrored else (i, j)
        out_k[a, b] = k
        out_t[a, b] = t
        out_dk[a, b, 0] = dk_w
        out_dk[a, b, 1] = dk_b
        out_dt[a, b, 0] = dt_w
        out_dt[a, b, 1] = dt_b


def gpu_store_functions():
    """How the CUDA kernels write a pair's values (and mirror them above the
    diagonal), and its values with their tangents."""
    return (device_function(_store_pair),
            device_function(store_pair_gradients))


def compiled_gpu_kernels(activation, make_values, make_gradients, cache):
    """The (values, gradients) CUDA kernels of a recursion for an activation.

    ``make_*(dual, per_input)`` build them from the activation's scalar
    duals, the functions the CPU kernels are compiled from.  numba's CUDA
    simulator runs kernels as Python, where its array stand-ins cannot enter
    CPU-compiled functions, so it gets the duals' Python source instead.
    """
    dual = device_function(activation.scalar_dual)
    partials = device_function(activation.scalar_partials)
    key = activation.scalar_dual
    if key not in cache:
        per_input = not activation.closed_form
        cache[key] = (make_values(dual, per_input),
                      make_gradients(partials, per_input))
    return cache[key]


_ROWS = 4     # rows of X that share each loaded row of Y.T


@njit(parallel=True, cache=True)
def _inner_products(X, YT, out):
    # No fast-math: every entry is the same sequence of correctly rounded
    # operations, sum over k in order, whichever rows and columns share its
    # tile, SIMD lane or thread.  BLAS blocks its sums by matrix shape and
    # thread count, so its last bit would follow the tiling and the load.
    n, d = X.shape
    m = YT.shape[1]
    for block in prange((n + _ROWS - 1) // _ROWS):
        i0 = block * _ROWS
        rows = min(_ROWS, n - i0)
        acc = np.empty((_ROWS, BLOCK))
        for j0 in range(0, m, BLOCK):
            nb = min(BLOCK, m - j0)
            for r in range(rows):
                for jj in range(nb):
                    acc[r, jj] = 0.0
            for k in range(d):
                for r in range(rows):
                    x = X[i0 + r, k]
                    for jj in range(nb):
                        acc[r, jj] += x * YT[k, j0 + jj]
            for r in range(rows):
                for jj in range(nb):
                    out[i0 + r, j0 + jj] = acc[r, jj] / d


#: Feature count up to which inner products are summed in a fixed order.
#: Beyond it a BLAS product (some 25 times faster at d = 784) serves instead,
#: and its last bit may follow the tile's shape and the BLAS thread count.
ORDERED_MAX_FEATURES = 64


def inner_products(X, Y):
    """<x, y> / d for every pair of rows of ``X`` (n, d) and ``Y`` (m, d).

    Up to :data:`ORDERED_MAX_FEATURES` features each entry is the sum over
    the features in order, so a pair's value does not depend on the other
    rows computed with it, on the thread computing it or on the number of
    threads (unlike a BLAS product), and ``inner_products(X, X)`` has
    :func:`sq_norms` on its diagonal.  With more features, where the sums
    would cost more than the kernel itself, it is a BLAS product.
    """
    if X.shape[1] > ORDERED_MAX_FEATURES:
        out = np.asarray(X, dtype=np.float64) @ np.asarray(
            Y, dtype=np.float64).T
        out /= X.shape[1]
        return out
    X = np.ascontiguousarray(X, dtype=np.float64)
    YT = np.ascontiguousarray(np.asarray(Y, dtype=np.float64).T)
    out = np.empty((X.shape[0], YT.shape[1]))
    _inner_products(X, YT, out)
    return out


def sq_norms(X):
    """<x, x> / d for each row: the input layer's only per-input quantity.

    On the host, the same sums as :func:`inner_products` (bit for bit), so
    the pair recursion at ``x == y`` starts from the diagonal's value.
    """
    if isinstance(X, np.ndarray) and X.shape[1] <= ORDERED_MAX_FEATURES:
        return _sq_norms(np.ascontiguousarray(X, dtype=np.float64))
    return np.einsum("ij,ij->i", X, X) / X.shape[1]


@njit(parallel=True, cache=True)
def _sq_norms(X):
    n, d = X.shape
    out = np.empty(n)
    for i in prange(n):
        s = 0.0
        for k in range(d):
            s += X[i, k] * X[i, k]
        out[i] = s / d
    return out


def stage_arrays(recursion, path, with_tangents, with_coefficients=True):
    """Per-input arrays the pair kernels read: the variances (with their
    tangents), their square roots and the dual coefficients (None without
    ``with_coefficients``, for callers that make them a few layers at a
    time)."""
    stages = np.ascontiguousarray(path.stages if with_tangents
                                  else path.stages[:, 0])
    variances = path.stages[:, 0]
    if not with_coefficients:
        return stages, np.sqrt(variances), None
    return (stages, np.sqrt(variances),
            np.ascontiguousarray(np.stack(
                [recursion.activation.coefficients(k) for k in variances])))


def raise_overflow(name, recursion, dtype=None):
    if dtype is not None and np.dtype(dtype) == np.float64:
        advice = "lower the weight variance or the depth."
    else:
        advice = ("for float32 outputs the values may exceed its range: use "
                  "float64 or a smaller weight variance.")
    raise FloatingPointError(
        f"The {name.upper()} Gram matrix overflowed ({recursion.describe()}); "
        + advice)
