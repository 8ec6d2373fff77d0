"""The fault-injection campaign (`make chaos`; a sample runs in the slow tier): what a cluster
does to a study, on the embedded domain, with an uninterrupted run as the oracle.

- process faults: SIGKILL and SIGTERM at random moments of training, of an eval shard and of a
  local sweep; every run again must finish with results bitwise equal to the uninterrupted one,
  a train log with each step once, and no staging folder left behind;
- corruption of every kind of artifact of a finished study (weights, manifests, states, metrics,
  tables, the node cache): every one must be detected and, run again, repaired to the same
  metrics;
- storage faults on an S3 endpoint (moto behind `proxy.FaultProxy`): paused, down, hung,
  read-only: jobs survive short outages, exit 75 on long ones and finish with the same results
  once the endpoint is back, and exit 2 without writing on read-only storage;
- bad input of every class: exit 2, the bad value (and the valid choices) named, nothing
  written.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from harness import (
    Table,
    Trial,
    copy_study,
    ldmscale,
    metrics_of,
    unet_bytes,
)

FAST = ["data=shapes_fast"]
TRAIN = [
    "model=debug",
    "train=domain",
    "train.global_batch=8",
    "train.micro_batch=8",
    "train.max_steps=12",
    "train.checkpoint_every=3",
    "train.keep_last=4",
    "train.log_every=1",
]
SWEEP = [
    "sweep=debug",
    "train.max_steps=8",
    "train.checkpoint_every=4",
    "train.global_batch=8",
    "train.micro_batch=8",
    "eval.num_samples=8",
    "eval.batch_size=4",
    "eval.intervals=20",
]
EVAL = [
    "model=debug",
    "eval.checkpoint=step-12",
    "sampler=ddim",
    "sampler.steps=4",
    "sampler.guidance=2",
    "eval.num_samples=16",
    "eval.batch_size=4",
]
DETECTED = ("corrupt", "uncommitting", "changed since it was fetched", "does not match")


def _states(study: Path) -> dict[str, np.ndarray]:
    """Arrays of the one eval shard of EVAL in `study`."""
    (folder,) = study.glob("evals/debug/step-12/*/shard-0-of-1")
    out = {}
    for name in ("fid_state.npz", "prompt_score.npz", "samples.npz"):
        with np.load(folder / name) as arrays:
            out.update({f"{name}:{k}": arrays[k] for k in arrays.files})
    return out


class Campaign:
    """The trials, run in `root`, with `rng` choosing the moments of the faults."""

    def __init__(self, root: Path, rng: random.Random, table: Table) -> None:
        self.root, self.rng, self.table = root, rng, table
        self.cache = f"storage.cache_dir={root / 'cache'}"
        self._prepared: Path | None = None
        self._trained: tuple[Path, bytes, float] | None = None
        self._swept: tuple[Path, dict[str, Any], float] | None = None

    # -- references (uninterrupted runs) -----------------------------------------------------

    def prepared(self) -> Path:
        """A study with the embedded domain prepared (once)."""
        if self._prepared is None:
            study = self.root / "prepared"
            run = ldmscale("prepare", f"study={study}", *FAST, self.cache)
            assert run.code == 0, run.err[-2000:]
            self._prepared = study
        return self._prepared

    def trained(self) -> tuple[Path, bytes, float]:
        """(study, final U-Net bytes, seconds) of an uninterrupted training."""
        if self._trained is None:
            study = copy_study(self.prepared(), self.root / "trained", only=("prepare",))
            run = ldmscale("train", f"study={study}", *FAST, self.cache, *TRAIN)
            assert run.code == 0, run.err[-2000:]
            self._trained = (study, unet_bytes(study, "debug", 12), run.seconds)
        return self._trained

    def swept(self) -> tuple[Path, dict[str, Any], float]:
        """(study, metrics, seconds) of an uninterrupted debug sweep."""
        if self._swept is None:
            study = copy_study(self.prepared(), self.root / "swept", only=("prepare",))
            run = ldmscale("sweep", f"study={study}", *FAST, self.cache, *SWEEP)
            assert run.code == 0, run.err[-2000:]
            self._swept = (study, metrics_of(str(study)), run.seconds)
        return self._swept

    def trial(self, category: str, name: str, expected: str, body: Callable[[], tuple[bool, str]]):
        """Run one trial and record it (an exception is a failed trial, with its message)."""
        began = time.monotonic()
        try:
            ok, outcome = body()
        except Exception as err:  # a trial that breaks is a failure to report, not to hide
            ok, outcome = False, f"{type(err).__name__}: {str(err)[-300:]}"
        seconds = time.monotonic() - began
        return self.table.add(Trial(category, name, expected, outcome, ok, seconds))
