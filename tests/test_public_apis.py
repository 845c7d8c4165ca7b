"""The package uses only the public APIs of other libraries.

A private module or name of another package (a leading underscore, or one
of the internal packages below) can change or vanish in any release.  Every
module of ``skinfinite`` is parsed and three things are rejected:

* ``import a._b`` and ``from a._b import c`` (a private module),
* ``from a import _b`` (a private name),
* ``a._b`` where ``a`` names an imported module of another package,
* ``obj._b`` where the package itself never defines ``_b`` (assigns,
  defines, or names it in a string): a private attribute of another
  library's object, such as a GPyTorch strategy's.

Nothing is exempt; an exemption would need a comment here saying why.
"""
import ast
from pathlib import Path

import pytest

import skinfinite

ROOT = Path(skinfinite.__file__).resolve().parent
SOURCES = sorted(ROOT.rglob("*.py"))

# Internal packages whose names carry no underscore: the libraries document
# their public interfaces elsewhere (numba.types, numba.extending,
# numba.typed; scikit-learn's utilities are public only where listed in its
# API reference).
INTERNAL = ("numba.core", "numba.np", "numba.cpython", "numba.misc",
            "numba.cuda.cudadrv", "numba.cuda.simulator",
            "sklearn.utils.fixes", "sklearn.externals",
            "torch.testing._internal")


def _private(part):
    return part.startswith("_") and not (part.startswith("__")
                                         and part.endswith("__"))


def _external(module):
    return module.partition(".")[0] != "skinfinite"


def _internal(module):
    return any(module == m or module.startswith(m + ".") for m in INTERNAL)


def _bad_module(module):
    return _internal(module) or any(_private(p) for p in module.split("."))


def private_uses(source, filename="<source>"):
    """``(line, text)`` of every use of another package's private API."""
    tree = ast.parse(source, filename)
    found = []
    modules = {}     # local name -> external module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if not _external(alias.name):
                    continue
                if _bad_module(alias.name):
                    found.append((node.lineno, f"import {alias.name}"))
                local = alias.asname or alias.name.partition(".")[0]
                modules[local] = alias.asname and alias.name or local
        elif isinstance(node, ast.ImportFrom):
            if node.level or not node.module or not _external(node.module):
                continue
            if _bad_module(node.module):
                found.append((node.lineno, f"from {node.module} import ..."))
            for alias in node.names:
                if _private(alias.name):
                    found.append((node.lineno,
                                  f"from {node.module} import {alias.name}"))
                elif alias.name != "*":
                    modules[alias.asname or alias.name] = \
                        f"{node.module}.{alias.name}"
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        chain, value = [node.attr], node.value
        while isinstance(value, ast.Attribute):
            chain.append(value.attr)
            value = value.value
        if isinstance(value, ast.Name) and value.id in modules:
            dotted = ".".join([modules[value.id]] + chain[::-1])
            if _bad_module(dotted):
                found.append((node.lineno, dotted))
    return sorted(set(found))


def _own_names(trees):
    """Every identifier the package binds or names itself."""
    names = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                 ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Name) and not isinstance(node.ctx,
                                                                ast.Load):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and not isinstance(
                    node.ctx, ast.Load):
                names.add(node.attr)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, ast.alias):
                names.add(node.asname or node.name.rpartition(".")[2])
            elif isinstance(node, ast.Constant) and isinstance(
                    node.value, str) and node.value.isidentifier():
                names.add(node.value)      # getattr(obj, "_name")
    return names


def foreign_private_attributes(sources):
    """``(file, line, attribute)`` of private attributes read but never
    defined by the given sources (``{filename: text}``)."""
    trees = {name: ast.parse(text, name) for name, text in sources.items()}
    own = _own_names(trees.values())
    return sorted(
        (name, node.lineno, node.attr)
        for name, tree in trees.items() for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load)
        and _private(node.attr) and node.attr not in own)


def test_no_private_attribute_of_another_library():
    sources = {p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8")
               for p in SOURCES}
    found = foreign_private_attributes(sources)
    assert not found, "\n".join(f"{f}:{line}: .{attr}"
                                for f, line, attr in found)


def test_the_attribute_check_finds_foreign_attributes():
    own = "class A:\n    def __init__(self):\n        self._mine = 1\n"
    use = "def f(a, strategy):\n    return a._mine, strategy._distribution\n"
    assert foreign_private_attributes({"a.py": own, "b.py": use}) == [
        ("b.py", 2, "_distribution")]


@pytest.mark.parametrize("path", SOURCES,
                         ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_private_api_of_another_package(path):
    uses = private_uses(path.read_text(encoding="utf-8"), str(path))
    assert not uses, "\n".join(f"{path.name}:{line}: {text}"
                               for line, text in uses)


@pytest.mark.parametrize("source", [
    "from scipy.integrate._ivp import rk",
    "import scipy.integrate._ivp.rk as rk",
    "from sklearn.utils import _param_validation",
    "from sklearn.utils._available_if import available_if",
    "from numba.core import types",
    "import gpytorch\nq = gpytorch.variational._VariationalStrategy",
    "import numpy as np\nx = np._NoValue",
    "from numba import cuda\ncuda.simulator.kernel",
])
def test_the_check_finds_private_uses(source):
    assert private_uses(source)


@pytest.mark.parametrize("source", [
    "from sklearn.utils.metaestimators import available_if",
    "from numba import types",
    "from ._core import config",
    "from .._core.validation import check_choice",
    "import numpy as np\nx = np.__version__",
    "self._private = 1\nobj._own_attribute",
])
def test_the_check_accepts_public_uses(source):
    assert not private_uses(source)
