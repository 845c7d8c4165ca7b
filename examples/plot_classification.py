"""
Classification: NTKClassifier and an SVM with an NTK kernel
===========================================================

Two ways to classify with the neural tangent kernel:

* :class:`~skinfinite.models.NTKClassifier`: the infinite ensemble of wide
  networks trained by gradient flow on the squared loss, with the classes
  encoded as one-hot targets; the predicted class has the largest output;
* ``sklearn.svm.SVC(kernel=NTK(...))``: a support vector machine whose kernel
  is the NTK, which uses the hinge loss instead.

Both are shown on the two-moons data set, with their decision boundaries and
test accuracies, for a shallow and a deeper ReLU network.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_moons
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

import skinfinite
from skinfinite.kernels import NTK
from skinfinite.models import NTKClassifier

skinfinite.set_config(show_progress=False)

X, y = make_moons(n_samples=300, noise=0.25, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=100,
                                                    random_state=0)

# %%
# Models
# ------
# Both models standardise the two features first. ``alpha``, the ridge of
# the NTK classifier, and ``C``, the penalty of the SVM, were picked by a
# quick 5-fold cross-validation on the same data.

models = {}
for depth in (1, 4):
    models[f"NTKClassifier, depth {depth}"] = make_pipeline(
        StandardScaler(), NTKClassifier(depth=depth, alpha=0.1))
    models[f"SVC(kernel=NTK), depth {depth}"] = make_pipeline(
        StandardScaler(), SVC(kernel=NTK(depth=depth), C=10.0))

# %%
# Decision boundaries
# -------------------
# The background shows, for the NTK classifier, the probability of the
# second class from ``predict_proba`` and, for the SVM, the sign and size of
# its decision function; the black line is the decision boundary of each.

xx, yy = np.meshgrid(np.linspace(-2.0, 3.0, 120), np.linspace(-1.5, 2.0, 100))
grid = np.column_stack([xx.ravel(), yy.ravel()])

fig, axes = plt.subplots(2, 2, figsize=(10, 7.5), sharex=True, sharey=True)
for ax, (name, model) in zip(axes.T.ravel(), models.items()):
    model.fit(X_train, y_train)
    accuracy = model.score(X_test, y_test)
    if hasattr(model, "predict_proba"):
        values = model.predict_proba(grid)[:, 1].reshape(xx.shape)
        ax.contourf(xx, yy, values, levels=np.linspace(0, 1, 11),
                    cmap="RdBu_r", alpha=0.7)
        ax.contour(xx, yy, values, levels=[0.5], colors="k")
    else:
        values = model.decision_function(grid).reshape(xx.shape)
        limit = np.abs(values).max()
        ax.contourf(xx, yy, values, levels=np.linspace(-limit, limit, 11),
                    cmap="RdBu_r", alpha=0.7)
        ax.contour(xx, yy, values, levels=[0.0], colors="k")
    ax.scatter(X_train[:, 0], X_train[:, 1], c=y_train, cmap="RdBu_r",
               edgecolors="k", s=18)
    ax.scatter(X_test[:, 0], X_test[:, 1], c=y_test, cmap="RdBu_r",
               edgecolors="k", s=18, marker="^", alpha=0.6)
    ax.set_title(f"{name}\ntest accuracy {accuracy:.2f}", fontsize=10)
    print(f"{name:32s} test accuracy {accuracy:.3f}")
fig.tight_layout()
plt.show()

# %%
# Both approaches are linear models in the feature space of the NTK and
# differ only in their loss: squared loss on one-hot targets for the NTK
# classifier, hinge loss for the SVM. The NTK classifier has no
# support-vector sparsity, but it handles any number of classes at once and
# gives a score for every class through ``decision_function`` and
# ``predict_proba``; its ``temperature`` sets how sharp the probabilities
# are.
