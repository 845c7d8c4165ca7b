"""Truncated signatures by Chen's relation: the independent reference for
signature kernels with the linear static kernel."""
import numpy as np


def segment_signature(h, depth):
    """Levels 0..depth of exp(h) for one linear segment: h^{(x)n} / n!."""
    levels = [np.ones(())]
    for n in range(1, depth + 1):
        levels.append(np.multiply.outer(levels[-1], h) / n)
    return levels


def chen_product(a, b, depth):
    """Levels of the tensor product a (x) b, truncated at ``depth``."""
    return [sum(np.multiply.outer(a[k], b[n - k]) for k in range(n + 1))
            for n in range(depth + 1)]


def truncated_signature(path, depth):
    sig = segment_signature(np.zeros(path.shape[1]), depth)
    for h in np.diff(path, axis=0):
        sig = chen_product(sig, segment_signature(h, depth), depth)
    return sig


def signature_kernel_by_levels(x, y, depth=10):
    """sum_n <S^n(x), S^n(y)>, truncated at ``depth``."""
    sx, sy = truncated_signature(x, depth), truncated_signature(y, depth)
    return float(sum(np.sum(a * b) for a, b in zip(sx, sy)))
