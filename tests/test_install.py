"""Install advice that works from a source checkout, said the same way
everywhere, and a test set-up that skips what is not installed."""
import configparser
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from skinfinite._core.install import TORCH_CPU_COMMAND, install_hint

ROOT = Path(__file__).resolve().parents[1]


def _extras():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return list(config["options.extras_require"])


def _text_files():
    for pattern in ("skinfinite/**/*.py", "docs/**/*.rst", "examples/*.py",
                    "README.md"):
        for path in ROOT.glob(pattern):
            if "generated" not in path.parts and "auto_examples" not in path.parts:
                yield path


def test_no_advice_to_install_from_an_index():
    # skinfinite is installed from its checkout: "skinfinite[gp]" fails
    offenders = [f"{path.relative_to(ROOT)}:{n}"
                 for path in _text_files()
                 for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if re.search(r"skinfinite\[", line)]
    assert offenders == []


def test_install_hint_names_the_checkout_and_the_cpu_build():
    hint = install_hint("gp")
    assert 'pip install ".[gp]"' in hint and TORCH_CPU_COMMAND in hint
    assert "download.pytorch.org/whl/cpu" in TORCH_CPU_COMMAND
    assert 'pip install ".[gpu]"' in install_hint("gpu")
    with pytest.raises(KeyError):
        install_hint("nonexistent")


def test_install_page_lists_every_extra_and_the_readme_commands():
    page = (ROOT / "docs" / "install.rst").read_text(encoding="utf-8")
    for extra in _extras():
        assert f"``{extra}``" in page, extra
    assert TORCH_CPU_COMMAND in page
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for command in ('pip install . && skinfinite benchmark',
                    'pip install ".[test]" && python -m pytest'):
        assert command in readme
    assert "python -m pytest\n" in page and "pytest tests" not in page
    assert TORCH_CPU_COMMAND in readme


@pytest.mark.parametrize("fit", [
    lambda X: __import__("skinfinite").models.GPRegressor(max_iter=0).fit(X, X[:, 0]),
    lambda X: __import__("skinfinite").models.DeepKernelMachineRegressor(
        max_iter=1).fit(X, X[:, 0]),
])
def test_missing_torch_says_how_to_install_it(fit, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setitem(sys.modules, "gpytorch", None)
    monkeypatch.delitem(sys.modules, "skinfinite._torch.bridge", raising=False)
    X = np.random.default_rng(0).normal(size=(8, 2))
    with pytest.raises(ImportError) as info:
        fit(X)
    assert install_hint("gp") in str(info.value)


def test_missing_gpytorch_bridge_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "gpytorch", None)
    monkeypatch.delitem(sys.modules, "skinfinite._torch.bridge", raising=False)
    with pytest.raises(ImportError, match=re.escape(install_hint("gp"))):
        import skinfinite._torch.bridge  # noqa: F401


def test_missing_dependency_follows_the_chain_of_causes():
    sys.path.insert(0, str(ROOT))
    try:
        from conftest import missing_dependency
    finally:
        sys.path.remove(str(ROOT))
    try:
        try:
            import no_such_module_here  # noqa: F401
        except ImportError as exc:
            raise ImportError("needs the extra") from exc
    except ImportError as outer:
        assert missing_dependency(outer) == "no_such_module_here"
    # a module of this package that is missing is a bug, not an extra
    try:
        import skinfinite.no_such_module  # noqa: F401
    except ImportError as exc:
        assert missing_dependency(exc) is None
    assert missing_dependency(ValueError("unrelated")) is None
