"""Shared machinery of every layer: configuration, backends, validation,
input normalisation and the one tiler."""
