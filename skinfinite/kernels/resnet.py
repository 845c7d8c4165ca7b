"""NNGP and NTK kernels of residual networks, up to infinite depth."""
import numbers

import numpy as np

from .._core.validation import check_positive_int, check_variance
from ..activations.definitions import get_activation
from ._base import RecursionKernel
from ..recursions.residual import ResidualSpec
from .registry import register_architecture


def _check_depth(depth):
    if isinstance(depth, numbers.Real) and not isinstance(depth, bool) \
            and np.isinf(depth) and depth > 0:
        return np.inf
    if isinstance(depth, numbers.Real) and not isinstance(depth, bool) \
            and not isinstance(depth, numbers.Integral):
        raise ValueError(f"depth must be a positive integer or np.inf, got "
                         f"{depth!r}; finite depths must be whole numbers.")
    return check_positive_int(depth, "depth")


def _branch_steps(depth, branch_scales):
    if branch_scales is None:
        return None if np.isinf(depth) else (1.0 / depth,) * depth
    if np.isinf(depth):
        raise ValueError("branch_scales needs a finite depth; at depth=inf "
                         "the branches are scaled by 1/sqrt(depth).")
    scales = np.asarray(branch_scales, dtype=np.float64).ravel()
    if scales.shape[0] != depth:
        raise ValueError(f"branch_scales has {scales.shape[0]} entries but "
                         f"depth is {depth}; give one scale per block.")
    if not np.all(np.isfinite(scales)) or np.any(scales <= 0):
        raise ValueError("branch_scales must be finite and positive.")
    return tuple(float(s) ** 2 for s in scales)


def make_residual_spec(depth, activation, weight_variance, bias_variance,
                       branch_scales=None, tolerance=1e-8, branch_layers=1):
    """Validate residual-network parameters and bundle them for the engine."""
    depth = _check_depth(depth)
    tol = check_variance(tolerance, "ode_tolerance")
    if not 1e-13 <= tol < 1:
        raise ValueError(f"ode_tolerance must be in [1e-13, 1), got {tol}.")
    return ResidualSpec(
        depth=depth, activation=get_activation(activation),
        weight_variance=check_variance(weight_variance, "weight_variance"),
        bias_variance=check_variance(bias_variance, "bias_variance",
                                     allow_zero=True),
        step_sizes=_branch_steps(depth, branch_scales), tolerance=tol,
        branch_layers=check_positive_int(branch_layers, "branch_layers"))


class _ResNetKernel(RecursionKernel):
    """Shared parameters of :class:`ResNetNNGP` and :class:`ResNetNTK`."""

    def __init__(self, depth=8, activation="relu", weight_variance=1.0,
                 bias_variance=0.1, branch_layers=1, branch_scales=None,
                 ode_tolerance=1e-8, weight_variance_bounds=(1e-2, 1e2),
                 bias_variance_bounds=(1e-5, 1e2), dtype="float64",
                 device="auto"):
        self.depth = depth
        self.activation = activation
        self.weight_variance = weight_variance
        self.bias_variance = bias_variance
        self.branch_layers = branch_layers
        self.branch_scales = branch_scales
        self.ode_tolerance = ode_tolerance
        self.weight_variance_bounds = weight_variance_bounds
        self.bias_variance_bounds = bias_variance_bounds
        self.dtype = dtype
        self.device = device

    def spec(self):
        """The validated residual recursion (or flow) run by the engine."""
        return make_residual_spec(self.depth, self.activation,
                                  self.weight_variance, self.bias_variance,
                                  self.branch_scales, self.ode_tolerance,
                                  self.branch_layers)

    def _repr_extras(self):
        return ((f", branch_layers={self.branch_layers}"
                 if self.branch_layers != 1 else "")
                + ("" if self.branch_scales is None
                   else ", branch_scales=[...]"))


_DOC = """
    The network embeds its input, ``h0 = sqrt(sw2/d) W0 x + sqrt(sb2) b0``,
    then applies ``depth`` residual blocks
    ``h <- h + s_l (sqrt(sw2/N) W_l phi(h) + sqrt(sb2) b_l)`` with branch
    scales ``s_l = 1/sqrt(depth)`` (or ``branch_scales``); the output is a
    unit of the last residual stream.  The kernels follow
    ``K <- K + s_l^2 (sw2 E[phi phi] + sb2)`` and
    ``T <- T + s_l^2 (sw2 (E[phi' phi'] T + E[phi phi]) + sb2)`` from
    ``K0 = T0 = sw2 <x, y>/d + sb2``.  With ``branch_layers=2`` each branch
    is two such dense layers, ``W2 phi(W1 phi(h) + b1) + b2``, and the
    increments are those of two fully-connected layers applied to (K, T).  With ``depth=np.inf`` they solve the
    limiting ODE on ``t in [0, 1]`` (eighth-order Runge-Kutta, steps doubled
    until the relative change on a probe block is below ``ode_tolerance``);
    finite depths approach it at the rate 1/depth.

    Parameters
    ----------
    depth : int or np.inf, default=8
        Number of residual blocks.
    activation : str, Activation or callable, default="relu"
    weight_variance : float, default=1.0
        sw2. Hyperparameter.
    branch_layers : int, default=1
        Dense layers per residual branch.
    bias_variance : float, default=0.1
        sb2. Hyperparameter.
    branch_scales : sequence of ``depth`` positive floats, optional
        The multipliers ``s_l`` of the branches (finite depth only).
    ode_tolerance : float, default=1e-8
        Relative tolerance of the flow at infinite depth.
    weight_variance_bounds, bias_variance_bounds : pair of floats or "fixed"
    dtype : {"float64", "float32"}, default="float64"
    device : {"auto", "cpu", "gpu"}, default="auto"
        Where the Gram matrix is computed; "auto" follows
        ``skinfinite.config_context(device=...)``, which by default uses a GPU
        when CuPy sees one (:ref:`guide_gpu`). Outputs have the inputs' kind
        (NumPy, CuPy or torch).
"""


class ResNetNNGP(_ResNetKernel):
    __doc__ = ("NNGP kernel of a residual network, up to infinite depth.\n"
               + _DOC + """
    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite.kernels import ResNetNNGP
    >>> X = np.random.default_rng(0).normal(size=(4, 3))
    >>> K8 = ResNetNNGP(depth=8)(X)
    >>> K = ResNetNNGP(depth=np.inf)(X)
    >>> bool(np.abs(K8 - K).max() < 0.1)
    True
    """)

    _output = "nngp"


class ResNetNTK(_ResNetKernel):
    __doc__ = ("Neural tangent kernel of a residual network, up to infinite "
               "depth.\n" + _DOC + """
    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite.kernels import ResNetNTK
    >>> X = np.random.default_rng(0).normal(size=(4, 3))
    >>> ResNetNTK(depth=np.inf)(X).shape
    (4, 4)
    """)

    _output = "ntk"


register_architecture("resnet", ResNetNNGP, ResNetNTK)
