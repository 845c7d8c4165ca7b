"""The tiled Gram driver shared by every recursion-defined kernel.

A *recursion* (fully connected, residual, ...) describes how a pair's
covariance evolves; this module runs it over the output block by block:
per-input quantities (the diagonal path) are computed once, the matrix of
input inner products is formed one tile at a time, and a compiled kernel
runs the whole recursion for every pair of the tile.

A recursion object provides:

* ``activation``: its :class:`~skinfinite.activations.definitions.Activation`;
* ``resolve(X, Y)``: the recursion to run on these inputs (recursions with
  adaptive steps fix them here);
* ``diagonal(sq_norms, with_tangents)``: a :class:`DiagonalPath`;
* ``kernels()``: the compiled ``(values, gradients)`` tile kernels (see
  :func:`compiled_kernels`);
* ``scalars()``: the extra arguments those kernels take, the activation's
  parameter first (the CPU engine passes it as
  :func:`~skinfinite.activations.families.kernel_parameter`);
* ``describe()``: a short description for error messages.
"""
from dataclasses import dataclass

import numba
import numpy as np
from numba import njit

from .._core.backend import backend_unless, cuda_simulator_enabled
from ..activations.families import dual_family, kernel_parameter
from .._core.fastmath import FASTMATH
from .._core.tiling import (count_blocks, iter_blocks, mirror_upper, plan_block,
                       progress, warn_if_long)

BLOCK = 64  # columns processed together by one thread; small enough for L1


@dataclass
class DiagonalPath:
    """Per-input quantities of a recursion.

    Attributes
    ----------
    stages : ndarray of shape (n_stages, 3, n)
        ``Kxx`` and its tangents (log weight variance, log bias variance)
        wherever the pair recursion evaluates a dual.
    nngp, ntk : ndarray of shape (n,)
        Output diagonals.
    nngp_grad, ntk_grad : ndarray of shape (2, n)
        Their tangents.
    """

    stages: np.ndarray
    nngp: np.ndarray
    ntk: np.ndarray
    nngp_grad: np.ndarray
    ntk_grad: np.ndarray


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
    (see :mod:`skinfinite.activations.families`), which numba keeps in its disk cache;
    they serve every activation with a known family.  Any other activation
    gets kernels compiled for its duals by ``make_*(dual, per_input)``, once
    per process, kept in ``cache``, a dict owned by the recursion.  Either
    way the kernels take :func:`~skinfinite.activations.families.kernel_parameter` as
    their parameter.
    """
    if dual_family(activation) is not None:
        return cached
    key = activation._scalar_dual
    if key not in cache:
        per_input = not activation.closed_form
        cache[key] = (make_values(activation._scalar_dual, per_input),
                      make_gradients(activation._scalar_partials, per_input))
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
    dual = device_function(activation._scalar_dual)
    partials = device_function(activation._scalar_partials)
    key = activation._scalar_dual
    if key not in cache:
        per_input = not activation.closed_form
        cache[key] = (make_values(dual, per_input),
                      make_gradients(partials, per_input))
    return cache[key]


def select_backend(device, recursion, *arrays):
    """The backend that runs a recursion on ``arrays`` (see ``_backend``)."""
    missing = (None if hasattr(recursion, "gpu_kernels")
               else f"kernels for {type(recursion).__name__}")
    return backend_unless(device, missing, *arrays)


def sq_norms(X):
    """<x, x> / d for each row: the input layer's only per-input quantity."""
    return np.einsum("ij,ij->i", X, X) / X.shape[1]


def stage_arrays(recursion, path, with_tangents):
    """Per-input arrays the pair kernels read: the variances (with their
    tangents), their square roots and the dual coefficients."""
    stages = np.ascontiguousarray(path.stages if with_tangents
                                  else path.stages[:, 0])
    variances = path.stages[:, 0]
    return (stages, np.sqrt(variances),
            np.ascontiguousarray(np.stack(
                [recursion.activation.coefficients(k) for k in variances])))


def gram(X, Y, recursion, want=("nngp", "ntk"), eval_gradient=False,
         dtype=np.float64, backend=None, on_device=False):
    """NNGP and/or NTK Gram block K(X, Y) of a recursion-defined kernel.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    Y : ndarray of shape (m, d) or None
        None computes the symmetric K(X, X), half of the pairs explicitly.
    recursion : recursion object (see the module docstring)
    want : tuple of {"nngp", "ntk"}
    eval_gradient : bool
        Also return gradients with respect to log(weight_variance) and
        log(bias_variance), shape (n, m, 2).
    dtype : numpy dtype of the outputs (the recursion runs in float64).
    backend : backend from :mod:`skinfinite._core.backend`, optional
        A GPU backend runs :func:`._gpu_engine.gram` on its arrays ``X`` and
        ``Y``, which then keeps the outputs on the device if ``on_device``.

    Returns
    -------
    dict with keys among "nngp", "ntk", "nngp_gradient", "ntk_gradient".
    """
    if backend is not None and backend.name == "gpu":
        from .cuda import driver as _gpu_engine
        return _gpu_engine.gram(X, Y, recursion, want, eval_gradient, dtype,
                                backend, on_device)
    X = np.ascontiguousarray(X, dtype=np.float64)
    symmetric = Y is None
    Y = X if symmetric else np.ascontiguousarray(Y, dtype=np.float64)
    recursion = recursion.resolve(X, None if symmetric else Y)
    n, m, d = X.shape[0], Y.shape[0], X.shape[1]
    path_x = recursion.diagonal(sq_norms(X), eval_gradient)
    path_y = path_x if symmetric else recursion.diagonal(sq_norms(Y),
                                                         eval_gradient)
    want_k, want_t = "nngp" in want, "ntk" in want
    # Only the wanted outputs are full size: the gradient kernels write both
    # kernels and their tangents, into tile-sized scratch (see below).
    out_k = np.empty((n, m) if want_k else (1, 1), dtype)
    out_t = np.empty((n, m) if want_t else (1, 1), dtype)
    out_dk = np.empty((n, m, 2), dtype) if eval_gradient and want_k else None
    out_dt = np.empty((n, m, 2), dtype) if eval_gradient and want_t else None

    dx, sx, cx = stage_arrays(recursion, path_x, eval_gradient)
    dy, sy, cy = ((dx, sx, cx) if symmetric
                  else stage_arrays(recursion, path_y, eval_gradient))
    # a pair-layer of a Hermite series costs about one update per term, and
    # carrying tangents about three times the values alone
    per_pair = (dx.shape[0] * (1.0 + cx.shape[-1] / 4)
                * (3.0 if eval_gradient else 1.0))
    # the inner products, and with gradients the four tile outputs (6 values)
    bytes_per_pair = 8.0 + (6 * np.dtype(dtype).itemsize if eval_gradient
                            else 0.0)
    block = plan_block(n, m, bytes_per_pair, symmetric,
                       work_per_pair=per_pair)
    total = count_blocks(n, m, block, symmetric)
    work = n * m * dx.shape[0] * (0.5 if symmetric else 1.0)
    warn_if_long(work * per_pair / dx.shape[0],
                 f"Gram matrix of {n} x {m} inputs ({recursion.describe()})",
                 "Use fewer inputs (solver='nystroem') or fewer layers.")
    values_kernel, grad_kernel = recursion.kernels()
    # the first scalar is the activation's parameter, which the CPU kernels
    # take as its family tuple (see _compiled)
    args = ((kernel_parameter(recursion.activation),)
            + tuple(recursion.scalars()[1:]))
    n_bad = 0
    limit = float(np.finfo(dtype).max)
    with progress(total, work, "kernel blocks") as bar:
        numba.set_parallel_chunksize(4)
        try:
            for rows, cols, diag_block in iter_blocks(n, m, block, symmetric):
                g = X[rows] @ Y[cols].T
                g /= d
                if eval_gradient:
                    _gradient_tile(grad_kernel, g, rows, cols, dx, dy, sx,
                                   sy, cx, cy, args, diag_block, dtype,
                                   (out_k, out_t, out_dk, out_dt),
                                   (want_k, want_t))
                else:
                    n_bad += values_kernel(g, rows.start, cols.start, dx, dy,
                                           sx, sy, cx, cy, *args, diag_block,
                                           symmetric, out_k, out_t, want_k,
                                           want_t, limit)
                bar.update()
        finally:
            numba.set_parallel_chunksize(0)

    result = {}
    outputs = [("nngp", out_k, path_x.nngp, out_dk, path_x.nngp_grad),
               ("ntk", out_t, path_x.ntk, out_dt, path_x.ntk_grad)]
    for name, out, diag, grad, diag_grad in outputs:
        if name not in want:
            continue
        if symmetric:
            if eval_gradient:
                mirror_upper(out)
                mirror_upper(grad)
                idx = np.arange(n)
                grad[idx, idx] = diag_grad.T
            # The pair recursion at x == y equals the diagonal one up to
            # rounding of <x, x>; use the latter so diagonals are exact.
            if not np.all(np.abs(diag) <= limit):
                raise_overflow(name, recursion, dtype)
            np.fill_diagonal(out, diag)
        if eval_gradient and not _all_finite(out):
            raise_overflow(name, recursion, dtype)
        elif n_bad:
            raise_overflow("/".join(w.upper() for w in want), recursion, dtype)
        result[name] = out
        if eval_gradient:
            result[name + "_gradient"] = grad
    return result


def _gradient_tile(kernel, g, rows, cols, dx, dy, sx, sy, cx, cy, args,
                   diag_block, dtype, outputs, wanted):
    """Run a gradient kernel on one tile into tile-sized scratch and copy
    the wanted outputs; the kernel sees the tile's inputs from index 0."""
    shape = (rows.stop - rows.start, cols.stop - cols.start)
    scratch = (np.empty(shape, dtype), np.empty(shape, dtype),
               np.empty(shape + (2,), dtype), np.empty(shape + (2,), dtype))
    c = np.ascontiguousarray
    kernel(g, 0, 0, c(dx[..., rows]), c(dy[..., cols]), c(sx[:, rows]),
           c(sy[:, cols]), c(cx[:, rows]), c(cy[:, cols]), *args, diag_block,
           *scratch)
    k, t, dk, dt = outputs
    if wanted[0]:
        k[rows, cols] = scratch[0]
        dk[rows, cols] = scratch[2]
    if wanted[1]:
        t[rows, cols] = scratch[1]
        dt[rows, cols] = scratch[3]


def diagonal(X, recursion, want="nngp"):
    """Diagonal k(x, x) of the NNGP or NTK, from the per-input path."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    recursion = recursion.resolve(X, None)
    path = recursion.diagonal(sq_norms(X), False)
    return (path.nngp if want == "nngp" else path.ntk).copy()


def _all_finite(out, rows_per_chunk=256):
    # by row chunks: a full boolean mask would be one more n x m temporary
    return all(np.isfinite(out[i:i + rows_per_chunk]).all()
               for i in range(0, out.shape[0], rows_per_chunk))


def raise_overflow(name, recursion, dtype=None):
    if dtype is not None and np.dtype(dtype) == np.float64:
        advice = "lower the weight variance or the depth."
    else:
        advice = ("for float32 outputs the values may exceed its range: use "
                  "float64 or a smaller weight variance.")
    raise FloatingPointError(
        f"The {name.upper()} Gram matrix overflowed ({recursion.describe()}); "
        + advice)
