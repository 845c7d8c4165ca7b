"""Tests of the convolutional deep kernel machine (image inputs)."""
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits

torch = pytest.importorskip("torch")

from skinfinite._torch import conv_dkm as _conv_dkm, dkm as _dkm  # noqa: E402
from skinfinite.activations.definitions import get_activation  # noqa: E402
from skinfinite.models import (DeepKernelMachineClassifier,  # noqa: E402
                               DeepKernelMachineRegressor)

SW2, SB2 = 2.0, 0.1


def _identity(G):
    return G


def _explicit_patch(image, r, s, f):
    """The f x f patch of ``image`` (H, W, C) centred at (r, s), zeros
    outside, flattened (rows, columns, channels)."""
    H, W, C = image.shape
    h = f // 2
    out = np.zeros((f, f, C))
    for a in range(f):
        for b in range(f):
            rr, ss = r + a - h, s + b - h
            if 0 <= rr < H and 0 <= ss < W:
                out[a, b] = image[rr, ss]
    return out.ravel()


@pytest.mark.parametrize("f", [1, 3, 5])
def test_image_patches_against_loops(rng, f):
    images = rng.normal(size=(2, 4, 5, 2))
    patches = _conv_dkm.image_patches(images, f)
    for n in range(2):
        for r in range(4):
            for s in range(5):
                np.testing.assert_array_equal(
                    patches[n, r, s], _explicit_patch(images[n], r, s, f))


def test_sampled_patches_are_distinct_image_patches(rng):
    images = rng.integers(0, 2, size=(3, 4, 4, 1)).astype(float)
    Z = _conv_dkm.sample_patches(images, 20, 3, rng)
    assert Z.shape == (20, 9)
    assert len(np.unique(Z, axis=0)) == 20
    every = _conv_dkm.image_patches(images, 3).reshape(-1, 9)
    assert all((every == z).all(1).any() for z in Z)


def test_patch_blocks_against_explicit_patches(rng):
    f, images = 3, rng.normal(size=(2, 4, 5, 2))
    Z = rng.normal(size=(6, f * f * 2))
    G = _conv_dkm.patch_blocks(torch.as_tensor(Z), torch.as_tensor(images),
                               f, SW2, SB2)
    m = Z.shape[1]
    np.testing.assert_allclose(G.ii.numpy(), SW2 * Z @ Z.T / m + SB2)
    for n in range(2):
        for r in range(4):
            for s in range(5):
                p = _explicit_patch(images[n], r, s, f)
                np.testing.assert_allclose(G.ti[n, r, s].numpy(),
                                           SW2 * Z @ p / m + SB2)
                np.testing.assert_allclose(G.t[n, r, s].numpy(),
                                           SW2 * p @ p / m + SB2)


def _feature_blocks(rng, B=2, H=4, W=5, P=6, N=7):
    """Gram blocks of explicit features: inducing (P, N), batch (B, H, W, N)."""
    phi_i = rng.normal(size=(P, N))
    phi_t = rng.normal(size=(B, H, W, N))
    G = _dkm.Blocks(torch.as_tensor(phi_i @ phi_i.T / N),
                    torch.as_tensor(phi_t @ phi_i.T / N),
                    torch.as_tensor((phi_t ** 2).sum(-1) / N))
    return G, phi_i, phi_t


def test_convolution_map_is_the_covariance_of_convolved_features(rng):
    """The mixed blocks equal the Grams of explicitly convolved features:
    a batch pixel's output is its zero-padded neighbourhood, an inducing
    point's the neighbourhood its mix ``C_d`` assigns it."""
    f, h = 3, 1
    G, phi_i, phi_t = _feature_blocks(rng)
    B, H, W, N = phi_t.shape
    P = phi_i.shape[0]
    C = rng.normal(size=(P, P, f, f))
    conv = _conv_dkm.ConvolutionMap(_identity, torch.as_tensor(C), SW2, SB2,
                                    scaled=True)
    K = conv(G)
    # explicit features of the convolution output, (f * f * N) per point
    psi_i = np.concatenate([C[:, :, a, b] @ phi_i / np.sqrt(P)
                            for a in range(f) for b in range(f)], 1) / f
    psi_t = np.zeros((B, H, W, f * f * N))
    for r in range(H):
        for s in range(W):
            for a in range(f):
                for b in range(f):
                    rr, ss = r + a - h, s + b - h
                    if 0 <= rr < H and 0 <= ss < W:
                        k = (a * f + b) * N
                        psi_t[:, r, s, k:k + N] = phi_t[:, rr, ss] / f
    np.testing.assert_allclose(K.ii.numpy(), SW2 * psi_i @ psi_i.T / N + SB2)
    np.testing.assert_allclose(K.ti.numpy(), SW2 * psi_t @ psi_i.T / N + SB2)
    np.testing.assert_allclose(K.t.numpy(),
                               SW2 * (psi_t ** 2).sum(-1) / N + SB2)


def test_readout_map_is_the_covariance_of_flattened_features(rng):
    G, phi_i, phi_t = _feature_blocks(rng)
    B, H, W, N = phi_t.shape
    P, S = phi_i.shape[0], H * W
    C = rng.normal(size=(S, P, P))
    readout = _conv_dkm.ReadoutMap(_identity, torch.as_tensor(C), SW2, SB2,
                                   scaled=True)
    K = readout(G)
    psi_i = np.concatenate([C[s] @ phi_i / np.sqrt(P) for s in range(S)],
                           1) / np.sqrt(S)
    psi_t = phi_t.reshape(B, S * N) / np.sqrt(S)
    np.testing.assert_allclose(K.ii.numpy(), SW2 * psi_i @ psi_i.T / N + SB2)
    np.testing.assert_allclose(K.ti.numpy(), SW2 * psi_t @ psi_i.T / N + SB2)
    np.testing.assert_allclose(K.t.numpy(),
                               SW2 * (psi_t ** 2).sum(-1) / N + SB2)


def _machine(rng, nus, P=8, image_shape=(4, 4, 2), f=3, seed=0):
    lk = _dkm.LayerKernel("nngp", get_activation("relu"), SW2, SB2)
    Z = torch.as_tensor(rng.normal(size=(P, f * f * image_shape[2])))
    generator = torch.Generator().manual_seed(seed)
    return _conv_dkm.ConvolutionalDeepKernelMachine(
        lk, Z, image_shape, f, generator, nus=nus, likelihood="gaussian",
        n_outputs=2, exact=False, learn_inducing=True, noise_variance=0.1,
        weight_variance=SW2, bias_variance=SB2)


def test_initial_machine_is_its_infinite_nu_limit(rng):
    """Training starts at the prior: every batch pixel's Grams through the
    learned layers equal those of the fixed (nu = inf) layers, up to the
    prior nugget."""
    X = torch.as_tensor(rng.normal(size=(3, 32)))
    learned, fixed = _machine(rng, [10.0, 10.0]), _machine(rng, [np.inf] * 2)
    fixed.load_state_dict({k: v for k, v in learned.state_dict().items()
                           if not k.startswith("factors")}, strict=False)
    learned.initialize(None, torch.zeros(8, 2, dtype=torch.float64))
    with torch.no_grad():
        a, b = learned.propagate(X)[0], fixed.propagate(X)[0]
    for x, y in [(a.ii, b.ii), (a.ti, b.ti), (a.t, b.t)]:
        scale = float(y.abs().max())
        np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-4,
                                   atol=1e-4 * scale)


def test_nystroem_residuals_stay_non_negative_after_training(rng):
    """The batch blocks are those of one joint covariance with the inducing
    points: the conditional variance of every output is >= 0, also with
    learned Grams away from the prior."""
    X = torch.as_tensor(rng.normal(size=(10, 32)))
    y = torch.as_tensor(rng.normal(size=(10, 2)))
    model = _machine(rng, [1.0, 1.0])
    model.initialize([X], y)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(20):
        optimiser.zero_grad()
        (-model.objective(X, y, 10)[0]).backward()
        optimiser.step()
    with torch.no_grad():
        K_top, _, grams = model.propagate(X)
        for K in grams + [K_top]:
            P = K.ii.shape[0]
            ti = K.ti.reshape(-1, P)
            resid = K.t.reshape(-1) - (ti * torch.linalg.solve(K.ii, ti.T).T).sum(1)
            assert float(resid.min()) > -1e-8 * float(K.t.abs().max())


def test_objective_gradients_by_finite_differences(rng):
    X = torch.as_tensor(rng.normal(size=(3, 32)))
    y = torch.as_tensor(rng.normal(size=(3, 2)))
    model = _machine(rng, [3.0, np.inf], P=4)
    model.initialize([X], y)
    params = dict(model.named_parameters())
    for name in ("Z", "mixes.0", "readout", "factors.0", "q_mean"):
        p = params[name]
        base = p.detach().clone()

        def objective(value, p=p):
            with torch.no_grad():
                p.copy_(value)
            return model.objective(X, y, 3)[0]

        objective(base).backward()
        grad = p.grad.clone()
        direction = torch.as_tensor(rng.normal(size=tuple(p.shape)))
        eps = 1e-6
        with torch.no_grad():
            numeric = (objective(base + eps * direction)
                       - objective(base - eps * direction)) / (2 * eps)
        objective(base)
        np.testing.assert_allclose(float((grad * direction).sum()),
                                   float(numeric), rtol=1e-5, atol=1e-8)
        model.zero_grad()


def _digits(n=300):
    X, y = load_digits(return_X_y=True)
    return X[:n] / 16.0, y[:n]


def test_classifier_learns_digits():
    X, y = _digits()
    clf = DeepKernelMachineClassifier(
        image_shape=(8, 8), n_inducing=32, likelihood="gaussian", nu=10.0,
        max_iter=20, learning_rate=0.05, batch_size=100, random_state=0)
    clf.fit(X[:200], y[:200])
    assert clf.inducing_points_.shape == (32, 9)
    assert clf.score(X[200:], y[200:]) > 0.5  # chance: 0.1
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    grams = clf.layer_grams(X[:3])
    assert [g.shape for g in grams] == [(3, 8, 8, 32)] * 2 + [(3, 32)]


def test_regressor_on_images_round_trips(rng):
    X = rng.normal(size=(30, 12))
    y = X[:, 0] - X[:, 5]
    reg = DeepKernelMachineRegressor(image_shape=(2, 3, 2), n_inducing=6,
                                     max_iter=3, random_state=0).fit(X, y)
    again = clone(reg).fit(X, y)
    np.testing.assert_array_equal(reg.predict(X), again.predict(X))
    loaded = pickle.loads(pickle.dumps(reg))
    np.testing.assert_array_equal(reg.predict(X), loaded.predict(X))


@pytest.mark.parametrize("params, message", [
    (dict(image_shape=(4, 4)), "image_shape needs n_inducing"),
    (dict(image_shape=(4, 4), n_inducing=4, output_layer="exact"),
     "output_layer='variational'"),
    (dict(image_shape=(4, 4), n_inducing=4, filter_size=2), "must be odd"),
    (dict(image_shape=(4,), n_inducing=4), "image_shape must be"),
    (dict(image_shape=(4, 0), n_inducing=4), "image_shape entries"),
    (dict(image_shape=(3, 3), n_inducing=4), "has 9 pixel values"),
])
def test_bad_image_parameters(rng, params, message):
    X, y = rng.normal(size=(20, 16)), rng.normal(size=20)
    with pytest.raises(ValueError, match=message):
        DeepKernelMachineRegressor(max_iter=1, **params).fit(X, y)
