"""SIGTERM handling: the first signal sets a flag, the second exits 75 at once."""

from __future__ import annotations

import subprocess
import sys

from ldmscale.errors import EXIT_RETRY

SCRIPT = """
import os, signal, sys
from ldmscale.train.preemption import Preemption
with Preemption() as preemption:
    os.kill(os.getpid(), signal.SIGTERM)
    print("after first:", preemption.requested, flush=True)
    os.kill(os.getpid(), signal.SIGTERM)
    print("not reached", flush=True)
"""


def test_first_sigterm_sets_the_flag_and_the_second_exits_75() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == EXIT_RETRY == 75
    assert "after first: True" in proc.stdout
    assert "not reached" not in proc.stdout
    assert "second SIGTERM" in proc.stderr


def test_the_previous_handler_is_restored() -> None:
    import signal

    from ldmscale.train.preemption import Preemption

    before = signal.getsignal(signal.SIGTERM)
    with Preemption() as preemption:
        assert signal.getsignal(signal.SIGTERM) != before
        assert not preemption.requested
    assert signal.getsignal(signal.SIGTERM) == before
