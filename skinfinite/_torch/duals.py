"""Gaussian duals of activations on torch tensors, differentiable by autograd.

The torch counterpart of :mod:`skinfinite.activations.duals`: for every
:class:`~skinfinite.activations.definitions.Activation`,
``expected_product`` is ``E[phi(u) phi(v)]`` and
``expected_derivative_product`` is ``E[phi'(u) phi'(v)]`` for ``(u, v)``
centred Gaussian with covariance ``[[kxx, kxy], [kxy, kyy]]``, element-wise
over broadcastable tensors, on any device, in float32 or float64, with
gradients in all three covariance entries.

The formulas are those of the compiled duals (which family an activation
belongs to is read from its ``scalar_dual``), so both sides agree to
rounding:

* piecewise linear (ReLU, leaky ReLU, abs, identity): the arc-cosine family,
  with the angle from ``atan2`` and the sine snapped to zero where it is at
  the level of rounding (identical inputs are exact, and the gradients stay
  finite at correlation +-1: there ``dV/dKxy = Vd`` and the derivative dual
  has zero gradient, the convention of the compiled partials);
* erf, sin and cos: closed forms;
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

from ..activations import duals as _duals

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
def _snap(dtype):
    # below this squared sine (relative to Kxx Kyy) the angle is rounding
    # noise; the compiled duals use the float64 value
    torch = _torch()
    return 4.0 * torch.finfo(dtype).eps


def _piecewise_linear(kxx, kxy, kyy, slope):
    torch = _torch()
    alpha2 = (0.5 * (1.0 + slope)) ** 2
    beta2 = (0.5 * (1.0 - slope)) ** 2
    r = _safe_sqrt(kxx) * _safe_sqrt(kyy)
    c = torch.minimum(torch.maximum(kxy, -r), r)
    s2 = (r - c) * (r + c)
    keep = s2 > _snap(s2.dtype) * r * r
    # where() with a harmless placeholder: the discarded branch must not
    # produce an infinite derivative (0 * inf = nan in the backward pass)
    s = torch.where(keep, torch.sqrt(torch.where(keep, s2, torch.ones_like(s2))),
                    torch.zeros_like(s2))
    theta = torch.atan2(s, c)
    v = alpha2 * c + beta2 * (2.0 * s + (_PI - 2.0 * theta) * c) / _PI
    vd = alpha2 + beta2 * (1.0 - 2.0 * theta / _PI)
    return v, vd


def _safe_sqrt(x):
    # sqrt with a zero (not infinite) derivative at 0
    torch = _torch()
    pos = x > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, x, torch.ones_like(x))),
                       torch.zeros_like(x))


def _erf(kxx, kxy, kyy):
    torch = _torch()
    a = 1.0 + 2.0 * kxx
    b = 1.0 + 2.0 * kyy
    # a b - 4 Kxy^2 >= 1 + 2 Kxx + 2 Kyy > 0 for a covariance: atan2 keeps
    # arcsin's value without its infinite derivative at +-1
    d = torch.clamp(a * b - 4.0 * kxy * kxy, min=torch.finfo(a.dtype).tiny)
    sd = torch.sqrt(d)
    return (2.0 / _PI) * torch.atan2(2.0 * kxy, sd), (4.0 / _PI) / sd


def _trig(kxx, kxy, kyy, is_cos):
    torch = _torch()
    m = 0.5 * (kxx + kyy)
    ep = torch.exp(kxy - m)
    em = torch.exp(-kxy - m)
    sinh_e, cosh_e = 0.5 * (ep - em), 0.5 * (ep + em)
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
    sd = torch.sqrt(torch.clamp(k, min=1e-300 if k.dtype == torch.float64
                                else torch.finfo(k.dtype).tiny))
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
                p = a.shape[-1]
                ga_cols, gb_cols = [], []
                power = g.clone()      # g rho^k
                for k in range(p):
                    if ctx.needs_input_grad[0]:
                        ga_cols.append((power * b[..., k]).sum_to_size(
                            a.shape[:-1]))
                    if ctx.needs_input_grad[1]:
                        gb_cols.append((power * a[..., k]).sum_to_size(
                            b.shape[:-1]))
                    power = power * rho
                if ga_cols:
                    ga = torch.stack(ga_cols, dim=-1)
                if gb_cols:
                    gb = torch.stack(gb_cols, dim=-1)
            return ga, gb, grho

    return MehlerSeries


def _correlation(kxx, kxy, kyy):
    torch = _torch()
    r = _safe_sqrt(kxx) * _safe_sqrt(kyy)
    pos = r > 0
    rho = kxy / torch.where(pos, r, torch.ones_like(r))
    return torch.where(pos, torch.clamp(rho, -1.0, 1.0), torch.zeros_like(rho))


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
    family = act.scalar_dual
    if family is _duals.piecewise_linear_dual:
        return _piecewise_linear(kxx, kxy, kyy, act.parameter)
    if family is _duals.erf_dual:
        return _erf(kxx, kxy, kyy)
    if family is _duals.trig_dual:
        return _trig(kxx, kxy, kyy, act.parameter > 0.5)
    if family is _duals.series_dual:
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


def expected_product(activation, kxx, kxy, kyy):
    """``E[phi(u) phi(v)]`` element-wise, (u, v) ~ N(0, [[kxx, kxy], [kxy, kyy]]).

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
    >>> from skinfinite._torch.duals import expected_product
    >>> k = torch.tensor([1.0, 2.0], dtype=torch.float64)
    >>> expected_product("identity", k, 0.5 * k, k)
    tensor([0.5000, 1.0000], dtype=torch.float64)
    """
    return _evaluate(activation, kxx, kxy, kyy, True, False)[0]


def expected_derivative_product(activation, kxx, kxy, kyy):
    """``E[phi'(u) phi'(v)]`` element-wise, (u, v) ~ N(0, [[kxx, kxy], [kxy, kyy]]).

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
    >>> from skinfinite._torch.duals import expected_derivative_product
    >>> float(expected_derivative_product("relu", torch.tensor(1.0), 0.0, 1.0))
    0.25
    """
    return _evaluate(activation, kxx, kxy, kyy, False, True)[1]
