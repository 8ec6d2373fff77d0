"""Training on real-format data: image-text webdataset shards read through the storage seam,
encoded by a pretrained AutoencoderKL and a CLIP text encoder given as folders (locally) or
URIs (on an S3 endpoint on loopback), or the latents `ldmscale prepare` precomputed from them;
the two sources give the same batches and losses, and the trained checkpoint evaluates on
COCO-style data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from real_artifacts import SHARD_SAMPLES, webdataset_inputs
from s3_server import s3_bucket, s3_endpoint  # noqa: F401

from ldmscale.cli.main import main
from ldmscale.config import compose
from ldmscale.config.presets import get_preset
from ldmscale.data import prepared
from ldmscale.data.webdataset import CorruptShard
from ldmscale.models.unet import build_unet
from ldmscale.prepare.stage import prepare
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage, open_study
from ldmscale.storage.manifest import is_committed, load_manifest
from ldmscale.storage.paths import RunKey
from ldmscale.train.data import ImageTextBatches, LatentBatches, batch_source
from ldmscale.train.diffusion import diffusion_loss, noise_schedule
from ldmscale.train.trainer import train

TOTAL = sum(SHARD_SAMPLES)


def _inputs(tmp_path: Path, request: pytest.FixtureRequest, where: str = "local") -> list[str]:
    root = str(tmp_path / "data")
    study = str(tmp_path / "study")
    if where == "s3":
        bucket = request.getfixturevalue("s3_bucket")
        root, study = f"{bucket}/data", f"{bucket}/study"
    vae, clip = request.getfixturevalue("tiny_autoencoder"), request.getfixturevalue("tiny_clip")
    return webdataset_inputs(root, vae, clip, study, tmp_path / "cache")


def _losses(study: str, model: str = "debug") -> list[float]:
    log = Storage(study).read_text(paths.train_log(RunKey(model)))
    return [json.loads(line)["train/loss"] for line in log.splitlines()]


def test_precomputed_batches_equal_image_batches(tmp_path: Path, request) -> None:
    overrides = [*_inputs(tmp_path, request), "train.caption_dropout=0.5"]
    raw_cfg = compose(overrides)
    pre_cfg = compose([*overrides, "data.precomputed=true"])
    prepare(pre_cfg)
    raw = batch_source(raw_cfg, open_study(raw_cfg), torch.device("cpu"))
    pre = batch_source(pre_cfg, open_study(pre_cfg), torch.device("cpu"))
    assert isinstance(raw, ImageTextBatches) and isinstance(pre, LatentBatches)
    assert raw.latent_shape == pre.latent_shape == (4, 8, 8)
    assert (raw.hidden_size, raw.max_tokens) == (pre.hidden_size, pre.max_tokens) == (32, 16)

    # Across a shard boundary and past the end of the data (index i is sample i mod 14).
    indices = [3, 4, 5, 6, 9, 10, TOTAL + 1, 2 * TOTAL + 12]
    a, b = raw.batch(indices), pre.batch(indices)
    drops = a.context.sub(raw.empty).abs().amax(dim=(1, 2)) == 0
    assert drops.any() and not drops.all(), "the batch should mix dropped and kept captions"
    for name in ("latents", "context", "noise", "timesteps"):
        assert torch.allclose(getattr(a, name).float(), getattr(b, name).float(), atol=1e-5), name
    # Sample TOTAL + 1 is sample 1 again: same image and caption, its own draws.
    again = raw.batch([1])
    assert torch.allclose(again.latents[0], a.latents[6], atol=1e-6)

    torch.manual_seed(0)
    unet = build_unet(get_preset("debug"), context_dim=32, sample_size=8, latent_channels=4)
    schedule = noise_schedule(raw_cfg.train)
    losses = [
        diffusion_loss(unet, schedule, x.latents, x.context, x.noise, x.timesteps, torch.float32)
        for x in (a, b)
    ]  # fmt: skip
    assert abs(losses[0].item() - losses[1].item()) < 1e-5


@pytest.mark.slow
def test_training_on_images_and_on_precomputed_latents_log_the_same_losses(
    tmp_path: Path, request
) -> None:
    overrides = _inputs(tmp_path, request)
    result = train(compose(overrides))
    assert result.status == "completed" and result.checkpoints == [3]
    study = overrides[0].removeprefix("study=")
    # The shard index was built once and committed in the study.
    storage = Storage(study)
    assert is_committed(storage, prepared.shard_index_dir(compose(overrides)))
    meta = load_manifest(storage, paths.checkpoint_dir(RunKey("debug"), 3))
    assert meta is not None
    assert meta.meta["latent_size"] == 8 and meta.meta["context_dim"] == 32
    assert meta.meta["autoencoder"] == str(request.getfixturevalue("tiny_autoencoder"))
    assert meta.meta["text_encoder"] == str(request.getfixturevalue("tiny_clip"))

    second = str(tmp_path / "precomputed")
    precomputed = [*overrides, f"study={second}", "data.precomputed=true"]
    with pytest.raises(FileNotFoundError, match="ldmscale prepare"):
        train(compose(precomputed))
    prepare(compose(precomputed))
    assert train(compose(precomputed)).status == "completed"
    expected, got = _losses(study), _losses(second)
    assert len(expected) == 3
    assert max(abs(x - y) for x, y in zip(expected, got, strict=True)) < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("where", ["local", "s3"])
def test_train_on_shards_then_evaluate_the_checkpoint(
    where: str, tmp_path: Path, request, capsys
) -> None:
    overrides = _inputs(tmp_path, request, where)
    assert main(["train", *overrides]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["status"] == "completed"
    assert main(["train", *overrides]) == 0  # committed: nothing redone
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["status"] == "already_committed"

    captions, images = request.getfixturevalue("coco_data")
    clip = request.getfixturevalue("tiny_clip")
    evaluation = [
        *overrides,
        "sampler=ddim",
        "sampler.steps=2",
        "sampler.guidance=2",
        "eval.num_samples=2",
        "eval.batch_size=2",
        "eval.grid_size=2",
        f"eval.prompt_set={captions}",
        f"eval.reference_images={images}",
        "eval.feature_extractor=clip",
        f"eval.clip_model={clip}",
    ]
    assert main(["eval", *evaluation]) == 0
    record = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert record["images"] == 2 and record["shard_dir"].startswith("evals/debug/step-3/")


def test_a_truncated_shard_is_named(tmp_path: Path, request) -> None:
    overrides = _inputs(tmp_path, request)
    broken = tmp_path / "data" / "shards" / "shard-000001.tar"
    broken.write_bytes(broken.read_bytes()[:1500])
    with pytest.raises(CorruptShard, match=r"shard-000001\.tar"):
        train(compose(overrides))
    study = Path(overrides[0].removeprefix("study="))
    assert not (study / "prepare").exists() and not (study / "models").exists()


def test_missing_real_data_settings_exit_2_naming_them(tmp_path: Path, capsys) -> None:
    study = tmp_path / "study"
    assert main(["train", f"study={study}", "data=webdataset"]) == 2
    err = capsys.readouterr().err
    for field in ("data.shards", "data.autoencoder", "data.text_encoder"):
        assert field in err
    assert not study.exists()
