"""Kernels cached on disk by numba: same values as kernels compiled for one
activation, and loaded from the cache by a fresh process."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from numba import njit

from skinfinite.activations import families as _compiled
from skinfinite.activations.definitions import Erf, LeakyReLU, ReLU, Sin, Tanh
from skinfinite.kernels import NNGP, NTK, ResNetNTK
from skinfinite.engine.driver import gram
from skinfinite.recursions.fully_connected import FullyConnectedSpec
from skinfinite.activations.duals import (erf_dual, erf_partials, piecewise_linear_dual,
                               piecewise_linear_partials, series_dual,
                               series_partials, trig_dual, trig_partials)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _uncached(base, dual, partials):
    """The same activation, with duals that are not one of the cached
    families: its kernels are compiled for it alone, as all were before."""
    @njit(inline="always")
    def wrapped(kxx, kxy, kyy, r, ax, ay, param):
        return dual(kxx, kxy, kyy, r, ax, ay, param)

    @njit(inline="always")
    def wrapped_p(kxx, kxy, kyy, r, ax, ay, param):
        return partials(kxx, kxy, kyy, r, ax, ay, param)

    class Uncached(type(base)):
        _scalar_dual = staticmethod(wrapped)
        _scalar_partials = staticmethod(wrapped_p)

        def __init__(self):
            self.__dict__.update(base.__dict__)
    return Uncached()


_ROUNDING = dict(rtol=1e-13, atol=1e-15)

# Each case compiles a network's kernels for an activation of its own,
# about 20 s on two cores; the activations of the default estimators (ReLU,
# erf) run by default, the other families with the slow tests.
_SLOW = pytest.mark.slow
CASES = [
    pytest.param(ReLU(), piecewise_linear_dual, piecewise_linear_partials,
                 id="relu"),
    pytest.param(LeakyReLU(0.2), piecewise_linear_dual,
                 piecewise_linear_partials, id="leaky_relu", marks=_SLOW),
    pytest.param(Erf(), erf_dual, erf_partials, id="erf"),
    pytest.param(Sin(), trig_dual, trig_partials, id="sin", marks=_SLOW),
    pytest.param(Tanh(), series_dual, series_partials, id="tanh",
                 marks=_SLOW),
]


@pytest.mark.parametrize("act, dual, partials", CASES)
def test_cached_kernels_equal_kernels_compiled_per_activation(act, dual,
                                                              partials, rng):
    other = _uncached(act, dual, partials)
    assert _compiled.dual_family(act) is not None
    assert _compiled.dual_family(other) is None
    X, Y = rng.normal(size=(9, 3)), rng.normal(size=(7, 3))
    for a, b in [(X, None), (X, Y)]:
        spec = FullyConnectedSpec(3, act, 1.5, 0.1)
        ref = FullyConnectedSpec(3, other, 1.5, 0.1)
        # Two compilations may vectorise the pair loop differently, which
        # moves the last bits of a few erf values; rounding-level
        # tolerances still tell a wrong dual or parameter apart.
        np.testing.assert_allclose(gram(a, b, spec)["ntk"],
                                   gram(a, b, ref)["ntk"], **_ROUNDING)
    res = gram(X, None, spec, eval_gradient=True)
    res_ref = gram(X, None, ref, eval_gradient=True)
    for key in res:
        np.testing.assert_allclose(res[key], res_ref[key], **_ROUNDING)
    np.testing.assert_array_equal(act.dual_partials(1.0, 0.3, 2.0),
                                  other.dual_partials(1.0, 0.3, 2.0))
    r1 = ResNetNTK(depth=3, activation=act)(X, Y)
    r2 = ResNetNTK(depth=3, activation=other)(X, Y)
    np.testing.assert_allclose(r1, r2, **_ROUNDING)


def _numpy_reference(X, dual, depth, sw2, sb2):
    # the per-layer recursion on whole matrices, NumPy only
    K = sw2 * X @ X.T / X.shape[1] + sb2
    T = K.copy()
    for _ in range(depth):
        d = np.diag(K)
        V, Vd = dual(d[:, None], K, d[None, :])
        T = sw2 * Vd * T
        K = sw2 * V + sb2
        T = T + K
    return K, T


def _relu_dual(kxx, kxy, kyy):
    r = np.sqrt(kxx * kyy)
    c = np.clip(kxy / r, -1, 1)
    theta = np.arccos(c)
    return (r * (np.sin(theta) + (np.pi - theta) * c) / (2 * np.pi),
            (np.pi - theta) / (2 * np.pi))


def _erf_dual(kxx, kxy, kyy):
    a, b = 1 + 2 * kxx, 1 + 2 * kyy
    return (2 / np.pi * np.arcsin(2 * kxy / np.sqrt(a * b)),
            4 / np.pi / np.sqrt(a * b - 4 * kxy ** 2))


@pytest.mark.parametrize("act, dual", [("relu", _relu_dual),
                                       ("erf", _erf_dual)])
def test_cached_kernels_match_a_numpy_recursion(act, dual, rng):
    X = rng.normal(size=(8, 3))
    K, T = _numpy_reference(X, dual, 3, 1.5, 0.1)
    kw = dict(depth=3, activation=act, weight_variance=1.5, bias_variance=0.1)
    np.testing.assert_allclose(NNGP(**kw)(X), K, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(NTK(**kw)(X), T, rtol=1e-13, atol=1e-14)


def test_source_stamp_follows_the_sources(tmp_path, monkeypatch):
    from skinfinite._core import compiled
    pkg = tmp_path / "pkg"
    (pkg / "_core").mkdir(parents=True)
    (pkg / "_core" / "compiled.py").write_text("x = 1\n")
    (pkg / "sub").mkdir()
    (pkg / "sub" / "a.py").write_text("y = 1\n")
    monkeypatch.setattr(compiled, "__file__", str(pkg / "_core" / "compiled.py"))
    first = compiled._source_stamp()
    assert compiled._source_stamp() == first
    (pkg / "sub" / "a.py").write_text("y = 2\n")
    assert compiled._source_stamp() != first


_PROBE = textwrap.dedent("""
    import json, time
    import numpy as np
    t0 = time.perf_counter()
    from skinfinite.kernels import NTK
    from skinfinite.engine.cpu import fully_connected as _fc_kernels
    X = np.random.default_rng(0).normal(size=(50, 4))
    NTK(depth=2, activation="{act}")(X)
    NTK(depth=2, activation="{act}")(X, eval_gradient=True)
    values, gradients = _fc_kernels._CACHED
    print(json.dumps(dict(
        hits=sum(values.stats.cache_hits.values())
        + sum(gradients.stats.cache_hits.values()),
        misses=sum(values.stats.cache_misses.values())
        + sum(gradients.stats.cache_misses.values()))))
""")


@pytest.mark.slow
@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_a_fresh_process_loads_the_kernels_from_disk(act, tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))

    def run():
        out = subprocess.run([sys.executable, "-c", _PROBE.format(act=act)],
                             cwd=ROOT, env=env, capture_output=True,
                             text=True, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])
    first = run()
    assert first["misses"] == 2
    second = run()
    assert second == {"hits": 2, "misses": 0}
