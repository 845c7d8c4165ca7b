"""Closed-form model selection of the NTK/NNGP estimators against brute force."""
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_diabetes, load_iris
from sklearn.model_selection import (GridSearchCV, KFold, LeaveOneOut,
                                     ShuffleSplit)
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from skinfinite.engine.driver import gram
from skinfinite.engine.cpu.fully_connected import grams_by_depth
from skinfinite.kernels.fully_connected import make_spec
from skinfinite.models import (NNGPClassifier, NNGPClassifierCV,
                               NNGPRegressor, NNGPRegressorCV, NTKClassifier,
                               NTKClassifierCV, NTKRegressor, NTKRegressorCV,
                               SelectionWarning)
from skinfinite.models.selection import (FINE_KERNELS, INPUT_SCALES, _rank,
                                         map_inputs)

SMALL = dict(depths=(1, 2), alphas=(0.01, 1.0))
#: the regressors' grid alone: one input scale and one activation
ONE_VARIANT = dict(input_scales=(1.0,), activations=("relu",))


@parametrize_with_checks([NNGPRegressorCV(), NTKRegressorCV(**SMALL),
                          NNGPClassifierCV(**SMALL), NTKClassifierCV()])
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("activation,parametrization",
                         [("relu", "ntk"), ("tanh", "standard")])
def test_every_depth_from_one_pass_matches_the_engine(rng, activation,
                                                      parametrization):
    X = rng.normal(size=(70, 4))
    spec = make_spec(5, activation, 1.7, 0.3, parametrization)
    grams = grams_by_depth(X, spec, [1, 3, 5])
    assert sorted(grams) == [1, 3, 5]
    for depth in (1, 3, 5):
        ref = gram(X, None, make_spec(depth, activation, 1.7, 0.3,
                                      parametrization))
        for name in ("nngp", "ntk"):
            assert np.allclose(grams[depth][name], ref[name], rtol=1e-12,
                               atol=0)


def _regression(n=60):
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X[:n]), y[:n]


GRID = {"depth": [1, 2, 4], "alpha": [1e-3, 0.1, 1.0, 10.0]}


def _cv_kwargs():
    return dict(depths=tuple(GRID["depth"]), alphas=tuple(GRID["alpha"]),
                input_map=None)


@pytest.mark.parametrize("selecting,plain", [(NNGPRegressorCV, NNGPRegressor),
                                             (NTKRegressorCV, NTKRegressor)])
@pytest.mark.parametrize("cv", [None, 4])
@pytest.mark.parametrize("normalize_y", [True, False])
def test_regressor_selection_matches_grid_search(selecting, plain, cv,
                                                 normalize_y):
    X, y = _regression()
    model = selecting(cv=cv, normalize_y=normalize_y, **ONE_VARIANT,
                      **_cv_kwargs()).fit(X, y)
    brute = GridSearchCV(plain(normalize_y=normalize_y), GRID,
                         cv=LeaveOneOut() if cv is None else cv,
                         scoring="neg_mean_squared_error").fit(X, y)
    assert np.allclose(model.cv_results_["mean_test_score"],
                       brute.cv_results_["mean_test_score"], rtol=1e-7)
    assert {k: model.best_params_[k] for k in GRID} == brute.best_params_
    assert np.array_equal(model.cv_results_["rank_test_score"],
                          brute.cv_results_["rank_test_score"])
    assert model.depth_ == brute.best_params_["depth"]
    assert model.alpha_ == brute.best_params_["alpha"]
    # refitted as the plain estimator with the chosen values
    Xt = X[:7] + 0.1
    assert np.allclose(model.predict(Xt), brute.best_estimator_.predict(Xt),
                       rtol=1e-10)


def test_ntk_training_time_selection_matches_grid_search():
    X, y = _regression(50)
    grid = {"depth": [1, 3], "alpha": [1e-3, 1.0],
            "training_time": [None, 0.5, 5.0]}
    model = NTKRegressorCV(depths=(1, 3), alphas=(1e-3, 1.0),
                           training_times=(None, 0.5, 5.0), cv=3,
                           input_map=None, **ONE_VARIANT).fit(X, y)
    brute = GridSearchCV(NTKRegressor(normalize_y=True), grid, cv=3,
                         scoring="neg_mean_squared_error").fit(X, y)
    assert np.allclose(model.cv_results_["mean_test_score"],
                       brute.cv_results_["mean_test_score"], rtol=1e-7)
    assert model.training_time_ == brute.best_params_["training_time"]
    assert np.allclose(model.predict(X), brute.best_estimator_.predict(X),
                       rtol=1e-9)


def test_variance_grids_and_r2_match_grid_search():
    X, y = _regression(40)
    grid = {"depth": [1, 2], "alpha": [0.1, 1.0],
            "weight_variance": [1.0, 2.0], "bias_variance": [0.0, 0.5]}
    model = NNGPRegressorCV(depths=(1, 2), alphas=(0.1, 1.0),
                            weight_variances=(1.0, 2.0),
                            bias_variances=(0.0, 0.5), cv=KFold(4),
                            scoring="r2", input_map=None,
                            **ONE_VARIANT).fit(X, y)
    brute = GridSearchCV(NNGPRegressor(normalize_y=True), grid,
                         cv=KFold(4)).fit(X, y)
    assert np.allclose(model.cv_results_["mean_test_score"],
                       brute.cv_results_["mean_test_score"], rtol=1e-7)
    for i in range(4):
        assert np.allclose(model.cv_results_[f"split{i}_test_score"],
                           brute.cv_results_[f"split{i}_test_score"])
    assert model.best_params_ == brute.best_params_


@pytest.mark.parametrize("selecting,plain",
                         [(NNGPClassifierCV, NNGPClassifier),
                          (NTKClassifierCV, NTKClassifier)])
@pytest.mark.parametrize("cv", [None, 5])
def test_classifier_selection_matches_grid_search(selecting, plain, cv):
    X, y = load_iris(return_X_y=True)
    X = X[::2]
    y = y[::2]
    model = selecting(cv=cv, **_cv_kwargs()).fit(X, y)
    brute = GridSearchCV(plain(), GRID,
                         cv=LeaveOneOut() if cv is None else cv).fit(X, y)
    # accuracies are counts: equal, up to a decision at a near-tie
    assert np.allclose(model.cv_results_["mean_test_score"],
                       brute.cv_results_["mean_test_score"],
                       atol=1.0 / len(y) + 1e-12)
    assert np.mean(model.cv_results_["mean_test_score"]
                   == brute.cv_results_["mean_test_score"]) > 0.8
    chosen = {k: model.best_params_[k] for k in GRID}
    assert brute.cv_results_["mean_test_score"][
        brute.cv_results_["params"].index(chosen)] >= brute.best_score_ - 1e-12
    assert np.array_equal(model.predict(X),
                          plain(**chosen).fit(X, y).predict(X))


def test_evidence_is_the_refitted_models_log_marginal_likelihood():
    X, y = _regression(50)
    model = NNGPRegressorCV(criterion="evidence", **ONE_VARIANT,
                            **_cv_kwargs()).fit(X, y)
    assert np.isclose(model.best_score_, model.log_marginal_likelihood(),
                      rtol=1e-8)
    for params, score in zip(model.cv_results_["params"],
                             model.cv_results_["mean_test_score"]):
        ref = NNGPRegressor(normalize_y=True, depth=params["depth"],
                            alpha=params["alpha"]).fit(X, y)
        assert np.isclose(score, ref.log_marginal_likelihood(), rtol=1e-8)


def test_fitted_attributes_clone_and_pickle():
    X, y = _regression(40)
    model = NTKRegressorCV(**_cv_kwargs()).fit(X, y)
    for name in ("depth_", "alpha_", "weight_variance_", "bias_variance_",
                 "training_time_", "best_params_", "best_score_",
                 "best_index_", "cv_results_", "best_estimator_", "kernel_"):
        assert hasattr(model, name)
    assert model.kernel_.depth == model.depth_
    assert model.kernel_ is model.best_estimator_.kernel_
    assert len(model.cv_results_["params"]) == 3 * 4
    again = pickle.loads(pickle.dumps(model))
    assert np.array_equal(again.predict(X), model.predict(X))
    assert not hasattr(clone(model), "cv_results_")


@pytest.mark.parametrize("params,match", [
    (dict(alphas=(0.1, 0.0)), "alphas must hold finite positive"),
    (dict(alphas=(0.1, -1.0)), "alphas must hold finite positive"),
    (dict(alphas=()), "alphas must be a non-empty"),
    (dict(alphas=0.1), "'alphas' parameter .* must be a list, tuple or array"),
    (dict(depths=(1, 0)), "depths must hold integers >= 1"),
    (dict(depths=(1, 2.5)), "depths must hold integers >= 1"),
    (dict(depths=(1, 1)), "depths holds a value twice"),
    (dict(weight_variances=(np.nan,)), "weight_variances must hold"),
    (dict(training_times=(-1.0,), cv=3), "training_times must hold"),
    (dict(training_times=(None, 1.0)), "no closed-form leave-one-out"),
    (dict(training_times=(1.0,), criterion="evidence"),
     "training_time=None only"),
    (dict(criterion="aic"), "'criterion' parameter .* must be one of"),
    (dict(scoring="accuracy"), "'scoring' parameter .* must be one of"),
    (dict(cv=ShuffleSplit(3, test_size=0.2, train_size=0.5,
                          random_state=0)),
     "partition the samples"),
])
def test_bad_grids_raise(params, match):
    X, y = _regression(30)
    with pytest.raises(ValueError, match=match):
        NTKRegressorCV(**params).fit(X, y)


def test_class_missing_from_a_training_fold_raises():
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match="Training fold 0 of cv has no "
                                         "sample of class 0"):
        NNGPClassifierCV(cv=KFold(3), **SMALL).fit(X, y)
    y1 = y.copy()
    X1 = X[45:]
    y1 = y1[45:]            # class 0 keeps 5 samples
    y1[0] = 7
    with pytest.warns(UserWarning, match=r"Classes \[7\] have a single"):
        NNGPClassifierCV(**SMALL).fit(X1, y1)


def test_constant_targets_warn():
    X, _ = _regression(30)
    with pytest.warns(UserWarning, match="targets are constant"):
        NNGPRegressorCV(**SMALL).fit(X, np.full(30, 3.0))


def _brute_loo_or_kfold(plain, X, y, cv, sample_weight=None):
    """Mean held-out score of ``plain`` by refitting on every training
    fold, squared errors weighted by the held-out weights."""
    w = np.ones(len(y)) if sample_weight is None else sample_weight
    folds = (LeaveOneOut() if cv is None else KFold(cv)).split(X)
    scores = []
    for train, test in folds:
        model = clone(plain).fit(X[train], y[train],
                                 sample_weight=w[train])
        err = (model.predict(X[test]) - y[test]) ** 2
        scores.append((w[test], -err))
    if cv is None:
        ws = np.concatenate([s[0] for s in scores])
        return np.average(np.concatenate([s[1] for s in scores]), weights=ws)
    return np.mean([np.average(e, weights=ws) for ws, e in scores])


@pytest.mark.parametrize("selecting,plain", [(NNGPRegressorCV, NNGPRegressor),
                                             (NTKRegressorCV, NTKRegressor)])
@pytest.mark.parametrize("cv", [None, 4])
def test_weighted_scores_match_refits(selecting, plain, cv):
    X, y = _regression(32)
    w = np.random.default_rng(0).uniform(0.2, 3.0, len(y))
    model = selecting(depths=(1, 3), alphas=(0.05, 1.0), cv=cv,
                      input_map=None).fit(X, y, sample_weight=w)
    for params, score in zip(model.cv_results_["params"],
                             model.cv_results_["mean_test_score"]):
        ref = plain(normalize_y=True, depth=params["depth"],
                    alpha=params["alpha"])
        assert np.isclose(score, _brute_loo_or_kfold(ref, X, y, cv, w),
                          rtol=1e-7)
    Xt = X[:5] + 0.1
    again = plain(normalize_y=True, depth=model.depth_, alpha=model.alpha_)
    assert np.allclose(model.predict(Xt),
                       again.fit(X, y, sample_weight=w).predict(Xt))


def test_weighted_finite_times_match_refits():
    X, y = _regression(30)
    w = np.random.default_rng(1).uniform(0.2, 3.0, len(y))
    model = NTKRegressorCV(depths=(2,), alphas=(0.1,),
                           training_times=(None, 2.0), cv=3,
                           input_map=None).fit(X, y, sample_weight=w)
    for params, score in zip(model.cv_results_["params"],
                             model.cv_results_["mean_test_score"]):
        ref = NTKRegressor(normalize_y=True, depth=2, alpha=0.1,
                           training_time=params["training_time"])
        assert np.isclose(score, _brute_loo_or_kfold(ref, X, y, 3, w),
                          rtol=1e-7)


def test_integer_weights_are_repeated_samples_for_the_refit():
    X, y = _regression(30)
    w = np.zeros(30)
    w[:20] = 1.0
    model = NNGPRegressorCV(**_cv_kwargs()).fit(X, y, sample_weight=w)
    kept = NNGPRegressorCV(**_cv_kwargs()).fit(X[:20], y[:20])
    assert model.best_params_ == kept.best_params_
    assert np.allclose(model.cv_results_["mean_test_score"],
                       kept.cv_results_["mean_test_score"])
    assert np.allclose(model.predict(X), kept.predict(X))


@pytest.mark.parametrize("cv", [None, 5])
def test_screened_choice_matches_grid_search(cv):
    """Past ``screen_size`` samples the best few candidates of a screen are
    rescored exactly; on these problems the choice is brute force's."""
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X[:120])
    y = y[:120]
    grid = {"depth": [1, 2, 4, 6], "alpha": list(np.logspace(-2, 2, 5))}
    model = NNGPRegressorCV(depths=tuple(grid["depth"]),
                            alphas=tuple(grid["alpha"]), cv=cv,
                            screen_size=50, input_map=None,
                            **ONE_VARIANT).fit(X, y)
    brute = GridSearchCV(NNGPRegressor(normalize_y=True), grid,
                         cv=LeaveOneOut() if cv is None else cv,
                         scoring="neg_mean_squared_error").fit(X, y)
    assert {k: model.best_params_[k] for k in grid} == brute.best_params_
    assert np.isclose(model.best_score_, brute.best_score_, rtol=1e-8)
    rescored = np.isfinite(model.cv_results_["mean_test_score"])
    assert 2 <= rescored.sum() <= 4
    assert np.allclose(model.cv_results_["mean_test_score"][rescored],
                       brute.cv_results_["mean_test_score"][rescored])
    assert np.all(model.cv_results_["rank_test_score"][~rescored]
                  == rescored.sum() + 1)
    assert np.all(np.isfinite(model.cv_results_["mean_screen_score"]))


def _folds_within(rows, cv, X):
    """``KFold(cv)`` of all of X restricted to ``rows``, as positions in
    ``rows`` (the folds a screen on those rows scores); None for ``cv``
    None."""
    if cv is None:
        return None
    at = np.full(len(X), -1)
    at[rows] = np.arange(len(rows))
    return [(at[train][at[train] >= 0], at[test][at[test] >= 0])
            for train, test in KFold(cv).split(X)]


@pytest.mark.parametrize("selecting,weighted,cv", [
    (NNGPRegressorCV, False, None), (NNGPRegressorCV, True, None),
    (NTKRegressorCV, False, None), (NTKRegressorCV, True, None),
    (NNGPRegressorCV, False, 5), (NTKRegressorCV, True, 5)])
def test_single_precision_screen_scores_as_double(selecting, weighted, cv):
    """The screen's eigendecompositions (and k-fold blocks) are in single
    precision: its scores are those of an exact selection on the screening
    samples (with the folds of all samples restricted to them) to a
    relative 2e-3 among the best candidates, and it ranks first the same
    candidate."""
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    w = (np.random.default_rng(1).uniform(0.5, 2.0, len(y)) if weighted
         else None)
    grid = dict(depths=(1, 2, 4, 8), alphas=tuple(np.logspace(-4, 2, 7)),
                **ONE_VARIANT)
    model = selecting(screen_size=150, cv=cv, **grid).fit(
        X, y, sample_weight=w)
    rows = model._screen_rows(len(y), None)
    folds = _folds_within(rows, cv, X)
    exact = selecting(screen_size=None, cv=folds, **grid).fit(
        X[rows], y[rows], sample_weight=None if w is None else w[rows])
    screen = model.cv_results_["mean_screen_score"]
    ref = exact.cv_results_["mean_test_score"]
    best = np.argsort(-ref)[:10]
    assert np.argmax(screen) == np.argmax(ref)
    assert np.allclose(screen[best], ref[best], rtol=2e-3, atol=0)
    assert np.allclose(screen, ref, rtol=2e-2, atol=0)
    assert not np.array_equal(screen, ref)     # single precision was used


@pytest.mark.parametrize("cv", [None, 5])
def test_coarse_screen_passes_on_its_best_kernels(cv):
    """With more kernels than ``FINE_KERNELS``, every candidate is first
    scored on half the screening samples (single precision: to a relative
    2e-2 as an exact selection there), and only the best kernels of that
    coarse screen are scored on all screening samples."""
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    grid = dict(depths=(1, 2, 3, 4, 6, 8),
                alphas=tuple(np.logspace(-3, 2, 6)), **ONE_VARIANT,
                input_map=None)
    model = NNGPRegressorCV(screen_size=200, cv=cv, **grid).fit(X, y)
    screen = model._screen_rows(len(y), None)
    coarse = screen[model._coarse_rows(len(screen), None)]
    assert len(coarse) == 100
    folds = _folds_within(coarse, cv, X)
    exact = NNGPRegressorCV(screen_size=None, cv=folds, **grid).fit(
        X[coarse], y[coarse])
    results = model.cv_results_
    ref = exact.cv_results_["mean_test_score"]
    assert np.allclose(results["mean_coarse_score"], ref, rtol=2e-2, atol=0)
    best = {}
    for i in np.argsort(-results["mean_coarse_score"], kind="stable"):
        best.setdefault(results["params"][i]["depth"], i)
    passed = sorted(list(best)[:FINE_KERNELS])
    scored = np.isfinite(results["mean_screen_score"])
    assert sorted({p["depth"] for p, s in zip(results["params"], scored)
                   if s}) == passed
    assert np.all(results["rank_screen_score"][~scored] == scored.sum() + 1)
    # no coarse screen for as few kernels as it passes on
    few = NNGPRegressorCV(screen_size=200, cv=cv,
                          **dict(grid, depths=(1, 2, 3, 4))).fit(X, y)
    assert "mean_coarse_score" not in few.cv_results_
    assert np.all(np.isfinite(few.cv_results_["mean_screen_score"]))


@pytest.mark.parametrize("selecting,plain,cv", [
    (NNGPRegressorCV, NNGPRegressor, None), (NTKRegressorCV, NTKRegressor, 4),
    (NNGPClassifierCV, NNGPClassifier, None),
    (NTKClassifierCV, NTKClassifier, 4)])
def test_screened_refit_is_the_plain_estimator(selecting, plain, cv):
    """After a screen the chosen finalist's fit, on the Gram the rescoring
    computed, is the refit: it predicts as the plain estimator fitted
    afresh, scores the finalists as brute force does and pickles without
    trace of the reused Gram."""
    if selecting._is_classifier:
        X, y = load_iris(return_X_y=True)
        extra = {}
    else:
        X, y = _regression(90)
        extra = dict(normalize_y=True)
    w = np.random.default_rng(2).uniform(0.5, 2.0, len(y))
    w[::7] = 0.0      # dropped samples: the kept rows' Gram is reused
    model = selecting(cv=cv, screen_size=40, **_cv_kwargs()).fit(
        X, y, sample_weight=w)
    rescored = np.flatnonzero(np.isfinite(
        model.cv_results_["mean_test_score"]))
    assert 2 <= len(rescored) <= 4
    for i in rescored:
        params = model.cv_results_["params"][i]
        ref = plain(depth=params["depth"], alpha=params["alpha"], **extra)
        if not selecting._is_classifier:
            assert np.isclose(model.cv_results_["mean_test_score"][i],
                              _brute_loo_or_kfold(ref, X, y, cv, w),
                              rtol=1e-7)
    fresh = plain(depth=model.depth_, alpha=model.alpha_, **extra).fit(
        X, y, sample_weight=w)
    Xt = X[:7] + 0.1
    out = "decision_function" if selecting._is_classifier else "predict"
    assert np.allclose(getattr(model, out)(Xt), getattr(fresh, out)(Xt),
                       rtol=1e-9, atol=1e-12)
    fitted = getattr(model.best_estimator_, "regressor_",
                     model.best_estimator_)
    for estimator in (model, model.best_estimator_, fitted):
        assert "_grams" not in vars(estimator)
        assert "_regressor" not in vars(estimator)
    assert "_finalist" not in vars(model)
    again = pickle.loads(pickle.dumps(model))
    assert np.array_equal(getattr(again, out)(Xt), getattr(model, out)(Xt))


def test_screened_classifier_matches_grid_search():
    X, y = load_iris(return_X_y=True)
    model = NNGPClassifierCV(cv=5, screen_size=60, **_cv_kwargs()).fit(X, y)
    brute = GridSearchCV(NNGPClassifier(), GRID, cv=5).fit(X, y)
    # the rescored candidates carry brute force's scores; the screen on 60
    # samples may pass over the best (here by one sample in 150)
    rescored = np.isfinite(model.cv_results_["mean_test_score"])
    assert np.allclose(model.cv_results_["mean_test_score"][rescored],
                       brute.cv_results_["mean_test_score"][rescored],
                       atol=1.0 / len(y) + 1e-12)
    assert model.best_score_ >= brute.best_score_ - 1.0 / len(y) - 1e-12


def test_input_maps_bound_far_predictions():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    y = X[:, 0] + 0.1 * rng.standard_normal(60)
    far = 1e4 * X[:3]
    for input_map in ("ball", "lift"):
        model = NNGPRegressorCV(depths=(1, 2), input_map=input_map,
                                **ONE_VARIANT).fit(X, y)
        assert np.all(np.abs(model.predict(far)) < 10 * np.abs(y).max())
        Z = map_inputs(X, input_map)
        ref = NNGPRegressor(depth=model.depth_, alpha=model.alpha_,
                            normalize_y=True).fit(Z, y)
        assert np.allclose(model.predict(X), ref.predict(Z))
    raw = NNGPRegressorCV(depths=(1, 2), input_map=None).fit(X, y)
    assert np.abs(raw.predict(far)).max() > 100 * np.abs(y).max()


def _smooth(n, problem="friedman3", seed=0):
    """Friedman's smooth synthetic problems, little noise."""
    from sklearn import datasets
    X, y = getattr(datasets, "make_" + problem)(
        n_samples=n, noise=0.1 if problem == "friedman3" else 1.0,
        random_state=seed)
    return StandardScaler().fit_transform(X), y


def test_default_input_scales():
    assert INPUT_SCALES == (1.0, 0.25, 0.5, 2.0)
    for cls in (NNGPRegressorCV, NTKRegressorCV):
        assert cls().input_scales == INPUT_SCALES
        assert "input_scales" not in NNGPClassifierCV().get_params()


@pytest.mark.parametrize("selecting,cv,problem", [
    (NNGPRegressorCV, None, "friedman3"), (NTKRegressorCV, None, "friedman3"),
    (NNGPRegressorCV, 5, "friedman2")])
def test_a_clearly_better_input_scale_is_the_selection_on_scaled_inputs(
        selecting, cv, problem):
    X, y = _smooth(200, problem)
    grids = dict(depths=(1, 2), cv=cv)
    model = selecting(input_scales=(1.0, 0.25), activations=("relu",),
                      **grids).fit(X, y)
    assert model.input_scale_ == 0.25
    # exactly the selection at scale 1 on the scaled inputs
    ref = selecting(**ONE_VARIANT, **grids).fit(0.25 * X, y)
    assert model.best_params_ == ref.best_params_
    assert np.array_equal(model.cv_results_["mean_test_score"],
                          ref.cv_results_["mean_test_score"])
    Xt = _smooth(20, problem, seed=1)[0]
    assert np.allclose(model.predict(Xt), ref.predict(0.25 * Xt),
                       rtol=1e-12)
    assert ref.best_score_ > selecting(**ONE_VARIANT,
                                       **grids).fit(X, y).best_score_


def test_an_input_scale_must_beat_the_first_clearly():
    # pure noise: some scale scores best by chance, but not significantly
    # in the paired t-test, so the first is kept
    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, 3))
    y = rng.standard_normal(40)
    scores = {s: NNGPRegressorCV(input_scales=(s,), **SMALL).fit(X, y)
              .best_score_ for s in INPUT_SCALES}
    assert max(scores, key=scores.get) != 1.0
    model = NNGPRegressorCV(**SMALL).fit(X, y)
    assert model.input_scale_ == 1.0
    assert model.best_score_ == scores[1.0]


def test_screened_input_scale_costs_one_selection_on_all_samples(capsys):
    X, y = _smooth(300, "friedman2")
    model = NNGPRegressorCV(input_scales=(1.0, 0.25), screen_size=150,
                            verbose=1, depths=(1, 2)).fit(X, y)
    out = capsys.readouterr().out
    assert "(on 150 samples)" in out
    assert "chose activation relu, input scale 0.25" in out
    # each scale selected on the screening subset, then one screened
    # selection on all samples at the chosen scale
    assert out.count("screened") == 1 and model.input_scale_ == 0.25
    ref = NNGPRegressorCV(**ONE_VARIANT, screen_size=150,
                          depths=(1, 2)).fit(0.25 * X, y)
    assert model.best_params_ == ref.best_params_


def test_screen_reuses_the_chosen_input_scales_selection():
    """With several input scales, the leave-one-out screen of all samples
    takes the scores of the chosen scale's selection on the same subset
    (exact, double precision) instead of computing them again."""
    X, y = _smooth(300, "friedman2")
    model = NNGPRegressorCV(input_scales=(1.0, 0.25), screen_size=150,
                            depths=(1, 2)).fit(X, y)
    rows = model._screen_rows(len(y), None)
    exact = NNGPRegressorCV(**ONE_VARIANT, screen_size=None,
                            depths=(1, 2)).fit(model.input_scale_ * X[rows],
                                               y[rows])
    assert np.array_equal(model.cv_results_["mean_screen_score"],
                          exact.cv_results_["mean_test_score"])


def test_default_activations():
    assert NTKRegressorCV().activations == ("relu", "erf")
    for cls in (NNGPRegressorCV, NNGPClassifierCV, NTKClassifierCV):
        assert cls().activations == ("relu",)


def test_a_clearly_better_activation_is_the_selection_with_it():
    """On a smooth target the erf network's NTK beats the ReLU one by far
    more than its noise: it is chosen, and the fit is exactly the
    selection with that activation alone."""
    X, y = _smooth(200, "friedman1")
    grids = dict(depths=(1, 2), input_scales=(1.0, 0.25))
    model = NTKRegressorCV(activations=("relu", "erf"), **grids).fit(X, y)
    assert model.activation_ == "erf"
    assert model.kernel_.activation == "erf"
    ref = NTKRegressorCV(activations=("erf",), **grids).fit(X, y)
    assert model.input_scale_ == ref.input_scale_
    assert model.best_params_ == ref.best_params_
    assert np.array_equal(model.cv_results_["mean_test_score"],
                          ref.cv_results_["mean_test_score"])
    Xt = _smooth(20, "friedman1", seed=1)[0]
    assert np.allclose(model.predict(Xt), ref.predict(Xt), rtol=1e-12)
    relu = NTKRegressorCV(activations=("relu",), **grids).fit(X, y)
    assert ref.best_score_ > relu.best_score_


def test_an_activation_must_beat_the_first_clearly():
    # pure noise: the other activation may score best by chance, but not
    # significantly in the paired t-test, so the first is kept
    rng = np.random.default_rng(10)
    X = rng.standard_normal((40, 3))
    y = rng.standard_normal(40)
    scores = {a: NTKRegressorCV(activations=(a,), input_scales=(1.0,),
                                **SMALL).fit(X, y).best_score_
              for a in ("relu", "erf")}
    assert scores["erf"] > scores["relu"]
    model = NTKRegressorCV(input_scales=(1.0,), **SMALL).fit(X, y)
    assert model.activation_ == "relu"
    assert model.best_score_ == scores["relu"]


@pytest.mark.parametrize("screen_size", [None, 60])
def test_classifier_activations_choose_and_refit(screen_size):
    X, y = load_iris(return_X_y=True)
    model = NTKClassifierCV(activations=("erf", "relu"),
                            screen_size=screen_size, **SMALL).fit(X, y)
    assert model.activation_ in ("erf", "relu")
    assert model.kernel_.activation == model.activation_
    ref = NTKClassifierCV(activations=(model.activation_,),
                          screen_size=screen_size, **SMALL).fit(X, y)
    assert model.best_params_ == ref.best_params_
    assert np.array_equal(model.predict_proba(X), ref.predict_proba(X))


@pytest.mark.parametrize("cv,criterion", [(None, "evidence"), (5, "cv")])
def test_activations_by_evidence_or_k_fold(cv, criterion):
    """The evidence (one score) is compared as it is; k-fold scores per
    fold, through the same test: either way the choice is one of the
    single-activation selections, whole."""
    X, y = _smooth(120, "friedman1")
    grids = dict(depths=(1, 2), input_scales=(1.0,), cv=cv,
                 criterion=criterion)
    model = NTKRegressorCV(activations=("relu", "erf"), **grids).fit(X, y)
    alone = {a: NTKRegressorCV(activations=(a,), **grids).fit(X, y)
             for a in ("relu", "erf")}
    ref = alone[model.activation_]
    assert model.best_score_ == ref.best_score_
    assert model.best_params_ == ref.best_params_
    if criterion == "evidence":
        assert model.activation_ == max(alone,
                                        key=lambda a: alone[a].best_score_)


def test_selection_warnings_point_at_the_callers_fit():
    X, _ = _regression(30)
    with pytest.warns(SelectionWarning) as record:
        NNGPRegressorCV(**SMALL).fit(X, np.full(30, 3.0))
        NTKClassifierCV(**SMALL).fit(X, np.r_[0, np.ones(29)])
    messages = " ".join(str(r.message) for r in record)
    assert "targets are constant" in messages
    assert "single sample" in messages
    assert all(r.filename == __file__ for r in record)


def test_map_inputs_keeps_dtype_and_norms_bounded():
    X = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    for input_map, cols in (("ball", 4), ("lift", 5)):
        Z = map_inputs(X * 1e6, input_map)
        assert Z.dtype == np.float32 and Z.shape == (5, cols)
        assert np.all(np.linalg.norm(Z, axis=1) <= 2.0 + 1e-5)


def test_verbose_reports_the_stages_and_default_is_silent(capsys):
    X, y = _regression(60)
    NNGPRegressorCV(screen_size=30, **SMALL).fit(X, y)
    assert capsys.readouterr().out == ""
    NNGPRegressorCV(screen_size=30, verbose=1, **SMALL).fit(X, y)
    out = capsys.readouterr().out
    assert "screened 4 candidates on 30 of 60 samples" in out
    assert "chose" in out
    assert "relu: input scale 1 " in out


def test_constant_targets_warn_as_a_selection_warning():
    X, _ = _regression(30)
    with pytest.warns(SelectionWarning, match="targets are constant"):
        NNGPRegressorCV(**SMALL).fit(X, np.full(30, 3.0))


def test_non_finite_scores_rank_last():
    assert np.array_equal(_rank(np.array([0.5, np.nan, 0.7, 0.5])),
                          [2, 4, 1, 2])


@pytest.mark.parametrize("params,match", [
    (dict(screen_size=5), "'screen_size' parameter"),
    (dict(input_map="sphere"), "'input_map' parameter"),
    (dict(input_scales=(1.0, 0.0)), "input_scales must hold"),
    (dict(input_scales=()), "input_scales must be a non-empty"),
    (dict(activations="erf"), "'activations' parameter"),
    (dict(activations=()), "activations must be a non-empty"),
    (dict(activations=("relu", "relu")), "activations holds a value twice"),
    (dict(activations=("relu", 3)), "activations must hold"),
    (dict(activations=("relu", "no-such")), "no-such"),
    (dict(verbose=-1), "'verbose' parameter"),
])
def test_bad_selection_parameters_raise(params, match):
    X, y = _regression(30)
    with pytest.raises(ValueError, match=match):
        NNGPRegressorCV(**params).fit(X, y)


def test_bad_sample_weight_raises():
    X, y = _regression(30)
    with pytest.raises(ValueError, match="sample_weight"):
        NNGPRegressorCV(**SMALL).fit(X, y, sample_weight=np.ones(29))
    with pytest.raises(ValueError, match="at least 3 samples of positive"):
        NNGPRegressorCV(**SMALL).fit(X, y, sample_weight=np.r_[1, 1,
                                                                np.zeros(28)])
