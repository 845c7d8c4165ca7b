"""Random finite-width networks and their empirical NNGP and NTK kernels.

The kernels of :mod:`skinfinite.kernels` are limits of random networks as
their width grows. The networks here are those networks at a finite width,
drawn with explicit weight matrices in exactly the same parametrisation, so
that their empirical kernels converge to the infinite-width ones at the
Monte Carlo rate ``width ** -0.5``:

* :class:`FullyConnectedNetwork`, the network of :class:`~skinfinite.kernels.NNGP`
  and :class:`~skinfinite.kernels.NTK` (both parametrisations);
* :class:`ResNetNetwork`, a residual network with scaled branches;
* :func:`empirical_kernels`, the average of the empirical kernels over
  independently drawn networks.

Every weight matrix is a matrix ``W`` of shape (fan_in, fan_out) whose
entries have mean zero and second moment one, used as
``sqrt(weight_variance / fan_in) * a @ W``; ``init`` chooses how ``W`` is
drawn (:func:`draw_weights`). Biases are standard normal, scaled by
``sqrt(bias_variance)``.
"""
import copy
import dataclasses

import numpy as np
from numba import njit, prange

from .._core.fastmath import FASTMATH
from .._core.validation import (check_choice, check_positive_int, check_variance,
                          check_vector_input)
from ..activations.definitions import get_activation

__all__ = ["FullyConnectedNetwork", "ResNetNetwork", "ControlledResNetNetwork",
           "ConvolutionalNetwork",
           "empirical_kernels",
           "draw_weights", "INITIALIZATIONS"]

INITIALIZATIONS = ("gaussian", "orthogonal", "sparse")
_PARAMETRIZATIONS = ("ntk", "standard")
# elements of one block of back-propagated readout directions (64 MiB)
_PROBE_BLOCK_ELEMENTS = 2**23


def _generator(random_state):
    """A NumPy random generator; Generator and RandomState pass through."""
    if isinstance(random_state, (np.random.Generator, np.random.RandomState)):
        return random_state
    return np.random.default_rng(random_state)


def _orthogonal(rng, n_in, n_out):
    """Haar-random matrix with orthonormal rows or columns, entries scaled to
    second moment one."""
    big, small = max(n_in, n_out), min(n_in, n_out)
    Q, R = np.linalg.qr(rng.standard_normal((big, small)))
    # signs of diag(R) make the distribution of Q exactly Haar
    Q *= np.where(np.diag(R) < 0, -1.0, 1.0)
    Q *= np.sqrt(big)
    return Q if n_in >= n_out else Q.T


def draw_weights(rng, n_in, n_out, init="gaussian", density=0.1):
    """Draw a weight matrix whose entries have mean 0 and second moment 1.

    Parameters
    ----------
    rng : numpy.random.Generator or numpy.random.RandomState
    n_in, n_out : int
        Fan-in and fan-out; the matrix has shape (n_in, n_out).
    init : {"gaussian", "orthogonal", "sparse"}, default="gaussian"
        ``"gaussian"``: independent standard normal entries.
        ``"orthogonal"``: a Haar-random matrix with orthonormal columns
        (``n_in >= n_out``) or rows (``n_in < n_out``), times
        ``sqrt(max(n_in, n_out))``.
        ``"sparse"``: each entry is standard normal with probability
        ``density`` and zero otherwise, divided by ``sqrt(density)``.
    density : float, default=0.1
        Fraction of nonzero entries for ``init="sparse"``, in (0, 1].

    Returns
    -------
    W : ndarray of shape (n_in, n_out)

    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite.empirical.networks import draw_weights
    >>> W = draw_weights(np.random.default_rng(0), 300, 200, "orthogonal")
    >>> bool(np.allclose(W.T @ W, 300 * np.eye(200)))
    True
    """
    check_choice(init, "init", INITIALIZATIONS)
    if init == "orthogonal":
        return _orthogonal(rng, n_in, n_out)
    W = rng.standard_normal((n_in, n_out))
    if init == "sparse":
        W *= (rng.random((n_in, n_out)) < density) / np.sqrt(density)
    return W


def _check_density(density):
    density = check_variance(density, "density")
    if density > 1:
        raise ValueError(f"density must be in (0, 1], got {density}.")
    return density


def _input_layer_init(init):
    # A sparse input layer sums only ~density * n_features terms, too few
    # for the central limit theorem to make its pre-activations Gaussian,
    # which would change the infinite-width kernels; it is drawn dense.
    return "gaussian" if init == "sparse" else init


def _stack(X, Y):
    """Rows of X and Y in one array, and the slices of the X-Y block."""
    if Y is None:
        return X, slice(None), slice(None)
    n = X.shape[0]
    return np.vstack([X, Y]), slice(0, n), slice(n, None)


def _outer_rows(a, delta):
    """Row-wise flattened outer products: (n, p) and (n, q) -> (n, p * q)."""
    return (a[:, :, None] * delta[:, None, :]).reshape(a.shape[0], -1)


class _RandomNetwork:
    """Parameter checks, weight drawing and input validation shared by the
    networks."""

    def initialize(self, n_features):
        """Draw the weights for inputs with ``n_features`` features.

        A new draw from ``random_state``: an integer seed gives the same
        network every time, a Generator a new one. The other methods call
        it for their input's number of features if no weights were drawn.
        Layers are drawn in order, each weight matrix before its bias.

        Parameters
        ----------
        n_features : int

        Returns
        -------
        self
        """
        self._draw(check_positive_int(n_features, "n_features"),
                   _generator(self.random_state))
        return self

    def _draw(self, n_features, rng):
        self._check_params()
        self.n_features_in_ = n_features
        self._draw_parameters(rng)
        self._activation = get_activation(self.activation)

    def _check_common(self):
        check_positive_int(self.depth, "depth")
        check_positive_int(self.width, "width")
        check_variance(self.weight_variance, "weight_variance")
        check_variance(self.bias_variance, "bias_variance", allow_zero=True)
        check_choice(self.init, "init", INITIALIZATIONS)
        _check_density(self.density)

    def _weights(self, rng, n_in, n_out, first=False):
        init = _input_layer_init(self.init) if first else self.init
        return draw_weights(rng, n_in, n_out, init, self.density)

    def _affine(self, a, W, b):
        return (np.sqrt(self.weight_variance / a.shape[1]) * (a @ W)
                + np.sqrt(self.bias_variance) * b)

    def _validate(self, X, name="X"):
        """X as a float64 array, drawing the weights on first use."""
        X = check_vector_input(X, name)
        if not hasattr(self, "n_features_in_"):
            self.initialize(X.shape[1])
        elif X.shape[1] != self.n_features_in_:
            raise ValueError(f"{name} has {X.shape[1]} features, but the "
                             f"network was drawn for {self.n_features_in_}.")
        return X

    def _act(self):
        if getattr(self, "_activation", None) is None:
            self._activation = get_activation(self.activation)
        return self._activation

    def __getstate__(self):
        # activations integrated by quadrature hold unpicklable closures;
        # they are rebuilt from the ``activation`` parameter on first use
        state = self.__dict__.copy()
        state.pop("_activation", None)
        return state

    def __repr__(self):
        params = ", ".join(f"{k}={v!r}" for k, v in self._param_items())
        return f"{type(self).__name__}({params})"

    def _param_items(self):
        return [(k, v) for k, v in vars(self).items()
                if not k.startswith("_") and not k.endswith("_")]

    def nngp(self, X, Y=None):
        """The empirical NNGP kernel, ``nngp_features(X) @ nngp_features(Y).T``.

        Parameters
        ----------
        X : array-like of shape (n_samples_X, n_features)
        Y : array-like of shape (n_samples_Y, n_features), default=None
            None means ``Y = X``.

        Returns
        -------
        K : ndarray of shape (n_samples_X, n_samples_Y)
        """
        F = self.nngp_features(X)
        return F @ (F if Y is None else self.nngp_features(Y)).T


class FullyConnectedNetwork(_RandomNetwork):
    """A random fully-connected network of finite width.

    The network of :class:`~skinfinite.kernels.NNGP` and
    :class:`~skinfinite.kernels.NTK`: ``depth`` hidden layers of ``width``
    units and a readout layer with one output unit,

    ``h_l = sqrt(weight_variance / fan_in) * a_l @ W_l + sqrt(bias_variance) * b_l``,
    ``a_{l+1} = activation(h_l)``, ``a_0 = x``, ``f(x) = h_depth``.

    All parameters (the readout included) are trained. In the standard
    parametrisation the network is the same at initialisation and the
    gradient of each weight matrix is taken with respect to the scaled
    weights with a learning rate divided by the fan-in, as for the kernels.

    Parameters
    ----------
    depth : int
        Number of hidden layers (>= 1).
    width : int
        Units per hidden layer.
    activation : str, Activation or callable, default="relu"
        As in :func:`skinfinite.activations.definitions.get_activation`; only the
        function and its derivative are used.
    weight_variance, bias_variance : float, default=2.0, 0.1
        sigma_w^2 and sigma_b^2.
    parametrization : {"ntk", "standard"}, default="ntk"
    init : {"gaussian", "orthogonal", "sparse"}, default="gaussian"
        How weight matrices are drawn (:func:`draw_weights`). A sparse
        network keeps a dense Gaussian input layer: its fan-in, the number of
        features, does not grow with the width.
    density : float, default=0.1
        Fraction of nonzero weights for ``init="sparse"``.
    random_state : int, numpy.random.Generator, RandomState or None
        Source of the weights.

    Attributes
    ----------
    weights_ : list of ndarray
        ``depth + 1`` matrices of shape (fan_in, fan_out), the readout
        (width, 1) last.
    biases_ : list of ndarray
        ``depth + 1`` vectors, the readout bias (shape (1,)) last.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite.empirical.networks import FullyConnectedNetwork
    >>> from skinfinite.kernels import nngp_ntk
    >>> X = np.random.default_rng(0).normal(size=(4, 3))
    >>> net = FullyConnectedNetwork(depth=2, width=2048, random_state=0)
    >>> K, T = nngp_ntk(X, depth=2)
    >>> bool(np.abs(net.ntk(X) - T).max() < 0.1 * np.abs(T).max())
    True
    """

    def __init__(self, depth, width, activation="relu", weight_variance=2.0,
                 bias_variance=0.1, parametrization="ntk", init="gaussian",
                 density=0.1, random_state=None):
        self.depth = depth
        self.width = width
        self.activation = activation
        self.weight_variance = weight_variance
        self.bias_variance = bias_variance
        self.parametrization = parametrization
        self.init = init
        self.density = density
        self.random_state = random_state

    def _check_params(self):
        self._check_common()
        check_choice(self.parametrization, "parametrization",
                     _PARAMETRIZATIONS)

    def _draw_parameters(self, rng):
        fans = [self.n_features_in_] + [self.width] * self.depth + [1]
        self.weights_, self.biases_ = [], []
        for i, (n_in, n_out) in enumerate(zip(fans, fans[1:])):
            self.weights_.append(self._weights(rng, n_in, n_out, first=i == 0))
            self.biases_.append(rng.standard_normal(n_out))

    @property
    def n_parameters(self):
        """Number of trained parameters (weights and biases)."""
        return sum(W.size + b.size for W, b in zip(self.weights_, self.biases_))

    def _forward(self, X):
        """Inputs of every layer (X first, the readout's last) and the
        hidden pre-activations."""
        act = self._act()
        inputs, pre = [X], []
        for W, b in zip(self.weights_[:-1], self.biases_[:-1]):
            h = self._affine(inputs[-1], W, b)
            pre.append(h)
            inputs.append(act(h))
        return inputs, pre

    def _deltas(self, pre):
        """df/d(pre-activation) of every layer, the readout's (ones) last."""
        dphi = self._act().derivative
        delta = np.ones((pre[0].shape[0], 1))
        deltas = [delta]
        for W, h in zip(self.weights_[:0:-1], pre[::-1]):
            delta = (np.sqrt(self.weight_variance / W.shape[0])
                     * (delta @ W.T) * dphi(h))
            deltas.append(delta)
        return deltas[::-1]

    def _gradient_scales(self, fan_in):
        """Squared scales of the weight and bias gradients of one layer."""
        if self.parametrization == "standard":
            return 1.0 / fan_in, 1.0
        return self.weight_variance / fan_in, self.bias_variance

    def forward(self, X):
        """The network's output.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        f : ndarray of shape (n_samples,)
        """
        inputs, _ = self._forward(self._validate(X))
        return self._affine(inputs[-1], self.weights_[-1], self.biases_[-1])[:, 0]

    def nngp_features(self, X):
        """Features whose inner products are the empirical NNGP kernel.

        The covariance of the readout given the last hidden layer is
        ``weight_variance * a(x) . a(y) / width + bias_variance``; the
        features are ``sqrt(weight_variance / width) * a(x)`` and a constant
        ``sqrt(bias_variance)`` column.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        F : ndarray of shape (n_samples, width + 1)
        """
        inputs, _ = self._forward(self._validate(X))
        a = inputs[-1]
        return np.hstack([np.sqrt(self.weight_variance / a.shape[1]) * a,
                          np.full((a.shape[0], 1), np.sqrt(self.bias_variance))])

    def ntk(self, X, Y=None):
        """The empirical neural tangent kernel.

        ``grad f(x) . grad f(y)`` over all parameters, assembled layer by
        layer from the activations and back-propagated errors: layer ``l``
        contributes ``(c_w a_l(x) . a_l(y) + c_b) * delta_l(x) . delta_l(y)``
        (``c_w = weight_variance / fan_in`` and ``c_b = bias_variance`` in the
        NTK parametrisation, ``1 / fan_in`` and 1 in the standard one), so no
        per-sample gradient is formed.

        Parameters
        ----------
        X : array-like of shape (n_samples_X, n_features)
        Y : array-like of shape (n_samples_Y, n_features), default=None
            None means ``Y = X``.

        Returns
        -------
        T : ndarray of shape (n_samples_X, n_samples_Y)
        """
        X = self._validate(X)
        Y = X if Y is None else self._validate(Y, "Y")
        ax, dx = self._layers(X)
        ay, dy = (ax, dx) if Y is X else self._layers(Y)
        T = np.zeros((X.shape[0], Y.shape[0]))
        for a, b, d, e in zip(ax, ay, dx, dy):
            cw, cb = self._gradient_scales(a.shape[1])
            T += (cw * (a @ b.T) + cb) * (d @ e.T)
        return T

    def _layers(self, X):
        inputs, pre = self._forward(X)
        return inputs, self._deltas(pre)

    def ntk_features(self, X):
        """Per-sample gradients of the output, ``ntk(X, Y) = F_X @ F_Y.T``.

        For each layer, weights then bias, the gradient with respect to the
        standard normal parameters (NTK parametrisation) or to the scaled
        parameters times the square root of their learning rate (standard
        parametrisation). There are :attr:`n_parameters` columns, about
        ``(depth - 1) * width ** 2``: this suits moderate widths.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        F : ndarray of shape (n_samples, n_parameters)
        """
        inputs, deltas = self._layers(self._validate(X))
        blocks = []
        for a, delta in zip(inputs, deltas):
            cw, cb = self._gradient_scales(a.shape[1])
            blocks += [np.sqrt(cw) * _outer_rows(a, delta), np.sqrt(cb) * delta]
        return np.hstack(blocks)


class ResNetNetwork(_RandomNetwork):
    """A random residual network of finite width with a fixed readout.

    An embedding ``h_0 = sqrt(weight_variance / d) x @ W_0 +
    sqrt(bias_variance) b_0`` of width ``N``, then ``depth`` residual blocks

    ``h_{l+1} = h_l + s_l (sqrt(weight_variance / N) phi(h_l) @ W_{l+1}
    + sqrt(bias_variance) b_{l+1})``, ``l = 0, ..., depth - 1``,

    and the output ``f(x) = v . h_depth / sqrt(N)`` with a readout ``v``
    that is drawn once and not trained. As ``N`` grows the empirical kernels
    converge to ``K_depth`` and ``T_depth`` of the recursion
    ``K_0 = T_0 = weight_variance <x, y> / d + bias_variance``,
    ``K_{l+1} = K_l + s_l^2 (weight_variance E[phi phi] + bias_variance)``,
    ``T_{l+1} = T_l + s_l^2 (weight_variance E[phi' phi'] T_l +
    weight_variance E[phi phi] + bias_variance)``.

    Parameters
    ----------
    depth : int
        Number of residual blocks L (>= 1).
    width : int
        Width N of the residual stream.
    activation : str, Activation or callable, default="relu"
    weight_variance, bias_variance : float, default=1.0, 0.1
        sigma_w^2 and sigma_b^2 (the defaults of
        :class:`~skinfinite.kernels.ResNetNNGP`).
    branch_scales : sequence of ``depth`` positive floats, default=None
        The branch multipliers s_l; None means ``1 / sqrt(depth)`` for all.
    init : {"gaussian", "orthogonal", "sparse"}, default="gaussian"
        As in :class:`FullyConnectedNetwork`; the readout is drawn the same
        way.
    density : float, default=0.1
        Fraction of nonzero weights for ``init="sparse"``.
    n_readouts : int or None, default=None
        How :meth:`ntk` averages over the readout direction. None: exactly,
        back-propagating every one of the N output units (cost
        ``depth * n_samples * N ** 3``). An integer P < N: an unbiased
        estimate from P random orthogonal readout directions drawn with the
        weights (cost ``depth * n_samples * N ** 2 * P``).
    random_state : int, numpy.random.Generator, RandomState or None

    Attributes
    ----------
    weights_ : list of ndarray
        The embedding (n_features, N) and ``depth`` block matrices (N, N).
    biases_ : list of ndarray
        ``depth + 1`` vectors of length N.
    readout_ : ndarray of shape (N,)
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite.empirical.networks import ResNetNetwork
    >>> X = np.random.default_rng(0).normal(size=(4, 3))
    >>> net = ResNetNetwork(depth=4, width=64, random_state=0)
    >>> net.forward(X).shape, net.nngp(X).shape, net.ntk(X).shape
    ((4,), (4, 4), (4, 4))
    """

    def __init__(self, depth, width, activation="relu", weight_variance=1.0,
                 bias_variance=0.1, branch_scales=None, init="gaussian",
                 density=0.1, n_readouts=None, random_state=None):
        self.depth = depth
        self.width = width
        self.activation = activation
        self.weight_variance = weight_variance
        self.bias_variance = bias_variance
        self.branch_scales = branch_scales
        self.init = init
        self.density = density
        self.n_readouts = n_readouts
        self.random_state = random_state

    def _check_params(self):
        self._check_common()
        if self.n_readouts is not None:
            check_positive_int(self.n_readouts, "n_readouts")
        self._scales()

    def _scales(self):
        if self.branch_scales is None:
            return np.full(self.depth, 1.0 / np.sqrt(self.depth))
        scales = np.asarray(self.branch_scales, dtype=np.float64)
        if (scales.shape != (self.depth,) or not np.all(np.isfinite(scales))
                or np.any(scales <= 0)):
            raise ValueError(f"branch_scales must be {self.depth} positive "
                             f"numbers (one per block), got {self.branch_scales!r}.")
        return scales

    def _draw_parameters(self, rng):
        N = self.width
        self.weights_, self.biases_ = [], []
        for n_in in [self.n_features_in_] + [N] * self.depth:
            self.weights_.append(self._weights(rng, n_in, N,
                                               first=not self.weights_))
            self.biases_.append(rng.standard_normal(N))
        self.readout_ = self._weights(rng, N, 1)[:, 0]
        # readout directions for the averaged NTK, None for all N units
        P = self.n_readouts
        self._directions = (None if P is None or P >= N
                            else _orthogonal(rng, N, P))

    @property
    def n_parameters(self):
        """Number of trained parameters (the readout is not trained)."""
        return sum(W.size + b.size for W, b in zip(self.weights_, self.biases_))

    def _forward(self, X):
        """Residual stream h_0..h_L and the branch inputs phi(h_0..h_{L-1})."""
        act = self._act()
        hs = [self._affine(X, self.weights_[0], self.biases_[0])]
        posts = []
        for s, W, b in zip(self._scales(), self.weights_[1:], self.biases_[1:]):
            posts.append(act(hs[-1]))
            hs.append(hs[-1] + s * self._affine(posts[-1], W, b))
        return hs, posts

    def _backward(self, hs, V):
        """Yield d(V^T h_L / sqrt(N))/dh_l for l = L, ..., 0, shape (n, P, N)."""
        dphi = self._act().derivative
        n, N = hs[0].shape
        delta = np.broadcast_to(V.T / np.sqrt(N), (n, V.shape[1], N))
        yield delta
        c = np.sqrt(self.weight_variance / N)
        for s, W, h in zip(self._scales()[::-1], self.weights_[:0:-1],
                           hs[-2::-1]):
            back = (delta.reshape(-1, N) @ W.T).reshape(delta.shape)
            delta = delta + (s * c) * back * dphi(h)[:, None, :]
            yield delta

    def _input_grams(self, Z, posts):
        """Per layer, the factor multiplying the Gram of the back-propagated
        errors in the NTK: blocks from the last to the embedding."""
        sw2, sb2 = self.weight_variance, self.bias_variance
        grams = [s * s * (sw2 * (a @ a.T) / a.shape[1] + sb2)
                 for s, a in zip(self._scales(), posts)][::-1]
        return grams + [sw2 * (Z @ Z.T) / Z.shape[1] + sb2]

    def _directions_blocks(self, n_samples):
        """Blocks of readout directions (columns of norm sqrt(N))."""
        N = self.width
        if self._directions is not None:
            yield self._directions
            return
        step = max(1, _PROBE_BLOCK_ELEMENTS // (n_samples * N))
        for start in range(0, N, step):
            V = np.zeros((N, min(step, N - start)))
            V[np.arange(start, start + V.shape[1]), np.arange(V.shape[1])] = np.sqrt(N)
            yield V

    def forward(self, X):
        """The network's output ``v . h_L / sqrt(N)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        f : ndarray of shape (n_samples,)
        """
        hs, _ = self._forward(self._validate(X))
        return hs[-1] @ self.readout_ / np.sqrt(self.width)

    def nngp_features(self, X):
        """The last residual stream over sqrt(N): the empirical NNGP is
        ``h_L(x) . h_L(y) / N``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        F : ndarray of shape (n_samples, width)
        """
        hs, _ = self._forward(self._validate(X))
        return hs[-1] / np.sqrt(self.width)

    def ntk(self, X, Y=None):
        """The empirical NTK averaged over the readout direction.

        ``(1 / N) sum_i grad h_{L,i}(x) . grad h_{L,i}(y)``, the expectation
        over the readout ``v`` of ``grad f(x) . grad f(y)``. Errors are
        back-propagated for all N output units at once (in blocks), or for
        ``n_readouts`` random orthogonal directions; each layer contributes
        the Gram of its inputs times that of its errors.

        Parameters
        ----------
        X : array-like of shape (n_samples_X, n_features)
        Y : array-like of shape (n_samples_Y, n_features), default=None
            None means ``Y = X``.

        Returns
        -------
        T : ndarray of shape (n_samples_X, n_samples_Y)
        """
        X = self._validate(X)
        Z, rows, cols = _stack(X, None if Y is None else self._validate(Y, "Y"))
        hs, posts = self._forward(Z)
        grams = self._input_grams(Z, posts)
        T = np.zeros((Z.shape[0], Z.shape[0]))
        n_directions = 0
        for V in self._directions_blocks(Z.shape[0]):
            n_directions += V.shape[1]
            for gram, delta in zip(grams, self._backward(hs, V)):
                D = delta.reshape(Z.shape[0], -1)
                T += gram * (D @ D.T)
        return T[rows, cols] / n_directions

    def ntk_features(self, X):
        """Per-sample gradients of the output f with the drawn readout.

        Inner products give the NTK of this one network, ``grad f(x) .
        grad f(y)``, whose average over readouts is :meth:`ntk`. There are
        :attr:`n_parameters` columns, about ``depth * width ** 2``: this
        suits moderate widths.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        F : ndarray of shape (n_samples, n_parameters)
        """
        X = self._validate(X)
        hs, posts = self._forward(X)
        deltas = [d[:, 0, :] for d in self._backward(hs, self.readout_[:, None])]
        sw2, sb2 = self.weight_variance, self.bias_variance
        inputs = [X] + posts
        scales = np.concatenate([[1.0], self._scales()])
        blocks = []
        for s, a, delta in zip(scales, inputs, deltas[::-1]):
            blocks += [s * np.sqrt(sw2 / a.shape[1]) * _outer_rows(a, delta),
                       s * np.sqrt(sb2) * delta]
        return np.hstack(blocks)


def empirical_kernels(network, X, Y=None, n_seeds=1):
    """Empirical NNGP and NTK averaged over independently drawn networks.

    Draws ``n_seeds`` networks in turn from one generator seeded by
    ``network.random_state`` (the first draw is the network that
    ``network.initialize`` gives), and averages their kernels. ``network``
    itself is not changed.

    Parameters
    ----------
    network : FullyConnectedNetwork or ResNetNetwork
    X : array-like of shape (n_samples_X, n_features)
    Y : array-like of shape (n_samples_Y, n_features), default=None
        None means ``Y = X``.
    n_seeds : int, default=1

    Returns
    -------
    K, T : ndarrays of shape (n_samples_X, n_samples_Y)
        Monte Carlo estimates of the NNGP kernel and the NTK.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite.empirical.networks import FullyConnectedNetwork, empirical_kernels
    >>> X = np.random.default_rng(0).normal(size=(5, 3))
    >>> net = FullyConnectedNetwork(depth=2, width=256, random_state=0)
    >>> K, T = empirical_kernels(net, X, n_seeds=4)
    >>> K.shape, T.shape
    ((5, 5), (5, 5))
    """
    X = check_vector_input(X)
    Y = None if Y is None else check_vector_input(Y, "Y")
    n_seeds = check_positive_int(n_seeds, "n_seeds")
    rng = _generator(network.random_state)
    K = T = 0.0
    for _ in range(n_seeds):
        draw = copy.copy(network)
        draw._draw(X.shape[1], rng)
        K = K + draw.nngp(X, Y)
        T = T + draw.ntk(X, Y)
    return K / n_seeds, T / n_seeds


class ControlledResNetNetwork:
    """A random controlled ResNet of finite width driven by paths.

    The state ``Y`` of width ``N`` starts at ``Y_0 ~ N(0, s02 I)`` (shared
    by every input path) and follows ``dY = sum_c (A_c phi(Y) + b_c) dx^c``
    over each path's increments, each split into ``2^dyadic_order`` equal
    steps.  ``A_c`` has entries ``N(0, sA2 / N)`` and ``b_c`` entries
    ``N(0, sb2)``.

    * ``homogeneous=True``: the same ``A_c, b_c`` at every step, integrated
      by Heun's second-order method.  As ``N`` and the refinement grow,
      ``Y^x_1 . Y^y_1 / N`` converges to
      :class:`~skinfinite.kernels.NeuralSignatureKernel`.
    * ``homogeneous=False``: fresh ``A_c, b_c`` at each of the steps of a
      shared time grid on [0, 1], of variances ``sA2 / (N dt)`` and
      ``sb2 / dt``, with Euler steps; its width limit is exactly the
      ``homogeneous=False`` kernel at the same ``dyadic_order``.

    Parameters
    ----------
    width : int, default=256
    activation : str, Activation or callable, default="relu"
    weight_variance, bias_variance, initial_variance : float
        ``sA2`` (default 1.0), ``sb2`` (0.0) and ``s02`` (1.0).
    dyadic_order : int, default=0
    homogeneous : bool, default=True
    n_channels : int, optional
        For the flattened 2-D input form.
    random_state : int, numpy.random.Generator or None
        Weights are drawn anew at each call from this seed (an integer gives
        the same network every call).
    layout : {"auto", "ntc", "nct"}, default="auto"
        Axis order of 3-D arrays and list entries, as in
        :class:`~skinfinite.kernels.NeuralSignatureKernel`.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite.empirical.networks import ControlledResNetNetwork
    >>> X = np.random.default_rng(0).normal(size=(3, 5, 2)) * 0.3
    >>> net = ControlledResNetNetwork(width=64, random_state=0)
    >>> net.kernel(X).shape
    (3, 3)
    """

    def __init__(self, width=256, activation="relu", weight_variance=1.0,
                 bias_variance=0.0, initial_variance=1.0, dyadic_order=0,
                 homogeneous=True, n_channels=None, random_state=None,
                 layout="auto"):
        self.width = width
        self.activation = activation
        self.weight_variance = weight_variance
        self.bias_variance = bias_variance
        self.initial_variance = initial_variance
        self.dyadic_order = dyadic_order
        self.homogeneous = homogeneous
        self.n_channels = n_channels
        self.random_state = random_state
        self.layout = layout

    def _check(self):
        check_positive_int(self.width, "width")
        check_positive_int(self.dyadic_order, "dyadic_order", minimum=0)
        check_variance(self.weight_variance, "weight_variance")
        check_variance(self.bias_variance, "bias_variance", allow_zero=True)
        check_variance(self.initial_variance, "initial_variance")
        return get_activation(self.activation)

    def _field(self, phi, Y, A, b, dx):
        # sum_c (A_c phi(Y) + b_c) dx^c for every path (rows of Y)
        P = phi(Y)
        out = np.einsum("nc,cj->nj", dx, b)
        for c in range(A.shape[0]):
            out += (P @ A[c].T) * dx[:, c:c + 1]
        return out

    def features(self, X):
        """Final states ``Y_1 / sqrt(N)`` of each path, (n_paths, N).

        Parameters
        ----------
        X : sequences (3-D array, list of 2-D arrays, or 2-D form)
        """
        from .._core.sequences import check_sequences

        phi = self._check()
        seqs = check_sequences(X, self.n_channels, layout=self.layout)
        rng = _generator(self.random_state)
        N, C = int(self.width), seqs.n_channels
        refine = 1 << int(self.dyadic_order)
        sa, sb = np.sqrt(self.weight_variance), np.sqrt(self.bias_variance)
        Y = np.tile(np.sqrt(self.initial_variance) * rng.standard_normal(N),
                    (seqs.n_paths, 1))
        increments = np.diff(seqs.values, axis=1) / refine
        n_steps = increments.shape[1] * refine
        if not self.homogeneous:
            if not seqs.equal_lengths:
                raise ValueError("homogeneous=False needs paths of equal "
                                 "length (the time steps are shared).")
            dt_scale = np.sqrt(n_steps)      # 1 / sqrt(dt)
            for k in range(n_steps):
                A = sa * dt_scale * rng.standard_normal((C, N, N)) / np.sqrt(N)
                b = sb * dt_scale * rng.standard_normal((C, N))
                Y = Y + self._field(phi, Y, A, b, increments[:, k // refine])
            return Y / np.sqrt(N)
        A = sa * rng.standard_normal((C, N, N)) / np.sqrt(N)
        b = sb * rng.standard_normal((C, N))
        for k in range(n_steps):
            dx = increments[:, k // refine]
            k1 = self._field(phi, Y, A, b, dx)
            k2 = self._field(phi, Y + k1, A, b, dx)
            Y = Y + 0.5 * (k1 + k2)
        return Y / np.sqrt(N)

    def kernel(self, X, Y=None, n_seeds=1):
        """Empirical kernel ``F(X) F(Y)^T`` averaged over ``n_seeds`` draws.

        Parameters
        ----------
        X : sequences
        Y : sequences, default=None
            None means ``Y = X`` (the same draw of weights).
        n_seeds : int, default=1

        Returns
        -------
        K : ndarray of shape (n_paths_X, n_paths_Y)
        """
        from .._core.sequences import check_sequences

        n_seeds = check_positive_int(n_seeds, "n_seeds")
        seqs_x = check_sequences(X, self.n_channels, layout=self.layout)
        seqs_y = None if Y is None else check_sequences(
            Y, self.n_channels, "Y", self.layout)
        rng = _generator(self.random_state)
        total = 0.0
        for _ in range(n_seeds):
            draw = copy.copy(self)
            draw.random_state = np.random.default_rng(rng.integers(2**63))
            if seqs_y is None:
                F = draw.features(seqs_x)
                total = total + F @ F.T
            else:
                # one draw for both sets: stack them
                both = _stack_sequences(seqs_x, seqs_y)
                F = draw.features(both)
                n = seqs_x.n_paths
                total = total + F[:n] @ F[n:].T
        return total / n_seeds


def _stack_sequences(x, y):
    from .._core.sequences import Sequences

    top = max(x.max_length, y.max_length)
    values = np.empty((x.n_paths + y.n_paths, top, x.n_channels))
    for dst, src in ((values[:x.n_paths], x), (values[x.n_paths:], y)):
        dst[:, :src.max_length] = src.values
        dst[:, src.max_length:] = src.values[:, -1:]
    return Sequences(values, np.concatenate([x.lengths, y.lengths]))


def _tap_index(h, w, d, spec):
    """Input position of every (output position, tap), -1 outside the grid.

    Positions are flattened row-major; the output grid follows the
    kernel's geometry (:func:`~skinfinite.recursions.convolutional.tap_positions`).
    """
    from ..recursions.convolutional import tap_positions
    rows = tap_positions(h, spec.fh, d, spec.strides[0], spec.padding)
    cols = tap_positions(w, spec.fw, d, spec.strides[1], spec.padding)
    ho, wo = rows.shape[0], cols.shape[0]
    u = np.repeat(rows, wo, axis=0)[:, :, None]
    v = np.tile(cols, (ho, 1))[:, None, :]
    idx = np.where((u >= 0) & (v >= 0), u * w + v, -1)
    return idx.reshape(ho * wo, spec.fh * spec.fw), (ho, wo)


def _patches(a, idx):
    """(n, P_in, C) activations -> (n, P_out, q * C) patches (zero padding)."""
    padded = np.concatenate([a, np.zeros_like(a[:, :1])], axis=1)
    return padded[:, idx].reshape(a.shape[0], idx.shape[0], -1)


def _unpatch(g, idx, n_in):
    """Adjoint of :func:`_patches`: (n, P_out, q * C) -> (n, P_in, C)."""
    n, p_out, qc = g.shape
    g = g.reshape(n, p_out, idx.shape[1], -1)
    out = np.zeros((n, n_in + 1, g.shape[3]))
    np.add.at(out, (slice(None), np.where(idx < 0, n_in, idx)), g)
    return out[:, :n_in]


# "contract" fuses the multiply-adds (a third faster here); these are
# random features, and a response within rounding of its threshold may
# count either way in any order of summation
@njit(parallel=True, fastmath=FASTMATH | {"contract"}, cache=True)
def _positive_share(patches, W, thresholds, out):
    # out[i, b, j]: the share of positions p with patches[i, p] . W[:, j]
    # above thresholds[b, j]; the responses of one position are formed over
    # all filters at once, so the inner loop runs along W's rows, and once
    # for every row of thresholds (one per bias variance)
    n, P, K = patches.shape
    D = W.shape[1]
    B = thresholds.shape[0]
    for i in prange(n):
        z = np.empty(D)
        count = np.zeros((B, D))
        for p in range(P):
            z[:] = 0.0
            for k in range(K):
                v = patches[i, p, k]
                if v != 0.0:
                    for j in range(D):
                        z[j] += v * W[k, j]
            for b in range(B):
                for j in range(D):
                    if z[j] > thresholds[b, j]:
                        count[b, j] += 1.0
        for b in range(B):
            for j in range(D):
                out[i, b, j] = count[b, j] / P


class ConvolutionalNetwork:
    """A random convolutional network of finite width (channels per layer).

    The network of :class:`~skinfinite.kernels.ConvNNGP` and
    :class:`~skinfinite.kernels.ConvNTK`: for each dilation d, ``depth``
    dilated convolutions with ``width`` output channels,
    ``z_1 = sqrt(sw2 / (C q)) conv_d(x, W_1) + sqrt(sb2) b_1`` and
    ``z_{l+1} = sqrt(sw2 / (width q)) conv_d(phi(z_l), W_{l+1}) + sqrt(sb2) b``
    (standard normal ``W``, ``b``; q taps), then a pooling of the last
    layer -- the mean of ``phi(z)`` ("average"), the positions of
    ``phi(z)`` divided by sqrt(P) ("flatten") or the proportion of positive
    ``z`` ("ppv") -- and a dense readout over the features of all
    dilations, ``f = sqrt(sw2 / (width n_dilations)) <w, features> +
    sqrt(sb2) b``.

    Inputs are sequences of equal length (a 3-D array (n, length,
    n_channels)) or, with ``image_shape``, rows of flattened images
    (channels last).

    Parameters
    ----------
    width : int
    filter_size, dilation, depth, activation, weight_variance, bias_variance, readout, padding, image_shape, strides, layout
        As in :class:`~skinfinite.kernels.ConvNNGP` ("exponential"
        dilations follow the inputs' length).
    random_state : int, numpy.random.Generator or None
    """

    def __init__(self, width, filter_size=9, dilation="exponential", depth=1,
                 activation="relu", weight_variance=2.0, bias_variance=1.0,
                 readout="average", padding="valid", image_shape=None,
                 random_state=None, strides=1, layout="auto"):
        self.width = width
        self.filter_size = filter_size
        self.dilation = dilation
        self.depth = depth
        self.activation = activation
        self.weight_variance = weight_variance
        self.bias_variance = bias_variance
        self.readout = readout
        self.padding = padding
        self.image_shape = image_shape
        self.random_state = random_state
        self.strides = strides
        self.layout = layout

    def _kernel(self):
        from ..kernels import ConvNNGP
        return ConvNNGP(filter_size=self.filter_size, dilation=self.dilation,
                        depth=self.depth, activation=self.activation,
                        weight_variance=self.weight_variance,
                        bias_variance=self.bias_variance,
                        readout=self.readout, padding=self.padding,
                        image_shape=self.image_shape, strides=self.strides,
                        layout=self.layout)

    def _forward(self, X, Y):
        """Features of X and Y (and, for the NTK, the per-layer parts)."""
        kernel = self._kernel()
        x, y, spec = kernel._inputs(X, Y)
        grids = [x] if y is None else [x, y]
        if any(np.any(g.widths != g.values.shape[3]) for g in grids) or (
                y is not None and y.values.shape[3] != x.values.shape[3]):
            raise ValueError("ConvolutionalNetwork needs inputs of one length.")
        # with equal lengths a dilation fits all inputs or none
        used = tuple(d for d, ok in zip(spec.dilations, x.valid[0]) if ok)
        return grids, dataclasses.replace(spec, dilations=used)

    def _draw(self, spec, c, rng):
        width = check_positive_int(self.width, "width")
        q = spec.fh * spec.fw
        params = []
        for _ in spec.dilations:
            layers, fan_in = [], c
            for _ in range(spec.depth):
                layers.append((rng.standard_normal((q * fan_in, width)),
                               rng.standard_normal(width)))
                fan_in = width
            params.append(layers)
        return params

    def _pooled(self, grids, spec, params):
        """Pooled last-layer features of each grid, per dilation, and the
        parts back-propagation needs."""
        act = spec.activation
        sw2, sb2 = spec.weight_variance, spec.bias_variance
        c, h, w = grids[0].values.shape[1:]
        feats = [[] for _ in grids]
        ntk_parts = [[] for _ in grids]
        for di, d in enumerate(spec.dilations):
            layers = params[di]
            for gi, g in enumerate(grids):
                a = g.values.reshape(g.n, c, h * w).transpose(0, 2, 1)
                shape, cache = (h, w), []
                for W, b in layers:
                    idx, shape = _tap_index(*shape, d, spec)
                    patches = _patches(a, idx)
                    scale = np.sqrt(sw2 / patches.shape[2])
                    z = scale * patches @ W + np.sqrt(sb2) * b
                    cache.append((patches, idx, scale, a.shape[1]))
                    a = act(z)
                n_pos = z.shape[1]
                if spec.readout == 2:        # ppv
                    feat = (z > 0).mean(axis=1)
                    dfeat = None
                elif spec.readout == 0:      # average
                    feat = a.mean(axis=1)
                    dfeat = act.derivative(z) / n_pos
                else:                        # flatten
                    feat = a.reshape(g.n, -1) / np.sqrt(n_pos)
                    dfeat = act.derivative(z) / np.sqrt(n_pos)
                feats[gi].append(feat)
                ntk_parts[gi].append((cache, layers, z, dfeat))
        return feats, ntk_parts

    def nngp_features(self, X, bias_variances=None):
        """Pooled features of every dilation, scaled so that their inner
        products plus ``bias_variance`` are the empirical NNGP.

        Parameters
        ----------
        X : inputs as for :class:`~skinfinite.kernels.ConvNNGP`
            (equal lengths).
        bias_variances : sequence of float or None, default=None
            With one layer and the "ppv" readout, the features of the same
            filters and biases under each of these bias variances (in
            place of ``bias_variance``), from one pass over the inputs:
            the responses are formed once and compared with one threshold
            per bias variance.

        Returns
        -------
        F : ndarray of shape (n_samples, n_features), or (len(bias_variances), n_samples, n_features)
        """
        grids, spec = self._forward(X, None)
        params = self._draw(spec, grids[0].values.shape[1],
                            _generator(self.random_state))
        scale = np.sqrt(spec.weight_variance
                        / (self.width * len(spec.dilations)))
        if bias_variances is not None:
            if spec.depth != 1 or spec.readout != 2:
                raise ValueError("bias_variances needs one layer and the "
                                 "'ppv' readout (depth=1, readout='ppv').")
            bvs = np.array([check_variance(b, "bias_variances", allow_zero=True)
                            for b in np.ravel(bias_variances)])
            if bvs.size == 0:
                raise ValueError("bias_variances must hold at least one value.")
            feats = self._positive_shares(grids[0], spec, params, bvs)
            return np.concatenate(feats, axis=2).transpose(1, 0, 2) * scale
        if spec.depth == 1 and spec.readout == 2:    # one layer, ppv
            feats = self._positive_shares(
                grids[0], spec, params, np.array([spec.bias_variance]))
            feats = [f[:, 0] for f in feats]
        else:
            feats = self._pooled(grids, spec, params)[0][0]
        return np.hstack(feats) * scale

    def _positive_shares(self, g, spec, params, bias_variances):
        """The one-layer ppv features of ``_pooled`` without its (inputs,
        positions, width) pre-activations, which memory bandwidth would
        bound: ``scale * patch . W + sqrt(sb2) b > 0`` is a count of
        ``patch . W`` above a threshold, fused in one compiled loop; one
        (inputs, bias variances, width) array per dilation."""
        c, h, w = g.values.shape[1:]
        a = np.ascontiguousarray(g.values.reshape(g.n, c, h * w).transpose(0, 2, 1))
        sb = np.sqrt(np.asarray(bias_variances, dtype=np.float64))
        feats = []
        for di, d in enumerate(spec.dilations):
            (W, b), = params[di]
            idx, _ = _tap_index(h, w, d, spec)
            scale = np.sqrt(spec.weight_variance / (idx.shape[1] * c))
            thresholds = np.ascontiguousarray(-sb[:, None] * b[None, :] / scale)
            W = np.ascontiguousarray(W)
            out = np.empty((g.n, len(sb), W.shape[1]))
            block = max(1, int(2 ** 23 // max(1, idx.size * c)))
            for start in range(0, g.n, block):
                patches = np.ascontiguousarray(_patches(a[start:start + block], idx))
                _positive_share(patches, W, thresholds, out[start:start + block])
            feats.append(out)
        return feats

    def _run(self, X, Y, ntk):
        grids, spec = self._forward(X, Y)
        act = spec.activation
        sw2, sb2 = spec.weight_variance, spec.bias_variance
        n_dil = len(spec.dilations)
        rng = _generator(self.random_state)
        params = self._draw(spec, grids[0].values.shape[1], rng)
        readout_rng = rng
        feats, ntk_parts = self._pooled(grids, spec, params)
        F = [np.hstack(f) * np.sqrt(sw2 / (self.width * n_dil)) for f in feats]
        K = F[0] @ F[-1].T + sb2
        if not ntk:
            return K, None
        if spec.readout == 2:
            return K, K.copy()
        # one readout draw; hidden-layer gradients by back-propagation
        sizes = [f.shape[1] for f in feats[0]]
        w_out = readout_rng.standard_normal(sum(sizes))
        T = K.copy()
        offsets = np.cumsum([0] + sizes)
        for di in range(n_dil):
            w_d = w_out[offsets[di]:offsets[di + 1]] * np.sqrt(
                sw2 / (self.width * n_dil))
            blocks = []
            for gi, g in enumerate(grids):
                cache, layers, z, dfeat = ntk_parts[gi][di]
                delta = dfeat * w_d.reshape(-1, z.shape[2]) if \
                    spec.readout == 1 else dfeat * w_d
                grads = []
                for li in range(len(layers) - 1, -1, -1):
                    patches, idx, scale, n_in = cache[li]
                    W, _ = layers[li]
                    grads.append((scale * np.einsum("npk,npj->nkj", patches,
                                                    delta).reshape(g.n, -1),
                                  np.sqrt(sb2) * delta.sum(axis=1)))
                    if li:
                        back = _unpatch(scale * delta @ W.T, idx, n_in)
                        z_prev = self._pre(cache, layers, li - 1, sb2)
                        delta = back * act.derivative(z_prev)
                blocks.append(grads)
            for (gw_x, gb_x), (gw_y, gb_y) in zip(blocks[0], blocks[-1]):
                T += gw_x @ gw_y.T + gb_x @ gb_y.T
        return K, T

    @staticmethod
    def _pre(cache, layers, li, sb2):
        patches, _, scale, _ = cache[li]
        W, b = layers[li]
        return scale * patches @ W + np.sqrt(sb2) * b

    def nngp(self, X, Y=None):
        """Empirical NNGP: the readout's covariance given the filters.

        Parameters
        ----------
        X, Y : inputs as for :class:`~skinfinite.kernels.ConvNNGP`
            (equal lengths).

        Returns
        -------
        K : ndarray of shape (n_samples_X, n_samples_Y)
        """
        return self._run(X, Y, False)[0]

    def ntk(self, X, Y=None):
        """Empirical NTK: sum over all parameters of gradient products,
        with one draw of the readout weights.

        Returns
        -------
        T : ndarray of shape (n_samples_X, n_samples_Y)
        """
        return self._run(X, Y, True)[1]

    def kernels(self, X, Y=None):
        """``(nngp, ntk)`` of one draw of the network."""
        return self._run(X, Y, True)
