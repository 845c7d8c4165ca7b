"""Network architectures by name, and the NNGP and NTK kernels of each.

The NTK and NNGP estimators take ``architecture=`` as a registered name or
as an instance of a registered kernel class; they build their kernel here
from their own ``depth``, ``activation``, ``weight_variance``,
``bias_variance`` (and ``parametrization``), so that an architecture is
one recursion module plus a kernel module that ends with::

    register_architecture("my_network", MyNNGP, MyNTK)

Kernel classes of an architecture derive from
:class:`~skinfinite.kernels._base.NetworkKernel` (for recursions run by the
engine, :class:`~skinfinite.kernels._base.RecursionKernel`) and take
``depth``, ``activation``, ``weight_variance`` and ``bias_variance``
in ``__init__``.
"""
from dataclasses import dataclass, field
from types import MappingProxyType

from sklearn.gaussian_process.kernels import Kernel

from .._core.validation import Options

OUTPUTS = ("nngp", "ntk")
#: the estimators' parameters that every architecture's kernels take
NETWORK_PARAMS = ("depth", "activation", "weight_variance", "bias_variance")

_ARCHITECTURES = {}


@dataclass(frozen=True)
class Architecture:
    """A registered architecture: its kernel classes and defaults.

    Attributes
    ----------
    name : str
    nngp, ntk : Kernel subclasses
        The kernels of the network's outputs at initialisation (NNGP) and
        of the trained infinite ensemble (NTK).
    parametrizations : tuple of str
        The parametrisations its kernels define; where there are several
        the kernels take a ``parametrization`` parameter.
    defaults : mapping
        Constructor parameters used when the architecture is given by name
        (for example ``n_channels=1`` for the convolutional kernels, so
        that rows of X are one-channel sequences).
    """

    name: str
    nngp: type
    ntk: type
    parametrizations: tuple = ("ntk",)
    defaults: MappingProxyType = field(
        default_factory=lambda: MappingProxyType({}))

    def kernel_class(self, output):
        """The kernel class of ``output`` ("nngp" or "ntk")."""
        if output not in OUTPUTS:
            raise ValueError(f"output must be 'nngp' or 'ntk', got "
                             f"{output!r}.")
        return self.nngp if output == "nngp" else self.ntk

    def kernel(self, output, structure=None, *, parametrization="ntk",
               **network):
        """The kernel of ``output`` for an estimator's network parameters.

        Parameters
        ----------
        output : {"nngp", "ntk"}
        structure : dict, optional
            Constructor parameters of a kernel instance given as the
            architecture; ``defaults`` otherwise.
        parametrization : str, default="ntk"
        **network
            ``depth``, ``activation``, ``weight_variance``,
            ``bias_variance``, which override ``structure``.
        """
        if parametrization not in self.parametrizations:
            allowed = " or ".join(repr(p) for p in self.parametrizations)
            if self.parametrizations == ("ntk",):
                raise ValueError(
                    f"The {self.name} architecture is defined in the NTK "
                    "parametrisation only; use parametrization='ntk'.")
            raise ValueError(f"The {self.name} architecture takes "
                             f"parametrization {allowed}, got "
                             f"{parametrization!r}.")
        params = dict(self.defaults if structure is None else structure)
        params.update(network)
        if len(self.parametrizations) > 1:
            params["parametrization"] = parametrization
        return self.kernel_class(output)(**params)


def register_architecture(name, nngp, ntk, *, parametrizations=("ntk",),
                          defaults=None):
    """Make ``name`` an ``architecture`` of the NTK and NNGP estimators.

    Parameters
    ----------
    name : str
    nngp, ntk : Kernel subclasses
        Kernel classes deriving from
        :class:`~skinfinite.kernels._base.NetworkKernel`.
    parametrizations : tuple of str, default=("ntk",)
        Where several, the kernels take a ``parametrization`` parameter.
    defaults : dict, optional
        Constructor parameters used when the architecture is given by name.

    Returns
    -------
    Architecture

    Examples
    --------
    >>> from skinfinite.kernels import ResNetNNGP, ResNetNTK
    >>> from skinfinite.kernels.registry import (register_architecture,
    ...     unregister_architecture)
    >>> arch = register_architecture("wide_resnet", ResNetNNGP, ResNetNTK,
    ...                              defaults={"branch_layers": 2})
    >>> arch.kernel("ntk", depth=4, activation="relu", weight_variance=1.0,
    ...             bias_variance=0.1)
    ResNetNTK(depth=4, activation='relu', weight_variance=1, bias_variance=0.1, branch_layers=2)
    >>> unregister_architecture("wide_resnet")
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"An architecture's name is a non-empty string, got "
                        f"{name!r}.")
    for cls in (nngp, ntk):
        if not (isinstance(cls, type) and issubclass(cls, Kernel)
                and hasattr(cls, "grams")):
            raise TypeError(
                f"{cls!r} is not a kernel class of networks: register "
                "subclasses of skinfinite.kernels._base.NetworkKernel.")
    if "ntk" not in parametrizations:
        raise ValueError("Every architecture is defined in the NTK "
                         "parametrisation; include 'ntk' in "
                         "parametrizations.")
    arch = Architecture(name, nngp, ntk, tuple(parametrizations),
                        MappingProxyType(dict(defaults or {})))
    _ARCHITECTURES[name] = arch
    return arch


def unregister_architecture(name):
    """Remove a registered architecture (a KeyError if there is none)."""
    del _ARCHITECTURES[name]


def registered_architectures():
    """The names ``architecture=`` takes, in the order of registration."""
    return tuple(_ARCHITECTURES)


def get_architecture(architecture):
    """The :class:`Architecture` of a name or kernel instance, and the
    structure (constructor parameters) an instance gives.

    Raises a ValueError that lists the registered names when there is none.
    """
    if isinstance(architecture, Kernel):
        # the kernel's own class first, then a class it derives from
        for exact in (True, False):
            for arch in reversed(_ARCHITECTURES.values()):
                if any(type(architecture) is cls if exact
                       else isinstance(architecture, cls)
                       for cls in (arch.nngp, arch.ntk)):
                    return arch, architecture.get_params(deep=False)
        kinds = ", ".join(sorted({c.__name__ for a in _ARCHITECTURES.values()
                                  for c in (a.nngp, a.ntk)}))
        raise ValueError(
            f"architecture={architecture!r} is a kernel of no registered "
            f"architecture; give one of {kinds}, or a registered name "
            f"({_names()}).")
    if isinstance(architecture, str) and architecture in _ARCHITECTURES:
        return _ARCHITECTURES[architecture], None
    raise ValueError(f"architecture must be one of {_names()} or a kernel "
                     f"of one of them, got {architecture!r}.")


class RegisteredArchitecture(Options):
    """The constraint of ``architecture=`` parameters: a registered name or a
    kernel of a registered architecture, read from the registry when checked
    (so architectures registered later are accepted)."""

    def __init__(self):
        super().__init__()

    @property
    def values(self):
        return registered_architectures()

    @values.setter
    def values(self, _):
        pass

    def __contains__(self, value):
        if isinstance(value, Kernel):
            try:
                get_architecture(value)
            except ValueError:
                return False
            return True
        return super().__contains__(value)

    def __str__(self):
        kinds = ", ".join(sorted({c.__name__ for a in _ARCHITECTURES.values()
                                  for c in (a.nngp, a.ntk)}))
        return (f"one of {_names()} or a kernel of a registered "
                f"architecture ({kinds})")


def _names():
    return ", ".join(repr(n) for n in _ARCHITECTURES)


def network_kernel(architecture, output, *, depth, activation,
                   weight_variance, bias_variance, parametrization="ntk",
                   **extra):
    """The kernel of an estimator's network.

    ``architecture`` is a registered name or a kernel instance whose class is
    registered (its parameters give the structure); ``depth``,
    ``activation``, the variances (and ``extra``, such as ``device``, where
    the kernel class takes them) are the estimator's.

    Examples
    --------
    >>> from skinfinite.kernels.registry import network_kernel
    >>> network_kernel("resnet", "nngp", depth=3, activation="erf",
    ...                weight_variance=1.0, bias_variance=0.1)
    ResNetNNGP(depth=3, activation='erf', weight_variance=1, bias_variance=0.1)
    """
    arch, structure = get_architecture(architecture)
    accepted = arch.kernel_class(output)().get_params(deep=False)
    network = dict(depth=depth, activation=activation,
                   weight_variance=weight_variance,
                   bias_variance=bias_variance)
    network.update({k: v for k, v in extra.items() if k in accepted})
    if structure is not None:
        structure = {k: v for k, v in structure.items() if k in accepted}
    return arch.kernel(output, structure, parametrization=parametrization,
                       **network)
