"""Activation functions and their Gaussian duals.

An :class:`Activation` is the one place that knows an activation phi: its
values and derivatives, and its *dual* ``V(Kxx, Kxy, Kyy) = E[phi(u) phi(v)]``
and *derivative dual* ``Vd = E[phi'(u) phi'(v)]`` for ``(u, v)`` centred
Gaussian with covariance ``[[Kxx, Kxy], [Kxy, Kyy]]``, together with their
partial derivatives in the three covariance entries (needed for
hyperparameter gradients carried through a depth recursion).

Closed forms exist for the piecewise-linear family (ReLU, leaky ReLU, abs,
identity), erf, sin and cos; they are compiled scalar functions that the
fused kernels inline. Every other activation (tanh, sigmoid, softplus, swish,
GELU or any callable) is integrated by two-dimensional Gauss-Hermite
quadrature.
"""
import math

import numpy as np
from numba import njit
from scipy.special import erf as _erf
from scipy.special import expit as _expit
from scipy.special import ndtr as _ndtr

from ._fastmath import atan2_nonneg

__all__ = [
    "Activation", "ReLU", "LeakyReLU", "Abs", "Identity", "Erf", "Sin", "Cos",
    "QuadratureActivation", "Tanh", "Sigmoid", "Softplus", "Swish", "GELU",
    "get_activation", "ACTIVATION_NAMES",
]

_PI = math.pi
_TINY = 1e-300


# --------------------------------------------------------------------------
# Compiled scalar duals: (kxx, kxy, kyy, param) -> values.  ``*_dual`` returns
# (V, Vd); ``*_partials`` returns (V, Vd, V_xx, V_xy, V_yy, Vd_xx, Vd_xy, Vd_yy).
# --------------------------------------------------------------------------

@njit(inline="always", fastmath=True, cache=True)
def _piecewise_linear_core(kxx, kxy, kyy, slope):
    # phi(x) = alpha x + beta |x|; cross terms vanish by symmetry, so
    # V = alpha^2 Kxy + beta^2 E|u||v| and Vd = alpha^2 + beta^2 E[sgn u sgn v].
    alpha = 0.5 * (1.0 + slope)
    beta = 0.5 * (1.0 - slope)
    r = math.sqrt(kxx * kyy)
    c = min(max(kxy, -r), r)
    s = math.sqrt(max(kxx * kyy - c * c, 0.0))
    theta = atan2_nonneg(s, c)
    v = alpha * alpha * c + beta * beta * (2.0 * s + (_PI - 2.0 * theta) * c) / _PI
    vd = alpha * alpha + beta * beta * (1.0 - 2.0 * theta / _PI)
    return v, vd, c, s, beta


@njit(inline="always", fastmath=True, cache=True)
def _piecewise_linear_dual(kxx, kxy, kyy, slope):
    v, vd, c, s, beta = _piecewise_linear_core(kxx, kxy, kyy, slope)
    return v, vd


@njit(inline="always", fastmath=True, cache=True)
def _piecewise_linear_partials(kxx, kxy, kyy, slope):
    v, vd, c, s, beta = _piecewise_linear_core(kxx, kxy, kyy, slope)
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


@njit(inline="always", fastmath=True, cache=True)
def _erf_dual(kxx, kxy, kyy, unused):
    a = 1.0 + 2.0 * kxx
    b = 1.0 + 2.0 * kyy
    z = min(max(2.0 * kxy / math.sqrt(a * b), -1.0), 1.0)
    v = (2.0 / _PI) * math.asin(z)
    vd = (4.0 / _PI) / math.sqrt(a * b - 4.0 * kxy * kxy)
    return v, vd


@njit(inline="always", fastmath=True, cache=True)
def _erf_partials(kxx, kxy, kyy, unused):
    a = 1.0 + 2.0 * kxx
    b = 1.0 + 2.0 * kyy
    v, vd = _erf_dual(kxx, kxy, kyy, unused)
    d = a * b - 4.0 * kxy * kxy
    return (v, vd, -kxy * vd / a, vd, -kxy * vd / b,
            -vd * b / d, 4.0 * kxy * vd / d, -vd * a / d)


@njit(inline="always", fastmath=True, cache=True)
def _trig_core(kxx, kxy, kyy):
    # E[sin u sin v] = exp(-(Kxx+Kyy)/2) sinh(Kxy), E[cos u cos v] the cosh;
    # the exponent is split so that nothing overflows (|Kxy| <= mean).
    m = 0.5 * (kxx + kyy)
    ep = math.exp(kxy - m)
    em = math.exp(-kxy - m)
    return 0.5 * (ep - em), 0.5 * (ep + em)


@njit(inline="always", fastmath=True, cache=True)
def _trig_dual(kxx, kxy, kyy, is_cos):
    sinh_e, cosh_e = _trig_core(kxx, kxy, kyy)
    if is_cos > 0.5:
        return cosh_e, sinh_e
    return sinh_e, cosh_e


@njit(inline="always", fastmath=True, cache=True)
def _trig_partials(kxx, kxy, kyy, is_cos):
    v, vd = _trig_dual(kxx, kxy, kyy, is_cos)
    return (v, vd, -0.5 * v, vd, -0.5 * v, -0.5 * vd, v, -0.5 * vd)


def _make_array_map(scalar_fn, n_out):
    """Vectorise a compiled scalar dual over 1-D arrays."""
    if n_out == 2:
        @njit(cache=False)
        def mapped(kxx, kxy, kyy, param):
            n = kxx.shape[0]
            out = np.empty((2, n))
            for i in range(n):
                v, vd = scalar_fn(kxx[i], kxy[i], kyy[i], param)
                out[0, i] = v
                out[1, i] = vd
            return out
    else:
        @njit(cache=False)
        def mapped(kxx, kxy, kyy, param):
            n = kxx.shape[0]
            out = np.empty((8, n))
            for i in range(n):
                res = scalar_fn(kxx[i], kxy[i], kyy[i], param)
                for k in range(8):
                    out[k, i] = res[k]
            return out
    return mapped


def _flatten_triplet(kxx, kxy, kyy):
    kxx, kxy, kyy = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64)
                                          for a in (kxx, kxy, kyy)))
    shape = kxx.shape
    return [np.ascontiguousarray(a).ravel() for a in (kxx, kxy, kyy)], shape


class Activation:
    """Base class: an activation function and its Gaussian duals.

    Subclasses define ``__call__`` (phi) and ``derivative`` (phi'), and either
    compiled closed-form duals or quadrature (see :class:`QuadratureActivation`).

    Examples
    --------
    >>> from skinfinite.activations import ReLU
    >>> V, Vd = ReLU().dual(1.0, 0.0, 1.0)
    >>> round(float(V), 6), float(Vd)
    (0.159155, 0.25)
    """

    closed_form = False
    _param = 0.0

    def __call__(self, x):
        raise NotImplementedError

    def derivative(self, x):
        """phi'(x)."""
        raise NotImplementedError

    def dual(self, kxx, kxy, kyy):
        """Return ``(E[phi(u)phi(v)], E[phi'(u)phi'(v)])`` element-wise."""
        (a, b, c), shape = _flatten_triplet(kxx, kxy, kyy)
        out = self._dual_arrays(a, b, c)
        return out[0].reshape(shape), out[1].reshape(shape)

    def dual_partials(self, kxx, kxy, kyy):
        """Return the duals and their partial derivatives.

        Returns
        -------
        values : tuple of 8 arrays
            ``V, Vd, dV/dKxx, dV/dKxy, dV/dKyy, dVd/dKxx, dVd/dKxy, dVd/dKyy``.
        """
        (a, b, c), shape = _flatten_triplet(kxx, kxy, kyy)
        out = self._partials_arrays(a, b, c)
        return tuple(o.reshape(shape) for o in out)

    # identity of an activation for clone/equality/grid search
    def _key(self):
        return (type(self).__name__, self._param)

    def __eq__(self, other):
        return isinstance(other, Activation) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        return f"{type(self).__name__}()"


class _ClosedFormActivation(Activation):
    closed_form = True
    _scalar_dual = None
    _scalar_partials = None
    _compiled = {}

    @classmethod
    def _maps(cls):
        key = cls._scalar_dual
        if key not in _ClosedFormActivation._compiled:
            _ClosedFormActivation._compiled[key] = (
                _make_array_map(cls._scalar_dual, 2),
                _make_array_map(cls._scalar_partials, 8))
        return _ClosedFormActivation._compiled[key]

    def _dual_arrays(self, kxx, kxy, kyy):
        return self._maps()[0](kxx, kxy, kyy, float(self._param))

    def _partials_arrays(self, kxx, kxy, kyy):
        return self._maps()[1](kxx, kxy, kyy, float(self._param))


class LeakyReLU(_ClosedFormActivation):
    """phi(x) = max(x, slope * x); the dual is the arc-cosine kernel family.

    Parameters
    ----------
    slope : float, default=0.01
        Slope for negative inputs. ``slope=0`` is ReLU, ``-1`` is abs and
        ``1`` the identity.
    """

    _scalar_dual = staticmethod(_piecewise_linear_dual)
    _scalar_partials = staticmethod(_piecewise_linear_partials)

    def __init__(self, slope=0.01):
        slope = float(slope)
        if not np.isfinite(slope):
            raise ValueError(f"slope must be finite, got {slope}.")
        self.slope = slope
        self._param = slope

    def __call__(self, x):
        x = np.asarray(x)
        return 0.5 * (1 + self.slope) * x + 0.5 * (1 - self.slope) * np.abs(x)

    def derivative(self, x):
        x = np.asarray(x)
        return 0.5 * (1 + self.slope) + 0.5 * (1 - self.slope) * np.sign(x)

    def __repr__(self):
        return f"LeakyReLU(slope={self.slope!r})"


class ReLU(LeakyReLU):
    """phi(x) = max(x, 0) (arc-cosine kernel of degree 1, Cho & Saul 2009)."""

    def __init__(self):
        super().__init__(slope=0.0)

    def __repr__(self):
        return "ReLU()"


class Abs(LeakyReLU):
    """phi(x) = |x|."""

    def __init__(self):
        super().__init__(slope=-1.0)

    def __repr__(self):
        return "Abs()"


class Identity(LeakyReLU):
    """phi(x) = x (the network is linear; the dual is Kxy)."""

    def __init__(self):
        super().__init__(slope=1.0)

    def __repr__(self):
        return "Identity()"


class Erf(_ClosedFormActivation):
    """phi(x) = erf(x) (Williams 1997)."""

    _scalar_dual = staticmethod(_erf_dual)
    _scalar_partials = staticmethod(_erf_partials)

    def __call__(self, x):
        return _erf(x)

    def derivative(self, x):
        return 2.0 / math.sqrt(math.pi) * np.exp(-np.square(x))


class Sin(_ClosedFormActivation):
    """phi(x) = sin(x)."""

    _scalar_dual = staticmethod(_trig_dual)
    _scalar_partials = staticmethod(_trig_partials)
    _param = 0.0

    def __call__(self, x):
        return np.sin(x)

    def derivative(self, x):
        return np.cos(x)


class Cos(_ClosedFormActivation):
    """phi(x) = cos(x)."""

    _scalar_dual = staticmethod(_trig_dual)
    _scalar_partials = staticmethod(_trig_partials)
    _param = 1.0

    def __call__(self, x):
        return np.cos(x)

    def derivative(self, x):
        return -np.sin(x)


# --------------------------------------------------------------------------
# Quadrature
# --------------------------------------------------------------------------

def _finite_difference(fn, order):
    # Central stencils with steps near the optimum eps**(1/(order+2)); the
    # resulting derivative errors are about 1e-10, 1e-7 and 1e-5 relative.
    def first(x):
        h = 6e-6 * np.maximum(1.0, np.abs(x))
        return (fn(x + h) - fn(x - h)) / (2 * h)

    def second(x):
        h = 1e-4 * np.maximum(1.0, np.abs(x))
        return (fn(x + h) - 2 * fn(x) + fn(x - h)) / (h * h)

    def third(x):
        h = 1e-3 * np.maximum(1.0, np.abs(x))
        return (fn(x + 2 * h) - 2 * fn(x + h) + 2 * fn(x - h)
                - fn(x - 2 * h)) / (2 * h ** 3)

    return {1: first, 2: second, 3: third}[order]


class QuadratureActivation(Activation):
    """Any activation, with duals by two-dimensional Gauss-Hermite quadrature.

    Writing ``u = sqrt(Kxx) z1`` and ``v = sqrt(Kyy) (rho z1 + sqrt(1-rho^2) z2)``
    with independent standard normal ``z1, z2``, the expectations become
    integrals against a Gaussian weight evaluated with ``n_nodes**2`` nodes.
    The partial derivatives follow from Price's theorem
    (``dV/dKxy = E[phi' phi']``) and Stein's lemma
    (``dV/dKxx = E[phi''(u) phi(v)] / 2``), so gradients need phi'' and
    phi''' too; those not given are taken by central finite differences.

    For smooth activations such as tanh the duals are accurate to about
    1e-12 relative with the default 32 nodes at variances up to 10 (see
    ``tests/test_activations.py``); accuracy degrades for activations with
    kinks, which have closed forms here anyway.

    Parameters
    ----------
    function : callable
        Element-wise NumPy function phi.
    derivative, second_derivative, third_derivative : callable, optional
        Its derivatives; finite differences are used when missing.
    n_nodes : int, default=32
        Gauss-Hermite nodes per dimension.
    name : str, optional
        Used in ``repr`` and for equality.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite.activations import QuadratureActivation
    >>> act = QuadratureActivation(np.tanh, lambda x: 1 - np.tanh(x) ** 2)
    >>> V, Vd = act.dual(1.0, 1.0, 1.0)
    >>> round(float(V), 4)
    0.3943
    """

    def __init__(self, function, derivative=None, second_derivative=None,
                 third_derivative=None, n_nodes=32, name=None):
        if not callable(function):
            raise TypeError("function must be callable, got "
                            f"{type(function).__name__}.")
        if int(n_nodes) != n_nodes or n_nodes < 2:
            raise ValueError(f"n_nodes must be an integer >= 2, got {n_nodes}.")
        self.function = function
        self.n_nodes = int(n_nodes)
        self.name = name or getattr(function, "__name__", "callable")
        self._derivs = {
            1: derivative or _finite_difference(function, 1),
            2: second_derivative or _finite_difference(function, 2),
            3: third_derivative or _finite_difference(function, 3),
        }
        z, w = np.polynomial.hermite_e.hermegauss(self.n_nodes)
        self._nodes = z
        self._weights = w / w.sum()

    def __call__(self, x):
        return self.function(np.asarray(x, dtype=float))

    def derivative(self, x):
        return self._derivs[1](np.asarray(x, dtype=float))

    def nth_derivative(self, x, order):
        """phi^(order)(x) for order 0..3."""
        x = np.asarray(x, dtype=float)
        return self.function(x) if order == 0 else self._derivs[order](x)

    def _key(self):
        return (type(self).__name__, self.name, self.n_nodes,
                self.function if type(self) is QuadratureActivation else None)

    def __repr__(self):
        if type(self) is QuadratureActivation:
            return f"QuadratureActivation({self.name})"
        return f"{type(self).__name__}()"

    def _points(self, kxx, kxy, kyy):
        sx = np.sqrt(np.maximum(kxx, 0.0))
        sy = np.sqrt(np.maximum(kyy, 0.0))
        denom = np.where(sx * sy > 0, sx * sy, 1.0)
        rho = np.clip(np.where(sx * sy > 0, kxy / denom, 0.0), -1.0, 1.0)
        z = self._nodes
        u = sx[:, None] * z[None, :]
        v = sy[:, None, None] * (rho[:, None, None] * z[None, :, None]
                                 + np.sqrt(1 - rho * rho)[:, None, None]
                                 * z[None, None, :])
        return u, v

    def _expect(self, fu, fv):
        w = self._weights
        return np.einsum("pi,pij,i,j->p", fu, fv, w, w, optimize=True)

    def _chunks(self, n):
        step = max(1, 2**21 // (self.n_nodes ** 2))
        return range(0, n, step), step

    def _dual_arrays(self, kxx, kxy, kyy):
        n = kxx.shape[0]
        out = np.empty((2, n))
        starts, step = self._chunks(n)
        for s in starts:
            sl = slice(s, s + step)
            u, v = self._points(kxx[sl], kxy[sl], kyy[sl])
            out[0, sl] = self._expect(self(u), self(v))
            out[1, sl] = self._expect(self.derivative(u), self.derivative(v))
        return out

    def _partials_arrays(self, kxx, kxy, kyy):
        n = kxx.shape[0]
        out = np.empty((8, n))
        starts, step = self._chunks(n)
        for s in starts:
            sl = slice(s, s + step)
            u, v = self._points(kxx[sl], kxy[sl], kyy[sl])
            fu = [self.nth_derivative(u, k) for k in range(4)]
            fv = [self.nth_derivative(v, k) for k in range(4)]
            e = self._expect
            vd = e(fu[1], fv[1])
            out[:, sl] = [e(fu[0], fv[0]), vd, 0.5 * e(fu[2], fv[0]), vd,
                          0.5 * e(fu[0], fv[2]), 0.5 * e(fu[3], fv[1]),
                          e(fu[2], fv[2]), 0.5 * e(fu[1], fv[3])]
        return out


def _sigmoid_derivs(x):
    s = _expit(x)
    d1 = s * (1 - s)
    d2 = d1 * (1 - 2 * s)
    d3 = d2 * (1 - 2 * s) - 2 * d1 * d1
    return s, d1, d2, d3


class Tanh(QuadratureActivation):
    """phi(x) = tanh(x), by quadrature with exact derivatives."""

    def __init__(self, n_nodes=32):
        def d1(x):
            return 1 - np.tanh(x) ** 2

        def d2(x):
            t = np.tanh(x)
            return -2 * t * (1 - t * t)

        def d3(x):
            t = np.tanh(x)
            p = 1 - t * t
            return -2 * p * (p - 2 * t * t)

        super().__init__(np.tanh, d1, d2, d3, n_nodes=n_nodes, name="tanh")


class Sigmoid(QuadratureActivation):
    """phi(x) = 1 / (1 + exp(-x)), by quadrature with exact derivatives."""

    def __init__(self, n_nodes=32):
        super().__init__(_expit, lambda x: _sigmoid_derivs(x)[1],
                         lambda x: _sigmoid_derivs(x)[2],
                         lambda x: _sigmoid_derivs(x)[3],
                         n_nodes=n_nodes, name="sigmoid")


class Softplus(QuadratureActivation):
    """phi(x) = log(1 + exp(x)), by quadrature with exact derivatives."""

    def __init__(self, n_nodes=32):
        super().__init__(lambda x: np.logaddexp(0.0, x), _expit,
                         lambda x: _sigmoid_derivs(x)[1],
                         lambda x: _sigmoid_derivs(x)[2],
                         n_nodes=n_nodes, name="softplus")


class Swish(QuadratureActivation):
    """phi(x) = x * sigmoid(x) (SiLU), by quadrature with exact derivatives."""

    def __init__(self, n_nodes=32):
        def d(order):
            def fn(x):
                s = _sigmoid_derivs(x)
                return order * s[order - 1] + x * s[order]
            return fn

        super().__init__(lambda x: x * _expit(x), d(1), d(2), d(3),
                         n_nodes=n_nodes, name="swish")


class GELU(QuadratureActivation):
    """phi(x) = x Phi(x) (exact GELU), by quadrature with exact derivatives."""

    def __init__(self, n_nodes=32):
        def pdf(x):
            return np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)

        super().__init__(lambda x: x * _ndtr(x),
                         lambda x: _ndtr(x) + x * pdf(x),
                         lambda x: pdf(x) * (2 - x * x),
                         lambda x: pdf(x) * (x ** 3 - 4 * x),
                         n_nodes=n_nodes, name="gelu")


_REGISTRY = {
    "relu": ReLU, "leaky_relu": LeakyReLU, "abs": Abs, "identity": Identity,
    "linear": Identity, "erf": Erf, "sin": Sin, "cos": Cos, "tanh": Tanh,
    "sigmoid": Sigmoid, "softplus": Softplus, "swish": Swish, "silu": Swish,
    "gelu": GELU,
}
ACTIVATION_NAMES = tuple(sorted(_REGISTRY))


def get_activation(activation):
    """Turn a name, an :class:`Activation` or a callable into an Activation.

    Parameters
    ----------
    activation : str, Activation or callable
        One of ``ACTIVATION_NAMES``, an Activation instance, or an
        element-wise callable (integrated by quadrature).

    Returns
    -------
    Activation
    """
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str):
        key = activation.lower()
        if key not in _REGISTRY:
            raise ValueError(
                f"Unknown activation {activation!r}. Valid names are "
                f"{', '.join(ACTIVATION_NAMES)}; or pass an Activation "
                "object or a callable.")
        return _REGISTRY[key]()
    if callable(activation):
        return QuadratureActivation(activation)
    raise TypeError("activation must be a name, an Activation or a callable, "
                    f"got {type(activation).__name__}.")
