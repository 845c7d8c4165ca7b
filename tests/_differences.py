"""Central finite differences with respect to arrays of parameters."""
import numpy as np


def jacobian(fn, params, h=1e-6):
    """Jacobian of ``fn()`` with respect to every entry of ``params``.

    ``params`` are arrays that ``fn`` reads; each entry is moved by +-h in
    place and restored. Returns an array of shape ``fn().shape + (n,)`` with
    ``n`` the total number of entries.
    """
    columns = []
    for p in params:
        flat = p.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + h
            up = fn()
            flat[i] = old - h
            down = fn()
            flat[i] = old
            columns.append((up - down) / (2 * h))
    return np.stack(columns, axis=-1)
