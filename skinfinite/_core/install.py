"""How to install the optional dependencies: one wording for every message.

skinfinite is installed from its source checkout, so the extras are named
as ``".[gp]"`` (the checkout's root), never as a package on an index.
"""

__all__ = ["TORCH_CPU_COMMAND", "install_hint"]

#: PyTorch's CPU-only build: about 200 MB, against several GB for the
#: default CUDA build that ``pip install torch`` resolves to on Linux.
TORCH_CPU_COMMAND = ("pip install torch --index-url "
                     "https://download.pytorch.org/whl/cpu")

_EXTRAS = {
    "gp": ("torch and gpytorch", True),
    "gpu": ("CuPy and numba-cuda for CUDA 12", False),
    "distributed": ("dask[array] and distributed", False),
}


def install_hint(extra):
    """The install advice for an optional extra, as a clause of a message.

    Parameters
    ----------
    extra : {"gp", "gpu", "distributed"}

    Returns
    -------
    hint : str

    Examples
    --------
    >>> from skinfinite._core.install import install_hint
    >>> print(install_hint("gpu"))
    install the "gpu" extra (CuPy and numba-cuda for CUDA 12) from the skinfinite source checkout with `pip install ".[gpu]"`
    """
    packages, torch = _EXTRAS[extra]
    hint = (f'install the "{extra}" extra ({packages}) from the skinfinite '
            f'source checkout with `pip install ".[{extra}]"`')
    if torch:
        hint += (f"; for PyTorch's CPU build (no multi-GB CUDA libraries) "
                 f"run `{TORCH_CPU_COMMAND}` first")
    return hint
