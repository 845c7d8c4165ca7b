"""Sequence inputs: validation, a canonical padded form, and the 2-D form.

Sequence kernels accept a set of paths (multivariate time series) in these
forms:

* a 3-D array of shape ``(n_paths, length, n_channels)`` ("ntc", the layout
  of skinfinite's loaders and tslearn) or ``(n_paths, n_channels, length)``
  ("nct", the layout of aeon and sktime's "numpy3D");
* a list (or tuple) of 2-D arrays ``(length_i, n_channels)`` or
  ``(n_channels, length_i)`` (aeon's unequal-length form) whose lengths
  may differ; a 1-D entry ``(length_i,)`` is a path with one channel;
* a pandas DataFrame in sktime's "nested_univ" form: one column per channel,
  each cell a series (the paths' lengths may differ between rows);
* the *flattened 2-D form* ``(n_paths, length * n_channels)`` together with
  ``n_channels``: row ``i`` holds the points of path ``i`` one after the
  other (``x_0`` channels, then ``x_1`` channels, ...).  Shorter paths are
  padded at the end, with NaN (exact lengths) or by repeating their last
  point (finite, and equivalent for signature kernels without time
  augmentation).  This is the form scikit-learn estimators such
  as :class:`~sklearn.gaussian_process.GaussianProcessRegressor` pass on,
  since they reject 3-D and ragged inputs; :func:`flatten_sequences` writes
  it.

Which axis of a 3-D array or of a list's entries is time is set by
``layout`` (see :func:`resolve_layout` for what "auto" decides); the
flattened 2-D form is always point-major, whatever the layout.

In the 3-D and 2-D forms, trailing time steps that are entirely NaN mark the
end of a shorter path; that is the only NaN allowed.  Entries of a list or of
a nested DataFrame carry their own lengths, so any NaN in them raises, as
does any other NaN or infinity.

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


#: The layouts of a path's two axes: time then channels, or channels then time.
LAYOUTS = ("auto", "ntc", "nct")

# Under layout="auto", an equal-length input is read by the lengths of its
# axes only when one is at least this many times the other (the longer one
# is time); closer shapes are ambiguous and raise.
_CLEARLY_LONGER = 2


def check_layout(layout):
    """Validate a ``layout`` parameter; returns it."""
    if not isinstance(layout, str) or layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(map(repr, LAYOUTS))}, "
                         f"got {layout!r}.")
    return layout


def _equal_shape_layout(shape, n_channels, what, name):
    """The layout "auto" reads for paths that all have the 2-D shape ``shape``."""
    a, b = shape
    if n_channels is not None and (a == n_channels) != (b == n_channels):
        return "ntc" if b == n_channels else "nct"
    if (a == 1) != (b == 1):
        # a path needs 2 points, so an axis of size 1 holds the channels
        return "ntc" if b == 1 else "nct"
    if a >= _CLEARLY_LONGER * b:
        return "ntc"
    if b >= _CLEARLY_LONGER * a:
        return "nct"
    if a == b == 1:
        return "ntc"        # one point either way; rejected with its reason
    raise ValueError(
        f"{name} is {what}, which layout='auto' cannot read safely: each "
        f"path is either {a} points of {b} channels (layout='ntc', "
        f"(length, n_channels)) or {b} points of {a} channels "
        "(layout='nct', (n_channels, length)); 'auto' takes the longer axis "
        f"for time only when it is at least {_CLEARLY_LONGER} times the "
        "other.  Pass layout='ntc' (skinfinite's loaders, tslearn) or "
        "layout='nct' (aeon, sktime).")


def is_nested_frame(X):
    """True for a pandas DataFrame whose cells are series (sktime's
    "nested_univ"); checked without importing pandas."""
    if type(X).__name__ != "DataFrame" or not type(X).__module__.startswith(
            "pandas") or X.shape[0] == 0 or X.shape[1] == 0:
        return False
    return all(np.ndim(cell) == 1 for cell in X.iloc[0])


def _from_nested_frame(X, name):
    """Paths ``(length_i, n_channels)`` of a nested DataFrame, one per row."""
    paths = []
    for i in range(X.shape[0]):
        cells = [np.asarray(cell) for cell in X.iloc[i]]
        if any(c.ndim != 1 for c in cells):
            raise ValueError(f"Row {i} of {name} has a cell that is not a "
                             "series; a nested DataFrame has one series per "
                             "cell.")
        lengths = {len(c) for c in cells}
        if len(lengths) > 1:
            raise ValueError(f"Row {i} of {name} has channels of different "
                             f"lengths {sorted(lengths)}; the channels of a "
                             "path must have the same length.")
        paths.append(np.column_stack(cells))
    return paths


def _list_layout(X, layout, n_channels, name):
    """Resolve ``layout`` for a list of paths from its entries' shapes."""
    if layout != "auto":
        return layout
    shapes = [np.shape(p) for p in X]
    shapes = [s for s in shapes if len(s) == 2]
    if not shapes:
        return "ntc"        # 1-D entries are one-channel paths either way
    firsts, seconds = {s[0] for s in shapes}, {s[1] for s in shapes}
    if len(firsts) == 1 and len(seconds) == 1:
        return _equal_shape_layout(
            shapes[0], n_channels,
            f"a list of {len(shapes)} paths, all of shape {shapes[0]}", name)
    if len(seconds) == 1:
        return "ntc"        # the axis that is the same in every path: channels
    if len(firsts) == 1:
        return "nct"
    raise ValueError(
        f"The paths of {name} differ in both axes (shapes {shapes[:3]}...); "
        "every path needs the same number of channels, along the second axis "
        "(layout='ntc', (length_i, n_channels)) or the first (layout='nct', "
        "(n_channels, length_i)).")


def _is_path_list(X):
    return isinstance(X, (list, tuple)) and (
        len(X) == 0 or all(np.ndim(p) >= 1 for p in X))


def resolve_layout(X, layout="auto", n_channels=None, name="X"):
    """The layout, "ntc" or "nct", in which :func:`check_sequences` reads ``X``.

    An explicit ``layout`` is returned as it is.  Under ``"auto"``:

    * a list whose paths differ in length: the axis whose size is the same
      in every path holds the channels (``(length_i, C)`` is "ntc",
      aeon's ``(C, length_i)`` is "nct");
    * a 3-D array, or a list of paths of one shape ``(a, b)``: the axis of
      size ``n_channels`` when it is given and only one axis has that size;
      else an axis of size 1 (a path needs at least 2 points); else the
      longer axis is time when it is at least twice the other.  Otherwise the
      two readings are equally plausible and a ValueError names both and the
      fix (``layout="ntc"`` or ``"nct"``);
    * the flattened 2-D form, a nested DataFrame and :class:`Sequences`:
      "ntc" (their layout is fixed).

    The rule looks only at shapes, so inputs of the same shape are always
    read the same way.  It misreads data with at least twice as many
    channels as time points (for example PEMS-SF in aeon's layout): give
    such data an explicit layout.

    Parameters
    ----------
    X : sequences
    layout : {"auto", "ntc", "nct"}, default="auto"
    n_channels : int, optional
    name : str
        Used in error messages.

    Returns
    -------
    {"ntc", "nct"}
    """
    layout = check_layout(layout)
    n_channels = _check_n_channels(n_channels)
    if layout != "auto" or isinstance(X, Sequences) or is_nested_frame(X):
        return "ntc" if layout == "auto" else layout
    if _is_path_list(X):
        return _list_layout(X, layout, n_channels, name)
    shape = np.shape(X)
    if len(shape) != 3:
        return "ntc"
    return _equal_shape_layout(
        shape[1:], n_channels, f"a 3-D array of shape {shape}", name)


def _from_list(X, name, layout="ntc"):
    if len(X) == 0:
        raise ValueError(f"{name} is an empty list; at least one path is "
                         "required.")
    axes = ("(length, n_channels)" if layout == "ntc"
            else "(n_channels, length)")
    paths = []
    for i, p in enumerate(X):
        a = _as_float(p, f"{name}[{i}]")
        if a.ndim == 1:
            a = a[:, None]
        elif a.ndim == 2 and layout == "nct":
            a = a.T
        if a.ndim != 2:
            raise ValueError(f"{name}[{i}] must be a 1-D or 2-D array "
                             f"{axes}; got {a.ndim} dimensions.")
        bad = ~np.isfinite(a)
        if bad.any():
            # no padding here: each entry has its own length
            step = int(np.argwhere(bad)[0][0])
            kind = "NaN" if np.isnan(a[step]).any() else "infinity"
            raise ValueError(
                f"{name}[{i}] contains {kind} (time step {step}); the paths "
                "of a list have their own lengths, so no NaN padding is "
                "allowed in them (it marks shorter paths only in 3-D and "
                "flattened arrays).")
        paths.append(a)
    channels = {a.shape[1] for a in paths}
    if len(channels) > 1:
        raise ValueError(f"The paths of {name} have different numbers of "
                         f"channels: {sorted(channels)} (read as {axes}, "
                         f"layout={layout!r}).")
    c = channels.pop()
    if c == 0:
        raise ValueError(f"The paths of {name} have 0 channels.")
    top = max(a.shape[0] for a in paths)
    values = np.full((len(paths), top, c), np.nan)
    for i, a in enumerate(paths):
        values[i, :a.shape[0]] = a
    return values


def check_sequences(X, n_channels=None, name="X", layout="auto"):
    """Validate a set of paths and return its canonical :class:`Sequences`.

    The one reader of sequence input: every kernel and estimator on paths
    calls it with its own ``n_channels`` and ``layout``.

    Parameters
    ----------
    X : array-like, list, DataFrame or Sequences
        A 3-D array, ``(n_paths, length, n_channels)`` or ``(n_paths,
        n_channels, length)``; a list of 2-D arrays ``(length_i,
        n_channels)`` or ``(n_channels, length_i)`` (1-D entries are
        one-channel paths); a nested pandas DataFrame (one column per
        channel, a series in each cell); or the flattened 2-D form
        ``(n_paths, length * n_channels)``, point-major (needs
        ``n_channels``).  Trailing all-NaN time steps of 3-D and flattened
        arrays mark shorter paths.
    n_channels : int, optional
        Number of channels; required for the 2-D form, checked otherwise
        (and used by ``layout="auto"`` to tell the axes apart).
    name : str
        Used in error messages.
    layout : {"auto", "ntc", "nct"}, default="auto"
        Which axis of a 3-D array or of a list's entries is time: "ntc"
        (time, then channels), "nct" (channels, then time), or "auto" (see
        :func:`resolve_layout`: decided from the shapes, an error where they
        are ambiguous).  The 2-D form, nested DataFrames and
        :class:`Sequences` have a fixed layout.

    Returns
    -------
    Sequences

    Raises
    ------
    ValueError
        Empty input, non-numeric data, NaN or infinity inside a path (or
        anywhere in a list entry), paths with fewer than 2 points, paths with
        different channel counts, a 2-D width that is not a multiple of
        ``n_channels``, an unknown layout, or a shape that ``"auto"`` cannot
        read unambiguously.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite._core.sequences import check_sequences
    >>> seqs = check_sequences([np.zeros((3, 2)), np.ones((5, 2))])
    >>> seqs.values.shape, seqs.lengths.tolist()
    ((2, 5, 2), [3, 5])
    >>> check_sequences(np.arange(12.0).reshape(2, 6), n_channels=3).values.shape
    (2, 2, 3)
    >>> check_sequences(np.zeros((4, 6, 100))).values.shape   # aeon's layout
    (4, 100, 6)
    """
    n_channels = _check_n_channels(n_channels)
    layout = resolve_layout(X, layout, n_channels, name)
    if isinstance(X, Sequences):
        if n_channels is not None and X.n_channels != n_channels:
            raise ValueError(f"{name} has {X.n_channels} channels but "
                             f"n_channels={n_channels}.")
        return X
    if is_nested_frame(X):
        values = _from_list(_from_nested_frame(X, name), name)
    elif _is_path_list(X):
        values = _from_list(X, name, layout)
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
                f"{name} must be a 3-D array (n_paths, length, n_channels) "
                "or (n_paths, n_channels, length), a list of 2-D arrays, or "
                "a 2-D array with n_channels; got "
                f"{values.ndim} dimension(s).")
        elif layout == "nct":
            values = np.swapaxes(values, 1, 2).copy()
        else:
            values = values.copy()
    if values.shape[0] == 0:
        raise ValueError(f"{name} has 0 paths; at least one is required.")
    if values.shape[2] == 0:
        raise ValueError(f"{name} has 0 channels.")
    if n_channels is not None and values.shape[2] != n_channels:
        raise ValueError(f"{name} has {values.shape[2]} channels but "
                         f"n_channels={n_channels} (read in layout "
                         f"{layout!r}).")
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


def flatten_sequences(X, n_channels=None, padding="last", layout="auto"):
    """Write paths in the flattened 2-D form ``(n_paths, length * n_channels)``.

    The result is what scikit-learn estimators accept (for example
    :class:`~sklearn.gaussian_process.GaussianProcessRegressor`); give the
    kernel the same ``n_channels``.

    Parameters
    ----------
    X : array-like, list or DataFrame
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
    layout : {"auto", "ntc", "nct"}, default="auto"
        How ``X`` is read (see :func:`check_sequences`); give aeon's or
        sktime's ``(n, n_channels, length)`` arrays ``"nct"``.  The output is
        point-major whatever the layout, which kernels read with any
        ``layout``.

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
    >>> flatten_sequences(np.arange(6.0).reshape(1, 2, 3), layout="nct")
    array([[0., 3., 1., 4., 2., 5.]])
    """
    if padding not in ("last", "nan"):
        raise ValueError(f"padding must be 'last' or 'nan', got {padding!r}.")
    seqs = check_sequences(X, n_channels, layout=layout)
    out = seqs.values.copy()
    if padding == "nan":
        for i in np.flatnonzero(seqs.lengths < seqs.max_length):
            out[i, seqs.lengths[i]:] = np.nan
    return out.reshape(seqs.n_paths, -1)
