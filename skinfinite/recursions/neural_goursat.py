"""Compiled CPU solvers of the neural signature kernel's Goursat PDE.

The limit kernel of a randomly initialised controlled ResNet
``dY = (A phi(Y) + b) dx`` solves
``d2K/ds dt = f(s, t) <x'(s), y'(t)>`` with
``f = sA2 V_phi(Kxx(s), K(s, t), Kyy(t)) + sb2`` and ``K = s02`` on the axes.
Each cell (increment product ``c``) is updated by::

    K11 = K10 + K01 - K00 + c (f10 + f01) / 2
          + c^2 / 12 * (g10 + g01) / 2 * (f10 + f01 + f00)

with ``g = sA2 E[phi'(u) phi'(v)]``, the derivative of ``f`` in ``K``.  For
the identity this is exactly the second-order scheme of the signature
kernel.  The diagonals ``Kxx(s) = K^{xx}(s, s)`` come first, from the same
PDE of each path against itself: row ``i+1`` of the lower triangle needs
``Kxx`` at node ``i+1``, which the row itself produces, so each row is
solved twice (predicted from a linear extrapolation, then corrected).

The duals are the compiled scalar functions of
:mod:`skinfinite.activations.duals` (one per activation family); activations without a
closed form read per-node Hermite coefficient rows computed by
:meth:`~skinfinite.activations.definitions.Activation.coefficients`.
"""
import math

import numpy as np
from numba import njit, prange

from .._core.fastmath import FASTMATH
from .goursat import (_ALL_ROWS, LANES, _copy_rows as copy_rows,
                      _group_grid, _linear_row, band_rows)

_CACHE = {}


def neural_solvers(activation):
    """Compiled ``(diagonal_row, pair_values, euler_step,
    euler_diagonal_step, pair_values_band)`` for an activation's duals."""
    dual = activation.scalar_dual
    if dual not in _CACHE:
        _CACHE[dual] = _make_solvers(dual)
    return _CACHE[dual]


def _make_solvers(dual):

    @njit(inline="always", fastmath=FASTMATH)
    def node(kxx, kxy, kyy, ax, ay, param, sa2, sb2):
        r = math.sqrt(kxx) * math.sqrt(kyy)
        v, vd = dual(kxx, kxy, kyy, r, ax, ay, param)
        return sa2 * v + sb2, sa2 * vd

    @njit(parallel=True, fastmath=FASTMATH)
    def diagonal_row(incs, i, order, diag, coef, prev, fprev, gprev, cur,
                     fcur, gcur, s02, sa2, sb2, param):
        """Row i+1 of each path's lower triangle, with ``diag[:, i+1]`` as
        given (a prediction); writes the row's diagonal into it."""
        n, _, c_dim = incs.shape
        refine_sq = 1.0 / float(1 << order) ** 2
        for a in prange(n):
            d1 = diag[a, i + 1]
            cur[a, 0] = s02
            f, g = node(d1, s02, diag[a, 0], coef[a, i + 1], coef[a, 0],
                        param, sa2, sb2)
            fcur[a, 0] = f
            gcur[a, 0] = g
            ic = i >> order
            for j in range(i + 1):
                jc = j >> order
                c = 0.0
                for k in range(c_dim):
                    c += incs[a, ic, k] * incs[a, jc, k]
                c *= refine_sq
                k00 = prev[a, j]
                f00 = fprev[a, j]
                k10 = cur[a, j]
                f10 = fcur[a, j]
                g10 = gcur[a, j]
                if j + 1 <= i:
                    k01 = prev[a, j + 1]
                    f01 = fprev[a, j + 1]
                    g01 = gprev[a, j + 1]
                else:                  # K(i, i+1) = K(i+1, i), by symmetry
                    k01 = cur[a, i]
                    f01 = fcur[a, i]
                    g01 = gcur[a, i]
                k11 = (k10 + k01 - k00 + 0.5 * c * (f10 + f01)
                       + c * c / 24.0 * (g10 + g01) * (f10 + f01 + f00))
                cur[a, j + 1] = k11
                if j == i:
                    d1 = k11
                    diag[a, i + 1] = k11
                f, g = node(d1, k11, diag[a, j + 1], coef[a, i + 1],
                            coef[a, j + 1], param, sa2, sb2)
                fcur[a, j + 1] = f
                gcur[a, j + 1] = g

    @njit(inline="always", fastmath=FASTMATH)
    def pair_rows(xs, ys, tx, ty, ia, ib, dx, dy, cx, cy, order, s02, sa2,
                  sb2, param, f0, f1, ke, fe, ge, ko, fo, go, inc):
        """Fine rows ``f0 + 1 .. f1`` of a group's grid from row ``f0``;
        row ``f`` (K, f, g) lives in ``ke, fe, ge`` or ``ko, fo, go`` by
        its parity.  Returns the K buffer of row ``f1``."""
        refine = 1 << order
        refine_sq = 1.0 / (refine * refine)
        n_cols = ty - 1
        n_fine = n_cols * refine
        even = (f0 & 1) == 0
        old, new = (ke, ko) if even else (ko, ke)
        fold, fnew = (fe, fo) if even else (fo, fe)
        gold, gnew = (ge, go) if even else (go, ge)
        if f0 == 0:
            for j in range(n_fine + 1):
                for p in range(LANES):
                    old[j, p] = s02
                    f, gg = node(s02, s02, dy[ib[p], j], cx[ia[p], 0],
                                 cy[ib[p], j], param, sa2, sb2)
                    fold[j, p] = f
                    gold[j, p] = gg
        for i in range(f0 >> order, (f1 + refine - 1) >> order):
            _linear_row(xs, ys, i, n_cols, refine_sq, inc)
            for r in range(max(f0 - (i << order), 0),
                           min(f1 - (i << order), refine)):
                row = i * refine + r + 1
                for p in range(LANES):
                    kx = dx[ia[p], row]
                    new[0, p] = s02
                    f, gg = node(kx, s02, dy[ib[p], 0], cx[ia[p], row],
                                 cy[ib[p], 0], param, sa2, sb2)
                    fnew[0, p] = f
                    gnew[0, p] = gg
                for j in range(n_fine):
                    jc = j >> order
                    for p in range(LANES):
                        c = inc[jc, p]
                        f10 = fnew[j, p]
                        f01 = fold[j + 1, p]
                        k11 = (new[j, p] + old[j + 1, p] - old[j, p]
                               + 0.5 * c * (f10 + f01)
                               + c * c / 24.0 * (gnew[j, p] + gold[j + 1, p])
                               * (f10 + f01 + fold[j, p]))
                        new[j + 1, p] = k11
                        f, gg = node(dx[ia[p], row], k11,
                                     dy[ib[p], j + 1], cx[ia[p], row],
                                     cy[ib[p], j + 1], param, sa2, sb2)
                        fnew[j + 1, p] = f
                        gnew[j + 1, p] = gg
                old, new = new, old
                fold, fnew = fnew, fold
                gold, gnew = gnew, gold
        return old

    @njit(inline="always", fastmath=FASTMATH)
    def group_lanes(rows, cols, lo, n_pairs):
        ia = np.empty(LANES, np.int64)
        ib = np.empty(LANES, np.int64)
        for p in range(LANES):
            q = min(lo + p, n_pairs - 1)
            ia[p] = rows[q]
            ib[p] = cols[q]
        return ia, ib

    @njit(inline="always", fastmath=FASTMATH)
    def pair_group(xpaths, xlen, ypaths, ylen, dx, dy, cx, cy, rows, cols,
                   order, s02, sa2, sb2, param, g, f0, f1, banded, state,
                   out):
        """Group ``g`` of :func:`pair_values` for fine rows ``f0 + 1 ..
        f1``; ``banded`` resumes from ``state[g]`` and saves into it (see
        :func:`pair_values_band`)."""
        n_pairs = rows.shape[0]
        lo, tx, ty, xs, ys, n_fine, f_lo, f_hi = _group_grid(
            xpaths, xlen, ypaths, ylen, rows, cols, g, order, f0, f1, False)
        n_cols = ty - 1
        ia, ib = group_lanes(rows, cols, lo, n_pairs)
        inc = np.empty((n_cols, LANES))
        # fresh buffers also for bands (views of one state array run
        # markedly slower)
        ke = np.empty((n_fine + 1, LANES))
        ko = np.empty((n_fine + 1, LANES))
        fe = np.empty((n_fine + 1, LANES))
        fo = np.empty((n_fine + 1, LANES))
        ge = np.empty((n_fine + 1, LANES))
        go = np.empty((n_fine + 1, LANES))
        even = (f_lo & 1) == 0
        if banded and f_lo > 0:
            copy_rows(state[g, 0], ke if even else ko, n_fine + 1)
            copy_rows(state[g, 1], fe if even else fo, n_fine + 1)
            copy_rows(state[g, 2], ge if even else go, n_fine + 1)
        last = pair_rows(xs, ys, tx, ty, ia, ib, dx, dy, cx, cy, order,
                         s02, sa2, sb2, param, f_lo, f_hi, ke, fe, ge,
                         ko, fo, go, inc)
        if banded:
            even = (f_hi & 1) == 0
            copy_rows(ke if even else ko, state[g, 0], n_fine + 1)
            copy_rows(fe if even else fo, state[g, 1], n_fine + 1)
            copy_rows(ge if even else go, state[g, 2], n_fine + 1)
        for p in range(LANES):
            if lo + p < n_pairs:
                out[lo + p] = last[n_fine, p]

    @njit(parallel=True, fastmath=FASTMATH)
    def pair_values(xpaths, xlen, ypaths, ylen, dx, dy, cx, cy, rows, cols,
                    order, s02, sa2, sb2, param, out):
        """K(x_rows[k], y_cols[k]) into out[k], LANES pairs at a time."""
        n_groups = (rows.shape[0] + LANES - 1) // LANES
        no_state = np.empty((0, 0, 0, LANES))
        for g in prange(n_groups):
            pair_group(xpaths, xlen, ypaths, ylen, dx, dy, cx, cy, rows,
                       cols, order, s02, sa2, sb2, param, g, 0, _ALL_ROWS,
                       False, no_state, out)

    @njit(parallel=True, fastmath=FASTMATH)
    def pair_values_band(xpaths, xlen, ypaths, ylen, dx, dy, cx, cy, rows,
                         cols, order, s02, sa2, sb2, param, f0, f1, state,
                         out):
        """:func:`pair_values` for fine rows ``f0 + 1 .. f1`` only, carried
        between calls in ``state[g]`` (K, f and g of the last row, shape
        (3, n_fine + 1, LANES))."""
        n_groups = (rows.shape[0] + LANES - 1) // LANES
        for g in prange(n_groups):
            pair_group(xpaths, xlen, ypaths, ylen, dx, dy, cx, cy, rows,
                       cols, order, s02, sa2, sb2, param, g, f0, f1, True,
                       state, out)

    @njit(parallel=True, fastmath=FASTMATH)
    def euler_step(K, kx, ky, cx, cy, G, w, sa2, sb2, param):
        """K += w (sA2 V(kx, K, ky) + sb2) G: one step of fresh weights."""
        n, m = K.shape
        for a in prange(n):
            for b in range(m):
                f, _ = node(kx[a], K[a, b], ky[b], cx[a], cy[b], param, sa2,
                            sb2)
                K[a, b] += w * f * G[a, b]

    @njit(fastmath=FASTMATH)
    def euler_diagonal_step(kx, cx, g, w, sa2, sb2, param):
        for a in range(kx.shape[0]):
            f, _ = node(kx[a], kx[a], kx[a], cx[a], cx[a], param, sa2, sb2)
            kx[a] += w * f * g[a]

    return (diagonal_row, pair_values, euler_step, euler_diagonal_step,
            pair_values_band)


def solve_pairs(solvers, xpaths, xlen, ypaths, ylen, dx, dy, cx, cy, rows,
                cols, order, s02, sa2, sb2, param, out, weight=1.0,
                rows_per_band=None):
    """``pair_values`` of ``solvers``, in bands of fine rows (see
    :func:`skinfinite.recursions.goursat.band_rows`; ``weight`` is the cost
    of a cell relative to the signature kernel's) where the work is large,
    so that Ctrl-C is honoured between bands; the values are bitwise
    those of one call."""
    n_pairs = rows.shape[0]
    if n_pairs == 0:
        return
    args = (xpaths, xlen, ypaths, ylen, dx, dy, cx, cy, rows, cols, order,
            s02, sa2, sb2, param)
    x_top = int(xlen[rows].max())
    y_top = int(ylen[cols].max())
    if rows_per_band is None:
        rows_per_band = band_rows(n_pairs, x_top, y_top, order, weight)
    if not rows_per_band:
        solvers[1](*args, out)
        return
    n_groups = (n_pairs + LANES - 1) // LANES
    n_fine = (max(y_top, 2) - 1) << order
    top = (max(x_top, 2) - 1) << order
    state = np.empty((n_groups, 3, n_fine + 1, LANES))
    for f0 in range(0, top, rows_per_band):
        solvers[4](*args, f0, min(f0 + rows_per_band, top), state, out)
