"""A study with the embedded domain prepared (the session fixture `prepared_study`) and one
checkpoint of the debug U-Net in the trainer's format, random-initialised, for evaluation tests.
(The tiny real-format artifacts, `coco_data`, `tiny_clip`, `tiny_autoencoder` and
`inception_weights`, are shared by every folder: tests/support/real_artifacts.py.)"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import torch
from s3_server import s3_bucket, s3_endpoint  # noqa: F401  (fixtures for the real-data tests)

from ldmscale.config.presets import get_preset
from ldmscale.models.unet import build_unet
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage, open_study
from ldmscale.storage.manifest import commit
from ldmscale.storage.paths import RunKey

STEP = 5
TEXT_ENCODER = "minilm"
TOKENS = 16
CONTEXT = 384  # all-MiniLM-L6-v2's hidden size


def make_checkpoint(
    storage: Storage,
    model: str,
    step: int,
    autoencoder: str,
    latent: tuple[int, int, int],
    resolution: int,
    *,
    text_encoder: str = TEXT_ENCODER,
    context: int = CONTEXT,
    tokens: int = TOKENS,
    diverged: bool = False,
) -> None:
    """Commit a random-initialised checkpoint of `model` in the trainer's layout (`diverged`:
    every weight NaN, as a run whose loss went to NaN leaves it)."""
    from diffusers import DDPMScheduler

    torch.manual_seed(step)
    unet = build_unet(
        get_preset(model), context_dim=context, sample_size=latent[1], latent_channels=latent[0]
    )
    if diverged:
        with torch.no_grad():
            for weight in unet.parameters():
                weight.fill_(float("nan"))
    schedule = DDPMScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear"
    )
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp)
        unet.save_pretrained(local / "unet")
        schedule.save_pretrained(local / "scheduler")
        (local / "train_state.json").write_text(json.dumps({"step": step, "samples_seen": 0}))
        meta: dict[str, Any] = {
            "preset": model,
            "step": step,
            "context_dim": context,
            "latent_channels": latent[0],
            "latent_size": latent[1],
            "resolution": resolution,
            "text_encoder": text_encoder,
            "max_text_tokens": tokens,
            "autoencoder": autoencoder,
            "ema": False,
            "gflops_forward": 0.0,
            "train_flops": 0.0,
            "samples_seen": 0,
        }
        commit(storage, paths.checkpoint_dir(RunKey(model), step), local_dir=local, meta=meta)


@pytest.fixture(scope="session")
def eval_study(request: pytest.FixtureRequest) -> tuple[str, list[str]]:
    """(study URI, overrides) of a prepared study holding checkpoint step-5 of `debug`."""
    try:
        study, overrides = request.getfixturevalue("prepared_study")
    except pytest.FixtureLookupError:
        pytest.skip("needs the prepared_study fixture of the embedded domain")
    from ldmscale.config import compose
    from ldmscale.models import domain

    cfg = compose([f"study={study}", *overrides])
    storage = Storage(study)
    autoencoder = domain.autoencoder_for(cfg, open_study(cfg), "cpu")
    rel = str(domain.autoencoder_dir(cfg))
    size = autoencoder.latent_size(cfg.data.resolution)
    latent = (autoencoder.latent_channels, size, size)
    make_checkpoint(storage, "debug", STEP, rel, latent, cfg.data.resolution)
    return study, list(overrides)


@pytest.fixture(scope="session")
def checkpoint_writer() -> Any:
    """`make_checkpoint`, for test modules (conftest modules are not importable by name)."""
    return make_checkpoint
