"""How many threads the BLAS under NumPy and SciPy may use, and where.

The numba kernels run on their own threads; a threaded BLAS called between
them (or for many small products and factorisations in a row) makes each
call wait for its threads to wake up and compete with numba's for the same
cores.  On two cores, a selection on 500 samples took twice as long with the
BLAS threaded as with one thread (see ``SERIAL_BLAS_BELOW``); from a few
thousand rows on, the threads pay for themselves again.
"""
import sys
from contextlib import nullcontext

#: matrices of fewer rows than this are factorised on one BLAS thread by the
#: model selection (measured with asv_bench/benchmarks/bench_selection.py
#: on two cores: one thread was up to twice as fast at 500 rows, level at
#: 1000, and 30 % slower at 2000)
SERIAL_BLAS_BELOW = 1000

_controller = None
_modules_seen = -1


def _blas_controller():
    """The ``threadpoolctl`` controller of the libraries loaded now.

    Making one scans the loaded libraries, a few milliseconds each time
    (``threadpool_limits`` does it on every entry), so one is kept; it is
    made again after an import, since a module imported later may load a
    BLAS of its own (SciPy's OpenBLAS is not NumPy's) that a kept one would
    not limit.
    """
    global _controller, _modules_seen
    if _controller is None or len(sys.modules) != _modules_seen:
        from threadpoolctl import ThreadpoolController
        _controller = ThreadpoolController()
        _modules_seen = len(sys.modules)
    return _controller


def one_blas_thread():
    """A context in which every loaded BLAS runs on one thread."""
    return _blas_controller().limit(limits=1, user_api="blas")


def blas_threads_for(rows):
    """:func:`one_blas_thread` for matrices of fewer than
    :data:`SERIAL_BLAS_BELOW` rows, else a context that changes nothing."""
    return one_blas_thread() if rows < SERIAL_BLAS_BELOW else nullcontext()
