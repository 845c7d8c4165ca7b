"""Linear algebra of the estimators: Cholesky with jitter, conjugate gradients,
Nyström/FALKON solvers and inducing points."""
from .cholesky import NumericalError, cholesky_with_jitter
from .inducing import InducingPoints

__all__ = ["NumericalError", "cholesky_with_jitter", "InducingPoints"]
