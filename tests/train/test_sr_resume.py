"""End to end on a CPU: `ldmscale train model.stage=sr` fine-tunes a trained debug model for
super-resolution; the checkpoint names its parent and task and holds the widened U-Net, and a
run stopped by SIGTERM (exit 75) resumes to a result bitwise equal to an uninterrupted one."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from child_env import child_env
from safetensors.torch import load_file
from train_runs import copy_prepared, run_train, train_result

from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import load_manifest
from ldmscale.storage.paths import RunKey

pytestmark = pytest.mark.slow

RUN = RunKey("debug", "sr")
SR = [
    "model.stage=sr",
    "sr.max_steps=6",
    "sr.global_batch=4",
    "sr.micro_batch=2",
    "sr.checkpoint_every=2",
    "sr.lr=1e-3",
    "train.log_every=1",
    "train.ema=false",
]


def _unet(study: Path, step: int = 6, run: RunKey = RUN) -> dict[str, torch.Tensor]:
    path = study / paths.checkpoint_dir(run, step) / "unet" / "diffusion_pytorch_model.safetensors"
    return load_file(str(path))


@pytest.fixture(scope="module")
def parent(prepared_study: tuple[str, list[str]], tmp_path_factory) -> list[str]:
    """A study with a trained debug model (the parent); the overrides that address it."""
    study = tmp_path_factory.mktemp("parent") / "study"
    args = [
        *copy_prepared(prepared_study, study),
        "model=debug",
        "train=domain",
        "train.global_batch=4",
        "train.micro_batch=4",
        "train.max_steps=4",
        "train.ema=false",
    ]
    assert train_result(run_train(args))["status"] == "completed"
    return args


def _copy(args: list[str], target: Path) -> list[str]:
    source = next(a.split("=", 1)[1] for a in args if a.startswith("study="))
    shutil.copytree(source, target)
    return [a if not a.startswith("study=") else f"study={target}" for a in args]


@pytest.fixture(scope="module")
def fine_tuned(parent: list[str], tmp_path_factory) -> tuple[Path, list[str]]:
    study = tmp_path_factory.mktemp("sr") / "study"
    args = [*_copy(parent, study), *SR]
    result = train_result(run_train(args))
    assert result["status"] == "completed" and result["model"] == "debug/sr"
    return study, args


def test_an_sr_checkpoint_names_its_parent_task_and_widened_input(
    fine_tuned: tuple[Path, list[str]],
) -> None:
    study, _ = fine_tuned
    manifest = load_manifest(Storage(str(study)), paths.checkpoint_dir(RUN, 6))
    assert manifest is not None
    meta = manifest.meta
    assert meta["run"] == "debug/sr" and meta["objective"]["task"] == "super-resolution"
    assert meta["objective"]["checkpoint"] == "super-resolution"
    assert meta["parent"]["run"] == "debug" and meta["parent"]["step"] == 4
    config = json.loads((study / paths.checkpoint_dir(RUN, 6) / "unet/config.json").read_text())
    assert config["in_channels"] == 2 * meta["latent_channels"]
    # Trained: the new input channels have left zero; the parent's own weights moved too.
    weights, before = _unet(study), _unet(study, 4, RunKey("debug"))
    new = weights["conv_in.weight"][:, meta["latent_channels"] :]
    assert new.abs().max() > 0
    assert not torch.equal(weights["conv_out.weight"], before["conv_out.weight"])


def test_an_interrupted_sr_fine_tuning_resumes_bitwise(
    fine_tuned: tuple[Path, list[str]], parent: list[str], tmp_path: Path
) -> None:
    study = tmp_path / "study"
    args = [*_copy(parent, study), *SR]
    log = study / paths.train_log(RUN)
    command = [sys.executable, "-m", "ldmscale", "train", *args]
    with subprocess.Popen(
        command, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        deadline = time.monotonic() + 300
        # Past the first checkpoint (step 2), then stop.
        while not (log.exists() and len(log.read_text().splitlines()) >= 3):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=300)
    assert proc.returncode == 75
    resumed = train_result(run_train(args))
    assert resumed["status"] == "completed" and resumed["resumed_from"] >= 2
    expected, got = _unet(fine_tuned[0]), _unet(study)
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    losses = [json.loads(line)["train/loss"] for line in log.read_text().splitlines()]
    reference = fine_tuned[0] / paths.train_log(RUN)
    assert losses == [json.loads(line)["train/loss"] for line in reference.read_text().splitlines()]
