"""Branch-free elementary functions that LLVM can vectorise inside numba loops.

``math.atan2`` is an opaque libm call that blocks SIMD; the arc-cosine
kernels need one angle per pair and layer, so it dominates their cost.
"""
import math

import numpy as np
from numba import njit


def _fit_atan_coefficients(degree=10):
    # atan(x)/x as a polynomial in x**2 on the reduced range [0, tan(pi/8)],
    # fitted in a Chebyshev basis and converted; the maximum relative error is
    # about 1e-15 (tests/test_fastmath.py).
    cheb = np.polynomial.chebyshev
    x_max = math.tan(math.pi / 8)
    t_max = x_max * x_max
    t = (1 - np.cos(np.linspace(0, np.pi, 20001))) / 2 * t_max
    x = np.sqrt(t)
    safe_x = np.where(x > 0, x, 1.0)
    f = np.where(x > 0, np.arctan(safe_x) / safe_x, 1.0)
    coef_s = cheb.cheb2poly(cheb.chebfit(2 * t / t_max - 1, f, degree))
    coef_t = np.polynomial.Polynomial(coef_s)(
        np.polynomial.Polynomial([-1.0, 2.0 / t_max])).coef
    return tuple(float(c) for c in coef_t)


# Fast-math without 'nnan'/'ninf': the kernels count non-finite results, and
# those flags would let the compiler assume the counts are zero.  Without
# 'contract', 'reassoc', 'arcp' and 'afn' too: under them LLVM rewrites a
# loop's SIMD body and its scalar remainder differently (fused multiply-adds,
# reordered sums), and the remainder runs the columns past the last full
# vector and, after a runtime aliasing check on the scratch buffers'
# addresses, whole loops; a pair's last bit then followed its place in the
# tile and the allocator, and differed between threads.  The SIMD loops need
# none of them (see atan2_nonneg).
FASTMATH = {"nsz"}

_A = _fit_atan_coefficients()
_TAN_PI_8 = math.tan(math.pi / 8)
_PI = math.pi


@njit(inline="always", fastmath=FASTMATH, cache=True)
def atan2_nonneg(s, c):
    """atan2(s, c) for s >= 0, i.e. the angle in [0, pi]."""
    ac = abs(c)
    hi = max(s, ac)
    lo = min(s, ac)
    # one division: (a - 1)/(a + 1) with a = lo/hi is (lo - hi)/(lo + hi)
    reduced = lo > _TAN_PI_8 * hi
    num = lo - hi if reduced else lo
    den = lo + hi if reduced else hi
    x = num / den if den > 0 else 0.0
    z = x * x
    p = _A[10]
    p = p * z + _A[9]
    p = p * z + _A[8]
    p = p * z + _A[7]
    p = p * z + _A[6]
    p = p * z + _A[5]
    p = p * z + _A[4]
    p = p * z + _A[3]
    p = p * z + _A[2]
    p = p * z + _A[1]
    p = p * z + _A[0]
    r = x * p + (_PI / 4 if reduced else 0.0)
    r = _PI / 2 - r if s > ac else r
    return _PI - r if c < 0 else r
