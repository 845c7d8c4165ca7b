"""The NNGP and NTK kernels of layered architectures, built from their
definitions.

An architecture defined by its layer maps
(:class:`~skinfinite.recursions.layered.LayeredRecursion`) needs no kernel
module of its own: :func:`register_architecture` with the definition builds
two classes derived from :class:`LayeredKernel`, whose parameters are
``depth``, ``activation``, the declared hyperparameters with their
``*_bounds``, ``dtype`` and ``device``, registers the record with the engine
and the kernels with :mod:`.registry`.  Every module of
:mod:`skinfinite.recursions` holding a definition at module level is
registered so when :mod:`skinfinite.kernels` is imported
(:func:`discover_architectures`).
"""
import importlib
import inspect
import pkgutil

import numpy as np
from sklearn.base import clone
from sklearn.gaussian_process.kernels import Hyperparameter

from .. import recursions
from .._core.validation import check_positive_int, check_variance
from ..activations.definitions import get_activation
from ..engine.cpu.layered import register_layered
from ..recursions.layered import LayeredRecursion, camel_name
from ._base import RecursionKernel
from .fully_connected import NETWORK_PARAMETERS_DOC
from .registry import register_architecture as _register_classes

#: the central difference's step in the log-hyperparameters: its truncation
#: error (h^2 / 6 relative) and its rounding (eps / h) are then both ~1e-11
_LOG_STEP = 1e-5 * 2.0 ** -0.5


class LayeredKernel(RecursionKernel):
    """The kernel of a layered architecture (see the module docstring).

    ``_definition`` is the architecture's
    :class:`~skinfinite.recursions.layered.LayeredRecursion`; subclasses are
    made by :func:`register_architecture`.  Gradients in the
    hyperparameters are central differences of the Gram matrix in their
    logs (two Grams per free hyperparameter, relative error about 1e-10).
    """

    _definition = None

    def __init__(self, *args, **kwargs):
        bound = inspect.signature(type(self).__init__).bind(self, *args,
                                                            **kwargs)
        bound.apply_defaults()
        for name, value in list(bound.arguments.items())[1:]:
            setattr(self, name, value)

    def spec(self):
        definition = self._definition
        values = {}
        for name in definition.hyperparameters:
            values[name] = check_variance(
                getattr(self, name), name,
                allow_zero=name != "weight_variance")
        return definition.spec(check_positive_int(self.depth, "depth"),
                               get_activation(self.activation), values)

    def __call__(self, X, Y=None, eval_gradient=False):
        if not eval_gradient:
            return super().__call__(X, Y)
        if Y is not None:
            raise ValueError("Gradient can only be evaluated when Y is None.")
        K = super().__call__(X)
        columns = []
        for hp in self.hyperparameters:
            if hp.fixed:
                continue
            value = getattr(self, hp.name)
            grams = [super(LayeredKernel, clone(self).set_params(
                **{hp.name: value * np.exp(s * _LOG_STEP)})).__call__(X)
                for s in (1.0, -1.0)]
            columns.append((grams[0] - grams[1]) / (2.0 * _LOG_STEP))
        shape = K.shape + (len(columns),)
        grad = np.stack(columns, axis=-1) if columns else np.empty(shape)
        return K, grad.astype(K.dtype, copy=False)

    def __repr__(self):
        values = ", ".join(f"{h}={getattr(self, h):.4g}"
                           for h in self._definition.hyperparameters)
        return (f"{type(self).__name__}(depth={self.depth}, "
                f"activation={self.activation!r}, {values})")


def _hyperparameter(name):
    return property(lambda self: Hyperparameter(
        name, "numeric", getattr(self, name + "_bounds")),
        doc=f"The hyperparameter {name}.")


def _signature(definition):
    P = inspect.Parameter
    params = [P("self", P.POSITIONAL_OR_KEYWORD),
              P("depth", P.POSITIONAL_OR_KEYWORD, default=3),
              P("activation", P.POSITIONAL_OR_KEYWORD, default="relu")]
    params += [P(h, P.POSITIONAL_OR_KEYWORD, default=default)
               for h, (default, _) in definition.hyperparameters.items()]
    params += [P(h + "_bounds", P.POSITIONAL_OR_KEYWORD, default=bounds)
               for h, (_, bounds) in definition.hyperparameters.items()]
    params += [P("dtype", P.POSITIONAL_OR_KEYWORD, default="float64"),
               P("device", P.POSITIONAL_OR_KEYWORD, default="auto")]
    return inspect.Signature(params)


_DOC = """{description}

    The {output} of the ``{name}`` architecture, computed by the engine from
    its layer maps (:mod:`{module}`).
{network}{hyper}
    dtype : {{"float64", "float32"}}, default="float64"
        Output dtype; the recursion itself always runs in float64.
    device : {{"auto", "cpu"}}, default="auto"
        The CPU computes these kernels.
    """


def _make_class(definition, output):
    name = camel_name(definition.name) + output.upper()
    hyper = "\n".join(
        f"    {h} : float, default={d!r}\n        Hyperparameter.\n"
        f"    {h}_bounds : pair of floats or \"fixed\", default={b!r}"
        for h, (d, b) in definition.hyperparameters.items())

    def __init__(self, *args, **kwargs):
        LayeredKernel.__init__(self, *args, **kwargs)

    __init__.__signature__ = _signature(definition)
    attrs = {"__init__": __init__, "_definition": definition,
             "_output": output, "__module__": __name__,
             "__doc__": _DOC.format(
                 description=definition.description or name,
                 output=output.upper(), name=definition.name,
                 module=getattr(definition.input_layer, "__module__", ""),
                 network=NETWORK_PARAMETERS_DOC, hyper=hyper)}
    attrs.update({f"hyperparameter_{h}": _hyperparameter(h)
                  for h in definition.hyperparameters})
    cls = type(name, (LayeredKernel,), attrs)
    cls.__qualname__ = name
    # importable by name, so that instances pickle
    globals()[name] = cls
    return cls


def register_layered_architecture(definition):
    """Build the NNGP and NTK kernels of a layered architecture and register
    them (and its record with the engine); returns the registry's
    :class:`~skinfinite.kernels.registry.Architecture`."""
    if not isinstance(definition, LayeredRecursion):
        raise TypeError(f"Expected a LayeredRecursion, got {definition!r}.")
    register_layered(definition)
    return _register_classes(definition.name,
                             _make_class(definition, "nngp"),
                             _make_class(definition, "ntk"))


def register_architecture(name, nngp=None, ntk=None, **options):
    """Make an architecture of the NTK and NNGP estimators.

    ``register_architecture(definition)`` with a
    :class:`~skinfinite.recursions.layered.LayeredRecursion` builds its
    kernels (see :func:`register_layered_architecture`);
    ``register_architecture(name, nngp, ntk, **options)`` registers kernel
    classes written by hand (see
    :func:`skinfinite.kernels.registry.register_architecture`).

    Examples
    --------
    >>> from skinfinite.recursions.layered import LayeredRecursion
    >>> from skinfinite.kernels import register_architecture
    >>> from skinfinite.kernels.registry import unregister_architecture
    >>> def input_layer(g, weight_variance, bias_variance):
    ...     k = weight_variance * g + bias_variance
    ...     return k, k
    >>> def hidden_layer(layer, v, vd, t, weight_variance, bias_variance):
    ...     k = weight_variance * v + bias_variance
    ...     return k, k + weight_variance * vd * t
    >>> arch = register_architecture(LayeredRecursion(
    ...     "plain", input_layer, hidden_layer,
    ...     {"weight_variance": (2.0, (1e-2, 1e2)),
    ...      "bias_variance": (0.1, (1e-5, 1e2))}))
    >>> arch.ntk(depth=2)
    PlainNTK(depth=2, activation='relu', weight_variance=2, bias_variance=0.1)
    >>> unregister_architecture("plain")
    """
    if isinstance(name, LayeredRecursion):
        if nngp is not None or ntk is not None or options:
            raise TypeError("A LayeredRecursion is registered alone: its "
                            "kernels are built from it.")
        return register_layered_architecture(name)
    return _register_classes(name, nngp, ntk, **options)


def discover_architectures(package=recursions):
    """Register every :class:`LayeredRecursion` defined at module level in
    the modules of ``package``; returns their names."""
    found = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for value in vars(module).values():
            if (isinstance(value, LayeredRecursion)
                    and value.hidden_layer.__module__ == module.__name__):
                register_layered_architecture(value)
                found.append(value.name)
    return found
