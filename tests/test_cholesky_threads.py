"""The host Cholesky factorisation of large matrices runs on one BLAS thread.

OpenBLAS's threaded ``dpotrf`` crashes the process for orders from about
16000 on; the factorisation there is limited to one thread.  The limit is
checked here on a small matrix by lowering its threshold.
"""
import numpy as np
import pytest
from threadpoolctl import threadpool_info

from skinfinite._core import backend as backend_module
from skinfinite.linalg.cholesky import cholesky_with_jitter


def _blas_threads():
    return max(info["num_threads"] for info in threadpool_info()
               if info["user_api"] == "blas")


@pytest.mark.parametrize("threshold, serial", [(10, True), (10_000, False)])
def test_large_factorisations_use_one_blas_thread(monkeypatch, threshold,
                                                  serial):
    seen = []
    factor = backend_module.sp_linalg.cho_factor

    def recording(*args, **kwargs):
        seen.append(_blas_threads())
        return factor(*args, **kwargs)

    monkeypatch.setattr(backend_module, "SERIAL_CHOLESKY_FROM", threshold)
    monkeypatch.setattr(backend_module.sp_linalg, "cho_factor", recording)
    rng = np.random.default_rng(0)
    A = rng.standard_normal((40, 60))
    K = A @ A.T / 60
    (L, _), jitter = cholesky_with_jitter(K, alpha=1e-3)
    assert np.allclose(np.tril(L) @ np.tril(L).T, K + 1e-3 * np.eye(40))
    before = _blas_threads()
    assert seen[0] == (1 if serial else before)
    assert _blas_threads() == before    # the limit ends with the call
