"""Every estimator's constructor parameters have a constraint table that
``fit`` checks first (see ``skinfinite._core.validation``)."""
import inspect
import math
import numbers

import numpy as np
import pytest
from sklearn.base import is_classifier

from skinfinite import models
from skinfinite._core.validation import (Interval, InvalidParameterError,
                                         Options, ValidatesParameters,
                                         _satisfies, check_parameter,
                                         check_parameters)

ESTIMATORS = [getattr(models, name) for name in models.__all__
              if inspect.isclass(getattr(models, name))
              and hasattr(getattr(models, name), "fit")]


class _Unrelated:
    """A value no constraint allows: not a number, string, sequence,
    callable or kernel."""

    def __repr__(self):
        return "<unrelated>"


def _outside(constraint):
    """Values that break one constraint."""
    if isinstance(constraint, Interval):
        out = []
        if constraint.left is not None:
            out.append(constraint.left - 1)
            if constraint.closed in ("right", "neither"):
                out.append(constraint.left)
        if constraint.right is not None:
            out.append(constraint.right + 1)
        if constraint.kind is numbers.Integral:
            out.append(2.5)
        else:
            out.append(math.nan)
        return out
    if isinstance(constraint, Options):
        return ["not-an-option"]
    if constraint == "boolean":
        return ["yes"]
    return []


def _invalid_values(allowed):
    candidates = [_Unrelated()]
    for constraint in allowed:
        candidates += _outside(constraint)
    return [v for v in candidates
            if not any(_satisfies(v, c) for c in allowed)]


def _data(estimator):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 3))
    y = np.arange(12) % 2 if is_classifier(estimator) else X[:, 0]
    return X, y


def test_every_estimator_is_covered():
    assert len(ESTIMATORS) >= 16
    for cls in ESTIMATORS:
        assert issubclass(cls, ValidatesParameters), cls.__name__


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_table_lists_every_parameter(cls):
    params = set(cls().get_params(deep=False))
    assert set(cls._parameter_constraints) == params
    # the defaults are allowed values
    check_parameters(cls())


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_invalid_values_are_named_at_fit(cls):
    estimator = cls()
    X, y = _data(estimator)
    tried = 0
    for name, allowed in cls._parameter_constraints.items():
        for value in _invalid_values(allowed):
            with pytest.raises((ValueError, TypeError),
                               match=f"'{name}' parameter of {cls.__name__}"
                                     " must be .*; got") as info:
                cls(**{name: value}).fit(X, y)
            assert isinstance(info.value, InvalidParameterError)
            tried += 1
    assert tried >= len(cls._parameter_constraints)


def test_interval_bounds_and_kinds():
    positive = Interval(numbers.Real, 0, None, closed="neither")
    assert 1e-300 in positive and 3 in positive and np.float32(2) in positive
    assert 0 not in positive and -1 not in positive
    assert math.inf not in positive and math.nan not in positive
    assert True not in positive and "1" not in positive
    assert math.inf in Interval(numbers.Real, 0, None, closed="right")
    counts = Interval(numbers.Integral, 1, None, closed="left")
    assert 1 in counts and np.int64(5) in counts
    assert 0 not in counts and 1.0 not in counts and False not in counts
    unit = Interval(numbers.Real, 0, 1, closed="neither")
    assert 0.5 in unit and 0 not in unit and 1 not in unit
    assert str(counts) == "an int in the range [1, inf)"
    assert str(unit) == "a float in the range (0, 1)"


def test_options_compare_by_value_and_kind():
    options = Options("auto", math.inf)
    assert "auto" in options and math.inf in options
    assert "AUTO" not in options and 1 not in options
    assert np.array([1, 2]) not in options
    assert str(options) == "one of 'auto', inf"


def test_error_lists_the_allowed_values():
    allowed = [Interval(numbers.Integral, 1, None, closed="left"), None]
    assert check_parameter(None, "n_inducing", allowed) is None
    with pytest.raises(InvalidParameterError) as info:
        check_parameter(0, "n_inducing", allowed, "NNGPRegressor")
    assert str(info.value) == (
        "The 'n_inducing' parameter of NNGPRegressor must be an int in the "
        "range [1, inf) or None; got 0.")
    # a wrong value and a wrong type are caught either way
    assert issubclass(InvalidParameterError, ValueError)
    assert issubclass(InvalidParameterError, TypeError)


def test_named_constraints():
    assert _satisfies(np.random.RandomState(0), "random_state")
    assert not _satisfies(-1, "random_state")
    assert _satisfies(2, "verbose") and not _satisfies(-1, "verbose")
    assert _satisfies(np.bool_(True), "boolean") and not _satisfies(1, "boolean")
    assert _satisfies((1, 2), "sequence") and not _satisfies("ab", "sequence")


def test_a_table_without_a_parameter_is_an_error():
    class Incomplete(ValidatesParameters):
        _parameter_constraints = {}

        def __init__(self, depth=1):
            self.depth = depth

        def get_params(self, deep=False):
            return {"depth": self.depth}

        def fit(self, X, y=None):
            return self

    with pytest.raises(RuntimeError, match="no constraints for depth"):
        Incomplete().fit(None)


def test_fit_keeps_its_signature_and_docstring():
    fit = models.NNGPRegressor.fit
    assert "sample_weight" in inspect.signature(fit).parameters
    assert fit.__doc__ == fit.__wrapped__.__doc__ and "sample_weight" in fit.__doc__
