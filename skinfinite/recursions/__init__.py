"""The math of each architecture's kernel recursion, one module per architecture."""
