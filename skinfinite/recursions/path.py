"""The per-input quantities a recursion hands to the engines."""
from dataclasses import dataclass

import numpy as np


@dataclass
class DiagonalPath:
    """Per-input quantities of a recursion.

    Attributes
    ----------
    stages : ndarray of shape (n_stages, 3, n)
        ``Kxx`` and its tangents (log weight variance, log bias variance)
        wherever the pair recursion evaluates a dual.
    nngp, ntk : ndarray of shape (n,)
        Output diagonals.
    nngp_grad, ntk_grad : ndarray of shape (2, n)
        Their tangents.
    """

    stages: np.ndarray
    nngp: np.ndarray
    ntk: np.ndarray
    nngp_grad: np.ndarray
    ntk_grad: np.ndarray
