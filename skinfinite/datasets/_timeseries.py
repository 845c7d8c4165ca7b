"""Multivariate time-series classification datasets shipped with skinfinite.

Both come from the UEA multivariate time-series classification archive
(Bagnall et al., 2018), part of the UEA & UCR archives
(https://www.timeseriesclassification.com; Dau et al., 2019), and are read
from copies of the archive's ``.ts`` files with :func:`read_ts`, on their
fixed train/test split.
"""
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from ._tabular import CLASSIFICATION, DatasetError
from ._ts_format import read_ts

__all__ = ["UEA_CITATION", "TimeSeriesDataset", "TIMESERIES_DATASETS",
           "list_timeseries_datasets", "load_timeseries_dataset",
           "load_basic_motions", "load_japanese_vowels"]

UEA_CITATION = (
    "A. Bagnall, H. A. Dau, J. Lines, M. Flynn, J. Large, A. Bostrom, P. Southam "
    "and E. Keogh (2018). The UEA multivariate time series classification archive, "
    "2018. arXiv:1811.00075.\n"
    "H. A. Dau, A. Bagnall, K. Kamgar, C.-C. M. Yeh, Y. Zhu, S. Gharghabi, "
    "C. A. Ratanamahatana and E. Keogh (2019). The UCR time series archive. "
    "IEEE/CAA Journal of Automatica Sinica 6(6), 1293-1305.")


@dataclass
class TimeSeriesDataset:
    """A time-series classification problem with its fixed train/test split.

    Attributes
    ----------
    name : str
    X_train, X_test : ndarray of shape (n, length, n_channels) or list of ndarray
        A 3-D array when all series have the same length, else a list of
        ``(length_i, n_channels)`` arrays.
    y_train, y_test : ndarray of str
        Class labels as written in the archive's files.
    description : str
        The description shipped with the data.
    citation : str
        References to cite when using the data.
    """

    name: str
    X_train: object
    y_train: np.ndarray
    X_test: object
    y_test: np.ndarray
    description: str = field(default="", repr=False)
    citation: str = field(default="", repr=False)

    @property
    def task(self):
        """Always ``"classification"`` for the shipped datasets."""
        return CLASSIFICATION

    @property
    def classes(self):
        """Sorted class labels of the training split."""
        return np.unique(self.y_train)

    @property
    def n_channels(self):
        return self.X_train[0].shape[-1]

    @property
    def lengths(self):
        """Lengths of the training and test series, as two integer arrays."""
        return tuple(np.array([len(x) for x in X]) for X in (self.X_train, self.X_test))


def _load_uea(problem, key, extra_citation=""):
    splits = []
    for split in ("TRAIN", "TEST"):
        source = resources.files(__package__).joinpath("data", f"{problem}_{split}.ts")
        with resources.as_file(source) as path:
            splits.append(read_ts(path, return_header=True))
    (X_train, y_train, header), (X_test, y_test, _) = splits
    citation = UEA_CITATION + ("\n" + extra_citation if extra_citation else "")
    return TimeSeriesDataset(key, X_train, y_train, X_test, y_test,
                             description=header.description, citation=citation)


def load_basic_motions():
    """Load BasicMotions: smart-watch motion recordings in four activities.

    Four students wore a smart watch recording a 3-D accelerometer and a 3-D
    gyroscope (6 channels) at 10 Hz for 10 s (length 100) while standing,
    walking, running and playing badminton.  40 training and 40 test series,
    10 per class in each.  From the UEA multivariate time-series
    classification archive (Bagnall et al., 2018; Dau et al., 2019; see
    :data:`UEA_CITATION`).

    Returns
    -------
    data : TimeSeriesDataset
        ``X_train`` and ``X_test`` of shape (40, 100, 6); labels ``Standing``,
        ``Walking``, ``Running``, ``Badminton``.

    Examples
    --------
    >>> from skinfinite.datasets import load_basic_motions
    >>> data = load_basic_motions()
    >>> data.X_train.shape, data.X_test.shape, data.classes.tolist()
    ((40, 100, 6), (40, 100, 6), ['Badminton', 'Running', 'Standing', 'Walking'])
    """
    return _load_uea("BasicMotions", "basic_motions")


def load_japanese_vowels():
    """Load JapaneseVowels: nine speakers uttering the vowels /ae/.

    Nine male Japanese speakers were recorded; each utterance is a series of
    12 linear-prediction cepstral coefficients (12 channels) of length 7 to 29
    (the series are ragged).  The task is to recognise the speaker (labels
    ``"1"`` to ``"9"``).  270 training series (30 per speaker) and 370 test
    series (24 to 88 per speaker).  From the UEA multivariate time-series
    classification archive (Bagnall et al., 2018; Dau et al., 2019; see
    :data:`UEA_CITATION`); originally M. Kudo, J. Toyama and M. Shimbo (1999),
    "Multidimensional curve classification using passing-through regions",
    Pattern Recognition Letters 20(11-13), 1103-1111, in the UCI repository.

    Returns
    -------
    data : TimeSeriesDataset
        ``X_train`` and ``X_test`` are lists of ``(length_i, 12)`` arrays.

    Examples
    --------
    >>> from skinfinite.datasets import load_japanese_vowels
    >>> data = load_japanese_vowels()
    >>> len(data.X_train), len(data.X_test), data.n_channels
    (270, 370, 12)
    """
    return _load_uea("JapaneseVowels", "japanese_vowels", extra_citation=(
        "M. Kudo, J. Toyama and M. Shimbo (1999). Multidimensional curve "
        "classification using passing-through regions. Pattern Recognition "
        "Letters 20(11-13), 1103-1111."))


#: Shipped time-series datasets: name -> loader.
TIMESERIES_DATASETS = {
    "basic_motions": load_basic_motions,
    "japanese_vowels": load_japanese_vowels,
}


def list_timeseries_datasets():
    """Return the names of the shipped time-series datasets.

    Examples
    --------
    >>> from skinfinite.datasets import list_timeseries_datasets
    >>> list_timeseries_datasets()
    ['basic_motions', 'japanese_vowels']
    """
    return list(TIMESERIES_DATASETS)


def load_timeseries_dataset(name):
    """Load a shipped time-series dataset by name.

    Parameters
    ----------
    name : str
        One of :func:`list_timeseries_datasets` (case and ``-``/``_``
        insensitive).

    Returns
    -------
    data : TimeSeriesDataset

    Raises
    ------
    DatasetError
        If the name is unknown; the message lists the valid names.

    Examples
    --------
    >>> from skinfinite.datasets import load_timeseries_dataset
    >>> load_timeseries_dataset("basic-motions").name
    'basic_motions'
    """
    key = str(name).strip().lower().replace("-", "_")
    if key not in TIMESERIES_DATASETS:
        raise DatasetError(f"Unknown time-series dataset {name!r}; valid names are: "
                           f"{', '.join(TIMESERIES_DATASETS)}.")
    return TIMESERIES_DATASETS[key]()
