"""Machinery shared by the infinite-width estimators."""
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .._validation import check_variance
from ..kernels._engine import diagonal, gram
from .._validation import check_choice
from ..kernels.fully_connected import make_spec
from ..kernels.resnet import make_residual_spec

ARCHITECTURES = ("fully_connected", "resnet")


class _NetworkParamsMixin:
    """Network description shared by every estimator on fully-connected kernels."""

    def _spec(self):
        architecture = check_choice(self.architecture, "architecture",
                                    ARCHITECTURES)
        parametrization = getattr(self, "parametrization", "ntk")
        if architecture == "resnet":
            if parametrization != "ntk":
                raise ValueError("The resnet architecture is defined in the "
                                 "NTK parametrisation only.")
            return make_residual_spec(self.depth, self.activation,
                                      self.weight_variance,
                                      self.bias_variance)
        return make_spec(self.depth, self.activation, self.weight_variance,
                         self.bias_variance, parametrization)

    def _grams(self, X, Y, want):
        return gram(X, Y, self.spec_, want)

    def _diag(self, X, want):
        return diagonal(X, self.spec_, want)


class _KernelRegressorBase(_NetworkParamsMixin, BaseEstimator):
    """Validation, target normalisation and prediction plumbing."""

    def _validate_fit(self, X, y):
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True,
                             ensure_min_samples=2, dtype=np.float64)
        self.spec_ = self._spec()
        check_variance(self.alpha, "alpha", allow_zero=True)
        y = np.asarray(y, dtype=np.float64)
        self._y_1d = y.ndim == 1
        y2 = y.reshape(len(y), -1)
        if self.normalize_y:
            self._y_mean = y2.mean(axis=0)
            self._y_scale = y2.std(axis=0)
            self._y_scale[self._y_scale == 0] = 1.0
        else:
            self._y_mean = np.zeros(y2.shape[1])
            self._y_scale = np.ones(y2.shape[1])
        self.X_train_ = X
        return X, (y2 - self._y_mean) / self._y_scale

    def _validate_predict(self, X):
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype=np.float64)

    def _output_mean(self, mean):
        mean = mean * self._y_scale + self._y_mean
        return mean.ravel() if self._y_1d else mean

    def _output_var(self, var):
        # var: (n,) variance of a unit-scale output; one column per target.
        var = np.clip(var, 0.0, None)[:, None] * self._y_scale ** 2
        return var[:, 0] if var.shape[1] == 1 else var

    def _output_cov(self, cov):
        cov = cov[:, :, None] * self._y_scale ** 2
        return cov[:, :, 0] if cov.shape[2] == 1 else cov

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


class _OneHotKernelClassifier(ClassifierMixin, _NetworkParamsMixin,
                              BaseEstimator):
    """Kernel regression on one-hot targets, wrapped as a classifier.

    Subclasses set ``_regressor`` and ``_regressor_params``.
    """

    _regressor = None
    _regressor_params = ()

    def fit(self, X, y):
        """Fit the kernel regression onto one-hot encoded classes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self
        """
        X, y = validate_data(self, X, y, ensure_min_samples=2,
                             dtype=np.float64)
        check_classification_targets(y)
        check_variance(self.temperature, "temperature")
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError("The classifier needs samples of at least 2 "
                             f"classes in the data, but the data contain only "
                             f"one class: {self.classes_[0]!r}.")
        k = len(self.classes_)
        Y = np.eye(k)[encoder.transform(y)] - 1.0 / k
        params = {p: getattr(self, p) for p in self._regressor_params}
        self.regressor_ = self._regressor(**params).fit(X, Y)
        return self

    def _centred_scores(self, X):
        # Outputs for the centred targets: comparing them directly keeps the
        # ranking of outputs far smaller than 1 / n_classes (deep kernels
        # give such outputs), which adding the centre back would round away.
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.regressor_.predict(X)

    def _scores(self, X):
        return self._centred_scores(X) + 1.0 / len(self.classes_)

    def decision_function(self, X):
        """Regression outputs for each class (estimates of class indicators).

        Returns
        -------
        scores : ndarray of shape (n_samples,) for two classes (positive
            favours ``classes_[1]``), else (n_samples, n_classes).
        """
        scores = self._centred_scores(X)
        if scores.shape[1] == 2:
            return scores[:, 1] - scores[:, 0]
        return scores + 1.0 / len(self.classes_)

    def predict(self, X):
        """Class with the largest regression output."""
        scores = self._centred_scores(X)
        return self.classes_[np.argmax(scores, axis=1)]

    def predict_proba(self, X):
        """Class probabilities ``softmax(f / temperature)``.

        ``f`` are the regression outputs onto one-hot targets; their
        differences rank the classes as ``decision_function`` does.  Tune
        ``temperature`` (e.g. by log-loss) for calibrated probabilities.
        """
        z = self._centred_scores(X) / self.temperature
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)
