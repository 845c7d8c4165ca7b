"""The scikit-learn ``Kernel`` shared by every recursion-defined kernel."""
import numpy as np
from sklearn.base import clone
from sklearn.gaussian_process.kernels import Hyperparameter, Kernel

from .._core.backend import (CPUBackend, backend_of, backend_unless,
                             check_inputs, is_device_array, like_input)
from .._core.collections import is_dask
from .._core.config import CarriesConfig, get_config
from .._core.validation import check_dtype
from ..engine.driver import diagonal, gram, select_backend


class VarianceHyperparameters:
    """The weight and bias variances as the hyperparameters of a kernel of
    networks, bounded by ``weight_variance_bounds``/``bias_variance_bounds``."""

    @property
    def hyperparameter_weight_variance(self):
        return Hyperparameter("weight_variance", "numeric",
                              self.weight_variance_bounds)

    @property
    def hyperparameter_bias_variance(self):
        return Hyperparameter("bias_variance", "numeric",
                              self.bias_variance_bounds)


class PathInputKernel(Kernel):
    """Capabilities of a kernel whose inputs are paths (any layout
    :func:`~skinfinite._core.sequences.check_sequences` reads) rather than
    feature vectors: declared here once for every such kernel, those of the
    kernels module and those the path estimators compose."""

    def is_stationary(self):
        """Returns False."""
        return False

    @property
    def requires_vector_input(self):
        """False: the kernel works on paths."""
        return False


class NetworkKernel:
    """What the estimators ask of the kernels of an architecture.

    The NTK and NNGP estimators resolve their ``device`` once per fit with
    :meth:`backend_for` and compute every Gram block through :meth:`grams`
    on that backend, whatever the architecture (see
    :mod:`skinfinite.kernels.registry`).  Subclasses set ``_output`` to
    "nngp" or "ntk" and implement :meth:`grams` and :meth:`diagonals`.
    """

    _output = None
    #: what keeps this kernel off a GPU (None where it runs there)
    _gpu_missing = None

    def check_params(self):
        """Validate the parameters now (a ValueError naming the bad one)."""

    def backend_for(self, device="auto", *arrays):
        """The backend (:mod:`skinfinite._core.backend`) that computes this
        kernel for ``device`` ("auto", "cpu" or "gpu") on ``arrays``: a GPU
        only where the kernel has GPU code, else "auto" gives the CPU and
        "gpu" is a ``NotImplementedError``."""
        return backend_unless(device, self._gpu_missing, *arrays)

    def grams(self, X, Y=None, want=None, *, backend=None, on_device=True):
        """NNGP and/or NTK Gram blocks of one pass, in float64.

        Parameters
        ----------
        X : array of shape (n_samples_X, ...)
        Y : array of shape (n_samples_Y, ...), default=None
            None computes the symmetric k(X, X).
        want : tuple of {"nngp", "ntk"}, default=None
            The outputs; None is this kernel's own.
        backend : backend object, default=None
            Where to compute; None resolves the kernel's ``device`` (or the
            CPU where the kernel has none).
        on_device : bool, default=True
            Leave the outputs in the backend's memory; False returns NumPy
            arrays (a GPU copies them to the host tile by tile).

        Returns
        -------
        dict mapping each of ``want`` to its Gram block.
        """
        raise NotImplementedError

    def diagonals(self, X, want=None):
        """The diagonals k(x, x) of ``want`` (None: this kernel's output),
        as a dict of NumPy arrays in float64."""
        raise NotImplementedError

    def grams_by_depth(self, X, depths, want=None, *, backend=None):
        """{depth: grams(X, want=want)} for the networks of every depth in
        ``depths``, this kernel's other parameters kept."""
        return {d: clone(self).set_params(depth=d).grams(
            X, None, want, backend=backend) for d in depths}

    def _want(self, want):
        want = (self._output,) if want is None else tuple(want)
        bad = [w for w in want if w not in ("nngp", "ntk")]
        if bad or not want:
            raise ValueError(f"want holds 'nngp' and/or 'ntk', got {want!r}.")
        return want


class RecursionKernel(CarriesConfig, VarianceHyperparameters, NetworkKernel,
                      Kernel):
    """A kernel whose Gram blocks come from a recursion run by the engine.

    Subclasses store their parameters in ``__init__`` (including
    ``weight_variance``, ``bias_variance``, their ``*_bounds``, ``dtype``
    and ``device``), define ``spec()`` returning the recursion, and set
    ``_output`` to "nngp" or "ntk".
    """

    _output = None

    def spec(self):
        """The validated recursion run by the engine."""
        raise NotImplementedError

    def check_params(self):
        """Validate the parameters now (a ValueError naming the bad one)."""
        self.spec()

    def backend_for(self, device="auto", *arrays):
        return select_backend(device, self.spec(), *arrays)

    def grams(self, X, Y=None, want=None, *, backend=None, on_device=True):
        want = self._want(want)
        spec = self.spec()
        if backend is None:
            backend = select_backend(self.device, spec, X, Y)
        to = backend.asarray
        return gram(to(X, np.float64), None if Y is None else to(Y, np.float64),
                    spec, want, backend=backend, on_device=on_device)

    def diagonals(self, X, want=None):
        # O(n depth) on the host: not worth a device
        spec = self.spec()
        return {w: diagonal(X, spec, w) for w in self._want(want)}

    def __call__(self, X, Y=None, eval_gradient=False):
        """Return the kernel k(X, Y) and optionally its gradient.

        Parameters
        ----------
        X : array-like of shape (n_samples_X, n_features)
        Y : array-like of shape (n_samples_Y, n_features), default=None
            None evaluates k(X, X).
        eval_gradient : bool, default=False
            Also return the gradient with respect to the log of the non-fixed
            hyperparameters (only when Y is None).

        Returns
        -------
        K : ndarray of shape (n_samples_X, n_samples_Y)
        K_gradient : ndarray of shape (n_samples_X, n_samples_X, n_dims)
            Only when ``eval_gradient`` is True.

        Dask arrays give a lazy dask array (see :ref:`guide_distributed`).
        """
        if is_dask(X) or is_dask(Y):
            from ..distributed.gram import dask_gram
            return dask_gram(self, X, Y, eval_gradient)
        spec = self.spec()
        dtype = check_dtype(self.dtype)
        if Y is not None and eval_gradient:
            raise ValueError("Gradient can only be evaluated when Y is None.")
        backend = select_backend(self.device, spec, X, Y)
        Xb, Yb = check_inputs(X, Y, backend)
        res = gram(Xb, Yb, spec, (self._output,), eval_gradient=eval_gradient,
                   dtype=dtype, backend=backend,
                   on_device=is_device_array(X))
        if not eval_gradient:
            return like_input(res[self._output], X)
        grad = res[self._output + "_gradient"]
        # theta is ordered as self.hyperparameters (alphabetical):
        # bias_variance, then weight_variance; the engine stores (w, b).
        columns = [idx for idx, hp in ((1, self.hyperparameter_bias_variance),
                                       (0, self.hyperparameter_weight_variance))
                   if not hp.fixed]
        if columns == [1, 0]:
            # swapped in place by row blocks: a reordered copy would be one
            # more gradient-sized array
            step = max(1, get_config()["memory_budget"]
                       // (16 * max(grad.shape[1], 1)))
            for i in range(0, grad.shape[0], step):
                grad[i:i + step] = grad[i:i + step, :, ::-1].copy()
        else:
            grad = backend_of(grad).xp.ascontiguousarray(grad[:, :, columns])
        return like_input(res[self._output], X), like_input(grad, X)

    def diag(self, X):
        """Return the diagonal k(x, x), computed once per input.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        K_diag : ndarray of shape (n_samples,)
        """
        backend = CPUBackend()   # O(n depth): not worth a device
        Xh, _ = check_inputs(X, None, backend)
        out = diagonal(Xh, self.spec(), self._output)
        return like_input(out.astype(check_dtype(self.dtype), copy=False), X)

    def is_stationary(self):
        """Returns False: the kernel depends on the inputs' norms."""
        return False

    def _repr_extras(self):
        return ""

    def __repr__(self):
        return (f"{type(self).__name__}(depth={self.depth}, "
                f"activation={self.activation!r}, "
                f"weight_variance={self.weight_variance:.4g}, "
                f"bias_variance={self.bias_variance:.4g}"
                + self._repr_extras() + ")")
