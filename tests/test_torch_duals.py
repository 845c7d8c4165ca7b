"""Torch duals: float32, broadcasting, autograd against finite differences,
callables.  Their agreement with the compiled duals and partials, for every
activation and at extreme scales, is in test_activation_conformance.py."""
import numpy as np
import pytest

from skinfinite.activations.definitions import QuadratureActivation, get_activation

torch = pytest.importorskip("torch")
from skinfinite._torch.duals import (duals, expected_derivative_product,  # noqa: E402
                                     expected_product, torch_activation)

def _covariances(n=200, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    kxx = scale * rng.uniform(0.05, 2.0, n)
    kyy = scale * rng.uniform(0.05, 2.0, n)
    rho = rng.uniform(-1, 1, n)
    rho[:10] = 1.0
    rho[10:20] = -1.0
    rho[20:30] = 1.0 - 1e-9
    kxy = rho * np.sqrt(kxx * kyy)
    return kxx, kxy, kyy


@pytest.mark.parametrize("name", ["relu", "erf", "tanh", "cos"])
def test_float32(name):
    act = get_activation(name)
    kxx, kxy, kyy = _covariances(seed=1)
    V, Vd = act.dual(kxx, kxy, kyy)
    tv, tvd = duals(act, *(torch.tensor(a, dtype=torch.float32)
                           for a in (kxx, kxy, kyy)))
    assert tv.dtype == torch.float32
    np.testing.assert_allclose(tv.numpy(), V, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(tvd.numpy(), Vd, rtol=2e-4, atol=2e-4)


def test_broadcast_per_input_variances():
    act = get_activation("tanh")
    rng = np.random.default_rng(2)
    kx = rng.uniform(0.3, 1.5, (5, 1))
    ky = rng.uniform(0.3, 1.5, (1, 4))
    kxy = rng.uniform(-0.25, 0.25, (5, 4))
    V, Vd = act.dual(kx, kxy, ky)
    tv, tvd = duals(act, torch.tensor(kx), torch.tensor(kxy), torch.tensor(ky))
    assert tv.shape == (5, 4)
    np.testing.assert_allclose(tv.numpy(), V, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(tvd.numpy(), Vd, rtol=1e-12, atol=1e-13)


def _leaves(seed, rho_max=0.95):
    rng = np.random.default_rng(seed)
    kxx = rng.uniform(0.3, 1.5, 6)
    kyy = rng.uniform(0.3, 1.5, 6)
    kxy = rng.uniform(-rho_max, rho_max, 6) * np.sqrt(kxx * kyy)
    return [torch.tensor(a, requires_grad=True) for a in (kxx, kxy, kyy)]


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "abs", "erf", "sin",
                                  "cos", "tanh", "gelu"])
def test_gradcheck(name):
    act = get_activation(name)
    for fn in (expected_product, expected_derivative_product):
        assert torch.autograd.gradcheck(
            lambda a, b, c, fn=fn: fn(act, a, b, c), _leaves(3))


def test_callables_and_ufuncs():
    kxx, kxy, kyy = _covariances(50, seed=5)
    ref = QuadratureActivation(np.tanh, lambda x: 1 - np.tanh(x) ** 2)
    V, Vd = ref.dual(kxx, kxy, kyy)
    tv, tvd = duals(ref, *(torch.tensor(a) for a in (kxx, kxy, kyy)))
    np.testing.assert_allclose(tv.numpy(), V, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(tvd.numpy(), Vd, rtol=1e-12, atol=1e-12)
    tact = QuadratureActivation(lambda x: x * torch.sigmoid(x)
                                if isinstance(x, torch.Tensor)
                                else x / (1 + np.exp(-x)))
    V2 = tact.dual(kxx, kxy, kyy)[0]
    tv2 = expected_product(tact, *(torch.tensor(a) for a in (kxx, kxy, kyy)))
    np.testing.assert_allclose(tv2.numpy(), V2, rtol=1e-12, atol=1e-12)


def test_no_torch_equivalent_is_reported():
    act = QuadratureActivation(lambda x: np.tanh(np.asarray(x)), name="np_only")
    with pytest.raises(TypeError, match="torch equivalent"):
        torch_activation(act)
    act.torch_function = torch.tanh
    assert torch_activation(act) is torch.tanh


def test_inputs_without_grad_under_no_grad():
    with torch.no_grad():
        v = expected_product("gelu", torch.tensor([1.0], dtype=torch.float64),
                             0.5, 1.0)
    assert v.requires_grad is False
    np.testing.assert_allclose(v.numpy(),
                               get_activation("gelu").dual(1.0, 0.5, 1.0)[0],
                               rtol=1e-12)
