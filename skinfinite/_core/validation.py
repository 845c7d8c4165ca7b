"""Input checks shared by kernels and estimators (scikit-learn style errors)."""
import numbers

import numpy as np
from sklearn.utils.validation import check_array


def check_vector_input(X, name="X", min_samples=1):
    """Return ``X`` as a finite 2-D float64 array or raise a ValueError naming
    the problem (NaN/inf, wrong dimension, empty, non-numeric)."""
    return check_array(X, dtype=np.float64, ensure_all_finite=True,
                       ensure_2d=True, allow_nd=False,
                       ensure_min_samples=min_samples, input_name=name)


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
