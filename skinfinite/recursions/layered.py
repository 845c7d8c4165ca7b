"""Architectures given by two scalar layer maps: the one-file way to add one.

A *layered* architecture is a network whose pair covariance ``K`` and neural
tangent kernel ``T`` pass through

* an input layer: ``(K, T) = input_layer(g, *hyperparameters)`` from the
  inputs' inner product ``g = <x, y> / d``, and
* ``depth`` hidden layers: ``(K, T) = hidden_layer(layer, V, Vd, T,
  *hyperparameters)``, where ``V = E[phi(u) phi(v)]`` and ``Vd = E[phi'(u)
  phi'(v)]`` are the activation's duals at the previous layer's covariance
  and ``layer`` counts the hidden layers from 0.

Both maps are plain Python arithmetic on scalars (no imports): numba
compiles them once, for the per-input recursion below and for the fused
tile kernels of :mod:`skinfinite.engine.cpu.layered`, which inline them.  The fully-connected network in the NTK parametrisation is::

    def input_layer(g, weight_variance, bias_variance):
        k = weight_variance * g + bias_variance
        return k, k

    def hidden_layer(layer, v, vd, t, weight_variance, bias_variance):
        k = weight_variance * v + bias_variance
        return k, k + weight_variance * vd * t

A module of :mod:`skinfinite.recursions` that defines such maps and a
module-level :class:`LayeredRecursion` is an architecture of the package:
:mod:`skinfinite.kernels.layered` finds it when the kernels are imported and
builds its NNGP and NTK kernels (see ``docs/guide/extending.rst``).
"""
import inspect
import re
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
from numba import njit

from .._core.fastmath import FASTMATH
from .path import DiagonalPath

#: the hyperparameters every architecture takes (the estimators pass them)
REQUIRED_HYPERPARAMETERS = ("weight_variance", "bias_variance")


@dataclass(frozen=True, eq=False)
class LayeredRecursion:
    """An architecture defined by its input and hidden layer maps.

    Parameters
    ----------
    name : str
        The name the estimators' ``architecture=`` takes (a Python
        identifier); its kernels are ``<Name>NNGP`` and ``<Name>NTK``.
    input_layer : callable ``(g, *hyperparameters) -> (K, T)``
    hidden_layer : callable ``(layer, V, Vd, T, *hyperparameters) -> (K, T)``
    hyperparameters : mapping of str to (default, bounds)
        The kernels' hyperparameters in the order the maps take them after
        their leading arguments, each with its default and the default of
        its ``<name>_bounds`` (a pair of floats or "fixed").  They include
        ``weight_variance`` and ``bias_variance``.
    description : str, default=""
        One sentence on the network, the first line of its kernels'
        docstrings.
    """

    name: str
    input_layer: object
    hidden_layer: object
    hyperparameters: MappingProxyType
    description: str = ""
    record: type = field(init=False, repr=False, compare=False)
    _compiled: list = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if not (isinstance(self.name, str) and self.name.isidentifier()):
            raise ValueError(f"An architecture's name is a Python identifier, "
                             f"got {self.name!r}.")
        hyper = MappingProxyType(dict(self.hyperparameters))
        missing = [h for h in REQUIRED_HYPERPARAMETERS if h not in hyper]
        if missing:
            raise ValueError(f"The {self.name} architecture must declare the "
                             f"hyperparameters {', '.join(missing)}.")
        for name, entry in hyper.items():
            if not (isinstance(entry, tuple) and len(entry) == 2):
                raise ValueError(
                    f"Hyperparameter {name!r} of {self.name} must be given as "
                    f"(default, bounds), got {entry!r}.")
        names = tuple(hyper)
        for fn, lead in ((self.input_layer, 1), (self.hidden_layer, 4)):
            taken = tuple(inspect.signature(fn).parameters)[lead:]
            if taken != names:
                raise ValueError(
                    f"{fn.__name__} of {self.name} takes {taken} after its "
                    f"{lead} leading argument(s), but the hyperparameters "
                    f"are {names}; take them in that order.")
        object.__setattr__(self, "hyperparameters", hyper)
        # one record type per architecture: the engine finds its kernels by
        # the record's type
        object.__setattr__(self, "_compiled", [])
        object.__setattr__(self, "record", type(
            camel_name(self.name) + "Spec", (LayeredSpec,),
            {"__module__": __name__}))

    @property
    def hyperparameter_names(self):
        return tuple(self.hyperparameters)

    def compiled_maps(self):
        """The maps compiled by numba, taking the hyperparameters as one
        tuple: ``first(g, params)`` and ``hidden(layer, v, vd, t, params)``.

        The pair kernels inline them and the per-input recursion runs them
        too, so that a pair of identical inputs meets the same rounding as
        the diagonal (the arc-cosine duals resolve correlations near 1 to
        the last bit).
        """
        if not self._compiled:
            n = len(self.hyperparameters)
            self._compiled.extend((_with_tuple(self.input_layer, 1, n),
                                   _with_tuple(self.hidden_layer, 4, n)))
        return tuple(self._compiled)

    def spec(self, depth, activation, values):
        """The record the engine runs, for validated parameters."""
        return self.record(self, depth, activation,
                           tuple(float(values[h]) for h in self.hyperparameters))


def _with_tuple(fn, n_leading, n_params):
    """``fn`` compiled to take its trailing arguments as one tuple (numba
    inlines no call with ``*args``, so the spread is written out)."""
    lead = ", ".join(f"a{i}" for i in range(n_leading))
    spread = ", ".join(f"params[{i}]" for i in range(n_params))
    namespace = {"fn": njit(inline="always", fastmath=FASTMATH)(fn)}
    exec(f"def with_tuple({lead}, params):\n"
         f"    return fn({lead}, {spread})\n", namespace)
    return njit(inline="always", fastmath=FASTMATH)(namespace["with_tuple"])


@njit(fastmath=FASTMATH)
def _run_first(first, g, params, k, t):
    for i in range(g.shape[0]):
        k[i], t[i] = first(g[i], params)


@njit(fastmath=FASTMATH)
def _run_hidden(hidden, layer, v, vd, params, k, t):
    for i in range(v.shape[0]):
        k[i], t[i] = hidden(layer, v[i], vd[i], t[i], params)


def camel_name(name):
    """``"scaled_network"`` -> ``"ScaledNetwork"``."""
    return "".join(p[:1].upper() + p[1:] for p in re.split(r"_+", name) if p)


@dataclass(frozen=True)
class LayeredSpec:
    """A layered architecture with its depth, activation and hyperparameter
    values (in the order of ``definition.hyperparameters``)."""

    definition: LayeredRecursion
    depth: int
    activation: object
    values: tuple

    def diagonal(self, sq_norms, with_tangents=False):
        """The recursion of each input against itself, through the compiled
        maps (see :meth:`LayeredRecursion.compiled_maps`).  Hyperparameter
        tangents are not carried (the kernels
        take central differences), so ``with_tangents`` leaves them zero."""
        act = self.activation
        first, hidden = self.definition.compiled_maps()
        n = sq_norms.shape[0]
        k, t = np.empty(n), np.empty(n)
        _run_first(first, np.ascontiguousarray(sq_norms, dtype=np.float64),
                   self.values, k, t)
        stages = np.zeros((self.depth, 3, n))
        for layer in range(self.depth):
            stages[layer, 0] = k
            v, vd = (np.ascontiguousarray(np.broadcast_to(a, k.shape),
                                          dtype=np.float64)
                     for a in act.dual(k, k, k))
            _run_hidden(hidden, layer, v, vd, self.values, k, t)
        if not (np.all(np.isfinite(k)) and np.all(np.isfinite(t))):
            raise FloatingPointError(
                f"The kernel overflowed through {self.depth} layers "
                f"({self.describe()}); lower the depth or the weight "
                "variance.")
        zeros = np.zeros((2, sq_norms.shape[0]))
        return DiagonalPath(stages, k, t, zeros, zeros)

    def describe(self):
        values = ", ".join(f"{h}={v:.4g}" for h, v in zip(
            self.definition.hyperparameters, self.values))
        return f"{self.definition.name}, depth={self.depth}, {values}"
