"""Activation functions and their Gaussian duals.

An :class:`Activation` is the one place that knows an activation phi: its
values and derivatives, and its *dual* ``V(Kxx, Kxy, Kyy) = E[phi(u) phi(v)]``
and *derivative dual* ``Vd = E[phi'(u) phi'(v)]`` for ``(u, v)`` centred
Gaussian with covariance ``[[Kxx, Kxy], [Kxy, Kyy]]``, together with their
partial derivatives in the three covariance entries (needed for
hyperparameter gradients carried through a depth recursion).

Closed forms exist for the piecewise-linear family (ReLU, leaky ReLU, abs,
identity), erf, sin and cos. Every other activation (tanh, sigmoid,
softplus, swish, GELU or any callable) goes through its Hermite expansion,
with coefficients from Gauss-Hermite quadrature (:class:`QuadratureActivation`).
Either way the duals are compiled scalar functions (:mod:`skinfinite.activations.duals`)
that the fused kernels inline.
"""
import math
import warnings

import numpy as np
from numba import njit
from scipy.special import erf as _erf
from scipy.special import expit as _expit
from scipy.special import ndtr as _ndtr

from .._core.validation import caller_stacklevel
from . import duals as _duals
from .families import SOURCE_STAMP, family_dual, family_of, family_partials

__all__ = [
    "Activation", "ReLU", "LeakyReLU", "Abs", "Identity", "Erf", "Sin", "Cos",
    "QuadratureActivation", "Tanh", "Sigmoid", "Softplus", "Swish", "GELU",
    "get_activation", "ACTIVATION_NAMES", "TRUNCATION_TOL",
]

#: Largest fraction of E[phi^2] or E[phi'^2] that a truncated Hermite series
#: may miss at correlation one before :class:`QuadratureActivation` warns.
TRUNCATION_TOL = 1e-3

@njit(inline="always")
def _map_over(scalar_fn, n_out, kxx, kxy, kyy, cx, cy, param):
    n = kxx.shape[0]
    out = np.empty((n_out, n))
    for i in range(n):
        r = np.sqrt(kxx[i]) * np.sqrt(kyy[i])
        res = scalar_fn(kxx[i], kxy[i], kyy[i], r, cx[i], cy[i], param)
        for k in range(n_out):
            out[k, i] = res[k]
    return out


def _make_array_map(scalar_fn, n_out):
    """Vectorise a compiled scalar dual over 1-D arrays."""
    @njit(cache=False)
    def mapped(kxx, kxy, kyy, cx, cy, param):
        return _map_over(scalar_fn, n_out, kxx, kxy, kyy, cx, cy, param)
    return mapped


def _cached_maps(stamp):
    # generic in the dual family, so numba caches them (see .families)
    @njit(cache=True)
    def dual(kxx, kxy, kyy, cx, cy, family):
        stamp_ = stamp  # noqa: F841 (keys the disk cache on the sources)
        return _map_over(family_dual, 2, kxx, kxy, kyy, cx, cy, family)

    @njit(cache=True)
    def partials(kxx, kxy, kyy, cx, cy, family):
        stamp_ = stamp  # noqa: F841
        return _map_over(family_partials, 8, kxx, kxy, kyy, cx, cy, family)
    return dual, partials


_CACHED_MAPS = _cached_maps(SOURCE_STAMP)
_MAPS = {}


def _array_maps(scalar_dual, scalar_partials):
    if scalar_dual not in _MAPS:
        _MAPS[scalar_dual] = (_make_array_map(scalar_dual, 2),
                              _make_array_map(scalar_partials, 8))
    return _MAPS[scalar_dual]


def _flatten_triplet(kxx, kxy, kyy):
    kxx, kxy, kyy = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64)
                                          for a in (kxx, kxy, kyy)))
    shape = kxx.shape
    return [np.ascontiguousarray(a).ravel() for a in (kxx, kxy, kyy)], shape


class Activation:
    """Base class: an activation function and its Gaussian duals.

    Subclasses define ``__call__`` (phi), ``derivative`` (phi'), the compiled
    scalar duals ``_scalar_dual``/``_scalar_partials`` (with their scalar
    parameter ``_param``) and, where the duals need per-input data,
    ``coefficients``.  The engines read them through the read-only
    properties :attr:`scalar_dual`, :attr:`scalar_partials`,
    :attr:`parameter` and :attr:`family`.

    Examples
    --------
    >>> from skinfinite.activations.definitions import ReLU
    >>> V, Vd = ReLU().dual(1.0, 0.0, 1.0)
    >>> round(float(V), 6), float(Vd)
    (0.159155, 0.25)
    """

    closed_form = True
    _param = 0.0
    _scalar_dual = None
    _scalar_partials = None

    @property
    def scalar_dual(self):
        """The compiled scalar dual ``(kxx, kxy, kyy, r, ax, ay, parameter)
        -> (V, Vd)`` (see :mod:`skinfinite.activations.duals`)."""
        return self._scalar_dual

    @property
    def scalar_partials(self):
        """The compiled scalar duals with their eight partial derivatives."""
        return self._scalar_partials

    @property
    def parameter(self):
        """The scalar parameter the compiled duals take (a float)."""
        return float(self._param)

    @property
    def family(self):
        """The family tuple of the compiled duals (see
        :mod:`skinfinite.activations.families`), or None for duals outside
        the families."""
        return family_of(self._scalar_dual, self._param)

    def __call__(self, x):
        raise NotImplementedError

    def derivative(self, x):
        """phi'(x)."""
        raise NotImplementedError

    def coefficients(self, k):
        """Per-input data the compiled duals need at variances ``k``.

        Closed forms need none: an array of shape (len(k), 0).
        """
        return np.zeros((np.shape(k)[0], 0))

    def _evaluate(self, kxx, kxy, kyy, which):
        (a, b, c), shape = _flatten_triplet(kxx, kxy, kyy)
        family = self.family
        if family is None:
            maps = _array_maps(self._scalar_dual, self._scalar_partials)
            family = self.parameter
        else:
            maps = _CACHED_MAPS
        out = maps[which](a, b, c, self.coefficients(a), self.coefficients(c),
                          family)
        return tuple(o.reshape(shape) for o in out)

    def dual(self, kxx, kxy, kyy):
        """Return ``(E[phi(u)phi(v)], E[phi'(u)phi'(v)])`` element-wise."""
        return self._evaluate(kxx, kxy, kyy, 0)

    def dual_partials(self, kxx, kxy, kyy):
        """Return the duals and their partial derivatives.

        Returns
        -------
        values : tuple of 8 arrays
            ``V, Vd, dV/dKxx, dV/dKxy, dV/dKyy, dVd/dKxx, dVd/dKxy, dVd/dKyy``.
        """
        return self._evaluate(kxx, kxy, kyy, 1)

    # identity of an activation for clone/equality/grid search
    def _key(self):
        return (type(self).__name__, self._param)

    def __eq__(self, other):
        return isinstance(other, Activation) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        return f"{type(self).__name__}()"




class LeakyReLU(Activation):
    """phi(x) = max(x, slope * x); the dual is the arc-cosine kernel family.

    Parameters
    ----------
    slope : float, default=0.01
        Slope for negative inputs. ``slope=0`` is ReLU, ``-1`` is abs and
        ``1`` the identity.
    """

    _scalar_dual = staticmethod(_duals.piecewise_linear_dual)
    _scalar_partials = staticmethod(_duals.piecewise_linear_partials)

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

    def _key(self):
        return ("LeakyReLU", self.slope)

    def __repr__(self):
        return f"LeakyReLU(slope={self.slope!r})"


class ReLU(LeakyReLU):
    """phi(x) = max(x, 0) (arc-cosine kernel of degree 1, Cho & Saul 2009)."""

    def __init__(self):
        super().__init__(slope=0.0)

    def __repr__(self):
        return "ReLU()"


class Abs(LeakyReLU):
    """``phi(x) = |x|``."""

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


class Erf(Activation):
    """phi(x) = erf(x) (Williams 1997)."""

    _scalar_dual = staticmethod(_duals.erf_dual)
    _scalar_partials = staticmethod(_duals.erf_partials)

    def __call__(self, x):
        return _erf(x)

    def derivative(self, x):
        return 2.0 / math.sqrt(math.pi) * np.exp(-np.square(x))


class Sin(Activation):
    """phi(x) = sin(x)."""

    _scalar_dual = staticmethod(_duals.trig_dual)
    _scalar_partials = staticmethod(_duals.trig_partials)
    _param = 0.0

    def __call__(self, x):
        return np.sin(x)

    def derivative(self, x):
        return np.cos(x)


class Cos(Activation):
    """phi(x) = cos(x)."""

    _scalar_dual = staticmethod(_duals.trig_dual)
    _scalar_partials = staticmethod(_duals.trig_partials)
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
    # resulting derivative errors are about 1e-10 and 1e-7 relative.
    def first(x):
        h = 6e-6 * np.maximum(1.0, np.abs(x))
        return (fn(x + h) - fn(x - h)) / (2 * h)

    def second(x):
        h = 1e-4 * np.maximum(1.0, np.abs(x))
        return (fn(x + h) - 2 * fn(x) + fn(x - h)) / (h * h)

    return {1: first, 2: second}[order]


def _normalised_hermite(z, n_terms):
    """He_k(z) / sqrt(k!) for k < n_terms, by the stable three-term recurrence."""
    H = np.empty((n_terms, z.shape[0]))
    H[0] = 1.0
    if n_terms > 1:
        H[1] = z
    for k in range(2, n_terms):
        H[k] = (z * H[k - 1] - math.sqrt(k - 1) * H[k - 2]) / math.sqrt(k)
    return H


class QuadratureActivation(Activation):
    """Any activation, with duals from its Hermite expansion.

    For each input variance ``K`` the normalised Hermite coefficients
    ``c_k(K) = E[phi(sqrt(K) z) He_k(z)] / sqrt(k!)`` are computed once per
    input and layer by one-dimensional Gauss-Hermite quadrature; Mehler's
    formula then gives every pair's dual as a power series in the
    correlation: ``E[phi(u) phi(v)] = sum_k c_k(Kxx) c_k(Kyy) rho^k`` (and
    the same with phi' for the derivative dual).  A pair costs ``n_terms``
    multiply-adds instead of a two-dimensional quadrature.  Partial
    derivatives differentiate the truncated series exactly, so gradients are
    consistent with the values; dc_k/dK needs phi' and d(phi')_k/dK needs
    phi'', taken by central finite differences when not given.

    Accuracy is that of the truncated series: best for smooth activations
    and moderate variances, worst at correlations near 1.  For tanh with the
    defaults, the relative error of E[phi phi] is below 1e-12 at variances up
    to 1, 3e-7 at 4 and 4e-5 at 10; E[phi' phi'] converges more slowly
    (4e-11, 2e-5 and about 3e-3).  ``tests/test_activations.py`` checks
    these against brute-force two-dimensional quadrature; raise ``n_terms``
    (and ``n_nodes``) for large variances.

    Parameters
    ----------
    function : callable
        Element-wise NumPy function phi.
    derivative, second_derivative : callable, optional
        phi' and phi''; finite differences are used when missing.
    n_terms : int, default=96
        Terms of the Hermite series.
    n_nodes : int, default=192
        Gauss-Hermite nodes for the coefficients (must exceed ``n_terms``).
    name : str, optional
        Used in ``repr`` and for equality.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite.activations.definitions import QuadratureActivation
    >>> act = QuadratureActivation(np.tanh, lambda x: 1 - np.tanh(x) ** 2)
    >>> V, Vd = act.dual(1.0, 1.0, 1.0)
    >>> round(float(V), 4)
    0.3943
    """

    closed_form = False
    _scalar_dual = staticmethod(_duals.series_dual)
    _scalar_partials = staticmethod(_duals.series_partials)

    def __init__(self, function, derivative=None, second_derivative=None,
                 n_terms=96, n_nodes=192, name=None):
        if not callable(function):
            raise TypeError("function must be callable, got "
                            f"{type(function).__name__}.")
        if int(n_terms) != n_terms or n_terms < 2:
            raise ValueError(f"n_terms must be an integer >= 2, got {n_terms}.")
        if int(n_nodes) != n_nodes or n_nodes <= n_terms or n_nodes > 300:
            raise ValueError("n_nodes must be an integer above n_terms and at "
                             f"most 300, got {n_nodes}.")
        self.function = function
        self.n_terms = int(n_terms)
        self.n_nodes = int(n_nodes)
        self.name = name or getattr(function, "__name__", "callable")
        self._derivs = {
            1: derivative or _finite_difference(function, 1),
            2: second_derivative or _finite_difference(function, 2),
        }
        z, w = np.polynomial.hermite_e.hermegauss(self.n_nodes)
        self._nodes = z
        self._weights = w / w.sum()
        self._weighted_hermite = (_normalised_hermite(z, self.n_terms)
                                  * (w / w.sum())).T

    def __call__(self, x):
        return self.function(np.asarray(x, dtype=float))

    def derivative(self, x):
        return self._derivs[1](np.asarray(x, dtype=float))

    def second_derivative(self, x):
        return self._derivs[2](np.asarray(x, dtype=float))

    def coefficients(self, k):
        """Hermite rows ``[c, d, dc/dK, dd/dK]`` of shape (len(k), 4 n_terms)."""
        k = np.asarray(k, dtype=np.float64)
        out = np.empty((k.shape[0], 4 * self.n_terms))
        z, WH = self._nodes, self._weighted_hermite
        step = max(1, 2**22 // self.n_nodes)
        for s in range(0, k.shape[0], step):
            # no floor on the variance (it made c_k at K < 1e-300 too large)
            # except in 1/sd, whose K-derivatives are infinite at K = 0
            sd = np.sqrt(np.maximum(k[s:s + step], 0.0))[:, None]
            x = sd * z
            d1 = self.derivative(x)
            half_z = z / (2 * np.maximum(sd, 1e-150))
            blocks = (self(x), d1, d1 * half_z, self.second_derivative(x) * half_z)
            for b, values in enumerate(blocks):
                if b < 2 and np.isnan(values).any():
                    self._raise_nan(x, values, "derivative" if b else "function")
                out[s:s + step, b * self.n_terms:(b + 1) * self.n_terms] = values @ WH
            self._check_truncation(blocks[0], blocks[1], out[s:s + step],
                                   k[s:s + step])
        return out

    def _check_truncation(self, f, d1, rows, k):
        # Parseval at rho = 1: sum_k c_k^2 = E[phi^2] for the whole series; the
        # part the truncated series misses is its largest error (reached at
        # correlations near +-1).
        p = self.n_terms
        w = self._weights
        for name, values, coef in (("E[phi(u)^2]", f, rows[:, :p]),
                                   ("E[phi'(u)^2]", d1, rows[:, p:2 * p])):
            full = (values * values) @ w
            kept = np.einsum("ij,ij->i", coef, coef)
            with np.errstate(invalid="ignore", divide="ignore"):
                missed = np.where(full > 0, (full - kept) / full, 0.0)
            worst = int(np.argmax(missed))
            if missed[worst] > TRUNCATION_TOL:
                warnings.warn(
                    f"The Hermite series of {self.name} with n_terms="
                    f"{self.n_terms} misses {missed[worst]:.2%} of "
                    f"{name} at variance {k[worst]:.3g} (tolerance "
                    f"{TRUNCATION_TOL:g}); the kernel values at correlations "
                    "near one are low by up to that much. Scale the inputs "
                    "or the weight variance down, or raise n_terms and "
                    "n_nodes.", RuntimeWarning, stacklevel=caller_stacklevel())
                return

    def _raise_nan(self, x, values, which):
        bad = np.isnan(values) & np.isfinite(x)
        if not bad.any():
            return           # NaN from an infinite input: an overflow upstream
        raise ValueError(
            f"The activation {self.name!r} returned NaN (its {which}) at the "
            f"finite input {float(x[bad][0])!r}; an activation must be finite "
            "for every real input (the Gaussian expectations integrate it "
            "over the whole line).")

    def _key(self):
        return (type(self).__name__, self.name, self.n_terms, self.n_nodes,
                self.function if type(self) is QuadratureActivation else None)

    def __repr__(self):
        if type(self) is QuadratureActivation:
            return f"QuadratureActivation({self.name})"
        return f"{type(self).__name__}()"


def _sigmoid_derivs(x):
    s = _expit(x)
    d1 = s * (1 - s)
    return s, d1, d1 * (1 - 2 * s)


def _normal_pdf(x):
    return np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


class Tanh(QuadratureActivation):
    """phi(x) = tanh(x), by Hermite series with exact derivatives."""

    def __init__(self, n_terms=96, n_nodes=192):
        super().__init__(np.tanh, lambda x: 1 - np.tanh(x) ** 2,
                         lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2),
                         n_terms=n_terms, n_nodes=n_nodes, name="tanh")


class Sigmoid(QuadratureActivation):
    """phi(x) = 1 / (1 + exp(-x)), by Hermite series with exact derivatives."""

    def __init__(self, n_terms=96, n_nodes=192):
        super().__init__(_expit, lambda x: _sigmoid_derivs(x)[1],
                         lambda x: _sigmoid_derivs(x)[2],
                         n_terms=n_terms, n_nodes=n_nodes, name="sigmoid")


class Softplus(QuadratureActivation):
    """phi(x) = log(1 + exp(x)), by Hermite series with exact derivatives."""

    def __init__(self, n_terms=96, n_nodes=192):
        super().__init__(lambda x: np.logaddexp(0.0, x), _expit,
                         lambda x: _sigmoid_derivs(x)[1],
                         n_terms=n_terms, n_nodes=n_nodes, name="softplus")


class Swish(QuadratureActivation):
    """phi(x) = x sigmoid(x) (SiLU), by Hermite series with exact derivatives."""

    def __init__(self, n_terms=96, n_nodes=192):
        def d1(x):
            s, ds, _ = _sigmoid_derivs(x)
            return s + x * ds

        def d2(x):
            s, ds, dds = _sigmoid_derivs(x)
            return 2 * ds + x * dds

        super().__init__(lambda x: x * _expit(x), d1, d2,
                         n_terms=n_terms, n_nodes=n_nodes, name="swish")


class GELU(QuadratureActivation):
    """phi(x) = x Phi(x) (exact GELU), by Hermite series with exact derivatives."""

    def __init__(self, n_terms=96, n_nodes=192):
        super().__init__(lambda x: x * _ndtr(x),
                         lambda x: _ndtr(x) + x * _normal_pdf(x),
                         lambda x: _normal_pdf(x) * (2 - x * x),
                         n_terms=n_terms, n_nodes=n_nodes, name="gelu")


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
