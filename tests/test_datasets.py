"""Tests of the built-in datasets and of reading CSV tables."""
import numpy as np
import pytest

from skinfinite.datasets import (CSVNotFoundError, DatasetError, list_datasets, load_csv,
                                 load_dataset)

from ._tables import write_table


def test_builtin_datasets():
    assert list_datasets() == ["breast_cancer", "wine", "iris", "digits", "diabetes"]
    data = load_dataset("Breast-Cancer")
    assert data.name == "breast_cancer" and data.task == "classification"
    assert (data.n_samples, data.n_features) == (569, 30)
    assert load_dataset("diabetes").task == "regression"


def test_unknown_builtin_dataset():
    with pytest.raises(DatasetError, match="valid names are: breast_cancer"):
        load_dataset("mnist")


def test_errors_are_value_errors(tmp_path):
    assert issubclass(DatasetError, ValueError)
    with pytest.raises(CSVNotFoundError) as info:
        load_csv(tmp_path / "nope.csv", "y")
    assert isinstance(info.value, DatasetError)
    assert isinstance(info.value, FileNotFoundError)
    assert "CSV file not found" in str(info.value)


def test_load_csv_mixed_types(mixed_csv):
    data = load_csv(mixed_csv, "label")
    assert data.name == "shapes"
    assert data.task == "classification"
    assert data.X.shape == (59, 3)  # the row with a missing target is gone
    assert set(data.y) == {"big", "small"}
    Xt = data.preprocessor.fit_transform(data.X)
    # two numeric columns + three one-hot colours, no missing values left
    assert Xt.shape == (59, 5)
    assert np.isfinite(Xt).all()


def test_task_inference_and_override(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=40)
    path = tmp_path / "numbers.csv"
    write_table(path, ["x", "grade", "value"],
                [[f"{a:.3f}", str(i % 4), f"{2 * a + 0.1 * rng.normal():.4f}"]
                 for i, a in enumerate(x)])
    assert load_csv(path, "grade").task == "classification"
    assert load_csv(path, "value").task == "regression"
    assert load_csv(path, "grade", task="regression").task == "regression"
    data = load_csv(path, "value", task="classification")
    assert data.task == "classification"
    with pytest.raises(DatasetError, match="task must be one of"):
        load_csv(path, "value", task="ranking")


def test_regression_on_text_target_is_refused(mixed_csv):
    with pytest.raises(DatasetError, match="not numeric"):
        load_csv(mixed_csv, "label", task="regression")
