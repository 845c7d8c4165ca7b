"""Convolutional deep kernel machines for images (Milsom et al., ICLR 2024).

Each layer of a convolutional network has a feature vector at every pixel,
so a batch point's Grams carry one entry per location: ``G.ti`` has shape
(B, H, W, P) and ``G.t`` (B, H, W), the diagonal at each pixel.  The inducing
points have no spatial extent (``G.ii`` is (P, P)): a filter's view of them
is a learned linear mix ``C`` of inducing points per filter offset, which is
what lets a few hundred inducing points stand for every patch of every image.

One convolutional layer maps the Grams ``G`` of its input to the prior
covariance of its output (``same`` padding, stride 1, ``D = f^2`` offsets)::

    E    = E[phi(u) phi(v)]  element-wise, (u, v) ~ N(0, G)
    K_ii = sw2 mean_d C_d E_ii C_d^T / P + sb2
    K_ti = sw2 sum_d E_{t, r+d} C_d^T / (D sqrt(P)) + sb2   (zero outside)
    K_t  = sw2 sum_d E_{t, r+d} / D + sb2

which is the covariance of a convolution of the features, the inducing
points' ``d``-th neighbour being ``C_d psi / sqrt(P)``.  The input layer is
the same with the image patches and learned inducing patches in place of
``E``; the output layer reads all pixels out at once (a convolution whose
filter covers the image, ``C`` one mix per pixel).  Everything else, the
learned Grams of the inducing points, the propagation of the batch points
(at every pixel) and the output layers, is that of :mod:`skinfinite._torch.dkm`.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

from .dkm import Blocks, DeepKernelMachine, LayerKernel


def image_patches(images, filter_size):
    """All ``filter_size`` square patches of zero-padded images.

    Parameters
    ----------
    images : ndarray of shape (n, H, W, C)

    Returns
    -------
    patches : ndarray of shape (n, H, W, filter_size * filter_size * C)
        Patch at pixel ``(r, s)`` centred there, flattened (rows, columns,
        channels) as :func:`patch_blocks` reads inducing patches.
    """
    h = filter_size // 2
    n, H, W, C = images.shape
    padded = np.pad(images, ((0, 0), (h, h), (h, h), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(
        padded, (filter_size, filter_size), axis=(1, 2))  # n, H, W, C, f, f
    return windows.transpose(0, 1, 2, 4, 5, 3).reshape(n, H, W, -1)


def sample_patches(images, n_patches, filter_size, rng):
    """``n_patches`` distinct patches drawn at random pixels of random
    images: the initial inducing patches.

    Distinct so that the inducing Gram starts non-singular; where the
    images have fewer distinct patches, draws repeat.
    """
    patches = image_patches(images, filter_size).reshape(
        -1, filter_size * filter_size * images.shape[3])
    order = rng.permutation(len(patches))
    _, first = np.unique(patches[order], axis=0, return_index=True)
    distinct = order[np.sort(first)]
    if len(distinct) >= n_patches:
        picked = distinct[:n_patches]
    else:
        picked = np.concatenate([distinct, rng.choice(
            len(patches), n_patches - len(distinct), replace=True)])
    return patches[np.sort(picked)]


def patch_blocks(Z, X, filter_size, weight_variance, bias_variance):
    """Input layer blocks: ``sw2 <patch, patch'> / (f^2 C) + sb2``.

    Parameters
    ----------
    Z : tensor (P, f * f * C)
        Inducing patches, flattened (rows, columns, channels).
    X : tensor (B, H, W, C) or None
    """
    m = Z.shape[1]
    ii = weight_variance * (Z @ Z.T) / m + bias_variance
    if X is None:
        return Blocks(ii)
    f, h = filter_size, filter_size // 2
    channels = X.shape[3]
    filters = Z.reshape(-1, f, f, channels).permute(0, 3, 1, 2)
    images = X.permute(0, 3, 1, 2)
    ti = F.conv2d(images, filters, padding=h).permute(0, 2, 3, 1)
    squares = (images * images).sum(1, keepdim=True)
    t = F.avg_pool2d(squares, f, stride=1, padding=h,
                     count_include_pad=True)[:, 0] * (f * f)
    return Blocks(ii, weight_variance * ti / m + bias_variance,
                  weight_variance * t / m + bias_variance)


class _MixedMap:
    """Element-wise layer kernel, a linear mix over locations and inducing
    points, then the weight and bias variances."""

    def __init__(self, elementwise, mix, weight_variance, bias_variance,
                 scaled):
        self.elementwise = elementwise
        self.mix = mix
        self.weight_variance = weight_variance
        self.bias_variance = bias_variance
        # the squared-exponential kernel has no weight and bias variances
        self.scaled = scaled

    def _out(self, E):
        if not self.scaled:
            return E
        return self.weight_variance * E + self.bias_variance


class ConvolutionMap(_MixedMap):
    """The map from a convolutional layer's Grams to the next layer's prior
    covariance, with the inducing mix ``mix`` (P_out, P_in, f, f)."""

    def __call__(self, G):
        E = self.elementwise(G)
        P_in = E.ii.shape[0]
        f = self.mix.shape[-1]
        C = self.mix / math.sqrt(P_in)
        C_d = C.permute(2, 3, 0, 1)  # f, f, P_out, P_in
        ii = (C_d @ E.ii @ C_d.transpose(-1, -2)).mean((0, 1))
        ii = self._out(0.5 * (ii + ii.T))
        if E.ti is None:
            return Blocks(ii)
        ti = F.conv2d(E.ti.permute(0, 3, 1, 2), C, padding=f // 2) / (f * f)
        t = F.avg_pool2d(E.t[:, None], f, stride=1, padding=f // 2,
                         count_include_pad=True)[:, 0]
        return Blocks(ii, self._out(ti.permute(0, 2, 3, 1)), self._out(t))


class ReadoutMap(_MixedMap):
    """The output layer's covariance: every pixel read out, with one
    inducing mix per pixel ``mix`` (H * W, P_out, P_in)."""

    def __call__(self, G):
        E = self.elementwise(G)
        P_in = E.ii.shape[0]
        C = self.mix / math.sqrt(P_in)
        ii = (C @ E.ii @ C.transpose(1, 2)).mean(0)
        ii = self._out(0.5 * (ii + ii.T))
        if E.ti is None:
            return Blocks(ii)
        B = E.ti.shape[0]
        E_ti = E.ti.reshape(B, -1, P_in)
        ti = torch.einsum("bsj,sij->bi", E_ti, C) / E_ti.shape[1]
        t = E.t.reshape(B, -1).mean(1)
        return Blocks(ii, self._out(ti), self._out(t))


class ConvolutionalDeepKernelMachine(DeepKernelMachine):
    """A deep kernel machine whose layers are convolutions of images.

    Parameters
    ----------
    layer_kernel : LayerKernel
        Its element-wise map (``kernel`` and ``activation``) is applied at
        every pixel; its weight and bias variances scale the mixed
        covariance.
    Z : tensor (P, f * f * C)
        Inducing patches of the input layer.
    image_shape : tuple (H, W, C)
    filter_size : int
        Odd side of the square filters.
    generator : torch.Generator
        Draws the initial inducing mixes (standard normal).
    **kwargs
        Of :class:`~skinfinite._torch.dkm.DeepKernelMachine` (the output layer
        must be variational: ``exact=False``).
    """

    def __init__(self, layer_kernel, Z, image_shape, filter_size, generator,
                 **kwargs):
        super().__init__(layer_kernel, Z, **kwargs)
        self.image_shape = tuple(image_shape)
        self.filter_size = filter_size
        P = Z.shape[0]
        H, W, _ = self.image_shape

        def normal(*shape):
            return torch.nn.Parameter(torch.randn(
                shape, generator=generator, dtype=Z.dtype).to(Z.device))

        self.mixes = torch.nn.ParameterList(
            [normal(P, P, filter_size, filter_size) for _ in self.nus])
        self.readout = normal(H * W, P, P)
        self.elementwise = LayerKernel(layer_kernel.kernel,
                                       layer_kernel.activation, 1.0, 0.0)

    def input_blocks(self, X=None, full=False):
        if full:
            raise ValueError("A convolutional machine has no exact output "
                             "layer; use output_layer='variational'.")
        images = None if X is None else X.reshape((-1,) + self.image_shape)
        return patch_blocks(self.Z, images, self.filter_size,
                            self.weight_variance, self.bias_variance)

    def layer_maps(self):
        scaled = self.layer_kernel.kernel == "nngp"
        common = (self.elementwise,)
        variances = (self.weight_variance, self.bias_variance, scaled)
        maps = [ConvolutionMap(*common, mix, *variances) for mix in self.mixes]
        return maps + [ReadoutMap(*common, self.readout, *variances)]
