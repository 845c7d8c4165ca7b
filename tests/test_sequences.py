import numpy as np
import pytest

from skinfinite import flatten_sequences
from skinfinite._core.sequences import Sequences, check_sequences


def test_three_d_array_is_kept_as_is(rng):
    X = rng.normal(size=(4, 6, 3))
    seqs = check_sequences(X)
    assert isinstance(seqs, Sequences)
    np.testing.assert_array_equal(seqs.values, X)
    assert seqs.lengths.tolist() == [6] * 4
    assert seqs.n_channels == 3 and seqs.equal_lengths


def test_ragged_list_is_padded_by_the_last_point(rng):
    paths = [rng.normal(size=(3, 2)), rng.normal(size=(5, 2))]
    seqs = check_sequences(paths)
    assert seqs.values.shape == (2, 5, 2)
    assert seqs.lengths.tolist() == [3, 5]
    np.testing.assert_array_equal(seqs.path(0), paths[0])
    np.testing.assert_array_equal(seqs.values[0, 3:], [paths[0][-1]] * 2)


def test_one_d_entries_are_single_channel_paths():
    seqs = check_sequences([[0.0, 1.0, 3.0], np.array([2.0, 5.0])])
    assert seqs.n_channels == 1
    assert seqs.lengths.tolist() == [3, 2]


def test_flattened_form_round_trips(rng):
    paths = [rng.normal(size=(4, 3)), rng.normal(size=(2, 3)),
             rng.normal(size=(3, 3))]
    flat = flatten_sequences(paths, padding="nan")
    assert flat.shape == (3, 12)
    assert np.isnan(flat[1, 6:]).all() and np.isfinite(flat[1, :6]).all()
    back = check_sequences(flat, n_channels=3)
    ragged = check_sequences(paths)
    np.testing.assert_array_equal(back.values, ragged.values)
    np.testing.assert_array_equal(back.lengths, ragged.lengths)


def test_trailing_nan_padding_in_three_d_array(rng):
    X = rng.normal(size=(2, 5, 2))
    X[1, 3:] = np.nan
    seqs = check_sequences(X)
    assert seqs.lengths.tolist() == [5, 3]
    np.testing.assert_array_equal(seqs.values[1, 3], X[1, 2])


@pytest.mark.parametrize("bad, message", [
    ([], "empty list"),
    (np.zeros((0, 4, 2)), "0 paths"),
    ([np.zeros((3, 2)), np.zeros((3, 3))], "different numbers of channels"),
    (np.zeros((2, 1, 2)), "fewer than 2 points"),
    ([np.zeros((1, 2)), np.zeros((4, 2))], "fewer than 2 points"),
    (np.array([[["a", "b"], ["c", "d"]]]), "numeric"),
    (np.zeros(5), "dimension"),
    (np.zeros((2, 3, 4, 5)), "dimension"),
])
def test_bad_inputs_raise(bad, message):
    # layout="ntc": under "auto" the first and fourth inputs have a valid
    # (n_channels, length) reading
    with pytest.raises(ValueError, match=message):
        check_sequences(bad, layout="ntc")


def test_nan_or_inf_inside_a_path_raises(rng):
    X = rng.normal(size=(2, 5, 2))
    X[0, 2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN inside path 0"):
        check_sequences(X)
    X = rng.normal(size=(2, 5, 2))
    X[1, 4, 0] = np.inf
    with pytest.raises(ValueError, match="infinity inside path 1"):
        check_sequences(X)
    X = rng.normal(size=(2, 5, 2))
    X[1, 1] = np.nan        # a NaN step followed by data is not padding
    with pytest.raises(ValueError, match="NaN inside path 1"):
        check_sequences(X)
    X = rng.normal(size=(2, 5, 2))
    X[1, 4, 0] = np.nan     # a half-NaN last step is not padding either
    with pytest.raises(ValueError, match="NaN inside path 1"):
        check_sequences(X)


def test_two_d_needs_n_channels_dividing_the_width():
    with pytest.raises(ValueError, match="n_channels"):
        check_sequences(np.zeros((3, 6)))
    with pytest.raises(ValueError, match="not a multiple of n_channels=4"):
        check_sequences(np.zeros((3, 6)), n_channels=4)
    with pytest.raises(ValueError, match="n_channels=3"):
        check_sequences(np.zeros((3, 6, 2)), n_channels=3)
    with pytest.raises(ValueError, match="n_channels must be >= 1"):
        check_sequences(np.zeros((3, 6)), n_channels=0)


def test_flattened_form_padded_by_last_point_is_finite(rng):
    paths = [rng.normal(size=(4, 3)), rng.normal(size=(2, 3))]
    flat = flatten_sequences(paths)
    assert np.isfinite(flat).all()
    np.testing.assert_array_equal(flat[1, 6:], np.tile(paths[1][-1], 2))
    with pytest.raises(ValueError, match="padding"):
        flatten_sequences(paths, padding="zero")
