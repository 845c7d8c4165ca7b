"""Sequence inputs: validation, a canonical padded form, and the 2-D form.

Sequence kernels accept a set of paths (multivariate time series) in three
forms:

* a 3-D array of shape ``(n_paths, length, n_channels)``;
* a list (or tuple) of 2-D arrays ``(length_i, n_channels)`` whose lengths
  may differ; a 1-D entry ``(length_i,)`` is a path with one channel;
* the *flattened 2-D form* ``(n_paths, length * n_channels)`` together with
  ``n_channels``: row ``i`` holds the points of path ``i`` one after the
  other (``x_0`` channels, then ``x_1`` channels, ...).  Shorter paths are
  padded at the end, with NaN (exact lengths) or by repeating their last
  point (finite, and equivalent for signature kernels without time
  augmentation).  This is the form scikit-learn estimators such
  as :class:`~sklearn.gaussian_process.GaussianProcessRegressor` pass on,
  since they reject 3-D and ragged inputs; :func:`flatten_sequences` writes
  it.

In the 3-D and 2-D forms, trailing time steps that are entirely NaN mark the
end of a shorter path; that is the only NaN allowed.  Any other NaN or
infinity raises a ValueError.

The canonical form, :class:`Sequences`, is a float64 array of shape
``(n_paths, max_length, n_channels)`` in which each path is padded by
repeating its last point, and the true lengths.  Repeating the last point
adds zero increments, which leave signature kernels unchanged, so solvers
can run on the padded array as it is.
"""
import numbers
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Sequences:
    """Validated paths, padded by repeating each path's last point.

    Attributes
    ----------
    values : ndarray of shape (n_paths, max_length, n_channels), float64
    lengths : ndarray of shape (n_paths,), int64
        Number of points of each path (at least 2).
    """

    values: np.ndarray
    lengths: np.ndarray

    @property
    def n_paths(self):
        return self.values.shape[0]

    @property
    def max_length(self):
        return self.values.shape[1]

    @property
    def n_channels(self):
        return self.values.shape[2]

    @property
    def equal_lengths(self):
        return bool(np.all(self.lengths == self.max_length))

    def path(self, i):
        """The points of path ``i`` without padding, shape (length_i, C)."""
        return self.values[i, :self.lengths[i]]

    def take(self, index):
        """The paths at ``index`` (an integer array or a slice)."""
        lengths = self.lengths[index]
        top = int(lengths.max()) if lengths.size else 0
        return Sequences(np.ascontiguousarray(self.values[index, :top]),
                         lengths)


def _as_float(a, name):
    a = np.asarray(a)
    if a.dtype.kind in "biuf":
        return a.astype(np.float64, copy=False)
    if a.dtype.kind == "O":
        try:
            return a.astype(np.float64)
        except (TypeError, ValueError):
            pass
    raise ValueError(f"{name} must hold numeric data; got an array of dtype "
                     f"{a.dtype}.")


def _trailing_nan_lengths(values, name):
    """Lengths implied by trailing all-NaN time steps; rejects other NaN/inf.

    ``values`` has shape (n, T, C).
    """
    nan = np.isnan(values)
    step_all = nan.all(axis=2)            # (n, T) time steps fully NaN
    # a step counts as padding when it and every later step are all NaN
    padding = np.flip(np.logical_and.accumulate(np.flip(step_all, 1), 1), 1)
    lengths = values.shape[1] - padding.sum(axis=1)
    inside = ~padding[:, :, None]
    bad = inside & ~np.isfinite(values)
    if bad.any():
        path, step, _ = np.argwhere(bad)[0]
        kind = "NaN" if np.isnan(values[path, step]).any() else "infinity"
        raise ValueError(
            f"{name} contains {kind} inside path {path} (time step {step}); "
            "only whole time steps of NaN at the end of a path (padding of "
            "shorter paths) are allowed.")
    return lengths.astype(np.int64)


def _pad_by_last_point(values, lengths):
    for i in np.flatnonzero(lengths < values.shape[1]):
        values[i, lengths[i]:] = values[i, lengths[i] - 1]
    return values


def _check_lengths(lengths, name):
    short = np.flatnonzero(lengths < 2)
    if short.size:
        raise ValueError(
            f"{name} has path(s) with fewer than 2 points (first: path "
            f"{short[0]} with {lengths[short[0]]}); a path needs at least 2 "
            "points to have an increment.")


def _check_n_channels(n_channels):
    if n_channels is None:
        return None
    if isinstance(n_channels, bool) or not isinstance(n_channels,
                                                      numbers.Integral):
        raise TypeError(f"n_channels must be an integer or None, got "
                        f"{n_channels!r}.")
    if n_channels < 1:
        raise ValueError(f"n_channels must be >= 1, got {n_channels}.")
    return int(n_channels)


def _from_list(X, name):
    if len(X) == 0:
        raise ValueError(f"{name} is an empty list; at least one path is "
                         "required.")
    paths = []
    for i, p in enumerate(X):
        a = _as_float(p, f"{name}[{i}]")
        if a.ndim == 1:
            a = a[:, None]
        if a.ndim != 2:
            raise ValueError(f"{name}[{i}] must be a 1-D or 2-D array "
                             f"(length, n_channels); got {a.ndim} dimensions.")
        paths.append(a)
    channels = {a.shape[1] for a in paths}
    if len(channels) > 1:
        raise ValueError(f"The paths of {name} have different numbers of "
                         f"channels: {sorted(channels)}.")
    c = channels.pop()
    if c == 0:
        raise ValueError(f"The paths of {name} have 0 channels.")
    top = max(a.shape[0] for a in paths)
    values = np.full((len(paths), top, c), np.nan)
    for i, a in enumerate(paths):
        values[i, :a.shape[0]] = a
    return values


def check_sequences(X, n_channels=None, name="X"):
    """Validate a set of paths and return its canonical :class:`Sequences`.

    Parameters
    ----------
    X : array-like or Sequences
        A 3-D array ``(n_paths, length, n_channels)``, a list of 2-D arrays
        ``(length_i, n_channels)`` (1-D entries are one-channel paths), or
        the flattened 2-D form ``(n_paths, length * n_channels)`` (needs
        ``n_channels``).  Trailing all-NaN time steps mark shorter paths.
    n_channels : int, optional
        Number of channels; required for the 2-D form, checked otherwise.
    name : str
        Used in error messages.

    Returns
    -------
    Sequences

    Raises
    ------
    ValueError
        Empty input, non-numeric data, NaN or infinity inside a path, paths
        with fewer than 2 points, paths with different channel counts, a
        2-D width that is not a multiple of ``n_channels``.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite._sequences import check_sequences
    >>> seqs = check_sequences([np.zeros((3, 2)), np.ones((5, 2))])
    >>> seqs.values.shape, seqs.lengths.tolist()
    ((2, 5, 2), [3, 5])
    >>> check_sequences(np.arange(12.0).reshape(2, 6), n_channels=3).values.shape
    (2, 2, 3)
    """
    n_channels = _check_n_channels(n_channels)
    if isinstance(X, Sequences):
        if n_channels is not None and X.n_channels != n_channels:
            raise ValueError(f"{name} has {X.n_channels} channels but "
                             f"n_channels={n_channels}.")
        return X
    if isinstance(X, (list, tuple)) and (
            len(X) == 0 or all(np.ndim(p) >= 1 for p in X)):
        values = _from_list(X, name)
    else:
        values = _as_float(X, name)
        if values.ndim == 2:
            if n_channels is None:
                raise ValueError(
                    f"{name} is 2-D {values.shape}: pass n_channels to read "
                    "it as the flattened form (n_paths, length * n_channels), "
                    "or give a 3-D array (n_paths, length, n_channels).")
            if values.shape[1] % n_channels:
                raise ValueError(
                    f"{name} has {values.shape[1]} columns, which is not a "
                    f"multiple of n_channels={n_channels}.")
            values = values.reshape(values.shape[0], -1, n_channels)
        elif values.ndim != 3:
            raise ValueError(
                f"{name} must be a 3-D array (n_paths, length, n_channels), "
                "a list of 2-D arrays, or a 2-D array with n_channels; got "
                f"{values.ndim} dimension(s).")
        else:
            values = values.copy()
    if values.shape[0] == 0:
        raise ValueError(f"{name} has 0 paths; at least one is required.")
    if values.shape[2] == 0:
        raise ValueError(f"{name} has 0 channels.")
    if n_channels is not None and values.shape[2] != n_channels:
        raise ValueError(f"{name} has {values.shape[2]} channels but "
                         f"n_channels={n_channels}.")
    lengths = _trailing_nan_lengths(values, name)
    _check_lengths(lengths, name)
    top = int(lengths.max())
    values = np.ascontiguousarray(values[:, :top])
    return Sequences(_pad_by_last_point(values, lengths), lengths)


def check_same_channels(X, Y):
    """Raise if two :class:`Sequences` have different channel counts."""
    if X.n_channels != Y.n_channels:
        raise ValueError(f"X has {X.n_channels} channels but Y has "
                         f"{Y.n_channels}; both must have the same number.")


def flatten_sequences(X, n_channels=None, padding="last"):
    """Write paths in the flattened 2-D form ``(n_paths, length * n_channels)``.

    The result is what scikit-learn estimators accept (for example
    :class:`~sklearn.gaussian_process.GaussianProcessRegressor`); give the
    kernel the same ``n_channels``.

    Parameters
    ----------
    X : array-like
        Any form accepted by :func:`check_sequences`.
    n_channels : int, optional
        Only needed when ``X`` is already 2-D.
    padding : {"last", "nan"}, default="last"
        How shorter paths are padded.  "last" repeats the last point: finite
        values that scikit-learn's input checks accept, and zero increments
        that leave signature kernels unchanged -- except with time
        augmentation, whose time channel then spans the padded length.
        "nan" marks the true lengths (trailing NaN time steps), which the
        kernels read exactly but scikit-learn estimators reject.

    Returns
    -------
    X_flat : ndarray of shape (n_paths, max_length * n_channels)

    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite import flatten_sequences
    >>> paths = [np.array([[0., 1.], [2., 3.]]), np.zeros((3, 2))]
    >>> flatten_sequences(paths)
    array([[0., 1., 2., 3., 2., 3.],
           [0., 0., 0., 0., 0., 0.]])
    >>> flatten_sequences(paths, padding="nan")[0]
    array([ 0.,  1.,  2.,  3., nan, nan])
    """
    if padding not in ("last", "nan"):
        raise ValueError(f"padding must be 'last' or 'nan', got {padding!r}.")
    seqs = check_sequences(X, n_channels)
    out = seqs.values.copy()
    if padding == "nan":
        for i in np.flatnonzero(seqs.lengths < seqs.max_length):
            out[i, seqs.lengths[i]:] = np.nan
    return out.reshape(seqs.n_paths, -1)
