"""Time to first result: import, first call and warm call in fresh processes.

Each scenario runs in its own Python process (so nothing is compiled yet in
memory); with ``--cache-dir`` the numba disk cache is pointed there, and
``--cold`` empties it before every process, which measures compilation.
Prints the best of ``--repeat`` runs per scenario.

    python asv_bench/time_to_first_result.py --repeat 3
    python asv_bench/time_to_first_result.py --repeat 3 --cold
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

SETUP = """
import time
t0 = time.perf_counter()
import numpy as np
import skinfinite
from skinfinite.kernels import NNGP, NTK, ResNetNTK
from skinfinite import SignatureKernel
t_import = time.perf_counter() - t0
rng = np.random.default_rng(0)
X = rng.standard_normal((200, 10))
P = rng.standard_normal((20, 50, 3)).cumsum(axis=1) / 10
"""

SCENARIOS = {
    "nngp_relu": "NNGP(depth=3)(X)",
    "ntk_relu": "NTK(depth=3)(X)",
    "ntk_erf": "NTK(depth=3, activation='erf')(X)",
    "ntk_tanh": "NTK(depth=3, activation='tanh')(X)",
    "ntk_gelu": "NTK(depth=3, activation='gelu')(X)",
    "ntk_identity": "NTK(depth=3, activation='identity')(X)",
    "ntk_relu_gradient": "NTK(depth=3)(X, eval_gradient=True)",
    "resnet_ntk_relu": "ResNetNTK(depth=10)(X)",
    "resnet_ntk_inf": "ResNetNTK(depth=np.inf)(X)",
    "signature": "SignatureKernel(dyadic_order=1)(P)",
}

TIMED = """
t0 = time.perf_counter()
{stmt}
t_first = time.perf_counter() - t0
t_warm = float('inf')
for _ in range(3):
    t0 = time.perf_counter()
    {stmt}
    t_warm = min(t_warm, time.perf_counter() - t0)
import json
print(json.dumps(dict(import_s=t_import, first_s=t_first, warm_s=t_warm)))
"""

QUICKSTART = """
import time
t0 = time.perf_counter()
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import WhiteKernel

from skinfinite import NTKRegressor
from skinfinite.kernels import NTK

X, y = load_diabetes(return_X_y=True)
model = make_pipeline(StandardScaler(),
                      NTKRegressor(depth=3, activation="relu", alpha=1.0))
cross_val_score(model, X, y, cv=5).mean()
gp = GaussianProcessRegressor(NTK(depth=3) + WhiteKernel(), normalize_y=True)
gp.fit(StandardScaler().fit_transform(X), y)
import json
print(json.dumps(dict(total_s=time.perf_counter() - t0)))
"""

GRIDSEARCH = """
import time
t0 = time.perf_counter()
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.model_selection import GridSearchCV
from skinfinite import NTKRegressor
X, y = load_diabetes(return_X_y=True)
GridSearchCV(NTKRegressor(depth=3), {"alpha": [0.1, 1.0],
             "activation": ["relu", "erf"]}, cv=3, n_jobs=2).fit(X, y)
import json
print(json.dumps(dict(total_s=time.perf_counter() - t0)))
"""


def run(code, env):
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cold", action="store_true",
                        help="empty the numba cache before every process")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--only", default=None,
                        help="comma-separated scenario names")
    args = parser.parse_args()
    cache = args.cache_dir or tempfile.mkdtemp(prefix="skinfinite-numba-")
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
    names = list(SCENARIOS) + ["quickstart", "gridsearch_n_jobs_2"]
    if args.only:
        names = [n for n in names if n in args.only.split(",")]
    print(f"cache {cache} ({'cold' if args.cold else 'warm'}); load "
          f"{os.getloadavg()[0]:.2f}")
    if not args.cold:
        for name in names:       # fill the cache once
            code = (QUICKSTART if name == "quickstart" else GRIDSEARCH
                    if name.startswith("gridsearch")
                    else SETUP + TIMED.format(stmt=SCENARIOS[name]))
            run(code, env)
    for name in names:
        best = None
        for _ in range(args.repeat):
            if args.cold:
                shutil.rmtree(cache, ignore_errors=True)
            if name == "quickstart":
                res = run(QUICKSTART, env)
            elif name.startswith("gridsearch"):
                res = run(GRIDSEARCH, env)
            else:
                res = run(SETUP + TIMED.format(stmt=SCENARIOS[name]), env)
            best = res if best is None else {k: min(v, best[k])
                                             for k, v in res.items()}
        print(f"{name:22s} " + "  ".join(f"{k} {v:7.3f}"
                                         for k, v in best.items()), flush=True)
    print(f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
