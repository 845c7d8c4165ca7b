#!/usr/bin/env python
"""Does the host's threaded Cholesky factorisation survive order n?

    python asv_bench/peers/cholesky_threads.py 17000 2

factors a random positive definite matrix of order n with SciPy under the
given number of BLAS threads and prints the time; a segmentation fault ends
the process instead.  OpenBLAS 0.3.30 (NumPy and SciPy wheels) crashed here
from n of about 16000 with 2 threads, which is why the package factors
matrices above ``skinfinite._core.backend.SERIAL_CHOLESKY_FROM`` on one
thread.
"""
import sys
import time

import numpy as np
import scipy.linalg as sl
from threadpoolctl import threadpool_limits

n, threads = int(sys.argv[1]), int(sys.argv[2])
A = np.random.default_rng(0).standard_normal((n, 64))
K = A @ A.T / 64
K[np.diag_indices(n)] += 1.0
start = time.perf_counter()
with threadpool_limits(threads, user_api="blas"):
    sl.cholesky(K, lower=True, overwrite_a=True, check_finite=False)
print(f"n={n} threads={threads}: factored in "
      f"{time.perf_counter() - start:.1f} s", flush=True)
