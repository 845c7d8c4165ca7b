"""Global configuration: memory budget for tiles, progress bars, default dtype."""
import re
import threading
from contextlib import contextmanager

_DEFAULTS = {
    "memory_budget": 256 * 2**20,
    "show_progress": "auto",
    "progress_min_work": 2e8,
    "device": "auto",
}
_local = threading.local()

_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


def _parse_bytes(value):
    if isinstance(value, str):
        match = re.fullmatch(r"\s*([0-9.]+)\s*([a-zA-Z]*)\s*", value)
        if not match or match.group(2).upper() not in _UNITS:
            raise ValueError(
                f"memory_budget={value!r} is not understood; use a number of "
                "bytes or a string such as '512MB' or '2GiB'.")
        value = float(match.group(1)) * _UNITS[match.group(2).upper()]
    if not (isinstance(value, (int, float)) and value > 0):
        raise ValueError(f"memory_budget must be positive, got {value!r}.")
    return int(value)


def _check(key, value):
    if key not in _DEFAULTS:
        raise ValueError(f"Unknown configuration key {key!r}; "
                         f"valid keys are {sorted(_DEFAULTS)}.")
    if key == "memory_budget":
        return _parse_bytes(value)
    if key == "show_progress" and value not in (True, False, "auto"):
        raise ValueError("show_progress must be True, False or 'auto'.")
    if key == "device" and value not in ("auto", "cpu", "gpu"):
        raise ValueError("device must be 'auto', 'cpu' or 'gpu', got "
                         f"{value!r}.")
    return value


def _config():
    if not hasattr(_local, "config"):
        _local.config = dict(_DEFAULTS)
    return _local.config


def get_config():
    """Return a copy of the current configuration.

    Returns
    -------
    config : dict
        ``memory_budget`` (bytes of scratch memory one tile may use),
        ``show_progress`` (True, False or "auto"),
        ``progress_min_work`` (pair-layer updates above which "auto" shows a
        progress bar) and ``device`` ("auto", "cpu" or "gpu": where kernels
        and estimators with ``device="auto"`` compute; "auto" uses a GPU
        when CuPy sees one).
    """
    return dict(_config())


def set_config(**options):
    """Set configuration options globally (for this thread).

    Examples
    --------
    >>> import skinfinite
    >>> skinfinite.set_config(show_progress=False)
    >>> skinfinite.get_config()["show_progress"]
    False
    >>> skinfinite.set_config(show_progress="auto")
    """
    config = _config()
    checked = {key: _check(key, value) for key, value in options.items()}
    config.update(checked)


@contextmanager
def config_context(**options):
    """Temporarily change the configuration.

    Parameters
    ----------
    **options
        ``memory_budget`` (int bytes or a string such as ``"512MB"``),
        ``show_progress`` (True, False or "auto"), ``progress_min_work``,
        ``device`` ("auto", "cpu" or "gpu").

    Examples
    --------
    >>> import numpy as np, skinfinite
    >>> from skinfinite.kernels import NTK
    >>> X = np.random.default_rng(0).normal(size=(50, 3))
    >>> with skinfinite.config_context(memory_budget="1MB", show_progress=False):
    ...     T = NTK(depth=2)(X)
    >>> T.shape
    (50, 50)
    """
    old = get_config()
    set_config(**options)
    try:
        yield
    finally:
        _config().clear()
        _config().update(old)
