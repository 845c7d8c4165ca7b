"""Path transforms applied before a signature kernel, in this order:
lead-lag, time augmentation, basepoint.

Each takes and returns :class:`~skinfinite._core.sequences.Sequences`; padded
points keep repeating each path's last point.
"""
import numpy as np

from .sequences import Sequences


def lead_lag(seqs):
    """Lead-lag path of ``2 L - 1`` points: channels ``(lag, lead)``.

    Points ``(x_0, x_0), (x_0, x_1), (x_1, x_1), (x_1, x_2), ...``: the lead
    moves first, then the lag catches up.
    """
    n, top, c = seqs.values.shape
    lengths = 2 * seqs.lengths - 1
    out = np.empty((n, 2 * top - 1, 2 * c))
    v = seqs.values
    out[:, 0::2, :c] = v
    out[:, 0::2, c:] = v
    out[:, 1::2, :c] = v[:, :-1]
    out[:, 1::2, c:] = v[:, 1:]
    return _repad(Sequences(out, lengths))


def time_augment(seqs):
    """Append time ``t_k = k / (L - 1)`` in [0, 1] as the last channel."""
    n, top, c = seqs.values.shape
    out = np.empty((n, top, c + 1))
    out[:, :, :c] = seqs.values
    steps = np.arange(top, dtype=np.float64)
    out[:, :, c] = np.minimum(steps[None, :] / (seqs.lengths[:, None] - 1),
                              1.0)
    return Sequences(out, seqs.lengths.copy())


def basepoint(seqs):
    """Prepend the origin as the first point of every path."""
    n, top, c = seqs.values.shape
    out = np.zeros((n, top + 1, c))
    out[:, 1:] = seqs.values
    return Sequences(out, seqs.lengths + 1)


def _repad(seqs):
    v = seqs.values
    for i in np.flatnonzero(seqs.lengths < v.shape[1]):
        v[i, seqs.lengths[i]:] = v[i, seqs.lengths[i] - 1]
    return seqs


def transform(seqs, use_lead_lag=False, use_time=False, use_basepoint=False):
    """Apply the chosen transforms in the documented order."""
    if use_lead_lag:
        seqs = lead_lag(seqs)
    if use_time:
        seqs = time_augment(seqs)
    if use_basepoint:
        seqs = basepoint(seqs)
    return seqs
