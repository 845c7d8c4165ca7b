"""Fixed-size features of time series, for the baselines of the benchmark.

Classic tabular models cannot read paths of varying length; these
transformers turn each path into a fixed number of features so that an RBF
support vector machine or a random forest can be compared with the sequence
kernels on the same data.
"""
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._core.sequences import check_sequences
from .._core.validation import check_positive_int

__all__ = ["ResampledSeries", "SeriesSummary"]


class _SequenceTransformer(TransformerMixin, BaseEstimator):
    """Validation shared by the sequence transformers."""

    def fit(self, X, y=None):
        """Record the number of channels of the paths ``X``.

        Parameters
        ----------
        X : array-like
            Paths in any form of :func:`skinfinite._core.sequences.check_sequences`:
            a 3-D array, a list of 2-D ``(length_i, n_channels)`` arrays
            (axis order per ``layout``), or the flattened 2-D form with
            ``n_channels``.
        y : ignored

        Returns
        -------
        self
        """
        self._check_params()
        self.n_channels_ = check_sequences(X, self.n_channels,
                                           layout=self.layout).n_channels
        return self

    def transform(self, X):
        """Features of the paths ``X``, one row per path."""
        check_is_fitted(self, "n_channels_")
        seqs = check_sequences(X, self.n_channels, layout=self.layout)
        if seqs.n_channels != self.n_channels_:
            raise ValueError(f"X has {seqs.n_channels} channels, but "
                             f"{type(self).__name__} was fitted on "
                             f"{self.n_channels_}.")
        return np.stack([self._features(seqs.path(i)) for i in range(seqs.n_paths)])

    def fit_transform(self, X, y=None):
        """Fit to the paths ``X`` and return their features."""
        return self.fit(X, y).transform(X)

    def set_output(self, *, transform=None):
        """Set the output container of :meth:`transform` (as in scikit-learn).

        Parameters
        ----------
        transform : {"default", "pandas", "polars"} or None

        Returns
        -------
        self
        """
        return super().set_output(transform=transform)

    def _check_params(self):
        pass

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.requires_fit = True
        return tags


class ResampledSeries(_SequenceTransformer):
    """Resample every path to ``n_points`` points and flatten it.

    Each channel is linearly interpolated at ``n_points`` equally spaced
    times of the path's own duration (its points are taken as equally spaced
    in time), so paths of different lengths give rows of the same width
    ``n_points * n_channels`` (the points one after the other).

    Parameters
    ----------
    n_points : int, default=32
    n_channels : int, optional
        Needed only for the flattened 2-D input form.
    layout : {"auto", "ntc", "nct"}, default="auto"
        Axis order of 3-D arrays and list entries (see
        :func:`skinfinite.flatten_sequences`).

    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite.benchmark import ResampledSeries
    >>> paths = [np.array([[0.0], [1.0]]), np.array([[0.0], [2.0], [0.0]])]
    >>> ResampledSeries(n_points=3).fit_transform(paths)
    array([[0. , 0.5, 1. ],
           [0. , 2. , 0. ]])
    """

    def __init__(self, n_points=32, n_channels=None, layout="auto"):
        self.n_points = n_points
        self.n_channels = n_channels
        self.layout = layout

    def _check_params(self):
        check_positive_int(self.n_points, "n_points")

    def _features(self, path):
        old = np.linspace(0.0, 1.0, len(path))
        new = np.linspace(0.0, 1.0, self.n_points)
        return np.column_stack([np.interp(new, old, channel) for channel in path.T]).ravel()


class SeriesSummary(_SequenceTransformer):
    """Summary statistics of every channel of every path.

    Per channel: mean, standard deviation, minimum, maximum, first value,
    last value and mean absolute increment; then the path's length.  The
    result has ``7 * n_channels + 1`` columns.

    Parameters
    ----------
    n_channels : int, optional
        Needed only for the flattened 2-D input form.
    layout : {"auto", "ntc", "nct"}, default="auto"
        Axis order of 3-D arrays and list entries (see
        :func:`skinfinite.flatten_sequences`).

    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite.benchmark import SeriesSummary
    >>> SeriesSummary().fit_transform([np.array([[0.0], [2.0], [1.0]])])
    array([[1.        , 0.81649658, 0.        , 2.        , 0.        ,
            1.        , 1.5       , 3.        ]])
    """

    def __init__(self, n_channels=None, layout="auto"):
        self.n_channels = n_channels
        self.layout = layout

    def _features(self, path):
        steps = np.abs(np.diff(path, axis=0)).mean(axis=0)
        stats = [path.mean(axis=0), path.std(axis=0), path.min(axis=0),
                 path.max(axis=0), path[0], path[-1], steps]
        return np.append(np.column_stack(stats).ravel(), len(path))
