"""Progress reporting: a tqdm bar on a terminal or in a notebook, plain
lines in a log.

Kernels called directly follow the ``show_progress`` setting; inside an
estimator's methods, its ``verbose`` decides (0: silent).
"""
import sys
import time

from .config import estimator_verbose, get_config


def _is_terminal(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _Silent:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n=1):
        pass

    def set_postfix(self, **values):
        pass


class _Lines(_Silent):
    """One line per tenth of the work (every update when ``every``), since
    a bar's carriage returns make one line per refresh in a log file."""

    def __init__(self, total, desc, unit, every, stream):
        self.total, self.desc, self.unit = total, desc, unit
        self.stream = stream
        self.step = 1 if every else max(1, total // 10)
        self.done, self.postfix = 0, ""
        self.start = time.perf_counter()

    def set_postfix(self, **values):
        self.postfix = ", ".join(f"{k}={v:.4g}" if isinstance(v, float)
                                 else f"{k}={v}" for k, v in values.items())

    def update(self, n=1):
        before, self.done = self.done, self.done + n
        if self.done // self.step > before // self.step or self.done >= self.total:
            elapsed = time.perf_counter() - self.start
            line = (f"{self.desc}: {self.unit} {self.done}/{self.total} "
                    f"({elapsed:.1f} s)")
            if self.postfix:
                line += f", {self.postfix}"
            print(line, file=self.stream, flush=True)


def progress(total, work, desc, unit="block", always=False):
    """A progress reporter over ``total`` steps, or a silent stand-in.

    Parameters
    ----------
    total : int
        Number of ``update`` calls expected.
    work : float
        Elementary updates the loop performs; small loops of blocks are not
        worth a bar.
    desc, unit : str
    always : bool
        The loop is an estimator's own (epochs, optimiser steps): shown
        whenever its estimator's ``verbose`` is positive.  Otherwise (tiles
        of a Gram) it is shown for ``verbose >= 2``, or ``verbose == 1``
        with enough work, or outside estimators by ``show_progress``.
    """
    config = get_config()
    large = total > 1 and work >= config["progress_min_work"]
    verbose = estimator_verbose()
    if verbose is None:
        show = config["show_progress"]
        if show == "auto":
            show = large
    else:
        show = verbose >= 2 or (verbose >= 1 and (always or large))
    if not show:
        return _Silent()
    stream = sys.stderr
    # a notebook's stderr is no terminal, but tqdm.auto draws a widget there
    if _is_terminal(stream) or "ipykernel" in sys.modules:
        from tqdm.auto import tqdm
        return tqdm(total=total, desc=desc, unit=unit, leave=always,
                    file=stream)
    return _Lines(total, desc, unit, every=(verbose or 0) >= 2, stream=stream)
