"""Every estimator and kernel class, and every skinfinite name the README
uses, is importable from the top-level package."""
import inspect
import re
from pathlib import Path

import pytest

import skinfinite
from skinfinite import kernels, models

_README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize("module", [models, kernels], ids=["models", "kernels"])
def test_classes_are_exported_at_the_top(module):
    classes = [n for n in module.__all__ if inspect.isclass(getattr(module, n))]
    assert classes
    assert [n for n in classes if n not in skinfinite.__all__] == []
    for name in classes:
        assert getattr(skinfinite, name) is getattr(module, name)


def test_names_the_readme_uses_are_importable_from_skinfinite():
    text = _README.read_text(encoding="utf-8")
    dotted = set(re.findall(r"skinfinite\.([A-Za-z_]\w*)", text))
    # dir(), not hasattr: the torch names raise an ImportError naming the
    # extra when torch is missing, yet they are the package's names
    missing = [n for n in dotted if n not in dir(skinfinite)]
    assert missing == []
    # bare names in code spans that the package defines somewhere
    spans = set(re.findall(r"`([A-Z]\w+)`", text))
    ours = {n for n in spans if n in models.__all__ or n in kernels.__all__}
    assert ours, "the README names no estimator or kernel"
    assert [n for n in ours if n not in dir(skinfinite)] == []
