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
from .._core.config import get_config
from .._core.threads import one_blas_thread
from .._core.tiling import (MAX_TILE_WORK, count_blocks, iter_blocks,
                            mirror_upper, plan_block, progress, warn_if_long)
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

    # Series activations read 4 n_terms coefficients per input and layer:
    # for every layer and input at once that can be far more than the
    # outputs (3 GB for 1000 inputs through 1000 layers).  Beyond the memory
    # budget the layers are run a range at a time over panels of pairs whose
    # state is kept between ranges, so that each input's coefficients are
    # made for one range of layers at a time (see _gram_by_layers).
    n_coef = (0 if recursion.activation.closed_form
              else recursion.activation.coefficients(np.ones(1)).shape[1])
    depth = path_x.stages.shape[0]
    by_layers = (n_coef > 0 and entry.cpu_layer_kernels is not None
                 and 8.0 * n_coef * depth * (n + (0 if symmetric else m))
                 > get_config()["memory_budget"])
    dx, sx, cx = stage_arrays(recursion, path_x, eval_gradient, not by_layers)
    dy, sy, cy = ((dx, sx, cx) if symmetric
                  else stage_arrays(recursion, path_y, eval_gradient,
                                    not by_layers))
    # a pair-layer of a Hermite series costs about one update per term, and
    # carrying tangents about three times the values alone
    per_pair = (dx.shape[0] * (1.0 + n_coef / 4)
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
    # the CPU kernels take the activation's parameter as its family tuple
    # (see skinfinite.activations.families)
    args = entry.kernel_arguments(recursion,
                                  kernel_parameter(recursion.activation))
    n_bad = 0
    limit = float(np.finfo(dtype).max)
    if by_layers:
        n_bad = _gram_by_layers(
            entry.cpu_layer_kernels(recursion.activation), args, X, Y,
            symmetric, recursion.activation, (path_x, path_y),
            (dx, dy, sx, sy), n_coef, per_pair / depth, work, eval_gradient,
            (out_k, out_t, out_dk, out_dt), (want_k, want_t), limit)
    else:
        values_kernel, grad_kernel = entry.cpu_kernels(recursion.activation)
        with progress(total, work, "kernel blocks") as bar:
            numba.set_parallel_chunksize(4)
            try:
                for rows, cols, diag_block in iter_blocks(n, m, block,
                                                          symmetric):
                    g = inner_products(X[rows], Y[cols])
                    if eval_gradient:
                        _gradient_tile(grad_kernel, g, rows, cols, dx, dy, sx,
                                       sy, cx, cy, args, diag_block, dtype,
                                       (out_k, out_t, out_dk, out_dt),
                                       (want_k, want_t))
                    else:
                        n_bad += values_kernel(
                            g, rows.start, cols.start, dx, dy, sx, sy, cx,
                            cy, *args, diag_block, symmetric, out_k, out_t,
                            want_k, want_t, limit)
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
            if eval_gradient or by_layers:
                mirror_upper(out)
            if eval_gradient:
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


#: Fewer rows than this per coefficient call take another matrix-product
#: path in BLAS, whose last bits differ: calls are padded up to it, so that
#: each input's row is the one of a whole-array call.
_MIN_COEFFICIENT_ROWS = 32
#: Temporaries of a coefficient call, in coefficient rows per row (the
#: quadrature nodes' function values: 2 n_nodes = 4 n_terms, several times).
_COEFFICIENT_TEMPORARIES = 4


def _gram_by_layers(kernels, args, X, Y, symmetric, activation, paths, stages,
                    n_coef, work_per_layer, work, eval_gradient, outputs,
                    wanted, limit):
    """Fill ``outputs`` a panel of pairs and a range of layers at a time;
    returns the number of values out of range.

    Why this order: a pair-layer needs both inputs' coefficients at that
    layer, and making a coefficient row costs about as much as a few
    hundred pair-layers, so each should be made once, yet all of them
    together may not fit.  Panels as large as half the budget allows (their
    pairs' values, and tangents, kept between ranges: the kernels resume from
    them) with ranges of layers whose coefficients fit a quarter: at the
    default budget a Gram of a few thousand inputs is one panel, whose
    coefficients are each made once, as before; smaller budgets make an
    input's coefficients once per panel it is in.  Tiles are kept short in
    time by splitting a panel's range into calls, not by shortening the
    range, so the layers' coefficients are not made again for each tile.
    """
    values_kernel, grad_kernel = kernels
    budget = get_config()["memory_budget"]
    n, m = X.shape[0], Y.shape[0]
    dx, dy, sx, sy = stages
    depth = dx.shape[0]
    coef_bytes = 8.0 * n_coef
    n_state = 6 if eval_gradient else 2
    panel = plan_block(n, m, 8.0 * (1 + n_state), symmetric, budget=budget / 2)
    # one layer of the panel's inputs' coefficients within half the budget
    side = max(_MIN_COEFFICIENT_ROWS, int(budget / 4 / coef_bytes))
    panel = min(panel[0], side), min(panel[1], side)
    rows_per_call = int(budget / 4 / (coef_bytes * _COEFFICIENT_TEMPORARIES))
    panels = list(iter_blocks(n, m, panel, symmetric))
    plans = []
    for rows, cols, diag in panels:
        br, bc = rows.stop - rows.start, cols.stop - cols.start
        inputs = max(br, _MIN_COEFFICIENT_ROWS) + (
            0 if diag else max(bc, _MIN_COEFFICIENT_ROWS))
        n_layers = int(min(depth, max(1, budget / 4 / (inputs * coef_bytes))))
        plans.append(n_layers)
    total = sum(-(-depth // n_layers) for n_layers in plans)
    out_k, out_t, out_dk, out_dt = outputs
    want_k, want_t = wanted
    c = np.ascontiguousarray
    n_bad = 0
    # The coefficient calls are many small matrix products; a threaded BLAS
    # makes each wait for its threads (on a busy machine most of the time
    # went there), and one thread gives each row the same sums.
    with progress(total, work, "kernel blocks") as bar, one_blas_thread():
        numba.set_parallel_chunksize(4)
        try:
            for (rows, cols, diag), n_layers in zip(panels, plans):
                br, bc = rows.stop - rows.start, cols.stop - cols.start
                g = inner_products(X[rows], Y[cols])
                # zeros: the values kernel also runs a few pairs below a
                # diagonal panel's diagonal (never stored), from this state
                state = (np.zeros((br, bc)), np.zeros((br, bc)))
                if eval_gradient:
                    state += (np.empty((br, bc, 2)), np.empty((br, bc, 2)))
                calls = plan_block(br, bc, 1.0, diag, budget=max(
                    1024, MAX_TILE_WORK // (n_layers * work_per_layer)))
                for l0 in range(0, depth, n_layers):
                    layers = slice(l0, min(depth, l0 + n_layers))
                    last = layers.stop == depth
                    cr = _coefficients(activation, paths[0], layers, rows,
                                       rows_per_call)
                    cc = (cr if diag else _coefficients(
                        activation, paths[1], layers, cols, rows_per_call))
                    per_input = (c(dx[layers][..., rows]),
                                 c(dy[layers][..., cols]),
                                 c(sx[layers, rows]), c(sy[layers, cols]), cr,
                                 cc)
                    for sr, sc, sdiag in iter_blocks(br, bc, calls, diag):
                        gs = c(g[sr, sc])
                        if eval_gradient:
                            grad_kernel(gs, sr.start, sc.start, *per_input,
                                        *args, sdiag, *state, l0, l0 > 0)
                        else:
                            # the last range stores the wanted values alone,
                            # and counts those out of range
                            bad = values_kernel(
                                gs, sr.start, sc.start, *per_input, *args,
                                sdiag, False, *state, want_k or not last,
                                want_t or not last, limit, l0, l0 > 0)
                            n_bad += bad if last else 0
                    bar.update()
                if want_k:
                    out_k[rows, cols] = state[0]
                    if eval_gradient:
                        out_dk[rows, cols] = state[2]
                if want_t:
                    out_t[rows, cols] = state[1]
                    if eval_gradient:
                        out_dt[rows, cols] = state[3]
        finally:
            numba.set_parallel_chunksize(0)
    return n_bad


def _coefficients(activation, path, layers, index, rows_per_call):
    """The coefficient rows of the inputs ``index`` at ``layers``, shape
    (n_layers, max(len(index), _MIN_COEFFICIENT_ROWS), n_coefficients): rows
    past ``len(index)`` are padding."""
    variances = path.stages[layers, 0, index]
    n_layers, count = variances.shape
    if count < _MIN_COEFFICIENT_ROWS:
        variances = np.pad(variances, ((0, 0), (0, _MIN_COEFFICIENT_ROWS
                                                - count)), mode="edge")
    flat = variances.ravel()
    # calls of at least _MIN_COEFFICIENT_ROWS rows each, at most about
    # rows_per_call (the temporaries' share of the budget)
    n_calls = max(1, flat.size // max(rows_per_call, _MIN_COEFFICIENT_ROWS))
    bounds = np.linspace(0, flat.size, n_calls + 1).astype(np.int64)
    out = None
    for a, b in zip(bounds[:-1], bounds[1:]):
        rows = activation.coefficients(flat[a:b])
        if out is None:
            out = np.empty((flat.size, rows.shape[1]))
        out[a:b] = rows
    return out.reshape(variances.shape + (out.shape[1],))


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
