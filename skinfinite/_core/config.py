"""Global configuration: memory budget for tiles, progress bars, device.

The settings are process-wide, so threads started inside a
:func:`config_context` (joblib's threading backend, for one) see them.
Worker processes (joblib's loky and multiprocessing backends) do not share
memory, so every skinfinite estimator and kernel carries the settings that
differ from the defaults when it is pickled, and applies them while it
computes in the process that unpickles it: a ``GridSearchCV(n_jobs=2)`` run
inside ``config_context(...)`` fits every candidate under those settings.
Settings changed explicitly in the unpickling process take precedence over
carried ones.
"""
import copy
import functools
import re
import threading
from contextlib import contextmanager

_DEFAULTS = {
    "memory_budget": 256 * 2**20,
    "show_progress": "auto",
    "progress_min_work": 2e8,
    "device": "auto",
    "gpu_backend": None,
    "gram_memory": "auto",
}
# settings changed from the defaults, shared by every thread of the process
_explicit = {}
_lock = threading.RLock()
# per thread: settings carried by the unpickled objects now computing, and
# the ``verbose`` of the innermost estimator method running
_local = threading.local()

_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


def _parse_bytes(value, key="memory_budget"):
    if isinstance(value, str):
        match = re.fullmatch(r"\s*([0-9.]+)\s*([a-zA-Z]*)\s*", value)
        if not match or match.group(2).upper() not in _UNITS:
            raise ValueError(
                f"{key}={value!r} is not understood; use a number of "
                "bytes or a string such as '512MB' or '2GiB'.")
        value = float(match.group(1)) * _UNITS[match.group(2).upper()]
    if not (isinstance(value, (int, float)) and value > 0):
        raise ValueError(f"{key} must be positive, got {value!r}.")
    return int(value)


def _check(key, value):
    if key not in _DEFAULTS:
        raise ValueError(f"Unknown configuration key {key!r}; "
                         f"valid keys are {sorted(_DEFAULTS)}.")
    if key == "memory_budget":
        return _parse_bytes(value)
    if key == "gram_memory":
        return value if value == "auto" else _parse_bytes(value, key)
    if key == "show_progress" and value not in (True, False, "auto"):
        raise ValueError("show_progress must be True, False or 'auto'.")
    if key == "device" and value not in ("auto", "cpu", "gpu"):
        raise ValueError("device must be 'auto', 'cpu' or 'gpu', got "
                         f"{value!r}.")
    if key == "gpu_backend" and value is not None and (
            getattr(value, "name", None) != "gpu"
            or not hasattr(value, "xp")):
        raise ValueError("gpu_backend must be None or a GPU backend such as "
                         "skinfinite._core.backend.SimulatedGPUBackend(), "
                         f"got {value!r}.")
    return value


def _carried():
    return getattr(_local, "carried", {})


def get_config():
    """Return a copy of the current configuration.

    Returns
    -------
    config : dict
        ``memory_budget`` (bytes of scratch memory one tile may use),
        ``show_progress`` (True, False or "auto": progress bars of kernels
        called directly; estimators follow their ``verbose`` parameter),
        ``progress_min_work`` (pair-layer updates above which "auto" shows a
        progress bar) and ``device`` ("auto", "cpu" or "gpu": where kernels
        and estimators with ``device="auto"`` compute; "auto" uses a GPU
        when CuPy sees one), ``gpu_backend`` (None: ``device="gpu"``
        runs on CuPy; tests set a
        :class:`~skinfinite._core.backend.SimulatedGPUBackend`, which runs
        the GPU code in numba's CUDA simulator) and ``gram_memory`` (bytes
        the exact Cholesky solve of the estimators may hold, the n x n kernel
        matrix and its factor, when ``solver="auto"`` chooses; "auto" is half
        of the physical memory).
    """
    with _lock:
        return {**_DEFAULTS, **_carried(), **_explicit}


def set_config(**options):
    """Set configuration options for the whole process.

    Every thread sees the new values; worker processes receive them with
    the skinfinite estimators and kernels pickled to them.

    Examples
    --------
    >>> import skinfinite
    >>> skinfinite.set_config(show_progress=False)
    >>> skinfinite.get_config()["show_progress"]
    False
    >>> skinfinite.set_config(show_progress="auto")
    """
    checked = {key: _check(key, value) for key, value in options.items()}
    with _lock:
        _explicit.update(checked)
        for key, value in checked.items():
            if value == _DEFAULTS[key]:
                _explicit.pop(key)


@contextmanager
def config_context(**options):
    """Temporarily change the configuration of the process.

    The settings reach threads started inside the context and, through
    pickling, the skinfinite estimators and kernels sent to worker
    processes (``GridSearchCV(..., n_jobs=2)`` with any joblib backend).
    Because they are process-wide, threads that enter different contexts
    at the same time see each other's settings.

    Parameters
    ----------
    **options
        ``memory_budget`` (int bytes or a string such as ``"512MB"``),
        ``show_progress`` (True, False or "auto"), ``progress_min_work``,
        ``device`` ("auto", "cpu" or "gpu"), ``gpu_backend`` (None or a
        GPU backend object, see :func:`get_config`), ``gram_memory``
        ("auto", int bytes or a string such as ``"8GB"``).

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
    checked = {key: _check(key, value) for key, value in options.items()}
    with _lock:
        old = dict(_explicit)
        set_config(**checked)
    try:
        yield
    finally:
        with _lock:
            _explicit.clear()
            _explicit.update(old)


# ---------------------------------------------------------------------------
# settings that travel with pickled objects

_STATE_KEY = "_skinfinite_config"
# the public methods that compute, run under the carried settings
_COMPUTING = ("fit", "predict", "predict_proba", "predict_log_proba",
              "decision_function", "score", "transform", "fit_predict",
              "fit_transform", "sample_y", "log_marginal_likelihood",
              "layer_grams", "__call__", "diag")


def estimator_verbose():
    """The ``verbose`` of the innermost estimator method running in this
    thread, or None outside estimators."""
    return getattr(_local, "verbose", None)


def _run_computing(method, self, args, kwargs):
    carried = self.__dict__.get(_STATE_KEY)
    # estimators without a ``verbose`` are silent; kernels defer to the
    # estimator calling them, or to ``show_progress``
    verbose = getattr(self, "verbose", 0 if hasattr(self, "fit") else None)
    if not carried and verbose is None:
        return method(self, *args, **kwargs)
    old = (_carried(), estimator_verbose())
    if carried:
        _local.carried = {**old[0], **carried}
    if verbose is not None:
        _local.verbose = verbose
    try:
        return method(self, *args, **kwargs)
    finally:
        _local.carried, _local.verbose = old


def _computing(method):
    # the wrapper refers to module-level names only, so that cloudpickle can
    # send subclasses defined in __main__ to worker processes by value
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        return _run_computing(method, self, args, kwargs)
    run._carries_config = True
    return run


def _wrap(cls, name):
    attr = cls.__dict__.get(name)
    if attr is None:
        return
    if callable(attr) and not isinstance(attr, type):
        if not getattr(attr, "_carries_config", False):
            setattr(cls, name, _computing(attr))
    elif callable(getattr(attr, "fn", None)):
        # a descriptor such as scikit-learn's available_if wraps the method
        if not getattr(attr.fn, "_carries_config", False):
            attr.fn = _computing(attr.fn)


class CarriesConfig:
    """Mixin: carry the non-default settings through pickling.

    Pickling stores the settings that differ from the defaults at that
    moment (with those the object already carried); after unpickling, the
    computing methods (``fit``, ``predict``, ``__call__``, ...) run under
    them, below any setting changed explicitly in the new process.  The
    methods also expose the estimator's ``verbose`` to the progress
    reporters while they run.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in _COMPUTING:
            _wrap(cls, name)

    def __getstate__(self):
        parent = getattr(super(), "__getstate__", None)
        state = parent() if parent is not None else self.__dict__
        state = dict(state if state is not None else self.__dict__)
        with _lock:
            carried = {**state.get(_STATE_KEY, {}), **_carried(), **_explicit}
        state.pop(_STATE_KEY, None)
        if carried:
            state[_STATE_KEY] = carried
        return state

    # copies stay in this process: they carry only what the original did
    def __copy__(self):
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    def __deepcopy__(self, memo):
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            new.__dict__[key] = copy.deepcopy(value, memo)
        return new

    def __setstate__(self, state):
        parent = getattr(super(), "__setstate__", None)
        if parent is not None:
            parent(state)
        else:
            self.__dict__.update(state)
