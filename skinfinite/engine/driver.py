"""The tiled Gram driver shared by every recursion-defined kernel.

A *recursion* (fully connected, residual, ...) describes how a pair's
covariance evolves; this module runs it over the output block by block:
per-input quantities (the diagonal path) are computed once, the matrix of
input inner products is formed one tile at a time, and a compiled kernel
runs the whole recursion for every pair of the tile.

A recursion is a record of :mod:`skinfinite.recursions` with

* ``activation``: its :class:`~skinfinite.activations.definitions.Activation`;
* ``diagonal(sq_norms, with_tangents)``: a
  :class:`~skinfinite.recursions.path.DiagonalPath`;
* ``describe()``: a short description for error messages;

and its compiled kernels are found in :mod:`.registry` (registered by the
modules of :mod:`.cpu`, which importing :mod:`skinfinite.engine` imports).
"""
import numba
import numpy as np

from .._core.backend import backend_unless
from .._core.tiling import (count_blocks, iter_blocks, mirror_upper, plan_block,
                            progress, warn_if_long)
from ..activations.families import kernel_parameter
from . import registry
from .cuda import driver as _cuda_driver
from .registry import resolve
from .tiles import inner_products, raise_overflow, sq_norms, stage_arrays

__all__ = ["gram", "diagonal", "resolve", "select_backend", "sq_norms",
           "raise_overflow"]


def select_backend(device, recursion, *arrays):
    """The backend that runs a recursion on ``arrays`` (see ``_backend``)."""
    missing = (None if registry.has_cuda_kernels(recursion)
               else f"kernels for {type(recursion).__name__}")
    return backend_unless(device, missing, *arrays)


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
        A GPU backend runs :func:`.cuda.driver.gram` on its arrays ``X`` and
        ``Y``, which then keeps the outputs on the device if ``on_device``.

    Returns
    -------
    dict with keys among "nngp", "ntk", "nngp_gradient", "ntk_gradient".
    """
    if backend is not None and backend.name == "gpu":
        return _cuda_driver.gram(X, Y, recursion, want, eval_gradient, dtype,
                                 backend, on_device)
    X = np.ascontiguousarray(X, dtype=np.float64)
    symmetric = Y is None
    Y = X if symmetric else np.ascontiguousarray(Y, dtype=np.float64)
    recursion = resolve(recursion, X, None if symmetric else Y)
    entry = registry.architecture(recursion)
    n, m = X.shape[0], Y.shape[0]
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
    values_kernel, grad_kernel = entry.cpu_kernels(recursion.activation)
    # the CPU kernels take the activation's parameter as its family tuple
    # (see skinfinite.activations.families)
    args = entry.kernel_arguments(recursion,
                                  kernel_parameter(recursion.activation))
    n_bad = 0
    limit = float(np.finfo(dtype).max)
    with progress(total, work, "kernel blocks") as bar:
        numba.set_parallel_chunksize(4)
        try:
            for rows, cols, diag_block in iter_blocks(n, m, block, symmetric):
                g = inner_products(X[rows], Y[cols])
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
    same_rows = [] if symmetric else _equal_rows(X, Y)
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
        else:
            # the same for a row of X equal to a row of Y, so that K(X, X)
            # is K(X) and a prediction at a training point reproduces the fit
            for i, j in same_rows:
                out[i, j] = diag[i]
                if eval_gradient:
                    grad[i, j] = diag_grad[:, i].T
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
    recursion = resolve(recursion, X, None)
    path = recursion.diagonal(sq_norms(X), False)
    return (path.nngp if want == "nngp" else path.ntk).copy()


def _equal_rows(X, Y):
    """``(rows of X, column of Y)`` for each row of Y equal to rows of X."""
    where = {}
    for i in range(X.shape[0]):
        where.setdefault(X[i].tobytes(), []).append(i)
    found = []
    for j in range(Y.shape[0]):
        rows = where.get(Y[j].tobytes())
        if rows is not None:
            found.append((np.array(rows), j))
    return found


def _all_finite(out, rows_per_chunk=256):
    # by row chunks: a full boolean mask would be one more n x m temporary
    return all(np.isfinite(out[i:i + rows_per_chunk]).all()
               for i in range(0, out.shape[0], rows_per_chunk))
