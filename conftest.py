"""Skip what an installation's optional dependencies cannot run.

* A module of the package whose import fails for want of a third-party
  module (torch, gpytorch, CuPy...) is not collected for doctests.
* A doctest example that fails on such a missing module is skipped.

Both are decided by trying, so nothing here lists modules by hand.  Every
other import error still fails.  With ``SKINFINITE_RECORD_SKIPS=FILE`` the
node ids of everything skipped or left uncollected this way are appended to
FILE, one a line, so that ``python -m pytest @FILE`` runs exactly them again
once the dependencies are installed (``.ci/run`` does).

Without CuPy there is no GPU to test on: the GPU engine's tests then run its
CUDA kernels in numba's CUDA simulator, which must be chosen before numba is
first imported.
"""
import doctest
import importlib
import importlib.util
import os
from pathlib import Path

import pytest

if importlib.util.find_spec("cupy") is None:
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

_ROOT = Path(__file__).resolve().parent
_PACKAGE = "skinfinite"
_SKIP_LOG = os.environ.get("SKINFINITE_RECORD_SKIPS")


def _record_skip(nodeid):
    if _SKIP_LOG:
        with open(_SKIP_LOG, "a", encoding="utf-8") as handle:
            handle.write(nodeid + "\n")


def missing_dependency(exc):
    """The name of the missing third-party module behind an ImportError
    (following the chain of causes), or None if it is something else."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ModuleNotFoundError) and exc.name:
            root = exc.name.partition(".")[0]
            if root != _PACKAGE and importlib.util.find_spec(root) is None:
                return exc.name
            # numba.cuda and other submodules of installed packages
            if root != _PACKAGE and root != exc.name:
                try:
                    found = importlib.util.find_spec(exc.name) is not None
                except ImportError:
                    found = False
                if not found:
                    return exc.name
        exc = exc.__cause__ or exc.__context__
    return None


def _module_name(path):
    parts = list(path.relative_to(_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def pytest_ignore_collect(collection_path, config):
    path = Path(collection_path).resolve()
    if path.suffix != ".py":
        return None
    try:
        relative = path.relative_to(_ROOT / _PACKAGE)
    except ValueError:
        return None
    if relative.name == "__main__.py":
        return None
    try:
        importlib.import_module(_module_name(path))
    except ImportError as exc:
        # anything but a missing optional module is reported by collection
        if missing_dependency(exc) is None:
            return None
        _record_skip(path.relative_to(_ROOT).as_posix())
        return True
    return None


def pytest_collectreport(report):
    if report.skipped:          # a test module's importorskip
        _record_skip(report.nodeid)


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, "wasxfail"):
        _record_skip(report.nodeid)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    try:
        return (yield)
    except doctest.UnexpectedException as failure:
        name = missing_dependency(failure.exc_info[1])
        if name is None:
            raise
        pytest.skip(f"doctest needs {name}, which is not installed")
