"""Signature kernels of paths, as scikit-learn ``Kernel`` objects."""
import numbers

import numpy as np
from sklearn.gaussian_process.kernels import Hyperparameter, Kernel

from .._sequences import Sequences, check_same_channels, check_sequences
from .._tiling import count_blocks, iter_blocks, mirror_upper, plan_block, progress
from .._validation import check_dtype
from . import _goursat
from ._path_transforms import transform

_STATIC_NAMES = ("linear", "rbf")


def _check_order(order):
    if isinstance(order, bool) or not isinstance(order, numbers.Integral) \
            or not 0 <= order <= 12:
        raise ValueError(f"dyadic_order must be an integer in [0, 12], got "
                         f"{order!r}.")
    return int(order)


def _check_positive(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}.")
    return float(value)


def _check_static(static_kernel):
    if isinstance(static_kernel, str):
        if static_kernel not in _STATIC_NAMES:
            raise ValueError(f"static_kernel must be one of {_STATIC_NAMES} "
                             f"or a scikit-learn Kernel, got "
                             f"{static_kernel!r}.")
        return static_kernel
    if isinstance(static_kernel, Kernel):
        return static_kernel
    raise TypeError("static_kernel must be 'linear', 'rbf' or a scikit-learn "
                    f"Kernel, got {type(static_kernel).__name__}.")


class _Problem:
    """A validated static kernel: the solver mode and its scalars."""

    def __init__(self, static_kernel, scale, length_scale, order):
        static = _check_static(static_kernel)
        self.order = _check_order(order)
        self.factor = _check_positive(scale, "scale") ** 2
        self.kernel = None
        self.gamma = 0.0
        if static == "linear":
            self.mode = _goursat.LINEAR
        elif static == "rbf":
            self.mode = _goursat.RBF
            self.gamma = 0.5 / _check_positive(length_scale,
                                               "length_scale") ** 2
        else:
            self.mode = _goursat.GRAM
            self.kernel = static

    def bytes_per_pair(self, x, y):
        if self.mode == _goursat.GRAM:
            return 8.0 * x.max_length * y.max_length
        return 32.0

    def point_gram(self, x, rows, y, cols):
        """Static-kernel Gram of the points of two groups of paths."""
        if self.mode != _goursat.GRAM:
            return np.empty((1, 1))
        px = x.values[rows].reshape(-1, x.n_channels)
        py = y.values[cols].reshape(-1, y.n_channels)
        return np.ascontiguousarray(self.kernel(px, py), dtype=np.float64)


def _block_pairs(rows, cols, on_diagonal):
    r = np.arange(rows.start, rows.stop)
    c = np.arange(cols.start, cols.stop)
    rr, cc = np.meshgrid(r, c, indexing="ij")
    if on_diagonal:
        keep = rr <= cc
        rr, cc = rr[keep], cc[keep]
    return (np.ascontiguousarray(rr.ravel(), dtype=np.int64),
            np.ascontiguousarray(cc.ravel(), dtype=np.int64))


def _solve(problem, x, y, rows, cols, gram, grow, gcol, n_tangents):
    out = np.empty(rows.shape[0])
    args = (x.values, x.lengths, y.values, y.lengths, rows, cols,
            problem.mode, problem.order, problem.factor, problem.gamma, gram,
            grow, gcol, out)
    if n_tangents:
        dout = np.empty((rows.shape[0], n_tangents))
        _goursat.solve_tangents(*args, dout)
        return out, dout
    _goursat.solve_values(*args)
    return out, None


def signature_gram(problem, x, y=None, n_tangents=0):
    """Gram block of the signature kernel between two :class:`Sequences`.

    Parameters
    ----------
    problem : _Problem
    x, y : Sequences
        ``y=None`` computes the symmetric Gram, one triangle explicitly.
    n_tangents : int
        0, or the number of tangents (1: log scale; 2: also log length
        scale) returned as a second array of shape (n, m, n_tangents).
    """
    symmetric = y is None
    y = x if symmetric else y
    n, m = x.n_paths, y.n_paths
    out = np.empty((n, m))
    dout = np.empty((n, m, n_tangents)) if n_tangents else None
    block = plan_block(n, m, problem.bytes_per_pair(x, y), symmetric)
    total = count_blocks(n, m, block, symmetric)
    work = (n * m * (0.5 if symmetric else 1.0) * (x.max_length - 1)
            * (y.max_length - 1) * 4.0 ** problem.order)
    with progress(total, work, "signature kernel blocks") as bar:
        for rows, cols, on_diagonal in iter_blocks(n, m, block, symmetric):
            pr, pc = _block_pairs(rows, cols, on_diagonal)
            gram = problem.point_gram(x, rows, y, cols)
            grow = (pr - rows.start) * x.max_length
            gcol = (pc - cols.start) * y.max_length
            vals, tans = _solve(problem, x, y, pr, pc, gram, grow, gcol,
                                n_tangents)
            out[pr, pc] = vals
            if n_tangents:
                dout[pr, pc] = tans
            bar.update()
    if symmetric:
        mirror_upper(out)
        if n_tangents:
            mirror_upper(dout)
    return out, dout


def signature_diagonal(problem, x, n_tangents=0):
    """k(x_i, x_i) for each path (and tangents, shape (n, n_tangents))."""
    n = x.n_paths
    out = np.empty(n)
    dout = np.empty((n, n_tangents)) if n_tangents else None
    chunk = _goursat.LANES
    if problem.mode != _goursat.GRAM:
        chunk = n
    for start in range(0, n, chunk):
        rows = slice(start, min(start + chunk, n))
        idx = np.arange(rows.start, rows.stop, dtype=np.int64)
        gram = problem.point_gram(x, rows, x, rows)
        offs = (idx - start) * x.max_length
        vals, tans = _solve(problem, x, x, idx, idx, gram, offs, offs,
                            n_tangents)
        out[rows] = vals
        if n_tangents:
            dout[rows] = tans
    return out, dout


class SignatureKernel(Kernel):
    r"""Signature kernel of piecewise-linear paths (Goursat PDE solver).

    For paths :math:`x, y` the kernel is :math:`k(x, y) = u(1, 1)` where
    :math:`\partial_s \partial_t u = u \,\ddot\kappa(x_s, y_t)`,
    :math:`u(0, \cdot) = u(\cdot, 0) = 1`, with :math:`\ddot\kappa` the
    mixed second difference of the static kernel over each grid cell
    (``<dx_i, dy_j>`` for the linear static kernel, where it equals the inner
    product of the paths' full signatures).  Solved by an explicit
    second-order scheme, each cell refined into ``2^dyadic_order`` squared.

    Parameters
    ----------
    static_kernel : {"linear", "rbf"} or sklearn Kernel, default="linear"
        Kernel on the paths' points.  "rbf" is
        ``exp(-|x - y|^2 / (2 length_scale^2))``.  Any scikit-learn (or
        skinfinite) kernel is evaluated on Gram blocks of points, tile by
        tile; its own hyperparameters are held fixed.
    dyadic_order : int, default=0
        Refinement of the PDE grid: each cell is split into
        ``2^dyadic_order x 2^dyadic_order``.  The error falls as about
        ``4^-dyadic_order``.
    time_augment : bool, default=False
        Append time ``t_k = k / (L - 1)`` as a last channel.
    basepoint : bool, default=False
        Prepend the origin to each path.
    lead_lag : bool, default=False
        Use the lead-lag path (channels ``(lag, lead)``).
    scale : float, default=1.0
        The static kernel is multiplied by ``scale^2``; for the linear static
        kernel this is scaling the paths by ``scale``.  A hyperparameter.
    scale_bounds : pair of floats or "fixed", default=(1e-3, 1e3)
    length_scale : float, default=1.0
        RBF length scale (a hyperparameter only for ``static_kernel="rbf"``).
    length_scale_bounds : pair of floats or "fixed", default=(1e-3, 1e3)
    normalize : bool, default=False
        Return ``k(x, y) / sqrt(k(x, x) k(y, y))``.
    n_channels : int, optional
        Number of channels, needed to read the flattened 2-D form
        ``(n_paths, length * n_channels)`` (the form scikit-learn estimators
        pass on; see :func:`skinfinite.flatten_sequences`).
    dtype : {"float64", "float32"}, default="float64"
        Output dtype (the PDE is solved in float64).

    Notes
    -----
    Inputs: a 3-D array ``(n_paths, length, n_channels)``, a list of 2-D
    arrays of different lengths, or the flattened 2-D form with
    ``n_channels``.  Transforms apply in the order lead-lag, time
    augmentation, basepoint.  Gradients (``eval_gradient=True``) are exact
    derivatives of the discrete scheme, carried through the recursion.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite.kernels import SignatureKernel
    >>> X = np.random.default_rng(0).normal(size=(4, 10, 2)) * 0.3
    >>> K = SignatureKernel(dyadic_order=1)(X)
    >>> K.shape, bool(np.allclose(K, K.T))
    ((4, 4), True)
    """

    def __init__(self, static_kernel="linear", dyadic_order=0,
                 time_augment=False, basepoint=False, lead_lag=False,
                 scale=1.0, scale_bounds=(1e-3, 1e3), length_scale=1.0,
                 length_scale_bounds=(1e-3, 1e3), normalize=False,
                 n_channels=None, dtype="float64"):
        self.static_kernel = static_kernel
        self.dyadic_order = dyadic_order
        self.time_augment = time_augment
        self.basepoint = basepoint
        self.lead_lag = lead_lag
        self.scale = scale
        self.scale_bounds = scale_bounds
        self.length_scale = length_scale
        self.length_scale_bounds = length_scale_bounds
        self.normalize = normalize
        self.n_channels = n_channels
        self.dtype = dtype

    @property
    def hyperparameter_scale(self):
        return Hyperparameter("scale", "numeric", self.scale_bounds)

    @property
    def hyperparameter_length_scale(self):
        bounds = (self.length_scale_bounds
                  if isinstance(self.static_kernel, str)
                  and self.static_kernel == "rbf" else "fixed")
        return Hyperparameter("length_scale", "numeric", bounds)

    def _problem(self):
        return _Problem(self.static_kernel, self.scale, self.length_scale,
                        self.dyadic_order)

    def _sequences(self, X, name="X"):
        seqs = check_sequences(X, self.n_channels, name)
        return transform(seqs, bool(self.lead_lag), bool(self.time_augment),
                         bool(self.basepoint))

    def _tangent_columns(self):
        """Solver tangents (log scale, log length scale) in theta order."""
        columns = []
        if not self.hyperparameter_length_scale.fixed:
            columns.append(1)
        if not self.hyperparameter_scale.fixed:
            columns.append(0)
        return columns

    def __call__(self, X, Y=None, eval_gradient=False):
        """Return the kernel k(X, Y) and optionally its gradient.

        Parameters
        ----------
        X : sequences (3-D array, list of 2-D arrays, or 2-D flattened form)
        Y : sequences, default=None
            None evaluates k(X, X).
        eval_gradient : bool, default=False
            Also return the gradient with respect to the log of the non-fixed
            hyperparameters (only when Y is None).

        Returns
        -------
        K : ndarray of shape (n_paths_X, n_paths_Y)
        K_gradient : ndarray of shape (n_paths_X, n_paths_X, n_dims)
            Only when ``eval_gradient`` is True.
        """
        problem = self._problem()
        dtype = check_dtype(self.dtype)
        x = self._sequences(X)
        y = None
        if Y is not None:
            if eval_gradient:
                raise ValueError("Gradient can only be evaluated when Y is "
                                 "None.")
            y = self._sequences(Y, "Y")
            check_same_channels(x, y)
        columns = self._tangent_columns() if eval_gradient else []
        n_tan = 2 if problem.mode == _goursat.RBF else 1
        n_tan = n_tan if eval_gradient else 0
        K, dK = signature_gram(problem, x, y, n_tan)
        if self.normalize:
            K, dK = self._normalized(problem, x, y, K, dK, n_tan)
        if not eval_gradient:
            return K.astype(dtype, copy=False)
        dK = np.ascontiguousarray(dK[:, :, columns])
        return K.astype(dtype, copy=False), dK.astype(dtype, copy=False)

    def _normalized(self, problem, x, y, K, dK, n_tan):
        dx, ddx = signature_diagonal(problem, x, n_tan)
        dy, ddy = (dx, ddx) if y is None else signature_diagonal(problem, y,
                                                                 n_tan)
        inv = 1.0 / np.sqrt(np.outer(dx, dy))
        Kn = K * inv
        if dK is not None:
            rel = 0.5 * (ddx / dx[:, None])[:, None, :] \
                + 0.5 * (ddy / dy[:, None])[None, :, :]
            dK = dK * inv[:, :, None] - Kn[:, :, None] * rel
        if y is None:
            np.fill_diagonal(Kn, 1.0)
            if dK is not None:
                idx = np.arange(x.n_paths)
                dK[idx, idx] = 0.0
        return Kn, dK

    def diag(self, X):
        """Return k(x, x) for each path, computed once per path.

        Parameters
        ----------
        X : sequences

        Returns
        -------
        K_diag : ndarray of shape (n_paths,)
        """
        x = self._sequences(X)
        if self.normalize:
            self._problem()
            return np.ones(x.n_paths, dtype=check_dtype(self.dtype))
        values, _ = signature_diagonal(self._problem(), x)
        return values.astype(check_dtype(self.dtype), copy=False)

    def is_stationary(self):
        """Returns False."""
        return False

    @property
    def requires_vector_input(self):
        """False: the kernel works on paths."""
        return False

    def __repr__(self):
        static = (self.static_kernel if isinstance(self.static_kernel, str)
                  else repr(self.static_kernel))
        extra = (f", length_scale={self.length_scale:.4g}"
                 if static == "rbf" else "")
        return (f"SignatureKernel(static_kernel={static!r}, "
                f"dyadic_order={self.dyadic_order}, scale={self.scale:.4g}"
                f"{extra})")
