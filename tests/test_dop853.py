"""The Dormand-Prince tableau of the infinite-depth ResNet flow: order
conditions, and eighth-order convergence on an ODE with a known solution."""
import itertools

import numpy as np
import pytest

from skinfinite.recursions.dop853 import A, B, C, N_STAGES


def test_tableau_shape_and_consistency():
    assert A.shape == (N_STAGES, N_STAGES) and B.shape == C.shape == (N_STAGES,)
    assert np.all(np.triu(A) == 0)          # explicit
    np.testing.assert_allclose(A.sum(axis=1), C, atol=1e-15)


@pytest.mark.parametrize("k", range(1, 9))
def test_quadrature_conditions(k):
    # sum_i b_i c_i^(k-1) = 1/k: exact for polynomials of degree < 8
    assert np.dot(B, C ** (k - 1)) == pytest.approx(1 / k, abs=1e-14)


@pytest.mark.parametrize("k,m", [(k, m) for k in range(1, 8)
                                 for m in range(1, 8) if k + m <= 8])
def test_tree_conditions(k, m):
    # the trees [c^(k-1) [c^(m-1)]]: sum_ij b_i c_i^(k-1) a_ij c_j^(m-1)
    #   = 1 / (m (k + m))  (order k + m)
    value = B @ (C ** (k - 1) * (A @ C ** (m - 1)))
    assert value == pytest.approx(1 / (m * (k + m)), abs=1e-13)


def test_nested_tree_conditions():
    # b A A A ... c^(m-1) with p applications of A: 1 / (m (m+1) ... (m+p))
    for p, m in itertools.product(range(1, 7), range(1, 7)):
        if p + m > 8:
            continue
        v = C ** (m - 1)
        for _ in range(p):
            v = A @ v
        expected = 1.0 / np.prod(np.arange(m, m + p + 1))
        assert B @ v == pytest.approx(expected, abs=1e-13)


def _solve(f, y0, t1, steps):
    y, h = np.array(y0, dtype=float), t1 / steps
    for _ in range(steps):
        slopes = np.zeros((N_STAGES, y.size))
        for s in range(N_STAGES):
            slopes[s] = f(y + h * A[s, :s] @ slopes[:s])
        y = y + h * B @ slopes
    return y


def test_eighth_order_convergence():
    # y' = -y^2 and a rotation: y(t) = 1 / (1 + t), (cos t, sin t)
    def f(y):
        return np.array([-y[0] ** 2, -y[2], y[1]])

    def exact(t):
        return np.array([1 / (1 + t), np.cos(t), np.sin(t)])

    errors = [np.max(np.abs(_solve(f, [1.0, 1.0, 0.0], 10.0, n) - exact(10.0)))
              for n in (8, 16, 32)]
    orders = np.log2(np.array(errors[:-1]) / errors[1:])
    assert np.all(orders > 7.5), orders
