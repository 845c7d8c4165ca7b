"""Tests of the time-series part of the benchmark."""
import math

import numpy as np
import pytest

from skinfinite import benchmark as bm
from skinfinite.benchmark import (BenchmarkError, ResampledSeries, SeriesSummary,
                                  format_table, make_model, plot_results, run_benchmark)
from skinfinite.cli import main

BASELINES = ["svm_rbf_resampled", "rf_summary"]


def test_time_series_run_on_their_fixed_split():
    rows = run_benchmark("basic_motions", models=BASELINES, show_progress=False)
    assert [r["model"] for r in rows] == BASELINES
    for row in rows:
        assert row["error"] is None
        assert (row["dataset"], row["task"], row["metric"]) == (
            "basic_motions", "classification", "accuracy")
        assert (row["n_samples"], row["n_features"], row["folds"]) == (40, 6, 0)
        assert 0.5 <= row["score_mean"] <= 1.0 and math.isnan(row["score_std"])
    table = format_table(rows)
    assert "basic_motions: classification, 40 training series, 6 channels, " \
           "fixed train/test split" in table
    assert "+/-" not in table


def test_signature_model_on_basic_motions():
    rows = run_benchmark("basic_motions", models="sig_select", show_progress=False)
    assert rows[0]["error"] is None
    assert rows[0]["score_mean"] >= 0.95


def test_each_dataset_runs_the_models_that_read_it():
    rows = run_benchmark("iris,japanese_vowels", folds=2, models="svm_rbf,rf_summary",
                         show_progress=False)
    assert [(r["dataset"], r["model"]) for r in rows] == [
        ("iris", "svm_rbf"), ("japanese_vowels", "rf_summary")]
    with pytest.raises(BenchmarkError, match="None of the selected models reads the "
                                             "time-series dataset 'basic_motions'"):
        run_benchmark("basic_motions", models="svm_rbf", show_progress=False)
    with pytest.raises(BenchmarkError, match="tabular dataset 'iris'.*svm_rbf"):
        run_benchmark("iris", models="rf_summary", show_progress=False)


def test_sequence_models_are_in_the_registry():
    for name in ("sig_select", "neural_sig_relu", *BASELINES):
        assert bm.MODELS[name].inputs == "sequences"
        model = make_model(name, "classification")
        assert model.steps[0] == ("preprocess", "passthrough")
    assert bm.MODELS["sig_select"].family == "signature"
    assert all(bm.MODELS[name].inputs == "tabular"
               for name in ("svm_rbf", "krr_rbf", "rf", "ntk_relu_d1"))


def test_plot_of_a_fixed_split(tmp_path):
    rows = run_benchmark("basic_motions", models="rf_summary", show_progress=False)
    path = tmp_path / "series.png"
    plot_results(rows, path)
    assert path.stat().st_size > 0


def test_cli_time_series(capsys):
    status = main(["benchmark", "--dataset", "basic_motions", "--quiet",
                   "--models", ",".join(BASELINES)])
    assert status == 0
    assert "fixed train/test split" in capsys.readouterr().out
    assert main(["benchmark", "--list"]) == 0
    listing = capsys.readouterr().out
    assert "basic_motions, japanese_vowels" in listing and "* sig_select" in listing


# ---------------------------------------------------------- feature baselines
def test_resampled_series_of_ragged_paths(rng):
    paths = [np.column_stack([np.linspace(0, 1, n), np.linspace(0, 2, n) ** 2])
             for n in (5, 9, 17)]
    features = ResampledSeries(n_points=5).fit_transform(paths)
    assert features.shape == (3, 10)
    # the same curve sampled more finely resamples to nearly the same points
    np.testing.assert_allclose(features[2], features[1], atol=0.04)
    np.testing.assert_allclose(features[:, 0::2], np.tile(np.linspace(0, 1, 5), (3, 1)))
    with pytest.raises(ValueError, match="X has 1 channels, but ResampledSeries"):
        ResampledSeries().fit(paths).transform([p[:, :1] for p in paths])
    with pytest.raises(ValueError, match="n_points must be >= 1"):
        ResampledSeries(n_points=0).fit(paths)


def test_series_summary(rng):
    paths = rng.normal(size=(4, 10, 3))
    features = SeriesSummary().fit_transform(paths)
    assert features.shape == (4, 7 * 3 + 1)
    np.testing.assert_allclose(features[:, 0:21:7], paths.mean(axis=1))
    np.testing.assert_allclose(features[:, 3:21:7], paths.max(axis=1))
    np.testing.assert_array_equal(features[:, -1], 10)
    flat = SeriesSummary(n_channels=3).fit_transform(paths.reshape(4, -1))
    np.testing.assert_allclose(flat, features)
