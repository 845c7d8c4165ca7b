"""Linear-algebra routines shared by the estimators.

They take NumPy arrays (solved with SciPy/LAPACK) or CuPy arrays (solved on
the GPU with cuSOLVER); results stay where the matrix is.
"""
import numpy as np

from .._core.backend import backend_of


class NumericalError(np.linalg.LinAlgError, ValueError):
    """A kernel system that stays singular or indefinite after the remedies."""


def cholesky_with_jitter(A, alpha=0.0, max_tries=7):
    """Cholesky factor of ``A + (alpha + jitter) I`` with jitter escalation.

    The jitter starts at zero and grows from ``1e-10`` times the mean of the
    diagonal by factors of 10 until the factorisation succeeds.

    Parameters
    ----------
    A : ndarray of shape (n, n), NumPy or CuPy
        Symmetric matrix (not modified).
    alpha : float or ndarray of shape (n,)
        Ridge added to the diagonal.
    max_tries : int
        Number of jitter levels tried after the plain factorisation.

    Returns
    -------
    factor : tuple
        ``(L, True)`` usable with :func:`scipy.linalg.cho_solve`.
    jitter : float
        The jitter that was needed (0.0 if none).

    Raises
    ------
    NumericalError
        If the matrix stays indefinite at the largest jitter, or contains
        NaN or infinite values.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite.linalg.cholesky import cholesky_with_jitter
    >>> factor, jitter = cholesky_with_jitter(np.ones((3, 3)))
    >>> jitter > 0
    True
    """
    backend = backend_of(A)
    xp = backend.xp
    A = xp.array(A, dtype=np.float64, copy=True, order="C")
    diag = A.reshape(-1)[::A.shape[0] + 1]   # a writable view
    diag += xp.asarray(alpha)
    scale = float(xp.mean(xp.abs(diag))) or 1.0
    if not np.isfinite(scale):
        _raise_not_finite()
    jitters = [0.0] + [scale * 10.0 ** (-10 + k) for k in range(max_tries)]
    added = 0.0
    for jitter in jitters:
        diag += jitter - added
        added = jitter
        try:
            factor = backend.cho_factor(A)
        except np.linalg.LinAlgError:
            continue
        # LAPACK may return a NaN factor without reporting failure; a NaN or
        # infinity anywhere in A reaches the diagonal of its row of L
        if not bool(xp.isfinite(xp.diagonal(factor[0])).all()):
            _raise_not_finite()
        return factor, jitter
    if not all(bool(xp.isfinite(A[i:i + 256]).all())
               for i in range(0, A.shape[0], 256)):
        _raise_not_finite()
    raise NumericalError(
        "The kernel matrix is not positive definite even with "
        f"{jitters[-1]:.3g} added to its diagonal; increase alpha, check for "
        "duplicated samples or lower the depth/weight variance.")


def _raise_not_finite():
    raise NumericalError(
        "The kernel matrix contains NaN or infinite values; check the inputs "
        "for NaN/inf and the kernel's hyperparameters for overflow.")


def cho_solve(factor, B):
    """Solve with a factor from :func:`cholesky_with_jitter`.

    ``B`` is moved to the factor's device if needed.
    """
    return backend_of(factor[0]).cho_solve(factor, B)


def solve_lower(L, B):
    """``L^-1 B`` for a lower-triangular ``L`` (its upper part is ignored)."""
    backend = backend_of(L)
    return backend.solve_triangular(L, backend.asarray(B, np.float64))


def eigh_psd(A, alpha=0.0):
    """Eigendecomposition of ``A + alpha I`` with eigenvalues clipped at 0."""
    backend = backend_of(A)
    xp = backend.xp
    A = xp.array(A, dtype=np.float64, copy=True, order="C")
    A.reshape(-1)[::A.shape[0] + 1] += alpha
    w, V = backend.eigh(A)
    return xp.clip(w, 0.0, None), V
