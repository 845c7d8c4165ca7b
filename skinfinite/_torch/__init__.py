"""Torch code, imported only when torch is installed: the torch duals of the
activations, the GPyTorch bridge and the deep kernel machine core."""
