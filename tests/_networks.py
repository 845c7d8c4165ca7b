"""Finite-width random fully-connected networks: the Monte Carlo oracle.

Independent of the package's recursion: forward and backward passes through
explicit random weight matrices, in the same parametrisation as the kernels.
"""
import numpy as np


def empirical_kernels(X, depth, phi, dphi, sw2, sb2, width, seed,
                      parametrization="ntk"):
    """Empirical NNGP (conditional readout covariance) and NTK of one network.

    Returns (K, T) for the inputs X (n, d) with a readout of width 1.
    """
    rng = np.random.default_rng(seed)
    n, d = X.shape
    std = parametrization == "standard"
    acts, pre = [X], []
    a = X
    for layer in range(depth):
        n_in = a.shape[1]
        W = rng.standard_normal((n_in, width))
        b = rng.standard_normal(width)
        h = np.sqrt(sw2 / n_in) * (a @ W) + np.sqrt(sb2) * b
        pre.append((h, W))
        a = phi(h)
        acts.append(a)
    K = sw2 * (a @ a.T) / width + sb2
    # backward: delta = df/dh for each layer's pre-activation
    w_out = rng.standard_normal(width)
    delta = np.ones((n, 1))
    T = _layer_contribution(a, delta, sw2, sb2, std)
    back = np.sqrt(sw2 / width) * w_out[None, :] * np.ones((n, 1))
    for layer in range(depth - 1, -1, -1):
        h, W = pre[layer]
        delta = back * dphi(h)
        a_in = acts[layer]
        T += _layer_contribution(a_in, delta, sw2, sb2, std)
        back = np.sqrt(sw2 / a_in.shape[1]) * delta @ W.T
    return K, T


def _layer_contribution(a_in, delta, sw2, sb2, std):
    dd = delta @ delta.T
    aa = (a_in @ a_in.T) / a_in.shape[1]
    if std:
        return dd * aa + dd
    return sw2 * dd * aa + sb2 * dd
