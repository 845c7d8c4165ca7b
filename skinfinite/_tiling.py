"""Tile planning and the tiled Gram driver shared by every kernel engine."""
import math

from numba import njit, prange

from ._config import get_config
from ._progress import progress  # noqa: F401  (the kernels import it here)


def plan_block(n_rows, n_cols, bytes_per_pair, symmetric=False, budget=None):
    """Choose a block shape whose scratch memory fits the memory budget.

    Parameters
    ----------
    n_rows, n_cols : int
        Size of the full output.
    bytes_per_pair : float
        Scratch memory one output entry costs while its block is computed.
    symmetric : bool
        Square blocks, so that blocks below the diagonal can be skipped.
    budget : int, optional
        Bytes; defaults to ``get_config()["memory_budget"]``.

    Returns
    -------
    (block_rows, block_cols) : tuple of int
    """
    budget = get_config()["memory_budget"] if budget is None else budget
    max_pairs = max(1, int(budget // max(bytes_per_pair, 1)))
    side = max(1, math.isqrt(max_pairs))
    if symmetric:
        side = min(side, n_rows)
        return side, side
    rows = min(n_rows, side)
    cols = min(n_cols, max(side, max_pairs // max(rows, 1)))
    rows = min(n_rows, max(rows, max_pairs // max(cols, 1)))
    return rows, cols


def iter_blocks(n_rows, n_cols, block, symmetric=False):
    """Yield ``(row_slice, col_slice, on_diagonal)`` covering the output.

    With ``symmetric=True`` only blocks on or above the diagonal are yielded.
    """
    br, bc = block
    for r0 in range(0, n_rows, br):
        c_start = r0 if symmetric else 0
        for c0 in range(c_start, n_cols, bc):
            yield (slice(r0, min(r0 + br, n_rows)),
                   slice(c0, min(c0 + bc, n_cols)),
                   symmetric and r0 == c0)


def count_blocks(n_rows, n_cols, block, symmetric=False):
    br, bc = block
    nr, nc = -(-n_rows // br), -(-n_cols // bc)
    return nr * (nr + 1) // 2 if symmetric else nr * nc


@njit(parallel=True, cache=True)
def _mirror_2d(a):
    n = a.shape[0]
    for i in prange(n):
        for j in range(i):
            a[i, j] = a[j, i]


@njit(parallel=True, cache=True)
def _mirror_3d(a):
    n = a.shape[0]
    for i in prange(n):
        for j in range(i):
            for p in range(a.shape[2]):
                a[i, j, p] = a[j, i, p]


def mirror_upper(a):
    """Copy the upper triangle of a square (n, n[, p]) array onto the lower."""
    if a.ndim == 2:
        _mirror_2d(a)
    else:
        _mirror_3d(a)
    return a
