"""The ``skinfinite benchmark`` command: name matching, version, streamed
tables and Ctrl-C, figure formats and axes, progress in a log, CSV
encodings."""
import csv

import numpy as np
import pytest

import skinfinite
from skinfinite.benchmark import (BenchmarkError, check_figure_format,
                                  plot_results, select_models)
from skinfinite.benchmark import _runner
from skinfinite.cli import main
from skinfinite.datasets import DatasetError, load_csv


def _cli_error(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    return capsys.readouterr().err


@pytest.fixture
def no_jobs(monkeypatch):
    """Fail if a model is run: the checks must come first."""
    def run_job(*args):
        raise AssertionError("a model was run")
    monkeypatch.setattr(_runner, "_run_job", run_job)


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"skinfinite {skinfinite.__version__}"


def test_a_name_without_wildcard_matches_exactly(capsys, no_jobs):
    with pytest.raises(BenchmarkError, match=r"No model matches 'relu'.*'\*relu\*'"):
        select_models("relu")
    err = _cli_error(["benchmark", "-d", "iris", "--models", "relu"], capsys)
    assert "'*relu*'" in err and "dkm_relu_l2" in err
    assert select_models("ntk_relu_d1") == ["ntk_relu_d1"]
    matched = select_models("*relu*")
    assert "dkm_relu_l2" in matched and "ntk_relu_d1" in matched
    assert all("relu" in name for name in matched)
    assert select_models("nngp_relu_d?") == [n for n in select_models("all")
                                             if n.startswith("nngp_relu_d")
                                             and len(n) == len("nngp_relu_d1")]


def test_tables_are_printed_as_each_dataset_finishes(monkeypatch, capsys):
    seen = []
    run_job = _runner._run_job

    def recording(data, name, *args):
        seen.append((data.name, capsys.readouterr().out))
        return run_job(data, name, *args)

    monkeypatch.setattr(_runner, "_run_job", recording)
    assert main(["benchmark", "-d", "iris,wine", "-k", "2", "-q",
                 "-m", "svm_rbf"]) == 0
    (first, before_iris), (second, before_wine) = seen
    assert (first, second) == ("iris", "wine")
    assert before_iris == ""
    assert "iris: classification" in before_wine and "svm_rbf" in before_wine
    assert "wine: classification" in capsys.readouterr().out


def test_ctrl_c_keeps_finished_results(monkeypatch, tmp_path, capsys):
    run_job = _runner._run_job

    def interrupted_on_wine(data, name, *args):
        if data.name == "wine":
            raise KeyboardInterrupt
        return run_job(data, name, *args)

    monkeypatch.setattr(_runner, "_run_job", interrupted_on_wine)
    out = tmp_path / "partial.csv"
    status = main(["benchmark", "-d", "iris,wine", "-k", "2", "-q",
                   "-m", "svm_rbf,krr_rbf", "--out", str(out)])
    assert status == 130
    captured = capsys.readouterr()
    assert "iris: classification" in captured.out
    assert "interrupted" in captured.err and str(out) in captured.err
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["dataset"], r["model"]) for r in rows] == [
        ("iris", "svm_rbf"), ("iris", "krr_rbf")]
    assert all(0 < float(r["score_mean"]) <= 1 for r in rows)


def test_unknown_figure_format_fails_before_running(tmp_path, capsys, no_jobs):
    err = _cli_error(["benchmark", "-d", "iris", "-m", "svm_rbf",
                      "--plot", str(tmp_path / "x.jpg2")], capsys)
    assert "error: argument --plot" in err and "'jpg2'" in err and ".png" in err
    assert "Traceback" not in err
    with pytest.raises(BenchmarkError, match="jpg2"):
        check_figure_format("x.jpg2")
    assert check_figure_format("x.PDF") == "pdf"


def test_unwritable_output_fails_before_running(tmp_path, capsys, no_jobs):
    status = main(["benchmark", "-d", "iris", "-m", "svm_rbf", "-q",
                   "--out", str(tmp_path / "missing" / "out.csv")])
    assert status == 1
    assert "error:" in capsys.readouterr().err


def _rows(scores, metric="accuracy"):
    return [dict(dataset="toy", task="classification" if metric == "accuracy"
                 else "regression", model=model, score_mean=score,
                 score_std=0.005, metric=metric, fit_time_s=0.1,
                 predict_time_s=0.01, n_samples=100, n_features=4, folds=5,
                 error=None)
            for model, score in zip(["svm_rbf", "rf", "krr_rbf"], scores)]


def test_score_axis_starts_at_zero(tmp_path):
    figure = plot_results(_rows([0.973, 0.984]), tmp_path / "a.png")
    ax = figure.axes[0]
    assert ax.get_xlim() == (0.0, 1.0)
    labels = {t.get_text().strip() for t in ax.texts}
    assert {"0.973", "0.984"} <= labels


def test_negative_r2_is_cut_at_minus_one_and_labelled(tmp_path):
    figure = plot_results(_rows([0.8, -0.2, -7.5], metric="r2"), tmp_path / "b.svg")
    ax = figure.axes[0]
    assert ax.get_xlim() == (-1.0, 1.0)
    labels = {t.get_text().strip() for t in ax.texts}
    assert "-7.500 (cut)" in labels and "-0.200" in labels


def test_progress_is_plain_lines_in_a_log(capsys):
    assert main(["benchmark", "-d", "iris", "-k", "2", "-m", "svm_rbf,krr_rbf"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("[1/2] iris: svm_rbf: accuracy 0.")
    assert err[1].startswith("[2/2] iris: krr_rbf: accuracy 0.")
    assert not any("\r" in line for line in err)


def test_progress_bar_on_a_terminal(monkeypatch, capsys):
    monkeypatch.setattr(_runner, "_is_terminal", lambda stream: True)
    assert main(["benchmark", "-d", "iris", "-k", "2", "-m", "svm_rbf"]) == 0
    err = capsys.readouterr().err
    assert "iris: svm_rbf" in err and "job" in err and "[1/1]" not in err


def test_quiet_reports_nothing(capsys):
    assert main(["benchmark", "-d", "iris", "-k", "2", "-q", "-m", "svm_rbf"]) == 0
    assert capsys.readouterr().err == ""


# ----------------------------------------------------------- CSV encodings
def _table(label_a="café", label_b="thé"):
    rng = np.random.default_rng(0)
    lines = ["x;y;label"]
    for i in range(30):
        label = label_a if i % 2 else label_b
        lines.append(f"{rng.normal() + 2 * (i % 2):.3f};{rng.normal():.3f};{label}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252", "latin-1"])
def test_spreadsheet_encodings_are_detected(tmp_path, encoding):
    path = tmp_path / "drinks.csv"
    path.write_bytes(_table().encode(encoding))
    data = load_csv(path, "label")
    assert set(data.y) == {"café", "thé"}


def test_cli_reads_a_latin1_csv(tmp_path, capsys):
    path = tmp_path / "drinks.csv"
    path.write_bytes(_table().encode("latin-1"))
    assert main(["benchmark", "--csv", str(path), "--target", "label",
                 "-k", "2", "-q", "-m", "svm_rbf"]) == 0
    assert "drinks: classification" in capsys.readouterr().out


def test_cli_binary_or_misdeclared_csv_is_a_clean_error(tmp_path, capsys, no_jobs):
    binary = tmp_path / "image.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    err = _cli_error(["benchmark", "--csv", str(binary), "--target", "y"], capsys)
    assert "error:" in err and "not a text CSV file" in err
    assert "Traceback" not in err
    latin = tmp_path / "drinks.csv"
    latin.write_bytes(_table().encode("latin-1"))
    err = _cli_error(["benchmark", "--csv", str(latin), "--target", "label",
                      "--encoding", "utf-8"], capsys)
    assert "not valid utf-8 text" in err and "byte" in err
    err = _cli_error(["benchmark", "--csv", str(latin), "--target", "label",
                      "--encoding", "klingon"], capsys)
    assert "Unknown text encoding 'klingon'" in err
    with pytest.raises(DatasetError, match="not valid utf-8"):
        load_csv(latin, "label", encoding="utf-8")
    assert "--encoding" in _cli_error(["benchmark", "--encoding", "cp1252"], capsys)
