"""Tile planning and the tiled Gram driver shared by every kernel engine.

Tiles are bounded in memory (the ``memory_budget``) and in time: a compiled
call cannot be interrupted, so Ctrl-C takes effect only between tiles, and a
tile holds at most :data:`MAX_TILE_WORK` elementary updates (pair-layers,
PDE cells), a fraction of a second of work.
"""
import math
import warnings

import numba
import numpy as np
from numba import njit, prange

from .config import get_config
from .progress import progress  # noqa: F401  (the kernels import it here)
from .validation import caller_stacklevel

#: Elementary updates one compiled call may do (about 0.1-0.5 s of work).
MAX_TILE_WORK = 5e7
#: Updates per second and thread assumed by the cost estimate (a lower bound
#: for the closed-form activations on current processors).
UPDATES_PER_SECOND = 1e8
#: Estimated seconds above which a computation warns before it starts.
LONG_COMPUTATION = 600.0


class LongComputationWarning(UserWarning):
    """A Gram computation is estimated to take a long time."""


def warn_if_long(work, what, advice):
    """Warn (before starting) if ``work`` updates look like a long wait.

    The estimate assumes :data:`UPDATES_PER_SECOND` per numba thread; it is
    rough, but tells an hour from a minute.
    """
    seconds = work / (UPDATES_PER_SECOND * max(1, numba.get_num_threads()))
    if seconds > LONG_COMPUTATION:
        warnings.warn(
            f"{what}: about {work:.2g} elementary updates, estimated at "
            f"{seconds / 60:.0f} minutes or more on {numba.get_num_threads()}"
            f" threads. {advice} Ctrl-C stops it between tiles.",
            LongComputationWarning, stacklevel=caller_stacklevel())
    return seconds


def plan_block(n_rows, n_cols, bytes_per_pair, symmetric=False, budget=None,
               work_per_pair=0.0, min_pairs=1024):
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
    work_per_pair : float
        Elementary updates one output entry costs; tiles hold at most
        :data:`MAX_TILE_WORK` of them (but at least ``min_pairs`` pairs), so
        that each compiled call returns quickly and Ctrl-C is honoured.

    Returns
    -------
    (block_rows, block_cols) : tuple of int
    """
    budget = get_config()["memory_budget"] if budget is None else budget
    max_pairs = max(1, int(budget // max(bytes_per_pair, 1)))
    if work_per_pair > 0:
        max_pairs = min(max_pairs, max(min_pairs,
                                       int(MAX_TILE_WORK // work_per_pair)))
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


def block_pairs(rows, cols, on_diagonal):
    """The ``(row, col)`` index pairs of a block of :func:`iter_blocks`, as
    two int64 arrays; on the diagonal only those with ``row <= col``."""
    rr, cc = np.meshgrid(np.arange(rows.start, rows.stop),
                         np.arange(cols.start, cols.stop), indexing="ij")
    if on_diagonal:
        keep = rr <= cc
        rr, cc = rr[keep], cc[keep]
    return (np.ascontiguousarray(rr.ravel(), dtype=np.int64),
            np.ascontiguousarray(cc.ravel(), dtype=np.int64))


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
