"""Tests of the built-in model selection of the signature estimators."""
import warnings

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, KFold, LeaveOneOut, StratifiedKFold

import skinfinite
from skinfinite.models import SignatureKernelClassifier, SignatureKernelRegressor
from skinfinite.models._path_selection import (
    FAMILIES, FAMILY_PRIOR, ClassifierScores, DifferencedKernel, PathSearch,
    SelectionWarning, SeriesRBFKernel, _scan, difference, shorten)
from skinfinite._core.sequences import check_sequences

#: every option of the signature kernel fixed (no selection of its own)
FIXED = dict(kernel=None, dyadic_order=0, time_augment=True, basepoint=False,
             lead_lag=False, max_length=None, standardize=False)


@pytest.fixture(autouse=True)
def _quiet():
    with skinfinite.config_context(show_progress=False):
        yield


def _two_classes(rng, n=24, length=10, noise=0.4):
    t = np.linspace(0, 1, length)[None, :, None]
    freq = np.r_[np.full(n // 2, 1.0), np.full(n - n // 2, 2.0)][:, None, None]
    X = np.sin(2 * np.pi * freq * t) + noise * rng.normal(size=(n, length, 1))
    return X, (freq[:, 0, 0] > 1.5).astype(int)


def _scores_by_params(params, scores):
    return {tuple(sorted((k, round(float(v), 9)) for k, v in p.items())): s
            for p, s in zip(params, scores)}


def _assert_same_cv_scores(model, search, grid, **tolerance):
    """The selection's mean CV score of every setting of ``grid`` equals
    GridSearchCV's (``tolerance``: the keywords of ``pytest.approx``)."""
    ours = _scores_by_params(
        [{k: p[k] for k in grid} for p in model.cv_results_["params"]],
        model.cv_results_["mean_test_score"])
    brute = _scores_by_params(search.cv_results_["params"],
                              search.cv_results_["mean_test_score"])
    assert ours.keys() == brute.keys()
    for key in brute:
        assert ours[key] == pytest.approx(brute[key], **tolerance)


def test_classifier_selection_equals_grid_search(rng):
    X, y = _two_classes(rng)
    grid = {"path_scale": [0.3, 1.0], "length_scale": [0.5, 2.0], "C": [0.1, 1.0, 10.0]}
    model = SignatureKernelClassifier(**FIXED, **grid).fit(X, y)
    fixed = {k: v[0] for k, v in grid.items()}
    search = GridSearchCV(SignatureKernelClassifier(**FIXED, **fixed), grid,
                          cv=StratifiedKFold(5, shuffle=True, random_state=0)).fit(X, y)
    _assert_same_cv_scores(model, search, grid, abs=1e-12)
    assert model.best_score_ == pytest.approx(search.best_score_)
    assert {k: model.best_params_[k] for k in grid} in [
        p for p, r in zip(search.cv_results_["params"],
                          search.cv_results_["rank_test_score"]) if r == 1]
    # the refit is the brute-force search's model at the chosen setting
    chosen = SignatureKernelClassifier(**FIXED, **{k: model.best_params_[k]
                                                   for k in grid}).fit(X, y)
    np.testing.assert_allclose(model.decision_function(X), chosen.decision_function(X),
                               atol=1e-8)


@pytest.mark.parametrize("cv, brute_cv", [(None, LeaveOneOut()),
                                          (4, KFold(4, shuffle=True, random_state=0))])
def test_regressor_selection_equals_grid_search(rng, cv, brute_cv):
    X = np.cumsum(rng.normal(size=(20, 8, 2)), axis=1) * 0.3
    y = X[:, -1, 0] - X[:, 0, 1] + 0.1 * rng.normal(size=20)
    grid = {"length_scale": [0.5, 2.0], "alpha": [1e-2, 1e-1, 1.0]}
    model = SignatureKernelRegressor(**FIXED, path_scale=1.0, cv=cv, **grid).fit(X, y)
    fixed = {k: v[0] for k, v in grid.items()}
    search = GridSearchCV(SignatureKernelRegressor(**FIXED, path_scale=1.0, **fixed),
                          grid, cv=brute_cv, scoring="neg_mean_squared_error").fit(X, y)
    _assert_same_cv_scores(model, search, grid, rel=1e-7)
    assert {k: model.best_params_[k] for k in grid} == search.best_params_


class _PeakScorer:
    """Scores peaking at ``peak`` (in log10 of the regularisation)."""

    name, mode = "C", "auto"

    def __init__(self, peak):
        self.peak = peak

    def grid(self):
        return [1.0, 10.0, 100.0]

    def fold_scores(self, K, value):
        return np.array([-abs(np.log10(value) - self.peak)])


@pytest.mark.parametrize("peak", [-3.0, 0.0, 5.0])
def test_regularization_grid_extends_past_its_edges(peak):
    rows, chosen, _ = _scan(_PeakScorer(peak), None, (1e-4, 1e6))
    values = [v for v, _ in rows]
    assert chosen == pytest.approx(10 ** peak)
    # the chosen value is interior: both neighbours were scored
    assert min(values) < chosen < max(values)


def test_chosen_scales_are_interior(rng):
    X, y = _two_classes(rng, n=40, length=16, noise=1.5)
    model = SignatureKernelClassifier(kernel="rbf").fit(X, y)
    params = model.cv_results_["params"]
    scales = sorted({p["length_scale"] for p in params})
    best = model.best_params_["length_scale"]
    assert scales[0] < best < scales[-1]
    assert model.best_params_["kernel"] == "rbf"
    assert np.isclose(model.best_score_, model.cv_results_["mean_test_score"].max())


def test_default_selection_and_refit(rng):
    X, y = _two_classes(rng, n=30, length=40)
    model = SignatureKernelClassifier(time_budget=None).fit(X, y)
    assert model.best_params_["kernel"] in FAMILIES
    assert set(model.cv_results_["stage"]) >= {"rbf", "signature", "options",
                                               "resolution", "sum"}
    assert model.score(X, y) >= 0.9
    # predictions go through the chosen kernel on the scaled paths
    K = model.kernel_(model._read_paths(X[:5], reset=False), model.paths_fit_)
    np.testing.assert_allclose(model.decision_function(X[:5]),
                               model.svc_.decision_function(K), atol=1e-8)


def test_regressor_default_selection(rng):
    X = np.cumsum(rng.normal(size=(30, 12, 2)), axis=1) * 0.3
    y = X[:, -1, 0] - X[:, 0, 1]
    model = SignatureKernelRegressor(kernel=["rbf", "signature"]).fit(X, y)
    assert "alpha" in model.best_params_ and model.best_score_ <= 0
    assert model.score(X, y) > 0.5


def test_budget_shrinks_the_search_and_says_so(rng):
    X, y = _two_classes(rng, n=30, length=64)
    with pytest.warns(SelectionWarning, match="time_budget"):
        model = SignatureKernelClassifier(kernel="signature", time_budget=1e-3).fit(X, y)
    # the first setting is always evaluated
    assert len({str(p) for p in model.cv_results_["params"]}) >= 1
    assert model.predict(X).shape == (30,)


@pytest.mark.parametrize("params, match", [
    ({"C": [1.0, -1.0]}, "C candidates must be finite numbers > 0"),
    ({"C": []}, "C is an empty list"),
    ({"C": "big"}, "'C' parameter .* must be one of 'auto', a float"),
    ({"length_scale": [np.inf]}, "length_scale candidates"),
    ({"time_augment": ["yes"]}, "time_augment candidates must be in"),
    ({"dyadic_order": [0.5]}, "dyadic_order candidates must be integers"),
    ({"max_length": 1}, "'max_length' parameter .* an int in the range \\[2, inf\\)"),
    ({"kernel": "conv2d"}, "'kernel' parameter .* must be one of 'auto', 'rbf'"),
    ({"kernel": ["rbf", 3]}, "kernel must be 'auto'"),
    ({"time_budget": -1.0}, "'time_budget' parameter"),
])
def test_invalid_grids(rng, params, match):
    X, y = _two_classes(rng)
    with pytest.raises(ValueError, match=match):
        SignatureKernelClassifier(**params).fit(X, y)


def test_invalid_alpha_grid(rng):
    X = rng.normal(size=(10, 5, 1))
    with pytest.raises(ValueError, match="alpha candidates"):
        SignatureKernelRegressor(alpha=[0.0, 1.0]).fit(X, X[:, 0, 0])


def test_class_missing_from_a_fold_warns(rng):
    X, y = _two_classes(rng)
    y = y.copy()
    y[0] = 2                      # one path of a third class
    with pytest.warns(SelectionWarning, match="missing from the training part"):
        SignatureKernelClassifier(kernel="rbf").fit(X, y)
    with pytest.raises(ValueError, match="holds only class"):
        ClassifierScores(np.r_[0, 0, 0, 0, 0, 1, 1, 1, 1, 1], KFold(2), "auto", None)


def test_few_paths_per_class_reduce_the_folds(rng):
    X, y = _two_classes(rng, n=6)
    with pytest.warns(SelectionWarning, match="uses 3 stratified folds") as w:
        model = SignatureKernelClassifier(kernel="rbf").fit(X, y)
    assert w[0].filename == __file__       # the caller's line
    assert model.predict(X).shape == (6,)
    with pytest.raises(ValueError, match="at least 2 paths of some class"):
        SignatureKernelClassifier(kernel="rbf").fit(X[[0, 3]], y[[0, 3]])


def test_selection_that_never_improves_warns(rng):
    X = rng.normal(size=(20, 6, 1))
    y = np.r_[np.zeros(10), np.ones(10)]
    X[:] = X[:1]                  # every path the same: nothing to learn
    with pytest.warns(SelectionWarning, match="No setting"):
        SignatureKernelClassifier(kernel="rbf").fit(X, y)


def test_constant_series_warn(rng):
    X, y = _two_classes(rng)
    X = np.repeat(X[:, :1], X.shape[1], axis=1)    # every path constant
    with pytest.warns(SelectionWarning, match="constant"):
        SignatureKernelClassifier(kernel="signature").fit(X, y)


def test_no_warning_on_ordinary_data(rng):
    X, y = _two_classes(rng, n=30)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SignatureKernelClassifier(time_budget=None).fit(X, y)


def test_fixed_parameters_do_not_select(rng):
    X, y = _two_classes(rng)
    model = SignatureKernelClassifier(**FIXED, path_scale=0.5, length_scale=1.0,
                                      C=1.0).fit(X, y)
    assert not hasattr(model, "best_params_")


def test_shorten_is_the_mean_of_segments():
    X = np.arange(10.0)[None, :, None]
    short = shorten(check_sequences(X), 4)
    # segments of 2, 3, 3 and 2 points
    np.testing.assert_allclose(short.values[0, :, 0], [0.5, 3.0, 6.0, 8.5])
    ragged = check_sequences([np.arange(10.0)[:, None], np.arange(3.0)[:, None]])
    short = shorten(ragged, 4)
    assert short.lengths.tolist() == [4, 3]
    np.testing.assert_allclose(short.values[1, :, 0], [0, 1, 2, 2])


def test_series_rbf_kernel(rng):
    X = rng.normal(size=(5, 7, 2))
    K = SeriesRBFKernel(1.5)(X)
    flat = X.reshape(5, -1)
    d2 = ((flat[:, None] - flat[None]) ** 2).sum(-1)
    np.testing.assert_allclose(K, np.exp(-d2 / (2 * 1.5 ** 2)))
    ragged = [rng.normal(size=(n, 1)) for n in (5, 9)]
    assert SeriesRBFKernel(1.0, length=7)(ragged).shape == (2, 2)
    with pytest.raises(ValueError, match="equal length"):
        SeriesRBFKernel(1.0)(ragged)


def _search_with(scores, errors):
    """A search that has scored one best setting per family."""
    search = PathSearch.__new__(PathSearch)
    search.verbose = 0
    search.family_best = {f: (s, f, None, {"kernel": f}, 1.0)
                          for f, s in scores.items()}
    search.family_error = dict(errors)
    return search


def test_prefer_the_prior_family_within_one_standard_error():
    # the signature family leads by less than its standard error: the
    # convolutional family, first in the prior, is chosen
    search = _search_with({"signature": 0.92, "rbf": 0.90, "conv": 0.88},
                          {"signature": 0.05, "rbf": 0.02, "conv": 0.03})
    search._prefer()
    assert search.best[3]["kernel"] == "conv"
    # ... unless the lead exceeds it; then the next family of the prior
    # within reach, then the best
    search = _search_with({"signature": 0.92, "rbf": 0.90, "conv": 0.80},
                          {"signature": 0.05, "rbf": 0.02, "conv": 0.03})
    search._prefer()
    assert search.best[3]["kernel"] == "rbf"
    search = _search_with({"signature": 0.92, "rbf": 0.80, "conv": 0.80},
                          {"signature": 0.01, "rbf": 0.02, "conv": 0.03})
    search._prefer()
    assert search.best[3]["kernel"] == "signature"
    assert set(FAMILY_PRIOR) >= set(FAMILIES)


def test_selection_applies_the_one_standard_error_rule(rng):
    X, y = _two_classes(rng, n=30, length=16, noise=0.8)
    model = SignatureKernelClassifier(kernel=["rbf", "conv"], C=1.0).fit(X, y)
    res = model.cv_results_
    best = {}
    for p, m, s in zip(res["params"], res["mean_test_score"], res["std_test_score"]):
        if m > best.get(p["kernel"], (-1, 0))[0]:
            best[p["kernel"]] = (m, s)
    top = max(best, key=lambda f: best[f][0])
    # fold standard deviation (ddof=0) to the standard error of 5 folds
    error = best[top][1] * np.sqrt(5 / 4) / np.sqrt(5)
    expected = "conv" if best["conv"][0] >= best[top][0] - error - 1e-12 else top
    assert model.best_params_["kernel"] == expected
    assert model.best_score_ == pytest.approx(best[expected][0])


def test_differenced_kernel(rng):
    X = rng.normal(size=(5, 12, 2))
    kernel = SeriesRBFKernel(length_scale=3.0)
    np.testing.assert_allclose(DifferencedKernel(kernel)(X),
                               kernel(np.diff(X, axis=1)), atol=1e-14)
    np.testing.assert_allclose(DifferencedKernel(kernel)(X[:2], X[2:]),
                               kernel(np.diff(X[:2], axis=1), np.diff(X[2:], axis=1)),
                               atol=1e-14)
    # paths of other lengths: the differences of each path's own points
    seqs = difference(check_sequences([X[0], X[1, :7]]))
    np.testing.assert_array_equal(seqs.lengths, [11, 6])
    np.testing.assert_allclose(seqs.path(1), np.diff(X[1, :7], axis=0))


def test_conv_family_sums_the_paths_and_their_differences(rng):
    from skinfinite.kernels import ConvNNGP
    X, y = _two_classes(rng, n=16, length=20)
    model = SignatureKernelClassifier(kernel="conv", C=1.0, path_scale=1.0,
                                      standardize=False).fit(X, y)
    assert model.best_params_["differences"] is True
    conv = ConvNNGP(readout="ppv", padding="same",
                    bias_variance=model.best_params_["bias_variance"])
    expected = conv(X) + conv(np.diff(X, axis=1))
    np.testing.assert_allclose(model.kernel_(X), expected, atol=1e-12)
    import pickle
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(again.decision_function(X[:4]),
                               model.decision_function(X[:4]), atol=1e-12)


# ------------------------------------------- random-feature route (conv)

def _rf_exact(X, bias_variance=1.0):
    from skinfinite.kernels import ConvNNGP
    conv = ConvNNGP(readout="ppv", padding="same", bias_variance=bias_variance)
    return conv(X) + conv(np.diff(X, axis=1))


def test_conv_random_feature_kernel_converges_to_the_exact_sum(rng):
    from skinfinite.models._path_selection import ConvRandomFeatureKernel
    X = rng.normal(size=(6, 40, 1)).cumsum(axis=1) / 4.0
    exact = _rf_exact(X, 0.5)
    errors = []
    for m in (100, 6400):
        err = [np.abs(ConvRandomFeatureKernel(m, 0.5, random_state=s)(X)
                      - exact).max() for s in range(3)]
        errors.append(np.mean(err))
    scale = np.abs(exact).max()
    # Monte Carlo error ~ m ** -0.5: 8x smaller expected, 3x demanded
    assert errors[1] < errors[0] / 3.0
    assert errors[1] < 0.03 * scale


def test_conv_random_feature_kernel_is_a_fixed_function(rng):
    import pickle
    from sklearn.base import clone
    from skinfinite.models._path_selection import ConvRandomFeatureKernel
    X = rng.normal(size=(7, 30, 2))
    k = ConvRandomFeatureKernel(200, 2.0, random_state=3)
    K = k(X)
    np.testing.assert_array_equal(ConvRandomFeatureKernel(200, 2.0, random_state=3)(X), K)
    assert np.abs(ConvRandomFeatureKernel(200, 2.0, random_state=4)(X) - K).max() > 1e-3
    np.testing.assert_array_equal(clone(k)(X), K)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(k))(X), K)
    np.testing.assert_allclose(k.diag(X), np.diag(K), atol=1e-12)
    # cross Grams are rows of the Gram, whatever was cached before
    np.testing.assert_allclose(k(X[:3], X), K[:3], atol=1e-12)
    np.testing.assert_allclose(k(X[:3], X[2:]), K[:3, 2:], atol=1e-12)
    np.testing.assert_allclose(k(X[:3], X), K[:3], atol=1e-12)
    assert k.hyperparameters == []
    with pytest.raises(ValueError, match="no hyperparameter gradient"):
        k(X, eval_gradient=True)
    # paths of other lengths are interpolated to ``length`` points
    with pytest.raises(ValueError, match="set length"):
        k([X[0], X[1, :20]])
    kl = ConvRandomFeatureKernel(200, 2.0, length=30, random_state=3)
    np.testing.assert_allclose(kl([X[0], X[1]]), K[:2, :2], atol=1e-12)
    assert kl([X[0], X[1, :20]]).shape == (2, 2)
    # several bias variances from one pass: the Grams of clones with each
    biases = [0.0, 0.5, 2.0, 32.0]
    G = k.grams_by_bias(X, biases)
    assert G.shape == (4, 7, 7)
    for b, Gb in zip(biases, G):
        np.testing.assert_allclose(Gb, clone(k).set_params(bias_variance=b)(X),
                                   rtol=1e-12, atol=1e-12)


def _hidden_at_half_resolution(rng, n=24, length=256):
    """Two classes told apart only by an alternating +-2 pattern at an even
    position, which the means of pairs of points (the series shortened to
    half its length and less) cancel exactly."""
    X = 0.3 * rng.normal(size=(n, length, 1))
    y = np.arange(n) % 2
    for i in np.flatnonzero(y):
        start = 2 * rng.integers(0, (length - 8) // 2)
        X[i, start:start + 8, 0] += 2.0 * np.array([1, -1] * 4)
    return X, y


def test_selection_takes_the_random_feature_route_when_the_budget_forbids(rng):
    from sklearn.svm import SVC
    from skinfinite.models._path_selection import ConvRandomFeatureKernel
    X, y = _hidden_at_half_resolution(rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SelectionWarning)
        model = SignatureKernelClassifier(kernel="conv", time_budget=1.0).fit(X, y)
    stages = list(model.cv_results_["stage"])
    assert "conv features" in stages
    # the exact kernel's search at full length does not fit: every
    # convolutional setting is scored through the features at full length
    conv = [p for p in model.cv_results_["params"] if p["kernel"] == "conv"]
    assert all(p["n_components"] >= 1000 and p["max_length"] is None
               for p in conv)
    biases = sorted({p["bias_variance"] for p in conv})
    assert len(biases) >= 5 and 1.0 in biases
    # the pattern is only visible at full length: the route wins
    assert model.best_params_["n_components"] >= 1000
    assert isinstance(model.kernel_, ConvRandomFeatureKernel)
    assert model.best_score_ > 0.9
    # predict uses the same features as the fit's Gram
    Xt, yt = _hidden_at_half_resolution(np.random.default_rng(1))
    svc = SVC(kernel="precomputed", C=model.best_params_["C"]).fit(
        model.kernel_(model.paths_fit_), y)
    paths = model._read_paths(Xt, reset=False)
    np.testing.assert_array_equal(
        model.predict(Xt), svc.predict(model.kernel_(paths, model.paths_fit_)))
    assert np.mean(model.predict(Xt) == yt) > 0.8


def test_selection_keeps_the_exact_kernel_when_the_full_length_fits(rng):
    X, y = _hidden_at_half_resolution(rng, n=16, length=128)
    model = SignatureKernelClassifier(kernel="conv", time_budget=None).fit(X, y)
    assert "conv features" not in list(model.cv_results_["stage"])
    assert any(p["max_length"] is None for p in model.cv_results_["params"])
    assert "n_components" not in model.best_params_


def test_regressor_takes_the_random_feature_route_too(rng):
    from skinfinite.models._path_selection import ConvRandomFeatureKernel
    X = rng.normal(size=(40, 300, 1)).cumsum(axis=1) / 10.0
    y = X[:, ::10, 0].mean(axis=1) + 0.1 * rng.normal(size=40)
    model = SignatureKernelRegressor(kernel="conv", time_budget=5.0).fit(X, y)
    assert set(model.cv_results_["stage"]) == {"conv features", "conv refine"}
    assert isinstance(model.kernel_, ConvRandomFeatureKernel)
    assert model.kernel_.bias_variance == model.best_params_["bias_variance"]
    # the features' kernel ridge fits the smooth target
    assert model.score(X, y) > 0.8
