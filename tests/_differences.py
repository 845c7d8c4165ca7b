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


def theta_gradient(kernel, X, h=1e-6):
    """Central differences of ``kernel(X)`` in each log-hyperparameter."""
    columns = []
    for i in range(len(kernel.theta)):
        theta = kernel.theta.copy()
        theta[i] += h
        up = kernel.clone_with_theta(theta)(X)
        theta[i] -= 2 * h
        down = kernel.clone_with_theta(theta)(X)
        columns.append((up - down) / (2 * h))
    return np.stack(columns, axis=-1)
