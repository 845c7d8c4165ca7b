"""Compiled scalar duals shared by every fused kernel.

All take ``(kxx, kxy, kyy, r, ax, ay, param)``: the three covariance entries,
``r = sqrt(kxx kyy)`` (a product of per-input square roots, which saves a
square root per pair and layer), the per-input coefficient rows of x and y (empty for closed forms; Hermite
coefficients for series activations) and one scalar parameter.  ``*_dual``
returns ``(V, Vd)``; ``*_partials`` returns
``(V, Vd, V_xx, V_xy, V_yy, Vd_xx, Vd_xy, Vd_yy)``.
"""
import math

from numba import njit

from .._core.fastmath import FASTMATH, atan2_nonneg

_PI = math.pi
# Below this squared sine the angle is at the level of input rounding
# (sqrt(eps)); snapping it to zero makes identical inputs exact.
_SNAP = 4.0 * 2.0 ** -52

_jit = njit(inline="always", fastmath=FASTMATH, cache=True)


@_jit
def _piecewise_linear_core(kxx, kxy, kyy, r, slope):
    # phi(x) = alpha x + beta |x|; cross terms vanish by symmetry, so
    # V = alpha^2 Kxy + beta^2 E|u||v| and Vd = alpha^2 + beta^2 E[sgn u sgn v].
    alpha = 0.5 * (1.0 + slope)
    beta = 0.5 * (1.0 - slope)
    c = min(max(kxy, -r), r)
    # sin^2 = (1 - rho)(1 + rho) with 1 - rho = (r - c) / r keeps the digits
    # that 1 - rho^2 cancels near rho = 1, and works on normalised numbers
    # so that nothing over- or underflows at extreme input scales
    # (K(sX) = s^2 K(X)); one factor of 1/r only, because fast-math may
    # regroup (.. / r)(.. / r) into an overflowing 1 / r^2.
    inv_r = 1.0 / r if r > 0.0 else 0.0
    d = (r - c) * inv_r
    s2 = d * (2.0 - d)
    s = r * math.sqrt(s2) if s2 > _SNAP else 0.0
    theta = atan2_nonneg(s, c)
    v = alpha * alpha * c + beta * beta * (2.0 * s + (_PI - 2.0 * theta) * c) / _PI
    vd = alpha * alpha + beta * beta * (1.0 - 2.0 * theta / _PI)
    return v, vd, c, s, beta


@_jit
def piecewise_linear_dual(kxx, kxy, kyy, r, ax, ay, slope):
    v, vd, c, s, beta = _piecewise_linear_core(kxx, kxy, kyy, r, slope)
    return v, vd


@_jit
def piecewise_linear_partials(kxx, kxy, kyy, r, ax, ay, slope):
    v, vd, c, s, beta = _piecewise_linear_core(kxx, kxy, kyy, r, slope)
    # Homogeneity: V(a^2 Kxx, a Kxy, Kyy) = a V and Vd is invariant, hence
    # 2 Kxx V_xx + Kxy V_xy = V and 2 Kxx Vd_xx + Kxy Vd_xy = 0.  Vd_xy is
    # singular where the correlation is exactly 1; along the diagonal the
    # correlation stays 1 for every hyperparameter, so its tangent is zero.
    vd_xy = 2.0 * beta * beta / (_PI * s) if s > 0.0 else 0.0
    inv2x = 0.5 / kxx if kxx > 0.0 else 0.0
    inv2y = 0.5 / kyy if kyy > 0.0 else 0.0
    rest = v - c * vd
    return (v, vd, rest * inv2x, vd, rest * inv2y,
            -c * vd_xy * inv2x, vd_xy, -c * vd_xy * inv2y)


@_jit
def _erf_core(kxx, kxy, kyy, r):
    # d = (1 + 2 Kxx)(1 + 2 Kyy) - 4 Kxy^2, written as a sum of non-negative
    # terms (the difference cancels to zero once Kxx ~ 1e16) and scaled by
    # the largest variance so that nothing overflows: the kernel is bounded
    # at every scale.
    # t = d / m with m = max(1, Kxx, Kyy) lies in [1, 5]: no factor of it
    # over- or underflows.
    c = min(abs(kxy), r)
    # as in the arc-cosine kernels, |rho| within rounding of 1 is exactly 1:
    # at large variances (r - c)(r + c) would otherwise be dominated by the
    # rounding of r and of Kxy itself
    c = r if r - c <= 0.5 * _SNAP * r else c
    inv2 = 1.0 / max(1.0, kxx, kyy)
    inv = math.sqrt(inv2)
    t = (inv2 + 2.0 * (kxx * inv2 + kyy * inv2)
         + 4.0 * ((r - c) * inv) * ((r + c) * inv))
    st = math.sqrt(t)
    # asin(2 Kxy / sqrt(a b)) = atan2(2 Kxy, sqrt(d)): exact near |z| = 1
    v = (2.0 / _PI) * math.atan2(2.0 * kxy * inv, st)
    vd = (4.0 / _PI) * inv / st
    return v, vd, t / inv2


@_jit
def erf_dual(kxx, kxy, kyy, r, ax, ay, unused):
    v, vd, d = _erf_core(kxx, kxy, kyy, r)
    return v, vd


@_jit
def erf_partials(kxx, kxy, kyy, r, ax, ay, unused):
    a = 1.0 + 2.0 * kxx
    b = 1.0 + 2.0 * kyy
    v, vd, d = _erf_core(kxx, kxy, kyy, r)
    return (v, vd, -kxy * vd / a, vd, -kxy * vd / b,
            -vd * b / d, 4.0 * kxy * vd / d, -vd * a / d)


@_jit
def _trig_core(kxx, kxy, kyy):
    # E[sin u sin v] = exp(-(Kxx+Kyy)/2) sinh(Kxy), E[cos u cos v] the cosh;
    # the exponent is split so that nothing overflows (|Kxy| <= mean).
    m = 0.5 * (kxx + kyy)
    if abs(kxy) < 1.0:
        # the difference below would leave an absolute rounding error of
        # about 1e-16 in place of small values (deep kernels reach them)
        e = math.exp(-m)
        return e * math.sinh(kxy), e * math.cosh(kxy)
    ep = math.exp(kxy - m)
    em = math.exp(-kxy - m)
    return 0.5 * (ep - em), 0.5 * (ep + em)


@_jit
def trig_dual(kxx, kxy, kyy, r, ax, ay, is_cos):
    sinh_e, cosh_e = _trig_core(kxx, kxy, kyy)
    if is_cos > 0.5:
        return cosh_e, sinh_e
    return sinh_e, cosh_e


@_jit
def trig_partials(kxx, kxy, kyy, r, ax, ay, is_cos):
    v, vd = trig_dual(kxx, kxy, kyy, r, ax, ay, is_cos)
    return (v, vd, -0.5 * v, vd, -0.5 * v, -0.5 * vd, v, -0.5 * vd)


# Correlations this close to +-1 are identical (or opposite) inputs up to the
# rounding of their dot products; snapping them makes the pair recursion on
# x == y follow the diagonal one, which matters where the map is chaotic
# (rho = 1 is then an unstable fixed point that amplifies any rounding).
_RHO_SNAP = 1e-12


@_jit
def _correlation(kxy, r):
    if r > 0.0:
        rho = kxy / r
        if rho >= 1.0 - _RHO_SNAP:
            return 1.0
        if rho <= _RHO_SNAP - 1.0:
            return -1.0
        return rho
    return 0.0


@_jit
def series_dual(kxx, kxy, kyy, r, ax, ay, unused):
    # Mehler: E[phi(u) phi(v)] = sum_k c_k(Kxx) c_k(Kyy) rho^k with c_k the
    # normalised Hermite coefficients of z -> phi(sqrt(K) z); rows hold
    # [c (P), d (P), dc/dK (P), dd/dK (P)], d the coefficients of phi'.
    p = ax.shape[0] // 4
    rho = _correlation(kxy, r)
    v = 0.0
    vd = 0.0
    for k in range(p - 1, -1, -1):
        v = v * rho + ax[k] * ay[k]
        vd = vd * rho + ax[p + k] * ay[p + k]
    return v, vd


@_jit
def series_partials(kxx, kxy, kyy, r, ax, ay, unused):
    p = ax.shape[0] // 4
    rho = _correlation(kxy, r)
    v = vd = dv = dvd = 0.0          # series and their rho-derivatives
    vx = vy = vdx = vdy = 0.0        # series with one coefficient K-derived
    for k in range(p - 1, -1, -1):
        a, b = ax[k], ay[k]
        c, d = ax[p + k], ay[p + k]
        dv = dv * rho + v
        dvd = dvd * rho + vd
        v = v * rho + a * b
        vd = vd * rho + c * d
        vx = vx * rho + ax[2 * p + k] * b
        vy = vy * rho + a * ay[2 * p + k]
        vdx = vdx * rho + ax[3 * p + k] * d
        vdy = vdy * rho + c * ay[3 * p + k]
    # rho = Kxy / sqrt(Kxx Kyy): d rho/dKxy = 1/r, d rho/dKxx = -rho/(2 Kxx)
    inv_r = 1.0 / r if r > 0.0 else 0.0
    hx = 0.5 * rho / kxx if kxx > 0.0 else 0.0
    hy = 0.5 * rho / kyy if kyy > 0.0 else 0.0
    return (v, vd, vx - dv * hx, dv * inv_r, vy - dv * hy,
            vdx - dvd * hx, dvd * inv_r, vdy - dvd * hy)
