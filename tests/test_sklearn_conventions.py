"""scikit-learn conventions shared by every public estimator: the checks at
default parameters, settings in joblib workers, silence unless verbose,
sample weights and float32 predictions."""
import copy
import importlib.util
import pickle

import numpy as np
import pytest
from joblib import Parallel, delayed, parallel_config
from sklearn.base import BaseEstimator
from sklearn.kernel_ridge import KernelRidge
from sklearn.model_selection import GridSearchCV
from sklearn.svm import SVC
from sklearn.utils.estimator_checks import estimator_checks_generator

import skinfinite
from skinfinite import models
from skinfinite.kernels import NNGP, NTK

_NEEDS = {"DeepKernelMachineRegressor": "torch",
          "DeepKernelMachineClassifier": "torch",
          "GPRegressor": "gpytorch", "SVGPRegressor": "gpytorch",
          "SVGPClassifier": "gpytorch"}
# fitting torch models through every check takes minutes
_SLOW = set(_NEEDS)
# the path estimators' defaults search kernels within a time budget on every
# fit: minutes through all checks (tests/test_signature_estimators.py runs
# them with a smaller budget in the default suite)
_SLOW |= {"SignatureKernelClassifier", "SignatureKernelRegressor"}
_EXPECTED_FAILURES = {
    # the built-in selection splits the paths into folds: repeated paths
    # change the folds, and so the chosen kernel
    ("SignatureKernelRegressor", "check_sample_weight_equivalence_on_dense_data"):
        "the model selection's folds see repeated paths, not weights",
    # libsvm's weights rescale C per sample, which is not repetition
    # (scikit-learn expects the same failure of SVC itself)
    ("SignatureKernelClassifier", "check_sample_weight_equivalence_on_dense_data"):
        "SVC's sample_weight is not equivalent to repeating samples",
}


def _check_params():
    params = []
    for name in models.__all__:
        if not (isinstance(getattr(models, name), type)
                and issubclass(getattr(models, name), BaseEstimator)):
            continue
        marks = []
        needs = _NEEDS.get(name)
        if needs and importlib.util.find_spec(needs) is None:
            marks.append(pytest.mark.skip(reason=f"needs {needs}"))
        if name in _SLOW:
            marks.append(pytest.mark.slow)
        estimator = getattr(models, name)()
        for est, check in estimator_checks_generator(estimator, mark=None):
            check_name = getattr(check, "func", check).__name__
            case_marks = list(marks)
            reason = _EXPECTED_FAILURES.get((name, check_name))
            if reason:
                case_marks.append(pytest.mark.xfail(strict=True, reason=reason))
            params.append(pytest.param(est, check, marks=case_marks,
                                       id=f"{name}-{check_name}"))
    return params


@pytest.mark.parametrize("estimator, check", _check_params())
def test_check_estimator_at_defaults(estimator, check):
    check(estimator)


# -- settings reach joblib workers ------------------------------------------

class _RecordingRegressor(models.NNGPRegressor):
    """Scores with the memory budget its fit saw (fits nothing, so that
    worker processes need not compile kernels)."""

    def fit(self, X, y, sample_weight=None):
        self.seen_ = skinfinite.get_config()
        return self

    def score(self, X, y, sample_weight=None):
        return float(self.seen_["memory_budget"])


class _BudgetKernel(NNGP):
    def __call__(self, X, Y=None, eval_gradient=False):
        return skinfinite.get_config()["memory_budget"]


@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_settings_reach_gridsearch_workers(backend, rng):
    X = rng.normal(size=(30, 3))
    y = X[:, 0]
    search = GridSearchCV(_RecordingRegressor(depth=1), {"alpha": [0.1, 1.0]},
                          cv=2, n_jobs=2)
    with parallel_config(backend=backend):
        with skinfinite.config_context(memory_budget=12345):
            search.fit(X, y)
    np.testing.assert_array_equal(search.cv_results_["split0_test_score"],
                                  [12345, 12345])
    assert skinfinite.get_config()["memory_budget"] == 256 * 2**20


def test_settings_reach_kernels_in_worker_processes():
    X = np.zeros((2, 2))
    with skinfinite.config_context(memory_budget="1MB"):
        seen = Parallel(n_jobs=2, backend="loky")(
            delayed(_BudgetKernel(depth=1))(X) for _ in range(2))
    assert seen == [10**6, 10**6]


def test_carried_settings_stay_inside_methods_and_yield_to_explicit_ones():
    with skinfinite.config_context(memory_budget=777):
        kernel = pickle.loads(pickle.dumps(_BudgetKernel(depth=1)))
    X = np.zeros((2, 2))
    assert kernel(X) == 777
    assert skinfinite.get_config()["memory_budget"] == 256 * 2**20
    with skinfinite.config_context(memory_budget=555):
        assert kernel(X) == 555
    # copies within the process carry nothing new
    with skinfinite.config_context(memory_budget=777):
        copied = copy.deepcopy(_BudgetKernel(depth=1))
        assert copy.copy(copied)(X) == 777
    assert copied(X) == 256 * 2**20
    # nothing is carried when the settings are the defaults
    with skinfinite.config_context(show_progress="auto"):
        assert "_skinfinite_config" not in pickle.loads(
            pickle.dumps(NTK())).__dict__


# -- silent unless verbose --------------------------------------------------

def test_estimators_are_silent_by_default(rng, capfd):
    X = rng.normal(size=(30, 3))
    y = X[:, 0]
    # small tiles and no work threshold: kernels called directly would
    # draw a bar here
    with skinfinite.config_context(show_progress="auto", memory_budget=4096,
                                   progress_min_work=0):
        NTK(depth=1)(X)
        assert capfd.readouterr().err != ""
        models.NTKRegressor(depth=1).fit(X, y).predict(X)
        models.NNGPClassifier(depth=1).fit(X, y > 0).predict(X)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_verbose_prints_lines_outside_a_terminal(rng, capfd):
    X = rng.normal(size=(30, 3))
    models.NTKRegressor(depth=1, verbose=2).fit(X, X[:, 0])
    err = capfd.readouterr().err
    assert "kernel blocks" in err and "\r" not in err


def test_torch_estimators_report_epochs_only_when_verbose(rng, capfd):
    pytest.importorskip("torch")
    X = rng.normal(size=(30, 3))
    y = X[:, 0]
    with skinfinite.config_context(show_progress="auto",
                                   progress_min_work=0):
        models.DeepKernelMachineRegressor(max_iter=3, random_state=0).fit(X, y)
    assert capfd.readouterr().err == ""
    models.DeepKernelMachineRegressor(max_iter=3, random_state=0,
                                      verbose=2).fit(X, y)
    lines = capfd.readouterr().err.strip().splitlines()
    assert len(lines) == 3
    assert all("epoch" in line and "loss=" in line for line in lines)


def test_gp_estimators_report_only_when_verbose(rng, capfd):
    pytest.importorskip("gpytorch")
    X = rng.normal(size=(30, 3))
    y = X[:, 0]
    fast = dict(kernel=NNGP(depth=1), random_state=0)
    with skinfinite.config_context(show_progress="auto",
                                   progress_min_work=0):
        models.SVGPRegressor(n_inducing=5, max_iter=2, **fast).fit(X, y)
    assert capfd.readouterr().err == ""
    models.SVGPRegressor(n_inducing=5, max_iter=2, verbose=1, **fast).fit(X, y)
    err = capfd.readouterr().err
    assert "epoch 2/2" in err


# -- sample_weight ----------------------------------------------------------

def _weights(rng, n):
    return rng.integers(0, 4, size=n).astype(float)


@pytest.mark.parametrize("make", [
    lambda: models.NTKRegressor(depth=2, alpha=0.1),
    lambda: models.NNGPRegressor(depth=2, alpha=0.1)])
def test_weighted_ridge_matches_kernel_ridge(make, rng):
    X, Xt = rng.normal(size=(30, 3)), rng.normal(size=(6, 3))
    y, w = np.sin(X[:, 0]), _weights(rng, 30)
    kernel = NTK(depth=2) if isinstance(make(), models.NTKRegressor) \
        else NNGP(depth=2)
    ref = KernelRidge(kernel="precomputed", alpha=0.1).fit(
        kernel(X), y, sample_weight=w)
    np.testing.assert_allclose(make().fit(X, y, sample_weight=w).predict(Xt),
                               ref.predict(kernel(Xt, X)), rtol=1e-10,
                               atol=1e-12)


# a fixed signature kernel: the built-in selection's folds see repeated
# paths, not weights
_FIXED_PATHS = dict(kernel=None, time_augment=True, basepoint=False,
                    lead_lag=False, max_length=None, length_scale=1.0,
                    path_scale=1.0)


@pytest.mark.parametrize("make", [
    lambda: models.NTKRegressor(depth=2, alpha=0.1, training_time=3.0),
    lambda: models.NNGPRegressor(depth=2, alpha=0.1, normalize_y=True),
    lambda: models.SignatureKernelRegressor(dyadic_order=1, alpha=0.1,
                                            normalize_y=True, **_FIXED_PATHS)])
def test_integer_weights_repeat_samples(make, rng):
    signature = isinstance(make(), models.SignatureKernelRegressor)
    shape = (30, 6, 2) if signature else (30, 3)
    X = rng.normal(scale=0.3, size=shape)
    Xt = rng.normal(scale=0.3, size=(5,) + shape[1:])
    y = X.reshape(30, -1)[:, 0]
    w = _weights(rng, 30)
    rows = np.repeat(np.arange(30), w.astype(int))
    weighted = make().fit(X, y, sample_weight=w).predict(Xt, return_std=True)
    repeated = make().fit(X[rows], y[rows]).predict(Xt, return_std=True)
    for a, b in zip(weighted, repeated):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


def test_classifier_weights(rng):
    X = rng.normal(size=(40, 3))
    y = X[:, 0] > 0
    w = _weights(rng, 40)
    rows = np.repeat(np.arange(40), w.astype(int))
    for cls in (models.NTKClassifier, models.NNGPClassifier):
        a = cls(depth=2, alpha=0.1).fit(X, y, sample_weight=w)
        b = cls(depth=2, alpha=0.1).fit(X[rows], y[rows])
        np.testing.assert_allclose(a.decision_function(X),
                                   b.decision_function(X), atol=1e-10)
    paths = np.cumsum(rng.normal(scale=0.3, size=(40, 6, 2)), axis=1)
    clf = models.SignatureKernelClassifier(standardize=False, C=1.0,
                                           **_FIXED_PATHS).fit(
        paths, y, sample_weight=w)
    P = clf._read_paths(paths, reset=False)
    gram = clf.kernel_(P)
    ref = SVC(kernel="precomputed").fit(gram, y, sample_weight=w)
    np.testing.assert_allclose(clf.decision_function(paths),
                               ref.decision_function(gram), atol=1e-8)


def test_nystroem_rejects_weights(rng):
    X = rng.normal(size=(30, 3))
    with pytest.raises(ValueError, match="solver='cholesky'"):
        models.NNGPRegressor(solver="nystroem", n_inducing=10).fit(
            X, X[:, 0], sample_weight=np.ones(30))
    with pytest.raises(ValueError, match="non-negative"):
        models.NTKRegressor().fit(X, X[:, 0], sample_weight=-np.ones(30))


# -- float32 ----------------------------------------------------------------

def test_float32_input_gives_float32_predictions(rng):
    X = rng.normal(size=(20, 3)).astype(np.float32)
    y = X[:, 0]
    for model in (models.NTKRegressor(depth=2), models.NNGPRegressor(depth=2)):
        model.fit(X, y)
        assert model.predict(X).dtype == np.float32
        assert all(a.dtype == np.float32
                   for a in model.predict(X, return_std=True))
        assert model.predict(X.astype(np.float64)).dtype == np.float64
    paths = rng.normal(size=(12, 5, 2)).astype(np.float32)
    sig = models.SignatureKernelRegressor(dyadic_order=1).fit(paths, y[:12])
    assert sig.predict(paths).dtype == np.float32


def test_progress_lines_every_tenth_outside_a_terminal(capfd):
    from skinfinite._core.progress import progress
    with skinfinite.config_context(show_progress=True):
        with progress(50, 0, "tiles", unit="block") as bar:
            for _ in range(50):
                bar.update()
    lines = capfd.readouterr().err.strip().splitlines()
    assert len(lines) == 10 and lines[-1].startswith("tiles: block 50/50")
