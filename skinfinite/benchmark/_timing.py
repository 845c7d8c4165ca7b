"""Best-of-N timing for the benchmark scripts."""

import time

__all__ = ["best_time"]


def best_time(f, repeat=3):
    """Best wall-clock and best CPU (process, all threads) seconds of
    ``repeat`` calls of ``f()``.

    On a shared machine the wall clock of one and the same run moves with
    the load; CPU time moves less, so it is the figure to compare.
    """
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        f()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return min(wall), min(cpu)
