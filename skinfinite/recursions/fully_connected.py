"""The depth recursion of fully-connected NNGP/NTK kernels.

The layer maps are written once, as plain arithmetic, and used both on NumPy
arrays (the per-input diagonal recursion) and, compiled by numba, on scalars
inside the fused tile kernels of :mod:`skinfinite.engine.cpu.fully_connected`
and :mod:`skinfinite.engine.cuda.fully_connected`.  A fused kernel runs the
whole depth recursion for a small block of pairs held in registers/L1, so no
per-layer n x m temporary is ever created.

Hyperparameter tangents are carried with respect to ``log(weight_variance)``
(index 0) and ``log(bias_variance)`` (index 1).
"""
from dataclasses import dataclass

import numpy as np
from numba import njit

from .._core.fastmath import FASTMATH
from ..activations.definitions import Activation
from .path import DiagonalPath


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


def _layer_with_tangents(p, t, dk_w, dk_b, dt_w, dt_b, dkxx_w, dkyy_w,
                         dkxx_b, dkyy_b, sw2, sb2, std):
    """One hidden layer of a pair with its tangents, from the dual's
    partials ``p`` (see ``_duals``) at the pair's covariance."""
    k, t_new = _hidden_layer_nb(p[0], p[1], t, sw2, sb2, std)
    dk_w, dk_b, dt_w, dt_b = _hidden_tangents_nb(
        p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7],
        dkxx_w, dk_w, dkyy_w, dkxx_b, dk_b, dkyy_b, t, dt_w, dt_b,
        sw2, sb2, std)
    return k, t_new, dk_w, dk_b, dt_w, dt_b


#: the layer maps as plain arithmetic, for other array types (torch tensors)
input_layer, hidden_layer = _input_layer, _hidden_layer

_input_layer_nb = njit(inline="always", fastmath=FASTMATH)(_input_layer)
_input_tangents_nb = njit(inline="always", fastmath=FASTMATH)(_input_tangents)
_hidden_layer_nb = njit(inline="always", fastmath=FASTMATH)(_hidden_layer)
_hidden_tangents_nb = njit(inline="always", fastmath=FASTMATH)(_hidden_tangents)
layer_with_tangents_nb = njit(inline="always",
                              fastmath=FASTMATH)(_layer_with_tangents)


# ------------------------------------------------------- one pair, compiled
def make_layer_gradients(partials, row):
    """The hidden layers of :func:`make_pair_gradients` alone, from a
    pair's values and tangents after the layers before ``dx[0]`` (the CPU
    kernels that run the layers a range at a time resume with it)."""
    @njit(inline="always", fastmath=FASTMATH)
    def layers(k, t, dk_w, dk_b, dt_w, dt_b, x, y, dx, dy, sx, sy, cx, cy,
               param, sw2, sb2, std):
        for layer in range(dx.shape[0]):
            ax = row(param, cx, layer, x)
            ay = row(param, cy, layer, y)
            p = partials(dx[layer, 0, x], k, dy[layer, 0, y],
                         sx[layer, x] * sy[layer, y], ax, ay, param)
            k, t, dk_w, dk_b, dt_w, dt_b = layer_with_tangents_nb(
                p, t, dk_w, dk_b, dt_w, dt_b, dx[layer, 1, x],
                dy[layer, 1, y], dx[layer, 2, x], dy[layer, 2, y],
                sw2, sb2, std)
        return k, t, dk_w, dk_b, dt_w, dt_b
    return layers


def make_pair_gradients(partials, row, layers=None):
    """Values and log-variance tangents of one pair through all layers.

    The one gradient recursion that both the CPU and the CUDA kernels
    compile.  ``dx[layer]`` holds (Kxx, dKxx/dlog sw2, dKxx/dlog sb2) for
    every input; ``x`` and ``y`` index the pair's inputs; ``row(param, cx,
    layer, x)`` gives the coefficient row the partials read (see
    :mod:`skinfinite.activations.families`).  ``layers`` is
    :func:`make_layer_gradients`' function as the caller runs it (numba's
    CUDA simulator runs Python functions only); by default its compiled
    form.
    """
    if layers is None:
        layers = make_layer_gradients(partials, row)

    @njit(inline="always", fastmath=FASTMATH)
    def pair(gij, x, y, dx, dy, sx, sy, cx, cy, param, sw2, sb2, std):
        k, t = _input_layer_nb(gij, sw2, sb2, std)
        dk_w, dk_b, dt_w, dt_b = _input_tangents_nb(gij, sw2, sb2, std)
        return layers(k, t, dk_w, dk_b, dt_w, dt_b, x, y, dx, dy, sx, sy, cx,
                      cy, param, sw2, sb2, std)
    return pair


# ------------------------------------------------------------------ the spec
@dataclass(frozen=True)
class FullyConnectedSpec:
    """A fully-connected network, as a recursion for the Gram engine.

    ``standard`` selects the standard parametrisation (``std`` 1.0) over
    the NTK one (0.0).
    """

    depth: int
    activation: Activation
    weight_variance: float
    bias_variance: float
    standard: bool = False

    @property
    def std(self):
        return 1.0 if self.standard else 0.0

    def diagonal(self, sq_norms, with_tangents=False):
        return diagonal_recursion(sq_norms, self, with_tangents)

    def describe(self):
        return (f"depth={self.depth}, weight_variance={self.weight_variance}")


def diagonal_recursion(sq_norms, spec, with_tangents=False):
    """Run the recursion of each input against itself (once per input).

    Returns
    -------
    DiagonalPath
        ``stages[l]`` holds ``Kxx`` and its tangents before hidden layer l.
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
    if not (np.all(np.isfinite(k)) and np.all(np.isfinite(t))):
        raise FloatingPointError(
            f"The kernel overflowed through {spec.depth} layers with "
            f"weight_variance={spec.weight_variance}; lower the depth or the "
            "weight variance (for ReLU, 2.0 keeps the scale constant).")
    return DiagonalPath(layers[:spec.depth], k, t, np.stack([dk_w, dk_b]),
                        np.stack([dt_w, dt_b]))
