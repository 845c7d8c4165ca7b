"""Gaussian duals of activations on torch tensors, differentiable by autograd.

The torch counterpart of :mod:`skinfinite.activations.duals`: for every
:class:`~skinfinite.activations.definitions.Activation`,
``expected_product`` is ``E[phi(u) phi(v)]`` and
``expected_derivative_product`` is ``E[phi'(u) phi'(v)]`` for ``(u, v)``
centred Gaussian with covariance ``[[kxx, kxy], [kxy, kyy]]``, element-wise
over broadcastable tensors, on any device, in float32 or float64, with
gradients in all three covariance entries.

The formulas are those of the compiled duals (an activation's family is
:func:`~skinfinite.activations.families.dual_family`), so both sides agree
to rounding (``tests/test_activation_conformance.py``):

* piecewise linear (ReLU, leaky ReLU, abs, identity): the arc-cosine family,
  with the angle from ``atan2`` and the sine snapped to zero where it is at
  the level of rounding (identical inputs are exact, and the gradients stay
  finite at correlation +-1: there ``dV/dKxy = Vd`` and the derivative dual
  has zero gradient, the convention of the compiled partials); the sine
  is computed on normalised numbers, so that nothing over- or underflows
  and ``K(sX) = s^2 K(X)`` holds at every scale;
* erf, sin and cos: closed forms, erf's denominator as a sum of
  non-negative terms scaled by the largest variance (no cancellation at
  large variances), sin's and cos's exponent split so that nothing
  overflows;
* everything else: Mehler's series ``sum_k c_k(Kxx) c_k(Kyy) rho^k`` with
  the normalised Hermite coefficients from Gauss-Hermite quadrature, using
  the activation's own ``n_terms``, nodes and weights
  (:class:`~skinfinite.activations.definitions.QuadratureActivation`).  This needs phi as
  a torch function: built in for tanh, sigmoid, softplus, swish and GELU, for
  NumPy ufuncs with a torch namesake (``np.tanh``, ``np.sin``, ...), for an
  activation with a ``torch_function`` attribute, and for callables that
  accept and return torch tensors.  phi' and phi'' come from autograd.

For series activations the coefficients are computed per element of ``kxx``
and ``kyy`` as given, before broadcasting: pass per-input variances shaped
``(n, 1)`` and ``(1, m)`` against an ``(n, m)`` ``kxy`` so that each input's
coefficients are computed once.
"""
import math

import numpy as np

from ..activations.families import Erf, PiecewiseLinear, Series, Trig

__all__ = ["expected_product", "expected_derivative_product", "duals",
           "torch_activation"]

_PI = math.pi


def _torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - exercised by monkeypatch
        from .._core.install import install_hint
        raise ImportError(
            f"The torch duals need PyTorch; {install_hint('gp')}.") from exc
    return torch


# ------------------------------------------------------------ closed forms
# The formulas, their order of operations and their snapping thresholds are
# those of skinfinite.activations.duals (tests/test_activation_conformance.py
# compares both, and the CUDA device functions, on one grid).  Two torch
# idioms differ from the scalar code: a branch is a where() whose discarded
# side gets a harmless argument (0 * inf = nan in the backward pass), and a
# value snapped to its limit keeps the derivative of the unsnapped formula.

def _snap(dtype):
    # below this (relative) squared sine the angle is rounding noise; the
    # compiled duals use the float64 value
    torch = _torch()
    return 4.0 * torch.finfo(dtype).eps


def _piecewise_linear(kxx, kxy, kyy, slope):
    torch = _torch()
    alpha2 = (0.5 * (1.0 + slope)) ** 2
    beta2 = (0.5 * (1.0 - slope)) ** 2
    r = _safe_sqrt(kxx) * _safe_sqrt(kyy)
    # the clamped value with the gradient of kxy itself: dV/dKxy = Vd also
    # at |rho| = 1 and beyond it by rounding, as in the compiled partials
    c = _with_gradient_of(kxy, torch.clamp(kxy, min=-r, max=r))
    # sin^2 = (1 - rho)(1 + rho) on normalised numbers: nothing over- or
    # underflows at extreme scales, so K(sX) = s^2 K(X)
    pos = r > 0
    inv_r = torch.where(pos, 1.0 / torch.where(pos, r, torch.ones_like(r)),
                        torch.zeros_like(r))
    d = (r - c) * inv_r
    s2 = d * (2.0 - d)
    keep = s2 > _snap(s2.dtype)
    s = torch.where(keep, r * torch.sqrt(torch.where(keep, s2,
                                                     torch.ones_like(s2))),
                    torch.zeros_like(s2))
    theta = torch.atan2(s, c)
    v = alpha2 * c + beta2 * (2.0 * s + (_PI - 2.0 * theta) * c) / _PI
    vd = alpha2 + beta2 * (1.0 - 2.0 * theta / _PI)
    return v, vd


def _with_gradient_of(x, value):
    # value in the forward pass, the gradient of x in the backward pass; the
    # sum is exactly value where the two are within a factor of 2 (Sterbenz),
    # as a snapped or clamped x is
    return x + (value - x).detach()


def _safe_sqrt(x):
    # sqrt with a zero (not infinite) derivative at 0
    torch = _torch()
    pos = x > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, x, torch.ones_like(x))),
                       torch.zeros_like(x))


def _erf(kxx, kxy, kyy):
    torch = _torch()
    # (1 + 2 Kxx)(1 + 2 Kyy) - 4 Kxy^2 as a sum of non-negative terms, scaled
    # by the largest variance: no cancellation to zero at large variances and
    # no overflow (the kernel is bounded at every scale)
    r = _safe_sqrt(kxx) * _safe_sqrt(kyy)
    # |rho| within rounding of 1 is exactly 1 in value; the derivative stays
    # that of the unsnapped expression
    c = torch.minimum(kxy.abs(), r)
    c = torch.where(r - c <= 0.5 * _snap(r.dtype) * r, r, c)
    c = _with_gradient_of(kxy.abs(), c)
    inv2 = 1.0 / torch.clamp(torch.maximum(kxx, kyy), min=1.0)
    inv = torch.sqrt(inv2)
    # at r = 0 the product is Kxx Kyy (= 0), written so that its gradient
    # is Kyy, not the zero gradient of the safe square roots
    gap = torch.where(r > 0, ((r - c) * inv) * ((r + c) * inv),
                      (kxx * inv) * (kyy * inv))
    t = inv2 + 2.0 * (kxx * inv2 + kyy * inv2) + 4.0 * gap
    st = torch.sqrt(t)
    # asin(2 Kxy / sqrt(a b)) = atan2(2 Kxy, sqrt(d)): exact near |z| = 1
    return ((2.0 / _PI) * torch.atan2(2.0 * kxy * inv, st),
            (4.0 / _PI) * inv / st)


def _trig(kxx, kxy, kyy, is_cos):
    torch = _torch()
    # E[sin u sin v] = exp(-(Kxx+Kyy)/2) sinh(Kxy), E[cos u cos v] the cosh;
    # the exponent is split so that nothing overflows (|Kxy| <= mean), except
    # for |Kxy| < 1, where the difference of exponentials would leave an
    # absolute rounding error of about 1e-16 in place of small values
    m = 0.5 * (kxx + kyy)
    small = kxy.abs() < 1.0
    k_small = torch.where(small, kxy, torch.zeros_like(kxy))
    k_large = torch.where(small, torch.ones_like(kxy), kxy)
    e = torch.exp(-m)
    ep = torch.exp(k_large - m)
    em = torch.exp(-k_large - m)
    sinh_e = torch.where(small, e * torch.sinh(k_small), 0.5 * (ep - em))
    cosh_e = torch.where(small, e * torch.cosh(k_small), 0.5 * (ep + em))
    return (cosh_e, sinh_e) if is_cos else (sinh_e, cosh_e)


# ------------------------------------------------------------------ series
_NAMED = {
    "tanh": lambda t: t.tanh,
    "sigmoid": lambda t: t.sigmoid,
    "softplus": lambda t: (lambda x: t.logaddexp(t.zeros_like(x), x)),
    "swish": lambda t: (lambda x: x * t.sigmoid(x)),
    "gelu": lambda t: (lambda x: x * 0.5 * (1.0 + t.erf(x / math.sqrt(2.0)))),
}
_UFUNC_NAMES = {"arctan": "atan", "arcsinh": "asinh", "arcsin": "asin",
                "absolute": "abs", "logaddexp": None}


def torch_activation(activation):
    """phi as a torch function for a series activation.

    Parameters
    ----------
    activation : QuadratureActivation

    Returns
    -------
    callable
        Element-wise torch function.

    Raises
    ------
    TypeError
        If no torch equivalent is known.
    """
    torch = _torch()
    fn = getattr(activation, "torch_function", None)
    if fn is not None:
        return fn
    from ..activations.definitions import QuadratureActivation
    if type(activation) is not QuadratureActivation and \
            activation.name in _NAMED:
        return _NAMED[activation.name](torch)
    function = activation.function
    if isinstance(function, np.ufunc):
        name = _UFUNC_NAMES.get(function.__name__, function.__name__)
        fn = getattr(torch, name, None) if name else None
        if fn is not None:
            return fn
    probe = torch.linspace(-1.0, 1.0, 3, dtype=torch.float64,
                           requires_grad=True)
    try:
        out = function(probe)
    except Exception:  # noqa: BLE001 - any failure means "not torch-capable"
        out = None
    if isinstance(out, torch.Tensor) and out.shape == probe.shape \
            and out.requires_grad:
        return function
    raise TypeError(
        f"The activation {activation!r} has no torch equivalent: give it a "
        "torch_function attribute, or pass a callable that accepts and "
        "returns torch tensors.")


def _derivative(fn, x):
    """phi'(x) by autograd, itself differentiable where x requires grad."""
    torch = _torch()
    with torch.enable_grad():
        xg = x if x.requires_grad else x.detach().requires_grad_(True)
        y = fn(xg)
        (d,) = torch.autograd.grad(y.sum(), xg, create_graph=x.requires_grad)
    return d


_TABLES = {}


def _hermite_table(activation, dtype, device):
    """The activation's weighted Hermite matrix (n_nodes, n_terms) and nodes."""
    torch = _torch()
    key = (id(activation), activation.n_terms, activation.n_nodes, dtype,
           str(device))
    hit = _TABLES.get(key)
    if hit is None or hit[0] is not activation:
        hit = (activation,
               torch.as_tensor(activation._nodes, dtype=dtype, device=device),
               torch.as_tensor(activation._weighted_hermite, dtype=dtype,
                               device=device))
        _TABLES[key] = hit
    return hit[1], hit[2]


def _coefficients(activation, k, fn, derivative):
    """Normalised Hermite coefficients of phi (or phi') at variances ``k``.

    Returns a tensor of shape ``k.shape + (n_terms,)``, mirroring
    ``QuadratureActivation.coefficients``.
    """
    torch = _torch()
    z, wh = _hermite_table(activation, k.dtype, k.device)
    # no floor on the variance (one made c_k at K < 1e-300 too large), as in
    # QuadratureActivation.coefficients
    sd = _safe_sqrt(k)
    x = sd.unsqueeze(-1) * z
    values = _derivative(fn, x) if derivative else fn(x)
    return values @ wh


class _MehlerSeries:
    """sum_k a_k b_k rho^k with O(pairs) memory in the backward pass.

    Autograd through a Horner loop would keep n_terms pair-sized tensors;
    this Function recomputes the powers of rho instead.
    """

    _fn = None

    @classmethod
    def apply(cls, a, b, rho):
        if cls._fn is None:
            cls._fn = _make_mehler_function()
        return cls._fn.apply(a, b, rho)


def _make_mehler_function():
    torch = _torch()

    def horner(a, b, rho):
        p = a.shape[-1]
        v = torch.zeros_like(rho)
        dv = torch.zeros_like(rho)
        for k in range(p - 1, -1, -1):
            dv = dv * rho + v
            v = v * rho + a[..., k] * b[..., k]
        return v, dv

    class MehlerSeries(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a, b, rho):
            shape = torch.broadcast_shapes(a.shape[:-1], b.shape[:-1],
                                           rho.shape)
            rho_b = rho.expand(shape)
            v, dv = horner(a, b, rho_b)
            ctx.save_for_backward(a, b, rho, dv)
            return v

        @staticmethod
        def backward(ctx, g):
            a, b, rho, dv = ctx.saved_tensors
            ga = gb = grho = None
            if ctx.needs_input_grad[2]:
                grho = (g * dv).sum_to_size(rho.shape)
            if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
                # the coefficients of x and y enter alike: d/da_k is
                # g rho^k b_k and d/db_k is g rho^k a_k
                factors = ((0, a, b), (1, b, a))
                columns = ([], [])
                power = g.clone()      # g rho^k
                for k in range(a.shape[-1]):
                    for which, mine, other in factors:
                        if ctx.needs_input_grad[which]:
                            columns[which].append(
                                (power * other[..., k]).sum_to_size(
                                    mine.shape[:-1]))
                    power = power * rho
                ga, gb = (torch.stack(c, dim=-1) if c else None
                          for c in columns)
            return ga, gb, grho

    return MehlerSeries


# as skinfinite.activations.duals._RHO_SNAP: correlations this close to +-1
# are identical (or opposite) inputs up to rounding
_RHO_SNAP = 1e-12


def _correlation(kxx, kxy, kyy):
    torch = _torch()
    r = _safe_sqrt(kxx) * _safe_sqrt(kyy)
    pos = r > 0
    rho = kxy / torch.where(pos, r, torch.ones_like(r))
    one = torch.ones_like(rho)
    snapped = torch.where(rho >= 1.0 - _RHO_SNAP, one,
                          torch.where(rho <= _RHO_SNAP - 1.0, -one, rho))
    # the derivative of the unsnapped correlation, as in the compiled partials
    return torch.where(pos, _with_gradient_of(rho, snapped),
                       torch.zeros_like(rho))


def _series(activation, kxx, kxy, kyy, want_value, want_derivative):
    fn = torch_activation(activation)
    rho = _correlation(kxx, kxy, kyy)
    out = []
    for derivative, wanted in ((False, want_value), (True, want_derivative)):
        if not wanted:
            out.append(None)
            continue
        a = _coefficients(activation, kxx, fn, derivative)
        b = a if kyy is kxx else _coefficients(activation, kyy, fn, derivative)
        out.append(_MehlerSeries.apply(a, b, rho))
    return out


# ---------------------------------------------------------------- dispatch
def _as_tensors(kxx, kxy, kyy):
    torch = _torch()
    ref = next((t for t in (kxy, kxx, kyy) if isinstance(t, torch.Tensor)),
               None)
    dtype = ref.dtype if ref is not None and ref.is_floating_point() \
        else torch.float64
    device = ref.device if ref is not None else None

    def conv(t):
        if isinstance(t, torch.Tensor) and t.dtype == dtype:
            return t
        return torch.as_tensor(t, dtype=dtype, device=device)
    return conv(kxx), conv(kxy), conv(kyy)


def _evaluate(activation, kxx, kxy, kyy, want_value, want_derivative):
    from ..activations.definitions import get_activation
    act = get_activation(activation)
    kxx, kxy, kyy = _as_tensors(kxx, kxy, kyy)
    family = act.family
    if isinstance(family, PiecewiseLinear):
        return _piecewise_linear(kxx, kxy, kyy, family.param)
    if isinstance(family, Erf):
        return _erf(kxx, kxy, kyy)
    if isinstance(family, Trig):
        return _trig(kxx, kxy, kyy, family.param > 0.5)
    if isinstance(family, Series):
        return _series(act, kxx, kxy, kyy, want_value, want_derivative)
    raise TypeError(f"No torch dual for the activation {act!r}.")


def duals(activation, kxx, kxy, kyy):
    """Both duals, ``(E[phi(u)phi(v)], E[phi'(u)phi'(v)])``, in one pass.

    Parameters
    ----------
    activation : str, Activation or callable
        As accepted by :func:`skinfinite.activations.definitions.get_activation`.
    kxx, kxy, kyy : torch.Tensor or array-like
        Covariance entries, broadcastable to one shape.  Non-tensors take the
        dtype and device of the first tensor argument (float64 by default).

    Returns
    -------
    V, Vd : torch.Tensor

    Examples
    --------
    >>> import torch
    >>> from skinfinite._torch.duals import duals
    >>> V, Vd = duals("relu", torch.tensor(1.0), torch.tensor(0.0), 1.0)
    >>> round(float(V), 6), float(Vd)
    (0.159155, 0.25)
    """
    return tuple(_evaluate(activation, kxx, kxy, kyy, True, True))


_ONE_DUAL_DOC = """``{what}`` element-wise, (u, v) ~ N(0, [[kxx, kxy], [kxy, kyy]]).

    Parameters
    ----------
    activation : str, Activation or callable
    kxx, kxy, kyy : torch.Tensor or array-like, broadcastable

    Returns
    -------
    torch.Tensor

    Examples
    --------
    >>> import torch
    >>> from skinfinite._torch.duals import {name}
{example}
    """


def expected_product(activation, kxx, kxy, kyy):
    return _evaluate(activation, kxx, kxy, kyy, True, False)[0]


def expected_derivative_product(activation, kxx, kxy, kyy):
    return _evaluate(activation, kxx, kxy, kyy, False, True)[1]


expected_product.__doc__ = _ONE_DUAL_DOC.format(
    what="E[phi(u) phi(v)]", name="expected_product", example="""\
    >>> k = torch.tensor([1.0, 2.0], dtype=torch.float64)
    >>> expected_product("identity", k, 0.5 * k, k)
    tensor([0.5000, 1.0000], dtype=torch.float64)""")
expected_derivative_product.__doc__ = _ONE_DUAL_DOC.format(
    what="E[phi'(u) phi'(v)]", name="expected_derivative_product",
    example="""\
    >>> float(expected_derivative_product("relu", torch.tensor(1.0), 0.0, 1.0))
    0.25""")
