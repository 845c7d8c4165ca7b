"""Ctrl-C in a child Python process: how long it takes to stop."""
import os
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def interrupt_when_busy(script, busy_for, timeout):
    """Run ``script``, which prints ``ready`` before its long part; send
    SIGINT ``busy_for`` seconds after that. Returns the child's stderr and
    the seconds it took to exit after the signal."""
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(busy_for)
        proc.send_signal(signal.SIGINT)
        sent = time.perf_counter()
        _, err = proc.communicate(timeout=timeout)
        waited = time.perf_counter() - sent
    finally:
        proc.kill()
    return err, waited
