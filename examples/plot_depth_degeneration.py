r"""
Deep kernels forget their inputs
================================

The NNGP kernel of a deep network is obtained by applying the same layer map
over and over (see the user guide on kernels). Repeated application drives
the correlation

.. math::

    \rho^{\ell}(x, y) = \frac{K^{\ell}(x, y)}{\sqrt{K^{\ell}(x, x)\, K^{\ell}(y, y)}}

of any two inputs towards a fixed point that does not depend on the inputs.
Very deep kernels therefore see all inputs as alike, which limits their use
for learning.

This example computes the correlation of two fixed inputs with
:class:`skinfinite.kernels.NNGP` for increasing depth:

* ReLU at the critical weight variance ``weight_variance=2`` (which, without
  biases, keeps the scale ``K(x, x)`` constant with depth), without and with
  biases: the
  correlation creeps up to 1; the gap ``1 - rho`` closes only like a power
  of the depth;
* erf with ``weight_variance=2`` and ``bias_variance=0.1``: the correlation
  converges geometrically to a fixed point below 1.

In both cases the limit is the same whatever the angle between the inputs,
which is what the second figure shows.
"""

import matplotlib.pyplot as plt
import numpy as np

from skinfinite.kernels import NNGP


def correlation(kernel, cos_angle, d=2):
    """Correlation under ``kernel`` of two inputs of norm sqrt(d)."""
    angle = np.arccos(cos_angle)
    X = np.sqrt(d) * np.array([[1.0, 0.0], [np.cos(angle), np.sin(angle)]])
    K = kernel(X)
    return K[0, 1] / np.sqrt(K[0, 0] * K[1, 1])


depths = np.unique(np.round(np.logspace(0, 2.3, 30)).astype(int))

settings = {
    "ReLU, bias variance 0": dict(activation="relu", weight_variance=2.0,
                                  bias_variance=0.0),
    "ReLU, bias variance 0.1": dict(activation="relu", weight_variance=2.0,
                                    bias_variance=0.1),
    "erf, bias variance 0.1": dict(activation="erf", weight_variance=2.0,
                                   bias_variance=0.1),
}

# %%
# Correlation of two orthogonal inputs
# ------------------------------------

fig, ax = plt.subplots(figsize=(6.5, 4.2))
for (label, params), marker in zip(settings.items(), "os^"):
    rho = [correlation(NNGP(depth=int(L), **params), 0.0) for L in depths]
    ax.plot(depths, rho, marker=marker, markersize=3, label=label)
ax.axhline(1.0, color="k", linewidth=0.8, linestyle=":")
ax.set_xscale("log")
ax.set_xlabel("depth (hidden layers)")
ax.set_ylabel("NNGP correlation of two orthogonal inputs")
ax.set_title("Correlation against depth")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %%
# Different starting angles, same limit
# -------------------------------------
# Depth 0 shows the correlation of the inputs themselves.

fig, ax = plt.subplots(figsize=(6.5, 4.2))
for (label, params), colour in zip(list(settings.items())[1:], ["C1", "C2"]):
    for k, cos_angle in enumerate([-0.9, -0.5, 0.0, 0.5, 0.9]):
        rho = [correlation(NNGP(depth=int(L), **params), cos_angle)
               for L in depths]
        ax.plot(np.concatenate([[0], depths]), [cos_angle] + rho,
                color=colour, alpha=0.9, linewidth=1,
                label=label if k == 0 else None)
ax.set_xscale("symlog", linthresh=1)
ax.set_xlabel("depth (hidden layers)")
ax.set_ylabel("NNGP correlation")
ax.set_title("Inputs at various angles")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %%
# The consequence for learning: with a very deep ReLU kernel every entry of
# the Gram matrix of normalised inputs is almost the same, the matrix is
# nearly of rank one, and the kernel machine has little left to work with.
# Moderate depths (a handful of layers) are usually the useful range; the
# marginal likelihood of :class:`skinfinite.models.NNGPRegressor` or
# cross-validation can choose among them.
