"""Input checks shared by kernels and estimators (scikit-learn style errors)."""
import functools
import inspect
import numbers
import os

import numpy as np
from sklearn.utils.validation import check_array


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def caller_stacklevel():
    """The ``stacklevel`` that makes a ``warnings.warn`` in the calling
    function name the first frame outside this package, the user's line
    (however many of the package's frames and wrappers lie between)."""
    frame, level = inspect.currentframe().f_back, 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level


def check_vector_input(X, name="X", min_samples=1):
    """Return ``X`` as a finite 2-D float64 array or raise a ValueError naming
    the problem (NaN/inf, wrong dimension, empty, non-numeric)."""
    return check_array(X, dtype=np.float64, ensure_all_finite=True,
                       ensure_2d=True, allow_nd=False,
                       ensure_min_samples=min_samples, input_name=name)


def flatten_images(X, image_shape, name="X"):
    """``X`` as rows of flattened images where it is a 4-D stack of images
    ``(n, rows, columns, channels)``, as neural-tangents takes them (the
    flattened rows, channels last, are the same pixels); any other input as
    it is.  ``image_shape``: the ``(rows, columns[, channels])`` the images
    must have, or None where none is set (an error for a 4-D ``X``)."""
    if getattr(X, "ndim", None) != 4:
        return X
    pixels = tuple(X.shape[1:3])
    if image_shape is None:
        raise ValueError(
            f"{name} is 4-D {tuple(X.shape)}: images are read with "
            f"image_shape=(rows, columns); pass image_shape={pixels} "
            "(channels last).")
    if pixels != tuple(image_shape)[:2]:
        raise ValueError(
            f"{name} holds images of {pixels} pixels (channels last), but "
            f"image_shape={image_shape!r}.")
    return np.reshape(X, (X.shape[0], -1))


def check_device_matrix(X, xp, name="X", min_samples=1):
    """:func:`check_vector_input` for an array on a GPU, checked in place.

    ``xp`` is the array's module (CuPy); only a boolean crosses to the host.
    """
    if X.ndim != 2:
        raise ValueError(f"Expected a 2D array for {name}, got a {X.ndim}D "
                         "array instead.")
    if X.shape[0] < min_samples or X.shape[1] < 1:
        raise ValueError(f"Found array with shape {X.shape} for {name} while "
                         f"at least {min_samples} sample(s) and 1 feature "
                         "are required.")
    if X.dtype.kind not in "fiub":
        raise ValueError(f"{name} must hold numbers, got dtype {X.dtype}.")
    X = xp.ascontiguousarray(X, dtype=np.float64)
    if not bool(xp.isfinite(X).all()):
        raise ValueError(f"Input {name} contains NaN or infinity.")
    return X


def check_same_features(X, Y):
    if Y is not None and X.shape[1] != Y.shape[1]:
        raise ValueError(f"X has {X.shape[1]} features but Y has {Y.shape[1]}; "
                         "both must have the same number of features.")


def check_positive_int(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}.")
    return int(value)


def check_variance(value, name, allow_zero=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}.")
    value = float(value)
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {bound}, got {value}.")
    return value


def check_choice(value, name, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, "
                         f"got {value!r}.")
    return value


_DTYPES = {"float64": np.float64, "float32": np.float32}


def check_dtype(dtype):
    key = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if key not in _DTYPES:
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}.")
    return _DTYPES[key]


# ------------------------------------------------- declarative parameter checks
class InvalidParameterError(ValueError, TypeError):
    """A constructor parameter outside its allowed values.

    Both a ValueError and a TypeError, as scikit-learn's own, so that code
    catching either (a wrong value or a wrong type) catches it.
    """


class Interval:
    """Numbers of one kind between two bounds.

    Parameters
    ----------
    kind : numbers.Integral or numbers.Real
        Integral takes integers only; Real takes integers and floats (never
        booleans in either case).
    left, right : number or None
        Bounds; None means unbounded on that side.
    closed : {"left", "right", "both", "neither"}
        Which bounds belong to the interval.  An unbounded side holds
        infinity only when it is closed (``Interval(Real, 0, None,
        closed="both")`` is ``[0, inf]``).
    """

    def __init__(self, kind, left, right, *, closed):
        if kind not in (numbers.Integral, numbers.Real):
            raise ValueError("kind must be numbers.Integral or numbers.Real.")
        if closed not in ("left", "right", "both", "neither"):
            raise ValueError(f"closed={closed!r} is not one of 'left', "
                             "'right', 'both', 'neither'.")
        self.kind, self.left, self.right, self.closed = kind, left, right, closed

    def __contains__(self, value):
        if not isinstance(value, self.kind) or isinstance(value, (bool, np.bool_)):
            return False
        if value != value:  # NaN
            return False
        low = -np.inf if self.left is None else self.left
        high = np.inf if self.right is None else self.right
        left_in = self.closed in ("left", "both")
        right_in = self.closed in ("right", "both")
        above = value >= low if left_in else value > low
        below = value <= high if right_in else value < high
        return bool(above and below)

    def __str__(self):
        what = "an int" if self.kind is numbers.Integral else "a float"
        low = "-inf" if self.left is None else f"{self.left:g}"
        high = "inf" if self.right is None else f"{self.right:g}"
        return (f"{what} in the range {'[' if self.closed in ('left', 'both') else '('}"
                f"{low}, {high}{']' if self.closed in ('right', 'both') else ')'}")


class Options:
    """A fixed set of allowed values (compared by equality)."""

    def __init__(self, *values):
        self.values = values

    def __contains__(self, value):
        for v in self.values:
            if isinstance(v, str) != isinstance(value, str):
                continue
            try:
                if bool(value == v):
                    return True
            except (TypeError, ValueError):   # arrays compare element-wise
                continue
        return False

    def __str__(self):
        return "one of " + ", ".join(repr(v) for v in self.values)


def _is_random_state(value):
    return (value is None or isinstance(value, np.random.RandomState)
            or (isinstance(value, numbers.Integral)
                and not isinstance(value, (bool, np.bool_))
                and 0 <= value < 2 ** 32))


#: Named constraints: what each accepts, and how errors describe it.
_NAMED = {
    "boolean": (lambda v: isinstance(v, (bool, np.bool_)), "a bool"),
    "callable": (callable, "a callable"),
    "random_state": (_is_random_state,
                     "None, an int in [0, 2**32 - 1] or a RandomState"),
    "verbose": (lambda v: isinstance(v, (bool, np.bool_)) or (
        isinstance(v, numbers.Integral) and v >= 0), "an int >= 0"),
    "sequence": (lambda v: isinstance(v, (list, tuple, np.ndarray)),
                 "a list, tuple or array"),
    "cv_object": (lambda v: hasattr(v, "split") or (
        hasattr(v, "__iter__") and not isinstance(v, str)),
        "a cross-validation splitter or an iterable of (train, test) splits"),
}


def _satisfies(value, constraint):
    if constraint is None:
        return value is None
    if isinstance(constraint, (Interval, Options)):
        return value in constraint
    if isinstance(constraint, str):
        return _NAMED[constraint][0](value)
    return isinstance(value, constraint)


def _describe(constraint):
    if constraint is None:
        return "None"
    if isinstance(constraint, (Interval, Options)):
        return str(constraint)
    if isinstance(constraint, str):
        return _NAMED[constraint][1]
    return f"an instance of {constraint.__name__}"


def check_parameter(value, name, allowed, owner=None):
    """Raise :class:`InvalidParameterError` unless ``value`` meets one of
    the ``allowed`` constraints.

    Constraints are None, a type, :class:`Interval`, :class:`Options` or a
    name: "boolean", "callable", "random_state", "verbose", "sequence",
    "cv_object".
    """
    if any(_satisfies(value, c) for c in allowed):
        return value
    where = f" of {owner}" if owner else ""
    choices = [_describe(c) for c in allowed]
    listed = choices[0] if len(choices) == 1 else (
        ", ".join(choices[:-1]) + " or " + choices[-1])
    raise InvalidParameterError(
        f"The {name!r} parameter{where} must be {listed}; got {value!r}.")


def check_parameters(estimator):
    """Check every parameter of ``estimator`` against its
    ``_parameter_constraints`` table (``{name: [constraint, ...]}``;
    "no_validation" skips a parameter)."""
    table = type(estimator)._parameter_constraints
    params = estimator.get_params(deep=False)
    missing = sorted(set(params) - set(table))
    if missing:
        raise RuntimeError(f"{type(estimator).__name__} has no constraints for "
                           f"{', '.join(missing)}.")
    for name, allowed in table.items():
        if allowed == "no_validation":
            continue
        check_parameter(params[name], name, allowed, type(estimator).__name__)


class ValidatesParameters:
    """Estimators whose ``fit`` first checks their parameters.

    A subclass lists, in ``_parameter_constraints``, the allowed values of
    each constructor parameter; every ``fit`` it defines is wrapped so that
    :func:`check_parameters` runs before anything else (checks that need
    the data, or several parameters together, stay in ``fit``).
    """

    _parameter_constraints = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        fit = cls.__dict__.get("fit")
        if fit is None or getattr(fit, "_checks_parameters", False):
            return

        @functools.wraps(fit)
        def checked_fit(self, *args, **kwargs):
            check_parameters(self)
            return fit(self, *args, **kwargs)

        checked_fit._checks_parameters = True
        cls.fit = checked_fit
