"""The seam between the recursions (the math) and the engines: the math
imports no engine, the engines find kernels through the registry, and the
activations expose what the engines read."""
import ast
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import skinfinite
from skinfinite._core.backend import simulated_gpu
from skinfinite.activations import families
from skinfinite.activations.definitions import (Activation, Cos, Erf,
                                                LeakyReLU, ReLU, Sin, Tanh)
from skinfinite.activations.duals import piecewise_linear_dual
from skinfinite.engine import registry
from skinfinite.engine.driver import gram, resolve, select_backend
from skinfinite.recursions.fully_connected import FullyConnectedSpec
from skinfinite.recursions.residual import ResidualSpec

PACKAGE = Path(skinfinite.__file__).parent


def _imported_modules(path):
    """Absolute names of the skinfinite modules a file imports, wherever
    the import statement is (functions included)."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module
            found.add(name)
            # "from . import x" imports the submodule x
            found.update(f"{name}.{a.name}" for a in node.names)
    return {m for m in found if m.startswith("skinfinite")}


@pytest.mark.parametrize("path", sorted((PACKAGE / "recursions").glob("*.py")),
                         ids=lambda p: p.name)
def test_recursions_import_only_activations_and_core(path):
    allowed = ("skinfinite.recursions", "skinfinite.activations",
               "skinfinite._core")
    bad = {m for m in _imported_modules(path)
           if not (m in allowed or m.startswith(tuple(a + "." for a in allowed)))
           and m != "skinfinite"}
    assert not bad, f"{path.name} imports {sorted(bad)}"


def test_the_import_scan_sees_relative_and_nested_imports():
    # the check above must be able to fail
    pkg = PACKAGE / "recursions" / "fully_connected.py"
    found = _imported_modules(pkg)
    assert "skinfinite.activations.definitions" in found
    assert "skinfinite.recursions.path" in found
    engine_kernels = _imported_modules(PACKAGE / "engine" / "cpu"
                                       / "fully_connected.py")
    assert "skinfinite.engine.registry" in engine_kernels
    assert "skinfinite.recursions.fully_connected" in engine_kernels


@pytest.mark.parametrize("path", sorted((PACKAGE / "engine" / "cuda")
                                        .glob("*.py")), ids=lambda p: p.name)
def test_cuda_kernels_do_not_import_the_cpu_driver(path):
    # the CUDA driver and kernels sit beside the CPU driver, not above it
    assert "skinfinite.engine.driver" not in _imported_modules(path)


def test_registered_architectures():
    fc = registry.architecture(FullyConnectedSpec(2, ReLU(), 2.0, 0.1))
    res = registry.architecture(ResidualSpec(2, ReLU(), 1.0, 0.1))
    assert fc.record is FullyConnectedSpec and res.record is ResidualSpec
    assert fc.cuda_module == "skinfinite.engine.cuda.fully_connected"
    assert res.resolve is not None and fc.resolve is None
    spec = FullyConnectedSpec(2, LeakyReLU(0.2), 1.5, 0.1, standard=True)
    assert fc.kernel_arguments(spec, spec.activation.parameter) == (
        0.2, 1.5, 0.1, 1.0)


def test_an_unregistered_record_names_the_registered_ones():
    @dataclass(frozen=True)
    class Unknown:
        activation: Activation = ReLU()

    with pytest.raises(TypeError, match="FullyConnectedSpec"):
        registry.architecture(Unknown())
    with pytest.raises(TypeError, match="No kernels are registered"):
        gram(np.ones((2, 2)), None, Unknown())
    # work with a driver of its own runs on the CPU
    assert not registry.has_cuda_kernels(Unknown())
    assert select_backend("cpu", Unknown(), np.ones((2, 2))).name == "cpu"


def test_a_registered_architecture_runs_through_the_driver(rng):
    # a record of its own type, with the fully connected kernels, gives the
    # fully connected Grams; a record's base type is found too
    @dataclass(frozen=True)
    class Plain(FullyConnectedSpec):
        pass

    @dataclass(frozen=True)
    class Registered(FullyConnectedSpec):
        pass

    fc = registry.architecture(FullyConnectedSpec(1, ReLU(), 1.0, 0.0))
    registry.register(Registered, cpu_kernels=fc.cpu_kernels,
                      kernel_arguments=fc.kernel_arguments)
    try:
        X = rng.normal(size=(5, 3))
        ref = gram(X, None, FullyConnectedSpec(2, Erf(), 1.5, 0.1))
        for spec in (Plain(2, Erf(), 1.5, 0.1), Registered(2, Erf(), 1.5, 0.1)):
            out = gram(X, None, spec)
            np.testing.assert_array_equal(out["ntk"], ref["ntk"])
        assert registry.architecture(Plain(1, ReLU(), 1.0, 0.0)) is fc
        # no CUDA kernels registered: the GPU is not offered
        assert not registry.has_cuda_kernels(Registered(1, ReLU(), 1.0, 0.0))
        assert registry.has_cuda_kernels(Plain(1, ReLU(), 1.0, 0.0))
        with simulated_gpu():
            assert select_backend("gpu", Plain(1, ReLU(), 1.0, 0.0),
                                  X).name == "gpu"
            with pytest.raises(NotImplementedError,
                               match="no GPU kernels for Registered"):
                select_backend("gpu", Registered(1, ReLU(), 1.0, 0.0), X)
    finally:
        registry._ARCHITECTURES.pop(Registered)


def test_resolve_fixes_the_flow_steps_only_at_infinite_depth(rng):
    X = rng.normal(size=(6, 3))
    finite = ResidualSpec(3, ReLU(), 1.0, 0.1, (1 / 3,) * 3)
    assert resolve(finite, X, None) is finite
    flow = resolve(ResidualSpec(np.inf, ReLU(), 1.0, 0.1, tolerance=1e-6),
                   X, None)
    n = len(flow.step_sizes)
    assert n >= 2 and flow.step_sizes == (1.0 / n,) * n
    fc = FullyConnectedSpec(2, ReLU(), 2.0, 0.1)
    assert resolve(fc, X, None) is fc


@pytest.mark.parametrize("act, family", [
    (ReLU(), families.PiecewiseLinear(0.0)),
    (LeakyReLU(0.2), families.PiecewiseLinear(0.2)),
    (Erf(), families.Erf(0.0)),
    (Sin(), families.Trig(0.0)),
    (Cos(), families.Trig(1.0)),
    (Tanh(), families.Series(0.0)),
])
def test_activation_exposes_what_the_engines_read(act, family):
    assert act.family == family and type(act.family) is type(family)
    assert act.parameter == family.param
    assert isinstance(act.parameter, float)
    assert families.kernel_parameter(act) == family
    assert callable(act.scalar_dual) and callable(act.scalar_partials)
    for name in ("family", "parameter", "scalar_dual", "scalar_partials"):
        with pytest.raises(AttributeError):
            setattr(act, name, None)


def test_activation_outside_the_families_has_no_family():
    class Custom(ReLU):
        _scalar_dual = staticmethod(piecewise_linear_dual.py_func)

    act = Custom()
    assert act.family is None
    assert families.kernel_parameter(act) == 0.0
    assert act.scalar_dual is piecewise_linear_dual.py_func
