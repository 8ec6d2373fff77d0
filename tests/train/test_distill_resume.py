"""End to end on a CPU: `ldmscale train model.stage=distill` distils a trained debug model; the
checkpoint names its parent and kind, keeps the target network, and a run stopped by SIGTERM
(exit 75) or killed by SIGKILL resumes to a result bitwise equal to an uninterrupted one."""

from __future__ import annotations

import json
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

RUN = RunKey("debug", "distill")
DISTILL = [
    "model.stage=distill",
    "distill.max_steps=8",
    "distill.global_batch=4",
    "distill.micro_batch=4",
    "distill.checkpoint_every=2",
    "distill.warmup_steps=1",
    "distill.num_ddim_timesteps=10",
    "distill.w_min=1",
    "distill.w_max=3",
    "distill.time_cond_proj_dim=16",
    "train.log_every=1",
    "train.ema=false",
]


def _weights(study: Path, folder: str) -> dict[str, torch.Tensor]:
    path = study / paths.checkpoint_dir(RUN, 8) / folder / "diffusion_pytorch_model.safetensors"
    return load_file(str(path))


@pytest.fixture(scope="module")
def teacher(prepared_study: tuple[str, list[str]], tmp_path_factory) -> list[str]:
    """A study with a trained debug model (the teacher); the overrides that address it."""
    study = tmp_path_factory.mktemp("teacher") / "study"
    args = [
        *copy_prepared(prepared_study, study),
        "model=debug",
        "train=domain",
        "train.global_batch=4",
        "train.micro_batch=4",
        "train.max_steps=6",
        "train.ema=false",
    ]
    assert train_result(run_train(args))["status"] == "completed"
    return args


def _copy(teacher: list[str], target: Path) -> list[str]:
    import shutil

    source = next(a.split("=", 1)[1] for a in teacher if a.startswith("study="))
    shutil.copytree(source, target)
    return [a if not a.startswith("study=") else f"study={target}" for a in teacher]


@pytest.fixture(scope="module")
def distilled(teacher: list[str], tmp_path_factory) -> tuple[Path, list[str]]:
    study = tmp_path_factory.mktemp("distilled") / "study"
    args = [*_copy(teacher, study), *DISTILL]
    result = train_result(run_train(args))
    assert result["status"] == "completed" and result["model"] == "debug/distill"
    return study, args


def test_a_distilled_checkpoint_names_its_parent_and_keeps_its_target(
    distilled: tuple[Path, list[str]],
) -> None:
    study, _ = distilled
    manifest = load_manifest(Storage(str(study)), paths.checkpoint_dir(RUN, 8))
    assert manifest is not None
    meta = manifest.meta
    assert meta["run"] == "debug/distill"
    assert meta["objective"]["checkpoint"] == "distilled"
    assert meta["objective"]["schedule"]["original_inference_steps"] == 10
    assert meta["parent"]["run"] == "debug" and meta["parent"]["step"] == 6
    teacher = load_manifest(Storage(str(study)), paths.checkpoint_dir(RunKey("debug"), 6))
    assert teacher is not None
    assert meta["parent"]["unet_sha256"] in json.dumps(teacher.files)
    assert meta["train_flops"] == pytest.approx(6 * meta["gflops_forward"] * 1e9 * 8 * 4)
    assert {"target_unet/config.json", "unet/config.json"} <= set(manifest.files)
    # The target network is an EMA of the student: near it, not equal to it.
    student, target = _weights(study, "unet"), _weights(study, "target_unet")
    assert student.keys() == target.keys()
    assert any(not torch.equal(student[k], target[k]) for k in student)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL])
def test_an_interrupted_distillation_resumes_bitwise(
    stop: signal.Signals, distilled: tuple[Path, list[str]], teacher: list[str], tmp_path: Path
) -> None:
    study = tmp_path / "study"
    args = [*_copy(teacher, study), *DISTILL]
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
        proc.send_signal(stop)
        proc.communicate(timeout=300)
    assert proc.returncode == (75 if stop == signal.SIGTERM else -signal.SIGKILL)
    resumed = train_result(run_train(args))
    assert resumed["status"] == "completed" and resumed["resumed_from"] >= 2
    for folder in ("unet", "target_unet"):
        expected, got = _weights(distilled[0], folder), _weights(study, folder)
        assert all(torch.equal(expected[k], got[k]) for k in expected), folder
    losses = [json.loads(line)["train/loss"] for line in log.read_text().splitlines()]
    reference = distilled[0] / paths.train_log(RUN)
    assert losses == [json.loads(line)["train/loss"] for line in reference.read_text().splitlines()]
