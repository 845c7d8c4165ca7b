"""Compiled CPU solvers of the Goursat PDE behind the signature kernels.

The signature kernel of two piecewise-linear paths solves
``d2k/ds dt = k <x'(s), y'(t)>`` with ``k = 1`` on the axes.  On the grid of
increments (each cell refined into ``2^m x 2^m`` with the cell's increment
product scaled by ``4^-m``), two explicit second-order updates are solved,
with ``c`` the cell's increment product (or a static kernel's second
difference):

* ``CAYLEY``::

      k[i+1, j+1] = (k[i+1, j] + k[i, j+1]) (1 + (c/2) / (1 - c/4)) - k[i, j]

  It is exactly the inner product of the features
  ``prod_i (1 + dx_i/2) (1 - dx_i/2)^-1`` in the tensor algebra (the Cayley
  transform, a (1, 1) Pade approximant of each step's tensor exponential):
  expanding, a word takes weight 1 for the first letter drawn from a step
  and 1/2 for each further one, a weight that factors letter by letter and
  so over the cells, and the sum over words is the recursion above.  The
  Gram is therefore positive semi-definite at every refinement whenever
  every (refined) step has ``|dx|^2 < 4``, where the features converge;
  the cell's exact value ``sum c^n/(n!)^2`` is matched up to ``c^2``.
* ``TAYLOR`` (sigkernel's and pysiglib's scheme)::

      k[i+1, j+1] = (k[i+1, j] + k[i, j+1]) (1 + c/2 + c^2/12)
                    - k[i, j] (1 - c^2/12)

  the exact cell propagator with linear boundary data, truncated after
  ``c^2``; not a feature inner product: coarse grids give indefinite Grams.

Layout.  A row sweep is a chain of dependent updates, so one pair alone runs
at the latency of an add and a fused multiply-add per cell.  The solvers
therefore advance ``LANES`` independent pairs together: every array carries
the pairs in its last (contiguous) axis and the innermost loop runs over
them, which the compiler turns into SIMD over independent chains.  A group
of ``LANES`` pairs needs only O(length) buffers per lane; no
``(n, m, T, T)`` tensor exists.  Pairs of a group may have different lengths:
paths are padded by repeating their last point, which adds zero increments
and leaves every value unchanged.

Modes of the increment products ``c``:

* ``LINEAR``: ``<dx_i, dy_j>`` from the paths' increments, computed on the
  fly (C multiply-adds per coarse cell);
* ``RBF``: second differences of ``exp(-|x - y|^2 / (2 l^2))`` at the
  points, one row of static-kernel values kept per lane;
* ``GRAM``: second differences read from a precomputed Gram block of the
  points of a tile (any static kernel).

Bands.  A compiled call cannot be interrupted, and one pair's grid can
hold hours of work (``(length - 1)^2 4^order`` cells).  Above twice
:data:`BAND_WORK` cells (counted over all lanes) a call is split into bands
of fine rows of about :data:`BAND_WORK` cells, each a compiled call that
resumes from the last row of the previous one (kept in a state array); the
arithmetic is the same, so the values are bitwise those of one call, and
Ctrl-C takes effect between bands.

Tangents (forward mode) of the kernel with respect to ``log scale`` and, for
RBF, ``log length_scale`` are carried through the same recursion.
"""
import numpy as np
from numba import njit, prange

from .._core.fastmath import FASTMATH
from .._core.tiling import MAX_TILE_WORK

LANES = 16
LINEAR, RBF, GRAM = 0, 1, 2
CAYLEY, TAYLOR = 0, 1
#: Squared length of a refined step (in the static kernel's feature space)
#: at which the CAYLEY features diverge: 1 - c/4 vanishes on the diagonal.
CAYLEY_RADIUS_SQ = 4.0


@njit(inline="always", fastmath=FASTMATH)
def _gather(paths, lengths, index, lo, n_pairs, span, increments):
    """Points (or increments) of the lanes' paths, shape (span, C, LANES)."""
    c_dim = paths.shape[2]
    out = np.empty((span, c_dim, LANES))
    for p in range(LANES):
        q = min(lo + p, n_pairs - 1)     # idle lanes repeat the last pair
        a = index[q]
        for t in range(span):
            for c in range(c_dim):
                if increments:
                    out[t, c, p] = paths[a, t + 1, c] - paths[a, t, c]
                else:
                    out[t, c, p] = paths[a, t, c]
    return out


@njit(inline="always", fastmath=FASTMATH)
def _group_span(lengths, index, lo, n_pairs):
    top = 2
    for p in range(LANES):
        q = min(lo + p, n_pairs - 1)
        top = max(top, lengths[index[q]])
    return top


@njit(inline="always", fastmath=FASTMATH)
def _linear_row(xs, ys, i, n_cols, factor, inc):
    c_dim = xs.shape[1]
    for j in range(n_cols):
        for p in range(LANES):
            inc[j, p] = 0.0
        for c in range(c_dim):
            for p in range(LANES):
                inc[j, p] += xs[i, c, p] * ys[j, c, p]
        for p in range(LANES):
            inc[j, p] *= factor


@njit(inline="always", fastmath=FASTMATH)
def _rbf_row(xs, ys, i, n_cols, gamma, krow, drow):
    """Static-kernel row exp(-gamma |x_i - y_j|^2) and its log-length tangent."""
    c_dim = xs.shape[1]
    for j in range(n_cols + 1):
        for p in range(LANES):
            d2 = 0.0
            for c in range(c_dim):
                diff = xs[i, c, p] - ys[j, c, p]
                d2 += diff * diff
            v = np.exp(-gamma * d2)
            krow[j, p] = v
            drow[j, p] = 2.0 * gamma * d2 * v


@njit(inline="always", fastmath=FASTMATH)
def _gram_row(gram, grow, gcol, lo, n_pairs, i, n_cols, factor, inc):
    """Second differences of the tile's point Gram (padded points repeat the
    last one, so their differences vanish)."""
    for p in range(LANES):
        q = min(lo + p, n_pairs - 1)
        r0 = grow[q] + i
        c0 = gcol[q]
        for j in range(n_cols):
            inc[j, p] = factor * (
                gram[r0 + 1, c0 + j + 1] - gram[r0 + 1, c0 + j]
                - gram[r0, c0 + j + 1] + gram[r0, c0 + j])


@njit(inline="always", fastmath=FASTMATH)
def _second_differences(krow_new, krow_old, n_cols, factor, out):
    """Scaled second differences of two consecutive rows of static-kernel
    values."""
    for j in range(n_cols):
        for p in range(LANES):
            out[j, p] = factor * (krow_new[j + 1, p] - krow_new[j, p]
                                  - krow_old[j + 1, p] + krow_old[j, p])


@njit(inline="always", fastmath=FASTMATH)
def _increment_row(mode, xs, ys, i, n_cols, factor, gamma, gram, grow, gcol,
                   lo, n_pairs, krow_old, krow_new, drow_old, drow_new, inc,
                   dinc, tangent):
    """Increment products of coarse row ``i`` into ``inc``.

    In RBF mode the static-kernel row ``i + 1`` and its log-length-scale
    derivative are left in ``krow_new`` and ``drow_new`` for the caller to
    swap; with ``tangent`` the derivative's second differences go to
    ``dinc`` in the same pass.
    """
    if mode == LINEAR:
        _linear_row(xs, ys, i, n_cols, factor, inc)
    elif mode == RBF:
        _rbf_row(xs, ys, i + 1, n_cols, gamma, krow_new, drow_new)
        if tangent:
            for j in range(n_cols):
                for p in range(LANES):
                    inc[j, p] = factor * (
                        krow_new[j + 1, p] - krow_new[j, p]
                        - krow_old[j + 1, p] + krow_old[j, p])
                    dinc[j, p] = factor * (
                        drow_new[j + 1, p] - drow_new[j, p]
                        - drow_old[j + 1, p] + drow_old[j, p])
        else:
            _second_differences(krow_new, krow_old, n_cols, factor, inc)
    else:
        _gram_row(gram, grow, gcol, lo, n_pairs, i, n_cols, factor, inc)


@njit(inline="always", fastmath=FASTMATH)
def _group_paths(xpaths, xlen, ypaths, ylen, rows, cols, lo, n_pairs,
                 use_points):
    """Spans of a group of lanes and their points (or increments)."""
    tx = _group_span(xlen, rows, lo, n_pairs)
    ty = _group_span(ylen, cols, lo, n_pairs)
    xs = _gather(xpaths, xlen, rows, lo, n_pairs,
                 tx if use_points else tx - 1, not use_points)
    ys = _gather(ypaths, ylen, cols, lo, n_pairs,
                 ty if use_points else ty - 1, not use_points)
    return tx, ty, xs, ys


@njit(inline="always", fastmath=FASTMATH)
def _group_grid(xpaths, xlen, ypaths, ylen, rows, cols, g, order, f0, f1,
                use_points):
    """Group ``g``'s first pair, spans and paths (see :func:`_group_paths`),
    fine columns, and the fine rows ``f0 .. f1`` cut to its grid."""
    lo = g * LANES
    tx, ty, xs, ys = _group_paths(xpaths, xlen, ypaths, ylen, rows, cols,
                                  lo, rows.shape[0], use_points)
    n_fine = (ty - 1) * (1 << order)
    top = (tx - 1) * (1 << order)
    return lo, tx, ty, xs, ys, n_fine, min(f0, top), min(f1, top)


@njit(inline="always", fastmath=FASTMATH)
def _coefficients(inc, n_cols, refine_sq, scheme, a, b):
    for j in range(n_cols):
        for p in range(LANES):
            c = inc[j, p] * refine_sq
            if scheme == CAYLEY:
                a[j, p] = 1.0 + 0.5 * c / (1.0 - 0.25 * c)
                b[j, p] = 1.0
            else:
                c2 = c * c / 12.0
                a[j, p] = 1.0 + 0.5 * c + c2
                b[j, p] = 1.0 - c2


@njit(inline="always", fastmath=FASTMATH)
def _sweep(old, new, a, b, n_fine, m):
    for p in range(LANES):
        new[0, p] = 1.0
    for jf in range(n_fine):
        jc = jf >> m
        for p in range(LANES):
            new[jf + 1, p] = ((new[jf, p] + old[jf + 1, p]) * a[jc, p]
                              - old[jf, p] * b[jc, p])


@njit(inline="always", fastmath=FASTMATH)
def _value_rows(mode, xs, ys, tx, ty, order, scheme, factor, gamma, gram,
                grow, gcol, lo, n_pairs, f0, f1, even, odd, krow_old,
                krow_new, drow, inc, a, b):
    """Fine rows ``f0 + 1 .. f1`` of a group's grid from row ``f0``.

    Fine row ``f`` lives in ``even`` or ``odd`` by the parity of ``f``, so
    that a band of rows resumes where the previous one stopped; ``krow_old``
    holds the static-kernel row of coarse row ``f0 >> order`` (RBF).
    Returns the buffer holding row ``f1`` and the static-kernel row of
    coarse row ``f1 >> order``.
    """
    refine = 1 << order
    refine_sq = 1.0 / (refine * refine)
    n_cols = ty - 1
    n_fine = n_cols * refine
    old = even if (f0 & 1) == 0 else odd
    new = odd if (f0 & 1) == 0 else even
    if mode == RBF and f0 == 0:
        _rbf_row(xs, ys, 0, n_cols, gamma, krow_old, drow)
    for i in range(f0 >> order, (f1 + refine - 1) >> order):
        _increment_row(mode, xs, ys, i, n_cols, factor, gamma, gram,
                       grow, gcol, lo, n_pairs, krow_old, krow_new, drow,
                       drow, inc, inc, False)
        r_stop = min(f1 - (i << order), refine)
        if r_stop == refine:            # the band finishes coarse row i
            krow_old, krow_new = krow_new, krow_old
        _coefficients(inc, n_cols, refine_sq, scheme, a, b)
        for r in range(max(f0 - (i << order), 0), r_stop):
            _sweep(old, new, a, b, n_fine, order)
            old, new = new, old
    return old, krow_old


#: A fine row past every grid's last: the whole-grid solvers' ``f1``.
_ALL_ROWS = 1 << 62


@njit(inline="always", fastmath=FASTMATH)
def _values_group(xpaths, xlen, ypaths, ylen, rows, cols, mode, order,
                  scheme, factor, gamma, gram, grow, gcol, g, f0, f1, banded,
                  state, kstate, out):
    """Group ``g`` of :func:`solve_values` for fine rows ``f0 + 1 .. f1``;
    ``banded`` resumes from ``state[g]``, ``kstate[g]`` and saves into them
    (see :func:`solve_values_band`)."""
    n_pairs = rows.shape[0]
    lo, tx, ty, xs, ys, n_fine, f_lo, f_hi = _group_grid(
        xpaths, xlen, ypaths, ylen, rows, cols, g, order, f0, f1,
        mode != LINEAR)
    n_cols = ty - 1
    inc = np.empty((n_cols, LANES))
    a = np.empty((n_cols, LANES))
    b = np.empty((n_cols, LANES))
    krow_old = np.empty((ty, LANES))
    krow_new = np.empty((ty, LANES))
    drow = np.empty((ty, LANES))
    if banded:
        # the sweeps run on fresh buffers, as in one solve (views of one
        # state array run markedly slower)
        even = np.empty((n_fine + 1, LANES))
        odd = np.empty((n_fine + 1, LANES))
        _copy_rows(state[g], even if (f_lo & 1) == 0 else odd, n_fine + 1)
        _copy_rows(kstate[g], krow_old, ty)
    else:
        even = np.ones((n_fine + 1, LANES))
        odd = np.ones((n_fine + 1, LANES))
    last, krow = _value_rows(mode, xs, ys, tx, ty, order, scheme, factor,
                             gamma, gram, grow, gcol, lo, n_pairs, f_lo,
                             f_hi, even, odd, krow_old, krow_new, drow,
                             inc, a, b)
    if banded:
        _copy_rows(last, state[g], n_fine + 1)
        _copy_rows(krow, kstate[g], ty)
    for p in range(LANES):
        if lo + p < n_pairs:
            out[lo + p] = last[n_fine, p]


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def solve_values(xpaths, xlen, ypaths, ylen, rows, cols, mode, order, scheme,
                 factor, gamma, gram, grow, gcol, out):
    """Signature kernels of the pairs ``(rows[k], cols[k])`` into ``out[k]``.

    ``scheme`` is CAYLEY or TAYLOR; ``factor`` multiplies every increment
    product (scale^2); ``gamma`` is
    the RBF's 1/(2 l^2); ``gram`` is the tile's point Gram for GRAM mode,
    with ``grow[k], gcol[k]`` the offsets of the pair's block in it.
    """
    n_groups = (rows.shape[0] + LANES - 1) // LANES
    no_state = np.empty((0, 0, LANES))
    for g in prange(n_groups):
        _values_group(xpaths, xlen, ypaths, ylen, rows, cols, mode, order,
                      scheme, factor, gamma, gram, grow, gcol, g, 0,
                      _ALL_ROWS, False, no_state, no_state, out)


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def solve_values_band(xpaths, xlen, ypaths, ylen, rows, cols, mode, order,
                      scheme, factor, gamma, gram, grow, gcol, f0, f1,
                      state, kstate, out):
    """:func:`solve_values` for fine rows ``f0 + 1 .. f1`` only.

    ``state[g]`` (shape (n_fine + 1, LANES), ones before the first band)
    carries group ``g``'s last fine row between calls, ``kstate[g]`` its
    static-kernel row (RBF); ``out`` holds the values once ``f1`` reaches
    the last row.
    """
    n_groups = (rows.shape[0] + LANES - 1) // LANES
    for g in prange(n_groups):
        _values_group(xpaths, xlen, ypaths, ylen, rows, cols, mode, order,
                      scheme, factor, gamma, gram, grow, gcol, g, f0, f1,
                      True, state, kstate, out)


@njit(inline="always", fastmath=FASTMATH)
def _copy_rows(src, dst, n):
    for j in range(n):
        for p in range(LANES):
            dst[j, p] = src[j, p]


@njit(inline="always", fastmath=FASTMATH)
def _tangent_coefficients(inc, dinc, n_cols, refine_sq, scheme, da, db):
    n_tan = dinc.shape[0]
    for q in range(n_tan):
        for j in range(n_cols):
            for p in range(LANES):
                c = inc[j, p] * refine_sq
                dc = dinc[q, j, p] * refine_sq
                if scheme == CAYLEY:
                    den = 1.0 - 0.25 * c
                    da[q, j, p] = 0.5 * dc / (den * den)
                    db[q, j, p] = 0.0
                else:
                    da[q, j, p] = (0.5 + c / 6.0) * dc
                    db[q, j, p] = -(c / 6.0) * dc


@njit(inline="always", fastmath=FASTMATH)
def _tangent_sweep(old, new, dold, dnew, a, b, da, db, n_fine, m):
    _sweep(old, new, a, b, n_fine, m)     # the tangents read the new row
    n_tan = dold.shape[0]
    for q in range(n_tan):
        for p in range(LANES):
            dnew[q, 0, p] = 0.0
        for jf in range(n_fine):
            jc = jf >> m
            for p in range(LANES):
                dnew[q, jf + 1, p] = (
                    (dnew[q, jf, p] + dold[q, jf + 1, p]) * a[jc, p]
                    + (new[jf, p] + old[jf + 1, p]) * da[q, jc, p]
                    - dold[q, jf, p] * b[jc, p] - old[jf, p] * db[q, jc, p])


@njit(inline="always", fastmath=FASTMATH)
def _tangent_rows(mode, xs, ys, tx, ty, order, scheme, factor, gamma, gram,
                  grow, gcol, lo, n_pairs, f0, f1, even, odd, deven, dodd,
                  krow_old, krow_new, drow_old, drow_new, inc, dinc, a, b, da,
                  db):
    """:func:`_value_rows` with tangents (``deven``, ``dodd``; ``drow_old``
    the static-kernel row's log-length tangent).  Returns the buffers of
    row ``f1`` and the static-kernel rows of coarse row ``f1 >> order``."""
    refine = 1 << order
    refine_sq = 1.0 / (refine * refine)
    n_tan = dinc.shape[0]
    n_cols = ty - 1
    n_fine = n_cols * refine
    old = even if (f0 & 1) == 0 else odd
    new = odd if (f0 & 1) == 0 else even
    dold = deven if (f0 & 1) == 0 else dodd
    dnew = dodd if (f0 & 1) == 0 else deven
    if mode == RBF and f0 == 0:
        _rbf_row(xs, ys, 0, n_cols, gamma, krow_old, drow_old)
    for i in range(f0 >> order, (f1 + refine - 1) >> order):
        _increment_row(mode, xs, ys, i, n_cols, factor, gamma, gram,
                       grow, gcol, lo, n_pairs, krow_old, krow_new,
                       drow_old, drow_new, inc, dinc[n_tan - 1],
                       n_tan > 1)
        r_stop = min(f1 - (i << order), refine)
        if r_stop == refine:            # the band finishes coarse row i
            krow_old, krow_new = krow_new, krow_old
            drow_old, drow_new = drow_new, drow_old
        # d inc / d log scale = 2 inc (the static kernel is scale^2 kappa)
        for j in range(n_cols):
            for p in range(LANES):
                dinc[0, j, p] = 2.0 * inc[j, p]
        _coefficients(inc, n_cols, refine_sq, scheme, a, b)
        _tangent_coefficients(inc, dinc, n_cols, refine_sq, scheme, da,
                              db)
        for r in range(max(f0 - (i << order), 0), r_stop):
            _tangent_sweep(old, new, dold, dnew, a, b, da, db, n_fine,
                           order)
            old, new = new, old
            dold, dnew = dnew, dold
    return old, dold, krow_old, drow_old


@njit(inline="always", fastmath=FASTMATH)
def _tangents_group(xpaths, xlen, ypaths, ylen, rows, cols, mode, order,
                    scheme, factor, gamma, gram, grow, gcol, g, f0, f1,
                    banded, state, dstate, kstate, out, dout):
    """:func:`_values_group` with tangents (see :func:`solve_tangents_band`
    for ``dstate`` and ``kstate``)."""
    n_pairs = rows.shape[0]
    n_tan = dout.shape[1]
    lo, tx, ty, xs, ys, n_fine, f_lo, f_hi = _group_grid(
        xpaths, xlen, ypaths, ylen, rows, cols, g, order, f0, f1,
        mode != LINEAR)
    n_cols = ty - 1
    inc = np.empty((n_cols, LANES))
    dinc = np.zeros((n_tan, n_cols, LANES))
    a = np.empty((n_cols, LANES))
    b = np.empty((n_cols, LANES))
    da = np.empty((n_tan, n_cols, LANES))
    db = np.empty((n_tan, n_cols, LANES))
    krow_old = np.empty((ty, LANES))
    krow_new = np.empty((ty, LANES))
    drow_old = np.empty((ty, LANES))
    drow_new = np.empty((ty, LANES))
    if banded:
        even = np.empty((n_fine + 1, LANES))
        odd = np.empty((n_fine + 1, LANES))
        deven = np.empty((n_tan, n_fine + 1, LANES))
        dodd = np.empty((n_tan, n_fine + 1, LANES))
        _copy_rows(state[g], even if (f_lo & 1) == 0 else odd, n_fine + 1)
        for q in range(n_tan):
            _copy_rows(dstate[g, q], deven[q] if (f_lo & 1) == 0 else dodd[q],
                       n_fine + 1)
        _copy_rows(kstate[g, 0], krow_old, ty)
        _copy_rows(kstate[g, 1], drow_old, ty)
    else:
        even = np.ones((n_fine + 1, LANES))
        odd = np.ones((n_fine + 1, LANES))
        deven = np.zeros((n_tan, n_fine + 1, LANES))
        dodd = np.zeros((n_tan, n_fine + 1, LANES))
    last, dlast, krow, drow = _tangent_rows(
        mode, xs, ys, tx, ty, order, scheme, factor, gamma, gram, grow,
        gcol, lo, n_pairs, f_lo, f_hi, even, odd, deven, dodd, krow_old,
        krow_new, drow_old, drow_new, inc, dinc, a, b, da, db)
    if banded:
        _copy_rows(last, state[g], n_fine + 1)
        for q in range(n_tan):
            _copy_rows(dlast[q], dstate[g, q], n_fine + 1)
        _copy_rows(krow, kstate[g, 0], ty)
        _copy_rows(drow, kstate[g, 1], ty)
    for p in range(LANES):
        if lo + p < n_pairs:
            out[lo + p] = last[n_fine, p]
            for q in range(n_tan):
                dout[lo + p, q] = dlast[q, n_fine, p]


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def solve_tangents(xpaths, xlen, ypaths, ylen, rows, cols, mode, order,
                   scheme, factor, gamma, gram, grow, gcol, out, dout):
    """Values and tangents: ``dout[k, 0]`` in log scale, ``dout[k, 1]`` in
    log length scale (RBF only)."""
    n_groups = (rows.shape[0] + LANES - 1) // LANES
    no_state = np.empty((0, 0, LANES))
    no_dstate = np.empty((0, 0, 0, LANES))
    for g in prange(n_groups):
        _tangents_group(xpaths, xlen, ypaths, ylen, rows, cols, mode, order,
                        scheme, factor, gamma, gram, grow, gcol, g, 0,
                        _ALL_ROWS, False, no_state, no_dstate, no_dstate,
                        out, dout)


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def solve_tangents_band(xpaths, xlen, ypaths, ylen, rows, cols, mode, order,
                        scheme, factor, gamma, gram, grow, gcol, f0, f1,
                        state, dstate, kstate, out, dout):
    """:func:`solve_tangents` for fine rows ``f0 + 1 .. f1`` only, carried
    over in ``state`` (see :func:`solve_values_band`), ``dstate[g]``
    (shape (n_tan, n_fine + 1, LANES), zeros before the first band) and
    ``kstate[g]`` (the static-kernel row and its tangent, (2, ty, LANES))."""
    n_groups = (rows.shape[0] + LANES - 1) // LANES
    for g in prange(n_groups):
        _tangents_group(xpaths, xlen, ypaths, ylen, rows, cols, mode, order,
                        scheme, factor, gamma, gram, grow, gcol, g, f0, f1,
                        True, state, dstate, kstate, out, dout)


#: Cells (times lanes, and tangents) of one compiled call: larger solves run
#: in bands of fine rows of about this much work, so that Ctrl-C is honoured
#: within a fraction of a second.
BAND_WORK = MAX_TILE_WORK


def band_rows(n_pairs, x_top, y_top, order, weight=1.0):
    """Fine rows per band for ``n_pairs`` pairs of paths of at most ``x_top``
    and ``y_top`` points, or 0 where one call is short enough."""
    n_groups = (n_pairs + LANES - 1) // LANES
    n_fine = (max(y_top, 2) - 1) << order
    per_row = weight * n_groups * LANES * n_fine
    if per_row * ((max(x_top, 2) - 1) << order) <= 2 * BAND_WORK:
        return 0
    return max(1, int(BAND_WORK // per_row))


def solve(xpaths, xlen, ypaths, ylen, rows, cols, mode, order, scheme,
          factor, gamma, gram, grow, gcol, out, dout=None, rows_per_band=None):
    """:func:`solve_values` (or :func:`solve_tangents` with ``dout``), in
    bands of ``rows_per_band`` fine rows (by default from
    :func:`band_rows`) where the work is large."""
    n_pairs = rows.shape[0]
    args = (xpaths, xlen, ypaths, ylen, rows, cols, mode, order, scheme,
            factor, gamma, gram, grow, gcol)
    if n_pairs == 0:
        return
    x_top = int(xlen[rows].max())
    y_top = int(ylen[cols].max())
    n_tan = 0 if dout is None else dout.shape[1]
    if rows_per_band is None:
        rows_per_band = band_rows(n_pairs, x_top, y_top, order,
                                  1.0 + 2.0 * n_tan)
    if not rows_per_band:
        if dout is None:
            solve_values(*args, out)
        else:
            solve_tangents(*args, out, dout)
        return
    n_groups = (n_pairs + LANES - 1) // LANES
    n_fine = (max(y_top, 2) - 1) << order
    top = (max(x_top, 2) - 1) << order
    ty = max(y_top, 2)
    state = np.ones((n_groups, n_fine + 1, LANES))
    if dout is None:
        kstate = np.empty((n_groups, ty, LANES))
        for f0 in range(0, top, rows_per_band):
            solve_values_band(*args, f0, min(f0 + rows_per_band, top),
                              state, kstate, out)
        return
    dstate = np.zeros((n_groups, n_tan, n_fine + 1, LANES))
    kstate = np.empty((n_groups, 2, ty, LANES))
    for f0 in range(0, top, rows_per_band):
        solve_tangents_band(*args, f0, min(f0 + rows_per_band, top), state,
                            dstate, kstate, out, dout)
