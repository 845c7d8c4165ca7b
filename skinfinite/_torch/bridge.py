"""GPyTorch bridge: skinfinite kernels as ``gpytorch.kernels.Kernel`` objects.

:func:`to_gpytorch` wraps a skinfinite kernel so that GPyTorch models (exact
GPs, variational GPs, deep GPs) can use it.  The hyperparameters
(``weight_variance``, ``bias_variance``) become positive torch parameters.

Two evaluation paths exist:

``"torch"``
    The depth recursion written in torch on top of the torch duals
    (:mod:`skinfinite._torch.duals`): gradients reach the hyperparameters,
    the inputs and inducing locations, and it runs on any torch device
    (CUDA included).  Fully-connected NNGP/NTK and residual kernels at finite
    depth follow the same recursion as the compiled engine; residual kernels
    at ``depth=np.inf`` use the engine's own eighth-order Runge-Kutta
    scheme, with the number of equal steps chosen by the engine (doubled
    until the relative change on a probe block is below the kernel's
    ``ode_tolerance``, 1e-8 by default), so both agree to rounding.
``"engine"``
    An autograd function over the compiled engine (CPU, float64 inside): the
    engine returns analytic gradients with respect to the log
    hyperparameters for any pair of inputs; no gradients reach the inputs.
    This is the fallback for recursion kernels without a torch recursion.

Further kernels plug in with :func:`register_torch_recursion`.
"""
import dataclasses

import numpy as np

try:
    import gpytorch
    import torch
    from gpytorch.constraints import Positive
except ImportError as _exc:
    from .._core.install import install_hint
    raise ImportError("The GPyTorch bridge needs torch and gpytorch; "
                      f"{install_hint('gp')}.") from _exc

from ..engine.driver import gram, resolve, sq_norms
from ..recursions.fully_connected import hidden_layer, input_layer
from .duals import duals, expected_product

__all__ = ["to_gpytorch", "register_torch_recursion", "torch_recursion_for",
           "SkinfiniteKernel", "ExactGPModel", "SVGPModel"]


# ------------------------------------------------------------- recursions
_RECURSIONS = {}


def register_torch_recursion(kernel_class, recursion):
    """Register the torch evaluation of a kernel class.

    Parameters
    ----------
    kernel_class : type
        A scikit-learn kernel class (subclasses match too).
    recursion : callable
        ``recursion(kernel, hyper, x1, x2, diag)`` returning a torch tensor:
        ``kernel`` is the scikit-learn kernel (its structural parameters),
        ``hyper`` a dict from hyperparameter name to a scalar tensor,
        ``x1`` of shape (..., n, d), ``x2`` of shape (..., m, d); the result
        has shape (..., n, m), or (..., n) when ``diag`` (then n == m and
        rows are paired).
    """
    _RECURSIONS[kernel_class] = recursion


def torch_recursion_for(kernel):
    """The registered torch recursion of a kernel, or None."""
    for cls in type(kernel).__mro__:
        if cls in _RECURSIONS:
            return _RECURSIONS[cls]
    return None


def _same_values(x1, x2):
    return x1 is x2 or (x1.shape == x2.shape and bool((x1 == x2).all()))


def _input_grams(x1, x2, diag):
    """<x, y>/d and the per-input <x, x>/d, shaped to broadcast.

    Full blocks: ``g`` (..., n, m), ``nx`` (..., n, 1), ``ny`` (..., 1, m);
    paired rows: all (..., n).
    """
    d = x1.shape[-1]
    same = x1 is x2
    nx = (x1 * x1).sum(-1) / d
    ny = nx if same else (x2 * x2).sum(-1) / d
    if diag:
        g = nx if same else (x1 * x2).sum(-1) / d
        return g, nx, ny, same
    g = x1 @ x2.transpose(-1, -2) / d
    return g, nx.unsqueeze(-1), ny.unsqueeze(-2), same


def _layer_diagonal(act, k, sw2, sb2):
    return sw2 * expected_product(act, k, k, k) + sb2


def _other_side(kx, same, diag, fresh):
    # per-input variances of x2: the same values as x1's when x1 is x2
    if not same:
        return fresh()
    return kx if diag else kx.transpose(-1, -2)


def fully_connected_recursion(kernel, hyper, x1, x2, diag):
    """NNGP/NTK of a fully-connected network (:class:`~skinfinite.NNGP`,
    :class:`~skinfinite.NTK`) in torch."""
    spec = kernel.spec()
    act, std = spec.activation, spec.std
    sw2, sb2 = hyper["weight_variance"], hyper["bias_variance"]
    g, nx, ny, same = _input_grams(x1, x2, diag)
    kx = sw2 * nx + sb2
    ky = _other_side(kx, same, diag, lambda: sw2 * ny + sb2)
    # the layer maps of the compiled kernels, on tensors
    k, t = input_layer(g, sw2, sb2, std)
    for _ in range(spec.depth):
        v, vd = duals(act, kx, k, ky)
        k, t = hidden_layer(v, vd, t, sw2, sb2, std)
        kx_new = _layer_diagonal(act, kx, sw2, sb2)
        ky = _other_side(kx_new, same, diag,
                         lambda ky=ky: _layer_diagonal(act, ky, sw2, sb2))
        kx = kx_new
    return t if kernel._output == "ntk" else k


def _residual_steps(spec, hyper, x1, x2, diag):
    """Step sizes and tableau; at infinite depth the engine picks the steps."""
    if spec.infinite:
        # the engine's step choice, at the current hyperparameter values
        spec = dataclasses.replace(
            spec, weight_variance=float(hyper["weight_variance"].detach().max()),
            bias_variance=float(hyper["bias_variance"].detach().max()))
        X = x1.detach().reshape(-1, x1.shape[-1]).cpu().double().numpy()
        Y = None if (diag or _same_values(x1, x2)) else \
            x2.detach().reshape(-1, x2.shape[-1]).cpu().double().numpy()
        spec = resolve(spec, X, Y)
    A, B, _ = spec.tableau()
    return spec, A, B, spec.steps()


def residual_recursion(kernel, hyper, x1, x2, diag):
    """NNGP/NTK of a residual network (:class:`~skinfinite.ResNetNNGP`,
    :class:`~skinfinite.ResNetNTK`) in torch, finite or infinite depth."""
    spec = kernel.spec()
    spec, A, B, steps = _residual_steps(spec, hyper, x1, x2, diag)
    act, n_layers = spec.activation, spec.branch_layers
    sw2, sb2 = hyper["weight_variance"], hyper["bias_variance"]
    g, nx, ny, same = _input_grams(x1, x2, diag)
    k = sw2 * g + sb2
    state = [k, k, sw2 * nx + sb2]
    if not same:
        state.append(sw2 * ny + sb2)
    n_stages = B.shape[0]

    def branch(kk, tt, kx, ky):
        for _ in range(n_layers):
            v, vd = duals(act, kx, kk, ky)
            kk = sw2 * v + sb2
            tt = kk + sw2 * vd * tt
            kx_new = _layer_diagonal(act, kx, sw2, sb2)
            ky = _other_side(kx_new, same, diag,
                             lambda ky=ky: _layer_diagonal(act, ky, sw2, sb2))
            kx = kx_new
        return kk, tt, kx, ky

    for h in steps:
        slopes = []
        for s in range(n_stages):
            z = list(state)
            for q in range(s):
                a = h * A[s, q]
                if a != 0.0:
                    z = [zi + a * fi for zi, fi in zip(z, slopes[q])]
            kx = z[2]
            ky = z[3] if not same else (kx if diag else kx.transpose(-1, -2))
            kk, tt, kx, ky = branch(z[0], z[1], kx, ky)
            slopes.append([kk, tt, kx] + ([] if same else [ky]))
        for s in range(n_stages):
            b = h * B[s]
            if b != 0.0:
                state = [zi + b * fi for zi, fi in zip(state, slopes[s])]
    return state[1] if kernel._output == "ntk" else state[0]


def _register_builtin():
    from ..kernels.fully_connected import _FullyConnectedKernel
    from ..kernels.resnet import _ResNetKernel
    register_torch_recursion(_FullyConnectedKernel, fully_connected_recursion)
    register_torch_recursion(_ResNetKernel, residual_recursion)


_register_builtin()


# ---------------------------------------------------------- engine fallback
class _EngineGram(torch.autograd.Function):
    """K(x1, x2) from the compiled engine; gradients in the hyperparameters."""

    @staticmethod
    def forward(ctx, kernel, names, diag, x1, x2, *values):
        params = {n: float(v) for n, v in zip(names, values)}
        k = kernel.clone_with_theta(kernel.theta).set_params(**params)
        spec = k.spec()
        X = x1.detach().cpu().double().numpy()
        same = _same_values(x1, x2)
        want_grad = any(ctx.needs_input_grad[5:])
        if diag and same:
            path = resolve(spec, X, None).diagonal(sq_norms(X), want_grad)
            value = getattr(path, k._output)
            grad = getattr(path, k._output + "_grad").T
        else:
            Y = None if same else x2.detach().cpu().double().numpy()
            res = gram(X, Y, spec, (k._output,), eval_gradient=want_grad)
            value = res[k._output]
            grad = res.get(k._output + "_gradient")
            if diag:
                idx = np.arange(value.shape[0])
                value = value[idx, idx]
                grad = None if grad is None else grad[idx, idx]
        ctx.names = names
        ctx.values = [float(v) for v in values]
        if grad is not None:
            ctx.save_for_backward(torch.as_tensor(
                np.ascontiguousarray(grad), dtype=x1.dtype,
                device=x1.device))
        return torch.as_tensor(value, dtype=x1.dtype, device=x1.device)

    @staticmethod
    def backward(ctx, out_grad):
        grads = [None] * 5
        if ctx.saved_tensors:
            (jac,) = ctx.saved_tensors
            # engine tangents: index 0 is log weight variance, 1 log bias
            index = {"weight_variance": 0, "bias_variance": 1}
            for name, value in zip(ctx.names, ctx.values):
                grads.append((out_grad * jac[..., index[name]]).sum()
                             / value)
        else:
            grads += [None] * len(ctx.names)
        return tuple(grads)



def engine_recursion(kernel, hyper, x1, x2, diag):
    """K(x1, x2) through the compiled engine (no gradients to the inputs)."""
    if x1.dim() != 2 or x2.dim() != 2:
        raise ValueError("The engine path takes 2-D inputs (no batch "
                         "dimensions).")
    names = tuple(hyper)
    return _EngineGram.apply(kernel, names, diag, x1, x2,
                               *(hyper[n] for n in names))


# ------------------------------------------------------------ the wrapper
_BACKENDS = ("auto", "torch", "engine")


def _hyperparameter_names(kernel):
    return [hp.name for hp in kernel.hyperparameters]


class SkinfiniteKernel(gpytorch.kernels.Kernel):
    """A skinfinite kernel as a GPyTorch kernel (see :func:`to_gpytorch`)."""

    def __init__(self, kernel, backend="auto", **kwargs):
        super().__init__(**kwargs)
        self.kernel = kernel
        self.backend = backend
        self._recursion = (engine_recursion if backend == "engine"
                           else torch_recursion_for(kernel))
        self.hyperparameter_names = tuple(_hyperparameter_names(kernel))
        fixed = {hp.name for hp in kernel.hyperparameters if hp.fixed}
        for name in self.hyperparameter_names:
            raw = torch.nn.Parameter(torch.zeros(self.batch_shape,
                                                 dtype=torch.float64),
                                     requires_grad=name not in fixed)
            self.register_parameter("raw_" + name, raw)
            self.register_constraint("raw_" + name, Positive())
            self.set_hyperparameter(name, getattr(kernel, name))

    def hyperparameter(self, name):
        """The current value of a hyperparameter, as a tensor."""
        raw = getattr(self, "raw_" + name)
        return getattr(self, "raw_" + name + "_constraint").transform(raw)

    def set_hyperparameter(self, name, value):
        """Set a hyperparameter to a positive value."""
        raw = getattr(self, "raw_" + name)
        value = torch.as_tensor(value, dtype=raw.dtype, device=raw.device)
        constraint = getattr(self, "raw_" + name + "_constraint")
        with torch.no_grad():
            raw.copy_(constraint.inverse_transform(
                value.expand_as(raw)))

    @property
    def weight_variance(self):
        return self.hyperparameter("weight_variance")

    @property
    def bias_variance(self):
        return self.hyperparameter("bias_variance")

    def to_sklearn(self):
        """The wrapped scikit-learn kernel with the current values."""
        params = {n: float(self.hyperparameter(n).detach().reshape(-1)[0])
                  for n in self.hyperparameter_names}
        return self.kernel.clone_with_theta(
            self.kernel.theta).set_params(**params)

    def forward(self, x1, x2, diag=False, last_dim_is_batch=False,
                **params):
        """Kernel block between ``x1`` (..., n, d) and ``x2`` (..., m, d).

        Returns a tensor of shape (..., n, m), or its diagonal (..., n) when
        ``diag`` is true.  Batch dimensions over the last input dimension
        (``last_dim_is_batch``) are not supported.
        """
        if last_dim_is_batch:
            raise NotImplementedError(
                "last_dim_is_batch is not supported by skinfinite kernels.")
        hyper = {}
        for name in self.hyperparameter_names:
            value = self.hyperparameter(name).to(dtype=x1.dtype,
                                                 device=x1.device)
            # batched hyperparameters broadcast against (..., n, m)
            hyper[name] = (value.unsqueeze(-1) if diag else
                           value.unsqueeze(-1).unsqueeze(-1)) \
                if value.dim() else value
        if x1.shape[-1] != x2.shape[-1]:
            raise ValueError(f"x1 has {x1.shape[-1]} features but x2 has "
                             f"{x2.shape[-1]}.")
        out = self._recursion(self.kernel, hyper, x1, x2, diag)
        if not diag and x1.shape[-2] == x2.shape[-2] \
                and self.backend == "torch" and _same_values(x1, x2):
            # As the engine does: identical inputs take the per-input
            # recursion, which rounding cannot push off correlation one
            # (where the arc-cosine duals have a square-root cusp).
            exact = self._recursion(self.kernel, hyper, x1, x1, True)
            out = out - torch.diag_embed(out.diagonal(dim1=-2, dim2=-1)) \
                + torch.diag_embed(exact)
        return out

    def __repr__(self):
        return f"SkinfiniteKernel({self.kernel!r}, backend={self.backend!r})"



def to_gpytorch(kernel, backend="auto", **kwargs):
    """Wrap a skinfinite kernel as a ``gpytorch.kernels.Kernel``.

    Parameters
    ----------
    kernel : NNGP, NTK, ResNetNNGP, ResNetNTK or a registered kernel
        Its current hyperparameter values initialise the torch parameters;
        hyperparameters with ``"fixed"`` bounds do not require gradients.
    backend : {"auto", "torch", "engine"}, default="auto"
        ``"auto"`` takes the torch recursion where one is registered and
        the compiled engine otherwise (see the module docstring).
    **kwargs
        Passed to ``gpytorch.kernels.Kernel`` (e.g. ``batch_shape``).

    Returns
    -------
    SkinfiniteKernel
        A ``gpytorch.kernels.Kernel`` with ``weight_variance`` and
        ``bias_variance`` (positive, trainable) and ``to_sklearn()``.

    Examples
    --------
    >>> import torch
    >>> from skinfinite import NNGP
    >>> from skinfinite._torch.bridge import to_gpytorch
    >>> k = to_gpytorch(NNGP(depth=2))
    >>> x = torch.randn(5, 3, dtype=torch.float64)
    >>> k(x).to_dense().shape
    torch.Size([5, 5])
    >>> round(float(k.weight_variance), 6)
    2.0
    """
    from sklearn.gaussian_process.kernels import Kernel
    from ..kernels._base import RecursionKernel
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(_BACKENDS)}; "
                         f"got {backend!r}.")
    if not isinstance(kernel, Kernel):
        raise TypeError("to_gpytorch expects a skinfinite kernel, got "
                        f"{type(kernel).__name__}.")
    has_torch = torch_recursion_for(kernel) is not None
    is_recursion = isinstance(kernel, RecursionKernel)
    if backend == "torch" and not has_torch:
        raise ValueError(f"{type(kernel).__name__} has no torch recursion; "
                         "use backend='engine' or 'auto'.")
    if backend == "engine" and not is_recursion:
        raise ValueError(f"{type(kernel).__name__} is not evaluated by the "
                         "compiled engine; use backend='torch'.")
    if backend == "auto":
        if not (has_torch or is_recursion):
            raise TypeError(f"{type(kernel).__name__} has no torch recursion "
                            "and is not an engine kernel; register one with "
                            "register_torch_recursion.")
        backend = "torch" if has_torch else "engine"
    kernel.spec()  # validates the structural parameters now
    return SkinfiniteKernel(kernel, backend=backend, **kwargs)


# ------------------------------------------------------------------ models
class ExactGPModel(gpytorch.models.ExactGP):
    """Exact GP with zero mean and a given covariance module."""

    def __init__(self, train_x, train_y, likelihood, covar_module):
        super().__init__(train_x, train_y, likelihood)
        self.mean_module = gpytorch.means.ZeroMean()
        self.covar_module = covar_module

    def forward(self, x):
        """Prior over the latent function at ``x``."""
        return gpytorch.distributions.MultivariateNormal(
            self.mean_module(x), self.covar_module(x))


class SVGPModel(gpytorch.models.ApproximateGP):
    """Sparse variational GP (Hensman et al. 2015), whitened.

    ``n_latent`` independent latent functions share the covariance module
    (and its hyperparameters); each has its own inducing locations and
    variational distribution.  ``natural=True`` parametrises the
    variational distribution by its natural parameters, for natural-gradient
    descent (``gpytorch.optim.NGD``).
    """

    def __init__(self, inducing_points, covar_module, n_latent=None,
                 learn_inducing=True, constant_mean=False,
                 natural=False):
        batch = torch.Size([n_latent]) if n_latent else torch.Size([])
        family = (gpytorch.variational.NaturalVariationalDistribution
                  if natural
                  else gpytorch.variational.CholeskyVariationalDistribution)
        distribution = family(inducing_points.shape[-2], batch_shape=batch)
        strategy = gpytorch.variational.VariationalStrategy(
            self, inducing_points, distribution,
            learn_inducing_locations=learn_inducing)
        if n_latent:
            strategy = gpytorch.variational.IndependentMultitaskVariationalStrategy(
                strategy, num_tasks=n_latent)
        super().__init__(strategy)
        self.mean_module = (gpytorch.means.ConstantMean(batch_shape=batch)
                            if constant_mean
                            else gpytorch.means.ZeroMean(batch_shape=batch))
        self.covar_module = covar_module

    def forward(self, x):
        """Prior over the latent function at ``x``."""
        return gpytorch.distributions.MultivariateNormal(
            self.mean_module(x), self.covar_module(x))
