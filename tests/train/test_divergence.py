"""A training whose loss turns NaN or infinite commits no checkpoint from then on: the job exits 65
(a retry of the same settings diverges again) naming the run, the step and its log, with no
traceback; the log records the non-finite loss. `train.lr=1e6` makes `debug` diverge within its
first steps."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from train_runs import copy_prepared, run_train

from ldmscale.errors import EXIT_NON_FINITE
from ldmscale.storage import paths
from ldmscale.storage.checkpoints import committed_steps
from ldmscale.storage.fs import Storage
from ldmscale.storage.paths import RunKey

pytestmark = pytest.mark.slow

TRAIN = [
    "model=debug",
    "train=domain",
    "train.global_batch=8",
    "train.micro_batch=8",
    "train.lr=1e6",
    "train.warmup_steps=0",
    "train.max_steps=8",
    "train.checkpoint_every=4",
    "train.log_every=1",
]


def test_a_diverged_training_commits_no_checkpoint_and_exits_65(
    prepared_study: tuple[str, list[str]], tmp_path: Path
) -> None:
    study = tmp_path / "study"
    proc = run_train([*copy_prepared(prepared_study, study), *TRAIN])
    assert proc.returncode == EXIT_NON_FINITE, proc.stderr[-3000:]
    assert "Training of debug diverged: its loss is NaN or infinite at step" in proc.stderr
    assert "Traceback" not in proc.stderr
    storage = Storage(str(study))
    assert 8 not in committed_steps(storage, RunKey("debug"))
    text = storage.read_text(paths.train_log(RunKey("debug")))
    log = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert not all(math.isfinite(r["train/loss"]) for r in log), log
    for step in committed_steps(storage, RunKey("debug")):
        # A checkpoint committed before the divergence: every loss up to it was finite.
        assert all(math.isfinite(r["train/loss"]) for r in log if r["step"] <= step), (step, log)
