"""NNGP and NTK kernels of infinitely wide convolutional networks.

Sequences (1-D, several channels, lengths that may differ) and images
(2-D, channels last) go through dilated convolutions, an activation at
every layer, then a readout: global average pooling, flattening, or the
proportion of positive values (ROCKET's pooling).  Several dilations are
several networks whose features are concatenated, as in ROCKET/MiniRocket:
one layer of random dilated filters with "ppv" pooling and a linear
classifier has :class:`ConvNNGP` as its infinite-width limit.
"""
import numbers
from dataclasses import dataclass

import numpy as np
from sklearn.gaussian_process.kernels import Kernel

from .._core.backend import on_host
from .._core.collections import is_dask
from .._core.config import CarriesConfig
from .._core.sequences import check_sequences
from .._core.tiling import (block_pairs, count_blocks, iter_blocks,
                            mirror_upper, plan_block, progress)
from .._core.validation import (check_choice, check_dtype, check_positive_int,
                           check_variance, check_vector_input,
                           flatten_images)
from ..activations.definitions import get_activation
from ..engine.cpu import convolutional as _engine
from ..recursions import convolutional as rec
from ..recursions.convolutional import ConvSpec
from ._base import NetworkKernel, VarianceHyperparameters
from .registry import register_architecture

PADDINGS = tuple(rec.PADDINGS)


@dataclass
class Grids:
    """Inputs as grids: values (n, C, H, W) zero past each input's width."""

    values: np.ndarray
    widths: np.ndarray
    valid: np.ndarray = None
    counts: np.ndarray = None

    @property
    def n(self):
        return self.values.shape[0]


# ------------------------------------------------------------- validation
def _check_pair(value, name, two_d):
    """(rows, columns) of a filter's size or step: an int or, for images,
    a pair; sequences are one row."""
    if two_d and isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} for images is an int or a pair "
                             f"(rows, columns), got {value!r}.")
        return tuple(check_positive_int(v, name) for v in value)
    v = check_positive_int(value, name)
    return (v, v) if two_d else (1, v)


def _output_sizes(size, f, d, s, padding, depth):
    """Sizes of one axis after each of ``depth`` layers."""
    out = []
    for _ in range(depth):
        size = rec.axis_geometry(size, f, d, s, padding)[0]
        out.append(size)
    return out


def _check_dilation(dilation):
    if isinstance(dilation, str):
        if dilation != "exponential":
            raise ValueError("dilation must be 'exponential', an int or a "
                             f"sequence of ints, got {dilation!r}.")
        return dilation
    if isinstance(dilation, numbers.Integral) and not isinstance(dilation, bool):
        dilation = [dilation]
    try:
        values = [check_positive_int(d, "dilation") for d in dilation]
    except TypeError:
        raise TypeError("dilation must be 'exponential', an int or a "
                        f"sequence of ints, got {dilation!r}.") from None
    if not values:
        raise ValueError("dilation is an empty sequence.")
    return tuple(sorted(set(values)))


def _check_image_shape(image_shape):
    if image_shape is None:
        return None
    shape = tuple(image_shape)
    if len(shape) not in (2, 3):
        raise ValueError("image_shape must be (rows, columns) or (rows, "
                         f"columns, channels), got {image_shape!r}.")
    return tuple(check_positive_int(s, "image_shape") for s in shape)


def _exponential(size, span):
    """1, 2, 4, ... while the filter's span ``d * span`` fits ``size``."""
    out, d = [], 1
    while d == 1 or d * span <= size - 1:
        out.append(d)
        d *= 2
    return out


class _ConvolutionalKernel(CarriesConfig, VarianceHyperparameters,
                           NetworkKernel, Kernel):
    """Parameters, input handling and Gram assembly shared by both kernels."""

    _output = None

    def __init__(self, filter_size=9, dilation="exponential", depth=1,
                 activation="relu", weight_variance=2.0, bias_variance=1.0,
                 readout="average", padding="valid", image_shape=None,
                 n_channels=None, weight_variance_bounds=(1e-2, 1e2),
                 bias_variance_bounds=(1e-5, 1e2), dtype="float64",
                 layout="auto", strides=1, device="auto"):
        self.filter_size = filter_size
        self.dilation = dilation
        self.depth = depth
        self.activation = activation
        self.weight_variance = weight_variance
        self.bias_variance = bias_variance
        self.readout = readout
        self.padding = padding
        self.image_shape = image_shape
        self.n_channels = n_channels
        self.weight_variance_bounds = weight_variance_bounds
        self.bias_variance_bounds = bias_variance_bounds
        self.dtype = dtype
        self.layout = layout
        self.strides = strides
        self.device = device

    @property
    def requires_vector_input(self):
        """False for sequences (3-D or ragged inputs), True for images."""
        return self.image_shape is not None

    def is_stationary(self):
        """Returns False."""
        return False

    # -------------------------------------------------------------- inputs
    def _grids(self, X, name="X"):
        shape = _check_image_shape(self.image_shape)
        X = flatten_images(X, shape, name)
        if shape is not None:
            X = check_vector_input(X, name)
            h, w = shape[:2]
            if X.shape[1] % (h * w):
                raise ValueError(
                    f"{name} has {X.shape[1]} features, which is not a "
                    f"multiple of the {h * w} pixels of image_shape="
                    f"{self.image_shape!r}.")
            c = X.shape[1] // (h * w)
            if len(shape) == 3 and shape[2] != c:
                raise ValueError(
                    f"{name} has {X.shape[1]} features but image_shape="
                    f"{self.image_shape!r} needs {h * w * shape[2]}.")
            values = X.reshape(-1, h, w, c).transpose(0, 3, 1, 2)
            return Grids(np.ascontiguousarray(values),
                         np.full(X.shape[0], w, dtype=np.int64))
        seqs = check_sequences(X, self.n_channels, name, layout=self.layout)
        values = seqs.values.copy()
        for i in np.flatnonzero(seqs.lengths < seqs.max_length):
            values[i, seqs.lengths[i]:] = 0.0
        return Grids(np.ascontiguousarray(values.transpose(0, 2, 1)[:, :, None]),
                     seqs.lengths.astype(np.int64))

    def _sizes(self, grids, fh, fw):
        """The length that limits each input's dilations, and the span."""
        h = grids.values.shape[2]
        if h == 1 and fh == 1:
            return grids.widths, fw - 1
        return np.minimum(grids.widths, h), max(fh, fw) - 1

    def _resolve(self, x, y):
        """Validate parameters, fix the dilations, mark which apply to which
        input; returns the spec."""
        two_d = self.image_shape is not None
        fh, fw = _check_pair(self.filter_size, "filter_size", two_d)
        depth = check_positive_int(self.depth, "depth")
        check_choice(self.readout, "readout", tuple(rec.READOUTS))
        check_choice(self.padding, "padding", PADDINGS)
        padding = rec.PADDINGS[self.padding]
        same = padding != rec.VALID
        sh, sw = _check_pair(self.strides, "strides", two_d)
        dilation = _check_dilation(self.dilation)
        grids = [x] if y is None else [x, y]
        per_input = []
        for g in grids:
            size, span = self._sizes(g, fh, fw)
            if dilation == "exponential":
                per_input.append([_exponential(int(s), span) for s in size])
            else:
                per_input.append([list(dilation)] * g.n)
        dils = sorted({d for lists in per_input for ds in lists for d in ds})
        for g, lists in zip(grids, per_input):
            h = g.values.shape[2]
            valid = np.zeros((g.n, len(dils)), dtype=np.bool_)
            for di, d in enumerate(dils):
                own = np.array([d in ds for ds in lists])
                if same:
                    fits = np.ones(g.n, dtype=bool)
                else:
                    fits = np.array([
                        min(_output_sizes(int(w), fw, d, sw, padding, depth)
                            + _output_sizes(h, fh, d, sh, padding, depth)) >= 1
                        for w in g.widths])
                valid[:, di] = own & fits
            counts = valid.sum(axis=1)
            if np.any(counts == 0):
                bad = int(np.flatnonzero(counts == 0)[0])
                raise ValueError(
                    f"Input {bad} (width {g.widths[bad]}) is shorter than the "
                    f"receptive field of {depth} layer(s) of filter "
                    f"{self.filter_size!r} at every dilation; use "
                    "padding='same', a smaller filter_size or depth.")
            g.valid, g.counts = valid, counts.astype(np.float64)
        return ConvSpec(
            depth=depth, activation=get_activation(self.activation),
            weight_variance=check_variance(self.weight_variance,
                                           "weight_variance"),
            bias_variance=check_variance(self.bias_variance, "bias_variance",
                                         allow_zero=True),
            fh=fh, fw=fw, same=same, readout=rec.READOUTS[self.readout],
            dilations=tuple(dils), strides=(sh, sw),
            circular=padding == rec.CIRCULAR)

    def _inputs(self, X, Y):
        x = self._grids(X)
        y = None if Y is None else self._grids(Y, "Y")
        if y is not None:
            if x.values.shape[1] != y.values.shape[1]:
                raise ValueError(f"X has {x.values.shape[1]} channels but Y "
                                 f"has {y.values.shape[1]}; both must have "
                                 "the same number.")
            if x.values.shape[2] != y.values.shape[2]:
                raise ValueError("X and Y images have different shapes.")
        return x, y, self._resolve(x, y)

    # ---------------------------------------------------------- evaluation
    def __call__(self, X, Y=None, eval_gradient=False):
        """Return the kernel k(X, Y) and optionally its gradient.

        Parameters
        ----------
        X : sequences or array of flattened images
            A 3-D array (n, length, n_channels), a list of (length_i,
            n_channels) arrays, the flattened 2-D form with ``n_channels``,
            or with ``image_shape`` a 2-D array of flattened images.
        Y : same form as X, default=None
            None evaluates k(X, X).
        eval_gradient : bool, default=False
            Also return the gradient with respect to the log of the
            non-fixed hyperparameters (only when Y is None).

        Returns
        -------
        K : ndarray of shape (n_samples_X, n_samples_Y)
        K_gradient : ndarray of shape (n_samples_X, n_samples_X, n_dims)
            Only when ``eval_gradient`` is True.
        """
        if is_dask(X) or is_dask(Y):
            from ..distributed.gram import dask_gram
            return dask_gram(self, X, Y, eval_gradient)
        if Y is not None and eval_gradient:
            raise ValueError("Gradient can only be evaluated when Y is None.")
        dtype = check_dtype(self.dtype)
        x, y, spec = self._inputs(X, Y)
        backend = self.backend_for(self.device)
        out = conv_gram(x, y, spec, self._output, eval_gradient,
                        backend=backend)
        if not eval_gradient:
            return out.astype(dtype, copy=False)
        K, grad = out
        columns = [idx for idx, hp in ((1, self.hyperparameter_bias_variance),
                                       (0, self.hyperparameter_weight_variance))
                   if not hp.fixed]
        return (K.astype(dtype, copy=False),
                np.ascontiguousarray(grad[:, :, columns]).astype(dtype,
                                                                 copy=False))

    def diag(self, X):
        """Return the diagonal k(x, x).

        Parameters
        ----------
        X : sequences or array of flattened images, as in ``__call__``

        Returns
        -------
        K_diag : ndarray of shape (n_samples,)
        """
        x, _, spec = self._inputs(X, None)
        idx = np.arange(x.n, dtype=np.int64)
        vals = _run_pairs(x, x, spec, idx, idx, self._output == "ntk",
                          backend=self.backend_for(self.device))
        col = 1 if self._output == "ntk" else 0
        return vals[:, col].astype(check_dtype(self.dtype), copy=False)

    def check_params(self):
        """Validate the network parameters now (the structure is checked
        against the inputs when they come)."""
        check_positive_int(self.depth, "depth")
        get_activation(self.activation)
        check_variance(self.weight_variance, "weight_variance")
        check_variance(self.bias_variance, "bias_variance", allow_zero=True)

    def grams(self, X, Y=None, want=None, *, backend=None, on_device=True):
        """NNGP and/or NTK Gram blocks of one pass, as NumPy float64 arrays
        (see :meth:`NetworkKernel.grams`; a GPU backend computes them there
        and returns them to the host)."""
        want = self._want(want)
        x, y, spec = self._inputs(on_host(X), on_host(Y))
        return conv_grams(x, y, spec, want, backend=backend)

    def diagonals(self, X, want=None):
        want = self._want(want)
        x, _, spec = self._inputs(on_host(X), None)
        idx = np.arange(x.n, dtype=np.int64)
        vals = _run_pairs(x, x, spec, idx, idx, "ntk" in want,
                          backend=self.backend_for(self.device))
        return {w: vals[:, 1 if w == "ntk" else 0] for w in want}

    def __repr__(self):
        extras = "".join(
            f", {name}={getattr(self, name)!r}"
            for name, default in (("filter_size", 9), ("dilation", "exponential"),
                                  ("readout", "average"), ("padding", "valid"),
                                  ("strides", 1), ("image_shape", None),
                                  ("n_channels", None))
            if getattr(self, name) != default)
        return (f"{type(self).__name__}(depth={self.depth}, "
                f"activation={self.activation!r}, "
                f"weight_variance={self.weight_variance:.4g}, "
                f"bias_variance={self.bias_variance:.4g}{extras})")


# ------------------------------------------------------------- Gram driver
def _prepared(grids, spec, with_tangents):
    dg, dgrad = rec.diagonal_paths(grids, spec, with_tangents)
    return dg, np.sqrt(dg), rec.coefficient_rows(spec.activation, dg), dgrad


def _on_gpu(backend):
    return backend is not None and backend.name == "gpu"


def _run_pairs(x, y, spec, rows, cols, want_t, prepared=None, backend=None):
    px = prepared[0] if prepared else _prepared(x, spec, False)
    py = px if (y is x) else (prepared[1] if prepared
                             else _prepared(y, spec, False))
    out = np.empty((rows.shape[0], 2))
    if rows.shape[0] == 0:
        return out
    if _on_gpu(backend):
        from ..engine.cuda import convolutional as cuda_engine
        cuda_engine.pair_values(backend, x, y, spec, rows, cols, px, py,
                                want_t, out)
    else:
        _engine.pair_values(x, y, spec, rows, cols, px, py, want_t, out)
    return out


def conv_gram(x, y, spec, output="nngp", eval_gradient=False, backend=None):
    """Gram block of a convolutional kernel between two :class:`Grids`.

    ``y=None`` computes the symmetric Gram (one triangle explicitly).
    """
    if eval_gradient:
        return _gram_with_gradient(x, spec, output, backend)
    return conv_grams(x, y, spec, (output,), backend=backend)[output]


def conv_grams(x, y, spec, want=("nngp", "ntk"), backend=None):
    """NNGP and/or NTK Gram blocks in one pass, as a dict (on a GPU where
    ``backend`` is one)."""
    symmetric = y is None
    y = x if symmetric else y
    want_t = "ntk" in want
    prepared = (_prepared(x, spec, False),
                None if symmetric else _prepared(y, spec, False))
    if symmetric:
        prepared = (prepared[0], prepared[0])
    n, m = x.n, y.n
    outs = {name: np.empty((n, m)) for name in want}
    if _on_gpu(backend):
        # the device holds five position-pair matrices per pair of a tile
        from ..engine.cuda import convolutional as cuda_engine
        per_pair = cuda_engine.VALUE_MATRICES * 8.0 * (x.values.shape[2] * x.values.shape[3]
                              * y.values.shape[2] * y.values.shape[3])
        block = plan_block(n, m, per_pair, symmetric,
                           budget=min(0.5 * backend.free_memory(), 2.0 ** 62))
    else:
        block = plan_block(n, m, 96.0, symmetric)
    cells = (x.values.shape[2] * x.values.shape[3]
             * y.values.shape[2] * y.values.shape[3])
    work = n * m * (0.5 if symmetric else 1.0) * cells * len(spec.dilations)
    with progress(count_blocks(n, m, block, symmetric), work,
                  "convolutional kernel blocks") as bar:
        for rows, cols, on_diagonal in iter_blocks(n, m, block, symmetric):
            pr, pc = block_pairs(rows, cols, on_diagonal)
            vals = _run_pairs(x, y, spec, pr, pc, want_t, prepared, backend)
            for name, out in outs.items():
                out[pr, pc] = vals[:, 1 if name == "ntk" else 0]
            bar.update()
    for out in outs.values():
        if symmetric:
            mirror_upper(out)
        if not np.all(np.isfinite(out)):
            raise FloatingPointError(
                "The convolutional kernel produced non-finite values; lower "
                "the depth or the weight variance.")
    return outs


def _gram_with_gradient(x, spec, output, backend=None):
    """K(X, X) and its gradient with respect to (log sw2, log sb2), on a
    GPU where ``backend`` is one."""
    dg, dgrad = rec.diagonal_paths(x, spec, True)
    sg = np.sqrt(dg)
    cx = rec.coefficient_rows(spec.activation, dg)
    n = x.n
    col = 1 if output == "ntk" else 0
    K = np.empty((n, n))
    grad = np.empty((n, n, 2))
    if _on_gpu(backend):
        from ..engine.cuda import convolutional as cuda_engine
        cells = (x.values.shape[2] * x.values.shape[3]) ** 2
        block = plan_block(n, n, cuda_engine.TANGENT_MATRICES * 8.0 * cells,
                           True, budget=min(0.5 * backend.free_memory(),
                                            2.0 ** 62))
    else:
        block = plan_block(n, n, 128.0, True)
    for rows, cols, on_diagonal in iter_blocks(n, n, block, True):
        pr, pc = block_pairs(rows, cols, on_diagonal)
        out = np.empty((pr.shape[0], 6))
        if _on_gpu(backend):
            cuda_engine.pair_tangents(backend, x, spec, pr, pc, dg, sg, dgrad,
                                      cx, out)
        else:
            _engine.pair_tangents(x, spec, pr, pc, dg, sg, dgrad, cx, out)
        K[pr, pc] = out[:, col]
        grad[pr, pc] = out[:, [2 + 2 * col, 3 + 2 * col]]
    mirror_upper(K)
    mirror_upper(grad)
    if not (np.all(np.isfinite(K)) and np.all(np.isfinite(grad))):
        raise FloatingPointError(
            "The convolutional kernel produced non-finite values; lower the "
            "depth or the weight variance.")
    return K, grad


class ConvNNGP(_ConvolutionalKernel):
    r"""NNGP kernel of an infinitely wide convolutional network.

    The covariance of the outputs of a network of ``depth`` dilated
    convolutions (Gaussian filters, infinitely many channels per layer), an
    activation after each, a pooling readout and a dense output layer.  With
    ``depth=1`` and ``readout="ppv"`` it is the infinite-width limit of
    ROCKET/MiniRocket features with a linear model: for each dilation the
    average over all pairs of windows of the order-0 arc-cosine kernel of
    the windows' covariance.

    Layer 1: ``S1[s, t] = sw2 / (C q) sum_k <x_{s + d k}, y_{t + d k}> + sb2``
    (q filter taps, C channels, dilation d); layer l+1:
    ``S{l+1}[s, t] = sw2 / q sum_k E[phi(u) phi(v)][s + d k, t + d k] + sb2``;
    output ``K = sw2 * pool(E[phi(u) phi(v)]) + sb2``, averaged over
    dilations.

    Parameters
    ----------
    filter_size : int or pair of ints, default=9
        Taps of each filter (q); for images an int means square filters.
    dilation : "exponential", int or sequence of ints, default="exponential"
        "exponential" uses 1, 2, 4, ... up to ``(T - 1) / (filter_size - 1)``
        for an input of length T (the shorter side of an image), as ROCKET
        does; the kernels of the dilations are averaged (their features
        concatenated).  A dilation that an input is too short for (under
        "valid" padding) contributes no features to it.
    depth : int, default=1
        Number of convolutional layers.
    activation : str, Activation or callable, default="relu"
        See :mod:`skinfinite.activations.definitions`.
    weight_variance : float, default=2.0
        sw2 (variance of the weights times the fan-in). Hyperparameter.
    bias_variance : float, default=1.0
        sb2. Hyperparameter.  Relative to the windows' norms it plays the
        role of MiniRocket's bias quantiles.
    readout : {"average", "flatten", "ppv"}, default="average"
        Global average pooling of the last activations, flattening (equal
        positions only), or the proportion of positive values of the last
        pre-activations (a step activation; its NTK equals its NNGP).
    padding : {"valid", "same", "circular"}, default="valid"
        "same" pads with zeros so that every layer keeps the input's size
        (divided by the stride, rounded up), with XLA's "SAME" pads (the
        smaller one first); "circular" pads as "same" with the input's own
        values wrapped around (a periodic input), as neural-tangents'
        ``CIRCULAR``.
    image_shape : tuple, default=None
        ``(rows, columns)`` or ``(rows, columns, channels)``: rows of X are
        flattened images (channels last), or X is a 4-D array of images
        ``(n, rows, columns, channels)``.  None: X holds sequences.
    n_channels : int, default=None
        Channels of sequences given in the flattened 2-D form
        ``(n, length * n_channels)``.
    weight_variance_bounds, bias_variance_bounds : pair of floats or "fixed"
    dtype : {"float64", "float32"}, default="float64"
    layout : {"auto", "ntc", "nct"}, default="auto"
        Axis order of 3-D sequence arrays and list entries: "ntc" (time,
        then channels) or "nct" (channels, then time: aeon, sktime); "auto"
        decides from the shapes and raises where both readings fit
        (:ref:`guide_input_layouts`).
    strides : int or pair of ints, default=1
        Step of the filters along time (sequences) or along (rows, columns)
        (images; an int means the same step along both), at every layer.
    device : {"auto", "cpu", "gpu"}, default="auto"
        Where the Gram values and hyperparameter gradients run: "auto"
        follows ``skinfinite.config_context(device=...)``, which uses a GPU
        where one is available (one block of CUDA threads per pair of
        inputs).

    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite.kernels import ConvNNGP
    >>> X = np.random.default_rng(0).normal(size=(4, 30, 1))
    >>> ConvNNGP(readout="ppv")(X).shape
    (4, 4)
    """

    _output = "nngp"


class ConvNTK(_ConvolutionalKernel):
    r"""Neural tangent kernel of an infinitely wide convolutional network.

    ``Th1 = S1``, ``Th{l+1} = S{l+1} + sw2 / q sum_k (Th_l Vd_l)[s + d k,
    t + d k]`` with ``Vd = E[phi'(u) phi'(v)]``, and at the output
    ``Theta = K + sw2 * pool(Th_L Vd_L)`` (see :class:`ConvNNGP` for ``K``
    and the parameters).  With ``readout="ppv"`` the step function stops
    gradients and the NTK equals the NNGP.

    Parameters
    ----------
    filter_size, dilation, depth, activation, weight_variance, bias_variance, readout, padding, image_shape, n_channels, weight_variance_bounds, bias_variance_bounds, dtype, layout, strides, device
        As in :class:`ConvNNGP`.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfinite.kernels import ConvNTK
    >>> X = np.random.default_rng(0).normal(size=(4, 30, 2))
    >>> ConvNTK(depth=2, filter_size=3)(X).shape
    (4, 4)
    """

    _output = "ntk"


register_architecture("convolutional", ConvNNGP, ConvNTK,
                      defaults={"n_channels": 1})
