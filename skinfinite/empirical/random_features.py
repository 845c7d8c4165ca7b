"""Explicit feature maps that approximate the infinite-width kernels."""
import numpy as np
from sklearn.base import (BaseEstimator, ClassNamePrefixFeaturesOutMixin,
                          TransformerMixin)
from sklearn.utils.validation import check_is_fitted, validate_data

from .._core.validation import (check_choice, check_positive_int,
                                flatten_images)
from .networks import (ConvolutionalNetwork, FullyConnectedNetwork, ResNetNetwork,
                       _generator)
from ..linalg.inducing import InducingPoints

__all__ = ["NeuralRandomFeatures", "ConvolutionalRandomFeatures",
           "InducingPoints"]

_NETWORKS = {"fully_connected": FullyConnectedNetwork, "resnet": ResNetNetwork}
_KINDS = ("nngp", "ntk")


class _RandomFeatures(ClassNamePrefixFeaturesOutMixin, TransformerMixin,
                      BaseEstimator):
    """The transformer methods shared by the random-feature maps."""

    def fit_transform(self, X, y=None):
        """Fit to X (draw the random network) and map X to its features.

        Parameters
        ----------
        X : array-like, as in ``fit``
        y : None
            Ignored.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_output_features)
        """
        return self.fit(X, y).transform(X)

    def get_feature_names_out(self, input_features=None):
        """Names of the output features: the class name and an index.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Only checked against the names seen in ``fit``.

        Returns
        -------
        feature_names_out : ndarray of str
        """
        return super().get_feature_names_out(input_features)

    def set_output(self, *, transform=None):
        """Choose the container of ``transform``'s output.

        Parameters
        ----------
        transform : {"default", "pandas", "polars"} or None, default=None
            "default" for NumPy arrays, "pandas" or "polars" for data frames,
            None to leave the setting unchanged.

        Returns
        -------
        self
        """
        return super().set_output(transform=transform)


class NeuralRandomFeatures(_RandomFeatures):
    """Random features of a finite-width network, for the NNGP or the NTK.

    ``fit`` draws one random network
    (:class:`~skinfinite.empirical.networks.FullyConnectedNetwork` or
    :class:`~skinfinite.empirical.networks.ResNetNetwork`) of width
    ``n_components`` for the number of input features; ``transform`` maps
    inputs to features whose inner products are the network's empirical
    kernel. As ``n_components`` grows these inner products converge to the
    :class:`~skinfinite.kernels.NNGP` or :class:`~skinfinite.kernels.NTK`
    kernel (for the fully-connected architecture) at the rate
    ``n_components ** -0.5``, so a linear model on the features approximates
    the corresponding kernel machine, as ``RBFSampler`` does for the RBF
    kernel.

    * ``kind="nngp"``: the last hidden layer. Fully connected: the
      post-activations times ``sqrt(weight_variance / n_components)`` and a
      constant column ``sqrt(bias_variance)`` for the readout bias
      (``n_components + 1`` features). Residual: the residual stream over
      ``sqrt(n_components)`` (``n_components`` features).
    * ``kind="ntk"``: the gradient of the scalar output with respect to every
      trained parameter, flattened. There are about
      ``depth * n_components ** 2`` of them, so this suits moderate widths
      (a few hundred units).

    Parameters
    ----------
    n_components : int, default=100
        Width of the network.
    depth : int, default=3
        Hidden layers (fully connected) or residual blocks (resnet).
    activation : str, Activation or callable, default="relu"
    weight_variance, bias_variance : float, default=2.0, 0.1
    kind : {"nngp", "ntk"}, default="nngp"
    architecture : {"fully_connected", "resnet"}, default="fully_connected"
        The residual network has branch multipliers ``1 / sqrt(depth)`` and
        the NTK parametrisation; the fully-connected one the NTK
        parametrisation.
    random_state : int, numpy.random.Generator, RandomState or None, default=None
        Source of the network's weights.

    Attributes
    ----------
    network_ : FullyConnectedNetwork or ResNetNetwork
        The drawn network.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Defined only when X has feature names that are all strings.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite.empirical.random_features import NeuralRandomFeatures
    >>> from skinfinite.kernels import NNGP
    >>> X = np.random.default_rng(0).normal(size=(5, 3))
    >>> F = NeuralRandomFeatures(n_components=4096, depth=2,
    ...                          random_state=0).fit_transform(X)
    >>> F.shape
    (5, 4097)
    >>> K = NNGP(depth=2)(X)
    >>> bool(np.abs(F @ F.T - K).max() < 0.1 * np.abs(K).max())
    True
    """

    def __init__(self, n_components=100, *, depth=3, activation="relu",
                 weight_variance=2.0, bias_variance=0.1, kind="nngp",
                 architecture="fully_connected", random_state=None):
        self.n_components = n_components
        self.depth = depth
        self.activation = activation
        self.weight_variance = weight_variance
        self.bias_variance = bias_variance
        self.kind = kind
        self.architecture = architecture
        self.random_state = random_state

    def fit(self, X, y=None):
        """Draw a network for the number of features of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Only its number of features is used.
        y : None
            Ignored.

        Returns
        -------
        self
        """
        X = validate_data(self, X, dtype=np.float64)
        check_choice(self.kind, "kind", _KINDS)
        check_choice(self.architecture, "architecture", tuple(_NETWORKS))
        network = _NETWORKS[self.architecture](
            depth=self.depth, width=self.n_components,
            activation=self.activation, weight_variance=self.weight_variance,
            bias_variance=self.bias_variance, random_state=self.random_state)
        self.network_ = network.initialize(X.shape[1])
        return self

    def transform(self, X):
        """Map X to the random features.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_output_features)
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        if self.kind == "ntk":
            return self.network_.ntk_features(X)
        return self.network_.nngp_features(X)

    # The three methods below only restate scikit-learn's mixins, whose own
    # docstrings do not build in this documentation.
    @property
    def _n_features_out(self):
        """Number of output features (for ``get_feature_names_out``)."""
        if self.kind == "ntk":
            return self.network_.n_parameters
        bias_column = isinstance(self.network_, FullyConnectedNetwork)
        return self.network_.width + bias_column


class ConvolutionalRandomFeatures(_RandomFeatures):
    """Random features of a finite-width convolutional network, for the
    convolutional NNGP.

    ``fit`` draws the filters of one random
    :class:`~skinfinite.empirical.networks.ConvolutionalNetwork` with
    ``n_components`` channels per layer and dilation; ``transform`` maps
    inputs to its pooled last-layer features, scaled by ``sqrt(
    weight_variance / (n_components * n_dilations))``, and a constant
    column ``sqrt(bias_variance)`` for the readout bias.  Their inner
    products converge to :class:`~skinfinite.kernels.ConvNNGP` with the same
    parameters at the rate ``n_components ** -0.5``, at a cost linear in the
    number of inputs: with "ppv" pooling and one layer they are
    ROCKET/MiniRocket-style features whose kernel is that limit.

    Parameters
    ----------
    n_components : int, default=100
        Channels of every convolutional layer, per dilation.
    filter_size, dilation, depth, activation, weight_variance, bias_variance, readout, strides, image_shape
        As in :class:`~skinfinite.kernels.ConvNNGP`; "exponential" dilations
        follow the length of the inputs given to ``fit``.
    padding : {"same", "valid", "circular"}, default="same"
        As in :class:`~skinfinite.kernels.ConvNNGP`; "same" by default so
        that inputs shorter than a filter have features too.
    n_channels : int, default=1
        Channels of sequences given as 2-D arrays ``(n, length *
        n_channels)`` (ignored for 3-D arrays and images).
    random_state : int, numpy.random.Generator, RandomState or None, default=None
        Source of the filters (drawn once, in ``fit``).

    Attributes
    ----------
    network_ : ConvolutionalNetwork
        The drawn network (its ``random_state`` is a fixed seed).
    input_shape_ : tuple
        Shape of one input, ``(length, channels)`` or the flattened
        image's ``(n_features,)``.
    n_features_in_ : int
        Features of the 2-D form of X (for images given as a 4-D array,
        of the flattened images).

    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite.empirical import ConvolutionalRandomFeatures
    >>> from skinfinite.kernels import ConvNNGP
    >>> X = np.random.default_rng(0).normal(size=(4, 20, 1))
    >>> F = ConvolutionalRandomFeatures(n_components=2000, filter_size=3,
    ...                                 random_state=0).fit_transform(X)
    >>> K = ConvNNGP(filter_size=3, padding="same")(X)
    >>> bool(np.abs(F @ F.T - K).max() < 0.1 * np.abs(K).max())
    True
    """

    def __init__(self, n_components=100, *, filter_size=9,
                 dilation="exponential", depth=1, activation="relu",
                 weight_variance=2.0, bias_variance=1.0, readout="average",
                 padding="same", strides=1, image_shape=None, n_channels=1,
                 random_state=None):
        self.n_components = n_components
        self.filter_size = filter_size
        self.dilation = dilation
        self.depth = depth
        self.activation = activation
        self.weight_variance = weight_variance
        self.bias_variance = bias_variance
        self.readout = readout
        self.padding = padding
        self.strides = strides
        self.image_shape = image_shape
        self.n_channels = n_channels
        self.random_state = random_state

    def _inputs(self, X, reset):
        X = flatten_images(X, self.image_shape)
        X = validate_data(self, X, reset=reset, dtype=np.float64,
                          allow_nd=True)
        if X.ndim > 3:
            raise ValueError(
                f"X has {X.ndim} dimensions; give sequences as (n, length, "
                "channels) or flattened rows, and images (n, rows, columns, "
                "channels) with image_shape=(rows, columns).")
        if X.ndim == 3 or self.image_shape is not None:
            return X
        c = self.n_channels
        if not isinstance(c, int) or c < 1 or X.shape[1] % c:
            raise ValueError(f"X has {X.shape[1]} features, which is not a "
                             f"multiple of n_channels={c!r}.")
        if X.shape[1] < 2 * c:
            raise ValueError(f"X has {X.shape[1]} feature(s): sequences of "
                             f"{c} channel(s) need at least 2 steps.")
        return X.reshape(X.shape[0], -1, c)

    def fit(self, X, y=None):
        """Draw the filters for the shape of X's inputs.

        Parameters
        ----------
        X : array-like of shape (n_samples, length, n_channels) or (n_samples, n_features)
            Sequences of one length, or rows of flattened images with
            ``image_shape``, or 2-D sequences with ``n_channels``.
        y : None
            Ignored.

        Returns
        -------
        self
        """
        X = self._inputs(X, True)
        check_positive_int(self.n_components, "n_components")
        # one seed fixes the filters for every later transform
        rng = _generator(self.random_state)
        seed = int(rng.integers(2 ** 31) if hasattr(rng, "integers")
                   else rng.randint(2 ** 31))
        self.network_ = ConvolutionalNetwork(
            self.n_components, filter_size=self.filter_size,
            dilation=self.dilation, depth=self.depth,
            activation=self.activation, weight_variance=self.weight_variance,
            bias_variance=self.bias_variance, readout=self.readout,
            padding=self.padding, image_shape=self.image_shape,
            random_state=seed, strides=self.strides, layout="ntc")
        self.input_shape_ = X.shape[1:]
        # validates the structure against the inputs now
        self._n_out = self._map(X[:1]).shape[1]
        return self

    def _map(self, X):
        rows = []
        # a bounded block of inputs at a time: the layers' activations are
        # (inputs, positions, n_components)
        block = max(1, int(2 ** 24 // max(1, np.prod(X.shape[1:])
                                           * self.n_components)))
        for start in range(0, X.shape[0], block):
            rows.append(self.network_.nngp_features(X[start:start + block]))
        F = np.vstack(rows)
        bias = np.full((F.shape[0], 1), np.sqrt(float(self.bias_variance)))
        return np.hstack([F, bias])

    def transform(self, X):
        """Map X to the random features.

        Parameters
        ----------
        X : array-like, the form given to ``fit``

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_output_features)
        """
        check_is_fitted(self)
        X = self._inputs(X, False)
        if X.shape[1:] != self.input_shape_:
            raise ValueError(f"X holds inputs of shape {X.shape[1:]}, but "
                             f"the filters were drawn for {self.input_shape_}"
                             "; refit on inputs of the new shape.")
        return self._map(X)

    @property
    def _n_features_out(self):
        """Number of output features (for ``get_feature_names_out``)."""
        return self._n_out
