r"""Criticality of deep fully-connected networks at infinite width.

For a fully-connected network with weight variance ``C_W`` and bias variance
``C_b`` (``weight_variance`` and ``bias_variance`` of
:class:`skinfinite.kernels.NNGP`), the variance of a single input obeys

.. math::

    K' = C_b + C_W \langle \phi(z)^2 \rangle_K, \qquad z \sim N(0, K),

and perturbations around a fixed point ``K*`` grow or shrink with depth by
the two susceptibilities

.. math::

    \chi_\parallel(K) = C_W \frac{d}{dK}\langle \phi^2 \rangle_K
                      = C_W \langle \phi'^2 + \phi\,\phi'' \rangle_K,
    \qquad
    \chi_\perp(K) = C_W \langle \phi'^2 \rangle_K.

``chi_parallel`` governs the variance of one input, ``chi_perpendicular``
the distance between two nearby inputs. A network is *critical* when both
equal one at the fixed point: the kernel then neither forgets its input
exponentially fast (ordered phase, ``chi_perp < 1``) nor makes nearby inputs
diverge (chaotic phase, ``chi_perp > 1``). See Schoenholz, Gilmer, Ganguli
and Sohl-Dickstein (2017), "Deep information propagation", and Roberts, Yaida
and Hanin (2022), "The Principles of Deep Learning Theory", chapter 5.

The single-input expectations are one-dimensional. Activations with closed
forms use their exact duals; every other activation is integrated here with
a trapezoidal rule in ``z / sqrt(K)`` whose step shrinks like
``1 / sqrt(K)``, so that features of fixed width in ``phi`` (the bend of
GELU or swish, the poles of tanh and sigmoid in the complex plane) stay
resolved at large variances. For the smooth built-in activations the
expectations are then accurate to about 1e-13 relative at variances up to
1e6. An activation with a kink (a jump in ``phi'``) passed as a plain
callable is integrated to first order in the step only, with errors of up
to about 10% in ``<phi'^2>``.
"""
import functools
import math
from typing import NamedTuple

import numpy as np
from scipy.optimize import brentq

from .._core.validation import check_variance
from ..activations.definitions import LeakyReLU, get_activation

__all__ = ["CriticalPoint", "chi_parallel", "chi_perpendicular",
           "fixed_point", "critical_variances", "edge_of_chaos",
           "correlation_map"]

_Z_MAX = 10.0           # Gaussian weight exp(-50): negligible for any phi
_K_TINY = 1e-12         # below it, d<phi^2>/dK is taken from its K -> 0 limit
_K_MAX = 1e6            # larger fixed points count as a diverging variance
_TOUCH_RTOL = 1e-10     # |K' - K| counted as zero at a tangent fixed point


# --------------------------------------------------------------- utilities
def _name(act):
    return getattr(act, "name", None) or type(act).__name__.lower()


def _check_variances(k):
    k = np.asarray(k, dtype=np.float64)
    if not np.all(np.isfinite(k)) or np.any(k < 0):
        raise ValueError("K must be finite and >= 0.")
    return k


def _as_output(values, shape):
    values = np.asarray(values, dtype=np.float64).reshape(shape)
    return float(values) if values.ndim == 0 else values


# ----------------------------------------------------- Gaussian moments
@functools.lru_cache(maxsize=32)
def _half_line_rule(level):
    """Trapezoidal nodes and weights on [0, Z] with step 2**-level.

    Integrands are folded, ``f(u) + f(-u)``, so only half the line is needed.
    """
    h = 2.0 ** -level
    u = np.arange(0.0, _Z_MAX + h / 2, h)
    w = h * np.exp(-0.5 * u * u) / math.sqrt(2 * math.pi)
    w[0] *= 0.5
    w[-1] *= 0.5
    return u, w


def _step_level(k):
    # A step of at most 1/4 in x = sqrt(K) u keeps the tanh poles at
    # x = i pi / 2 far enough for a 1e-17 trapezoid error (the error
    # falls like exp(-2 pi d / h) for a pole at distance d).
    return max(3, math.ceil(math.log2(4.0 * math.sqrt(k) + 1e-300)))


def _second_derivative_at_zero(act):
    if hasattr(act, "second_derivative"):
        return float(act.second_derivative(np.zeros(1))[0])
    h = 1e-5
    d = act.derivative(np.array([h, -h]))
    return float(d[0] - d[1]) / (2 * h)


def _quadrature_moments(act, k):
    """``<phi^2>, <phi'^2>, d<phi^2>/dK`` at a 1-D array of variances."""
    out = np.empty((3, k.size))
    levels = np.array([_step_level(ki) for ki in k])
    for level in np.unique(levels):
        u, w = _half_line_rule(level)
        rows = np.flatnonzero(levels == level)
        step = max(1, 2 ** 20 // u.size)
        for s in range(0, rows.size, step):
            idx = rows[s:s + step]
            sd = np.sqrt(k[idx])
            x = sd[:, None] * u
            up, down = act(x), act(-x)
            d_up, d_down = act.derivative(x), act.derivative(-x)
            out[0, idx] = (up * up + down * down) @ w
            out[1, idx] = (d_up * d_up + d_down * d_down) @ w
            # Stein's lemma, <z g(z)> = K <g'(z)>, with g = phi phi' gives
            # d<phi^2>/dK = <phi'^2 + phi phi''> without a second derivative.
            with np.errstate(divide="ignore", invalid="ignore"):
                out[2, idx] = (u * (up * d_up - down * d_down)) @ w / sd
    small = k <= _K_TINY
    if np.any(small):
        # the Stein quotient is 0/0 at K = 0: use its limit
        zero = np.zeros(1)
        phi0, d0 = float(act(zero)[0]), float(act.derivative(zero)[0])
        out[2, small] = d0 * d0 + phi0 * _second_derivative_at_zero(act)
    return out


def _moments(act, k):
    """``(<phi^2>_K, <phi'^2>_K, d<phi^2>_K / dK)`` for an array of ``K``."""
    k = np.asarray(k, dtype=np.float64)
    if act.closed_form:
        V, Vd, v_xx, v_xy, v_yy = act.dual_partials(k, k, k)[:5]
        return np.asarray(V), np.asarray(Vd), np.asarray(v_xx + v_xy + v_yy)
    with np.errstate(over="ignore", invalid="ignore"):
        out = _quadrature_moments(act, k.ravel())
    return tuple(o.reshape(k.shape) for o in out)


def _moments_scalar(act, k):
    return tuple(float(m[0]) for m in _moments(act, np.array([k])))


# ------------------------------------------------------- susceptibilities
def chi_parallel(activation, K, weight_variance):
    r"""Parallel susceptibility ``C_W <phi'^2 + phi phi''>_K``.

    The derivative ``dK'/dK`` of the single-input variance map
    ``K' = C_b + C_W <phi^2>_K``: how a small change of one input's variance
    grows (``> 1``) or shrinks (``< 1``) from layer to layer.

    Parameters
    ----------
    activation : str, Activation or callable
        See :func:`skinfinite.activations.definitions.get_activation`.
    K : float or array-like
        Variances of the layer's pre-activations (>= 0).
    weight_variance : float
        ``C_W`` (> 0).

    Returns
    -------
    chi : float or ndarray
        Same shape as ``K``.

    Examples
    --------
    >>> from skinfinite.theory.criticality import chi_parallel
    >>> chi_parallel("relu", 1.0, weight_variance=2.0)
    1.0
    >>> chi_parallel("tanh", [0.0, 1.0], weight_variance=1.0).round(6)
    array([1.      , 0.181798])
    """
    act = get_activation(activation)
    cw = check_variance(weight_variance, "weight_variance")
    k = _check_variances(K)
    return _as_output(cw * _moments(act, k)[2], k.shape)


def chi_perpendicular(activation, K, weight_variance):
    r"""Perpendicular susceptibility ``C_W <phi'^2>_K``.

    The rate at which the distance between two nearby inputs of variance
    ``K`` grows (``> 1``, chaos) or shrinks (``< 1``, order) per layer.

    Parameters
    ----------
    activation : str, Activation or callable
        See :func:`skinfinite.activations.definitions.get_activation`.
    K : float or array-like
        Variances of the layer's pre-activations (>= 0).
    weight_variance : float
        ``C_W`` (> 0).

    Returns
    -------
    chi : float or ndarray
        Same shape as ``K``.

    Examples
    --------
    >>> from skinfinite.theory.criticality import chi_perpendicular
    >>> chi_perpendicular("relu", [0.5, 3.0], weight_variance=2.0)
    array([1., 1.])
    >>> chi_perpendicular("tanh", 0.0, weight_variance=1.0)
    1.0
    """
    act = get_activation(activation)
    cw = check_variance(weight_variance, "weight_variance")
    k = _check_variances(K)
    return _as_output(cw * _moments(act, k)[1], k.shape)


# ------------------------------------------------------------ fixed points
def _scale_invariant_gain(act):
    """``<phi'^2>`` if ``phi(l x) = l phi(x)`` for all ``l > 0``, else None.

    Then ``<phi^2>_K = K <phi'^2>`` for every ``K``.
    """
    if isinstance(act, LeakyReLU):
        return 0.5 * (1.0 + act.slope ** 2)
    x = np.array([-2.3, -1.0, -0.37, 0.41, 1.0, 1.9])
    with np.errstate(all="ignore"):
        y, y_scaled = act(x), act(2.5 * x)
    if not np.allclose(y_scaled, 2.5 * y, rtol=1e-10, atol=1e-12):
        return None
    up, down = float(act(np.ones(1))[0]), float(-act(-np.ones(1))[0])
    return 0.5 * (up * up + down * down)


def _excess(act, cw, cb, k):
    """``K' - K`` and its slope ``chi_parallel - 1`` at an array of variances.

    An overflowing ``K'`` counts as growth.
    """
    k = np.asarray(k, dtype=np.float64)
    m0, _, m2 = _moments(act, k)
    with np.errstate(invalid="ignore"):
        excess = cb + cw * m0 - k
    return np.where(np.isnan(excess), np.inf, excess), cw * m2 - 1.0


def _excess_scalar(act, cw, cb, k, which=0):
    return float(_excess(act, cw, cb, np.array([k]))[which][0])


def _scan_grid(start, stop, scale):
    """Geometric grid from ``start`` towards ``stop`` (either direction).

    Steps of 0.5% up to ``1e3 * scale`` resolve fixed points lying close to
    other extrema of the map; coarser steps beyond keep the search for a
    diverging variance cheap.
    """
    lo, hi = sorted((start, stop))
    dense = 1e3 * scale
    parts = []
    for a, b, ratio in ((lo, min(hi, dense), 1.005),
                        (max(lo, dense), hi, 1.05)):
        if b > a:
            n = 2 + int(math.log(b / a) / math.log(ratio))
            parts.append(np.geomspace(a, b, n))
    grid = np.unique(np.concatenate(parts))
    return grid if stop > start else grid[::-1]


def _root(fun, a, b):
    a, b = sorted((a, b))
    return brentq(fun, a, b, xtol=1e-15 * max(b, 1e-300), rtol=1e-15)


def _refine_cell(act, cw, cb, a, b, sign, turns):
    """Fixed point in the cell [a, b] of a walk, or None.

    ``sign`` is the sign of ``K' - K`` at ``a``. If ``turns``,
    ``sign * (K' - K)`` has a minimum in the cell, where ``chi_parallel = 1``;
    a fixed point where ``K' - K`` only touches zero there (a half-stable
    one, as at a critical point) is met before any crossing further on.
    """
    def excess(k):
        return _excess_scalar(act, cw, cb, k)

    if turns:
        k_ext = _root(lambda k: _excess_scalar(act, cw, cb, k, 1), a, b)
        gap = sign * excess(k_ext)
        if gap <= _TOUCH_RTOL * max(k_ext, 1.0):
            return k_ext if gap >= 0 else _root(excess, a, k_ext)
    end = sign * excess(b)
    if end <= 0:
        return b if end == 0 else _root(excess, a, b)
    return None


def _walk(act, cw, cb, grid):
    """First fixed point met walking along ``grid``; inf if none."""
    sign = np.sign(_excess_scalar(act, cw, cb, grid[0]))
    direction = np.sign(grid[-1] - grid[0])
    i, size = 0, 64
    while i + 1 < grid.size:
        points = grid[i:i + size + 1]
        values, slopes = _excess(act, cw, cb, points)
        # sign * (K' - K) decreasing along the walk
        falls = direction * sign * slopes < 0
        for j in np.flatnonzero((sign * values[1:] <= 0)
                                | (falls[:-1] & ~falls[1:])):
            root = _refine_cell(act, cw, cb, points[j], points[j + 1], sign,
                                falls[j] and not falls[j + 1])
            if root is not None:
                return root
        i += points.size - 1
        size = min(2 * size, 1024)
    return np.inf


def _linear_fixed_point(rate, cb, initial):
    """Fixed point of ``K' = C_b + rate K`` (scale-invariant activations)."""
    if math.isclose(rate, 1.0, rel_tol=1e-12):
        if cb == 0:
            return np.nan if initial is None else initial
        return np.inf
    if rate < 1:
        return cb / (1.0 - rate)
    return 0.0 if cb == 0 and initial == 0 else np.inf


def _fixed_point_from_below(act, cw, cb, scale):
    if _excess_scalar(act, cw, cb, 0.0) == 0 and (
            _excess_scalar(act, cw, cb, _K_TINY) <= 0):
        return 0.0
    # no fixed point lies below C_b, where K' >= C_b >= K
    start = max(cb, _K_TINY)
    if _excess_scalar(act, cw, cb, start) <= 0:
        return start
    return _walk(act, cw, cb, _scan_grid(start, _K_MAX * scale, scale))


def _fixed_point(act, cw, cb, initial=None):
    """Fixed point reached from ``initial`` (from small variances if None);
    inf if the variance diverges, nan if every variance is a fixed point."""
    gain = _scale_invariant_gain(act)
    if gain is not None:
        return _linear_fixed_point(cw * gain, cb, initial)
    scale = max(1.0, cb, initial or 0.0)
    if initial is None:
        return _fixed_point_from_below(act, cw, cb, scale)
    value = _excess_scalar(act, cw, cb, initial)
    if value == 0:
        return initial
    if value > 0:
        start = max(initial, _K_TINY)
        return _walk(act, cw, cb, _scan_grid(start, _K_MAX * scale, scale))
    # K' < K: walk down; K' >= K again at C_b (or at 0 when C_b = 0)
    lower = max(cb, _K_TINY)
    if initial > lower:
        grid = _scan_grid(initial, lower, scale)
    else:
        grid = np.array([initial])
    return _walk(act, cw, cb, np.append(grid, 0.0) if cb == 0 else grid)


def fixed_point(activation, weight_variance, bias_variance, initial=None):
    r"""Fixed point ``K*`` of the variance map ``K' = C_b + C_W <phi^2>_K``.

    The variance that the pre-activations of an input settle at in a deep
    network: the limit of the map iterated from ``initial``, the variance of
    the first layer (``C_W |x|^2 / d + C_b`` for an input ``x`` of dimension
    ``d``). By default the limit from small variances, that is the
    smallest fixed point that attracts from below; for instance ``K* = 0``
    for tanh with ``C_b = 0`` and ``C_W <= 1``, and the positive fixed point
    when ``C_W > 1`` makes ``K = 0`` unstable. Fixed points at which
    ``K' - K`` only touches zero (``chi_parallel(K*) = 1``, as at a critical
    point) count as reached from the side where they attract.

    Parameters
    ----------
    activation : str, Activation or callable
        See :func:`skinfinite.activations.definitions.get_activation`.
    weight_variance : float
        ``C_W`` (> 0).
    bias_variance : float
        ``C_b`` (>= 0).
    initial : float, optional
        Starting variance (>= 0). The map is taken to be increasing, as it
        is for the usual activations: the walk goes from ``initial``
        towards the first fixed point in the direction of ``K' - K``.

    Returns
    -------
    K_star : float
        The fixed point; ``nan`` when every variance is a fixed point and
        ``initial`` is None (a scale-invariant activation such as ReLU at
        its critical weight variance with ``C_b = 0``).

    Raises
    ------
    ValueError
        If the variance grows without bound with depth (no finite fixed
        point, e.g. ReLU with ``C_W > 2``, or ``C_W = 2`` and ``C_b > 0``).

    Examples
    --------
    >>> from skinfinite.theory.criticality import fixed_point
    >>> round(fixed_point("relu", weight_variance=1.5, bias_variance=0.1), 12)
    0.4
    >>> fixed_point("tanh", weight_variance=1.0, bias_variance=0.0)
    0.0
    >>> round(fixed_point("tanh", weight_variance=2.0, bias_variance=0.1), 6)
    0.814644
    """
    act = get_activation(activation)
    cw = check_variance(weight_variance, "weight_variance")
    cb = check_variance(bias_variance, "bias_variance", allow_zero=True)
    if initial is not None:
        initial = check_variance(initial, "initial", allow_zero=True)
    k_star = _fixed_point(act, cw, cb, initial)
    if np.isinf(k_star):
        raise ValueError(
            f"{_name(act)} with weight_variance={cw:g} and bias_variance="
            f"{cb:g} has no finite fixed point: the variance of the "
            "pre-activations grows without bound with depth.")
    return float(k_star)


# ------------------------------------------------------------- criticality
class CriticalPoint(NamedTuple):
    """Initialisation at which ``chi_parallel = chi_perpendicular = 1``.

    A named tuple ``(bias_variance, weight_variance, fixed_point,
    universality_class)``, returned by :func:`critical_variances`.
    """

    bias_variance: float
    weight_variance: float
    fixed_point: float
    universality_class: str


CriticalPoint.bias_variance.__doc__ = "Critical bias variance ``C_b``."
CriticalPoint.weight_variance.__doc__ = "Critical weight variance ``C_W``."
CriticalPoint.fixed_point.__doc__ = (
    "Fixed point ``K*``; ``nan`` for scale-invariant activations, for which "
    "every variance is a fixed point at criticality.")
CriticalPoint.universality_class.__doc__ = (
    "``'scale-invariant'``, ``'K*=0'`` or ``'K*>0'``.")


def _zero_class(act):
    """Critical point at ``K* = 0`` (needs phi(0) = 0, phi'(0) != 0 and small
    variances not growing), or None."""
    phi0 = float(act(np.zeros(1))[0])
    d0 = float(act.derivative(np.zeros(1))[0])
    if phi0 != 0 or d0 == 0:
        return None
    cw = 1.0 / (d0 * d0)
    # K' = K + a K^2 + ... near zero: with a > 0 small variances grow away
    # from zero (GELU, swish); a = 0 (phi linear near zero) is marginal.
    if _excess_scalar(act, cw, 0.0, 1e-3) > 1e-15:
        return None
    return CriticalPoint(0.0, cw, 0.0, "K*=0")


def _positive_class(act):
    """Critical points at ``K* > 0``, where ``<phi phi''>_K`` changes sign."""
    def gap(k):
        _, m1, m2 = _moments_scalar(act, k)
        return m2 - m1

    grid = np.geomspace(1e-6, 1e6, 121)
    _, m1, m2 = _moments(act, grid)
    # sign changes within rounding of zero are not roots
    values = np.where(np.abs(m2 - m1) > 1e-9 * m1, np.sign(m2 - m1), 0.0)
    points = []
    for i in np.flatnonzero(values[:-1] * values[1:] < 0):
        k_star = _root(gap, grid[i], grid[i + 1])
        m0, m1_star, _ = _moments_scalar(act, k_star)
        cw = 1.0 / m1_star
        cb = k_star - cw * m0
        if cb >= -1e-12 * k_star:
            points.append(CriticalPoint(max(cb, 0.0), cw, k_star, "K*>0"))
    return points


def critical_variances(activation):
    r"""Critical bias and weight variances of an activation.

    The initialisation ``(C_b, C_W)`` with a fixed point ``K*`` at which
    ``chi_parallel(K*) = chi_perpendicular(K*) = 1``:

    * scale-invariant activations (``phi(l x) = l phi(x)``: ReLU, leaky
      ReLU with slope ``a``, abs, identity): ``C_b = 0`` and
      ``C_W = 1 / <phi'^2> = 2 / (1 + a^2)``; every variance is then a fixed
      point, so ``fixed_point`` is ``nan``;
    * the ``K* = 0`` class (``phi(0) = 0``, ``phi'(0) != 0`` and small
      variances not growing under the map: tanh, erf, sin): ``C_b = 0``,
      ``C_W = 1 / phi'(0)^2``;
    * otherwise ``K* > 0`` solves ``<phi phi''>_{K*} = 0`` (which makes the
      two susceptibilities equal), ``C_W = 1 / <phi'^2>_{K*}`` and
      ``C_b = K* - C_W <phi^2>_{K*}``, provided ``C_b >= 0`` (GELU, swish).
      If several variances qualify the smallest is returned.

    Parameters
    ----------
    activation : str, Activation or callable
        See :func:`skinfinite.activations.definitions.get_activation`.

    Returns
    -------
    CriticalPoint
        Named tuple ``(bias_variance, weight_variance, fixed_point,
        universality_class)``.

    Raises
    ------
    ValueError
        If the activation has no critical point (softplus, sigmoid, cos).

    Examples
    --------
    >>> from skinfinite.theory.criticality import critical_variances
    >>> point = critical_variances("relu")
    >>> point.bias_variance, point.weight_variance, point.universality_class
    (0.0, 2.0, 'scale-invariant')
    >>> critical_variances("tanh")[:3]
    (0.0, 1.0, 0.0)
    >>> cb, cw, k_star, _ = critical_variances("gelu")
    >>> round(cb, 3), round(cw, 3), round(k_star, 3)
    (0.173, 1.983, 3.562)
    """
    act = get_activation(activation)
    gain = _scale_invariant_gain(act)
    if gain is not None:
        if gain == 0:
            raise ValueError(f"{_name(act)} has no critical point: it is "
                             "identically zero.")
        return CriticalPoint(0.0, 1.0 / gain, np.nan, "scale-invariant")
    point = _zero_class(act)
    if point is not None:
        return point
    points = _positive_class(act)
    if points:
        return points[0]
    raise ValueError(
        f"{_name(act)} has no critical point: no bias and weight variances "
        "make chi_parallel = chi_perpendicular = 1 at a fixed point (K* = 0 "
        "needs phi(0) = 0 with small variances not growing, K* > 0 needs "
        "<phi phi''>_K* = 0 with a non-negative bias variance).")


def edge_of_chaos(activation, bias_variances):
    r"""Weight variance on the order-to-chaos transition, for each ``C_b``.

    For each bias variance ``C_b``, the ``C_W`` at which a fixed point
    ``K*`` of ``(C_b, C_W)`` has ``chi_perpendicular(K*) = 1`` and draws
    nearby variances in (``chi_parallel(K*) <= 1``, so that deep networks
    settle there); if several do, the one with the smallest ``K*``. Below
    the line (smaller ``C_W``) networks are ordered, above it chaotic. Along
    the line ``C_W = 1 / <phi'^2>_K`` and
    ``C_b = K - <phi^2>_K / <phi'^2>_K``, which is solved for ``K`` at each
    requested ``C_b``; the line passes through the critical point of
    :func:`critical_variances`.

    Parameters
    ----------
    activation : str, Activation or callable
        See :func:`skinfinite.activations.definitions.get_activation`.
    bias_variances : float or array-like
        Values of ``C_b`` (>= 0).

    Returns
    -------
    weight_variances : float or ndarray
        Same shape as ``bias_variances``; ``nan`` where no such fixed
        point exists: for ReLU at every ``C_b > 0`` (its variance diverges
        at ``C_W = 2``), for GELU and swish below their critical ``C_b``
        (there the fixed points with ``chi_perpendicular = 1`` are
        unstable), for softplus everywhere.

    Examples
    --------
    >>> from skinfinite.theory.criticality import edge_of_chaos
    >>> edge_of_chaos("tanh", [0.0, 0.05]).round(4)
    array([1.   , 1.761])
    >>> edge_of_chaos("relu", [0.0, 0.1])
    array([ 2., nan])
    """
    act = get_activation(activation)
    cb = np.asarray(bias_variances, dtype=np.float64)
    if not np.all(np.isfinite(cb)) or np.any(cb < 0):
        raise ValueError("bias_variances must be finite and >= 0.")
    gain = _scale_invariant_gain(act)
    if gain is not None:
        out = np.where(cb == 0, 1.0 / gain if gain > 0 else np.nan, np.nan)
        return _as_output(out, cb.shape)
    edge = _EdgeCurve(act)
    out = np.array([edge.weight_variance(b) for b in cb.ravel()])
    return _as_output(out, cb.shape)


class _EdgeCurve:
    """The curve ``K -> (C_b(K), C_W(K))`` of fixed points with
    ``chi_perp = 1``, tabulated once and solved for given ``C_b``."""

    def __init__(self, act):
        self.act = act
        self.grid = np.concatenate([[0.0], np.geomspace(1e-8, 1e6, 211)])
        m0, m1, _ = _moments(act, self.grid)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.bias = np.where(m1 > 0, self.grid - m0 / m1, np.nan)

    def _curve(self, k):
        m0, m1, m2 = _moments_scalar(self.act, k)
        m1 = np.float64(m1)     # division by zero gives inf, not an error
        with np.errstate(divide="ignore", invalid="ignore"):
            return k - m0 / m1, 1.0 / m1, m2 / m1

    def _candidates(self, cb):
        diff = self.bias - cb
        for i in range(self.grid.size):
            if diff[i] == 0:
                yield self.grid[i]
            elif i + 1 < self.grid.size and diff[i] * diff[i + 1] < 0:
                yield _root(lambda k: self._curve(k)[0] - cb, self.grid[i],
                            self.grid[i + 1])

    def weight_variance(self, cb):
        # The curve can cross a given C_b several times; only a fixed point
        # that draws nearby variances in (chi_parallel <= 1) is one that a
        # deep network settles at.
        for k in self._candidates(cb):
            _, cw, chi_par = self._curve(k)
            if np.isfinite(cw) and chi_par <= 1.0 + 1e-9:
                return cw
        return np.nan


# ------------------------------------------------------------- correlations
def correlation_map(activation, rho, K, weight_variance, bias_variance):
    r"""One layer's map of the correlation of two inputs of equal variance.

    For two pre-activations of variance ``K`` and correlation ``rho``, the
    next layer's correlation is

    .. math::

        \rho' = \frac{C_b + C_W V(K, \rho K, K)}{C_b + C_W V(K, K, K)},

    with ``V`` the activation's dual. At the fixed point ``K = K*`` both
    inputs keep the variance ``K*``, so iterating this map follows the
    correlation through the depth of the network; its slope at ``rho = 1``
    is ``chi_perpendicular(K*)``.

    Parameters
    ----------
    activation : str, Activation or callable
        See :func:`skinfinite.activations.definitions.get_activation`.
    rho : float or array-like
        Correlations in [-1, 1].
    K : float
        Variance of both pre-activations (> 0).
    weight_variance : float
        ``C_W`` (> 0).
    bias_variance : float
        ``C_b`` (>= 0).

    Returns
    -------
    rho_next : float or ndarray
        Same shape as ``rho``.

    Examples
    --------
    >>> from skinfinite.theory.criticality import correlation_map
    >>> round(correlation_map("relu", 0.0, 1.0, 2.0, 0.0), 6)
    0.31831
    >>> correlation_map("tanh", 1.0, 1.0, 1.5, 0.1)
    1.0
    """
    act = get_activation(activation)
    cw = check_variance(weight_variance, "weight_variance")
    cb = check_variance(bias_variance, "bias_variance", allow_zero=True)
    k = check_variance(K, "K")
    rho = np.asarray(rho, dtype=np.float64)
    if not np.all(np.isfinite(rho)) or np.any(np.abs(rho) > 1):
        raise ValueError("rho must lie in [-1, 1].")
    cross = act.dual(k, rho * k, k)[0]
    same = act.dual(k, k, k)[0]
    return _as_output((cb + cw * cross) / (cb + cw * same), rho.shape)
