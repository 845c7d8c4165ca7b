"""Docstring fragments that many estimators share, written once."""

_FIT = """{summary}

Parameters
----------
X : {X}
y : {y}
{extra}
Returns
-------
self
"""

#: ``y`` of the estimators that take several targets
TARGETS = "array-like of shape (n_samples,) or (n_samples, n_targets)"

#: first line of ``sample_weight`` in ``extra`` (its description follows,
#: indented by four spaces)
SAMPLE_WEIGHT = "sample_weight : array-like of shape (n_samples,), default=None\n"


def fit_doc(summary, y="array-like of shape (n_samples,)",
            X="array-like of shape (n_samples, n_features)", extra=""):
    """Decorate a ``fit`` method with the numpydoc of its ``X``, ``y`` and
    return value; ``extra`` documents further parameters (numpydoc lines,
    unindented)."""
    text = _FIT.format(summary=summary, X=X, y=y,
                       extra=extra.rstrip("\n") + "\n" if extra else "")

    def decorate(method):
        method.__doc__ = text
        return method
    return decorate
