"""Tests of deep kernel machines (torch core and estimators)."""
import pickle
import subprocess
import sys

import numpy as np
import pytest
from scipy import linalg, stats
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

torch = pytest.importorskip("torch")

from skinfinite._torch import dkm as _dkm  # noqa: E402
from skinfinite.activations.definitions import get_activation  # noqa: E402
from skinfinite.kernels import NNGP  # noqa: E402
from skinfinite.linalg.cholesky import NumericalError  # noqa: E402
from skinfinite.models import (DeepKernelMachineClassifier,  # noqa: E402
                               DeepKernelMachineRegressor, NNGPClassifier,
                               NNGPRegressor)

SW2, SB2 = 2.0, 0.1


def _data(rng, n=40, d=3):
    X = rng.normal(size=(n, d))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1]
    return X, y


def _standardised(y):
    return (y - y.mean()) / y.std()


# ------------------------------------------------- independent NumPy references
def _np_layer_kernel(G, kernel="nngp", activation="relu"):
    """Dense NumPy layer map, through the compiled (numba) duals."""
    d = np.diag(G)
    if kernel == "squared_exponential":
        return np.exp(-0.5 * np.clip(d[:, None] + d[None, :] - 2 * G, 0, None))
    act = get_activation(activation)
    v, _ = act.dual(np.broadcast_to(d[:, None], G.shape), G,
                    np.broadcast_to(d[None, :], G.shape))
    return SW2 * v + SB2


def _np_prior(K):
    """A learned layer's prior: the layer kernel plus the documented nugget."""
    return K + _dkm.PRIOR_NUGGET * np.mean(np.diag(K)) * np.eye(len(K))


def _np_input(X):
    return SW2 * X @ X.T / X.shape[1] + SB2


def _np_kl(G, K):
    """KL(N(0, G) || N(0, K)) from SciPy's log densities (Monte Carlo free:
    the KL of centred Gaussians is E_G[log p_G - log p_K], computed exactly
    from the entropy and cross-entropy)."""
    P = G.shape[0]
    cross = 0.5 * (np.trace(linalg.solve(K, G, assume_a="pos"))
                   + np.linalg.slogdet(K)[1] + P * np.log(2 * np.pi))
    entropy = stats.multivariate_normal(np.zeros(P), G).entropy()
    return cross - entropy


def _random_factors(rng, P, n_layers, scale=0.3):
    # lower-triangular V with a positive diagonal, far from the NNGP
    out = []
    for _ in range(n_layers):
        V = np.tril(rng.normal(scale=scale, size=(P, P))) * np.sqrt(P)
        V[np.diag_indices(P)] = np.abs(V[np.diag_indices(P)]) + np.sqrt(P)
        out.append(V)
    return out


def _model(Z, nus, likelihood="gaussian", exact=True, kernel="nngp",
           n_outputs=1, noise=0.1, train_inputs=None):
    lk = _dkm.LayerKernel(kernel, get_activation("relu"), SW2, SB2)
    if train_inputs is not None:
        train_inputs = torch.as_tensor(train_inputs)
    return _dkm.DeepKernelMachine(lk, torch.as_tensor(Z), nus, likelihood,
                                  n_outputs, exact, False, noise, SW2, SB2,
                                  train_inputs=train_inputs)


def _set_factors(model, factors):
    with torch.no_grad():
        for p, V in zip(model.factors, factors):
            p.copy_(torch.as_tensor(V))


# ---------------------------------------------------------------- nu -> inf
@pytest.mark.parametrize("depth", [2, 4])
def test_infinite_nu_is_the_nngp_regressor(rng, depth):
    X, y = _data(rng)
    Xt = rng.normal(size=(9, 3))
    dkm = DeepKernelMachineRegressor(depth=depth, nu=np.inf, max_iter=0,
                                     alpha=0.05).fit(X, y)
    gp = NNGPRegressor(depth=depth, alpha=0.05).fit(X, _standardised(y))
    mean, std = dkm.predict(Xt, return_std=True)
    ref_mean, ref_std = gp.predict(Xt, return_std=True)
    np.testing.assert_allclose(mean, ref_mean * y.std() + y.mean(),
                               rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(std, ref_std * y.std(), rtol=1e-8, atol=1e-10)


def test_infinite_nu_learns_only_the_noise(rng):
    X, y = _data(rng)
    dkm = DeepKernelMachineRegressor(depth=2, nu=np.inf, max_iter=30,
                                     alpha=0.3).fit(X, y)
    assert dkm.alpha_ < 0.3  # the data are nearly noise free
    gp = NNGPRegressor(depth=2, alpha=dkm.alpha_).fit(
        X, _standardised(y))
    np.testing.assert_allclose(dkm.predict(X[:5]),
                               gp.predict(X[:5]) * y.std() + y.mean(),
                               rtol=1e-9)


def test_large_nu_approaches_the_nngp(rng, monkeypatch):
    monkeypatch.setattr(_dkm, "PRIOR_NUGGET", 0.0)
    X, y = _data(rng, n=30)
    Xt = rng.normal(size=(10, 3))
    ref = NNGPRegressor(depth=3, alpha=0.1).fit(X, _standardised(y))
    ref_mean = ref.predict(Xt) * y.std() + y.mean()
    gaps = []
    for nu in (1e-2, 1e1, 1e4):
        dkm = DeepKernelMachineRegressor(depth=3, nu=nu, max_iter=40,
                                         alpha=0.1, random_state=0)
        # the noise is learned in both models; compare at the learned one
        dkm.fit(X, y)
        ref = NNGPRegressor(depth=3, alpha=dkm.alpha_).fit(
            X, _standardised(y))
        ref_mean = ref.predict(Xt) * y.std() + y.mean()
        gaps.append(np.abs(dkm.predict(Xt) - ref_mean).max())
    # Adam keeps moving the Grams by about the learning rate, so a finite nu
    # is only close to the NNGP; nu=np.inf is exact (tests above)
    assert gaps[0] > gaps[1] > gaps[2]
    assert gaps[2] < 0.1 * gaps[0]


def test_infinite_nu_layer_grams_are_the_nngp(rng):
    X, y = _data(rng, n=25)
    dkm = DeepKernelMachineRegressor(depth=4, nu=np.inf, max_iter=0).fit(X, y)
    grams = dkm.layer_grams()
    assert len(grams) == 4
    for layer, G in enumerate(grams):
        np.testing.assert_allclose(G, NNGP(depth=layer + 1)(X), rtol=1e-12)
    Xt = rng.normal(size=(4, 3))
    blocks = dkm.layer_grams(Xt)
    np.testing.assert_allclose(blocks[-1], NNGP(depth=4)(Xt, X), rtol=1e-12)


def test_squared_exponential_infinite_nu_is_the_deep_gp_limit(rng):
    X, y = _data(rng, n=30)
    Xt = rng.normal(size=(6, 3))
    dkm = DeepKernelMachineRegressor(depth=3, nu=np.inf, max_iter=0,
                                     layer_kernel="squared_exponential",
                                     alpha=0.05).fit(X, y)
    both = np.vstack([X, Xt])
    K = _np_layer_kernel(_np_layer_kernel(_np_layer_kernel(
        _np_input(both), "squared_exponential"), "squared_exponential"),
        "squared_exponential")
    K_train, K_cross = K[:30, :30], K[30:, :30]
    mean = K_cross @ linalg.solve(K_train + 0.05 * np.eye(30),
                                  _standardised(y))
    np.testing.assert_allclose(dkm.predict(Xt), mean * y.std() + y.mean(),
                               rtol=1e-9, atol=1e-12)


# ------------------------------------------------------ objective and KL terms
def test_kl_against_scipy(rng):
    P = 6
    A = rng.normal(size=(P, P))
    K = A @ A.T + P * np.eye(P)
    V = _random_factors(rng, P, 1)[0]
    G = V @ V.T / P
    kl = _dkm.gram_kl(torch.as_tensor(V), torch.linalg.cholesky(torch.as_tensor(K)))
    assert float(kl) == pytest.approx(_np_kl(G, K), rel=1e-10)
    # zero exactly where G = K (the NNGP initialisation)
    L = np.linalg.cholesky(K)
    kl0 = _dkm.gram_kl(torch.as_tensor(L * np.sqrt(P)), torch.as_tensor(L))
    assert abs(float(kl0)) < 1e-12


@pytest.mark.parametrize("kernel", ["nngp", "squared_exponential"])
def test_full_objective_against_dense_numpy(rng, kernel):
    X, y = _data(rng, n=12)
    Y = _standardised(y)[:, None]
    nus = [0.7, 3.0]
    factors = _random_factors(rng, 12, 2)
    model = _model(X, nus, kernel=kernel, noise=0.2)
    _set_factors(model, factors)
    objective, terms = model.objective(None, torch.as_tensor(Y), 12)
    # reference: G_0 -> K(G_0) prior of G_1 -> K(G_1) prior of G_2 -> output
    G = _np_input(X)
    kl = 0.0
    for nu, V in zip(nus, factors):
        K = _np_prior(_np_layer_kernel(G, kernel))
        G = V @ V.T / V.shape[0]
        kl += nu * _np_kl(G, K)
    K_out = _np_layer_kernel(G, kernel)
    loglik = stats.multivariate_normal(np.zeros(12), K_out + 0.2 * np.eye(12)
                                       ).logpdf(Y[:, 0])
    assert terms["kl"] == pytest.approx(kl, rel=1e-9)
    assert float(objective.detach()) == pytest.approx(loglik - kl, rel=1e-9)


def test_sparse_objective_against_dense_numpy(rng):
    X, y = _data(rng, n=30)
    Y = _standardised(y)[:, None]
    Z = rng.normal(size=(7, 3))
    batch = np.arange(5, 17)
    nus = [2.0, 0.5]
    factors = _random_factors(rng, 7, 2)
    model = _model(Z, nus, exact=False, noise=0.3)
    _set_factors(model, factors)
    m = rng.normal(size=(7, 1))
    S = np.tril(rng.normal(scale=0.3, size=(7, 7))) + np.eye(7)
    with torch.no_grad():
        model.q_mean.copy_(torch.as_tensor(m))
        model.q_sqrt.copy_(torch.as_tensor(S[None]))
    objective, _ = model.objective(torch.as_tensor(X[batch]),
                                   torch.as_tensor(Y[batch]), 30)
    # reference: joint Grams of [Z; batch] with the conditional formulas
    P = 7
    K, kl = _np_joint_grams(Z, X[batch], nus, factors)
    Kii, Kti, kt = K[:P, :P], K[P:, :P], np.diag(K)[P:]
    L = np.linalg.cholesky(Kii)
    # q(u) = N(L m, L S S^T L^T)
    mu_u, S_u = L @ m, L @ S @ S.T @ L.T
    A = linalg.solve(Kii, Kti.T).T
    mean = A @ mu_u
    var = kt - np.sum(A * Kti, 1) + np.sum((A @ S_u) * A, 1)
    noise = 0.3
    ell = np.sum(-0.5 * np.log(2 * np.pi * noise)
                 - ((Y[batch] - mean) ** 2 + var[:, None]) / (2 * noise))
    top_kl = _np_kl(S_u, Kii) + 0.5 * (mu_u.T @ linalg.solve(Kii, mu_u)).item()
    ref = ell * 30 / len(batch) - kl - top_kl
    assert float(objective.detach()) == pytest.approx(ref, rel=1e-9)


def _np_joint_grams(Z, X, nus, factors):
    """Dense Grams of the stacked points [Z; X] through the learned layers:
    the whole X block follows the inducing points, G_tt = K_tt + nugget -
    A K_it + A G_ii A^T with A = K_ti (K_ii + nugget)^-1."""
    P = len(Z)
    G = _np_input(np.vstack([Z, X]))
    kl = 0.0
    for nu, V in zip(nus, factors):
        K = _np_layer_kernel(G)
        nugget = _dkm.PRIOR_NUGGET * np.mean(np.diag(K)[:P])
        Kii, Kti = K[:P, :P] + nugget * np.eye(P), K[P:, :P]
        Ktt = K[P:, P:] + nugget * np.eye(len(X))
        Gii = V @ V.T / P
        kl += nu * _np_kl(Gii, Kii)
        A = linalg.solve(Kii, Kti.T).T
        G = np.block([[Gii, (A @ Gii).T],
                      [A @ Gii, Ktt - A @ Kti.T + A @ Gii @ A.T]])
    return _np_layer_kernel(G), kl


def test_exact_output_with_inducing_points_against_dense_numpy(rng):
    X, y = _data(rng, n=20)
    Y = _standardised(y)[:, None]
    Z = rng.normal(size=(6, 3))
    Xt = rng.normal(size=(4, 3))
    nus = [2.0, 0.5]
    factors = _random_factors(rng, 6, 2)
    model = _model(Z, nus, exact=True, noise=0.3, train_inputs=X)
    _set_factors(model, factors)
    objective, terms = model.objective(None, torch.as_tensor(Y), 20)
    K_out, kl = _np_joint_grams(Z, np.vstack([X, Xt]), nus, factors)
    K_out = K_out[6:, 6:]
    Ktt, Kst = K_out[:20, :20] + 0.3 * np.eye(20), K_out[20:, :20]
    loglik = stats.multivariate_normal(np.zeros(20), Ktt).logpdf(Y[:, 0])
    assert terms["kl"] == pytest.approx(kl, rel=1e-9)
    assert float(objective.detach()) == pytest.approx(loglik - kl, rel=1e-9)
    with torch.no_grad():
        mean, var = model.latent_marginals(torch.as_tensor(Xt),
                                           torch.as_tensor(Y))
    ref_mean = Kst @ linalg.solve(Ktt, Y)
    ref_var = np.diag(K_out[20:, 20:]) - np.sum(Kst * linalg.solve(Ktt, Kst.T).T, 1)
    np.testing.assert_allclose(mean.numpy(), ref_mean, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(var.numpy()[:, 0], ref_var, rtol=1e-8, atol=1e-12)


def test_sparse_with_training_inducing_points_equals_full(rng, monkeypatch):
    # with a nugget the batch copies of the inducing points get their own
    # independent noise, so the identity holds up to the nugget only
    monkeypatch.setattr(_dkm, "PRIOR_NUGGET", 0.0)
    X, y = _data(rng, n=15)
    Y = torch.as_tensor(_standardised(y)[:, None])
    factors = _random_factors(rng, 15, 2)
    full = _model(X, [1.5, 0.5], exact=True, noise=0.2)
    sparse = _model(X, [1.5, 0.5], exact=False, noise=0.2)
    _set_factors(full, factors)
    _set_factors(sparse, factors)
    with torch.no_grad():
        K_top = sparse.propagate(torch.as_tensor(X))[0]
        L_K = torch.linalg.cholesky(K_top.ii)
        A = torch.linalg.solve_triangular(L_K, K_top.ti.T, upper=False)
        q_mean, q_sqrt = _dkm.optimal_whitened_q(A, Y, torch.tensor(0.2))
        sparse.q_mean.copy_(q_mean)
        sparse.q_sqrt.copy_(q_sqrt)
    obj_full, _ = full.objective(None, Y, 15)
    obj_sparse, _ = sparse.objective(torch.as_tensor(X), Y, 15)
    # the variational bound is tight at its optimum when Z = X
    assert float(obj_sparse.detach()) == pytest.approx(float(obj_full.detach()),
                                                   rel=1e-8)
    Xt = torch.as_tensor(rng.normal(size=(6, 3)))
    with torch.no_grad():
        m_full, v_full = full.latent_marginals(Xt, Y)
        m_sparse, v_sparse = sparse.latent_marginals(Xt)
    np.testing.assert_allclose(m_sparse, m_full, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(v_sparse, v_full, rtol=1e-6, atol=1e-9)


def test_sparse_initialisation_is_the_nngp_posterior(rng, monkeypatch):
    monkeypatch.setattr(_dkm, "PRIOR_NUGGET", 0.0)
    X, y = _data(rng, n=40)
    Xt = rng.normal(size=(5, 3))
    sparse = DeepKernelMachineRegressor(depth=3, n_inducing=40, max_iter=0,
                                        alpha=0.1,
                                        random_state=0).fit(X, y)
    gp = NNGPRegressor(depth=3, alpha=0.1).fit(X, _standardised(y))
    np.testing.assert_allclose(sparse.predict(Xt),
                               gp.predict(Xt) * y.std() + y.mean(), rtol=1e-6)


# ------------------------------------------------------------------ gradients
def test_objective_gradients_by_finite_differences(rng):
    X, y = _data(rng, n=6)
    Z = rng.normal(size=(4, 3))
    factors = _random_factors(rng, 4, 2)
    Y = torch.as_tensor(_standardised(y)[:, None])
    lk = _dkm.LayerKernel("nngp", get_activation("relu"), SW2, SB2)

    def sparse_objective(Zt, V1, V2, q_mean, q_sqrt, log_noise):
        G0 = _dkm.input_blocks(Zt, torch.as_tensor(X), SW2, SB2)
        K_top, kls, _ = _dkm.propagate(lk, G0, [V1, V2])
        L_K = torch.linalg.cholesky(K_top.ii)
        mean, var = _dkm.whitened_marginals(K_top, L_K, q_mean, q_sqrt)
        ell = _dkm.gaussian_expected_loglik(Y, mean, var, torch.exp(log_noise))
        return ell - 0.7 * kls[0] - 2.0 * kls[1] - _dkm.whitened_kl(q_mean, q_sqrt)

    inputs = (torch.as_tensor(Z), *(torch.as_tensor(V) for V in factors),
              torch.as_tensor(rng.normal(size=(4, 1))),
              torch.as_tensor(np.tril(rng.normal(size=(1, 4, 4))) + 2 * np.eye(4)),
              torch.tensor(np.log(0.3)))
    inputs = tuple(t.clone().requires_grad_(True) for t in inputs)
    assert torch.autograd.gradcheck(sparse_objective, inputs, eps=1e-6,
                                    atol=1e-5, rtol=1e-4)

    def full_objective(V1, V2, log_noise):
        G0 = _dkm.input_blocks(torch.as_tensor(X), None, SW2, SB2)
        K_top, kls, _ = _dkm.propagate(lk, G0, [V1, V2])
        return (_dkm.gaussian_log_marginal(K_top.ii, Y, torch.exp(log_noise))
                - kls[0] - kls[1])

    factors = _random_factors(rng, 6, 2)
    inputs = tuple(t.clone().requires_grad_(True)
                   for t in (*(torch.as_tensor(V) for V in factors),
                             torch.tensor(np.log(0.2))))
    assert torch.autograd.gradcheck(full_objective, inputs, eps=1e-6,
                                    atol=1e-5, rtol=1e-4)

    def exact_top_with_inducing(Zt, V1, V2, log_noise):
        G0 = _dkm.input_blocks(Zt, torch.as_tensor(X), SW2, SB2, full=True)
        K_top, kls, _ = _dkm.propagate(lk, G0, [V1, V2])
        return (_dkm.gaussian_log_marginal(K_top.tt, Y, torch.exp(log_noise))
                - 1.5 * kls[0] - 0.5 * kls[1])

    factors = _random_factors(rng, 4, 2)
    inputs = tuple(t.clone().requires_grad_(True)
                   for t in (torch.as_tensor(Z),
                             *(torch.as_tensor(V) for V in factors),
                             torch.tensor(np.log(0.2))))
    assert torch.autograd.gradcheck(exact_top_with_inducing, inputs, eps=1e-6,
                                    atol=1e-5, rtol=1e-4)


# --------------------------------------------------------------- estimators
@pytest.mark.parametrize("n_inducing, output_layer",
                         [(None, "auto"), (15, "auto"), (15, "exact")])
def test_training_decreases_the_loss(rng, n_inducing, output_layer):
    X, y = _data(rng, n=60)
    dkm = DeepKernelMachineRegressor(depth=3, nu=1.0, n_inducing=n_inducing,
                                     output_layer=output_layer,
                                     batch_size=20, max_iter=20,
                                     random_state=0).fit(X, y)
    assert len(dkm.loss_curve_) == dkm.n_iter_ == 20
    assert dkm.loss_curve_[-1] < dkm.loss_curve_[0]
    assert dkm.score(X, y) > 0.9


@pytest.mark.parametrize("n_inducing", [None, 30])
def test_classifier(n_inducing):
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = DeepKernelMachineClassifier(depth=3, nu=1.0, n_inducing=n_inducing,
                                      batch_size=50, max_iter=10,
                                      random_state=0).fit(X, y)
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    proba = clf.predict_proba(X)
    assert proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    assert clf.score(X, y) > 0.9
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(1)])


def test_output_scale_scales_the_output_functions(rng):
    # a learned amplitude s: the marginals are s * mean and s^2 * var of the
    # same machine without it, and the softmax objective reaches s
    Z, X = rng.normal(size=(7, 3)), rng.normal(size=(9, 3))
    lk = _dkm.LayerKernel("nngp", get_activation("relu"), SW2, SB2)

    def machine(learn_output_scale):
        return _dkm.DeepKernelMachine(
            lk, torch.as_tensor(Z), [2.0, 0.5], "softmax", 3, False, False,
            1.0, SW2, SB2, learn_output_scale=learn_output_scale)

    plain, scaled = machine(False), machine(True)
    m = torch.as_tensor(rng.normal(size=(7, 3)))
    S = torch.as_tensor(np.tril(rng.normal(scale=0.3, size=(3, 7, 7)))
                        + np.eye(7))
    with torch.no_grad():
        for model in (plain, scaled):
            model.q_mean.copy_(m)
            model.q_sqrt.copy_(S)
        scaled.log_output_scale.fill_(np.log(2.5))
    assert not hasattr(plain, "log_output_scale")
    mean, var = plain.latent_marginals(torch.as_tensor(X))
    mean_s, var_s = scaled.latent_marginals(torch.as_tensor(X))
    np.testing.assert_allclose(mean_s.detach(), 2.5 * mean.detach(), rtol=1e-12)
    np.testing.assert_allclose(var_s.detach(), 6.25 * var.detach(), rtol=1e-12)
    labels = torch.as_tensor(rng.integers(0, 3, size=9))
    objective, _ = scaled.objective(torch.as_tensor(X), labels, 9,
                                    torch.Generator().manual_seed(0))
    objective.backward()
    assert float(scaled.log_output_scale.grad.abs()) > 0


def test_classifier_learns_its_output_scale():
    X, y = _iris()
    kwargs = dict(nu=10.0, n_inducing=30, batch_size=50, max_iter=15,
                  likelihood="softmax", random_state=0)
    fixed = DeepKernelMachineClassifier(**kwargs).fit(X, y)
    learned = DeepKernelMachineClassifier(learn_output_scale=True,
                                          **kwargs).fit(X, y)
    assert fixed.output_scale_ == 1.0
    # iris is easy: a larger amplitude makes the softmax more confident
    assert learned.output_scale_ > 1.0
    assert learned.loss_curve_[-1] < fixed.loss_curve_[-1]
    assert learned.score(X, y) > 0.9
    copy_ = pickle.loads(pickle.dumps(learned))
    np.testing.assert_array_equal(copy_.predict_proba(X[:9]),
                                  learned.predict_proba(X[:9]))


def test_exact_output_with_inducing_points_at_infinite_nu_is_the_nngp(rng):
    X, y = _data(rng)
    Xt = rng.normal(size=(9, 3))
    dkm = DeepKernelMachineRegressor(nu=np.inf, n_inducing=8,
                                     output_layer="exact", max_iter=10,
                                     random_state=0).fit(X, y)
    gp = NNGPRegressor(depth=3, alpha=dkm.alpha_).fit(
        X, _standardised(y))
    mean, std = dkm.predict(Xt, return_std=True)
    ref_mean, ref_std = gp.predict(Xt, return_std=True)
    np.testing.assert_allclose(mean, ref_mean * y.std() + y.mean(), rtol=1e-9)
    np.testing.assert_allclose(std, ref_std * y.std(), rtol=1e-7, atol=1e-10)


def test_exact_output_with_inducing_points_round_trips(rng):
    X, y = _data(rng, n=50)
    dkm = DeepKernelMachineRegressor(nu=3.0, n_inducing=10,
                                     output_layer="exact", max_iter=5,
                                     random_state=0).fit(X, y)
    assert dkm.inducing_points_.shape == (10, 3)
    copy_ = pickle.loads(pickle.dumps(dkm))
    np.testing.assert_array_equal(copy_.predict(X[:7]), dkm.predict(X[:7]))
    grams = dkm.layer_grams(X[:7])
    assert [g.shape for g in grams] == [(7, 10)] * 3


def _iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def test_gaussian_classifier_at_infinite_nu_is_the_nngp_classifier(rng):
    X, y = _iris()
    Xt = rng.normal(size=(25, 4))
    dkm = DeepKernelMachineClassifier(nu=np.inf, likelihood="gaussian",
                                      alpha=1e-2, max_iter=0).fit(X, y)
    ref = NNGPClassifier(depth=3, alpha=1e-2).fit(X, y)
    np.testing.assert_allclose(dkm.predict_proba(Xt), ref.predict_proba(Xt),
                               rtol=1e-9, atol=1e-11)
    np.testing.assert_array_equal(dkm.predict(Xt), ref.predict(Xt))


def test_gaussian_classifier_without_training_predicts_as_the_nngp(rng):
    # finite nu: each G_l starts at its prior plus a 1e-5 relative nugget,
    # so the outputs agree to that order, and so do the predicted classes
    X, y = _iris()
    Xt = X + 0.3 * rng.normal(size=X.shape)
    dkm = DeepKernelMachineClassifier(nu=10.0, likelihood="gaussian",
                                      alpha=1e-2, temperature=1.0,
                                      max_iter=0).fit(X, y)
    ref = NNGPClassifier(depth=3, alpha=1e-2, temperature=1.0).fit(X, y)
    np.testing.assert_array_equal(dkm.predict(Xt), ref.predict(Xt))
    np.testing.assert_allclose(np.log(dkm.predict_proba(Xt)),
                               np.log(ref.predict_proba(Xt)), atol=1e-3)
    assert dkm.n_iter_ == 0 and dkm.loss_curve_ == []


def test_gaussian_classifier_training_raises_the_objective():
    X, y = _iris()
    clf = DeepKernelMachineClassifier(nu=10.0, likelihood="gaussian",
                                      max_iter=15, random_state=0).fit(X, y)
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    assert clf.alpha_ > 0 and clf.alpha_ != 1e-2
    assert clf.score(X, y) > 0.9
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(1)])


def test_gaussian_classifier_with_exact_output_and_inducing_points():
    X, y = _iris()
    clf = DeepKernelMachineClassifier(nu=3.0, likelihood="gaussian",
                                      n_inducing=20, output_layer="exact",
                                      max_iter=10, random_state=0).fit(X, y)
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    assert clf.score(X, y) > 0.9


def test_sparse_gaussian_classifier():
    X, y = _iris()
    clf = DeepKernelMachineClassifier(nu=10.0, likelihood="gaussian",
                                      n_inducing=30, batch_size=50,
                                      max_iter=10, early_stopping=True,
                                      n_iter_no_change=20,
                                      random_state=0).fit(X, y)
    assert len(clf.validation_scores_) == 10
    assert all(0.0 <= v <= 1.0 for v in clf.validation_scores_)
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    assert clf.score(X, y) > 0.9


def test_fits_are_deterministic(rng):
    X, y = _data(rng, n=50)
    labels = (y > 0).astype(int)
    kwargs = dict(n_inducing=10, batch_size=16, max_iter=3, random_state=7)
    a = DeepKernelMachineClassifier(**kwargs).fit(X, labels)
    b = DeepKernelMachineClassifier(**kwargs).fit(X, labels)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert a.loss_curve_ == b.loss_curve_


def test_early_stopping_keeps_validation_scores(rng):
    X, y = _data(rng, n=80)
    dkm = DeepKernelMachineRegressor(early_stopping=True, n_iter_no_change=2,
                                     max_iter=50, random_state=0).fit(X, y)
    assert len(dkm.validation_scores_) == dkm.n_iter_ <= 50
    assert dkm.inducing_points_.shape == (72, 3)


def test_float32_and_multi_output(rng):
    X, y = _data(rng, n=30)
    Y = np.column_stack([y, 2 * y + 1])
    dkm = DeepKernelMachineRegressor(max_iter=3, dtype="float32").fit(X, Y)
    mean, std = dkm.predict(X, return_std=True)
    assert mean.shape == std.shape == (30, 2)
    np.testing.assert_allclose(mean[:, 1], 2 * mean[:, 0] + 1, rtol=1e-3,
                               atol=1e-3)


@parametrize_with_checks([
    DeepKernelMachineRegressor(max_iter=2, random_state=0),
    DeepKernelMachineRegressor(n_inducing=10, max_iter=2, random_state=0),
    DeepKernelMachineClassifier(max_iter=2, random_state=0),
    DeepKernelMachineClassifier(n_inducing=10, max_iter=2, random_state=0),
    DeepKernelMachineClassifier(likelihood="gaussian", max_iter=2,
                                random_state=0),
])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_clone_pickle_pipeline_gridsearch(rng):
    X, y = _data(rng, n=40)
    dkm = DeepKernelMachineRegressor(max_iter=3, random_state=0).fit(X, y)
    again = pickle.loads(pickle.dumps(dkm))
    np.testing.assert_array_equal(again.predict(X), dkm.predict(X))
    assert clone(dkm).get_params() == dkm.get_params()
    pipe = make_pipeline(StandardScaler(),
                         DeepKernelMachineRegressor(max_iter=3, random_state=0))
    assert pipe.fit(X, y).score(X, y) > 0.8
    search = GridSearchCV(DeepKernelMachineRegressor(max_iter=2, random_state=0),
                          {"nu": [0.1, 10.0]}, cv=2).fit(X, y)
    assert search.best_params_["nu"] in (0.1, 10.0)


# ------------------------------------------------------------------- errors
@pytest.mark.parametrize("params, message", [
    ({"nu": 0.0}, "'nu' parameter"),
    ({"nu": -1.0}, "'nu' parameter"),
    ({"nu": [1.0, -2.0]}, "nu must be > 0"),
    ({"nu": [1.0, 2.0, 3.0]}, "nu has 3 entries"),
    ({"layer_kernel": "matern"}, "'layer_kernel' parameter .* must be one of"),
    ({"depth": 1}, "'depth' parameter .* must be an int in the range \\[2, inf\\)"),
    ({"learning_rate": -1.0}, "'learning_rate' parameter"),
    ({"device": "tpu"}, "'device' parameter .* must be one of"),
    ({"likelihood": "probit"}, "'likelihood' parameter .* must be one of"),
    ({"likelihood": "gaussian", "alpha": 0.0}, "'alpha' parameter"),
    ({"temperature": -1.0}, "'temperature' parameter"),
    ({"output_layer": "dense"}, "'output_layer' parameter .* must be one of"),
    ({"output_layer": "exact", "likelihood": "softmax"}, "needs the Gaussian"),
])
def test_bad_parameters(rng, params, message):
    X, y = _data(rng)
    if {"likelihood", "temperature"} & set(params):
        estimator, y = DeepKernelMachineClassifier, (y > 0).astype(int)
    else:
        estimator = DeepKernelMachineRegressor
    with pytest.raises(ValueError, match=message):
        estimator(max_iter=1, **params).fit(X, y)


def test_bad_inputs(rng):
    X, y = _data(rng)
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        DeepKernelMachineRegressor(max_iter=1).fit(bad, y)
    dkm = DeepKernelMachineRegressor(max_iter=1).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        dkm.predict(X[:, :2])
    with pytest.raises(ValueError, match="one class"):
        DeepKernelMachineClassifier(max_iter=1).fit(X, np.zeros(40))


def test_divergence_names_the_learning_rate(rng, monkeypatch):
    X, y = _data(rng)
    original = _dkm.DeepKernelMachine.objective
    calls = []

    def failing_at_third_step(self, *args, **kwargs):
        objective, terms = original(self, *args, **kwargs)
        calls.append(1)
        return (objective * np.nan if len(calls) == 3 else objective), terms

    monkeypatch.setattr(_dkm.DeepKernelMachine, "objective",
                        failing_at_third_step)
    dkm = DeepKernelMachineRegressor(max_iter=20, learning_rate=0.5)
    with pytest.raises(FloatingPointError,
                       match=r"epoch 3, step 1: the loss is not finite.*"
                             r"learning_rate \(now 0.5\)"):
        dkm.fit(X, y)


def test_overflowing_inputs_are_reported(rng):
    X, y = _data(rng)
    dkm = DeepKernelMachineRegressor(max_iter=5)
    with pytest.raises(NumericalError, match="not positive definite"):
        dkm.fit(X * 1e200, y)


def test_import_does_not_need_torch():
    code = ("import sys, skinfinite; "
            "from skinfinite.models import DeepKernelMachineRegressor; "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_torch_names_the_extra(rng, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    X, y = _data(rng)
    with pytest.raises(ImportError, match=r'pip install "\.\[gp\]"'):
        DeepKernelMachineRegressor(max_iter=1).fit(X, y)


def test_more_inducing_points_than_samples_uses_every_sample(rng):
    X = rng.normal(size=(40, 3))
    y = X[:, 0]
    dkm = DeepKernelMachineRegressor(n_inducing=500, max_iter=1,
                                     random_state=0).fit(X, y)
    assert dkm.inducing_points_.shape == (40, 3)
