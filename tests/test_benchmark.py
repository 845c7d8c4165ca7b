"""Tests of the benchmark library functions and the ``skinfinite`` command."""
import csv
import math
import subprocess
import sys
import time

import numpy as np
import pytest

from skinfinite import benchmark as bm
from skinfinite.benchmark import (CSV_COLUMNS, BenchmarkError, KernelRidgeClassifier,
                                  ModelSpec, format_table, make_model, plot_results,
                                  run_benchmark, select_models, write_csv)
from skinfinite.benchmark._runner import _short_error
from skinfinite.cli import main
from skinfinite.datasets import CSVNotFoundError, DatasetError

from ._tables import write_table

FAST = ["ntk_relu_d1", "rf", "svm_rbf"]
REQUIRED_COLUMNS = ["dataset", "task", "model", "score_mean", "score_std", "metric",
                    "fit_time_s", "predict_time_s", "n_samples", "n_features"]


def _read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


# ----------------------------------------------------------------- library
def test_run_benchmark_classification():
    rows = run_benchmark("wine", folds=2, models=FAST, show_progress=False)
    assert [r["model"] for r in rows] == FAST
    for row in rows:
        assert set(CSV_COLUMNS) <= set(row)
        assert row["error"] is None
        assert row["dataset"] == "wine" and row["task"] == "classification"
        assert row["metric"] == "accuracy"
        assert (row["n_samples"], row["n_features"], row["folds"]) == (178, 13, 2)
        assert 0.85 < row["score_mean"] <= 1.0
        assert row["score_std"] >= 0
        assert row["fit_time_s"] > 0 and row["predict_time_s"] > 0
        assert math.isnan(row["rmse_mean"])


def test_run_benchmark_regression_is_reproducible():
    kwargs = dict(folds=2, seed=3, models=["ntk_relu_d1", "nngp_relu_d1", "krr_rbf"],
                  show_progress=False)
    rows = run_benchmark(["diabetes"], **kwargs)
    assert all(r["metric"] == "r2" and r["task"] == "regression" for r in rows)
    for row in rows:
        assert row["error"] is None
        assert 0.2 < row["score_mean"] < 0.8
        assert 40 < row["rmse_mean"] < 80  # in the units of the target
    again = run_benchmark("diabetes", **kwargs)
    assert [r["score_mean"] for r in rows] == pytest.approx(
        [r["score_mean"] for r in again])


def test_default_selection():
    names = select_models()
    assert {"ntk_cv", "nngp_cv", "svm_rbf", "krr_rbf",
            "rf"} <= set(names)
    assert "ntk_relu_d1" not in names
    assert all(bm.MODELS[n].default for n in names)


def test_select_models_patterns():
    assert select_models("rf") == ["rf"]
    assert select_models(["svm_rbf,rf", "krr_rbf", "rf"]) == ["svm_rbf", "rf", "krr_rbf"]
    assert set(select_models("nngp_*_d1")) == {"nngp_relu_d1", "nngp_erf_d1",
                                               "nngp_identity_d1"}
    assert all("tanh" in n for n in select_models("*tanh*"))
    assert select_models("all") == list(bm.MODELS)
    with pytest.raises(BenchmarkError, match="registered models"):
        select_models("no_such_model")


def test_every_registered_model_builds():
    for name, spec in bm.MODELS.items():
        for task in spec.tasks:
            model = make_model(name, task)
            assert model.steps[0][0] == "preprocess"


def test_classification_only_model_is_skipped_on_regression():
    with pytest.raises(BenchmarkError, match="classification tasks only"):
        make_model("ntk_limit_erf", "regression")
    rows = run_benchmark(["iris", "diabetes"], models=["ntk_limit_erf", "rf"], folds=2,
                         show_progress=False)
    pairs = {(row["dataset"], row["model"]) for row in rows}
    assert ("iris", "ntk_limit_erf") in pairs
    assert ("diabetes", "ntk_limit_erf") not in pairs
    assert ("diabetes", "rf") in pairs
    with pytest.raises(BenchmarkError, match="a regression task"):
        run_benchmark(["diabetes"], models=["ntk_limit_erf"], folds=2,
                      show_progress=False)


def test_kernel_ridge_classifier():
    from sklearn.datasets import load_breast_cancer, load_iris

    X, y = load_iris(return_X_y=True)
    clf = KernelRidgeClassifier().fit(X, y)
    assert clf.decision_function(X).shape == (150, 3)
    assert clf.score(X, y) > 0.9
    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    labels = np.where(y == 1, "benign", "malignant")
    clf = KernelRidgeClassifier().fit(X, labels)
    assert clf.decision_function(X).shape == (len(y),)
    assert set(clf.predict(X)) == {"benign", "malignant"}
    assert clf.score(X, labels) > 0.9


def test_failing_model_is_reported(monkeypatch):
    def broken(task, seed):
        raise RuntimeError("cannot build")

    monkeypatch.setitem(bm.MODELS, "broken", ModelSpec("broken", "baseline", "",
                                                       broken, default=False))
    with pytest.warns(RuntimeWarning, match="broken failed on iris") as w:
        rows = run_benchmark("iris", folds=2, models=["broken", "svm_rbf"],
                             show_progress=False)
    assert w[0].filename == __file__
    failed = rows[0]
    assert failed["error"] == "RuntimeError: cannot build"
    assert math.isnan(failed["score_mean"])
    table = format_table(rows)
    # the working model ranks first, the failure last
    lines = table.splitlines()
    assert lines[2].split()[:2] == ["1", "svm_rbf"]
    assert "broken failed: RuntimeError: cannot build" in table


def test_failure_messages_are_one_line():
    exc = RuntimeError("\x1b[1mcannot compile\x1b[0m\n  details\n")
    assert _short_error(exc) == "RuntimeError: cannot compile ..."
    assert _short_error(KeyError()) == "KeyError"
    assert len(_short_error(ValueError("x" * 1000))) < 320


def test_format_write_and_plot(tmp_path):
    rows = [
        dict(dataset="a", task="classification", model="rf", score_mean=0.8,
             score_std=0.1, metric="accuracy", fit_time_s=1.5, predict_time_s=2e-4,
             n_samples=10, n_features=2, rmse_mean=float("nan"),
             rmse_std=float("nan"), folds=2, error=None),
        dict(dataset="a", task="classification", model="svm_rbf", score_mean=0.9,
             score_std=0.0, metric="accuracy", fit_time_s=0.1, predict_time_s=0.01,
             n_samples=10, n_features=2, rmse_mean=float("nan"),
             rmse_std=float("nan"), folds=2, error=None),
        dict(dataset="b", task="regression", model="ntk_relu_d1", score_mean=-0.5,
             score_std=0.2, metric="r2", fit_time_s=0.1, predict_time_s=0.01,
             n_samples=10, n_features=2, rmse_mean=12.5, rmse_std=1.0, folds=2,
             error=None),
    ]
    table = format_table(rows)
    lines = table.splitlines()
    assert lines[0].startswith("a: classification, 10 samples x 2 features")
    assert lines[2].split()[:2] == ["1", "svm_rbf"]
    assert lines[3].split()[:2] == ["2", "rf"]
    assert "R^2" in table and "RMSE" in table and "12.50 +/- 1.00" in table
    path = tmp_path / "rows.csv"
    write_csv(rows, path)
    written = _read_csv(path)
    assert list(written[0]) == list(CSV_COLUMNS)
    assert written[0]["rmse_mean"] == "" and float(written[2]["rmse_mean"]) == 12.5
    png = tmp_path / "rows.png"
    plot_results(rows, png)
    assert png.stat().st_size > 1000


# ----------------------------------------------------------------- CSV input
def test_run_benchmark_on_csv(mixed_csv):
    rows = run_benchmark(csv=mixed_csv, target="label", folds=3, models=FAST,
                         show_progress=False)
    assert len(rows) == 3
    for row in rows:
        assert row["error"] is None
        assert row["dataset"] == "shapes"
        assert row["n_samples"] == 59 and row["n_features"] == 3
        assert row["score_mean"] > 0.6


def test_csv_together_with_builtin_dataset(mixed_csv):
    rows = run_benchmark("iris", csv=mixed_csv, target="label", folds=2,
                         models="svm_rbf", show_progress=False)
    assert [r["dataset"] for r in rows] == ["iris", "shapes"]


def test_cli_csv_regression(tmp_path, capsys):
    rng = np.random.default_rng(2)
    rows = []
    for i in range(50):
        a, kind = rng.normal(), ["x", "y"][i % 2]
        price = 3 * a + (2 if kind == "x" else -2) + 0.1 * rng.normal()
        rows.append([f"{a:.4f}", kind if i % 9 else "", f"{price:.4f}"])
    path = tmp_path / "prices.csv"
    write_table(path, ["a", "kind", "price"], rows)
    out = tmp_path / "res.csv"
    assert main(["benchmark", "--csv", str(path), "--target", "price", "--folds", "2",
                 "--models", "ntk_relu_d1,krr_rbf", "--quiet", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "prices: regression, 50 samples x 2 features" in stdout
    written = _read_csv(out)
    assert [r["metric"] for r in written] == ["r2", "r2"]
    assert all(float(r["score_mean"]) > 0.5 for r in written)


# ----------------------------------------------------------------------- CLI
def test_cli_wine(tmp_path, capsys):
    out, png = tmp_path / "results.csv", tmp_path / "results.png"
    status = main(["benchmark", "--dataset", "wine", "--folds", "2", "--quiet",
                   "--models", ",".join(FAST), "--out", str(out), "--plot", str(png)])
    assert status == 0
    captured = capsys.readouterr()
    assert captured.err == ""  # --quiet: no progress bar
    assert "wine: classification, 178 samples x 13 features, 2-fold CV" in captured.out
    written = _read_csv(out)
    assert list(written[0])[:len(REQUIRED_COLUMNS)] == REQUIRED_COLUMNS
    assert [r["model"] for r in written] == FAST
    for row in written:
        assert row["dataset"] == "wine" and row["metric"] == "accuracy"
        assert 0 < float(row["score_mean"]) <= 1
        assert int(row["n_samples"]) == 178 and int(row["n_features"]) == 13
    # the printed table is ranked, best first
    table_scores = [float(line.split()[2]) for line in captured.out.splitlines()
                    if line.split() and line.split()[0].isdigit()]
    assert table_scores == sorted(table_scores, reverse=True)
    assert png.exists() and png.stat().st_size > 0


def test_cli_progress_bar_on_stderr(capsys):
    assert main(["benchmark", "-d", "iris", "-k", "2", "-m", "svm_rbf"]) == 0
    assert "iris: svm_rbf" in capsys.readouterr().err


def test_cli_repeated_and_comma_separated_datasets(capsys):
    assert main(["benchmark", "-d", "iris,wine", "-d", "iris", "-k", "2", "-q",
                 "-m", "svm_rbf"]) == 0
    out = capsys.readouterr().out
    assert out.index("iris:") < out.index("wine:")
    assert out.count("iris:") == 1


def test_cli_list(capsys):
    assert main(["benchmark", "--list"]) == 0
    out = capsys.readouterr().out
    assert "breast_cancer" in out and "* ntk_cv" in out


def test_python_dash_m():
    result = subprocess.run([sys.executable, "-m", "skinfinite", "benchmark", "--help"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0
    assert "--dataset" in result.stdout and "--csv" in result.stdout


# -------------------------------------------------------------------- errors
def _cli_error(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    return capsys.readouterr().err


def test_unknown_dataset(capsys):
    with pytest.raises(DatasetError, match="valid names are: breast_cancer"):
        run_benchmark("mnist", show_progress=False)
    err = _cli_error(["benchmark", "--dataset", "mnist"], capsys)
    assert "Unknown dataset 'mnist'" in err and "wine" in err


def test_unknown_model(capsys):
    err = _cli_error(["benchmark", "-d", "iris", "--models", "xgboost"], capsys)
    assert "No model matches 'xgboost'" in err


def test_missing_csv(tmp_path, capsys):
    missing = tmp_path / "nope.csv"
    with pytest.raises(CSVNotFoundError) as info:
        run_benchmark(csv=missing, target="y", show_progress=False)
    assert isinstance(info.value, FileNotFoundError)
    assert isinstance(info.value, DatasetError) and isinstance(info.value, ValueError)
    err = _cli_error(["benchmark", "--csv", str(missing), "--target", "y"], capsys)
    assert "CSV file not found" in err


def test_target_not_in_csv(mixed_csv, capsys):
    with pytest.raises(DatasetError, match="'size', 'noise', 'colour', 'label'"):
        run_benchmark(csv=mixed_csv, target="price", show_progress=False)
    err = _cli_error(["benchmark", "--csv", str(mixed_csv), "--target", "price"], capsys)
    assert "Target column 'price' is not in" in err and "'colour'" in err


def test_csv_with_fewer_rows_than_folds(tmp_path, capsys):
    path = tmp_path / "tiny.csv"
    write_table(path, ["x", "y"], [["1", "a"], ["2", "b"], ["3", "a"], ["4", ""]])
    with pytest.raises(BenchmarkError, match="3 usable rows.*5 cross-validation folds"):
        run_benchmark(csv=path, target="y", folds=5, show_progress=False)
    err = _cli_error(["benchmark", "--csv", str(path), "--target", "y"], capsys)
    assert "fewer than the 5 cross-validation folds" in err


def test_cli_usage_errors(mixed_csv, capsys):
    assert "--csv needs --target" in _cli_error(["benchmark", "--csv", str(mixed_csv)],
                                               capsys)
    assert "only apply with --csv" in _cli_error(["benchmark", "--target", "y"], capsys)
    assert "at least 2" in _cli_error(["benchmark", "--folds", "1"], capsys)
    assert "required: COMMAND" in _cli_error([], capsys)
    with pytest.raises(BenchmarkError, match="at least 2"):
        run_benchmark("iris", folds=1)
    with pytest.raises(BenchmarkError, match="target=COLUMN"):
        run_benchmark(csv=mixed_csv)
    with pytest.raises(BenchmarkError, match="only apply to a CSV"):
        run_benchmark("iris", target="y")


def test_best_time_is_the_fastest_of_repeated_calls():
    from skinfinite.benchmark import best_time
    delays = iter([0.05, 0.0, 0.03])
    calls = []

    def f():
        calls.append(1)
        time.sleep(next(delays))
    wall, cpu = best_time(f, repeat=3)
    assert len(calls) == 3
    # the second call slept for nothing: the best wall time is below the
    # shortest sleep of the others, and sleeping costs no CPU time
    assert 0.0 <= wall < 0.03
    assert 0.0 <= cpu < 0.03
