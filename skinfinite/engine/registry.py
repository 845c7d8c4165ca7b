"""Where the drivers find each architecture's compiled kernels.

The math of an architecture (:mod:`skinfinite.recursions`) is a frozen record
(its type names the architecture) with the per-input recursion
``diagonal(sq_norms, with_tangents)``, ``activation`` and ``describe()``.  It
knows nothing of the engines: the module holding its CPU tile kernels
registers the record type here, once, with

* ``cpu_kernels(activation)``: the compiled ``(values, gradients)`` tile
  kernels for an activation;
* ``kernel_arguments(record, parameter)``: the record unpacked into the
  kernels' arguments that follow the per-input arrays, ``parameter`` (the
  activation's, in the form the kernel takes) first: the one place where
  named fields meet positional signatures, and the CPU and CUDA kernels
  take them in the same order;
* ``cuda_module``: the name of the module whose ``gpu_kernels(activation)``
  gives the CUDA kernels, imported on first use on a GPU (numba's CUDA
  target is not imported otherwise), or None where there are none;
* ``resolve(record, X, Y)``: the record to run on these inputs, for
  architectures that fix something from the data (the residual flow's
  steps); the record itself by default;
* ``cpu_layer_kernels(activation)``, optional: ``(values, gradients)`` tile
  kernels that run a range of layers from a saved state (see
  :func:`skinfinite.engine.driver.gram`), with which a deep series
  activation's coefficients are made a few layers at a time; without them
  the coefficients of every layer are held at once.

Example, for a record type ``MyNetwork``::

    register(MyNetwork, cpu_kernels=my_kernels,
             kernel_arguments=lambda spec, parameter: (
                 parameter, spec.weight_variance, spec.bias_variance),
             cuda_module="skinfinite.engine.cuda.my_network")

The CPU kernel modules register on import; :mod:`skinfinite.engine.cpu`
imports all of them.
"""
import importlib
from typing import Callable, NamedTuple, Optional


class Architecture(NamedTuple):
    """An architecture's entry: see the module docstring."""

    record: type
    cpu_kernels: Callable
    kernel_arguments: Callable
    cuda_module: Optional[str] = None
    resolve: Optional[Callable] = None
    cpu_layer_kernels: Optional[Callable] = None


_ARCHITECTURES = {}


def register(record, *, cpu_kernels, kernel_arguments, cuda_module=None,
             resolve=None, cpu_layer_kernels=None):
    """Register the kernels of the architecture whose record type is
    ``record`` (see the module docstring); returns its entry."""
    entry = Architecture(record, cpu_kernels, kernel_arguments, cuda_module,
                         resolve, cpu_layer_kernels)
    _ARCHITECTURES[record] = entry
    return entry


def _find(recursion):
    for cls in type(recursion).__mro__:
        entry = _ARCHITECTURES.get(cls)
        if entry is not None:
            return entry
    return None


def architecture(recursion):
    """The registered entry of a record (of its type or a base type)."""
    entry = _find(recursion)
    if entry is not None:
        return entry
    known = ", ".join(sorted(c.__name__ for c in _ARCHITECTURES))
    raise TypeError(
        f"No kernels are registered for {type(recursion).__name__}; the "
        f"registered architectures are {known}.  Register its kernels with "
        "skinfinite.engine.registry.register.")


def has_cuda_kernels(recursion):
    """Whether CUDA kernels are registered for the record's architecture
    (False for anything unregistered, such as work with a driver of its
    own)."""
    entry = _find(recursion)
    return entry is not None and entry.cuda_module is not None


def cuda_kernels(recursion):
    """The ``(values, gradients)`` CUDA kernels of a record's activation."""
    entry = architecture(recursion)
    if entry.cuda_module is None:
        raise TypeError(f"No CUDA kernels for {type(recursion).__name__}.")
    module = importlib.import_module(entry.cuda_module)
    return module.gpu_kernels(recursion.activation)


def resolve(recursion, X, Y):
    """The record to run on inputs ``X`` and ``Y`` (None: ``Y = X``)."""
    entry = architecture(recursion)
    return recursion if entry.resolve is None else entry.resolve(
        recursion, X, Y)
