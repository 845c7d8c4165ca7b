"""The package's layers: imports point down, and nothing imports itself back.

The contracts are in ``.importlinter`` at the repository root (run them with
``lint-imports``).  Here they run through import-linter's command, and the
two properties they stand for are checked again on grimp's import graph, so
that a test can show each check failing on an import added to the graph.
"""
import subprocess
import sys
from pathlib import Path

import pytest

grimp = pytest.importorskip("grimp")
api = pytest.importorskip("importlinter.api")

REPOSITORY = Path(__file__).resolve().parents[1]
CONFIG = REPOSITORY / ".importlinter"
PACKAGE = "skinfinite"

# the command installed as lint-imports, run by this interpreter (a virtual
# environment's scripts directory need not be on PATH)
LINT_IMPORTS = (
    "import sys\n"
    "from importlib.metadata import entry_points\n"
    "(command,) = entry_points(group='console_scripts', name='lint-imports')\n"
    "sys.exit(command.load()())\n")


def _contracts():
    return {c["id"]: c for c in api.read_configuration(str(CONFIG))
            ["contracts_options"]}


def _ignored(contract):
    pairs = []
    for line in contract.get("ignore_imports", []):
        importer, _, imported = (s.strip() for s in line.partition("->"))
        pairs.append((importer, imported))
    return pairs


def _graph(without=()):
    graph = grimp.build_graph(PACKAGE, cache_dir=None)
    for importer, imported in without:
        if graph.direct_import_exists(importer=importer, imported=imported):
            graph.remove_import(importer=importer, imported=imported)
    return graph


def _layers(contract):
    # "a | b" is one layer of independent siblings
    return [{part.strip() for part in layer.split("|")}
            for layer in contract["layers"]]


def upward_imports(graph, contract):
    """``(lower, higher)`` layer pairs that an import chain joins upwards."""
    found = graph.find_illegal_dependencies_for_layers(
        layers=_layers(contract), containers=set(contract["containers"]))
    return sorted((d.importer, d.imported) for d in found)


def _strongly_connected(edges):
    """Tarjan's components of a graph given as {node: set of nodes}."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def cycles(graph):
    """Cycles of imports among the children of every package (a child
    package stands for all its modules), and among single modules."""
    found = []
    packages = sorted(m for m in graph.modules if graph.find_children(m))
    for package in packages:
        owner = {}
        for child in graph.find_children(package):
            owner[child] = child
            owner.update(dict.fromkeys(graph.find_descendants(child), child))
        edges = {child: set() for child in set(owner.values())}
        for module, child in owner.items():
            for imported in graph.find_modules_directly_imported_by(module):
                target = owner.get(imported)
                if target is not None and target != child:
                    edges[child].add(target)
        found += [c for c in _strongly_connected(edges) if len(c) > 1]
    modules = {m: set(graph.find_modules_directly_imported_by(m))
               for m in graph.modules}
    found += [c for c in _strongly_connected(modules) if len(c) > 1]
    return found


def test_contracts_are_kept():
    done = subprocess.run(
        [sys.executable, "-c", LINT_IMPORTS, "--no-cache", str(CONFIG)],
        cwd=REPOSITORY, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout, done.stdout


def test_imports_point_down_the_layers():
    contract = _contracts()["layers"]
    assert upward_imports(_graph(_ignored(contract)), contract) == []


def test_an_upward_import_breaks_the_layers():
    contract = _contracts()["layers"]
    graph = _graph(_ignored(contract))
    graph.add_import(importer=f"{PACKAGE}._core.config",
                     imported=f"{PACKAGE}.kernels.fully_connected")
    graph.add_import(importer=f"{PACKAGE}.activations.duals",
                     imported=f"{PACKAGE}.linalg.cholesky")
    found = upward_imports(graph, contract)
    assert (f"{PACKAGE}._core", f"{PACKAGE}.kernels") in found
    # members of one layer are independent
    assert (f"{PACKAGE}.activations", f"{PACKAGE}.linalg") in found


def test_no_import_cycles():
    graph = _graph(_ignored(_contracts()["acyclic"]))
    assert cycles(graph) == []


def _in_a_cycle(found, *names):
    return any({f"{PACKAGE}.{name}" for name in names} <= set(c)
               for c in found)


def test_a_cycle_is_found():
    graph = _graph(_ignored(_contracts()["acyclic"]))
    graph.add_import(importer=f"{PACKAGE}.linalg.cholesky",
                     imported=f"{PACKAGE}.models.gp")
    assert _in_a_cycle(cycles(graph), "linalg", "models")
    graph = _graph(_ignored(_contracts()["acyclic"]))
    graph.add_import(importer=f"{PACKAGE}.kernels._base",
                     imported=f"{PACKAGE}.kernels.fully_connected")
    assert _in_a_cycle(cycles(graph), "kernels._base",
                       "kernels.fully_connected")


def test_every_subpackage_has_a_layer():
    # a new top-level module or package must be placed in the layers
    contract = _contracts()["layers"]
    named = set().union(*_layers(contract))
    graph = _graph()
    children = {m.rpartition(".")[2] for m in graph.find_children(PACKAGE)}
    assert children <= named, sorted(children - named)
