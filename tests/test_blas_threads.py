"""Where the BLAS runs on one thread (see ``skinfinite._core.threads``).

OpenBLAS's threaded ``dpotrf`` crashes the process for orders from about
16000 on; the host Cholesky factorisation there is limited to one thread.
The model selection's many small factorisations run on one thread, where
threads wait more than they help.  The limits are checked here on small
matrices by moving their thresholds.
"""
import numpy as np
import pytest
from threadpoolctl import threadpool_info

from skinfinite._core import backend as backend_module
from skinfinite._core import threads
from skinfinite.linalg.cholesky import cholesky_with_jitter
from skinfinite.models import NNGPRegressorCV
from skinfinite.models import selection


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


@pytest.mark.parametrize("threshold, serial", [(10_000, True), (10, False)])
def test_selection_factorises_small_matrices_on_one_blas_thread(
        monkeypatch, threshold, serial):
    seen = []
    linalg = selection.scipy.linalg
    eigh, potrf = linalg.eigh, linalg.lapack.dpotrf

    def recording(f):
        def wrapped(*args, **kwargs):
            seen.append(_blas_threads())
            return f(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(threads, "SERIAL_BLAS_BELOW", threshold)
    monkeypatch.setattr(linalg, "eigh", recording(eigh))
    monkeypatch.setattr(linalg.lapack, "dpotrf", recording(potrf))
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    before = _blas_threads()
    # a screen (20 of the 40 samples) and finalists rescored on all of them
    NNGPRegressorCV(depths=(1, 2), input_scales=(1.0,), screen_size=20).fit(
        X, X[:, 0])
    assert len(seen) >= 3
    assert set(seen) == {1 if serial else before}
    assert _blas_threads() == before    # the limit ends with the selection
