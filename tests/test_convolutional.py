"""Convolutional NNGP/NTK kernels: closed forms, Monte Carlo, protocol."""
import numpy as np
import pytest

from skinfinite.empirical import ConvolutionalNetwork
from skinfinite.kernels import ConvNNGP, ConvNTK


def _windows(x, d, q):
    starts = np.arange(x.shape[0] - d * (q - 1))
    return np.stack([x[s + d * np.arange(q)].ravel() for s in starts])


def _one_layer_reference(X, dilations, q, sw2, sb2, readout):
    """Depth-1 kernels written out with arc-cosine closed forms."""
    n, _, c = X.shape
    K = np.zeros((n, n))
    T = np.zeros((n, n))
    for d in dilations:
        for i in range(n):
            for j in range(n):
                A, B = _windows(X[i], d, q), _windows(X[j], d, q)
                a = sw2 / (c * q)
                S = a * A @ B.T + sb2
                r = np.sqrt(np.outer(a * (A * A).sum(1) + sb2,
                                     a * (B * B).sum(1) + sb2))
                theta = np.arccos(np.clip(S / r, -1, 1))
                step = (np.pi - theta) / (2 * np.pi)
                if readout == "ppv":
                    K[i, j] += step.mean()
                else:
                    K[i, j] += (r * (np.sin(theta) + (np.pi - theta)
                                     * np.cos(theta)) / (2 * np.pi)).mean()
                    T[i, j] += (S * step).mean()
    K = sw2 * K / len(dilations) + sb2
    return K, K + sw2 * T / len(dilations)


@pytest.mark.parametrize("readout", ["average", "ppv"])
def test_one_layer_matches_arc_cosine_formula(readout, rng):
    X = rng.normal(size=(4, 40, 2))
    K_ref, T_ref = _one_layer_reference(X, [1, 2, 4], 9, 2.0, 1.0, readout)
    K = ConvNNGP(readout=readout)(X)
    T = ConvNTK(readout=readout)(X)
    # arccos of the reference loses digits near correlation 1
    assert np.allclose(K, K_ref, rtol=1e-8, atol=0)
    assert np.allclose(T, T_ref if readout == "average" else K_ref,
                       rtol=1e-8, atol=0)
    assert np.allclose(ConvNNGP(readout=readout).diag(X), np.diag(K),
                       rtol=1e-12)


def _monte_carlo(kw, X, width, seeds):
    draws = [ConvolutionalNetwork(width=width, random_state=s, **kw).kernels(X)
             for s in range(seeds)]
    return (np.mean([k for k, _ in draws], 0), np.mean([t for _, t in draws], 0))


@pytest.mark.parametrize("kw", [dict(readout="ppv"), dict(readout="average"),
                                dict(depth=2, filter_size=3, dilation=[1, 2])],
                         ids=str)
def test_kernels_match_wide_random_networks(kw, rng):
    X = rng.normal(size=(3, 20, 2))
    K_mc, T_mc = _monte_carlo(kw, X, 256, 6)
    K, T = ConvNNGP(**kw)(X), ConvNTK(**kw)(X)
    # Monte Carlo error at this width is about 1.5% of the largest entry
    assert np.abs(K_mc - K).max() < 0.06 * np.abs(K).max()
    assert np.abs(T_mc - T).max() < 0.06 * np.abs(T).max()
