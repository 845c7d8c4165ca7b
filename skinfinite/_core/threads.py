"""How many threads the BLAS under NumPy and SciPy may use, and where.

The numba kernels run on their own threads; a threaded BLAS called between
them (or for many small products and factorisations in a row) makes each
call wait for its threads to wake up and compete with numba's for the same
cores.  On two cores, a selection on 500 samples took twice as long with the
BLAS threaded as with one thread (see ``SERIAL_BLAS_BELOW``); from a few
thousand rows on, the threads pay for themselves again.
"""
from contextlib import nullcontext

#: matrices of fewer rows than this are factorised on one BLAS thread by the
#: model selection (measured with asv_bench/benchmarks/bench_selection.py
#: on two cores: one thread was up to twice as fast at 500 rows, level at
#: 1000, and 30 % slower at 2000)
SERIAL_BLAS_BELOW = 1000

_controller = None


def one_blas_thread():
    """A context in which the BLAS runs on one thread.

    One ``threadpoolctl`` controller, made at the first call, serves every
    call: making one scans the loaded libraries, which costs about a
    millisecond each time (``threadpool_limits`` does it on every entry).
    """
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController
        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")


def blas_threads_for(rows):
    """:func:`one_blas_thread` for matrices of fewer than
    :data:`SERIAL_BLAS_BELOW` rows, else a context that changes nothing."""
    return one_blas_thread() if rows < SERIAL_BLAS_BELOW else nullcontext()
