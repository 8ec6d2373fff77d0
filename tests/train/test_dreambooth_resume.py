"""End to end on a CPU: `ldmscale train model.stage=dreambooth model.variant=ring` fine-tunes a
trained debug model on the embedded subject with its class images; a run stopped by SIGTERM
(exit 75) or killed by SIGKILL resumes to a result bitwise equal to an uninterrupted one, and a
run whose class images came from another checkpoint is refused before training."""

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

from ldmscale.config import compose
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage, open_study
from ldmscale.storage.paths import RunKey
from ldmscale.train.prior import class_images

pytestmark = pytest.mark.slow

RUN = RunKey("debug", "dreambooth", "ring")
DREAMBOOTH = [
    "model.stage=dreambooth",
    "model.variant=ring",
    "dreambooth.max_steps=8",
    "dreambooth.global_batch=4",
    "dreambooth.micro_batch=2",
    "dreambooth.checkpoint_every=2",
    "dreambooth.lr=1e-3",
    "dreambooth.snr_gamma=5",
    "train.log_every=1",
]
CLASSES = ["dreambooth.class_images=4", "dreambooth.class_steps=2", "eval.batch_size=4"]


def _weights(study: Path) -> dict[str, torch.Tensor]:
    path = study / paths.checkpoint_dir(RUN, 8) / "unet" / "diffusion_pytorch_model.safetensors"
    return load_file(str(path))


@pytest.fixture(scope="module")
def base(prepared_study: tuple[str, list[str]], tmp_path_factory) -> list[str]:
    """A study with a trained debug model and its class images of circles; its overrides."""
    study = tmp_path_factory.mktemp("base") / "study"
    args = [
        *copy_prepared(prepared_study, study),
        "model=debug",
        "train=domain",
        "train.global_batch=4",
        "train.micro_batch=4",
        "train.max_steps=6",
        "train.ema=false",
        "device=cpu",
        *CLASSES,
    ]
    assert train_result(run_train(args))["status"] == "completed"
    cfg = compose(args)
    assert not class_images(cfg, open_study(cfg), RunKey("debug"), "circle").skipped
    return args


def _copy(args: list[str], target: Path) -> list[str]:
    source = next(a.split("=", 1)[1] for a in args if a.startswith("study="))
    shutil.copytree(source, target)
    return [a if not a.startswith("study=") else f"study={target}" for a in args]


@pytest.fixture(scope="module")
def tuned(base: list[str], tmp_path_factory) -> tuple[Path, list[str]]:
    study = tmp_path_factory.mktemp("tuned") / "study"
    args = [*_copy(base, study), *DREAMBOOTH]
    result = train_result(run_train(args))
    assert result["status"] == "completed" and result["model"] == "debug/dreambooth/ring"
    return study, args


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL])
def test_an_interrupted_dreambooth_resumes_bitwise(
    stop: signal.Signals, tuned: tuple[Path, list[str]], base: list[str], tmp_path: Path
) -> None:
    study = tmp_path / "study"
    args = [*_copy(base, study), *DREAMBOOTH]
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
    expected, got = _weights(tuned[0]), _weights(study)
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    losses = [json.loads(line)["train/loss"] for line in log.read_text().splitlines()]
    reference = tuned[0] / paths.train_log(RUN)
    assert losses == [json.loads(line)["train/loss"] for line in reference.read_text().splitlines()]


def test_class_images_of_another_checkpoint_are_refused(base: list[str], tmp_path: Path) -> None:
    study = tmp_path / "study"
    args = [*_copy(base, study), *DREAMBOOTH]
    rel = paths.prior_dir("debug", "circle")
    manifest = json.loads(Storage(str(study)).read_text(f"{rel}/manifest.json"))
    manifest["meta"]["protocol"]["parent"]["unet_sha256"] = "0" * 64
    Storage(str(study)).write_text(f"{rel}/manifest.json", json.dumps(manifest))
    proc = run_train(args)
    assert proc.returncode == 2
    assert "remove it to generate the class images again" in proc.stderr
    assert not (study / paths.checkpoints_dir(RUN)).exists()
