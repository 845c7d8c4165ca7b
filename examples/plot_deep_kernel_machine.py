"""
Deep kernel machines learn their Gram matrices
==============================================

An NNGP's Gram matrices are fixed by the architecture: every hidden layer's
covariance follows from the inputs alone.  A deep kernel machine
(:class:`skinfinite.models.DeepKernelMachineRegressor`) keeps the
infinite-width limit but lets each layer's Gram ``G_l`` move away from the
NNGP's, at a cost ``nu * KL(N(0, G_l) || N(0, K(G_{l-1})))``; ``nu=np.inf``
is the NNGP itself.

The target here depends on the first of six features only.  The NNGP
weighs all features alike; the deep kernel machine learns Grams in which
points with similar first feature are more alike, which we see by sorting
the points by that feature.  (Needs the ``gp`` extra: ``pip install ".[gp]"``.)
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import skinfinite
from skinfinite.models import DeepKernelMachineRegressor

skinfinite.set_config(show_progress=False)

rng = np.random.default_rng(0)
X = rng.normal(size=(300, 6))
y = np.sin(2.0 * X[:, 0]) + 0.1 * rng.normal(size=300)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5,
                                                    random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

params = dict(depth=3, max_iter=150, device="cpu", random_state=0)
nngp = DeepKernelMachineRegressor(nu=np.inf, **params).fit(X_train, y_train)
dkm = DeepKernelMachineRegressor(nu=10.0, **params).fit(X_train, y_train)
for name, model in (("NNGP (nu=inf)", nngp), ("deep kernel machine", dkm)):
    rmse = np.sqrt(np.mean((model.predict(X_test) - y_test) ** 2))
    print(f"{name:20s} test RMSE {rmse:.3f}, "
          f"noise variance {model.alpha_:.3f}")

# %%
# The Grams of the training points, sorted by the first feature, as
# correlation matrices: ``G_1``, ``G_2`` and the output covariance
# ``K(G_2)``.

order = np.argsort(X_train[:, 0])
titles = ["$G_1$", "$G_2$", "output $K(G_2)$"]


def correlation(G):
    d = np.sqrt(np.diag(G))
    return G / np.outer(d, d)


fig, axes = plt.subplots(2, 3, figsize=(10, 6.5), layout="constrained")
for row, (name, model) in enumerate((("NNGP", nngp), ("DKM", dkm))):
    for ax, G, title in zip(axes[row], model.layer_grams(), titles):
        image = ax.imshow(correlation(G)[np.ix_(order, order)], vmin=-0.2,
                          vmax=1.0, cmap="viridis")
        ax.set_title(f"{name}: {title}", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
fig.colorbar(image, ax=axes, shrink=0.6, label="correlation")

# %%
# The training loss (negative objective per sample) of the deep kernel
# machine; the NNGP learns only its noise variance.

fig, ax = plt.subplots(figsize=(5, 3.2), layout="constrained")
ax.plot(dkm.loss_curve_, label="deep kernel machine, nu=10")
ax.plot(nngp.loss_curve_, label="NNGP (nu=inf)")
ax.set_xlabel("epoch")
ax.set_ylabel("loss")
ax.legend()
plt.show()
