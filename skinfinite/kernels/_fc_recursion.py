"""The depth recursion of fully-connected NNGP/NTK kernels and its engine.

The layer maps are written once, as plain arithmetic, and used both on NumPy
arrays (the per-input diagonal recursion) and, compiled by numba, on scalars
inside the fused tile kernels.  A fused kernel runs the
whole depth recursion for a small block of pairs held in registers/L1, so no
per-layer n x m temporary is ever created.

Hyperparameter tangents are carried with respect to ``log(weight_variance)``
(index 0) and ``log(bias_variance)`` (index 1).
"""
from dataclasses import dataclass

import numba
import numpy as np
from numba import njit, prange

from .._tiling import count_blocks, iter_blocks, mirror_upper, plan_block, progress
from .._fastmath import FASTMATH
from ..activations import Activation

_BLOCK = 64  # columns processed together by one thread; small enough for L1


# ----------------------------------------------------------------- layer maps
def _input_layer(g, sw2, sb2, std):
    k = sw2 * g + sb2
    return k, (1.0 - std) * k + std * (g + 1.0)


def _input_tangents(g, sw2, sb2, std):
    dk_w = sw2 * g
    dk_b = sb2 + 0.0 * g
    return dk_w, dk_b, (1.0 - std) * dk_w, (1.0 - std) * dk_b


def _hidden_layer(v, vd, t, sw2, sb2, std):
    k = sw2 * v + sb2
    return k, (1.0 - std) * k + std * (v + 1.0) + sw2 * vd * t


def _hidden_tangents(v, vd, v_xx, v_xy, v_yy, vd_xx, vd_xy, vd_yy,
                     dkxx_w, dkxy_w, dkyy_w, dkxx_b, dkxy_b, dkyy_b,
                     t, dt_w, dt_b, sw2, sb2, std):
    dv_w = v_xx * dkxx_w + v_xy * dkxy_w + v_yy * dkyy_w
    dv_b = v_xx * dkxx_b + v_xy * dkxy_b + v_yy * dkyy_b
    dvd_w = vd_xx * dkxx_w + vd_xy * dkxy_w + vd_yy * dkyy_w
    dvd_b = vd_xx * dkxx_b + vd_xy * dkxy_b + vd_yy * dkyy_b
    dk_w = sw2 * dv_w + sw2 * v
    dk_b = sw2 * dv_b + sb2
    dt_w_new = ((1.0 - std) * dk_w + std * dv_w + sw2 * vd * t
                + sw2 * (dvd_w * t + vd * dt_w))
    dt_b_new = ((1.0 - std) * dk_b + std * dv_b
                + sw2 * (dvd_b * t + vd * dt_b))
    return dk_w, dk_b, dt_w_new, dt_b_new


_input_layer_nb = njit(inline="always", fastmath=FASTMATH)(_input_layer)
_input_tangents_nb = njit(inline="always", fastmath=FASTMATH)(_input_tangents)
_hidden_layer_nb = njit(inline="always", fastmath=FASTMATH)(_hidden_layer)
_hidden_tangents_nb = njit(inline="always", fastmath=FASTMATH)(_hidden_tangents)


# -------------------------------------------------------------- fused kernels
def _make_fused_values(dual, per_input):
    # per_input is a compile-time constant: closed forms skip the coefficient
    # rows entirely, which keeps their inner loop free of array views.
    @njit(parallel=True, fastmath=FASTMATH)
    def fused(g, r0, c0, dx, dy, sx, sy, cx, cy, param, sw2, sb2, std, upper,
              mirror, out_k, out_t, want_k, want_t, limit):
        # Full-size arrays plus block offsets (not views) keep one compiled
        # signature per dtype whatever the block layout.  With ``mirror`` the
        # transposed entries are written too (symmetric Grams), which costs
        # less than a separate pass.  Returns the number of non-finite values.
        n, m = g.shape
        depth = dx.shape[0]
        none = cx[0, 0]
        bad = 0
        # In a triangular block row irow has n - irow pairs: pairing row p with
        # row n-1-p gives every parallel iteration the same work.
        n_iter = (n + 1) // 2 if upper else n
        for row_pair in prange(n_iter):
            kb = np.empty(_BLOCK)
            tb = np.empty(_BLOCK)
            first = np.int64(row_pair)  # parfor indices may be unsigned
            for half in range(2 if upper else 1):
                irow = first if half == 0 else n - 1 - first
                if half == 1 and irow == first:
                    break
                # blocks stay aligned to _BLOCK: a few pairs below the diagonal
                # are computed twice, which is cheaper than ragged blocks
                j_first = (irow // _BLOCK) * _BLOCK if upper else 0
                for j0 in range(j_first, m, _BLOCK):
                    nb = min(_BLOCK, m - j0)
                    for jj in range(nb):
                        kb[jj], tb[jj] = _input_layer_nb(g[irow, j0 + jj], sw2,
                                                         sb2, std)
                    for layer in range(depth):
                        kxx = dx[layer, r0 + irow]
                        sqx = sx[layer, r0 + irow]
                        ax = cx[layer, r0 + irow] if per_input else none
                        for jj in range(nb):
                            col = c0 + j0 + jj
                            ay = cy[layer, col] if per_input else none
                            v, vd = dual(kxx, kb[jj], dy[layer, col],
                                         sqx * sy[layer, col], ax, ay, param)
                            kb[jj], tb[jj] = _hidden_layer_nb(v, vd, tb[jj],
                                                              sw2, sb2, std)
                    local = 0
                    row = r0 + irow
                    for jj in range(nb):
                        col = c0 + j0 + jj
                        # NaN fails every comparison; limit: the dtype's max
                        local += ((want_k and not abs(kb[jj]) <= limit)
                                  + (want_t and not abs(tb[jj]) <= limit))
                        if want_k:
                            out_k[row, col] = kb[jj]
                            if mirror:
                                out_k[col, row] = kb[jj]
                        if want_t:
                            out_t[row, col] = tb[jj]
                            if mirror:
                                out_t[col, row] = tb[jj]
                    bad += local
        return bad
    return fused


def _make_fused_gradients(partials, per_input):
    @njit(parallel=True, fastmath=FASTMATH)
    def fused(g, r0, c0, dx, dy, sx, sy, cx, cy, param, sw2, sb2, std, upper,
              out_k, out_t, out_dk, out_dt):
        # dx[layer] = (Kxx, dKxx/dlog sw2, dKxx/dlog sb2) for every input.
        n, m = g.shape
        depth = dx.shape[0]
        none = cx[0, 0]
        for i in prange(n):
            for j in range(i if upper else 0, m):
                gij = g[i, j]
                k, t = _input_layer_nb(gij, sw2, sb2, std)
                dk_w, dk_b, dt_w, dt_b = _input_tangents_nb(gij, sw2, sb2, std)
                for layer in range(depth):
                    x, y = r0 + i, c0 + j
                    ax = cx[layer, x] if per_input else none
                    ay = cy[layer, y] if per_input else none
                    p = partials(dx[layer, 0, x], k, dy[layer, 0, y],
                                 sx[layer, x] * sy[layer, y], ax, ay, param)
                    nk, nt = _hidden_layer_nb(p[0], p[1], t, sw2, sb2, std)
                    dk_w, dk_b, dt_w, dt_b = _hidden_tangents_nb(
                        p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7],
                        dx[layer, 1, x], dk_w, dy[layer, 1, y],
                        dx[layer, 2, x], dk_b, dy[layer, 2, y],
                        t, dt_w, dt_b, sw2, sb2, std)
                    k, t = nk, nt
                x, y = r0 + i, c0 + j
                out_k[x, y] = k
                out_t[x, y] = t
                out_dk[x, y, 0] = dk_w
                out_dk[x, y, 1] = dk_b
                out_dt[x, y, 0] = dt_w
                out_dt[x, y, 1] = dt_b
    return fused


_FUSED_CACHE = {}


def _fused_kernels(activation):
    """Compiled (values, gradients) kernels, one pair per family of duals."""
    key = activation._scalar_dual
    if key not in _FUSED_CACHE:
        per_input = not activation.closed_form
        _FUSED_CACHE[key] = (
            _make_fused_values(activation._scalar_dual, per_input),
            _make_fused_gradients(activation._scalar_partials, per_input))
    return _FUSED_CACHE[key]


# ------------------------------------------------------------------ the spec
@dataclass(frozen=True)
class FullyConnectedSpec:
    """Everything the recursion needs, validated by the kernel classes."""

    depth: int
    activation: Activation
    weight_variance: float
    bias_variance: float
    standard: bool = False

    @property
    def std(self):
        return 1.0 if self.standard else 0.0


def _sq_norms(X):
    return np.einsum("ij,ij->i", X, X) / X.shape[1]


def diagonal_recursion(sq_norms, spec, with_tangents=False):
    """Run the recursion of each input against itself (once per input).

    Returns
    -------
    layers : ndarray of shape (depth + 1, 3, n)
        ``Kxx`` and its two log-hyperparameter tangents before each hidden
        layer (index ``depth``: the output NNGP diagonal).
    t, dt : ndarrays of shape (n,) and (2, n)
        The NTK diagonal and its tangents.
    """
    act = spec.activation
    sw2, sb2, std = spec.weight_variance, spec.bias_variance, spec.std
    k, t = _input_layer(sq_norms, sw2, sb2, std)
    dk_w, dk_b, dt_w, dt_b = _input_tangents(sq_norms, sw2, sb2, std)
    layers = np.empty((spec.depth + 1, 3, sq_norms.shape[0]))
    for layer in range(spec.depth):
        layers[layer] = k, dk_w, dk_b
        if with_tangents:
            p = act.dual_partials(k, k, k)
            dk_w, dk_b, dt_w, dt_b = _hidden_tangents(
                *p, dk_w, dk_w, dk_w, dk_b, dk_b, dk_b, t, dt_w, dt_b,
                sw2, sb2, std)
            v, vd = p[0], p[1]
        else:
            v, vd = act.dual(k, k, k)
        k, t = _hidden_layer(v, vd, t, sw2, sb2, std)
    layers[spec.depth] = k, dk_w, dk_b
    if not (np.all(np.isfinite(layers[spec.depth, 0])) and np.all(np.isfinite(t))):
        raise FloatingPointError(
            f"The kernel overflowed through {spec.depth} layers with "
            f"weight_variance={spec.weight_variance}; lower the depth or the "
            "weight variance (for ReLU, 2.0 keeps the scale constant).")
    return layers, t, np.stack([dt_w, dt_b])


# -------------------------------------------------------------------- driver
def fully_connected_gram(X, Y, spec, want=("nngp", "ntk"), eval_gradient=False,
                         dtype=np.float64):
    """NNGP and/or NTK Gram block K(X, Y) of a fully-connected network.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    Y : ndarray of shape (m, d) or None
        None computes the symmetric K(X, X), only its upper half explicitly.
    spec : FullyConnectedSpec
    want : tuple of {"nngp", "ntk"}
    eval_gradient : bool
        Also return gradients with respect to log(weight_variance) and
        log(bias_variance), shape (n, m, 2).
    dtype : numpy dtype of the outputs (the recursion runs in float64).

    Returns
    -------
    dict with keys among "nngp", "ntk", "nngp_gradient", "ntk_gradient".
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    symmetric = Y is None
    Y = X if symmetric else np.ascontiguousarray(Y, dtype=np.float64)
    n, m, d = X.shape[0], Y.shape[0], X.shape[1]
    lx, tx, dtx = diagonal_recursion(_sq_norms(X), spec, eval_gradient)
    ly, ty, dty = (lx, tx, dtx) if symmetric else diagonal_recursion(
        _sq_norms(Y), spec, eval_gradient)
    act = spec.activation
    want_k, want_t = "nngp" in want, "ntk" in want
    alloc_k, alloc_t = want_k or eval_gradient, want_t or eval_gradient
    out_k = np.empty((n, m) if alloc_k else (1, 1), dtype)
    out_t = np.empty((n, m) if alloc_t else (1, 1), dtype)
    out_dk = np.empty((n, m, 2), dtype) if eval_gradient else None
    out_dt = np.empty((n, m, 2), dtype) if eval_gradient else None

    sx = np.sqrt(lx[:spec.depth, 0])
    sy = sx if symmetric else np.sqrt(ly[:spec.depth, 0])
    cx = _layer_coefficients(act, lx[:spec.depth, 0])
    cy = cx if symmetric else _layer_coefficients(act, ly[:spec.depth, 0])
    block = plan_block(n, m, 8.0, symmetric)
    total = count_blocks(n, m, block, symmetric)
    work = n * m * spec.depth * (0.5 if symmetric else 1.0)
    values_kernel, grad_kernel = _fused_kernels(act)
    if eval_gradient:
        lx_arg = np.ascontiguousarray(lx[:spec.depth])
        ly_arg = lx_arg if symmetric else np.ascontiguousarray(ly[:spec.depth])
    else:
        lx_arg = np.ascontiguousarray(lx[:spec.depth, 0])
        ly_arg = lx_arg if symmetric else np.ascontiguousarray(ly[:spec.depth, 0])
    args = (float(act._param), spec.weight_variance, spec.bias_variance, spec.std)
    n_bad = 0
    limit = float(np.finfo(dtype).max)
    with progress(total, work, "kernel blocks") as bar:
        numba.set_parallel_chunksize(4)
        try:
            for rows, cols, diag_block in iter_blocks(n, m, block, symmetric):
                g = X[rows] @ Y[cols].T
                g /= d
                if eval_gradient:
                    grad_kernel(g, rows.start, cols.start, lx_arg, ly_arg, sx, sy,
                                cx, cy, *args, diag_block, out_k, out_t, out_dk,
                                out_dt)
                else:
                    n_bad += values_kernel(g, rows.start, cols.start, lx_arg,
                                           ly_arg, sx, sy, cx, cy, *args,
                                           diag_block,
                                           symmetric, out_k, out_t, want_k,
                                           want_t, limit)
                bar.update()
        finally:
            numba.set_parallel_chunksize(0)

    result = {}
    outputs = [("nngp", out_k, lx[spec.depth, 0], out_dk, lx[spec.depth, 1:]),
               ("ntk", out_t, tx, out_dt, dtx)]
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
                _raise_non_finite(name, spec)
            np.fill_diagonal(out, diag)
        if eval_gradient:
            _check_finite(out, name, spec)
        elif n_bad:
            _raise_non_finite("/".join(w.upper() for w in want), spec)
        result[name] = out
        if eval_gradient:
            result[name + "_gradient"] = grad
    return result


def _layer_coefficients(act, layer_variances):
    """Per-input dual coefficients at each layer, shape (depth, n, width)."""
    rows = [act.coefficients(k) for k in layer_variances]
    return np.ascontiguousarray(np.stack(rows))


def fully_connected_diag(X, spec, want="nngp"):
    """Diagonal k(x, x) of the NNGP or NTK, from the per-input recursion."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    layers, t, _ = diagonal_recursion(_sq_norms(X), spec)
    return layers[spec.depth, 0].copy() if want == "nngp" else t


def _all_finite(out, rows_per_chunk=256):
    # by row chunks: a full boolean mask would be one more n x m temporary
    return all(np.isfinite(out[i:i + rows_per_chunk]).all()
               for i in range(0, out.shape[0], rows_per_chunk))


def _check_finite(out, name, spec):
    if not _all_finite(out):
        _raise_non_finite(name, spec)


def _raise_non_finite(name, spec):
    raise FloatingPointError(
        f"The {name.upper()} Gram matrix overflowed (depth="
        f"{spec.depth}, weight_variance={spec.weight_variance}); for "
        "float32 outputs the values may exceed its range: use float64 or "
        "a smaller weight variance.")
