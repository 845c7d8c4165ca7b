"""Gram matrices and kernel solvers on a Dask cluster.

Dask is imported only when a function here needs it; without the
"distributed" extra, importing this package works and the functions raise
an ImportError that says how to install it.
"""
from ._cluster import check_workers, connect, current_client
from .gram import dask_gram
from .operators import (DaskKernelOperator, DaskNystroemOperator,
                        DaskNystroemPreconditioner)

__all__ = ["DaskKernelOperator", "DaskNystroemOperator",
           "DaskNystroemPreconditioner", "check_workers",
           "connect", "current_client", "dask_gram"]
