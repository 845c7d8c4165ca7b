r"""
Order, chaos and criticality
============================

A deep fully-connected network with weight variance :math:`C_W` and bias
variance :math:`C_b` maps the variance of an input's pre-activations through
:math:`K' = C_b + C_W \langle \phi(z)^2 \rangle_K` until it settles at a
fixed point :math:`K^\star`. Two nearby inputs then drift apart or together
at the rate

.. math::

    \chi_\perp = C_W \langle \phi'(z)^2 \rangle_{K^\star}

per layer: for :math:`\chi_\perp < 1` (the *ordered* phase) every pair of
inputs becomes perfectly correlated, for :math:`\chi_\perp > 1` (the
*chaotic* phase) all pairs reach the same correlation below one. Either way
the deep kernel forgets its inputs exponentially fast with depth. On the
boundary between the two, the *edge of chaos*, it forgets only like a power
of the depth, and at the *critical point* (for tanh :math:`C_b = 0`,
:math:`C_W = 1`) the variance shrinks to zero so slowly that correlations
hardly move at all.

This example draws the phase diagram of tanh with
:func:`skinfinite.theory.criticality.edge_of_chaos` and follows the correlation of
two inputs through up to 200 layers of :class:`skinfinite.kernels.NNGP`.
"""

import matplotlib.pyplot as plt
import numpy as np

from skinfinite.theory.criticality import (chi_perpendicular, critical_variances,
                                    edge_of_chaos, fixed_point)
from skinfinite.kernels import NNGP

# %%
# Phase diagram of tanh
# ---------------------
# For each bias variance, :func:`~skinfinite.theory.criticality.edge_of_chaos`
# gives the weight variance at which :math:`\chi_\perp = 1` at the fixed
# point. The critical point of
# :func:`~skinfinite.theory.criticality.critical_variances` is the end of that line.

# the line leaves (0, 1) steeply: sample small bias variances densely
bias_variances = np.concatenate([[0.0], np.geomspace(1e-4, 0.5, 60)])
edge = edge_of_chaos("tanh", bias_variances)
cb_star, cw_star, k_star, _ = critical_variances("tanh")

edge_cw = float(edge_of_chaos("tanh", 0.1))
settings = {
    "tanh, critical (0, 1)": dict(activation="tanh", bias_variance=cb_star,
                                  weight_variance=cw_star),
    f"tanh, edge (0.1, {edge_cw:.2f})": dict(activation="tanh",
                                             bias_variance=0.1,
                                             weight_variance=edge_cw),
    "tanh, ordered (0.1, 1.2)": dict(activation="tanh", bias_variance=0.1,
                                     weight_variance=1.2),
    "tanh, chaotic (0.1, 3)": dict(activation="tanh", bias_variance=0.1,
                                   weight_variance=3.0),
    "ReLU, critical (0, 2)": dict(activation="relu", bias_variance=0.0,
                                  weight_variance=2.0),
}
markers = ["*", "D", "o", "s", "^"]

fig, ax = plt.subplots(figsize=(6.0, 4.2))
ax.fill_between(bias_variances, 0, edge, color="C0", alpha=0.15)
ax.fill_between(bias_variances, edge, 4, color="C3", alpha=0.15)
ax.plot(bias_variances, edge, color="k", label="edge of chaos")
for (label, params), marker in zip(list(settings.items())[:4], markers):
    ax.plot(params["bias_variance"], params["weight_variance"], marker,
            markersize=12 if marker == "*" else 7, label=label,
            clip_on=False)
ax.text(0.14, 0.45, "ordered\n" r"$\chi_\perp < 1$", ha="center")
ax.text(0.3, 3.4, "chaotic\n" r"$\chi_\perp > 1$", ha="center")
ax.set_xlim(0, 0.5)
ax.set_ylim(0, 4)
ax.set_xlabel(r"bias variance $C_b$")
ax.set_ylabel(r"weight variance $C_W$")
ax.set_title("tanh networks at infinite width")
ax.legend(fontsize=8, loc="lower right")
fig.tight_layout()
plt.show()

# %%
# The settings off the line sit where their names say:

for label, params in list(settings.items())[1:4]:
    cb, cw = params["bias_variance"], params["weight_variance"]
    k = fixed_point("tanh", cw, cb)
    print(f"{label:28s} K* = {k:.3f}   chi_perp = "
          f"{chi_perpendicular('tanh', k, cw):.3f}")

# %%
# Correlations through depth
# --------------------------
# Three inputs of norm :math:`\sqrt{d}`: the first makes correlations 0.2
# and 0.8 with the other two. The left panel follows the first pair; the
# right panel shows how much the kernel still tells the two pairs apart.

depths = np.unique(np.round(np.logspace(0, np.log10(200), 14)).astype(int))
angles = np.arccos([0.2, 0.8])
X = np.sqrt(2) * np.array([[1.0, 0.0]]
                          + [[np.cos(a), np.sin(a)] for a in angles])


def correlations(params, depth):
    """NNGP correlations of input 0 with inputs 1 and 2."""
    K = NNGP(depth=int(depth), **params)(X)
    return K[0, 1:] / np.sqrt(K[0, 0] * np.diag(K)[1:])


fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
for (label, params), marker in zip(settings.items(), markers):
    rho = np.array([correlations(params, L) for L in depths])
    left.plot(depths, rho[:, 0], marker=marker, markersize=4, label=label)
    right.plot(depths, np.abs(rho[:, 1] - rho[:, 0]), marker=marker,
               markersize=4, label=label)
left.set_xscale("log")
left.set_ylabel("correlation of the first pair")
right.set_xscale("log")
right.set_yscale("log")
right.set_ylim(1e-8, 2)
right.set_ylabel("difference of the two pairs' correlations")
for ax in (left, right):
    ax.set_xlabel("depth (hidden layers)")
left.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %%
# Off the edge (ordered and chaotic tanh) the two pairs become
# indistinguishable exponentially fast: by a hundred layers the kernel is
# the same for every pair of inputs. On the edge of chaos, with tanh and
# biases or with ReLU at :math:`C_W = 2`, the difference decays only like a
# power of the depth. At the tanh critical point the variance itself decays
# to :math:`K^\star = 0`, where tanh is nearly linear, and the correlations
# barely change over 200 layers.
