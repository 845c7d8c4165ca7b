"""Ctrl-C in a child Python process: how long it takes to stop."""
import os
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def assert_ctrl_c_stops(script, busy_for, timeout, within=5.0):
    """Run ``script``, which prints ``ready`` before its long part; send
    SIGINT ``busy_for`` seconds after that, and check that the child stops
    with a KeyboardInterrupt within ``within`` seconds."""
    # a shell starts background jobs with SIGINT ignored, and Python then
    # never turns it into KeyboardInterrupt: the child gets the default
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=_default_sigint)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(busy_for)
        proc.send_signal(signal.SIGINT)
        sent = time.perf_counter()
        _, err = proc.communicate(timeout=timeout)
        waited = time.perf_counter() - sent
    finally:
        proc.kill()
    assert "KeyboardInterrupt" in err
    assert waited < within, waited
