"""NNGP and NTK kernels of fully-connected networks as scikit-learn kernels."""
import numpy as np

from .._core.backend import (CPUBackend, check_inputs, is_device_array,
                             like_input)
from .._core.validation import (check_choice, check_dtype, check_positive_int,
                           check_variance)
from ..activations.definitions import get_activation
from ._base import RecursionKernel
from ..engine.driver import gram, select_backend
from ..engine.cpu.fully_connected import grams_by_depth
from ..recursions.fully_connected import FullyConnectedSpec
from .registry import register_architecture

PARAMETRIZATIONS = ("ntk", "standard")


def make_spec(depth, activation, weight_variance, bias_variance,
              parametrization="ntk"):
    """Validate network parameters and bundle them for the recursion."""
    check_choice(parametrization, "parametrization", PARAMETRIZATIONS)
    return FullyConnectedSpec(
        depth=check_positive_int(depth, "depth"),
        activation=get_activation(activation),
        weight_variance=check_variance(weight_variance, "weight_variance"),
        bias_variance=check_variance(bias_variance, "bias_variance",
                                     allow_zero=True),
        standard=parametrization == "standard")


def nngp_ntk(X, Y=None, *, depth=3, activation="relu", weight_variance=2.0,
             bias_variance=0.1, parametrization="ntk", dtype="float64",
             device="auto"):
    """NNGP and NTK Gram blocks of a fully-connected network in one pass.

    Parameters
    ----------
    X : array-like of shape (n_samples_X, n_features)
    Y : array-like of shape (n_samples_Y, n_features), default=None
        None means ``Y = X`` (only half of the symmetric pairs are computed).
    depth, activation, weight_variance, bias_variance, parametrization
        As in :class:`NNGP`.
    dtype : {"float64", "float32"}
    device : {"auto", "cpu", "gpu"}, default="auto"
        Where the Gram matrices are computed; "auto" follows
        ``skinfinite.config_context(device=...)``, which by default uses a GPU
        when CuPy sees one (:ref:`guide_gpu`). Outputs have the inputs' kind
        (NumPy, CuPy or torch).

    Returns
    -------
    K, T : ndarrays of shape (n_samples_X, n_samples_Y)
        The NNGP covariance and the neural tangent kernel.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite.kernels import nngp_ntk
    >>> X = np.random.default_rng(0).normal(size=(5, 3))
    >>> K, T = nngp_ntk(X, depth=2)
    >>> bool(np.all(np.diag(T) >= np.diag(K)))
    True
    """
    spec = make_spec(depth, activation, weight_variance, bias_variance,
                     parametrization)
    dtype = check_dtype(dtype)
    backend = select_backend(device, spec, X, Y)
    Xb, Yb = check_inputs(X, Y, backend)
    res = gram(Xb, Yb, spec, ("nngp", "ntk"), dtype=dtype, backend=backend,
               on_device=is_device_array(X))
    return like_input(res["nngp"], X), like_input(res["ntk"], X)


class _FullyConnectedKernel(RecursionKernel):
    """Shared parameters of :class:`NNGP` and :class:`NTK`."""

    def __init__(self, depth=3, activation="relu", weight_variance=2.0,
                 bias_variance=0.1, parametrization="ntk",
                 weight_variance_bounds=(1e-2, 1e2),
                 bias_variance_bounds=(1e-5, 1e2), dtype="float64",
                 device="auto"):
        self.depth = depth
        self.activation = activation
        self.weight_variance = weight_variance
        self.bias_variance = bias_variance
        self.parametrization = parametrization
        self.weight_variance_bounds = weight_variance_bounds
        self.bias_variance_bounds = bias_variance_bounds
        self.dtype = dtype
        self.device = device

    def spec(self):
        """The validated network description used by the recursion."""
        return make_spec(self.depth, self.activation, self.weight_variance,
                         self.bias_variance, self.parametrization)

    def grams_by_depth(self, X, depths, want=None, *, backend=None):
        """{depth: grams(X, want=want)} for every depth in ``depths``, from
        one pass of the recursion to the deepest (on the CPU)."""
        want = self._want(want)
        X = CPUBackend().asarray(X, np.float64)
        return grams_by_depth(X, self.spec(), depths, want)

    def _repr_extras(self):
        return (", parametrization='standard'"
                if self.parametrization == "standard" else "")


#: the first parameters of the kernels of every architecture
NETWORK_PARAMETERS_DOC = """
    Parameters
    ----------
    depth : int, default=3
        Number of hidden layers (>= 1).
    activation : str, Activation or callable, default="relu"
        See :mod:`skinfinite.activations.definitions`.
"""
_OTHER_PARAMETERS_DOC = """    weight_variance : float, default=2.0
        sw2, the variance of the weights times the fan-in. Hyperparameter.
    bias_variance : float, default=0.1
        sb2, the variance of the biases. Hyperparameter.
    parametrization : {"ntk", "standard"}, default="ntk"
        "standard" divides the weights' learning rates by the fan-in; it
        changes the NTK only.
    weight_variance_bounds, bias_variance_bounds : pair of floats or "fixed"
        Bounds of the hyperparameters for marginal-likelihood fitting.
    dtype : {"float64", "float32"}, default="float64"
        Output dtype; the recursion itself always runs in float64.
    device : {"auto", "cpu", "gpu"}, default="auto"
        Where the Gram matrix is computed; "auto" follows
        ``skinfinite.config_context(device=...)``, which by default uses a GPU
        when CuPy sees one (:ref:`guide_gpu`). Outputs have the inputs' kind
        (NumPy, CuPy or torch).

"""


class NNGP(_FullyConnectedKernel):
    __doc__ = """Neural network Gaussian process kernel of a fully-connected network.

    The covariance of the outputs of an infinitely wide network with random
    Gaussian weights: ``K0 = sw2 <x, y> / d + sb2`` at the input layer and
    ``K' = sw2 E[phi(u) phi(v)] + sb2`` at each of the ``depth`` hidden
    layers, (u, v) drawn from the previous layer's covariance.
""" + NETWORK_PARAMETERS_DOC + _OTHER_PARAMETERS_DOC + """    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.gaussian_process import GaussianProcessRegressor
    >>> from sklearn.gaussian_process.kernels import WhiteKernel
    >>> from skinfinite.kernels import NNGP
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 3)); y = np.sin(X[:, 0])
    >>> gpr = GaussianProcessRegressor(NNGP(depth=2) + WhiteKernel(1e-3))
    >>> gpr.fit(X, y).predict(X[:2]).shape
    (2,)
    """

    _output = "nngp"


class NTK(_FullyConnectedKernel):
    __doc__ = """Neural tangent kernel of a fully-connected network.

    In NTK parametrisation ``T0 = K0`` and ``T' = K' + sw2 E[phi'(u) phi'(v)] T``
    at each hidden layer; in standard parametrisation (weight learning rates
    divided by fan-in) ``T0 = <x, y> / d + 1`` and
    ``T' = E[phi(u) phi(v)] + 1 + sw2 E[phi'(u) phi'(v)] T``.
""" + NETWORK_PARAMETERS_DOC + _OTHER_PARAMETERS_DOC + """    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.svm import SVC
    >>> from skinfinite.kernels import NTK
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 3)); y = (X[:, 0] > 0).astype(int)
    >>> SVC(kernel=NTK(depth=2)).fit(X, y).score(X, y) > 0.9
    True
    """

    _output = "ntk"


register_architecture("fully_connected", NNGP, NTK,
                      parametrizations=PARAMETRIZATIONS)
