"""SIGTERM handling for preemptible training.

Kubernetes (and torchrun, forwarding to its workers) stops a pod with SIGTERM, then SIGKILL after
a grace period. The first SIGTERM only sets a flag: the trainer finishes the current optimizer
step, commits a checkpoint and exits with `EXIT_RETRY` (75, EX_TEMPFAIL), which the
orchestration treats as retryable. A second SIGTERM exits at once with the same code, losing the
steps since the last committed checkpoint (the restart resumes from it).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

from ldmscale.errors import EXIT_RETRY


class Preemption:
    """Context manager that turns SIGTERM into a flag (`requested`) while training runs."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        self._installed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            print("second SIGTERM: exiting now without a checkpoint", file=sys.stderr, flush=True)
            os._exit(EXIT_RETRY)
        self.requested = True
        print(
            "SIGTERM: finishing this step, then committing a checkpoint",
            file=sys.stderr,
            flush=True,
        )

    def __enter__(self) -> Preemption:
        # Signal handlers can only be installed from the main thread (e.g. not under a test
        # runner's worker thread); training still works there, it just cannot be preempted softly.
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGTERM, self._previous)
            self._installed = False
