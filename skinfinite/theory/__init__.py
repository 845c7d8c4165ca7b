"""Theory of deep networks at initialisation: criticality (edge of chaos,
critical variances) and the infinite-depth limit of the kernels."""
from . import criticality, depth_limit

__all__ = ["criticality", "depth_limit"]
