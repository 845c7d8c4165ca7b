"""The scikit-learn ``Kernel`` shared by every recursion-defined kernel."""
from sklearn.gaussian_process.kernels import Hyperparameter, Kernel

from .._core.backend import (CPUBackend, backend_of, check_inputs,
                        is_device_array, like_input)
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


class RecursionKernel(CarriesConfig, VarianceHyperparameters, Kernel):
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
