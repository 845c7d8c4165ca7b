"""Compiled CPU tile kernels of the convolutional recursion.

A kernel runs :func:`skinfinite.recursions.convolutional.one_pair` (or its
tangents) for a list of pairs of inputs, spread over parallel chunks; each
chunk owns the position-pair buffers of one pair at a time.  The kernels are
generic in the activation family and close over the source stamp, so that
numba keeps them in its disk cache (see
:mod:`skinfinite.activations.families`).
"""
import math

import numba
import numpy as np
from numba import njit, prange

from ..._core.compiled import SOURCE_STAMP
from ...recursions.convolutional import (one_pair, one_pair_tangents,
                                         store_tangents)


def _cached_kernels(stamp):
    # closing over nothing but the source stamp, so that numba caches them
    # on disk and a change to any source gives them a new cache key

    @njit(parallel=True, cache=True)
    def values(xv, xw, yv, yw, prow, pcol, h, dils, vx, vy, nx, ny, fh, fw,
               sh, sw, padding, depth, dgx, sgx, dgy, sgy, cx, cy, family, sw2, sb2,
               readout, want_t, nchunks, out):
        stamp_ = stamp  # noqa: F841 (keys the disk cache on the sources)
        npairs = prow.shape[0]
        pxmax = h * xv.shape[3]
        pymax = h * yv.shape[3]
        for chunk in prange(nchunks):
            # buffers of one pair of inputs, reused across the chunk's pairs
            g = np.empty((pxmax, pymax))
            s = np.empty((pxmax, pymax))
            vv = np.empty((pxmax, pymax) if depth > 1 else (1, 1))
            tsz = (pxmax, pymax) if want_t else (1, 1)
            th = np.empty(tsz)
            tv = np.empty(tsz if depth > 1 else (1, 1))
            for pi in range(chunk, npairs, nchunks):
                i = prow[pi]
                j = pcol[pi]
                kacc, tacc = one_pair(xv, xw[i], yv, yw[j], i, j, h, dils,
                                      vx, vy, fh, fw, sh, sw, padding, depth,
                                      dgx, sgx, dgy, sgy, cx, cy, family, sw2,
                                      sb2, readout, want_t, g, s, vv, th, tv)
                scale = sw2 / math.sqrt(nx[i] * ny[j])
                k_out = scale * kacc + sb2
                out[pi, 0] = k_out
                if want_t:
                    out[pi, 1] = k_out + scale * tacc

    @njit(parallel=True, cache=True)
    def tangents(xv, xw, yv, yw, prow, pcol, h, dils, vx, vy, nx, ny, fh, fw,
                 sh, sw, padding, depth, dgx, sgx, tgx, dgy, sgy, tgy, cx, cy, family,
                 sw2, sb2, readout, nchunks, out):
        stamp_ = stamp  # noqa: F841
        npairs = prow.shape[0]
        pxmax = h * xv.shape[3]
        pymax = h * yv.shape[3]
        for chunk in prange(nchunks):
            g = np.empty((pxmax, pymax))
            st = np.empty((6, pxmax, pymax))
            ut = np.empty((6, pxmax, pymax))
            for pi in range(chunk, npairs, nchunks):
                i = prow[pi]
                j = pcol[pi]
                a = one_pair_tangents(xv, xw[i], yv, yw[j], i, j, h, dils, vx,
                                      vy, fh, fw, sh, sw, padding, depth, dgx,
                                      sgx, tgx, dgy, sgy, tgy, cx, cy, family,
                                      sw2, sb2, readout, g, st, ut)
                scale = sw2 / math.sqrt(nx[i] * ny[j])
                store_tangents(out, pi, scale, sb2, readout, a[0], a[1], a[2],
                               a[3], a[4], a[5])
    return values, tangents


_VALUES, _TANGENTS = _cached_kernels(SOURCE_STAMP)


def activation_family(activation):
    """The family tuple the kernels take for ``activation``."""
    family = activation.family
    if family is None:
        raise ValueError(
            f"The convolutional kernels have no compiled duals for "
            f"{activation!r}; pass it as a callable (integrated by "
            "quadrature) instead.")
    return family


def _chunks(rows):
    return min(rows.shape[0], 4 * numba.get_num_threads())


def pair_values(x, y, spec, rows, cols, prepared_x, prepared_y, want_t, out):
    """NNGP (column 0) and NTK (column 1) of the pairs ``(rows, cols)`` of
    the grids ``x`` and ``y`` into ``out``.

    ``spec`` is a :class:`~skinfinite.recursions.convolutional.ConvSpec`;
    ``prepared_*`` hold each input's per-position variances, their square
    roots and coefficient rows.
    """
    _VALUES(x.values, x.widths, y.values, y.widths, rows, cols,
            x.values.shape[2], np.asarray(spec.dilations, dtype=np.int64),
            x.valid, y.valid, x.counts, y.counts, spec.fh, spec.fw,
            spec.strides[0], spec.strides[1], spec.padding, spec.depth, prepared_x[0], prepared_x[1], prepared_y[0],
            prepared_y[1], prepared_x[2], prepared_y[2],
            activation_family(spec.activation), spec.weight_variance,
            spec.bias_variance, spec.readout, bool(want_t), _chunks(rows),
            out)


def pair_tangents(x, spec, rows, cols, dg, sg, dgrad, cx, out):
    """K, T, dK/dlog sw2, dK/dlog sb2, dT/dlog sw2, dT/dlog sb2 (columns of
    ``out``) of the pairs ``(rows, cols)`` of the grids ``x`` with themselves.

    ``dg``, ``sg``, ``dgrad`` and ``cx`` are the inputs' per-position
    variances, their square roots, their tangents and coefficient rows.
    """
    _TANGENTS(x.values, x.widths, x.values, x.widths, rows, cols,
              x.values.shape[2], np.asarray(spec.dilations, dtype=np.int64),
              x.valid, x.valid, x.counts, x.counts, spec.fh, spec.fw,
              spec.strides[0], spec.strides[1], spec.padding, spec.depth, dg, sg, dgrad, dg, sg, dgrad, cx, cx,
              activation_family(spec.activation), spec.weight_variance,
              spec.bias_variance, spec.readout, _chunks(rows), out)
