"""Infinite-depth NTK limits: normalised duals, the regime taxonomy, the
limit weights and the limit classifier, checked against closed forms and
against deep finite NTKs."""
import math
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

from skinfinite.activations.definitions import QuadratureActivation, get_activation
from skinfinite.theory.depth_limit import (_koenigs_log, depth_limit_weights,
                                    infinite_depth_regime, koenigs_interpolant,
                                    normalized_dual)
from skinfinite.kernels import NTK
from skinfinite.models import InfiniteDepthNTKClassifier, NTKClassifier

# ------------------------------------------------------------ references
# Normalised Hermite polynomials h_k = He_k / sqrt(k!): an activation
# sum_k c_k h_k with sum c_k^2 = 1 has the normalised dual sum_k c_k^2 rho^k.
H1 = lambda x: x                                   # noqa: E731
H2 = lambda x: (x * x - 1) / math.sqrt(2)          # noqa: E731
H3 = lambda x: (x ** 3 - 3 * x) / math.sqrt(6)     # noqa: E731


def hermite_activation(c1=0.0, c2=0.0, c3=0.0, name="poly"):
    c = np.array([c1, c2, c3]) / math.sqrt(c1 ** 2 + c2 ** 2 + c3 ** 2)
    return QuadratureActivation(
        lambda x: c[0] * H1(x) + c[1] * H2(x) + c[2] * H3(x),
        lambda x: c[0] + c[1] * math.sqrt(2) * x
        + c[2] * (3 * x * x - 3) / math.sqrt(6), name=name)


def polynomial_dual(a):
    """``pd`` and ``pd'`` of ``pd(rho) = sum_k a[k] rho^k``."""
    p = np.polynomial.Polynomial(a)
    return p, p.deriv()


def relu_dual(r):
    return ((np.sqrt(1 - r * r) + (np.pi - np.arccos(r)) * r) / np.pi,
            (np.pi - np.arccos(r)) / np.pi)


def abs_dual(r):
    return ((2 * np.sqrt(1 - r * r) + (np.pi - 2 * np.arccos(r)) * r) / np.pi,
            (np.pi - 2 * np.arccos(r)) / np.pi)


def erf_dual(r, q=1.0):
    # E[erf(u) erf(v)] = (2/pi) arcsin(2 q rho / (1 + 2 q)) at variances q
    s = 2 * q / (1 + 2 * q)
    return (np.arcsin(s * r) / np.arcsin(s),
            s / np.sqrt(1 - (s * r) ** 2) / np.arcsin(s))


def sin_dual(r):
    # E[sin u sin v] = exp(-1) sinh(rho) at unit variances
    return np.sinh(r) / np.sinh(1.0), np.cosh(r) / np.sinh(1.0)


def gauss_moments(phi, dphi, n=200):
    """``E[phi], E[z phi], E[phi^2], E[phi'^2]`` for z ~ N(0, 1)."""
    z, w = np.polynomial.hermite_e.hermegauss(n)
    w = w / w.sum()
    f, df = phi(z), dphi(z)
    return w @ f, w @ (z * f), w @ (f * f), w @ (df * df)


RHO = np.linspace(-0.999, 0.999, 41)


@pytest.mark.parametrize("name, reference", [
    ("relu", relu_dual), ("abs", abs_dual), ("erf", erf_dual),
    ("sin", sin_dual)])
def test_normalized_dual_closed_forms(name, reference):
    pd, dpd = normalized_dual(name, RHO)
    ref_pd, ref_dpd = reference(RHO)
    np.testing.assert_allclose(pd, ref_pd, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dpd, ref_dpd, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(normalized_dual(name, 1.0)[0], 1.0, rtol=1e-14)


def test_normalized_dual_at_other_variance():
    pd, dpd = normalized_dual("erf", RHO, variance=2.5)
    ref_pd, ref_dpd = erf_dual(RHO, 2.5)
    np.testing.assert_allclose(pd, ref_pd, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dpd, ref_dpd, rtol=1e-10)


def test_normalized_dual_derivative_matches_differences():
    h = 1e-6
    for act in ("tanh", "gelu", hermite_activation(1, 0.5, 0.7)):
        r = np.linspace(-0.9, 0.9, 7)
        up, down = normalized_dual(act, r + h)[0], normalized_dual(act, r - h)[0]
        np.testing.assert_allclose(normalized_dual(act, r)[1],
                                   (up - down) / (2 * h), rtol=1e-6)


def test_normalized_dual_of_hermite_combination():
    act = hermite_activation(1.0, 0.0, 1.0)   # pd = (rho + rho^3) / 2
    pd, dpd = normalized_dual(act, RHO)
    np.testing.assert_allclose(pd, (RHO + RHO ** 3) / 2, atol=1e-12)
    np.testing.assert_allclose(dpd, (1 + 3 * RHO ** 2) / 2, atol=1e-12)


def test_normalized_dual_rejects_bad_input():
    with pytest.raises(ValueError, match="rho"):
        normalized_dual("relu", 1.5)
    with pytest.raises(ValueError, match="variance"):
        normalized_dual("relu", 0.5, variance=-1.0)
    zero = QuadratureActivation(lambda x: 0.0 * x, name="zero")
    with pytest.raises(ValueError, match="E\\[phi"):
        normalized_dual(zero, 0.5)


# ------------------------------------------------------------- taxonomy
def _alpha(slope0, slope1):
    return math.log(1 / slope0) / math.log(slope1)


def test_regimes_of_closed_form_activations():
    relu = infinite_depth_regime("relu")
    assert relu.regime == "majority_vote" and relu.alpha == 0.0
    assert relu.dual_at_zero == pytest.approx(1 / np.pi, rel=1e-12)
    assert relu.slope_at_zero == pytest.approx(0.5, rel=1e-12)
    assert relu.slope_at_one == pytest.approx(1.0, rel=1e-12)
    for name in ("abs", "leaky_relu"):
        assert infinite_depth_regime(name).regime == "majority_vote"

    s = np.arcsin(2 / 3)
    erf = infinite_depth_regime("erf")
    assert erf.regime == "singular_kernel"
    # pd'(0) = (2/3) / arcsin(2/3), pd'(1) = (2/3) / (sqrt(5)/3) / arcsin(2/3)
    assert erf.alpha == pytest.approx(
        _alpha(2 / 3 / s, 2 / math.sqrt(5) / s), rel=1e-10)
    sin = infinite_depth_regime("sin")
    assert sin.regime == "singular_kernel"
    assert sin.alpha == pytest.approx(
        math.log(math.sinh(1)) / math.log(1 / math.tanh(1)), rel=1e-10)


def test_regimes_of_quadrature_activations():
    # tanh is odd: pd(0) = 0, pd'(0) = E[z tanh z]^2 / E[tanh^2]
    _, m1, m2, d2 = gauss_moments(np.tanh, lambda x: 1 - np.tanh(x) ** 2)
    tanh = infinite_depth_regime("tanh")
    assert tanh.regime == "singular_kernel"
    assert tanh.alpha == pytest.approx(_alpha(m1 ** 2 / m2, d2 / m2), rel=1e-7)
    # GELU has a mean, so pd(0) > 0, and pd'(1) = E[phi'^2] / E[phi^2] > 1
    from scipy.special import ndtr
    m0, _, m2, d2 = gauss_moments(
        lambda x: x * ndtr(x),
        lambda x: ndtr(x) + x * np.exp(-x * x / 2) / math.sqrt(2 * np.pi))
    gelu = infinite_depth_regime("gelu")
    assert gelu.regime == "majority_vote"
    assert gelu.dual_at_zero == pytest.approx(m0 ** 2 / m2, rel=1e-8)
    assert gelu.slope_at_one == pytest.approx(d2 / m2, rel=1e-7) and d2 > m2


@pytest.mark.parametrize("coefficients, regime, alpha", [
    ((1, 0, 1), "singular_kernel", 1.0),                    # rho/2 + rho^3/2
    ((1, math.sqrt(2), 1), "singular_kernel", 2.0),         # (1, 2, 1) / 4
    ((0, 1, 0), "nearest_neighbor", math.inf),              # rho^2
    ((0, 1, 1), "nearest_neighbor", math.inf),              # (rho^2+rho^3)/2
])
def test_regimes_of_hermite_combinations(coefficients, regime, alpha):
    r = infinite_depth_regime(hermite_activation(*coefficients))
    assert r.regime == regime
    assert r.alpha == pytest.approx(alpha, rel=1e-9)


@pytest.mark.parametrize("activation, message", [
    ("identity", "linear"), ("sigmoid", "pd'\\(1\\)"), ("cos", "pd'\\(1\\)"),
    ("softplus", "pd'\\(1\\)")])
def test_activations_outside_the_taxonomy(activation, message):
    with pytest.raises(ValueError, match=message):
        infinite_depth_regime(activation)


def test_regime_depends_on_variance():
    # erf: pd'(0) = s / arcsin(s), pd'(1) = pd'(0) / sqrt(1 - s^2) with
    # s = 2q / (1 + 2q); alpha falls from 1/2 (nearly linear, q -> 0) to 0
    # (sign-like, q -> inf)
    alphas = []
    for q in (1e-3, 0.1, 10.0, 1e3):
        s = 2 * q / (1 + 2 * q)
        slope0 = s / np.arcsin(s)
        alpha = infinite_depth_regime("erf", variance=q).alpha
        assert alpha == pytest.approx(
            _alpha(slope0, slope0 / math.sqrt(1 - s * s)), rel=1e-8)
        alphas.append(alpha)
    assert alphas[0] == pytest.approx(0.5, abs=1e-3)
    assert np.all(np.diff(alphas) < 0) and alphas[-1] < 0.2


@pytest.mark.slow
def test_rejected_regime_is_not_majority_vote():
    # pd = 0.6 + 0.4 rho^2: pd(0) > 0, pd'(1) = 0.8.  Entries of T_L differ by
    # about 0.8^L, so the regression is solved in 150-digit arithmetic; its
    # signs settle with depth but stay far from the majority vote.
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 150
    rng = np.random.default_rng(0)
    X, Z = unit_rows(rng, 15, 3), unit_rows(rng, 40, 3)
    y = np.where(X[:, 0] > 0.3, 1, -1)
    majority = np.sign(y.sum())

    def ntk(r, depth):
        r = mp.mpf(float(r))
        t = r
        for _ in range(depth):
            t, r = 0.6 + 0.4 * r * r + t * 0.8 * r, 0.6 + 0.4 * r * r
        return t

    gram = X @ X.T
    np.fill_diagonal(gram, 1.0)
    signs = []
    for depth in (100, 300):
        K = mp.matrix([[ntk(v, depth) for v in row] for row in gram])
        c = mp.lu_solve(K, mp.matrix([int(v) for v in y]))
        f = [sum(ntk(v, depth) * c[j] for j, v in enumerate(row))
             for row in Z @ X.T]
        signs.append(np.array([1 if v > 0 else -1 for v in f]))
    assert np.mean(signs[0] == signs[1]) >= 0.9
    assert np.mean(signs[1] == majority) < 0.8


# ---------------------------------------------- the NTK on the sphere
def sphere_ntk_inputs(X, activation, variance=1.0):
    """Scale unit rows so that skinfinite's NTK (biases off) runs the
    normalised recursion: K0 = sw2 |x|^2 / d = q and sw2 = q / E[phi^2]."""
    act = get_activation(activation)
    sw2 = variance / float(act.dual(variance, variance, variance)[0])
    return X * math.sqrt(variance * X.shape[1] / sw2), sw2


def normalised_recursion(rho, depth, pd, dpd):
    """T_0 = rho_0 = rho, T_{l+1} = pd(rho_l) + T_l pd'(rho_l)."""
    r, T = np.array(rho, dtype=float), np.array(rho, dtype=float)
    for _ in range(depth):
        T = pd(r) + T * dpd(r)
        r = np.clip(pd(r), -1.0, 1.0)   # pd(1 + rounding) would run away
    return T


def unit_rows(rng, n, d, orthant=False):
    X = rng.normal(size=(n, d))
    X = np.abs(X) if orthant else X
    return X / np.linalg.norm(X, axis=1, keepdims=True)


@pytest.mark.parametrize("depth", [1, 20, 300])
@pytest.mark.parametrize("name, q, reference", [
    ("erf", 1.0, erf_dual), ("erf", 2.5, lambda r: erf_dual(r, 2.5)),
    ("sin", 1.0, sin_dual), ("relu", 1.0, relu_dual)])
def test_ntk_is_the_normalised_recursion(rng, depth, name, q, reference):
    X = unit_rows(rng, 6, 3)
    Xs, sw2 = sphere_ntk_inputs(X, name, q)
    T = NTK(depth=depth, activation=name, weight_variance=sw2,
            bias_variance=0.0)(Xs)
    rho = np.clip(X @ X.T, -1, 1)
    np.fill_diagonal(rho, 1.0)     # unit rows; arccos magnifies the rounding
    # with variance q the NTK is q times the normalised recursion
    ref = q * normalised_recursion(rho, depth, lambda r: reference(r)[0],
                                   lambda r: reference(r)[1])
    np.testing.assert_allclose(T, ref, rtol=1e-11 * depth + 1e-12)


def test_trig_duals_keep_relative_accuracy_at_small_correlations():
    # deep sin networks drive correlations to 0; a difference of
    # exponentials would leave an absolute error of 1e-16 there
    from skinfinite.activations.definitions import Cos, Sin
    kxy = np.array([1e-300, 1e-12, -1e-8, 0.5, -0.99])
    V, Vd = Sin().dual(1.0, kxy, 1.0)
    np.testing.assert_allclose(V, np.exp(-1) * np.sinh(kxy), rtol=1e-14)
    np.testing.assert_allclose(Vd, np.exp(-1) * np.cosh(kxy), rtol=1e-14)
    V, _ = Cos().dual(2.0, kxy, 3.0)
    np.testing.assert_allclose(V, np.exp(-2.5) * np.cosh(kxy), rtol=1e-14)


# ------------------------------------------------- depth-limit weights
def test_ntk_ratios_tend_to_depth_limit_weights():
    # T_L(rho) / T_L(0.9) -> kappa(rho) / kappa(0.9), with an O(1/L) error
    rho = np.array([0.9, -0.5, 0.2, 0.5, 0.8, 0.95, 0.99])
    Z = np.c_[rho, np.sqrt(1 - rho ** 2)]
    x = np.array([[1.0, 0.0]])
    kappa = depth_limit_weights("erf", rho)
    errors = []
    for depth in (300, 1000, 3000):
        (xs, sw2), (Zs, _) = (sphere_ntk_inputs(x, "erf"),
                              sphere_ntk_inputs(Z, "erf"))
        T = NTK(depth=depth, activation="erf", weight_variance=sw2,
                bias_variance=0.0)(xs, Zs)[0]
        errors.append(np.max(np.abs(T[1:] / T[0] / (kappa[1:] / kappa[0]) - 1)))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.1
    assert errors[2] * 3000 == pytest.approx(errors[1] * 1000, rel=0.1)


def test_depth_limit_weights_reference_iteration():
    # pd = (rho + rho^3)/2: kappa = lim 2^l pd^(l)(rho), iterated here
    act = hermite_activation(1, 0, 1)
    rho = np.array([-0.7, 0.1, 0.5, 0.9, 0.99])
    r, scale = rho.copy(), 1.0
    for _ in range(60):
        r, scale = (r + r ** 3) / 2, scale * 2
    np.testing.assert_allclose(depth_limit_weights(act, rho), r * scale,
                               rtol=1e-9)


def test_depth_limit_weights_have_the_singular_kernel_shape():
    # kappa(1 - u) u^alpha tends to a constant as u -> 0, not before
    r = infinite_depth_regime("erf")
    u = np.logspace(-1, -9, 9)
    shape = depth_limit_weights("erf", 1 - u) * u ** r.alpha
    tail = shape[-4:]
    assert np.ptp(tail) / tail.mean() < 1e-5
    assert abs(shape[0] / tail.mean() - 1) > 0.05


@pytest.mark.parametrize("activation", ["tanh", hermite_activation(1, 1, 1)])
def test_tabulated_weights_match_the_iteration(rng, activation):
    # the classifier's spline against the exact iteration, over the whole
    # range including nearly coincident and nearly antipodal inputs
    gap = np.r_[rng.uniform(0, 2, 2000), 10 ** rng.uniform(-12, 0, 500),
                2 - 10 ** rng.uniform(-12, -1, 200)]
    sign, log_mag = koenigs_interpolant(activation)(gap)
    # the iteration is given the gap, not 1 - gap, which would round it
    exact_sign, exact_log = _koenigs_log(activation, gap, 1.0)
    exact = exact_sign * np.exp(exact_log)
    error = np.abs(sign * np.exp(log_mag) - exact)
    assert np.all(error <= 1e-7 * np.maximum(np.abs(exact), 1.0))


def test_depth_limit_weights_odd_dual_and_errors():
    w = depth_limit_weights("tanh", [-0.99, -0.3, 0.0, 0.3, 0.99, 1.0])
    np.testing.assert_allclose(w[:2], -w[[4, 3]], rtol=1e-9)
    assert w[2] == 0.0 and w[-1] == np.inf
    assert depth_limit_weights("tanh", -1.0) == -np.inf
    with pytest.raises(ValueError, match="singular-kernel regime"):
        depth_limit_weights("relu", 0.5)
    with pytest.raises(ValueError, match="rho"):
        depth_limit_weights("erf", [np.nan])


# --------------------------------------- the limit classifier vs deep NTKs
def _agreement_with_deep_ntk(activation, depths, limit, rng, n=30, m=300):
    X = unit_rows(rng, n, 3, orthant=True)
    Z = unit_rows(rng, m, 3, orthant=True)
    y = (np.sin(4 * X[:, 0]) + X[:, 1] > 0.9).astype(int)
    target = limit.fit(X, y).predict(Z)
    out = []
    for depth in depths:
        (Xs, sw2), (Zs, _) = (sphere_ntk_inputs(X, activation),
                              sphere_ntk_inputs(Z, activation))
        ntk = NTKClassifier(depth=depth, activation=activation,
                            weight_variance=sw2, bias_variance=0.0)
        out.append(np.mean(ntk.fit(Xs, y).predict(Zs) == target))
    return out


def test_relu_ntk_tends_to_majority_vote(rng):
    agree = _agreement_with_deep_ntk(
        "relu", (10, 1000, 3000), InfiniteDepthNTKClassifier("relu"), rng)
    assert agree[0] < agree[1] < agree[2] and agree[2] > 0.95


def test_erf_ntk_tends_to_singular_kernel_classifier(rng):
    # at depth 300 the regression outputs are about 1e-30: NTKClassifier
    # must rank them without adding the one-hot centre back first
    agree = _agreement_with_deep_ntk(
        "erf", (3, 30, 300), InfiniteDepthNTKClassifier(
            "erf", weighting="depth_limit"), rng, n=60)
    assert agree[0] < agree[1] <= agree[2] and agree[2] > 0.9


@pytest.mark.slow
@pytest.mark.parametrize("weighting, final", [("depth_limit", 0.95),
                                              ("power", 0.9)])
def test_erf_ntk_tends_to_singular_kernel_classifier_deep(rng, weighting,
                                                          final):
    agree = _agreement_with_deep_ntk(
        "erf", (10, 100, 1000), InfiniteDepthNTKClassifier(
            "erf", weighting=weighting), rng, n=100, m=400)
    assert agree[0] < agree[2] and agree[2] > final


def test_paper_recursion_tends_to_nearest_neighbour_and_power_law(rng):
    # pd = rho^2 (1-NN) and pd = (rho + rho^3)/2 (alpha = 1), run directly
    X = unit_rows(rng, 40, 3, orthant=True)
    Z = unit_rows(rng, 300, 3, orthant=True)
    y = np.where(np.sin(4 * X[:, 0]) + X[:, 1] > 0.9, 1.0, -1.0)
    cases = [((0, 1, 0), (0, 0, 1), (2, 4, 7)),
             ((1, 0, 1), (0, 0.5, 0, 0.5), (5, 30, 200))]
    for coefficients, dual, depths in cases:
        pd, dpd = polynomial_dual(dual)
        limit = InfiniteDepthNTKClassifier(hermite_activation(*coefficients),
                                           weighting="depth_limit")
        target = limit.fit(X, y).predict(Z)
        agree = []
        gram = X @ X.T
        # a diagonal of 1 - 1e-16 would leave the fixed point 1 (repelling
        # when pd'(1) > 1) after about 50 layers
        np.fill_diagonal(gram, 1.0)
        for depth in depths:
            K = normalised_recursion(gram, depth, pd, dpd)
            k = normalised_recursion(np.clip(Z @ X.T, -1, 1), depth, pd, dpd)
            f = k @ np.linalg.solve(K, y)
            agree.append(np.mean(np.sign(f) == target))
        assert agree[0] < agree[-1] and agree[-1] > 0.95, (dual, agree)


# ------------------------------------------------------ the estimator
def _h2(x):
    return (x * x - 1) / math.sqrt(2)


def _dh2(x):
    return math.sqrt(2) * x


def _d2h2(x):
    return math.sqrt(2) + 0.0 * x


# pd = rho^2 (1-nearest neighbour); module-level functions (all three: the
# finite-difference fallbacks are closures) keep it picklable
SQUARE = QuadratureActivation(_h2, _dh2, _d2h2, name="h2")


@parametrize_with_checks(
    [InfiniteDepthNTKClassifier(input_map="lift"),
     InfiniteDepthNTKClassifier(weighting="depth_limit", input_map="lift"),
     InfiniteDepthNTKClassifier(activation="relu", input_map="lift"),
     InfiniteDepthNTKClassifier(activation=SQUARE, input_map="lift"),
     InfiniteDepthNTKClassifier()],
    expected_failed_checks=lambda est: (
        {"check_estimators_dtypes": "integer casts make rows of zeros, "
         "which have no direction on the sphere"}
        if est.input_map == "project" else {}))
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _blobs(rng, n=60):
    X = np.abs(rng.normal(size=(n, 4)))
    y = np.where(X[:, 0] > X[:, 1], "a", "b")
    y[X[:, 2] > 1.2] = "c"
    return X, y


def test_nearest_neighbour_regime_is_1nn(rng):
    X, y = _blobs(rng)
    Z = np.abs(rng.normal(size=(100, 4)))
    clf = InfiniteDepthNTKClassifier(hermite_activation(0, 1, 0)).fit(X, y)
    unit = FunctionTransformer(
        lambda A: A / np.linalg.norm(A, axis=1, keepdims=True))
    knn = make_pipeline(unit, KNeighborsClassifier(1)).fit(X, y)
    np.testing.assert_array_equal(clf.predict(Z), knn.predict(Z))


def test_majority_vote_regime(rng):
    X, y = _blobs(rng)
    values, counts = np.unique(y, return_counts=True)
    Z = np.abs(rng.normal(size=(50, 4)))
    clf = InfiniteDepthNTKClassifier("gelu").fit(X, y)
    assert np.all(clf.predict(Z) == values[np.argmax(counts)])
    np.testing.assert_allclose(clf.decision_function(Z),
                               np.tile(counts / counts.sum(), (50, 1)))


def test_power_weights_are_the_singular_kernel_vote(rng):
    X, y = _blobs(rng)
    Z = rng.normal(size=(30, 4))
    clf = InfiniteDepthNTKClassifier("sin").fit(X, y)
    alpha = infinite_depth_regime("sin").alpha
    Xu = X / np.linalg.norm(X, axis=1, keepdims=True)
    Zu = Z / np.linalg.norm(Z, axis=1, keepdims=True)
    W = (1 - Zu @ Xu.T) ** -alpha
    shares = np.stack([W[:, y == c].sum(axis=1) for c in clf.classes_], 1)
    shares /= W.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(clf.decision_function(Z), shares, rtol=1e-8)
    np.testing.assert_array_equal(clf.predict(Z),
                                  clf.classes_[np.argmax(shares, axis=1)])


@pytest.mark.parametrize("activation", ["erf", "relu",
                                        hermite_activation(0, 1, 0)])
def test_training_points_keep_their_labels(rng, activation):
    X, y = _blobs(rng)
    for weighting in ("power", "depth_limit"):
        clf = InfiniteDepthNTKClassifier(activation, weighting=weighting)
        clf.fit(X, y)
        np.testing.assert_array_equal(clf.predict(X), y)
        # a rescaled input is the same point of the sphere
        np.testing.assert_array_equal(clf.predict(3.0 * X[:5]), y[:5])


def test_duplicates_vote_among_themselves():
    X = np.array([[1.0, 0.0], [1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    y = np.array([0, 1, 1, 0])
    clf = InfiniteDepthNTKClassifier().fit(X, y)
    assert clf.predict([[5.0, 0.0]])[0] == 1
    assert clf.decision_function([[5.0, 0.0]])[0] == pytest.approx(1 / 3)


def test_lift_keeps_the_norm(rng):
    X = np.array([[1.0, 1.0], [3.0, 3.0]])
    y = np.array([0, 1])
    lifted = InfiniteDepthNTKClassifier(input_map="lift").fit(X, y)
    np.testing.assert_array_equal(lifted.predict([[0.9, 0.9], [3.2, 3.2]]),
                                  [0, 1])
    projected = InfiniteDepthNTKClassifier().fit(X, y)   # both on one point
    assert projected.predict([[0.9, 0.9]])[0] == projected.predict(
        [[3.2, 3.2]])[0]
    assert lifted.X_train_.shape == (2, 3)


def test_estimator_errors(rng):
    X, y = _blobs(rng, 20)
    with pytest.raises(ValueError, match="zeros"):
        InfiniteDepthNTKClassifier(input_map="project").fit(
            np.vstack([X, 0 * X[:1]]), np.r_[y, y[:1]])
    auto = InfiniteDepthNTKClassifier().fit(np.vstack([X, 0 * X[:1]]),
                                            np.r_[y, y[:1]])
    assert auto.input_map_ == "lift" and auto.X_train_.shape[1] == 5
    clf = InfiniteDepthNTKClassifier().fit(X, y)
    assert clf.input_map_ == "project"
    with pytest.raises(ValueError, match="zeros"):
        clf.predict(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:, :3])
    with pytest.raises(ValueError, match="NaN"):
        clf.predict(np.full((1, 4), np.nan))
    with pytest.raises(ValueError, match="weighting"):
        InfiniteDepthNTKClassifier(weighting="gauss").fit(X, y)
    with pytest.raises(ValueError, match="input_map"):
        InfiniteDepthNTKClassifier(input_map="none").fit(X, y)
    with pytest.raises(ValueError, match="pd'\\(1\\)"):
        InfiniteDepthNTKClassifier("sigmoid").fit(X, y)
    with pytest.raises(ValueError, match="linear"):
        InfiniteDepthNTKClassifier("identity").fit(X, y)
    with pytest.raises(ValueError, match="variance"):
        InfiniteDepthNTKClassifier(variance=0.0).fit(X, y)
    with pytest.raises(ValueError, match="one class"):
        InfiniteDepthNTKClassifier().fit(X, np.zeros(len(X)))


def test_clone_pickle_and_grid_search(rng):
    X, y = _blobs(rng)
    clf = InfiniteDepthNTKClassifier("tanh", weighting="depth_limit")
    fitted = clone(clf).fit(X, y)
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict(X[:10]),
                                  fitted.predict(X[:10]))
    grid = GridSearchCV(InfiniteDepthNTKClassifier(),
                        {"activation": ["erf", "relu"],
                         "variance": [0.5, 2.0]}, cv=3).fit(X, y)
    assert grid.best_params_["activation"] in ("erf", "relu")
