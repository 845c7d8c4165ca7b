"""Explicit feature maps that approximate the infinite-width kernels."""
import numpy as np
from sklearn.base import (BaseEstimator, ClassNamePrefixFeaturesOutMixin,
                          TransformerMixin)
from sklearn.utils.validation import check_is_fitted, validate_data

from .._core.validation import check_choice
from .networks import FullyConnectedNetwork, ResNetNetwork
from ..linalg.inducing import InducingPoints

__all__ = ["NeuralRandomFeatures", "InducingPoints"]

_NETWORKS = {"fully_connected": FullyConnectedNetwork, "resnet": ResNetNetwork}
_KINDS = ("nngp", "ntk")


class NeuralRandomFeatures(ClassNamePrefixFeaturesOutMixin, TransformerMixin,
                           BaseEstimator):
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
    def fit_transform(self, X, y=None):
        """Draw a network for X and map X to its features.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
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

    @property
    def _n_features_out(self):
        """Number of output features (for ``get_feature_names_out``)."""
        if self.kind == "ntk":
            return self.network_.n_parameters
        bias_column = isinstance(self.network_, FullyConnectedNetwork)
        return self.network_.width + bias_column
