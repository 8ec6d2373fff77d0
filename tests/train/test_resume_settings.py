"""Resuming under changed settings, end to end on a CPU: a change the checkpoint cannot take
(ZeRO stage, EMA, rank count) exits 2 naming the setting and both values, before any state is
loaded, leaving the study as it was; a change it can take applies from the next step (a new
learning rate is the one the steps apply; a new micro-batch size trains the same samples, so
the losses follow the uninterrupted run). And the optimizer's hyperparameters after a resume are
this run's, not the checkpoint's, while its state is the checkpoint's.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from child_env import child_env

from ldmscale.config.presets import get_preset
from ldmscale.config.schema import TrainConfig
from ldmscale.models.unet import build_unet
from ldmscale.storage import paths
from ldmscale.storage.paths import RunKey
from ldmscale.train.ds_config import deepspeed_config, lr_scheduler, warmup_factor
from ldmscale.train.engine import init_distributed, load_engine_state, save_engine_state
from ldmscale.train.speed import build_fast_engine

pytestmark = pytest.mark.slow

TRAIN = [
    "model=debug",
    "train=domain",
    "train.global_batch=8",
    "train.micro_batch=4",
    "train.lr=2e-3",
    "train.warmup_steps=0",
    "train.checkpoint_every=2",
    "train.log_every=1",
]


def _train(args: list[str], ranks: int = 1) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ldmscale", "train", *args]
    if ranks > 1:
        torchrun = str(Path(sys.executable).parent / "torchrun")
        command = [torchrun, "--standalone", f"--nproc_per_node={ranks}", *command[1:]]
    return subprocess.run(command, env=child_env(), capture_output=True, text=True, timeout=600)


def _done(proc: subprocess.CompletedProcess[str]) -> dict:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _log(study: Path) -> list[dict]:
    text = (study / paths.train_log(RunKey("debug"))).read_text()
    return [json.loads(line) for line in text.splitlines()]


def _snapshot(study: Path) -> dict[str, bytes]:
    return {str(p.relative_to(study)): p.read_bytes() for p in study.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def trained(prepared_study: tuple[str, list[str]], tmp_path_factory) -> tuple[Path, list[str]]:
    """A study whose debug model was trained 2 steps (one rank, ZeRO-2, no EMA)."""
    source, overrides = prepared_study
    study = tmp_path_factory.mktemp("resume") / "study"
    shutil.copytree(Path(source) / "prepare", study / "prepare")
    args = [*overrides, f"study={study}", *TRAIN]
    assert _done(_train([*args, "train.max_steps=2"]))["step"] == 2
    return study, args


def _copy(trained: tuple[Path, list[str]], target: Path) -> list[str]:
    source, args = trained
    shutil.copytree(source, target)
    return [a if not a.startswith("study=") else f"study={target}" for a in args]


@pytest.mark.parametrize(
    ("change", "ranks", "named"),
    [
        ("train.zero_stage=3", 1, "train.zero_stage: the checkpoint has 2, this run 3"),
        ("train.ema=true", 1, "train.ema: the checkpoint has false, this run true"),
        (None, 2, "world_size (resolved): the checkpoint has 1, this run 2"),
    ],
)
def test_an_incompatible_change_exits_2_naming_it_and_changes_nothing(
    trained: tuple[Path, list[str]], change: str | None, ranks: int, named: str
) -> None:
    study, args = trained
    before = _snapshot(study)
    proc = _train([*args, "train.max_steps=4", *([change] if change else [])], ranks)
    # torchrun reports a failed worker as 1; each worker itself exits 2 (`ldmscale run` passes
    # the workers' code on, tests/cli/test_run.py).
    assert proc.returncode == (2 if ranks == 1 else 1), proc.stderr[-3000:]
    assert "cannot resume" in proc.stderr and "step-2" in proc.stderr
    assert named in proc.stderr
    # One line from each worker, no traceback (torchrun adds its own summary of the failure).
    assert proc.stderr.count("ldmscale train: cannot resume") == ranks
    assert ranks > 1 or "Traceback" not in proc.stderr
    assert _snapshot(study) == before


def test_a_new_learning_rate_applies_from_the_next_step(
    trained: tuple[Path, list[str]], tmp_path: Path
) -> None:
    study = tmp_path / "study"
    args = _copy(trained, study)
    resumed = _done(_train([*args, "train.max_steps=4", "train.lr=5e-4"]))
    assert resumed["resumed_from"] == 2 and resumed["step"] == 4
    assert [(r["step"], r["train/lr"]) for r in _log(study)] == [
        (1, 2e-3),
        (2, 2e-3),
        (3, 5e-4),
        (4, 5e-4),
    ]


def test_a_new_micro_batch_trains_the_same_samples(
    trained: tuple[Path, list[str]], tmp_path: Path
) -> None:
    reference = tmp_path / "reference"
    reference_args = _copy(trained, reference)
    shutil.rmtree(reference / "models")
    _done(_train([*reference_args, "train.max_steps=4"]))
    study = tmp_path / "study"
    args = _copy(trained, study)
    resumed = _done(_train([*args, "train.max_steps=4", "train.micro_batch=2"]))
    assert resumed["resumed_from"] == 2
    # Same samples per step, summed in two more micro-batches: equal up to float rounding.
    losses = [r["train/loss"] for r in _log(study)]
    assert losses == pytest.approx([r["train/loss"] for r in _log(reference)], rel=1e-4)


def _engine(train: TrainConfig):
    def build() -> torch.nn.Module:
        torch.manual_seed(0)
        return build_unet(get_preset("debug"), context_dim=32, sample_size=8, latent_channels=4)

    init_distributed(torch.device("cpu"))
    ds = deepspeed_config(train, world_size=1, dtype=torch.float32)
    return build_fast_engine(build, ds, torch.device("cpu"), train, lr_scheduler(train))[0]


def test_the_optimizer_keeps_its_state_and_takes_this_runs_hyperparameters() -> None:
    saved = TrainConfig(global_batch=2, micro_batch=2, lr=1e-3, warmup_steps=4, weight_decay=0.0)
    engine = _engine(saved)
    generator = torch.Generator().manual_seed(0)
    sample, context = torch.randn(2, 4, 8, 8, generator=generator), torch.randn(2, 3, 32)
    for _ in range(2):
        engine.backward(engine(sample, torch.tensor([1, 500]), context).sample.square().mean())
        engine.step()
    folder = Path(tempfile.mkdtemp())
    save_engine_state(engine, folder)
    resumed_cfg = TrainConfig(
        global_batch=2,
        micro_batch=2,
        lr=5e-4,
        warmup_steps=8,
        weight_decay=0.5,
        adam_betas=[0.8, 0.99],
        fused_optimizer="on",
    )
    resumed = _engine(resumed_cfg)
    load_engine_state(resumed, folder)
    shutil.rmtree(folder)
    (group,) = resumed.optimizer.param_groups
    assert group["lr"] == 5e-4 * warmup_factor(8)(2) == resumed.get_lr()[0]
    assert (group["weight_decay"], tuple(group["betas"])) == (0.5, (0.8, 0.99))
    assert group["fused"] is True
    assert resumed.lr_scheduler.last_epoch == 2  # the schedule's position is the checkpoint's
    pairs = zip(engine.module.parameters(), resumed.module.parameters(), strict=True)
    assert all(torch.equal(before, after) for before, after in pairs)
    moments = [s["exp_avg"] for s in engine.optimizer.optimizer.state.values()]
    restored = [s["exp_avg"] for s in resumed.optimizer.optimizer.state.values()]
    assert moments and all(torch.equal(a, b) for a, b in zip(moments, restored, strict=True))
