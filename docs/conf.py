"""Sphinx configuration for the skinfinite documentation.

Build (offline, warnings are errors)::

    pip install -e ".[docs]"
    python -m sphinx -W -b html docs docs/_build/html

The ``docs`` extra does not include the ``gp`` extra (torch and gpytorch):
without them the API pages of the GPyTorch bridge and estimators are built
from stand-in modules, and the gallery examples that need them are shown
without being run.
"""
import glob
import importlib.util
import os
import re
import sys
from datetime import date

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.abspath(os.path.join(HERE, "..")))

import skinfinite  # noqa: E402

# -- Project -----------------------------------------------------------------
project = "skinfinite"
author = "The skinfinite developers"
copyright = f"{date.today().year}, {author}"
release = getattr(skinfinite, "__version__", "")
version = ".".join(release.split(".")[:2]) if release else ""

# -- General -----------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "README.rst", "Thumbs.db", ".DS_Store",
                    "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.md5",
                    "auto_examples/*.codeobj.json"]
root_doc = "index"
default_role = "any"
nitpicky = False

# The builds run without network access: no intersphinx inventories are
# fetched, so cross-references to NumPy or scikit-learn stay plain text.

# -- autodoc / autosummary / napoleon -----------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_member_order = "bysource"
autodoc_typehints = "none"
autoclass_content = "class"

napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_param = True
napoleon_use_rtype = False
napoleon_preprocess_types = False

# Optional dependencies of documented modules: stand-ins where missing, so
# that the "docs" extra alone builds every API page.
_OPTIONAL = ("torch", "gpytorch", "linear_operator")
autodoc_mock_imports = [name for name in _OPTIONAL
                        if importlib.util.find_spec(name) is None]

# -- sphinx-gallery -------------------------------------------------------------

def _examples_needing_gp():
    """Examples that say they need the gp extra, when it is not installed."""
    if not autodoc_mock_imports:
        return []
    names = []
    for path in glob.glob(os.path.join(HERE, "..", "examples", "*.py")):
        with open(path, encoding="utf-8") as handle:
            if '".[gp]"' in handle.read():
                names.append(re.escape(os.path.basename(path)))
    return names


_NOT_RUN = _examples_needing_gp()

sphinx_gallery_conf = {
    "examples_dirs": os.path.join("..", "examples"),
    "gallery_dirs": "auto_examples",
    # the examples run: every plot_*.py but those needing a missing extra
    "filename_pattern": (rf"/(?!(?:{'|'.join(_NOT_RUN)})$)plot_" if _NOT_RUN
                         else r"/plot_"),
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "show_memory": False,
    "plot_gallery": "True",
    "reset_modules": ("matplotlib",),
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
}

# -- HTML ----------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = "skinfinite"
html_static_path = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 7,
}
html_sidebars = {"index": [], "install": [], "performance": []}


# -- Hooks -----------------------------------------------------------------------
def _skip_metadata_request_methods(app, what, name, obj, skip, options):
    # scikit-learn gives every estimator ``get_metadata_routing`` and
    # ``set_fit_request``-style methods for metadata routing; their docstrings
    # refer to scikit-learn's own documentation and say nothing specific to
    # skinfinite.
    if name == "get_metadata_routing" or (
            name.startswith("set_") and name.endswith("_request")):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_metadata_request_methods)
