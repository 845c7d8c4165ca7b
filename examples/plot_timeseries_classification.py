"""
Time-series classification with signature kernels
=================================================

:class:`~skinfinite.models.SignatureKernelClassifier` is a support vector
machine whose kernel compares whole paths: the signature kernel
(:class:`~skinfinite.kernels.SignatureKernel`), here with an RBF static
kernel on the points of the time-augmented, channel-standardised paths.
Paths may have different lengths.

Two multivariate datasets of the UEA archive ship with skinfinite
(Bagnall et al., 2018; Dau et al., 2019): BasicMotions (6 channels, length
100, 4 activities) and JapaneseVowels (12 channels, lengths 7 to 29, 9
speakers).  Hyperparameters are chosen by cross-validation on the training
split only; the test split is scored once.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import ConfusionMatrixDisplay

import skinfinite
from skinfinite.datasets import load_basic_motions, load_japanese_vowels
from skinfinite.models import SignatureKernelClassifier

skinfinite.set_config(show_progress=False)

# %%
# BasicMotions: one recording of each activity
# --------------------------------------------
# Each series holds a 3-D accelerometer and a 3-D gyroscope of a smart watch,
# 10 s at 10 Hz.

motions = load_basic_motions()
print(motions.X_train.shape, motions.classes)

fig, axes = plt.subplots(1, 4, figsize=(12, 2.6), sharey=True, layout="constrained")
for ax, label in zip(axes, motions.classes):
    series = motions.X_train[np.flatnonzero(motions.y_train == label)[0]]
    ax.plot(np.arange(100) / 10, series, linewidth=0.8)
    ax.set_title(label)
    ax.set_xlabel("time (s)")
axes[0].set_ylabel("sensor value")

# %%
# Model selection at fit, on the training split
# ---------------------------------------------
# With its defaults the classifier chooses the kernel (signature,
# convolutional, RBF on the whole series, or signature + RBF), its scales,
# the path options and ``C`` by 5-fold cross-validation on the training
# paths, within ``time_budget`` seconds (here 30).

model = SignatureKernelClassifier(time_budget=30)
model.fit(motions.X_train, motions.y_train)
print("chosen:", model.best_params_, f"CV accuracy {model.best_score_:.3f}")
print(f"BasicMotions test accuracy: {model.score(motions.X_test, motions.y_test):.3f}")

# %%
# JapaneseVowels: ragged series
# -----------------------------
# The series are a list of ``(length_i, 12)`` arrays.  Every parameter
# fixed (``kernel=None`` builds the signature kernel from them): the
# setting a grid search chose by 5-fold cross-validation on the training
# split (``asv_bench/peers/timeseries_accuracy.py``); the fit is one SVC.

vowels = load_japanese_vowels()
print("lengths from", min(map(len, vowels.X_train)), "to", max(map(len, vowels.X_train)))
classifier = SignatureKernelClassifier(
    kernel=None, time_augment=True, basepoint=False, lead_lag=False, dyadic_order=0,
    max_length=None, path_scale=0.1, length_scale=0.5, C=100.0)
classifier.fit(vowels.X_train, vowels.y_train)
print(f"JapaneseVowels test accuracy: {classifier.score(vowels.X_test, vowels.y_test):.3f}")

fig, ax = plt.subplots(figsize=(4.5, 4), layout="constrained")
ConfusionMatrixDisplay.from_predictions(vowels.y_test, classifier.predict(vowels.X_test),
                                        ax=ax, colorbar=False)
ax.set_title("JapaneseVowels, test split")
plt.show()
