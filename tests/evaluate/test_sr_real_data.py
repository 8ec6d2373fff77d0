"""The real-data super-resolution protocol end to end on tiny random-initialised models: a
handful of generated HR images in a local folder and on S3 (moto), seeded random crops, FID on
Inception features, LPIPS (AlexNet) and the Inception Score from configured weights files,
shards merged exactly, the calibration (HR-vs-HR floor, bicubic baseline) committed once.
Needs torchvision and torch-fidelity, which `make install` pins with torch."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from real_artifacts import upload

from ldmscale.config import compose
from ldmscale.config.presets import get_preset
from ldmscale.evaluate.merge import merge
from ldmscale.evaluate.shard import evaluate
from ldmscale.evaluate.sr_images import hr_set
from ldmscale.metrics.fid import fid_of, load_state
from ldmscale.metrics.inception_score import SPLITS, inception_score
from ldmscale.models.unet import build_unet
from ldmscale.runtime import derive_seed
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage, open_study
from ldmscale.storage.manifest import commit, read_file
from ldmscale.storage.paths import EvalKey, RunKey
from ldmscale.train.sr import widen_input

pytestmark = pytest.mark.slow

RUN = RunKey("debug", "sr")
STEP = 3


def _hr_images(folder: Path) -> Path:
    """Six RGB images of 40 to 56 px (one below the crop, enlarged first), smooth patterns."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k, (h, w) in enumerate([(40, 48), (56, 44), (48, 48), (30, 36), (52, 40), (44, 56)]):
        y, x = np.mgrid[0:h, 0:w]
        phase = rng.uniform(0, 6, size=3)
        image = np.stack([np.sin(x / (3 + c) + y / 5 + phase[c]) for c in range(3)], axis=-1)
        Image.fromarray(((image + 1) * 127.5).astype(np.uint8)).save(folder / f"{k:04d}.png")
    return folder


def _sr_checkpoint(study: str, overrides: list[str]) -> None:
    """Commit a random-initialised SR checkpoint of `debug` (a widened U-Net) in the trainer's
    layout, on the study's domain autoencoder."""
    from diffusers import DDPMScheduler

    from ldmscale.models import domain

    cfg = compose([f"study={study}", *overrides])
    autoencoder = domain.autoencoder_for(cfg, open_study(cfg), "cpu")
    size = autoencoder.latent_size(cfg.data.resolution)
    channels = autoencoder.latent_channels
    torch.manual_seed(0)
    unet = build_unet(
        get_preset("debug"), context_dim=384, sample_size=size, latent_channels=channels
    )
    unet = widen_input(unet, channels)
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp)
        unet.save_pretrained(local / "unet")
        DDPMScheduler(
            beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012
        ).save_pretrained(local / "scheduler")
        (local / "train_state.json").write_text(json.dumps({"step": STEP, "samples_seen": 0}))
        meta = {
            "preset": "debug", "step": STEP, "context_dim": 384, "latent_channels": channels,
            "latent_size": size, "resolution": cfg.data.resolution, "text_encoder": "minilm",
            "max_text_tokens": 16, "autoencoder": str(domain.autoencoder_dir(cfg)), "ema": False,
            "gflops_forward": 0.0, "train_flops": 0.0, "samples_seen": 0, "run": RUN.path,
            "parent": {},
            "objective": {"name": "super-resolution", "checkpoint": "super-resolution",
                          "task": "super-resolution"},
        }  # fmt: skip
        commit(Storage(study), paths.checkpoint_dir(RUN, STEP), local_dir=local, meta=meta)


@pytest.mark.parametrize("where", ["local", "s3"])
def test_real_data_sr_runs_end_to_end(
    where: str,
    prepared_study: tuple[str, list[str]],
    inception_weights: Path,
    lpips_weights: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    import shutil

    study = str(tmp_path / "study")
    shutil.copytree(prepared_study[0], study)
    overrides = [o for o in prepared_study[1] if not o.startswith("study=")]
    _sr_checkpoint(study, overrides)
    images = _hr_images(tmp_path / "hr")
    if where == "s3":
        images_uri = upload(images, f"{request.getfixturevalue('s3_bucket')}/div2k")
    else:
        images_uri = str(images)
    common = [
        f"study={study}", *overrides, "model.stage=sr", f"eval.sr_images={images_uri}",
        "eval.feature_extractor=inception", f"eval.inception_weights={inception_weights}",
        f"eval.lpips_weights={lpips_weights}", "eval.num_samples=6", "eval.batch_size=3",
        "eval.intervals=4", "sampler.steps=2", "sampler.guidance=1.0",
    ]  # fmt: skip
    for shard in ("0/2", "1/2"):
        record = evaluate(compose([*common, f"eval.shard={shard}"]))
        assert record.protocol["task"] == "super-resolution"
        assert record.protocol["perceptual"] == "lpips" and record.protocol["is_splits"] == 10
    metrics = merge(compose([*common, "eval.shard=0/2"]))
    assert metrics.task == "super-resolution" and metrics.num_samples == 6
    storage = Storage(study)
    key = EvalKey(RUN, STEP, "ddim", 2, 1.0)
    parts = []
    for index in range(2):
        data = read_file(storage, key.shard_dir(index, 2), "samples.npz")
        with np.load(io.BytesIO(data)) as arrays:
            parts.append({k: arrays[k] for k in ("features", "lpips", "logits")})
    features = np.concatenate([p["features"] for p in parts]).astype(np.float64)
    reference = load_state(read_file(storage, metrics.protocol["reference"], "fid_state.npz"))
    assert metrics.fid == pytest.approx(fid_of(reference, torch.from_numpy(features)), rel=1e-7)
    assert metrics.lpips == pytest.approx(np.concatenate([p["lpips"] for p in parts]).mean())
    logits = np.concatenate([p["logits"] for p in parts])
    assert logits.shape == (6, 1008)
    seed = derive_seed(0, "bootstrap", key.path)
    assert metrics.inception_score == pytest.approx(inception_score(logits, SPLITS, seed))
    calibration = json.loads(
        read_file(storage, metrics.protocol["sr_calibration"], "calibration.json")
    )
    assert calibration["num_samples"] == 6 and calibration["bicubic_lpips"] >= 0
    # The crops are a fixed seeded set: the same pixels read again, from the same URI.
    cfg = compose(common)
    crops = hr_set(images_uri, cfg.seed, 32, cfg.storage).images(0, 6, cfg.storage)
    again = hr_set(images_uri, cfg.seed, 32, cfg.storage).images(0, 6, cfg.storage)
    assert crops.shape == (6, 3, 32, 32) and torch.equal(crops, again)
