"""Tests of the ``.ts`` reader and of the shipped time-series datasets."""
import numpy as np
import pytest

from skinfinite.datasets import (DatasetError, TSFormatError, load_basic_motions,
                                 load_japanese_vowels, load_timeseries_dataset,
                                 list_timeseries_datasets, read_ts)

HEADER = ("#A tiny problem.\n@problemName tiny\n@timeStamps false\n@missing false\n"
          "@univariate false\n@dimensions 2\n@equalLength false\n"
          "@classLabel true a b\n@data\n")


def write(tmp_path, text, name="tiny.ts"):
    path = tmp_path / name
    path.write_text(text)
    return path


# -------------------------------------------------------------- shipped data
def test_basic_motions_shapes_and_classes():
    data = load_basic_motions()
    assert data.name == "basic_motions"
    assert data.X_train.shape == (40, 100, 6) and data.X_test.shape == (40, 100, 6)
    assert data.X_train.dtype == np.float64
    assert np.isfinite(data.X_train).all() and np.isfinite(data.X_test).all()
    for y in (data.y_train, data.y_test):
        labels, counts = np.unique(y, return_counts=True)
        assert labels.tolist() == ["Badminton", "Running", "Standing", "Walking"]
        assert counts.tolist() == [10, 10, 10, 10]
    assert data.n_channels == 6
    assert "Bagnall" in data.citation and "Dau" in data.citation
    assert "smart watch" in data.description


def test_basic_motions_first_values_match_the_file():
    # The first case of the training file starts 0.079106,0.079106,-0.903497 in
    # its first dimension and 0.394032 in its second; its label is Standing.
    data = load_basic_motions()
    np.testing.assert_array_equal(data.X_train[0, :3, 0], [0.079106, 0.079106, -0.903497])
    assert data.X_train[0, 0, 1] == 0.394032
    assert data.y_train[0] == "Standing"


def test_japanese_vowels_is_ragged():
    data = load_japanese_vowels()
    assert isinstance(data.X_train, list) and isinstance(data.X_test, list)
    assert (len(data.X_train), len(data.X_test)) == (270, 370)
    assert all(x.ndim == 2 and x.shape[1] == 12 for x in data.X_train + data.X_test)
    lengths = np.concatenate(data.lengths)
    assert lengths.min() == 7 and lengths.max() == 29
    assert len(np.unique(lengths)) > 10
    labels, counts = np.unique(data.y_train, return_counts=True)
    assert labels.tolist() == [str(k) for k in range(1, 10)]
    assert counts.tolist() == [30] * 9
    test_labels, test_counts = np.unique(data.y_test, return_counts=True)
    assert test_labels.tolist() == labels.tolist()
    assert test_counts.min() == 24 and test_counts.max() == 88
    assert "Kudo" in data.citation and "Bagnall" in data.citation


def test_load_by_name():
    assert list_timeseries_datasets() == ["basic_motions", "japanese_vowels"]
    assert load_timeseries_dataset("Japanese-Vowels").name == "japanese_vowels"
    with pytest.raises(DatasetError, match="valid names are: basic_motions"):
        load_timeseries_dataset("ecg")


# ------------------------------------------------------------------- reader
def test_reader_ragged_and_labels(tmp_path):
    path = write(tmp_path, HEADER + "1,2,3:4,5,6:a\n\n7,8:9,10:b\n")
    X, y, header = read_ts(path, return_header=True)
    assert isinstance(X, list)
    np.testing.assert_array_equal(X[0], [[1, 4], [2, 5], [3, 6]])
    np.testing.assert_array_equal(X[1], [[7, 9], [8, 10]])
    assert y.tolist() == ["a", "b"]
    assert header.problem_name == "tiny" and header.dimensions == 2
    assert header.class_labels == ("a", "b") and header.description == "A tiny problem."


def test_reader_equal_lengths_stack(tmp_path):
    X, y = read_ts(write(tmp_path, HEADER + "1,2:3,4:a\n5,6:7,8:b\n"))
    assert X.shape == (2, 2, 2)
    np.testing.assert_array_equal(X[1], [[5, 7], [6, 8]])


def test_reader_missing_values_timestamps_and_targets(tmp_path):
    text = ("@problemName t\n@timeStamps true\n@missing true\n@univariate true\n"
            "@targetLabel true\n@data\n(0,1.5),(1,?),(2,3):0.25\n"
            "(2020-01-01 10:00:00,4),(2020-01-01 10:00:01,5):-1\n")
    X, y = read_ts(write(tmp_path, text))
    np.testing.assert_array_equal(X[0][:, 0], [1.5, np.nan, 3.0])
    np.testing.assert_array_equal(X[1][:, 0], [4.0, 5.0])
    assert y.dtype == float and y.tolist() == [0.25, -1.0]


def test_reader_unlabelled(tmp_path):
    text = "@problemName u\n@classLabel false\n@data\n1,2:3,4\n"
    X, y = read_ts(write(tmp_path, text))
    assert y is None and X.shape == (1, 2, 2)


MALFORMED = [
    ("@problemName x\n@classLabel true a\n1,2:a\n", "line 3: expected a header tag"),
    ("@problemName x\n@classLabel true a\n", "no @data line"),
    ("@problemName x\n@classLabel true a\n@data\n", "holds no cases"),
    ("@classLabel true a\n@data\n1:a\n", "no @problemName"),
    ("@problemName x\n@colour red\n@data\n", "unknown header tag @colour"),
    ("@problemName x\n@missing maybe\n@data\n", "@missing must be true or false"),
    ("@problemName x\n@dimensions two\n@data\n", "@dimensions needs a positive integer"),
    ("@problemName x\n@dimensions 2\n@dimensions 2\n@data\n", "repeats the tag of line 2"),
    ("@problemName x\n@classLabel true\n@data\n", "needs the list of class labels"),
    ("@problemName x\n@classLabel true a\n@data\n1,2:c\n", "class label 'c' is not among"),
    ("@problemName x\n@dimensions 2\n@classLabel true a\n@data\n1,2:a\n",
     "line 5: the case has 1 dimensions but @dimensions declares 2"),
    ("@problemName x\n@classLabel true a\n@data\n1:2:a\n3:a\n",
     "line 5: the case has 1 dimensions but the first case has 2"),
    ("@problemName x\n@classLabel true a\n@data\n1,x,3:a\n",
     "dimension 1 holds 'x', which is not a number"),
    ("@problemName x\n@classLabel true a\n@data\n1,2,3\n", "no ':'-separated label"),
    ("@problemName x\n@classLabel true a\n@data\n1,2:3:a\n", "different lengths"),
    ("@problemName x\n@classLabel true a\n@data\n:1:a\n", "dimension 1 of the case is empty"),
    ("@problemName x\n@missing false\n@classLabel true a\n@data\n1,?:a\n",
     "@missing false"),
    ("@problemName x\n@classLabel true a\n@data\n1,inf:a\n", "infinite value"),
    ("@problemName x\n@equalLength true\n@classLabel true a\n@data\n1,2:a\n1:a\n",
     "@equalLength true but the cases have lengths from 1 to 2"),
    ("@problemName x\n@equalLength true\n@seriesLength 3\n@classLabel true a\n@data\n1,2:a\n",
     "@seriesLength 3 but the cases have length 2"),
    ("@problemName x\n@univariate true\n@dimensions 3\n@data\n", "contradicts @dimensions 3"),
    ("@problemName x\n@timeStamps true\n@classLabel true a\n@data\n1,2:a\n",
     "not a list of \\(timestamp,value\\) pairs"),
    ("@problemName x\n@targetLabel true\n@data\n1,2:high\n", "the target holds 'high'"),
    ("@problemName x\n@targetLabel true\n@classLabel true a\n@data\n", "both @classLabel"),
]


@pytest.mark.parametrize("text, message", MALFORMED)
def test_reader_rejects_malformed_files(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(TSFormatError, match=message) as info:
        read_ts(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_reader_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_ts(tmp_path / "absent.ts")
