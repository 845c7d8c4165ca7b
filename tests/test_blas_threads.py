"""Where the BLAS runs on one thread (see ``skinfinite._core.threads``).

OpenBLAS's threaded ``dpotrf`` crashes the process for orders from about
16000 on; the host Cholesky factorisation there is limited to one thread.
The model selection's many small factorisations run on one thread, where
threads wait more than they help.  The limits are checked here on small
matrices by moving their thresholds.
"""
import os
import subprocess
import sys

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


_LATE_BLAS_SCRIPT = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("threads", sys.argv[1])
threads = importlib.util.module_from_spec(spec)
spec.loader.exec_module(threads)
import numpy
with threads.one_blas_thread():      # the controller sees NumPy's BLAS only
    pass
import scipy.linalg                  # SciPy loads an OpenBLAS of its own
from threadpoolctl import threadpool_info, threadpool_limits
threadpool_limits(limits=2, user_api="blas")
blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
assert len(blas) >= 2, blas
assert all(i["num_threads"] == 2 for i in blas), blas
with threads.one_blas_thread():
    inside = {i["filepath"]: i["num_threads"] for i in threadpool_info()
              if i["user_api"] == "blas"}
print(inside)
assert set(inside.values()) == {1}, inside
"""


def test_a_blas_loaded_after_the_first_limit_is_limited_too(tmp_path):
    # NumPy's and SciPy's wheels each bring their own OpenBLAS; a limit
    # taken before SciPy's was loaded must still reach it.  The module is
    # loaded from its file so that nothing but NumPy is imported first.
    script = tmp_path / "late_blas.py"
    script.write_text(_LATE_BLAS_SCRIPT)
    env = {k: v for k, v in os.environ.items()
           if not k.endswith("_NUM_THREADS")}
    done = subprocess.run([sys.executable, str(script), threads.__file__],
                          capture_output=True, text=True, env=env)
    if "len(blas) >= 2" in done.stderr:
        pytest.skip("NumPy and SciPy share one BLAS library here")
    assert done.returncode == 0, done.stderr
