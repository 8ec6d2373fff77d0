"""`ldmscale train` as a subprocess, for the tests that stop, kill and resume training: one rank
directly, several under torchrun (OMP_NUM_THREADS=1 from `child_env`)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from child_env import child_env


def train_command(args: list[str], ranks: int = 1) -> list[str]:
    """The command line of `ldmscale train args` on `ranks` processes."""
    if ranks == 1:
        return [sys.executable, "-m", "ldmscale", "train", *args]
    torchrun = str(Path(sys.executable).parent / "torchrun")
    return [torchrun, "--standalone", f"--nproc_per_node={ranks}", "-m", "ldmscale", "train", *args]


def run_train(args: list[str], ranks: int = 1) -> subprocess.CompletedProcess[str]:
    """Run `ldmscale train args` to the end (10 minutes at most)."""
    return subprocess.run(
        train_command(args, ranks), env=child_env(), capture_output=True, text=True, timeout=600
    )


def train_result(proc: subprocess.CompletedProcess[str]) -> dict:
    """The JSON result a train run printed; fails the test on any exit but 0 and 75."""
    assert proc.returncode in (0, 75), proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def copy_prepared(prepared: tuple[str, list[str]], target: Path) -> list[str]:
    """A fresh study at `target` holding only the prepared domain; the overrides addressing it."""
    uri, overrides = prepared
    source = Path(uri.removeprefix("file://"))
    shutil.copytree(source / "prepare", target / "prepare")
    return [*overrides, f"study={target}"]
