"""Dask itself, the client of a cluster and the checks of its workers."""
import numpy as np

from .._core.install import install_hint
from .._core.version import __version__

#: scheduler addresses whose workers were checked (one ``client.run`` each)
_CHECKED = set()


def require_dask():
    """``dask.array``, or an ImportError that says how to install it."""
    try:
        import dask.array as da
    except ImportError as exc:
        raise ImportError(
            "Dask inputs need Dask: " + install_hint("distributed") + "."
        ) from exc
    return da


def current_client():
    """The Dask ``distributed`` client that computes now, or None.

    None when ``distributed`` is not installed or no client is active (Dask
    then runs on its local threads).
    """
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:
        return None


def _probe():
    # Nested, so that cloudpickle sends it by value: a worker without
    # skinfinite can still run it and say so.
    def version():
        import importlib
        # the whole package, as the worker's tasks will need it (by name:
        # this runs on the worker, it is not an import of this module)
        try:
            return importlib.import_module("skinfinite").__version__
        except ImportError:
            return None
    return version


def check_workers(client=None):
    """Check once per scheduler that every worker runs this skinfinite.

    Parameters
    ----------
    client : distributed.Client, optional
        Defaults to the active client; nothing is checked without one.

    Raises
    ------
    RuntimeError
        When the cluster has no worker, or a worker cannot import
        skinfinite, or imports another version; the message names the
        workers and what to install.
    """
    client = current_client() if client is None else client
    if client is None:
        return
    address = client.scheduler.address
    if address in _CHECKED:
        return
    versions = client.run(_probe(), on_error="return")
    if not versions:
        raise RuntimeError(
            f"The Dask cluster at {address} has no workers: start some "
            f"(`dask worker {address}`) or wait for them "
            "(`client.wait_for_workers(n)`).")
    missing = sorted(w for w, v in versions.items()
                     if v is None or isinstance(v, BaseException))
    other = sorted(f"{w} ({v})" for w, v in versions.items()
                   if isinstance(v, str) and v != __version__)
    if missing:
        raise RuntimeError(
            f"{len(missing)} Dask worker(s) cannot import skinfinite: "
            f"{', '.join(missing)}. Install skinfinite "
            f"{__version__} (the client's version) in the "
            "workers' Python environment and restart them.")
    if other:
        raise RuntimeError(
            f"Dask workers run another skinfinite version than the client's "
            f"{__version__}: {', '.join(other)}. Install the same "
            "version on the client and every worker, then restart the "
            "workers.")
    _CHECKED.add(address)


def connect(address, timeout=10):
    """A ``distributed.Client`` of the scheduler at ``address``, checked.

    Parameters
    ----------
    address : str
        The scheduler's address, such as ``"tcp://10.0.0.1:8786"``.
    timeout : float, default=10
        Seconds to wait for the scheduler.

    Returns
    -------
    client : distributed.Client
        Also the default client from now on.

    Raises
    ------
    ConnectionError
        When no scheduler answers at ``address`` in time.
    RuntimeError
        When its workers lack skinfinite (see :func:`check_workers`).
    """
    require_dask()
    try:
        from distributed import Client
    except ImportError as exc:
        raise ImportError("A Dask cluster needs the distributed package: "
                          + install_hint("distributed") + ".") from exc
    try:
        client = Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise ConnectionError(
            f"No Dask scheduler answered at {address!r} within {timeout} s "
            f"({type(exc).__name__}). Check the address and port (the "
            "scheduler prints it when it starts: `dask scheduler`), that the "
            "scheduler runs, and that no firewall blocks the port.") from exc
    try:
        check_workers(client)
    except RuntimeError:
        client.close()
        raise
    return client


def check_chunks(X, name="X"):
    """A dask array with known row chunks and one chunk over other axes."""
    da = require_dask()
    if hasattr(X, "to_dask_array"):   # dask dataframe or series
        X = X.to_dask_array(lengths=True)
    if not isinstance(X, da.Array):
        raise TypeError(f"{name} must be a dask array or dataframe, got "
                        f"{type(X).__name__}.")
    if any(np.isnan(c) for axis in X.chunks for c in axis):
        raise ValueError(
            f"{name} is a dask array with unknown chunk sizes (shape "
            f"{X.shape}), as boolean indexing or a dataframe's .values "
            f"leave it. Compute them first: `{name} = "
            f"{name}.compute_chunk_sizes()`, or from a dataframe "
            "`df.to_dask_array(lengths=True)`.")
    if X.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension.")
    if X.ndim > 1 and any(len(c) > 1 for c in X.chunks[1:]):
        X = X.rechunk({axis: -1 for axis in range(1, X.ndim)})
    return X
