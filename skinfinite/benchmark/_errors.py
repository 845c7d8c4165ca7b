"""The benchmark's own error."""

__all__ = ["BenchmarkError"]


class BenchmarkError(ValueError):
    """A benchmark was asked for something it cannot do (bad name or input)."""
