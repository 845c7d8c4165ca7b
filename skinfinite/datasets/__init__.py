"""Datasets for the benchmark: built-in tables and tables of your own.

The built-in datasets ship with scikit-learn, so nothing is downloaded:

=================  ==============  =========  ==========
name               task            samples    features
=================  ==============  =========  ==========
``breast_cancer``  classification  569        30
``wine``           classification  178        13
``iris``           classification  150        4
``digits``         classification  1797       64
``diabetes``       regression      442        10
=================  ==============  =========  ==========

:func:`load_dataset` loads one by name; :func:`load_csv` reads a CSV table of
your own and describes how it is preprocessed.  Both return a
:class:`Dataset`, and raise a :class:`DatasetError` (a ``ValueError``) when
the data cannot be used.

Two multivariate time-series classification datasets from the UEA archive
(Bagnall et al., 2018; Dau et al., 2019) ship with skinfinite, on their fixed
train/test split:

===================  =====  =====  ========  =======  ========
name                 train  test   channels  length   classes
===================  =====  =====  ========  =======  ========
``basic_motions``    40     40     6         100      4
``japanese_vowels``  270    370    12        7 to 29  9
===================  =====  =====  ========  =======  ========

:func:`load_basic_motions` and :func:`load_japanese_vowels` (or
:func:`load_timeseries_dataset` by name) return a :class:`TimeSeriesDataset`;
:func:`read_ts` reads any ``.ts`` file of the UEA & UCR archives.
"""
from ._tabular import (CSVNotFoundError, Dataset, DatasetError, list_datasets, load_csv,
                       load_dataset)
from ._timeseries import (UEA_CITATION, TimeSeriesDataset, list_timeseries_datasets,
                          load_basic_motions, load_japanese_vowels,
                          load_timeseries_dataset)
from ._ts_format import TSFormatError, TSHeader, read_ts

__all__ = ["Dataset", "DatasetError", "CSVNotFoundError", "list_datasets",
           "load_dataset", "load_csv", "TimeSeriesDataset", "UEA_CITATION",
           "list_timeseries_datasets", "load_timeseries_dataset", "load_basic_motions",
           "load_japanese_vowels", "TSFormatError", "TSHeader", "read_ts"]
