"""The torch core of deep kernel machines: layer maps, Gram propagation and
the terms of the objective.

A deep kernel machine carries one Gram matrix per layer.  Only the Grams of
the ``P`` inducing points are parameters, ``G_ii = V V^T / P`` with ``V``
lower triangular; the Grams of any other points follow from them::

    G_ti = K_ti K_ii^-1 G_ii
    g_t  = k_t - diag(K_ti K_ii^-1 K_it) + diag(K_ti K_ii^-1 G_ii K_ii^-1 K_it)

where ``K = K(G_{l-1})`` is the layer's prior covariance, computed from the
previous layer's Grams.  A layer whose ``nu`` is infinite has no parameter:
its Gram is its prior covariance, exactly, for every point.  The objective is

    log P(Y | G_L) - sum_l nu_l KL(N(0, G_l) || N(0, K(G_{l-1})))

with an exact Gaussian marginal likelihood (all training points inducing) or a
whitened variational top layer (inducing points, minibatches).

Everything here is torch and differentiable; the estimators in
:mod:`skinfinite.models.dkm` own validation and the training loop.
"""
import math
from dataclasses import dataclass
from typing import Optional

import torch

from ..linalg.cholesky import NumericalError

_MAX_JITTER_STEPS = 7
#: Independent noise in each learned layer's prior, relative to the mean
#: prior variance of the inducing points.  Without it duplicated (or nearly
#: duplicated) points make the prior singular and the KL term explode at
#: the first optimiser step.
PRIOR_NUGGET = 1e-5
#: Noise variance of the Gaussian stand-in likelihood that initialises the
#: variational output layer of classifiers (targets 4 (one-hot - 1/C)).
INIT_CLASSIFIER_NOISE = 1.0


@dataclass
class Blocks:
    """Gram (or covariance) blocks of one layer.

    Attributes
    ----------
    ii : tensor of shape (P, P)
        Between inducing points.
    ti : tensor of shape (B, P) or None
        Between other points (a batch) and the inducing points.
    t : tensor of shape (B,) or None
        Diagonal of the batch.
    tt : tensor of shape (B, B) or None
        The whole batch block, carried only where an exact output layer
        needs the covariance between the batch points.
    """

    ii: torch.Tensor
    ti: Optional[torch.Tensor] = None
    t: Optional[torch.Tensor] = None
    tt: Optional[torch.Tensor] = None


def input_blocks(Z, X, weight_variance, bias_variance, full=False):
    """Pre-activation covariance of the first layer, ``sw2 <x, y> / d + sb2``.

    The same input layer as :class:`skinfinite.kernels.NNGP`; ``X`` None gives
    the inducing block only; ``full`` adds the whole ``X`` block.
    """
    d = Z.shape[1]
    ii = weight_variance * (Z @ Z.T) / d + bias_variance
    if X is None:
        return Blocks(ii)
    ti = weight_variance * (X @ Z.T) / d + bias_variance
    t = weight_variance * (X * X).sum(1) / d + bias_variance
    tt = weight_variance * (X @ X.T) / d + bias_variance if full else None
    return Blocks(ii, ti, t, tt)


class LayerKernel:
    """The map from one layer's Gram blocks to the next layer's covariance.

    ``kernel="nngp"``: ``K(G) = sw2 E[phi(u) phi(v)] + sb2`` with ``(u, v)``
    drawn from the Gram (the NNGP layer map of the activation).
    ``kernel="squared_exponential"``:
    ``K(G)_xy = exp(-(G_xx + G_yy - 2 G_xy) / 2)``.
    """

    def __init__(self, kernel, activation, weight_variance, bias_variance):
        self.kernel = kernel
        self.activation = activation
        self.weight_variance = weight_variance
        self.bias_variance = bias_variance
        if kernel == "nngp":
            from .duals import expected_product
            self._expected_product = expected_product

    def _pair(self, gxx, gxy, gyy):
        if self.kernel == "squared_exponential":
            sq_dist = (gxx + gyy - 2.0 * gxy).clamp_min(0.0)
            return torch.exp(-0.5 * sq_dist)
        v = self._expected_product(self.activation, gxx, gxy, gyy)
        return self.weight_variance * v + self.bias_variance

    def __call__(self, G):
        d = G.ii.diagonal()
        ii = self._pair(d[:, None], G.ii, d[None, :])
        # the map of a symmetric matrix is symmetric; enforce it bit for bit
        ii = 0.5 * (ii + ii.T)
        if G.ti is None:
            return Blocks(ii)
        ti = self._pair(G.t[..., None], G.ti, d)
        t = self._pair(G.t, G.t, G.t)
        tt = None
        if G.tt is not None:
            tt = self._pair(G.t[:, None], G.tt, G.t[None, :])
            tt = 0.5 * (tt + tt.T)
        return Blocks(ii, ti, t, tt)


def cholesky(A, what="covariance"):
    """Lower Cholesky factor with jitter escalation (from 1e-10 of the mean
    diagonal, by factors of 10)."""
    L, info = torch.linalg.cholesky_ex(A)
    if not bool(info):
        return L
    scale = A.detach().diagonal().abs().mean().clamp_min(1e-300)
    eye = torch.eye(A.shape[0], dtype=A.dtype, device=A.device)
    for k in range(_MAX_JITTER_STEPS):
        L, info = torch.linalg.cholesky_ex(A + scale * 10.0 ** (k - 10) * eye)
        if not bool(info):
            return L
    raise NumericalError(
        f"The {what} of the inducing points is not positive definite even "
        "with jitter; check for duplicated inducing points, non-finite "
        "parameters or a learning rate that is too large.")


def gram_from_factor(V):
    """``G = V V^T / P`` from the lower triangle of ``V``."""
    V = torch.tril(V)
    return V @ V.T / V.shape[0]


def gram_kl(V, L_K):
    """``KL(N(0, G) || N(0, K))`` with ``G = tril(V) tril(V)^T / P``, ``K = L_K L_K^T``.

    ``0.5 [tr(K^-1 G) - P - logdet(K^-1 G)]``, from the triangular factors.
    """
    V = torch.tril(V)
    P = V.shape[0]
    W = torch.linalg.solve_triangular(L_K, V, upper=False)
    trace = (W * W).sum() / P
    logdet_G = 2.0 * torch.log(V.diagonal().abs()).sum() - P * math.log(P)
    logdet_K = 2.0 * torch.log(L_K.diagonal()).sum()
    return 0.5 * (trace - P - logdet_G + logdet_K)


def _with_nugget(K):
    nugget = PRIOR_NUGGET * K.ii.diagonal().mean()

    def eye(n):
        return torch.eye(n, dtype=K.ii.dtype, device=K.ii.device)

    return Blocks(K.ii + nugget * eye(K.ii.shape[0]), K.ti,
                  None if K.t is None else K.t + nugget,
                  None if K.tt is None else K.tt + nugget * eye(K.tt.shape[0]))


def learned_layer(K, V, layer):
    """The Gram blocks of a learned layer and its KL term, from the layer's
    prior covariance blocks ``K`` and the factor ``V`` of ``G_ii``.

    ``K.ti`` may carry leading axes besides the batch (spatial locations of
    a convolutional layer: shape (B, ..., P), with ``K.t`` of shape
    (B, ...)); every leading entry is a point of its own.
    """
    K = _with_nugget(K)
    L_K = cholesky(K.ii, f"prior covariance of layer {layer + 1}")
    G_ii = gram_from_factor(V)
    kl = gram_kl(V, L_K)
    if K.ti is None:
        return Blocks(G_ii), kl
    shape = K.ti.shape
    K_ti = K.ti.reshape(-1, shape[-1])
    A = torch.cholesky_solve(K_ti.T, L_K).T  # K_ti K_ii^-1
    G_ti = A @ G_ii
    if K.tt is None:
        g_t = K.t.reshape(-1) - (A * K_ti).sum(1) + (G_ti * A).sum(1)
        return Blocks(G_ii, G_ti.reshape(shape), g_t.reshape(shape[:-1])), kl
    G_tt = K.tt - A @ K_ti.T + G_ti @ A.T
    G_tt = 0.5 * (G_tt + G_tt.T)
    return Blocks(G_ii, G_ti, G_tt.diagonal(), G_tt), kl


def propagate(layer_maps, G, factors):
    """Carry Gram blocks through the learned layers.

    Parameters
    ----------
    layer_maps : LayerKernel or list of callables
        The maps from each layer's Grams to the next layer's prior
        covariance, one per learned layer and one for the output; one
        ``LayerKernel`` serves every layer (fully connected layers).
    G : Blocks
        The input layer's blocks ``G_0`` (the prior of ``G_1`` is ``K(G_0)``).
    factors : list of tensors (P, P) or None
        One per learned layer; None fixes the layer at its prior (nu = inf).

    Returns
    -------
    K_top : Blocks
        The covariance of the output layer, ``K(G_L)``.
    kls : list of scalar tensors
        ``KL(N(0, G_l) || N(0, K(G_{l-1})))`` per layer (0 where fixed).
    grams : list of Blocks
        The Grams ``G_1 .. G_L``.
    """
    if callable(layer_maps):
        layer_maps = [layer_maps] * (len(factors) + 1)
    kls, grams = [], []
    for layer, V in enumerate(factors):
        K = layer_maps[layer](G)
        if V is None:
            G, kl = K, K.ii.new_zeros(())
        else:
            G, kl = learned_layer(K, V, layer)
        kls.append(kl)
        grams.append(G)
    return layer_maps[-1](G), kls, grams


# ------------------------------------------------------------ the top layer
def whitened_marginals(K, L_K, q_mean, q_sqrt):
    """Marginals of the variational output layer at a batch.

    The inducing outputs are ``u = L_K w`` with ``w ~ N(q_mean[:, c],
    S_c)``, ``S_c = tril(q_sqrt[c]) tril(q_sqrt[c])^T``.

    Returns
    -------
    mean, var : tensors of shape (B, C)
    """
    B = torch.linalg.solve_triangular(L_K, K.ti.T, upper=False).T  # K_ti L^-T
    mean = B @ q_mean
    prior_var = (K.t - (B * B).sum(1)).clamp_min(0.0)
    BS = torch.einsum("bp,cpq->cbq", B, torch.tril(q_sqrt))
    var = prior_var[:, None] + (BS * BS).sum(2).T
    return mean, var


def whitened_kl(q_mean, q_sqrt):
    """``sum_c KL(N(q_mean[:, c], S_c) || N(0, I))``."""
    S = torch.tril(q_sqrt)
    P = S.shape[1]
    logdet = 2.0 * torch.log(S.diagonal(dim1=1, dim2=2).abs()).sum()
    return 0.5 * ((S * S).sum() + (q_mean * q_mean).sum()
                  - S.shape[0] * P - logdet)


def gaussian_expected_loglik(y, mean, var, noise):
    """``sum E_q[log N(y | f, noise)]`` over the batch and outputs."""
    return (-0.5 * math.log(2 * math.pi) - 0.5 * torch.log(noise)
            - 0.5 * ((y - mean) ** 2 + var) / noise).sum()


def softmax_expected_loglik(labels, mean, var, n_samples, generator):
    """Monte Carlo ``sum E_q[log softmax(f)[label]]`` (reparametrised)."""
    eps = torch.randn((n_samples,) + tuple(mean.shape), dtype=mean.dtype,
                      device=mean.device, generator=generator)
    f = mean + var.sqrt() * eps
    logp = torch.log_softmax(f, dim=-1)
    picked = logp.gather(-1, labels.expand(n_samples, -1)[..., None])
    return picked.sum() / n_samples


def softmax_predictive(mean, var, n_samples, generator):
    """Monte Carlo average of the softmax of the output marginals.

    The same standard normal draws serve every row, so a row's estimate does
    not depend on the other rows or their order.
    """
    eps = torch.randn((n_samples, 1, mean.shape[1]), dtype=mean.dtype,
                      device=mean.device, generator=generator)
    return torch.softmax(mean + var.sqrt() * eps, dim=-1).mean(0)


def gaussian_log_marginal(K, y, noise):
    """``sum_c log N(y[:, c] | 0, K + noise I)`` (the exact top layer)."""
    n = K.shape[0]
    eye = torch.eye(n, dtype=K.dtype, device=K.device)
    L = cholesky(K + noise * eye, "output covariance")
    alpha = torch.cholesky_solve(y, L)
    return (-0.5 * (y * alpha).sum()
            - y.shape[1] * (torch.log(L.diagonal()).sum()
                            + 0.5 * n * math.log(2 * math.pi)))


def optimal_whitened_q(A, Y, noise, jitter=0.0):
    """The optimal whitened Gaussian q for a Gaussian likelihood.

    With ``u = L_K w`` and ``f_t = A^T w`` (``A = L_K^-1 K_it``), the
    posterior of ``w`` given targets ``Y`` with noise ``noise`` is
    ``N(m, S)``, ``S = (I + A A^T / noise)^-1``, ``m = S A Y / noise``.

    Parameters
    ----------
    A : tensor (P, n)
    Y : tensor (n, C)

    Returns
    -------
    q_mean : tensor (P, C)
    q_sqrt : tensor (C, P, P), the same lower factor of ``S`` for each output
    """
    P = A.shape[0]
    eye = torch.eye(P, dtype=A.dtype, device=A.device)
    precision = eye + A @ A.T / noise
    L = cholesky(precision, "variational precision")
    q_mean = torch.cholesky_solve(A @ Y / noise, L)
    # S = L^-T L^-1: its lower factor is the flipped factor of the reversed
    # matrix; computing chol(S) directly keeps it simple and exact enough.
    S = torch.cholesky_inverse(L)
    q_sqrt = cholesky(0.5 * (S + S.T), "variational covariance")
    return q_mean, q_sqrt.expand(Y.shape[1], P, P).clone()


# ------------------------------------------------------------------ the model
class DeepKernelMachine(torch.nn.Module):
    """Parameters and objective of a deep kernel machine.

    Parameters
    ----------
    layer_kernel : LayerKernel
    Z : tensor (P, d)
        Inducing inputs (the training inputs for a full machine).
    nus : list of float
        One per learned layer; ``inf`` fixes a layer at its prior.
    likelihood : {"gaussian", "softmax"}
    n_outputs : int
    exact : bool
        Exact Gaussian marginal likelihood over the training points (the
        inducing points, unless ``train_inputs`` is given); otherwise a
        whitened variational output layer.
    learn_inducing : bool
        Whether the inducing inputs are trained.
    noise_variance : float
        Initial noise variance (Gaussian likelihood).
    weight_variance, bias_variance : float
        Of the input layer ``G_0 = sw2 <x, y> / d + sb2``.
    n_mc_samples : int
        Monte Carlo samples of the softmax likelihood per step.
    train_inputs : tensor (n, d) or None
        With ``exact``: training inputs that differ from the inducing
        inputs.  The hidden layers' Grams then move only through the
        inducing points (``G_tt = K_tt - K_ti K_ii^-1 K_it + K_ti K_ii^-1
        G_ii K_ii^-1 K_it``, the whole block), and the exact marginal
        likelihood is taken over all training points.
    learn_output_scale : bool
        With the variational output layer: a learned amplitude ``s`` of the
        output functions, ``f = s L_K w`` (the top layer's covariance is
        ``s^2 K(G_L)``), starting at 1.
    """

    def __init__(self, layer_kernel, Z, nus, likelihood, n_outputs, exact,
                 learn_inducing, noise_variance, weight_variance,
                 bias_variance, n_mc_samples=8, train_inputs=None,
                 learn_output_scale=False):
        super().__init__()
        self.layer_kernel = layer_kernel
        self.nus = [float(nu) for nu in nus]
        self.likelihood = likelihood
        self.exact = exact
        self.weight_variance = weight_variance
        self.bias_variance = bias_variance
        self.n_mc_samples = n_mc_samples
        if learn_inducing:
            self.Z = torch.nn.Parameter(Z.clone())
        else:
            self.register_buffer("Z", Z.clone())
        self.register_buffer(
            "X_train", None if train_inputs is None else train_inputs.clone())
        P = Z.shape[0]
        eye = torch.eye(P, dtype=Z.dtype, device=Z.device)
        self.factors = torch.nn.ParameterList(
            [torch.nn.Parameter(eye.clone()) for nu in self.nus
             if math.isfinite(nu)])
        if likelihood == "gaussian":
            self.log_noise = torch.nn.Parameter(
                torch.tensor(math.log(noise_variance), dtype=Z.dtype,
                             device=Z.device))
        if not exact:
            self.q_mean = torch.nn.Parameter(Z.new_zeros(P, n_outputs))
            self.q_sqrt = torch.nn.Parameter(eye.expand(n_outputs, P, P).clone())
            if learn_output_scale:
                # the output functions are s f: the top layer's covariance
                # is s^2 K(G_L), a learned amplitude (inverse temperature)
                self.log_output_scale = torch.nn.Parameter(Z.new_zeros(()))

    # -------------------------------------------------------------- blocks
    def layer_factors(self):
        """One entry per layer: its factor ``V`` or None (fixed layer)."""
        it = iter(self.factors)
        return [next(it) if math.isfinite(nu) else None for nu in self.nus]

    def noise(self):
        return torch.exp(self.log_noise)

    def input_blocks(self, X=None, full=False):
        """The input layer's blocks ``G_0`` for a batch ``X``."""
        return input_blocks(self.Z, X, self.weight_variance,
                            self.bias_variance, full)

    def layer_maps(self):
        """One map per learned layer from the previous layer's Grams to its
        prior covariance, then the map to the output covariance."""
        return [self.layer_kernel] * (len(self.nus) + 1)

    def propagate(self, X=None, full=False):
        """Output covariance blocks, KL terms and Grams for a batch ``X``
        (``full``: with the whole batch block)."""
        return propagate(self.layer_maps(), self.input_blocks(X, full),
                         self.layer_factors())

    @torch.no_grad()
    def initialize(self, X_chunks, Y):
        """Start at the NNGP: each ``G_l`` at its prior ``K(G_{l-1})``, and the
        variational output layer at its optimum for a Gaussian likelihood
        with targets ``Y`` (for classification, scaled centred one-hot).

        ``X_chunks`` iterates over the training inputs in order (None: the
        training inputs are the inducing points).
        """
        P = self.Z.shape[0]
        it = iter(self.factors)
        G = self.input_blocks()
        for nu, layer_map in zip(self.nus, self.layer_maps()):
            K = layer_map(G)
            if math.isfinite(nu):
                K = _with_nugget(K)
                next(it).copy_(cholesky(K.ii, "prior covariance") * math.sqrt(P))
            G = K
        if self.exact:
            return
        noise = (self.noise() if self.likelihood == "gaussian"
                 else Y.new_tensor(INIT_CLASSIFIER_NOISE))
        K_top = self.propagate()[0]
        L_K = cholesky(K_top.ii, "output covariance")
        if X_chunks is None:
            A = torch.linalg.solve_triangular(L_K, K_top.ii, upper=False)
        else:
            A = torch.cat([torch.linalg.solve_triangular(
                L_K, self.propagate(X)[0].ti.T, upper=False)
                for X in X_chunks], dim=1)
        q_mean, q_sqrt = optimal_whitened_q(A, Y, noise)
        self.q_mean.copy_(q_mean)
        self.q_sqrt.copy_(q_sqrt)

    # ----------------------------------------------------------- objective
    def _top_marginals(self, X):
        K_top, kls, _ = self.propagate(X)
        L_K = cholesky(K_top.ii, "output covariance")
        if X is None:  # the batch is the inducing set itself
            K_top = Blocks(K_top.ii, K_top.ii, K_top.ii.diagonal())
        mean, var = whitened_marginals(K_top, L_K, self.q_mean, self.q_sqrt)
        if hasattr(self, "log_output_scale"):
            scale = torch.exp(self.log_output_scale)
            mean, var = scale * mean, scale * scale * var
        return mean, var, kls

    def objective(self, X, y, n_total, generator=None):
        """The objective on a batch, scaled to the whole training set.

        Parameters
        ----------
        X : tensor (B, d) or None
            None: the batch is the set of inducing points.
        y : tensor (B, C) of floats (Gaussian) or (B,) of int64 labels
        n_total : int
            Training set size (the expected log-likelihood is scaled by
            ``n_total / B``).

        Returns
        -------
        objective : scalar tensor
        terms : dict of floats
            ``data`` (scaled log-likelihood term), ``kl`` (sum of
            ``nu_l KL_l``), ``top_kl`` (variational output layer).
        """
        if self.exact:
            if self.X_train is None:
                K_top, kls, _ = self.propagate(None)
                K_train = K_top.ii
            else:
                K_top, kls, _ = self.propagate(self.X_train, full=True)
                K_train = K_top.tt
            data = gaussian_log_marginal(K_train, y, self.noise())
            top_kl = data.new_zeros(())
        else:
            mean, var, kls = self._top_marginals(X)
            if self.likelihood == "gaussian":
                ell = gaussian_expected_loglik(y, mean, var, self.noise())
            else:
                ell = softmax_expected_loglik(y, mean, var, self.n_mc_samples,
                                              generator)
            data = ell * (n_total / mean.shape[0])
            top_kl = whitened_kl(self.q_mean, self.q_sqrt)
        kl = sum((nu * k for nu, k in zip(self.nus, kls)
                  if math.isfinite(nu)), data.new_zeros(()))
        objective = data - kl - top_kl
        return objective, {"data": float(data.detach()),
                           "kl": float(kl.detach()),
                           "top_kl": float(top_kl.detach())}

    # ---------------------------------------------------------- prediction
    def latent_marginals(self, X, y_train=None):
        """Mean and variance of the output function at ``X``, (B, C) each.

        ``y_train`` (n, C): the training targets, needed by the exact output
        layer.
        """
        if not self.exact:
            mean, var, _ = self._top_marginals(X)
            return mean, var
        if self.X_train is None:
            K_top = self.propagate(X)[0]
            K_train, K_cross, k_test = K_top.ii, K_top.ti, K_top.t
        else:
            # the test points' covariance with the training points goes
            # through the inducing points too: propagate both together
            n = self.X_train.shape[0]
            K = self.propagate(torch.cat([self.X_train, X]), full=True)[0].tt
            K_train, K_cross, k_test = K[:n, :n], K[n:, :n], K[n:, n:].diagonal()
        n = K_train.shape[0]
        eye = torch.eye(n, dtype=K_train.dtype, device=K_train.device)
        L = cholesky(K_train + self.noise() * eye, "output covariance")
        mean = K_cross @ torch.cholesky_solve(y_train, L)
        W = torch.linalg.solve_triangular(L, K_cross.T, upper=False)
        var = (k_test - (W * W).sum(0)).clamp_min(0.0)
        return mean, var[:, None].expand_as(mean)
