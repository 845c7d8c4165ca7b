"""Large signature-kernel solves run in bands of grid rows: bitwise the same
values, and Ctrl-C honoured inside one pair's grid."""
import textwrap
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process.kernels import RBF

from skinfinite import SignatureKernel
from skinfinite.kernels import NeuralSignatureKernel
from skinfinite.recursions import goursat as _goursat
from skinfinite.recursions import neural_goursat as _neural_goursat

from ._signals import assert_ctrl_c_stops


@pytest.fixture
def ragged(rng):
    return [rng.normal(size=(length, 2)) * 0.3 for length in (5, 2, 7, 3, 6)]


def _banded(monkeypatch, module, rows):
    monkeypatch.setattr(module, "band_rows", lambda *args, **kw: rows)


def test_band_rows_only_above_the_work_bound():
    # a tile of a Gram of 100 paths of length 100 at dyadic_order 1: one call
    assert _goursat.band_rows(1225, 100, 100, 1) == 0
    # one pair of paths of length 200 at dyadic_order 12: a few rows a call
    rows = _goursat.band_rows(3, 200, 200, 12)
    assert 1 <= rows <= 8
    assert rows * 16 * (199 << 12) <= 2 * _goursat.BAND_WORK


@pytest.mark.parametrize("static", ["linear", "rbf", RBF(0.7)])
@pytest.mark.parametrize("scheme", ["cayley", "taylor"])
@pytest.mark.parametrize("rows", [1, 3])
def test_bands_equal_one_solve_bitwise(static, scheme, rows, ragged,
                                       monkeypatch):
    # 3 rows a band ends bands inside and at the ends of coarse rows
    for order in (0, 2):
        kernel = SignatureKernel(static_kernel=static, scheme=scheme,
                                 dyadic_order=order)
        K, dK = kernel(ragged, eval_gradient=True)
        K_xy = kernel(ragged[:2], ragged)
        K_norm = kernel.set_params(normalize=True)(ragged)
        kernel.set_params(normalize=False)
        with monkeypatch.context() as m:
            _banded(m, _goursat, rows)
            np.testing.assert_array_equal(kernel(ragged), K)
            K_b, dK_b = kernel(ragged, eval_gradient=True)
            np.testing.assert_array_equal(K_b, K)
            np.testing.assert_array_equal(dK_b, dK)
            np.testing.assert_array_equal(kernel(ragged[:2], ragged), K_xy)
            np.testing.assert_array_equal(
                kernel.set_params(normalize=True)(ragged), K_norm)
            kernel.set_params(normalize=False)


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_neural_bands_equal_one_solve_bitwise(activation, ragged,
                                              monkeypatch):
    for order in (0, 2):
        kernel = NeuralSignatureKernel(activation=activation,
                                       dyadic_order=order)
        with warnings.catch_warnings():
            # coarse orders warn that they are not converged: not the point
            warnings.simplefilter("ignore", ConvergenceWarning)
            K = kernel(ragged)
            K_xy = kernel(ragged[:2], ragged)
            with monkeypatch.context() as m:
                _banded(m, _neural_goursat, 3)
                np.testing.assert_array_equal(kernel(ragged), K)
                np.testing.assert_array_equal(kernel(ragged[:2], ragged),
                                              K_xy)


_LONG = textwrap.dedent("""
    import warnings
    import numpy as np
    from skinfinite import SignatureKernel
    warnings.simplefilter("ignore")
    X = np.random.default_rng(0).normal(size=(2, 200, 3)).cumsum(axis=1)
    kernel = SignatureKernel(dyadic_order=12, layout="ntc")
    # compile (or load) the banded solver first, on short paths in bands
    # of one row: compiling it after "ready" would be timed as the stop
    from skinfinite.recursions import goursat
    band_rows = goursat.band_rows
    goursat.band_rows = lambda *args, **kw: 1
    kernel(X[:, :4])
    goursat.band_rows = band_rows
    print("ready", flush=True)
    kernel(X)                            # hours: one tile of 3 pairs
    print("finished", flush=True)
""")


@pytest.mark.slow
def test_ctrl_c_stops_one_large_signature_pair_within_seconds():
    assert_ctrl_c_stops(_LONG, busy_for=3.0, timeout=120)
