"""Tiles bounded in time as well as memory; long computations announced."""
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest

from skinfinite import SignatureKernel
from skinfinite._core import tiling as _tiling
from skinfinite._core.tiling import (MAX_TILE_WORK, LongComputationWarning,
                                plan_block)
from skinfinite.kernels import NNGP

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_tiles_are_bounded_in_work():
    rows, cols = plan_block(3000, 3000, 8.0, symmetric=True,
                            work_per_pair=2000.0)
    assert rows * cols * 2000 <= MAX_TILE_WORK
    assert rows * cols >= 1024
    # without a work estimate only the memory budget counts
    assert plan_block(3000, 3000, 8.0, symmetric=True) == (3000, 3000)


def test_tiles_in_time_keep_results(rng):
    X = rng.normal(size=(300, 3))
    kernel = NNGP(depth=600)
    K = kernel(X)
    rows, _ = plan_block(300, 300, 8.0, True, work_per_pair=600.0)
    assert rows < 300          # several tiles
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(K[:50, 100:], kernel(X[:50], X[100:]))


def test_hours_of_work_warn_before_starting(rng, monkeypatch):
    # the estimate depends on the thread count: fix the threshold low enough
    # for any machine
    monkeypatch.setattr(_tiling, "LONG_COMPUTATION", 60.0)
    paths = rng.normal(size=(2, 200, 3)).cumsum(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LongComputationWarning)
        with pytest.raises(LongComputationWarning, match="minutes"):
            SignatureKernel(dyadic_order=12)(paths)
    X = rng.normal(size=(3000, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error", LongComputationWarning)
        with pytest.raises(LongComputationWarning, match="fewer layers"):
            NNGP(depth=20000)(X)


_LONG = textwrap.dedent("""
    import numpy as np
    from skinfinite.kernels import NNGP
    X = np.random.default_rng(0).normal(size=(1500, 3))
    NNGP(depth=3)(X[:5])                  # compile (or load) first
    print("ready", flush=True)
    NNGP(depth=20000)(X)                  # about a minute, one tile before
    print("finished", flush=True)
""")


@pytest.mark.slow
def test_ctrl_c_stops_a_long_gram_within_seconds():
    proc = subprocess.Popen([sys.executable, "-c", _LONG], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(2.0)
        proc.send_signal(signal.SIGINT)
        sent = time.perf_counter()
        _, err = proc.communicate(timeout=60)
        waited = time.perf_counter() - sent
    finally:
        proc.kill()
    assert "KeyboardInterrupt" in err
    assert waited < 5.0, waited


@pytest.mark.parametrize("model", ["nngp", "ntk"])
def test_predict_std_is_tiled(model, rng):
    import tracemalloc

    import skinfinite
    from skinfinite.models import NNGPRegressor, NTKRegressor
    cls = NNGPRegressor if model == "nngp" else NTKRegressor
    X = rng.normal(size=(200, 3))
    y = X[:, 0] + 0.1 * rng.normal(size=200)
    est = cls(depth=2, alpha=0.1).fit(X, y)
    T = rng.normal(size=(20000, 3))
    mean_ref, std_ref = est.predict(T[:300], return_std=True)
    budget = 2 ** 20
    with skinfinite.config_context(memory_budget=budget):
        tracemalloc.start()
        mean, std = est.predict(T, return_std=True)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    np.testing.assert_allclose(mean[:300], mean_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(std[:300], std_ref, rtol=1e-10, atol=1e-12)
    outputs = mean.nbytes + std.nbytes
    # one (20000, 200) array alone would take 32 MB
    assert peak < 2 * outputs + 8 * budget, peak


def test_predict_cov_too_large_fails_up_front(rng):
    import time

    from skinfinite.models import NNGPRegressor
    X = rng.normal(size=(20, 2))
    est = NNGPRegressor(depth=1).fit(X, X[:, 0])
    T = np.zeros((10 ** 7, 2))
    start = time.perf_counter()
    with pytest.raises(MemoryError, match="return_std=True"):
        est.predict(T, return_cov=True)
    assert time.perf_counter() - start < 5.0


def test_gradient_memory_is_outputs_plus_tiles(rng):
    import tracemalloc

    import skinfinite
    from skinfinite.kernels import NTK
    X = rng.normal(size=(1200, 3))
    kernel = NTK(depth=2)
    budget = 2 ** 20
    with skinfinite.config_context(memory_budget=budget):
        K, G = kernel(X[:300], eval_gradient=True)     # compile first
        tracemalloc.start()
        K, G = kernel(X, eval_gradient=True)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    outputs = K.nbytes + G.nbytes
    # both kernels and both gradients at full size took twice the outputs
    assert peak < outputs + 4 * budget, (peak, outputs)
