"""The tiled Gram driver on a GPU.

The same recursions as :mod:`skinfinite.engine.driver` run here, with one CUDA thread per pair
of inputs: the per-input diagonals are computed once on the host (O(n depth)),
the inner products of a tile come from one cuBLAS matrix product, and a
kernel compiled by numba-cuda from the *same* scalar layer maps and duals as
the CPU kernels runs the whole depth recursion of each pair in registers.

Tiles are planned against the device's free memory.  A tile that still runs
out of memory is split in smaller tiles and retried, so a crowded device slows
the computation down instead of failing it.  Outputs stay on the device
(inputs given as device arrays) or are assembled in host memory tile by tile,
which also serves Gram matrices larger than the device.
"""
import math

import numpy as np

from ..._core.tiling import iter_blocks, plan_block
from .. import registry
from ..tiles import raise_overflow, sq_norms, stage_arrays

THREADS = (16, 16)  # (columns, rows) of pairs per CUDA block


def gram(X, Y, recursion, want, eval_gradient, dtype, backend, on_device):
    """NNGP and/or NTK Gram blocks on the GPU; see :func:`skinfinite.engine.driver.gram`.

    ``X`` and ``Y`` are float64 arrays of ``backend``; outputs are arrays of
    ``backend`` when ``on_device`` is True, NumPy arrays otherwise.
    """
    xp = backend.xp
    symmetric = Y is None
    # recursions with adaptive steps choose them on a probe of host pairs
    recursion = registry.resolve(recursion, backend.to_host(X),
                                 None if symmetric else backend.to_host(Y))
    Y = X if symmetric else Y
    n, m, d = X.shape[0], Y.shape[0], X.shape[1]
    path_x = recursion.diagonal(_host_sq_norms(X, backend), eval_gradient)
    path_y = path_x if symmetric else recursion.diagonal(
        _host_sq_norms(Y, backend), eval_gradient)
    stages_x = _device_stages(recursion, path_x, eval_gradient, backend)
    stages_y = stages_x if symmetric else _device_stages(
        recursion, path_y, eval_gradient, backend)
    values_kernel, grad_kernel = registry.cuda_kernels(recursion)
    outputs = _Outputs(n, m, want, eval_gradient, dtype, backend, on_device)
    bad = xp.zeros(1, np.int32)
    limit = float(np.finfo(dtype).max)
    # the CUDA kernels take the activation's parameter as a float
    arguments = registry.architecture(recursion).kernel_arguments(
        recursion, recursion.activation.parameter)
    scalars = tuple(backend.asarray(a, np.float64)
                    if isinstance(a, np.ndarray) else a
                    for a in arguments)

    def run_tile(rows, cols, on_diagonal):
        g = backend.empty((rows.stop - rows.start, cols.stop - cols.start),
                          np.float64)
        xp.matmul(X[rows], Y[cols].T, out=g)
        g /= d
        targets = outputs.tile_targets(rows, cols)
        grid = (math.ceil(g.shape[1] / THREADS[0]),
                math.ceil(g.shape[0] / THREADS[1]))
        interleaved = tuple(a for pair in zip(stages_x, stages_y) for a in pair)
        common = (g, rows.start, cols.start) + interleaved + scalars
        if eval_gradient:
            grad_kernel[grid, THREADS](*common, on_diagonal, *targets)
        else:
            values_kernel[grid, THREADS](*common, on_diagonal, *targets[:2],
                                         outputs.want_k, outputs.want_t,
                                         limit, bad)
        outputs.store_tile(rows, cols, targets, symmetric and not on_diagonal)

    budget = min(0.5 * backend.free_memory(), 2.0 ** 62)
    block = plan_block(n, m, outputs.scratch_bytes_per_pair, symmetric,
                       budget=budget)
    for rows, cols, on_diagonal in iter_blocks(n, m, block, symmetric):
        _run_splitting_on_oom(run_tile, rows, cols, on_diagonal, backend)
    return outputs.finish(path_x, symmetric, int(bad[0]), recursion, limit)


def _host_sq_norms(X, backend):
    # np.einsum dispatches to CuPy for device arrays
    return np.asarray(backend.to_host(sq_norms(X)), dtype=np.float64)


def _device_stages(recursion, path, with_tangents, backend):
    return tuple(backend.asarray(a, np.float64)
                 for a in stage_arrays(recursion, path, with_tangents))


def _run_splitting_on_oom(run_tile, rows, cols, on_diagonal, backend):
    try:
        run_tile(rows, cols, on_diagonal)
    except backend.oom_errors:
        backend.release_memory()
        parts = _split(rows, cols, on_diagonal)
        if parts is None:
            raise
        for part in parts:
            _run_splitting_on_oom(run_tile, *part, backend)


def _split(rows, cols, on_diagonal):
    """Two or three smaller tiles covering a tile, or None for a single pair.

    A tile on the diagonal of a symmetric Gram splits into two diagonal tiles
    and the off-diagonal tile between them; its lower part is mirrored.
    """
    def halves(s):
        mid = (s.start + s.stop) // 2
        return slice(s.start, mid), slice(mid, s.stop)

    nr, nc = rows.stop - rows.start, cols.stop - cols.start
    if nr <= 1 and nc <= 1:
        return None
    if on_diagonal:
        top, bottom = halves(rows)
        return [(top, top, True), (top, bottom, False),
                (bottom, bottom, True)]
    if nr >= nc:
        return [(half, cols, False) for half in halves(rows)]
    return [(rows, half, False) for half in halves(cols)]


class _Outputs:
    """The requested Gram matrices (and gradients), on device or host."""

    def __init__(self, n, m, want, eval_gradient, dtype, backend, on_device):
        self.backend, self.on_device = backend, on_device
        self.dtype, self.want, self.eval_gradient = dtype, want, eval_gradient
        self.want_k, self.want_t = "nngp" in want, "ntk" in want
        alloc_k = self.want_k or eval_gradient
        alloc_t = self.want_t or eval_gradient
        self.shapes = [(n, m) if alloc_k else None, (n, m) if alloc_t else None]
        if eval_gradient:
            self.shapes += [(n, m, 2), (n, m, 2)]
        new = backend.empty if on_device else np.empty
        self.arrays = [new(s, dtype) if s else None for s in self.shapes]
        per_output = np.dtype(dtype).itemsize * (6 if eval_gradient else 2)
        # the tile of inner products, plus the tiles of outputs when the
        # result is assembled on the host
        self.scratch_bytes_per_pair = 8 + (0 if on_device else per_output)

    def tile_targets(self, rows, cols):
        """Device arrays the kernel writes a tile into."""
        shape = (rows.stop - rows.start, cols.stop - cols.start)
        targets = []
        for full, tile_shape in zip(self.arrays, self.shapes):
            if tile_shape is None:
                targets.append(self.backend.empty((1, 1), self.dtype))
            elif self.on_device:
                targets.append(full[rows, cols])
            else:
                targets.append(self.backend.empty(shape + tile_shape[2:],
                                                  self.dtype))
        return targets

    def store_tile(self, rows, cols, targets, mirror):
        for full, tile in zip(self.arrays, targets):
            if full is None:
                continue
            if not self.on_device:
                tile = self.backend.to_host(tile)
                full[rows, cols] = tile
            if mirror:
                full[cols, rows] = tile.swapaxes(0, 1)

    def finish(self, path, symmetric, n_bad, recursion, limit):
        xp = self.backend.xp if self.on_device else np
        out_k, out_t = self.arrays[:2]
        grads = self.arrays[2:] if self.eval_gradient else [None, None]
        result = {}
        for name, out, diag, grad, diag_grad in (
                ("nngp", out_k, path.nngp, grads[0], path.nngp_grad),
                ("ntk", out_t, path.ntk, grads[1], path.ntk_grad)):
            if name not in self.want:
                continue
            if symmetric:
                # the per-input recursion gives exact diagonals, as on the CPU
                if not np.all(np.abs(diag) <= limit):
                    raise_overflow(name, recursion)
                idx = xp.arange(out.shape[0])
                out[idx, idx] = xp.asarray(diag, dtype=self.dtype)
                if grad is not None:
                    grad[idx, idx] = xp.asarray(diag_grad.T, dtype=self.dtype)
            if grad is not None and not bool(xp.isfinite(out).all()):
                raise_overflow(name, recursion)
            elif n_bad:
                raise_overflow("/".join(w.upper() for w in self.want),
                               recursion)
            result[name] = out
            if grad is not None:
                result[name + "_gradient"] = grad
        return result
