r"""Infinite-depth limits of NTK classifiers on the sphere.

For inputs on the unit sphere and an activation scaled so that every layer's
pre-activations keep the variance ``q`` of the input layer, the NTK of a
fully-connected network without biases depends on the inputs through
``rho = <x, z>`` alone and follows (Radhakrishnan, Belkin and Uhler, PNAS
2023, "Wide and deep neural networks achieve consistency for
classification")

.. math::

    \rho_{l+1} = \check\phi(\rho_l), \qquad
    T_{l+1} = \check\phi(\rho_l) + T_l\,\check\phi'(\rho_l), \qquad
    T_0 = \rho_0 = \rho,

where the *normalised dual* ``pd`` is

.. math::

    \check\phi(\rho) = \frac{E[\phi(u)\phi(v)]}{E[\phi(u)^2]}, \qquad
    (u, v) \sim N\left(0, q\begin{bmatrix}1 & \rho\\ \rho & 1\end{bmatrix}\right),

so that ``pd(1) = 1``, and ``pd'(rho) = q E[phi'(u) phi'(v)] / E[phi(u)^2]``.
Written as a power series ``pd(rho) = sum_k a_k rho^k`` (``a_k >= 0``,
``sum a_k = 1``: the normalised squared Hermite coefficients), its value at
zero is ``a_0`` and its slope at zero ``a_1``.

As the depth grows, the sign of the NTK regression onto the labels tends to
one of three classifiers (:func:`infinite_depth_regime`):

* ``pd(0) > 0`` and ``pd'(1) >= 1``: **majority vote**.  Correlations tend to
  a fixed point below one while the diagonal of the NTK grows faster than
  the rest, so the prediction tends to the sign of the sum of the labels.
* ``pd(0) = 0`` and ``0 < pd'(0)``: a **singular kernel** classifier with
  weights ``(1 - <x, z>)^(-alpha)``, ``alpha = ln(1/pd'(0)) / ln(pd'(1))``.
* ``pd(0) = 0`` and ``pd'(0) = 0``: **1-nearest neighbour** (the limit
  ``alpha -> infinity``).

``pd(0) = 0`` forces ``pd'(1) > 1`` for any nonlinear activation, while
``pd(0) > 0`` with ``pd'(1) < 1`` (sigmoid, softplus and cos at unit
variance) drives every entry of the NTK, diagonal included, to the same
constant ``1 / (1 - pd'(1))``; the regression's sign then tends to an
interpolating predictor that is none of the three, so it is rejected.

The singular-kernel weights are the power law near the singularity.  The
exact depth limit of ``T_L(rho)`` up to a factor common to all pairs is the
Koenigs function of ``pd`` at zero,
``kappa(rho) = lim_l pd^{(l)}(rho) / pd'(0)^l``
(:func:`depth_limit_weights`): ``T_L(rho) = pd'(0)^L (L kappa(rho) + O(1))``,
and ``kappa(rho) (1 - rho)^alpha`` tends to a constant (up to a small
log-periodic ripple) as ``rho -> 1``.  Away from ``rho = 1`` the two differ,
most of all for negative inner products: an odd ``pd`` (erf, tanh, sin) has
``kappa(-rho) = -kappa(rho)``, so inputs near the antipode of a training
point vote against its label.
"""
import functools
import math
from typing import NamedTuple

import numpy as np

from .._core.validation import check_variance
from ..activations.definitions import QuadratureActivation, get_activation

__all__ = ["InfiniteDepthRegime", "normalized_dual", "infinite_depth_regime",
           "depth_limit_weights", "REGIMES"]

REGIMES = ("majority_vote", "nearest_neighbor", "singular_kernel")

# Below this magnitude a correlation is in the linear regime of pd at zero,
# where pd(rho) = pd'(0) rho (1 + O(rho)): the Koenigs iteration stops there.
_KOENIGS_STOP = 1e-12
_KOENIGS_MAX_STEPS = 100_000
# Closer to one than this, rho = 1 - u cannot be iterated in floating point:
# the power law (exact up to the log-periodic ripple) extends the weights.
_KOENIGS_MIN_GAP = 1e-8


class InfiniteDepthRegime(NamedTuple):
    """Which classifier an infinitely deep NTK implements, and why.

    A named tuple ``(regime, alpha, dual_at_zero, slope_at_zero,
    slope_at_one)``, returned by :func:`infinite_depth_regime`.
    """

    regime: str
    alpha: float
    dual_at_zero: float
    slope_at_zero: float
    slope_at_one: float


InfiniteDepthRegime.regime.__doc__ = (
    "``'majority_vote'``, ``'nearest_neighbor'`` or ``'singular_kernel'``.")
InfiniteDepthRegime.alpha.__doc__ = (
    "Exponent of the singular kernel ``(1 - <x, z>)^(-alpha)``: ``0`` for "
    "majority vote (a constant kernel), ``inf`` for 1-nearest neighbour.")
InfiniteDepthRegime.dual_at_zero.__doc__ = (
    "``pd(0)``, the normalised dual at orthogonal inputs.")
InfiniteDepthRegime.slope_at_zero.__doc__ = "``pd'(0)``."
InfiniteDepthRegime.slope_at_one.__doc__ = "``pd'(1)``."


def _second_moment(act, q):
    v11 = float(np.asarray(act.dual(q, q, q)[0]))
    if not np.isfinite(v11) or v11 <= 0:
        raise ValueError(f"The activation {act!r} has E[phi(u)^2] = {v11} at "
                         f"variance {q}; it must be finite and > 0 for the "
                         "dual to be normalised.")
    return v11


def normalized_dual(activation, rho, variance=1.0):
    """Normalised dual ``pd(rho)`` and its derivative ``pd'(rho)``.

    ``pd(rho) = E[phi(u) phi(v)] / E[phi(u)^2]`` with ``(u, v)`` centred
    Gaussian of variances ``variance`` and correlation ``rho``, so that
    ``pd(1) = 1``; ``pd'`` is its derivative in ``rho``.  Both come from the
    activation's duals (:meth:`~skinfinite.activations.definitions.Activation.dual`).

    Parameters
    ----------
    activation : str, Activation or callable
        See :func:`skinfinite.activations.definitions.get_activation`.
    rho : float or array-like
        Correlations in ``[-1, 1]``.
    variance : float, default=1.0
        Pre-activation variance ``q`` kept at every layer.

    Returns
    -------
    pd, dpd : ndarrays of the shape of ``rho``

    Examples
    --------
    >>> from skinfinite.theory.depth_limit import normalized_dual
    >>> pd, dpd = normalized_dual("relu", [0.0, 1.0])
    >>> pd.round(6), dpd.round(6)
    (array([0.31831, 1.     ]), array([0.5, 1. ]))
    """
    act = get_activation(activation)
    q = check_variance(variance, "variance")
    rho = np.asarray(rho, dtype=np.float64)
    if not np.all(np.isfinite(rho)) or np.any(np.abs(rho) > 1):
        raise ValueError("rho must be finite and in [-1, 1].")
    if isinstance(act, QuadratureActivation):
        return _series_normalized_dual(act, rho, q)
    v11 = _second_moment(act, q)
    V, Vd = act.dual(q, q * rho, q)
    return np.asarray(V) / v11, q * np.asarray(Vd) / v11


def _series_normalized_dual(act, rho, q):
    # Mehler's series with the Hermite coefficients at variance q, computed
    # once rather than for every entry as the general dual does.
    row = act.coefficients(np.array([q]))[0]
    c, d = row[:act.n_terms], row[act.n_terms:2 * act.n_terms]
    v11 = float(np.sum(c * c))
    if not np.isfinite(v11) or v11 <= 0:
        raise ValueError(f"The activation {act!r} has E[phi(u)^2] = {v11} at "
                         f"variance {q}; it must be finite and > 0 for the "
                         "dual to be normalised.")
    poly = np.polynomial.polynomial.polyval
    return poly(rho, c * c) / v11, q * poly(rho, d * d) / v11


def infinite_depth_regime(activation, variance=1.0, tol=1e-9):
    """Classify the infinite-depth limit of an NTK classifier.

    Parameters
    ----------
    activation : str, Activation or callable
        See :func:`skinfinite.activations.definitions.get_activation`.
    variance : float, default=1.0
        Pre-activation variance ``q`` kept at every layer.
    tol : float, default=1e-9
        Values of ``pd(0)``, ``pd'(0)`` and ``|pd'(1) - 1|`` up to ``tol``
        count as zero (duals from Hermite series are not exact).

    Returns
    -------
    InfiniteDepthRegime

    Raises
    ------
    ValueError
        For activations outside the taxonomy: a linear network
        (``pd(rho) = rho``), ``pd(0) > 0`` with ``pd'(1) < 1`` (the NTK tends to
        a constant matrix), or a non-finite ``pd'(1)``.

    Examples
    --------
    >>> from skinfinite.theory.depth_limit import infinite_depth_regime
    >>> infinite_depth_regime("relu").regime
    'majority_vote'
    >>> r = infinite_depth_regime("erf")
    >>> r.regime, round(r.alpha, 6)
    ('singular_kernel', 0.444107)
    """
    act = get_activation(activation)
    tol = check_variance(tol, "tol")
    (pd0, _), (dpd0, dpd1) = normalized_dual(act, [0.0, 1.0], variance)
    pd0, dpd0, dpd1 = float(pd0), float(dpd0), float(dpd1)
    if not all(np.isfinite([pd0, dpd0, dpd1])):
        raise ValueError(
            f"The normalised dual of {act!r} has pd(0) = {pd0}, pd'(0) = "
            f"{dpd0}, pd'(1) = {dpd1}; the infinite-depth taxonomy needs "
            "finite values.")
    if pd0 > tol:
        if dpd1 < 1.0 - tol:
            raise ValueError(
                f"{act!r} at variance {variance} has pd(0) = {pd0:.4g} > 0 "
                f"and pd'(1) = {dpd1:.4g} < 1: every NTK entry, diagonal "
                "included, tends to the same constant 1 / (1 - pd'(1)), and "
                "the limit classifier is none of majority vote, 1-nearest "
                "neighbour or a singular kernel.")
        return InfiniteDepthRegime("majority_vote", 0.0, pd0, dpd0, dpd1)
    if dpd0 >= 1.0 - tol:
        raise ValueError(
            f"{act!r} has the normalised dual pd(rho) = rho (a linear "
            "network): depth does not change the classifier.")
    if dpd0 <= tol:
        return InfiniteDepthRegime("nearest_neighbor", math.inf, pd0, dpd0,
                                   dpd1)
    alpha = math.log(1.0 / dpd0) / math.log(dpd1)
    return InfiniteDepthRegime("singular_kernel", alpha, pd0, dpd0, dpd1)


def _koenigs_log(activation, gap, variance, tol=1e-9):
    """Sign and log-magnitude of the Koenigs function at ``rho = 1 - gap``.

    ``gap`` (an array of ``1 - rho`` in ``[0, 2]``) is taken instead of
    ``rho`` so that the power-law extension near ``rho = 1`` keeps its
    accuracy for nearly coincident inputs.
    """
    act = get_activation(activation)
    regime = infinite_depth_regime(act, variance, tol)
    if regime.regime != "singular_kernel":
        raise ValueError("Depth-limit weights exist in the singular-kernel "
                         f"regime only; {act!r} gives {regime.regime}.")
    gap = np.asarray(gap, dtype=np.float64)
    shape = gap.shape
    gap = gap.ravel()
    # pd(-1) = -1 only when pd is odd; then kappa is odd too, and mirroring
    # negative correlations keeps near-antipodal inputs (which would stay at
    # -1 forever) as accurate as near-coincident ones.
    odd = normalized_dual(act, -1.0, variance)[0] <= -1.0 + 1e-12
    flip = odd & (gap > 1.0)
    gap = np.where(flip, 2.0 - gap, gap)
    near = gap < _KOENIGS_MIN_GAP
    r = np.where(near, 1.0 - _KOENIGS_MIN_GAP, 1.0 - gap)
    steps = np.zeros(r.shape)
    active = np.flatnonzero(np.abs(r) > _KOENIGS_STOP)
    for _ in range(_KOENIGS_MAX_STEPS):
        if active.size == 0:
            break
        r[active] = normalized_dual(act, np.clip(r[active], -1, 1),
                                    variance)[0]
        steps[active] += 1
        active = active[np.abs(r[active]) > _KOENIGS_STOP]
    else:
        raise ValueError("The correlation iteration did not reach the "
                         "linear regime of the dual.")
    sign = np.where(flip, -1.0, 1.0) * np.sign(r)
    with np.errstate(divide="ignore"):
        log_mag = (np.log(np.abs(r)) - steps * math.log(regime.slope_at_zero)
                   + np.where(near, regime.alpha
                              * (math.log(_KOENIGS_MIN_GAP)
                                 - np.log(np.maximum(gap, 0.0))), 0.0))
    return sign.reshape(shape), log_mag.reshape(shape)


class _KoenigsInterpolant:
    """``kappa`` from a cubic spline, for many pairs at a time.

    The exact iteration costs a few hundred dual evaluations per pair; the
    spline is fitted once to ``h = kappa(1 - u) u^alpha`` (bounded, with the
    singularity divided out) on a grid uniform in ``log u``, where the
    log-periodic ripple of ``h`` is smooth.  Odd duals are tabulated on
    ``rho >= 0`` only and mirrored.  ``tests/test_infinite_depth.py`` checks
    it against :func:`depth_limit_weights` to 1e-7 of ``max(|kappa|, 1)``.
    """

    def __init__(self, activation, variance=1.0, tol=1e-9, n_nodes=4097):
        from scipy.interpolate import CubicSpline

        act = get_activation(activation)
        self.alpha = infinite_depth_regime(act, variance, tol).alpha
        self.odd = normalized_dual(act, -1.0, variance)[0] <= -1.0 + 1e-12
        top = 0.0 if self.odd else math.log(2.0)
        log_gap = np.linspace(math.log(_KOENIGS_MIN_GAP), top, n_nodes)
        sign, log_mag = _koenigs_log(act, np.exp(log_gap), variance, tol)
        self._spline = CubicSpline(
            log_gap, sign * np.exp(log_mag + self.alpha * log_gap))
        self._lowest = log_gap[0]

    def __call__(self, gap):
        """Sign and log-magnitude of ``kappa`` at ``rho = 1 - gap``."""
        gap = np.asarray(gap, dtype=np.float64)
        flip = self.odd & (gap > 1.0)
        gap = np.where(flip, 2.0 - gap, gap)
        with np.errstate(divide="ignore"):
            log_gap = np.log(gap)
        h = self._spline(np.maximum(log_gap, self._lowest))
        with np.errstate(divide="ignore"):
            log_mag = np.log(np.abs(h)) - self.alpha * log_gap
        return np.where(flip, -1.0, 1.0) * np.sign(h), log_mag


@functools.lru_cache(maxsize=16)
def _cached_interpolant(activation, variance, tol):
    return _KoenigsInterpolant(activation, variance, tol)


def koenigs_interpolant(activation, variance=1.0, tol=1e-9):
    """The (cached) spline of :class:`_KoenigsInterpolant` for an activation."""
    act = get_activation(activation)
    return _cached_interpolant(act, float(variance), float(tol))


def depth_limit_weights(activation, rho, variance=1.0):
    """Exact infinite-depth NTK weights ``kappa(rho)`` (singular regime).

    ``kappa(rho) = lim_l pd^{(l)}(rho) / pd'(0)^l``, the Koenigs function of
    the normalised dual at its fixed point zero.  The depth-``L`` NTK of
    :func:`infinite_depth_regime`'s recursion is
    ``T_L(rho) = pd'(0)^L (L kappa(rho) + O(1))``, so ``kappa`` is the kernel
    that the classifier's weights tend to, up to a factor common to all
    pairs.  It behaves as ``(1 - rho)^(-alpha)`` near ``rho = 1``; it is
    ``+inf`` at ``rho = 1``.

    The correlation is iterated until it falls below 1e-12 (relative error of
    the same order); for ``1 - rho < 1e-8`` the power law continues the value
    at ``1 - rho = 1e-8``.

    Parameters
    ----------
    activation : str, Activation or callable
        An activation in the singular-kernel regime.
    rho : float or array-like
        Correlations in ``[-1, 1]``.
    variance : float, default=1.0

    Returns
    -------
    kappa : ndarray of the shape of ``rho``

    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite.theory.depth_limit import depth_limit_weights
    >>> w = depth_limit_weights("erf", [0.0, 0.5, -0.5])
    >>> float(w[0]), bool(w[1] > 0.5), bool(np.isclose(w[2], -w[1]))
    (0.0, True, True)
    """
    rho = np.asarray(rho, dtype=np.float64)
    if not np.all(np.isfinite(rho)) or np.any(np.abs(rho) > 1):
        raise ValueError("rho must be finite and in [-1, 1].")
    sign, log_mag = _koenigs_log(activation, 1.0 - rho, variance)
    with np.errstate(over="ignore"):
        return sign * np.exp(log_mag)
