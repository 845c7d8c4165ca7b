"""
NTK regression: an infinite ensemble of trained networks
========================================================

:class:`~skinfinite.models.NTKRegressor` predicts what an infinitely large
ensemble of infinitely wide networks, each trained by gradient flow on the
squared loss from its own random initialisation, would predict on average.
It also gives the spread of the ensemble: the standard deviation of the
trained networks' outputs over random initialisations.

This example fits a noisy one-dimensional function and shows

* the ensemble mean and a two-standard-deviation band after training to
  convergence, and at a few finite training times, where the networks have
  only fitted the directions of largest NTK eigenvalue;
* beside it, the posterior of :class:`~skinfinite.models.NNGPRegressor`, the
  exact Bayesian treatment of the same infinitely wide network.

A one-dimensional input is concatenated with a constant feature, so that the
inputs do not all lie on a single line through the origin (the kernels only
see inner products).
"""

import matplotlib.pyplot as plt
import numpy as np

import skinfinite
from skinfinite.models import NNGPRegressor, NTKRegressor

skinfinite.set_config(show_progress=False)

# %%
# Data
# ----
# Fifteen noisy samples of a smooth function on [-3, 3]; predictions are made
# on a wider interval to see how the models extrapolate.

rng = np.random.default_rng(0)
x_train = np.sort(rng.uniform(-3, 3, 15))
y_train = np.sin(1.5 * x_train) + 0.1 * rng.standard_normal(x_train.size)
x_test = np.linspace(-5, 5, 400)


def features(x):
    return np.column_stack([x, np.ones_like(x)])


X_train, X_test = features(x_train), features(x_test)

network = dict(depth=3, activation="relu", weight_variance=2.0,
               bias_variance=0.1)

# %%
# NTK ensemble at several training times
# --------------------------------------
# ``training_time=None`` is the end of training; the mean then interpolates
# the data (up to the small ridge ``alpha``). At finite times the ensemble
# has fitted the large-eigenvalue directions of the NTK first: the mean is
# smoother and the spread, which starts at the prior NNGP standard deviation,
# has not shrunk yet near the data.

times = [0.03, 0.3, 3.0, None]
ntk_predictions = {}
for t in times:
    model = NTKRegressor(**network, alpha=1e-6, training_time=t)
    model.fit(X_train, y_train)
    ntk_predictions[t] = model.predict(X_test, return_std=True)

# %%
# NNGP posterior
# --------------
# The Bayesian network: a Gaussian-process posterior with the NNGP prior and
# observation noise variance ``alpha``.

gp = NNGPRegressor(**network, alpha=0.01).fit(X_train, y_train)
gp_mean, gp_std = gp.predict(X_test, return_std=True)
gp_samples = gp.sample_y(X_test, n_samples=3, random_state=1)

# %%
# Side by side
# ------------
# Left: the NTK ensemble, with its two-standard-deviation band at the
# earliest time and at the end of training. Right: the NNGP posterior mean,
# band and three posterior samples.

fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
ax = axes[0]
colours = plt.cm.viridis(np.linspace(0.15, 0.85, len(times)))
for t, colour in zip(times, colours):
    mean, std = ntk_predictions[t]
    label = "t = infinity" if t is None else f"t = {t:g}"
    ax.plot(x_test, mean, color=colour, label=label)
    if t is None or t == times[0]:
        ax.fill_between(x_test, mean - 2 * std, mean + 2 * std, color=colour,
                        alpha=0.2, linewidth=0)
ax.scatter(x_train, y_train, color="k", zorder=3, s=15, label="training data")
ax.set_title("NTKRegressor: ensemble mean and 2 std")
ax.set_xlabel("x")
ax.set_ylabel("y")
ax.legend(loc="lower left", fontsize=8)

ax = axes[1]
ax.plot(x_test, gp_mean, color="C3", label="posterior mean")
ax.fill_between(x_test, gp_mean - 2 * gp_std, gp_mean + 2 * gp_std,
                color="C3", alpha=0.2, linewidth=0)
ax.plot(x_test, gp_samples, color="C3", alpha=0.5, linewidth=0.8)
ax.scatter(x_train, y_train, color="k", zorder=3, s=15, label="training data")
ax.set_title("NNGPRegressor: posterior mean, 2 std, samples")
ax.set_xlabel("x")
ax.legend(loc="lower left", fontsize=8)
ax.set_ylim(-3, 3)
fig.tight_layout()
plt.show()

# %%
# The log marginal likelihood of the NNGP model can be used to compare
# architectures without a validation set:

for depth in (1, 3, 10):
    params = dict(network, depth=depth)
    lml = NNGPRegressor(**params, alpha=0.01).fit(
        X_train, y_train).log_marginal_likelihood()
    print(f"depth {depth:2d}: log marginal likelihood {lml:8.3f}")
