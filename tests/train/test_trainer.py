"""End to end on a CPU: `ldmscale train` with DeepSpeed ZeRO-2 (one rank) and ZeRO-3 (two ranks
under torchrun) on the debug preset: the loss falls, checkpoints commit and are retained, SIGTERM
commits and exits 75, the resumed run equals the uninterrupted one (bitwise with one rank), a
truncated checkpoint is skipped, a finished job exits at once.

Each run is a subprocess (SIGTERM, torchrun); OMP_NUM_THREADS=1 keeps them fast on shared cores
and makes the reference and the resumed runs compute in the same order.
"""

from __future__ import annotations

import itertools
import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from child_env import child_env
from safetensors.torch import load_file
from train_runs import copy_prepared, run_train, train_command, train_result

from ldmscale.storage import paths
from ldmscale.storage.checkpoints import committed_steps
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import load_manifest
from ldmscale.storage.paths import RunKey

pytestmark = pytest.mark.slow

MAX_STEPS = 30
TRAIN = [
    "model=debug",
    "train=domain",
    "train.global_batch=8",
    "train.micro_batch=4",
    "train.lr=2e-3",
    "train.warmup_steps=2",
    "train.checkpoint_every=5",
    "train.keep_last=2",
    "train.keep_every=10",
    "train.log_every=1",
    "train.ema=true",
    "train.ema_decay=0.9",
]
META_KEYS = {
    "preset", "step", "context_dim", "latent_channels", "latent_size", "resolution",
    "text_encoder", "max_text_tokens", "autoencoder", "ema", "gflops_forward", "train_flops",
    "samples_seen",
}  # fmt: skip


_env = child_env
_command = train_command
_train = run_train
_result = train_result


def _copy_prepared(prepared: tuple[str, list[str]], target: Path) -> list[str]:
    """A fresh study holding only the prepared domain; the overrides that address it."""
    return [*copy_prepared(prepared, target), *TRAIN]


def _log(study: Path) -> list[dict]:
    text = (study / paths.train_log(RunKey("debug"))).read_text()
    return [json.loads(line) for line in text.splitlines()]


def _unet(study: Path, step: int, sub: str = "unet") -> dict[str, torch.Tensor]:
    folder = study / paths.checkpoint_dir(RunKey("debug"), step) / sub
    return load_file(str(folder / "diffusion_pytorch_model.safetensors"))


@pytest.fixture(scope="module")
def reference(prepared_study: tuple[str, list[str]], tmp_path_factory) -> tuple[Path, list[str]]:
    """An uninterrupted one-rank ZeRO-2 run to MAX_STEPS."""
    study = tmp_path_factory.mktemp("reference") / "study"
    args = _copy_prepared(prepared_study, study)
    proc = _train([*args, f"train.max_steps={MAX_STEPS}"])
    assert _result(proc)["status"] == "completed"
    return study, args


def test_zero2_one_rank_trains_commits_and_retains(reference: tuple[Path, list[str]]) -> None:
    study, _ = reference
    losses = [r["train/loss"] for r in _log(study)]
    assert len(losses) == MAX_STEPS
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.85 * first, losses
    # checkpoint_every=5, keep_last=2, keep_every=10
    assert committed_steps(Storage(str(study)), RunKey("debug")) == [10, 20, 25, 30]
    manifest = load_manifest(Storage(str(study)), paths.checkpoint_dir(RunKey("debug"), MAX_STEPS))
    assert manifest is not None
    meta = manifest.meta
    assert set(meta) >= META_KEYS
    assert meta["step"] == MAX_STEPS and meta["samples_seen"] == MAX_STEPS * 8
    assert meta["train_flops"] == pytest.approx(3 * meta["gflops_forward"] * 1e9 * MAX_STEPS * 8)
    assert meta["ema"] is True
    expected_files = {"unet/config.json", "ema_unet/config.json", "scheduler/scheduler_config.json"}
    assert expected_files | {"train_state.json"} <= set(manifest.files)
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(
        study / paths.checkpoint_dir(RunKey("debug"), MAX_STEPS) / "unet"
    )
    assert unet.config.cross_attention_dim == meta["context_dim"]
    record = _log(study)[-1]
    assert record["train/samples_per_s"] > 0 and record["train/tflops"] > 0
    assert record["train/mfu"] is None  # no GPU peak on a CPU


def test_a_finished_job_exits_at_once(reference: tuple[Path, list[str]]) -> None:
    study, args = reference
    manifest = study / paths.checkpoint_dir(RunKey("debug"), MAX_STEPS) / "manifest.json"
    before = manifest.stat().st_mtime_ns
    proc = _train([*args, f"train.max_steps={MAX_STEPS}"])
    assert proc.returncode == 0
    assert _result(proc)["status"] == "already_committed"
    assert manifest.stat().st_mtime_ns == before


def test_sigterm_commits_exits_75_and_resume_is_bitwise_equal(
    reference: tuple[Path, list[str]], prepared_study: tuple[str, list[str]], tmp_path: Path
) -> None:
    study = tmp_path / "study"
    args = [*_copy_prepared(prepared_study, study), f"train.max_steps={MAX_STEPS}"]
    log = study / paths.train_log(RunKey("debug"))
    with subprocess.Popen(
        _command(args, 1), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        deadline = time.monotonic() + 300
        # Wait until training is under way (two steps logged), then preempt.
        while not (log.exists() and len(log.read_text().splitlines()) >= 2):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 75, err[-3000:]
    stopped = json.loads(out.strip().splitlines()[-1])
    assert stopped["status"] == "preempted" and 2 <= stopped["step"] < MAX_STEPS
    assert stopped["step"] in committed_steps(Storage(str(study)), RunKey("debug"))

    resumed = _result(_train(args))
    assert resumed["status"] == "completed" and resumed["resumed_from"] == stopped["step"]
    for sub in ("unet", "ema_unet"):
        expected, got = _unet(reference[0], MAX_STEPS, sub), _unet(study, MAX_STEPS, sub)
        assert expected.keys() == got.keys()
        assert all(torch.equal(expected[k], got[k]) for k in expected), sub
    losses = [(r["step"], r["train/loss"]) for r in _log(study)]
    assert losses == [(r["step"], r["train/loss"]) for r in _log(reference[0])]


def test_a_truncated_checkpoint_is_skipped_for_the_previous(
    reference: tuple[Path, list[str]], tmp_path: Path
) -> None:
    source, args = reference
    study = tmp_path / "study"
    shutil.copytree(source, study)
    args = [a if not a.startswith("study=") else f"study={study}" for a in args]
    weights = (
        study
        / paths.checkpoint_dir(RunKey("debug"), 30)
        / "unet/diffusion_pytorch_model.safetensors"
    )
    weights.write_bytes(weights.read_bytes()[:100])
    proc = _train([*args, "train.max_steps=35"])
    result = _result(proc)
    assert "skipping corrupt checkpoint" in proc.stderr and "step-30" in proc.stderr
    assert result["resumed_from"] == 25 and result["step"] == 35
    # Step 30 was trained again from step 25 and recommitted, equal to the original.
    expected, got = _unet(source, 30), _unet(study, 30)
    assert all(torch.equal(expected[k], got[k]) for k in expected)


def test_zero3_two_ranks_resume_matches_the_one_rank_run(
    reference: tuple[Path, list[str]], prepared_study: tuple[str, list[str]], tmp_path: Path
) -> None:
    study = tmp_path / "study"
    # EMA needs whole parameters on every rank, so ZeRO-3 trains without it.
    args = [*_copy_prepared(prepared_study, study), "train.zero_stage=3", "train.ema=false"]
    assert _result(_train([*args, "train.max_steps=4"], ranks=2))["step"] == 4
    resumed = _result(_train([*args, "train.max_steps=8"], ranks=2))
    assert resumed["resumed_from"] == 4 and resumed["step"] == 8
    assert committed_steps(Storage(str(study)), RunKey("debug")) == [5, 8]  # keep_last=2
    # Same samples and draws as the one-rank run, so the same losses up to the order of float
    # reductions; the loss of step k depends on the weights after step k - 1.
    losses = [r["train/loss"] for r in _log(study)]
    reference_losses = [r["train/loss"] for r in _log(reference[0])][:8]
    assert losses == pytest.approx(reference_losses, rel=1e-4)
    assert sum(losses[-3:]) < 0.95 * sum(losses[:3])
    unet = _unet(study, 8)
    assert unet["conv_in.weight"].shape[0] == 8  # the whole tensor, gathered from both ranks


@pytest.mark.parametrize("warmup", [0, 4])
def test_every_step_applies_its_warmup_lr_from_step_one(
    warmup: int, prepared_study: tuple[str, list[str]], tmp_path: Path
) -> None:
    study = tmp_path / "study"
    steps = 5
    args = [
        *_copy_prepared(prepared_study, study),
        f"train.warmup_steps={warmup}",
        f"train.max_steps={steps}",
        "train.checkpoint_every=1",
        f"train.keep_last={steps}",
        "train.ema=false",
    ]
    assert _result(_train(args))["step"] == steps
    lr = 2e-3
    expected = [lr * min(1.0, k / warmup) if warmup else lr for k in range(1, steps + 1)]
    assert [r["train/lr"] for r in _log(study)] == pytest.approx(expected)
    weights = [_unet(study, step) for step in range(1, steps + 1)]
    for before, after in itertools.pairwise(weights):
        assert any(not torch.equal(before[k], after[k]) for k in before)
    # Step 1 moved the initial weights too (rebuilt from the trainer's initialisation seed).
    from ldmscale.config.presets import get_preset
    from ldmscale.models.unet import build_unet
    from ldmscale.runtime import derive_seed, seed_everything

    seed_everything(derive_seed(0, "init", "debug"))
    initial = build_unet(get_preset("debug"), context_dim=384, sample_size=8).state_dict()
    assert initial.keys() == weights[0].keys()
    assert any(not torch.equal(initial[k], weights[0][k]) for k in initial)
