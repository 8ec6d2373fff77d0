"""DeepSpeed's start-up op build survives a SIGKILL mid-build: the next start builds instead of
waiting forever for the lock the killed one held (torch's OS lock, since 2.14)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ldmscale.train.extensions import BUILD_LOCK, EXTENSIONS_ENV

BUILD = [sys.executable, "-c", "from ldmscale.train.extensions import build_ops; build_ops()"]
OP = "deepspeed_shm_comm"
"""The op DeepSpeed compiles when it starts on a CPU."""


@pytest.mark.slow
def test_a_build_killed_mid_way_does_not_block_the_next_start(tmp_path: Path) -> None:
    env = {**os.environ, EXTENSIONS_ENV: str(tmp_path / "ext"), "OMP_NUM_THREADS": "1"}
    lock = tmp_path / "ext" / OP / BUILD_LOCK
    first = subprocess.Popen(BUILD, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not lock.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lock.exists(), "the build never took its lock"
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert not list((tmp_path / "ext" / OP).glob(f"{OP}*.so"))  # killed before it linked

    again = subprocess.run(BUILD, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert list((tmp_path / "ext" / OP).glob(f"{OP}*.so"))
