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
"""
from ._tabular import (CSVNotFoundError, Dataset, DatasetError, list_datasets, load_csv,
                       load_dataset)

__all__ = ["Dataset", "DatasetError", "CSVNotFoundError", "list_datasets",
           "load_dataset", "load_csv"]
