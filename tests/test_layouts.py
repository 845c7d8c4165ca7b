"""Input layouts of sequences: (n, length, C), aeon's (n, C, length), lists
and nested frames, read once by check_sequences."""
import numpy as np
import pytest
from sklearn.base import clone

from skinfinite import NeuralSignatureKernel, SignatureKernel, flatten_sequences
from skinfinite._core.sequences import check_sequences, resolve_layout
from skinfinite.benchmark import ResampledSeries, SeriesSummary
from skinfinite.models import (GPRegressor, SignatureKernelClassifier,
                               SignatureKernelRegressor)


def _walks(rng, n, length, channels):
    return np.cumsum(rng.normal(size=(n, length, channels)), axis=1) * 0.1


# ------------------------------------------------------------ the reader
@pytest.mark.parametrize("shape, layout", [
    ((3, 40, 6), "ntc"),      # length clearly longer: skinfinite, tslearn
    ((3, 6, 40), "nct"),      # aeon's BasicMotions shape
    ((3, 1, 24), "nct"),      # aeon's univariate (n, 1, length)
    ((3, 24, 1), "ntc"),
    ((3, 8, 4), "ntc"),       # exactly twice
    ((3, 4, 8), "nct"),
])
def test_auto_reads_clear_shapes(shape, layout):
    X = np.arange(np.prod(shape), dtype=float).reshape(shape)
    assert resolve_layout(X) == layout
    expected = X if layout == "ntc" else X.transpose(0, 2, 1)
    np.testing.assert_array_equal(check_sequences(X).values, expected)


def test_auto_reads_the_package_loaders_as_before():
    from skinfinite.datasets import load_basic_motions, load_japanese_vowels

    for data in (load_basic_motions(), load_japanese_vowels()):
        for X in (data.X_train, data.X_test):
            assert resolve_layout(X) == "ntc"
            assert check_sequences(X).n_channels == data.n_channels


@pytest.mark.parametrize("shape", [(3, 5, 8), (3, 8, 5), (2, 3, 2), (4, 6, 6)])
def test_auto_raises_where_both_readings_fit(shape):
    X = np.zeros(shape)
    with pytest.raises(ValueError, match="layout='ntc'.*layout='nct'") as err:
        check_sequences(X)
    a, b = shape[1:]
    assert f"{a} points of {b} channels" in str(err.value)
    assert f"{b} points of {a} channels" in str(err.value)
    # either explicit layout reads it
    assert check_sequences(X, layout="ntc").values.shape == (shape[0], a, b)
    assert check_sequences(X, layout="nct").values.shape == (shape[0], b, a)


def test_n_channels_settles_the_reading():
    X = np.zeros((3, 5, 8))
    assert check_sequences(X, n_channels=5).values.shape == (3, 8, 5)
    assert check_sequences(X, n_channels=8).values.shape == (3, 5, 8)
    with pytest.raises(ValueError, match="cannot read safely"):
        check_sequences(np.zeros((3, 6, 6)), n_channels=6)


def test_explicit_layout_overrides_the_shape_rule(rng):
    X = rng.normal(size=(2, 6, 40))
    assert check_sequences(X, layout="ntc").values.shape == (2, 6, 40)
    np.testing.assert_array_equal(check_sequences(X, layout="nct").values,
                                  X.transpose(0, 2, 1))


@pytest.mark.parametrize("layout", ["NTC", "tnc", None, 3])
def test_unknown_layout_raises(layout):
    with pytest.raises(ValueError, match="layout must be one of"):
        check_sequences(np.zeros((2, 10, 2)), layout=layout)


def test_list_constant_axis_is_channels(rng):
    ntc = [rng.normal(size=(n, 12)) for n in (7, 20, 29)]
    nct = [p.T for p in ntc]
    assert resolve_layout(ntc) == "ntc" and resolve_layout(nct) == "nct"
    a, b = check_sequences(ntc), check_sequences(nct)
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.lengths, [7, 20, 29])
    # aeon's univariate unequal-length form
    uni = check_sequences([rng.normal(size=(1, n)) for n in (5, 9)])
    assert uni.n_channels == 1 and uni.lengths.tolist() == [5, 9]


def test_list_ambiguities_raise(rng):
    with pytest.raises(ValueError, match="cannot read safely"):
        check_sequences([rng.normal(size=(12, 20)), rng.normal(size=(12, 20))])
    with pytest.raises(ValueError, match="differ in both axes"):
        check_sequences([rng.normal(size=(12, 20)), rng.normal(size=(13, 21))])
    assert check_sequences([np.zeros((12, 20))] * 2,
                           layout="nct").values.shape == (2, 20, 12)


def test_nct_padding_by_trailing_nan(rng):
    X = rng.normal(size=(2, 3, 10))
    X[1, :, 6:] = np.nan
    seqs = check_sequences(X)
    assert seqs.lengths.tolist() == [10, 6]
    np.testing.assert_array_equal(seqs.path(1), X[1, :, :6].T)


def test_flattened_form_is_point_major_in_every_layout(rng):
    X = rng.normal(size=(3, 5, 2))
    flat = X.reshape(3, -1)
    for layout in ("auto", "ntc", "nct"):
        np.testing.assert_array_equal(
            check_sequences(flat, n_channels=2, layout=layout).values, X)
    # flatten_sequences reads aeon's layout and writes the point-major form
    np.testing.assert_array_equal(
        flatten_sequences(X.transpose(0, 2, 1).copy(), layout="nct"), flat)


@pytest.mark.parametrize("layout", ["ntc", "nct", "auto"])
def test_nan_in_a_list_entry_raises(rng, layout):
    path = rng.normal(size=(6, 2))
    path[-1] = np.nan       # an all-NaN last step is not padding in a list
    paths = [rng.normal(size=(4, 2)), path]
    if layout == "nct":
        paths = [p.T for p in paths]
    with pytest.raises(ValueError, match=r"X\[1\] contains NaN \(time step 5\)"):
        check_sequences(paths, layout=layout)
    path[-1] = [0.0, np.inf]
    with pytest.raises(ValueError, match=r"X\[1\] contains infinity"):
        check_sequences([rng.normal(size=(4, 2)), path], layout="ntc")


def test_nested_dataframe(rng):
    pd = pytest.importorskip("pandas")
    paths = [rng.normal(size=(n, 3)) for n in (5, 8)]
    frame = pd.DataFrame({f"dim_{c}": [pd.Series(p[:, c]) for p in paths]
                          for c in range(3)})
    seqs, ref = check_sequences(frame), check_sequences(paths)
    np.testing.assert_array_equal(seqs.values, ref.values)
    np.testing.assert_array_equal(seqs.lengths, ref.lengths)
    bad = frame.copy()
    bad.iat[0, 1] = pd.Series(np.zeros(4))
    with pytest.raises(ValueError, match="channels of different lengths"):
        check_sequences(bad)
    # a plain numeric frame is still a 2-D table
    table = pd.DataFrame(rng.normal(size=(2, 6)))
    assert check_sequences(table, n_channels=2).values.shape == (2, 3, 2)


# ------------------------------------------------------------ kernels
def test_kernels_read_aeon_layout(rng):
    X = _walks(rng, 4, 16, 3)
    Y = _walks(rng, 2, 16, 3)
    Xc, Yc = X.transpose(0, 2, 1), Y.transpose(0, 2, 1)
    make = lambda **kw: SignatureKernel("rbf", dyadic_order=1, **kw)  # noqa: E731
    ref = make()(X, Y)
    np.testing.assert_allclose(make(layout="nct")(Xc, Yc), ref, rtol=1e-12)
    np.testing.assert_allclose(make()(Xc, Yc), ref, rtol=1e-12)
    np.testing.assert_allclose(make(layout="nct").diag(Xc), make().diag(X),
                               rtol=1e-12)
    with pytest.raises(ValueError, match="layout must be one of"):
        make(layout="channels_last")(X)


def test_neural_signature_kernel_reads_through_the_same_path(rng):
    # the solver is shared with SignatureKernel's input path; compiling it
    # here would only cost time
    X = _walks(rng, 3, 16, 2)
    kernel = NeuralSignatureKernel(layout="nct")
    np.testing.assert_array_equal(kernel._sequences(X.transpose(0, 2, 1)).values,
                                  NeuralSignatureKernel()._sequences(X).values)
    assert clone(kernel).get_params()["layout"] == "nct"


def test_kernel_layout_is_a_plain_parameter():
    k = SignatureKernel("rbf", layout="nct")
    assert k.get_params()["layout"] == "nct"
    assert clone(k).layout == "nct"
    assert "layout" not in [h.name for h in k.hyperparameters]
    assert k.clone_with_theta(k.theta).layout == "nct"
    assert SignatureKernel().layout == "auto"


# ------------------------------------------------------------ estimators
def test_estimator_records_layout_and_reuses_it(rng):
    paths = [rng.normal(size=(3, n)).cumsum(1) * 0.3 for n in (9, 12, 15, 20)] * 3
    y = np.arange(len(paths)) % 2
    model = SignatureKernelClassifier().fit(paths, y)
    assert model.layout_ == "nct" and model.n_channels_in_ == 3
    # one path of shape (3, 5) alone is ambiguous for "auto"; the fitted
    # layout reads it
    np.testing.assert_array_equal(
        model.decision_function([paths[0][:, :5]]),
        SignatureKernelClassifier(layout="nct").fit(paths, y)
        .decision_function([paths[0][:, :5]]))
    assert SignatureKernelRegressor().fit(rng.normal(size=(6, 8)),
                                          np.arange(6.0)).layout_ == "ntc"
    with pytest.raises(ValueError, match="layout='ntc'"):
        SignatureKernelRegressor().fit(np.zeros((6, 5, 4)), np.arange(6.0))
    assert clone(SignatureKernelRegressor(layout="nct")).layout == "nct"


def test_sequence_features_take_the_layout(rng):
    X = _walks(rng, 3, 20, 2)
    for cls in (ResampledSeries, SeriesSummary):
        np.testing.assert_array_equal(
            cls(layout="nct").fit_transform(X.transpose(0, 2, 1)),
            cls(layout="ntc").fit_transform(X))


# ------------------------------------------------------------ GPyTorch GP
def test_gp_regressor_rejects_paths_naming_the_alternatives(rng):
    X, y = _walks(rng, 8, 10, 2), rng.normal(size=8)
    for bad in (X, list(X)):
        with pytest.raises(ValueError, match="flatten_sequences") as err:
            GPRegressor(max_iter=0).fit(bad, y)
        assert "SignatureKernelRegressor" in str(err.value)
    with pytest.raises(TypeError, match="kernel on paths.*flatten_sequences"):
        GPRegressor(SignatureKernel(n_channels=2), max_iter=0).fit(
            flatten_sequences(X), y)


def test_gp_regressor_predict_rejects_paths(rng):
    pytest.importorskip("gpytorch")
    X, y = _walks(rng, 8, 10, 2), rng.normal(size=8)
    model = GPRegressor(max_iter=0).fit(flatten_sequences(X), y)
    with pytest.raises(ValueError, match="flatten_sequences"):
        model.predict(X)
    assert model.predict(flatten_sequences(X)).shape == (8,)


# ------------------------------------------------------------ aeon's data
def _aeon(name):
    datasets = pytest.importorskip("aeon.datasets")
    return datasets.load_classification(name, split="train")


def test_aeon_basic_motions_equal_length():
    X, _ = _aeon("BasicMotions")
    assert X.shape == (40, 6, 100)          # (n_cases, n_channels, n_timepoints)
    X = X[::5]
    kernel = SignatureKernel("rbf", time_augment=True, normalize=True)
    K = kernel(X)
    np.testing.assert_allclose(K, kernel(X.transpose(0, 2, 1)), rtol=1e-12)
    assert not np.allclose(K, SignatureKernel("rbf", time_augment=True,
                                              normalize=True, layout="ntc")(X))
    from skinfinite.datasets import load_basic_motions
    ours = load_basic_motions().X_train[::5]
    np.testing.assert_allclose(check_sequences(X).values, ours)


def test_aeon_japanese_vowels_unequal_length_list():
    X, _ = _aeon("JapaneseVowels")
    assert isinstance(X, list) and X[0].shape[0] == 12
    assert len({x.shape[1] for x in X}) > 1
    from skinfinite.datasets import load_japanese_vowels
    ours = load_japanese_vowels().X_train
    seqs, ref = check_sequences(X), check_sequences(ours)
    np.testing.assert_array_equal(seqs.lengths, ref.lengths)
    np.testing.assert_allclose(seqs.values, ref.values)
    kernel = SignatureKernel("rbf", time_augment=True, normalize=True)
    np.testing.assert_allclose(kernel(X[:8]), kernel(ours[:8]), rtol=1e-12)


@pytest.mark.parametrize("name", ["GunPoint", "ItalyPowerDemand"])
def test_aeon_univariate(name):
    X, _ = _aeon(name)
    assert X.shape[1] == 1
    seqs = check_sequences(X)
    assert seqs.n_channels == 1 and seqs.max_length == X.shape[2]
    kernel = SignatureKernel("rbf", time_augment=True, normalize=True)
    np.testing.assert_allclose(kernel(X[:6]), kernel(X[:6, 0, :, None]),
                               rtol=1e-12)


def test_aeon_basic_motions_classifier_cross_validation():
    from sklearn.model_selection import cross_val_score

    X, y = _aeon("BasicMotions")
    # one fixed signature kernel: the built-in selection could fall back on
    # kernels that ignore the reading (an RBF kernel on the whole series)
    fixed = dict(kernel=None, dyadic_order=0, time_augment=True, basepoint=False,
                 lead_lag=False, max_length=None, length_scale=1.0,
                 path_scale=1.0, C=1.0)
    model = SignatureKernelClassifier(**fixed)
    auto = cross_val_score(model, X, y, cv=4)
    transposed = cross_val_score(model, X.transpose(0, 2, 1), y, cv=4)
    np.testing.assert_array_equal(auto, transposed)
    # the reading of 6-point paths with 100 channels is far worse
    misread = cross_val_score(SignatureKernelClassifier(**fixed, layout="ntc"),
                              X, y, cv=4)
    assert auto.mean() > misread.mean() + 0.2


def test_convolutional_kernel_reads_layouts():
    from skinfinite.kernels import ConvNNGP

    X = np.random.default_rng(0).standard_normal((4, 2, 30))   # (n, C, T)
    kernel = ConvNNGP(filter_size=5, readout="ppv")
    np.testing.assert_array_equal(kernel(X), kernel(X.transpose(0, 2, 1)))
    np.testing.assert_array_equal(kernel(X),
                                  ConvNNGP(filter_size=5, readout="ppv",
                                           layout="nct")(X))
    with pytest.raises(ValueError, match="layout"):
        kernel(np.zeros((3, 5, 6)))
