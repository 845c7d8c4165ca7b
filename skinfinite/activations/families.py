"""Compiled kernels that numba keeps in its disk cache.

numba caches a compiled function on disk only when the function is defined at
module level or is a closure over plain values: a closure over another
compiled function (an activation's dual, say) gets a new cache key in every
process and is compiled again each time.  The kernels therefore never close
over a dual.  They take the activation's *family*, a small named tuple
(:class:`PiecewiseLinear`, :class:`Erf`, :class:`Trig`, :class:`Series`)
holding its scalar parameter, and call :func:`family_dual`,
:func:`family_partials` and :func:`family_row`, which numba resolves from the
tuple's type at compile time.  One cached compilation per family then serves
every activation of that family; Hermite-series activations, user callables
included, all share the :class:`Series` one, since their coefficients are
data.

numba checks a cached kernel against its own source file only, not against
the files of the functions it inlines.  The entry points are therefore built
by a factory closing over :data:`SOURCE_STAMP`, a digest of the package's
sources: a change to any file gives every kernel a new cache key.

The cache lives where numba puts it: ``__pycache__`` beside the module when
that directory is writable, otherwise numba's per-user cache directory, or
``NUMBA_CACHE_DIR`` when that environment variable is set.
"""
from typing import NamedTuple

from numba import njit
from numba import types
from numba.extending import overload

from .._core.compiled import SOURCE_STAMP  # noqa: F401  (re-exported)
from . import duals as _duals
from .._core.fastmath import FASTMATH




class PiecewiseLinear(NamedTuple):
    """ReLU, leaky ReLU, abs and identity; ``param`` is the negative slope."""
    param: float


class Erf(NamedTuple):
    param: float


class Trig(NamedTuple):
    """sin (``param`` 0) and cos (``param`` 1)."""
    param: float


class Series(NamedTuple):
    """Hermite-series activations (their coefficients are per-input data)."""
    param: float


# family -> (dual, partials, reads per-input coefficient rows)
_FAMILIES = {
    PiecewiseLinear: (_duals.piecewise_linear_dual,
                      _duals.piecewise_linear_partials, False),
    Erf: (_duals.erf_dual, _duals.erf_partials, False),
    Trig: (_duals.trig_dual, _duals.trig_partials, False),
    Series: (_duals.series_dual, _duals.series_partials, True),
}
_BY_DUAL = {dual: family for family, (dual, _, _) in _FAMILIES.items()}


def family_of(scalar_dual, parameter):
    """The family tuple of the compiled dual ``scalar_dual`` with its scalar
    ``parameter``, or None when that dual is none of the families."""
    family = _BY_DUAL.get(scalar_dual)
    return None if family is None else family(float(parameter))


def dual_family(activation):
    """The family tuple the cached kernels take for ``activation``, or None
    for an activation whose compiled duals are not one of the families (it
    gets kernels compiled for it alone, not cached)."""
    return activation.family


def _entry(family_type, which):
    if not (isinstance(family_type, types.BaseNamedTuple)
            and family_type.instance_class in _FAMILIES):
        return None
    return _FAMILIES[family_type.instance_class][which]


def _dual_of(family, kxx, kxy, kyy, r, ax, ay):
    raise NotImplementedError


def _partials_of(family, kxx, kxy, kyy, r, ax, ay):
    raise NotImplementedError


def _row_of(family, rows, layer, index):
    raise NotImplementedError


@overload(_dual_of, inline="always", jit_options={"fastmath": FASTMATH})
def _overload_dual(family, kxx, kxy, kyy, r, ax, ay):
    fn = _entry(family, 0)
    if fn is not None:
        return lambda family, kxx, kxy, kyy, r, ax, ay: fn(
            kxx, kxy, kyy, r, ax, ay, family[0])


@overload(_partials_of, inline="always", jit_options={"fastmath": FASTMATH})
def _overload_partials(family, kxx, kxy, kyy, r, ax, ay):
    fn = _entry(family, 1)
    if fn is not None:
        return lambda family, kxx, kxy, kyy, r, ax, ay: fn(
            kxx, kxy, kyy, r, ax, ay, family[0])


@overload(_row_of, inline="always")
def _overload_row(family, rows, layer, index):
    per_input = _entry(family, 2)
    if per_input is True:
        return lambda family, rows, layer, index: rows[layer, index]
    if per_input is False:
        return lambda family, rows, layer, index: 0.0


@njit(inline="always", fastmath=FASTMATH)
def family_dual(kxx, kxy, kyy, r, ax, ay, family):
    """The dual ``(V, Vd)`` of the activation family ``family``; the same
    arguments as the scalar duals of :mod:`skinfinite.activations.duals`, with the
    family tuple in place of the parameter."""
    return _dual_of(family, kxx, kxy, kyy, r, ax, ay)


@njit(inline="always", fastmath=FASTMATH)
def family_partials(kxx, kxy, kyy, r, ax, ay, family):
    """The duals and their partials (see :mod:`skinfinite.activations.duals`)."""
    return _partials_of(family, kxx, kxy, kyy, r, ax, ay)


@njit(inline="always")
def family_row(family, rows, layer, index):
    """The coefficient row of input ``index`` at ``layer`` a dual reads:
    ``rows[layer, index]`` for series, a scalar placeholder for closed forms
    (so their loops hold no array views)."""
    return _row_of(family, rows, layer, index)


def _select_of(family, rows, index, otherwise):
    raise NotImplementedError


@overload(_select_of, inline="always")
def _overload_select(family, rows, index, otherwise):
    per_input = _entry(family, 2)
    if per_input is True:
        return lambda family, rows, index, otherwise: rows[index]
    if per_input is False:
        return lambda family, rows, index, otherwise: otherwise


@njit(inline="always")
def family_select(family, rows, index, otherwise):
    """``rows[index]`` for the families that read per-input coefficient
    rows (series), ``otherwise`` for closed forms: chosen when the kernel is
    compiled, so the closed forms' loops never index ``rows``."""
    return _select_of(family, rows, index, otherwise)


@njit(inline="always")
def series_row(param, rows, layer, index):
    return rows[layer, index]


@njit(inline="always")
def closed_row(param, rows, layer, index):
    return 0.0


def coefficient_row(per_input):
    """The row function of kernels compiled for one dual (not cached)."""
    return series_row if per_input else closed_row


def kernel_parameter(activation):
    """What the tile kernels of ``activation`` take as their parameter: the
    family tuple for the cached kernels, the float otherwise."""
    family = activation.family
    return activation.parameter if family is None else family
