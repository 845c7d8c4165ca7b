"""Recognising Dask collections without importing Dask."""

__all__ = ["is_dask"]


def is_dask(a):
    """Whether ``a`` is a Dask collection (array, dataframe, series).

    A check of the type's module only, so that NumPy inputs never pay for
    importing Dask, and a process without Dask answers False.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite._core.collections import is_dask
    >>> is_dask(np.ones(3)), is_dask(None)
    (False, False)
    """
    module = type(a).__module__
    return (module == "dask" or module.startswith("dask.")) and hasattr(
        a, "__dask_graph__")
