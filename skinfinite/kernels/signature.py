"""Signature kernels of paths, as scikit-learn ``Kernel`` objects."""
import numbers
import warnings

import numba
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process.kernels import Hyperparameter, Kernel

from .._core.backend import backend_unless, like_input, on_host
from .._core.collections import is_dask
from .._core.config import CarriesConfig, get_config
from .._core.sequences import check_same_channels, check_sequences
from .._core.tiling import (UPDATES_PER_SECOND, block_pairs, count_blocks,
                            iter_blocks, mirror_upper, plan_block, progress,
                            warn_if_long)
from .._core.validation import (caller_stacklevel, check_dtype,
                                check_variance)
from ..activations.definitions import get_activation
from ..recursions import goursat as _goursat
from ..recursions.neural_goursat import neural_solvers, solve_pairs
from .._core.path_transforms import transform
from ._base import PathInputKernel

_STATIC_NAMES = ("linear", "rbf")
# Scratch bytes per pair of a tile: its row and column indices (with their
# meshgrid and mask temporaries) and its value.
_PAIR_BYTES = 64.0
#: Largest relative change of k(x, x) from dyadic_order m to m + 1 that
#: NeuralSignatureKernel accepts without a ConvergenceWarning, and the
#: tolerance to which dyadic_order="auto" refines.
NSK_TOL = 1e-2
#: Paths of the probe of dyadic_order="auto": those of largest quadratic
#: variation (sum of squared steps), where refinement matters most.
NSK_PROBE_PATHS = 8
#: dyadic_order="auto" refines no further than a Gram estimated at this many
#: seconds (at UPDATES_PER_SECOND / NSK_CELL_COST cells per second and
#: thread) or whose diagonal solves need more than NSK_AUTO_MEMORY times the
#: memory budget.
NSK_AUTO_SECONDS = 60.0
NSK_CELL_COST = 10.0
NSK_AUTO_MEMORY = 4.0
#: Values of NeuralSignatureKernel beyond this magnitude are an error: the
#: products and squares that solvers of a Gram form overflow float64 (1.8e308).
NSK_OVERFLOW = 1e150


MAX_ORDER = 12
#: dyadic_order="auto" of SignatureKernel refines until every refined step
#: has at most this squared length in the static kernel's feature space
#: (scale included): well inside the CAYLEY scheme's radius of 4, where its
#: Grams are positive semi-definite, and small enough for about 1e-3
#: relative accuracy per step.
AUTO_STEP_SQ = 1.0
_SCHEMES = {"cayley": _goursat.CAYLEY, "taylor": _goursat.TAYLOR}


def _check_order(order, allow_auto=True):
    if allow_auto and isinstance(order, str) and order == "auto":
        return order
    if isinstance(order, bool) or not isinstance(order, numbers.Integral) \
            or not 0 <= order <= MAX_ORDER:
        raise ValueError(f"dyadic_order must be \"auto\" or an integer in "
                         f"[0, {MAX_ORDER}], got {order!r}.")
    return int(order)


def _check_scheme(scheme):
    if not isinstance(scheme, str) or scheme not in _SCHEMES:
        raise ValueError(f"scheme must be one of {tuple(_SCHEMES)}, got "
                         f"{scheme!r}.")
    return _SCHEMES[scheme]


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

    def __init__(self, static_kernel, scale, length_scale, order,
                 scheme="cayley"):
        static = _check_static(static_kernel)
        self.order = _check_order(order)
        self.scheme = _check_scheme(scheme)
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

    #: a GPU backend when the pairs are solved on a GPU (values only)
    backend = None

    def longest_step(self, seqs):
        """Largest squared length of a step of the paths in the static
        kernel's feature space, ``kappa(a, a) + kappa(b, b) - 2 kappa(a, b)``
        times ``scale^2`` (the increment product of the step with itself)."""
        if seqs is None or seqs.n_paths == 0:
            return 0.0
        if self.mode == _goursat.GRAM:
            top = 0.0
            for i in range(seqs.n_paths):
                p = seqs.path(i)
                G = np.asarray(self.kernel(p, p), dtype=np.float64)
                d = np.diagonal(G)
                steps = d[:-1] + d[1:] - 2.0 * np.diagonal(G, 1)
                top = max(top, float(np.max(steps, initial=0.0)))
            return self.factor * top
        # padded steps repeat the last point: zero length
        d2 = np.square(np.diff(seqs.values, axis=1)).sum(axis=2)
        top = float(np.max(d2, initial=0.0))
        if self.mode == _goursat.RBF:
            top = 2.0 * -np.expm1(-self.gamma * top)
        return self.factor * top

    def resolve_order(self, x, y=None):
        """Fix ``dyadic_order="auto"`` from the paths' longest step, and warn
        where an explicit order leaves the CAYLEY scheme's features divergent
        (its Grams are positive semi-definite where they converge).

        An explicit order too coarse is a warning, not an error: optimisers
        of hyperparameters (``scale``) step into such regions and recover
        from a Gram that fails to factor, not from an exception."""
        step = max(self.longest_step(x), self.longest_step(y))
        if not np.isfinite(step):
            raise FloatingPointError(
                "SignatureKernel: the squared length of a step of the paths "
                "overflows; scale the paths down (scale < 1).")
        if self.order == "auto":
            order = 0
            while order < MAX_ORDER and step > AUTO_STEP_SQ * 4.0 ** order:
                order += 1
            self.order = order
            top = _goursat.CAYLEY_RADIUS_SQ * 4.0 ** order
            if self.scheme == _goursat.CAYLEY and step >= top:
                raise ValueError(
                    f"SignatureKernel: a step of the paths has squared length "
                    f"{step:.3g} (static-kernel units, times scale^2), too "
                    f"long for dyadic_order <= {MAX_ORDER}; scale the paths "
                    "down (scale < 1) or use normalize=True on scaled paths.")
        elif self.scheme == _goursat.CAYLEY \
                and step >= _goursat.CAYLEY_RADIUS_SQ * 4.0 ** self.order:
            need = int(np.floor(0.5 * np.log2(
                step / _goursat.CAYLEY_RADIUS_SQ))) + 1
            warnings.warn(
                f"SignatureKernel: dyadic_order={self.order} is too coarse "
                f"for these paths: a step has squared length {step:.3g} "
                f"(static-kernel units, times scale^2) and the scheme needs "
                f"less than {_goursat.CAYLEY_RADIUS_SQ:g} per refined step "
                f"(4^-dyadic_order of it); the values are not meaningful and "
                f"the Gram may be indefinite. Use dyadic_order >= {need}, "
                "dyadic_order=\"auto\", or scale the paths down.",
                ConvergenceWarning, stacklevel=caller_stacklevel())
        return self.order

    def use_device(self, device, eval_gradient, *inputs):
        """Solve on a GPU when ``device`` says so and the problem allows.

        The GPU solver covers the values of the linear and RBF static
        kernels; the rest runs on the CPU under "auto" and is an error under
        an explicit "gpu".
        """
        missing = ("signature solver for a general static kernel"
                   if self.mode == _goursat.GRAM else
                   "signature-kernel gradients" if eval_gradient else None)
        backend = backend_unless(device, missing, *inputs)
        if backend.name == "gpu":
            self.backend, self._uploaded = backend, {}

    def device_values(self, seqs):
        """The paths' points on the GPU, uploaded once per evaluation."""
        if id(seqs) not in self._uploaded:
            self._uploaded[id(seqs)] = (
                self.backend.asarray(seqs.values, np.float64), seqs)
        return self._uploaded[id(seqs)][0]

    def bytes_per_pair(self, x, y):
        if self.mode == _goursat.GRAM:
            return _PAIR_BYTES + 8.0 * x.max_length * y.max_length
        return _PAIR_BYTES

    def point_gram(self, x, rows, y, cols):
        """Static-kernel Gram of the points of two groups of paths."""
        if self.mode != _goursat.GRAM:
            return np.empty((1, 1))
        px = x.values[rows].reshape(-1, x.n_channels)
        py = y.values[cols].reshape(-1, y.n_channels)
        return np.ascontiguousarray(self.kernel(px, py), dtype=np.float64)


def _solve(problem, x, y, rows, cols, gram, grow, gcol, n_tangents):
    if problem.backend is not None and not n_tangents:
        from ..engine.cuda import goursat as _goursat_gpu
        budget = 0.25 * problem.backend.free_memory()
        return _goursat_gpu.solve_values(
            problem.backend, problem.device_values(x), x.lengths,
            problem.device_values(y), y.lengths, rows, cols, problem.mode,
            problem.order, problem.scheme, problem.factor, problem.gamma,
            min(budget, 2.0 ** 40)), None
    out = np.empty(rows.shape[0])
    args = (x.values, x.lengths, y.values, y.lengths, rows, cols,
            problem.mode, problem.order, problem.scheme, problem.factor,
            problem.gamma, gram, grow, gcol, out)
    if n_tangents:
        dout = np.empty((rows.shape[0], n_tangents))
        _goursat.solve(*args, dout)
        return out, dout
    _goursat.solve(*args)
    return out, None


def tiled_pairs(n, m, symmetric, bytes_per_pair, work, solve_block,
                n_tangents=0, desc="signature kernel blocks"):
    """Run ``solve_block(rows, cols, pair_rows, pair_cols)`` over tiles of
    the output (one triangle when symmetric) and assemble the Gram block.

    ``solve_block`` returns the pairs' values and, with ``n_tangents``, their
    tangents of shape (n_pairs, n_tangents).
    """
    out = np.empty((n, m))
    dout = np.empty((n, m, n_tangents)) if n_tangents else None
    pairs = n * (n + 1) / 2 if symmetric else n * m
    block = plan_block(n, m, bytes_per_pair, symmetric,
                       work_per_pair=work / max(pairs, 1), min_pairs=32)
    total = count_blocks(n, m, block, symmetric)
    warn_if_long(work, f"Signature kernel Gram of {n} x {m} paths",
                 "Lower dyadic_order, or subsample the paths.")
    with progress(total, work, desc) as bar:
        for rows, cols, on_diagonal in iter_blocks(n, m, block, symmetric):
            pr, pc = block_pairs(rows, cols, on_diagonal)
            vals, tans = solve_block(rows, cols, pr, pc)
            out[pr, pc] = vals
            if n_tangents:
                dout[pr, pc] = tans
            bar.update()
    if symmetric:
        mirror_upper(out)
        if n_tangents:
            mirror_upper(dout)
    return out, dout


def _cells(x, y, order):
    return (x.max_length - 1) * (y.max_length - 1) * 4.0 ** order


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

    def solve_block(rows, cols, pr, pc):
        gram = problem.point_gram(x, rows, y, cols)
        grow = (pr - rows.start) * x.max_length
        gcol = (pc - cols.start) * y.max_length
        return _solve(problem, x, y, pr, pc, gram, grow, gcol, n_tangents)

    work = n * m * (0.5 if symmetric else 1.0) * _cells(x, y, problem.order)
    return tiled_pairs(n, m, symmetric, problem.bytes_per_pair(x, y), work,
                       solve_block, n_tangents)


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


def _finite_output(K, name, advice, limit=np.inf):
    if not np.all(np.isfinite(K)):
        raise FloatingPointError(
            f"{name} produced non-finite values (overflow, or a scheme "
            f"unstable on cells this large): {advice}, or refine with a "
            "higher dyadic_order.")
    top = float(np.max(np.abs(K), initial=0.0))
    if top > limit:
        raise FloatingPointError(
            f"{name} produced values up to {top:.3g}, beyond {limit:.0e}: "
            f"products of such values overflow float64 in any solver of the "
            f"Gram. {advice[0].upper() + advice[1:]}.")
    return K


class _PathKernel(CarriesConfig, PathInputKernel):
    """Plumbing shared by the kernels on paths: input checks and the path
    transforms named by ``lead_lag``, ``time_augment`` and ``basepoint``."""

    def _sequences(self, X, name="X"):
        seqs = check_sequences(X, self.n_channels, name, self.layout)
        return transform(seqs, bool(self.lead_lag), bool(self.time_augment),
                         bool(self.basepoint))

    def _paths(self, X, Y, eval_gradient):
        """Checked and transformed ``X`` and ``Y`` (None when Y is None)."""
        x = self._sequences(X)
        if Y is None:
            return x, None
        if eval_gradient:
            raise ValueError("Gradient can only be evaluated when Y is "
                             "None.")
        y = self._sequences(Y, "Y")
        check_same_channels(x, y)
        return x, y

class SignatureKernel(_PathKernel):
    r"""Signature kernel of piecewise-linear paths (Goursat PDE solver).

    For paths :math:`x, y` the kernel is :math:`k(x, y) = u(1, 1)` where
    :math:`\partial_s \partial_t u = u \,\ddot\kappa(x_s, y_t)`,
    :math:`u(0, \cdot) = u(\cdot, 0) = 1`, with :math:`\ddot\kappa` the
    mixed second difference of the static kernel over each grid cell
    (``<dx_i, dy_j>`` for the linear static kernel, where it equals the inner
    product of the paths' full signatures).  Solved by an explicit
    second-order scheme, each cell refined into ``2^dyadic_order`` squared;
    the default scheme is itself an inner product of features, so its Grams
    are positive semi-definite at every refinement.

    Parameters
    ----------
    static_kernel : {"linear", "rbf"} or sklearn Kernel, default="linear"
        Kernel on the paths' points.  "rbf" is
        ``exp(-|x - y|^2 / (2 length_scale^2))``.  Any scikit-learn (or
        skinfinite) kernel is evaluated on Gram blocks of points, tile by
        tile; its own hyperparameters are held fixed.
    dyadic_order : "auto" or int, default="auto"
        Refinement of the PDE grid: each cell is split into
        ``2^dyadic_order x 2^dyadic_order``.  The error falls as about
        ``4^-dyadic_order``.  "auto" takes the smallest order at which every
        refined step of the paths (of ``X`` and ``Y`` together) has squared
        length at most ``AUTO_STEP_SQ`` (1) in the static kernel's feature
        space, ``scale`` included: 0 for standardised series of a few dozen
        points or more, and for the RBF static kernel at ``scale <= 0.7``.
        With ``scheme="cayley"`` an explicit order must keep every refined
        step's squared length below 4; a coarser one gives values without
        meaning and a ``ConvergenceWarning`` that names the order needed.
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
    device : {"auto", "cpu", "gpu"}, default="auto"
        Where the PDEs are solved (:ref:`guide_gpu`). The GPU solver covers
        the values of the linear and RBF static kernels; gradients and other
        static kernels run on the CPU under "auto" (and are an error under
        "gpu"). Outputs are NumPy arrays unless the input was a CuPy array.
    layout : {"auto", "ntc", "nct"}, default="auto"
        Axis order of 3-D arrays and of list entries: "ntc" is
        ``(n_paths, length, n_channels)`` (skinfinite's loaders, tslearn),
        "nct" is ``(n_paths, n_channels, length)`` (aeon, sktime).  "auto"
        decides from the shapes and raises where both readings fit (see
        :ref:`guide_input_layouts`).  Not a hyperparameter.
    scheme : {"cayley", "taylor"}, default="cayley"
        The cell update.  "cayley" is the inner product of the features
        ``prod_i (1 + dx_i/2)(1 - dx_i/2)^-1`` (the Cayley transform of each
        refined step in place of its tensor exponential): Grams positive
        semi-definite at every ``dyadic_order``.  "taylor" is the scheme of
        sigkernel and pysiglib (equal to pysiglib's values to rounding),
        whose coarse Grams can be indefinite.  Both are second order and
        converge to the same kernel.

    Notes
    -----
    Inputs: a 3-D array ``(n_paths, length, n_channels)`` or ``(n_paths,
    n_channels, length)`` (see ``layout``), a list of 2-D arrays of
    different lengths, a nested pandas DataFrame, or the flattened 2-D form
    with ``n_channels``.  Transforms apply in the order lead-lag, time
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

    def __init__(self, static_kernel="linear", dyadic_order="auto",
                 time_augment=False, basepoint=False, lead_lag=False,
                 scale=1.0, scale_bounds=(1e-3, 1e3), length_scale=1.0,
                 length_scale_bounds=(1e-3, 1e3), normalize=False,
                 n_channels=None, dtype="float64", device="auto",
                 layout="auto", scheme="cayley"):
        self.static_kernel = static_kernel
        self.dyadic_order = dyadic_order
        self.scheme = scheme
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
        self.device = device
        self.layout = layout

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
                        self.dyadic_order, self.scheme)

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
        if is_dask(X) or is_dask(Y):
            from ..distributed.gram import dask_gram
            return dask_gram(self, X, Y, eval_gradient)
        problem = self._problem()
        dtype = check_dtype(self.dtype)
        problem.use_device(self.device, eval_gradient, X, Y)
        reference = X
        X, Y = on_host(X), on_host(Y)
        x, y = self._paths(X, Y, eval_gradient)
        problem.resolve_order(x, y)
        columns = self._tangent_columns() if eval_gradient else []
        n_tan = 2 if problem.mode == _goursat.RBF else 1
        n_tan = n_tan if eval_gradient else 0
        K, dK = signature_gram(problem, x, y, n_tan)
        if self.normalize:
            K, dK = self._normalized(problem, x, y, K, dK, n_tan)
        K = _finite_output(K.astype(dtype, copy=False), "SignatureKernel",
                           "scale the paths down (scale < 1) or use "
                           "normalize=True")
        if not eval_gradient:
            return like_input(K, reference)
        dK = np.ascontiguousarray(dK[:, :, columns])
        return K, dK.astype(dtype, copy=False)

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
        problem = self._problem()
        problem.resolve_order(x)
        if self.normalize:
            return np.ones(x.n_paths, dtype=check_dtype(self.dtype))
        values, _ = signature_diagonal(problem, x)
        return values.astype(check_dtype(self.dtype), copy=False)

    def __repr__(self):
        static = (self.static_kernel if isinstance(self.static_kernel, str)
                  else repr(self.static_kernel))
        extra = (f", length_scale={self.length_scale:.4g}"
                 if static == "rbf" else "")
        return (f"SignatureKernel(static_kernel={static!r}, "
                f"dyadic_order={self.dyadic_order!r}, "
                f"scale={self.scale:.4g}{extra})")


def _node_values(activation, kxx, kxy, kyy, sa2, sb2):
    v, vd = activation.dual(kxx, kxy, kyy)
    return sa2 * v + sb2, sa2 * vd


def _relative_change(a, b, worst=True):
    """|a - b| / |b| elementwise (inf where not finite), or its maximum."""
    with np.errstate(all="ignore"):
        change = np.abs(b - a) / np.maximum(np.abs(b), 1e-300)
    change = np.where(np.isfinite(change), change, np.inf)
    return float(np.max(change, initial=0.0)) if worst else change


def _probe_paths(seqs):
    """The NSK_PROBE_PATHS paths of largest quadratic variation."""
    if seqs.n_paths <= NSK_PROBE_PATHS:
        return seqs
    qv = np.square(np.diff(seqs.values, axis=1)).sum(axis=(1, 2))
    keep = np.sort(np.argsort(qv, kind="stable")[-NSK_PROBE_PATHS:])
    return seqs.take(keep)


class _NeuralProblem:
    """Validated parameters of the neural signature kernel."""

    def __init__(self, kernel):
        self.activation = get_activation(kernel.activation)
        self.sa2 = check_variance(kernel.weight_variance, "weight_variance")
        self.sb2 = check_variance(kernel.bias_variance, "bias_variance",
                                  allow_zero=True)
        self.s02 = check_variance(kernel.initial_variance, "initial_variance")
        self.order = _check_order(kernel.dyadic_order)
        self.homogeneous = bool(kernel.homogeneous)
        self.param = self.activation.parameter
        self.solvers = neural_solvers(self.activation)

    def with_order(self, order):
        other = _NeuralProblem.__new__(_NeuralProblem)
        other.__dict__.update(self.__dict__, order=order)
        return other

    def raw_diagonal(self, x):
        """k(x, x) of each path at ``self.order``, unchecked."""
        if self.homogeneous:
            return self.diagonals(x)[0][:, -1]
        return self.euler_gram(x)[1]

    def _auto_bound(self, x, y, order):
        """Why a Gram (and its diagonal solves) at ``order`` is too large
        for dyadic_order="auto", or None."""
        symmetric = y is None
        y = x if symmetric else y
        n, m = x.n_paths, y.n_paths
        work = n * m * (0.5 if symmetric else 1.0) * _cells(x, y, order)
        # and the check of the diagonals one order up (solved twice each)
        for seqs in ([x] if symmetric else [x, y]):
            work += seqs.n_paths * _cells(seqs, seqs, order + 1)
        seconds = work * NSK_CELL_COST / (UPDATES_PER_SECOND
                                          * max(1, numba.get_num_threads()))
        if seconds > NSK_AUTO_SECONDS:
            return (f"the Gram at dyadic_order={order} (with the check of "
                    f"its diagonals) is estimated at "
                    f"{seconds:.3g} s (bound {NSK_AUTO_SECONDS:g} s)")
        n_coef = self.coefficients(np.full(1, self.s02)).shape[1]
        longest = max(x.max_length, y.max_length)
        nbytes = 8.0 * (n + (0 if symmetric else m)) * \
            (((longest - 1) << order) + 1) * (8 + n_coef)
        budget = NSK_AUTO_MEMORY * get_config()["memory_budget"]
        if nbytes > budget:
            return (f"its diagonal solves at dyadic_order={order} need "
                    f"{nbytes / 2**20:.0f} MB (bound {budget / 2**20:.0f} "
                    "MB)")
        return None

    def resolve_order(self, x, y=None):
        """Fix dyadic_order="auto": the smallest order at which k(x, x) of
        the probe paths changes by at most NSK_TOL (relative) at the next
        order, within the time and memory bounds (a ConvergenceWarning
        where they stop the refinement)."""
        if self.order != "auto":
            return self.order
        sets = [x] if y is None else [x, y]
        # the probe finds the order cheaply; all paths confirm it (the
        # homogeneous kernel only: the diagonal of the Euler network comes
        # with its whole Gram)
        stages = [[_probe_paths(p) for p in sets]]
        if self.homogeneous and any(p.n_paths > NSK_PROBE_PATHS
                                    for p in sets):
            stages.append(sets)
        order = 0
        with np.errstate(all="ignore"), warnings.catch_warnings():
            # series truncation warnings repeat in the evaluation itself
            warnings.simplefilter("ignore", RuntimeWarning)
            for paths in stages:
                order = self._refine(x, y, paths, order)
                if order is None:
                    break
        self.order = self._stopped if order is None else order
        return self.order

    def _refine(self, x, y, paths, order):
        """The smallest order from ``order`` on at which k(p, p) of
        ``paths`` changes by at most NSK_TOL at the next order (None after a
        ConvergenceWarning: the bounds stop at ``self._stopped``)."""
        values = [self.with_order(order).raw_diagonal(p) for p in paths]
        while order < MAX_ORDER:
            finer = [self.with_order(order + 1).raw_diagonal(p)
                     for p in paths]
            for v, w in zip(values, finer):
                # refinement raises these values: fail before refining on
                _finite_output(w[np.isfinite(w)], "NeuralSignatureKernel",
                               "scale the paths down", NSK_OVERFLOW)
                if not (np.all(np.isfinite(v)) or np.all(np.isfinite(w))):
                    _finite_output(w, "NeuralSignatureKernel",
                                   "scale the paths down")
            change = max(_relative_change(a, b)
                         for a, b in zip(values, finer))
            if change <= NSK_TOL:
                return order
            stop = self._auto_bound(x, y, order + 1)
            if stop is not None:
                warnings.warn(
                    f"NeuralSignatureKernel: dyadic_order=\"auto\" stops at "
                    f"{order}, where k(x, x) still changes by {change:.3g} "
                    f"(relative, tolerance {NSK_TOL:g}) at the next order: "
                    f"{stop}. Scale the paths down, subsample them, or set "
                    "dyadic_order.", ConvergenceWarning, stacklevel=caller_stacklevel())
                self._stopped = order
                return None
            order, values = order + 1, finer
        return order

    def coefficients(self, k):
        return np.ascontiguousarray(self.activation.coefficients(k))

    def diagonals(self, x):
        """Kxx at every node of each path's refined grid, (n, n_fine + 1),
        and the Hermite rows there, (n, n_fine + 1, n_coefficients)."""
        diagonal_row = self.solvers[0]
        n = x.n_paths
        n_fine = (x.max_length - 1) << self.order
        incs = np.ascontiguousarray(np.diff(x.values, axis=1))
        diag = np.empty((n, n_fine + 1))
        diag[:, 0] = self.s02
        first = self.coefficients(diag[:, 0])
        coef = np.empty((n, n_fine + 1, first.shape[1]))
        coef[:, 0] = first
        rows = [np.empty((n, n_fine + 1)) for _ in range(6)]
        prev, fprev, gprev, cur, fcur, gcur = rows
        prev[:, 0] = self.s02
        f, g = _node_values(self.activation, diag[:, 0], diag[:, 0],
                            diag[:, 0], self.sa2, self.sb2)
        fprev[:, 0], gprev[:, 0] = f, g
        series = first.shape[1] > 0
        for i in range(n_fine):
            # unstable grids overflow here; the caller reports non-finite
            # results with advice
            with np.errstate(over="ignore", invalid="ignore"):
                pred = (diag[:, i] if i == 0
                        else 2 * diag[:, i] - diag[:, i - 1])
                pred = np.maximum(pred, 0.5 * diag[:, i])
            for _ in range(2):          # predict, then correct
                diag[:, i + 1] = pred
                if series:
                    coef[:, i + 1] = self.coefficients(pred)
                diagonal_row(incs, i, self.order, diag, coef, prev, fprev,
                             gprev, cur, fcur, gcur, self.s02, self.sa2,
                             self.sb2, self.param)
                pred = diag[:, i + 1].copy()
            if series:
                coef[:, i + 1] = self.coefficients(diag[:, i + 1])
            prev, cur = cur, prev
            fprev, fcur = fcur, fprev
            gprev, gcur = gcur, gprev
        return diag, coef

    def checked_diagonals(self, x):
        """:meth:`diagonals`, with k(x, x) checked for finiteness and
        against the next dyadic order (``NSK_TOL``)."""
        diag, coef = self.diagonals(x)
        self.check_converged(x, diag[:, -1])
        return diag, coef

    def check_converged(self, x, values):
        _finite_output(values, "NeuralSignatureKernel",
                       "scale the paths down", NSK_OVERFLOW)
        if self.order >= MAX_ORDER or x.n_paths == 0:
            return
        # one more refinement of the diagonals costs 4 diagonal solves per
        # path: little beside a Gram of n^2 pair solves
        finer = self.with_order(self.order + 1)
        with np.errstate(all="ignore"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                ref = finer.diagonals(x)[0][:, -1]
        change = _relative_change(values, ref, worst=False)
        worst = int(np.argmax(change))
        if change[worst] > NSK_TOL:
            warnings.warn(
                f"NeuralSignatureKernel is not converged at dyadic_order="
                f"{self.order}: k(x, x) changes by {change[worst]:.3g} "
                f"(relative) at dyadic_order={self.order + 1} (tolerance "
                f"{NSK_TOL:g}); raise dyadic_order or scale the paths down.",
                ConvergenceWarning, stacklevel=caller_stacklevel())

    def gram(self, x, y=None):
        symmetric = y is None
        dx, cx = self.checked_diagonals(x)
        if symmetric:
            y, dy, cy = x, dx, cx
        else:
            dy, cy = self.checked_diagonals(y)

        def solve_block(rows, cols, pr, pc):
            out = np.empty(pr.shape[0])
            solve_pairs(self.solvers, x.values, x.lengths, y.values,
                        y.lengths, dx, dy, cx, cy, pr, pc, self.order,
                        self.s02, self.sa2, self.sb2, self.param, out,
                        NSK_CELL_COST)
            return out, None

        n, m = x.n_paths, y.n_paths
        work = n * m * (0.5 if symmetric else 1.0) * _cells(x, y, self.order)
        K, _ = tiled_pairs(n, m, symmetric, _PAIR_BYTES, work, solve_block,
                           desc="neural signature kernel blocks")
        if symmetric:
            # the diagonal solve is the reference for k(x, x)
            np.fill_diagonal(K, dx[:, -1])
        return K

    def diagonal(self, x):
        return self.checked_diagonals(x)[0][:, -1].copy()

    def euler_gram(self, x, y=None):
        """Inhomogeneous network: one Euler step per refined increment."""
        symmetric = y is None
        y = x if symmetric else y
        for seqs, name in ((x, "X"), (y, "Y")):
            if not seqs.equal_lengths:
                raise ValueError(
                    f"homogeneous=False needs paths of equal length (the "
                    f"time steps are shared); {name} has lengths from "
                    f"{seqs.lengths.min()} to {seqs.lengths.max()}.")
        if x.max_length != y.max_length:
            raise ValueError(f"homogeneous=False needs paths of equal length; "
                             f"X has {x.max_length} points, Y "
                             f"{y.max_length}.")
        euler_step, euler_diagonal_step = self.solvers[2:4]
        refine = 1 << self.order
        # fresh weights of variance sA2 / dt at each of the n_steps steps
        w = (x.max_length - 1) / refine
        dX, dY = np.diff(x.values, axis=1), np.diff(y.values, axis=1)
        K = np.full((x.n_paths, y.n_paths), self.s02)
        kx = np.full(x.n_paths, self.s02)
        ky = np.full(y.n_paths, self.s02)
        for i in range(x.max_length - 1):
            G = np.ascontiguousarray(dX[:, i] @ dY[:, i].T)
            gx = np.einsum("ij,ij->i", dX[:, i], dX[:, i])
            gy = np.einsum("ij,ij->i", dY[:, i], dY[:, i])
            for _ in range(refine):
                cx, cy = self.coefficients(kx), self.coefficients(ky)
                euler_step(K, kx, ky, cx, cy, G, w, self.sa2, self.sb2,
                           self.param)
                euler_diagonal_step(kx, cx, gx, w, self.sa2, self.sb2,
                                    self.param)
                if not symmetric:
                    euler_diagonal_step(ky, cy, gy, w, self.sa2, self.sb2,
                                        self.param)
                else:
                    ky = kx
        if symmetric:
            K = 0.5 * (K + K.T)
            np.fill_diagonal(K, kx)
        return K, kx


class NeuralSignatureKernel(_PathKernel):
    r"""Limit kernel of randomly initialised controlled ResNets on paths.

    The network ``dY = (A phi(Y) + b) dx`` of width N, with
    ``A_ij ~ N(0, sA2 / N)``, ``b ~ N(0, sb2)`` (one pair per channel of the
    path) and ``Y_0 ~ N(0, s02 I)`` shared by all inputs, has as N grows
    the covariance ``K(x, y) = E[Y^x_1 Y^y_1]`` given by (Cirone, Lemercier
    and Salvi, 2023)

    .. math::

        \partial_s \partial_t K^{xy}(s, t) = \left(\sigma_A^2
            V_\phi(\Sigma(s, t)) + \sigma_b^2\right) \langle x'(s), y'(t)
            \rangle, \qquad K(0, \cdot) = K(\cdot, 0) = \sigma_0^2,

    where ``V_phi(Sigma) = E[phi(U) phi(V)]`` for ``(U, V)`` centred
    Gaussian with covariance
    ``[[K^xx(s, s), K^xy(s, t)], [K^xy(s, t), K^yy(t, t)]]``.  The diagonals
    ``K^xx(s, s)`` are solved first (each path against itself), then every
    pair.  With the identity, ``sA2 = s02 = 1`` and ``sb2 = 0`` this is
    :class:`SignatureKernel`.

    Parameters
    ----------
    activation : str, Activation or callable, default="relu"
        Any :mod:`skinfinite.activations.definitions` activation (closed-form duals or
        Hermite series).
    weight_variance : float, default=1.0
        ``sA2``.
    bias_variance : float, default=0.0
        ``sb2``.
    initial_variance : float, default=1.0
        ``s02``, the variance of the initial state.
    dyadic_order : "auto" or int, default="auto"
        Each PDE cell (or Euler step) is split ``2^dyadic_order`` times per
        direction.  "auto" takes the smallest order at which ``k(x, x)``
        changes by at most ``NSK_TOL`` (1%, relative) at the next order, on
        a probe of the ``NSK_PROBE_PATHS`` (8) paths of largest quadratic
        variation (of ``X`` and of ``Y``), refining no further than a Gram
        estimated at ``NSK_AUTO_SECONDS`` (60 s) or diagonal solves of
        ``NSK_AUTO_MEMORY`` (4) times the memory budget; a
        ``ConvergenceWarning`` says where these bounds stop it.  Every
        evaluation also checks all paths' ``k(x, x)`` against the next order
        and warns beyond ``NSK_TOL``.
    homogeneous : bool, default=True
        The same weights at every step (the PDE above).  With False, fresh
        weights of variance ``sA2 / dt`` and ``sb2 / dt`` at each of the
        steps of a shared time grid on [0, 1] (one per refined increment):
        the covariance then only grows where both paths move at the same
        time, ``K_{k+1} = K_k + dt (sA2 V(Sigma_k) + sb2) <x'_k, y'_k>``, an
        ODE along the diagonal in the limit.  This kernel is the exact
        infinite-width limit of that Euler-stepped network; all paths must
        have the same number of points.
    time_augment, basepoint, lead_lag : bool, default=False
        Path transforms, as in :class:`SignatureKernel`.
    n_channels : int, optional
        For the flattened 2-D input form.
    dtype : {"float64", "float32"}, default="float64"
        Output dtype.
    device : {"auto", "cpu", "gpu"}, default="auto"
        This kernel has no GPU solver yet: "auto" solves on the CPU and
        "gpu" is an error.
    layout : {"auto", "ntc", "nct"}, default="auto"
        Axis order of 3-D arrays and of list entries: "ntc" is
        ``(n_paths, length, n_channels)`` (skinfinite's loaders, tslearn),
        "nct" is ``(n_paths, n_channels, length)`` (aeon, sktime).  "auto"
        decides from the shapes and raises where both readings fit (see
        :ref:`guide_input_layouts`).  Not a hyperparameter.

    Notes
    -----
    The variances are plain parameters, not optimisable hyperparameters
    (``theta`` is empty and gradients have no columns).

    Values beyond ``NSK_OVERFLOW`` (1e150) raise a ``FloatingPointError``
    (as do non-finite ones): any solver of such a Gram overflows float64.
    ``diag`` runs the same order selection and checks as ``k(X)``.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite.kernels import NeuralSignatureKernel
    >>> X = np.random.default_rng(0).normal(size=(3, 6, 2)) * 0.3
    >>> NeuralSignatureKernel("relu", weight_variance=2.0)(X).shape
    (3, 3)
    """

    def __init__(self, activation="relu", weight_variance=1.0,
                 bias_variance=0.0, initial_variance=1.0, dyadic_order="auto",
                 homogeneous=True, time_augment=False, basepoint=False,
                 lead_lag=False, n_channels=None, dtype="float64",
                 device="auto", layout="auto"):
        self.activation = activation
        self.weight_variance = weight_variance
        self.bias_variance = bias_variance
        self.initial_variance = initial_variance
        self.dyadic_order = dyadic_order
        self.homogeneous = homogeneous
        self.time_augment = time_augment
        self.basepoint = basepoint
        self.lead_lag = lead_lag
        self.n_channels = n_channels
        self.dtype = dtype
        self.device = device
        self.layout = layout

    def __call__(self, X, Y=None, eval_gradient=False):
        """Return the kernel k(X, Y) (and an empty gradient).

        Parameters
        ----------
        X : sequences (3-D array, list of 2-D arrays, or 2-D flattened form)
        Y : sequences, default=None
        eval_gradient : bool, default=False
            The kernel has no hyperparameters: the gradient has shape
            (n, n, 0).

        Returns
        -------
        K : ndarray of shape (n_paths_X, n_paths_Y)
        """
        if is_dask(X) or is_dask(Y):
            from ..distributed.gram import dask_gram
            return dask_gram(self, X, Y, eval_gradient)
        problem = _NeuralProblem(self)
        dtype = check_dtype(self.dtype)
        # no GPU solver: "auto" solves on the CPU, "gpu" is an error
        backend_unless(self.device, "solver for NeuralSignatureKernel", X, Y)
        reference = X
        X, Y = on_host(X), on_host(Y)
        x, y = self._paths(X, Y, eval_gradient)
        problem.resolve_order(x, y)
        if self.homogeneous:
            K = problem.gram(x, y)
        else:
            K = problem.euler_gram(x, y)[0]
        K = _finite_output(K.astype(dtype, copy=False),
                           "NeuralSignatureKernel", "scale the paths down",
                           NSK_OVERFLOW)
        if eval_gradient:
            return K, np.empty((K.shape[0], K.shape[1], 0), dtype)
        return like_input(K, reference)

    def diag(self, X):
        """Return k(x, x) for each path.

        Parameters
        ----------
        X : sequences

        Returns
        -------
        K_diag : ndarray of shape (n_paths,)
        """
        problem = _NeuralProblem(self)
        dtype = check_dtype(self.dtype)
        x = self._sequences(X)
        problem.resolve_order(x)
        if self.homogeneous:
            values = problem.diagonal(x)
        else:
            values = np.array([problem.euler_gram(x.take(np.array([i])))[1][0]
                               for i in range(x.n_paths)])
        # the checks of __call__, on the values it would return
        return _finite_output(values.astype(dtype, copy=False),
                              "NeuralSignatureKernel", "scale the paths down",
                              NSK_OVERFLOW)

    def __repr__(self):
        return (f"NeuralSignatureKernel(activation={self.activation!r}, "
                f"weight_variance={self.weight_variance:.4g}, "
                f"bias_variance={self.bias_variance:.4g}, "
                f"initial_variance={self.initial_variance:.4g}, "
                f"dyadic_order={self.dyadic_order!r}, "
                f"homogeneous={self.homogeneous})")
