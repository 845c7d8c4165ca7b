"""Skip the doctests of modules whose optional dependencies are missing."""
import importlib.util

collect_ignore_glob = []
if importlib.util.find_spec("torch") is None:
    collect_ignore_glob += ["skinfinite/_torch_duals.py", "skinfinite/_dkm.py",
                            "skinfinite/models/dkm.py"]
if importlib.util.find_spec("gpytorch") is None:
    collect_ignore_glob += ["skinfinite/gp.py", "skinfinite/models/gp.py"]
