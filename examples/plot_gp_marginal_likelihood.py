"""
Fitting NTK variances by marginal likelihood, and grid search over depth
========================================================================

:class:`skinfinite.kernels.NTK` and :class:`skinfinite.kernels.NNGP` are
scikit-learn kernels with two continuous hyperparameters, the weight and bias
variances, and exact gradients with respect to their logarithms. This
example

1. fits the variances of an NTK, together with a noise level, by maximising
   the marginal likelihood of a ``GaussianProcessRegressor``, and draws the
   likelihood landscape around the optimum;
2. chooses the discrete architecture, depth and activation, by
   cross-validation with ``GridSearchCV`` over a ``Pipeline`` that ends in a
   ``KernelRidge`` with an NTK kernel.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import WhiteKernel
from sklearn.kernel_ridge import KernelRidge
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skinfinite
from skinfinite.kernels import NTK

skinfinite.set_config(show_progress=False)

# %%
# A toy regression problem
# ------------------------
# A smooth function of two inputs observed with Gaussian noise of standard
# deviation 0.1.

rng = np.random.default_rng(0)
X = rng.uniform(-2, 2, size=(200, 2))
y = (np.sin(2 * X[:, 0]) * np.cos(X[:, 1]) + 0.5 * X[:, 1]
     + 0.1 * rng.standard_normal(len(X)))
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=50,
                                                    random_state=0)
scaler = StandardScaler().fit(X_train)
X_train_s, X_test_s = scaler.transform(X_train), scaler.transform(X_test)

# ``normalize_y=True`` below divides the targets by their standard deviation,
# so the noise level to be found is 0.1**2 / var(y).
print(f"noise variance on the normalised scale: {0.01 / y_train.var():.4f}")

# %%
# Marginal likelihood
# -------------------
# The kernel is the NTK of a depth-3 network plus white noise. The optimiser
# of ``GaussianProcessRegressor`` uses the analytic gradients of the kernel
# with respect to ``log(weight_variance)`` and ``log(bias_variance)``.
#
# Two activations are compared. The NTK of a ReLU network is not smooth at
# ``x = y`` (its derivative dual jumps where the sign of a pre-activation
# changes), a little like a Laplace kernel; it can explain part of the noise
# as roughness of the function, and the fitted noise level comes out too
# small. The erf network has a smooth kernel and recovers the noise level
# well.

fitted = {}
for activation in ["relu", "erf"]:
    kernel = NTK(depth=3, activation=activation, weight_variance=2.0,
                 bias_variance=0.1) + WhiteKernel(noise_level=0.1)
    gpr = GaussianProcessRegressor(kernel=kernel, normalize_y=True,
                                   random_state=0)
    gpr.fit(X_train_s, y_train)
    fitted[activation] = gpr
    print(f"{activation}: {gpr.kernel_}")
    print(f"    log marginal likelihood {gpr.log_marginal_likelihood_value_:.2f}"
          f", test R^2 {gpr.score(X_test_s, y_test):.3f}")

# %%
# The landscape of the log marginal likelihood of the erf model over the two
# variances, with the noise level held at its fitted value.
# ``kernel_.theta`` holds the logarithms of the hyperparameters in the order
# of ``kernel_.hyperparameters``.

gpr = fitted["erf"]
names = [h.name for h in gpr.kernel_.hyperparameters]
print("hyperparameters:", names)
i_b = names.index("k1__bias_variance")
i_w = names.index("k1__weight_variance")
theta_opt = gpr.kernel_.theta.copy()

log_w = np.linspace(np.log(0.2), np.log(20.0), 15)
log_b = np.linspace(np.log(1e-4), np.log(100.0), 15)
lml = np.empty((len(log_b), len(log_w)))
for i, lb in enumerate(log_b):
    for j, lw in enumerate(log_w):
        theta = theta_opt.copy()
        theta[i_w], theta[i_b] = lw, lb
        lml[i, j] = gpr.log_marginal_likelihood(theta)

fig, ax = plt.subplots(figsize=(6.5, 4.5))
levels = np.unique(np.percentile(lml, np.linspace(10, 100, 20)))
cs = ax.contourf(np.exp(log_w), np.exp(log_b), lml, levels=levels,
                 cmap="viridis", extend="min")
fig.colorbar(cs, ax=ax, label="log marginal likelihood")
ax.plot(np.exp(theta_opt[i_w]), np.exp(theta_opt[i_b]), "r*", markersize=12,
        label="optimum found")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("weight_variance")
ax.set_ylabel("bias_variance")
ax.set_title("NTK(depth=3, erf) + WhiteKernel")
ax.legend(loc="lower left", fontsize=8)
fig.tight_layout()
plt.show()

# %%
# Grid search over the architecture
# ---------------------------------
# Depth and activation are discrete, so they are chosen by cross-validation.
# Nested parameter names reach the kernel inside the ``KernelRidge`` step of
# the pipeline.

pipeline = make_pipeline(StandardScaler(), KernelRidge(kernel=NTK()))
depths = [1, 2, 4, 8]
activations = ["relu", "erf", "abs"]
search = GridSearchCV(
    pipeline,
    param_grid={
        "kernelridge__kernel__depth": depths,
        "kernelridge__kernel__activation": activations,
        "kernelridge__alpha": [0.01, 0.1],
    },
    cv=5,
)
search.fit(X_train, y_train)
print("best parameters:", search.best_params_)
print(f"best CV R^2: {search.best_score_:.3f}")
print(f"test R^2 of the refitted best model: {search.score(X_test, y_test):.3f}")

# %%
# Cross-validated R^2 of each architecture, at its best ridge strength.

results = search.cv_results_
scores = np.full((len(activations), len(depths)), -np.inf)
for params, score in zip(results["params"], results["mean_test_score"]):
    i = activations.index(params["kernelridge__kernel__activation"])
    j = depths.index(params["kernelridge__kernel__depth"])
    scores[i, j] = max(scores[i, j], score)

fig, ax = plt.subplots(figsize=(6.5, 3.8))
image = ax.imshow(scores, cmap="magma", aspect="auto")
fig.colorbar(image, ax=ax, label="mean CV R$^2$")
threshold = 0.5 * (scores.min() + scores.max())
for i in range(len(activations)):
    for j in range(len(depths)):
        ax.text(j, i, f"{scores[i, j]:.3f}", ha="center", va="center",
                color="w" if scores[i, j] < threshold else "k", fontsize=9)
ax.set_xticks(range(len(depths)), [str(d) for d in depths])
ax.set_yticks(range(len(activations)), activations)
ax.set_xlabel("depth")
ax.set_title("KernelRidge(kernel=NTK(...)): 5-fold CV")
fig.tight_layout()
plt.show()
