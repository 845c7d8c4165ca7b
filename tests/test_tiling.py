"""Tiles bounded in time as well as memory; long computations announced."""
import textwrap
import warnings

import numpy as np
import pytest

from skinfinite import SignatureKernel
from skinfinite._core import tiling as _tiling
from skinfinite._core.tiling import (MAX_TILE_WORK, LongComputationWarning,
                                plan_block)
from skinfinite.kernels import NNGP

from ._signals import assert_ctrl_c_stops


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
    # the warning names the caller's line, not the package's
    monkeypatch.setattr(_tiling, "LONG_COMPUTATION", 0.0)
    with pytest.warns(LongComputationWarning) as record:
        NNGP(depth=2)(X[:10])
    assert record[0].filename == __file__


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
    assert_ctrl_c_stops(_LONG, busy_for=2.0, timeout=60)


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


# ----------------------------------------- deep series activations' memory
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_deep_series_memory_is_outputs_plus_tiles(rng):
    import tracemalloc

    import skinfinite
    from skinfinite.kernels import NTK
    X = rng.normal(size=(150, 3))
    kernel = NTK(depth=30, activation="tanh")
    budget = 2 ** 20
    with skinfinite.config_context(memory_budget=budget):
        # compile both paths first: numba's compiler allocates through
        # Python, and tracemalloc would count it
        kernel(X[:40])
        kernel(X[:40], eval_gradient=True)
        for eval_gradient in (False, True):
            tracemalloc.start()
            out = kernel(X, eval_gradient=eval_gradient)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            outputs = sum(a.nbytes for a in (out if eval_gradient else [out]))
            # the coefficients of every layer and input (30 x 150 x 384
            # floats, 14 MB) were held at once, twice while stacked
            assert peak < outputs + 4 * budget, (eval_gradient, peak, outputs)


def _spy_by_layers(monkeypatch):
    # counts the Grams that ran a range of layers at a time, so that a
    # comparison with the default budget cannot pass by taking the same path
    from skinfinite.engine import driver
    calls = []
    original = driver._gram_by_layers

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(driver, "_gram_by_layers", spy)
    return calls


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("activation", ["tanh", "gelu"])
@pytest.mark.parametrize("name", ["NNGP", "NTK"])
def test_deep_series_by_layers_equal_to_all_layers_at_once(
        rng, monkeypatch, activation, name):
    # panels and ranges of layers reorder no operation of a pair: the values
    # and gradients are bit for bit those of the coefficients of every layer
    # held at once (the default budget), for several panels and ranges
    import skinfinite
    from skinfinite import kernels
    kernel = getattr(kernels, name)(depth=9, activation=activation,
                                    weight_variance=1.7, bias_variance=0.2)
    X, Y = rng.normal(size=(70, 3)), rng.normal(size=(45, 3))
    Y[3] = X[5]
    ref = (kernel(X), kernel(X, Y), kernel.diag(X),
           *kernel(X, eval_gradient=True))
    calls = _spy_by_layers(monkeypatch)
    for budget in (2 ** 16, 2 ** 19):
        with skinfinite.config_context(memory_budget=budget):
            out = (kernel(X), kernel(X, Y), kernel.diag(X),
                   *kernel(X, eval_gradient=True))
        for a, b in zip(out, ref):
            np.testing.assert_array_equal(a, b)
    assert len(calls) == 6      # k(X), k(X, Y) and the gradient, twice


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_deep_series_by_layers_cross_gradients_and_layered(rng, monkeypatch):
    # the gradient of k(X, Y) through the engine, and an architecture whose
    # hidden layers depend on their index (the ranges pass it on)
    import skinfinite
    from skinfinite.engine.driver import gram
    from skinfinite.activations.definitions import get_activation
    from skinfinite.recursions.fully_connected import FullyConnectedSpec

    from ._layered_example import DecayingNTK
    X, Y = rng.normal(size=(60, 2)), rng.normal(size=(50, 2))
    spec = FullyConnectedSpec(9, get_activation("tanh"), 1.4, 0.1)
    layered = DecayingNTK(depth=9, activation="gelu")
    ref = (gram(X, Y, spec, eval_gradient=True), layered(X), layered(X, Y))
    calls = _spy_by_layers(monkeypatch)
    with skinfinite.config_context(memory_budget=2 ** 16):
        out = (gram(X, Y, spec, eval_gradient=True), layered(X),
               layered(X, Y))
    assert len(calls) == 3
    for key in ("nngp", "ntk", "nngp_gradient", "ntk_gradient"):
        np.testing.assert_array_equal(out[0][key], ref[0][key])
    np.testing.assert_array_equal(out[1], ref[1])
    np.testing.assert_array_equal(out[2], ref[2])
