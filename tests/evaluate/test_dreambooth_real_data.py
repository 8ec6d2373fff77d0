"""DreamBooth and prompt interpolation on the real-data path, with tiny random-initialised models
in the real formats (a U-Net conditioned on a CLIP text encoder, an AutoencoderKL, a DINO ViT
and CLIP for the measures) and a few subject images in a folder: class images, DreamBooth
training, the subject evaluated on the DreamBooth and the base model (DINO, CLIP-I, CLIP-T on
DreamBench's live-subject prompts), an interpolation measured by CLIP, and both report
sections; everything local, then everything (study included) in an S3 bucket."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ldmscale.analysis import dreambooth, interpolation
from ldmscale.config import compose
from ldmscale.data.subjects import render_subject
from ldmscale.evaluate.interpolation import interpolate
from ldmscale.evaluate.subject import evaluate_subject
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import read_file
from ldmscale.storage.paths import EvalKey, RunKey
from ldmscale.train.prior import class_images
from ldmscale.train.trainer import train

pytestmark = pytest.mark.slow

BASE_STEP = 3
TUNED = RunKey("debug", "dreambooth", "dog")


def _upload(local: Path, uri: str) -> str:
    storage = Storage(uri)
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        storage.put_file(path, str(path.relative_to(local)))
    return uri


def _subject_images(folder: Path) -> Path:
    """Four non-square PNGs of the ring, as a photographer's folder would hold them."""
    folder.mkdir()
    for i in range(4):
        image = render_subject("ring", 0, "real-data test", i, 24, {})
        Image.fromarray(image[:, : 20 + i]).save(folder / f"IMG_{i:04d}.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def _overrides(where: str, tmp_path: Path, request) -> list[str]:
    inputs = {
        "clip": request.getfixturevalue("tiny_clip"),
        "dino": request.getfixturevalue("tiny_dino"),
        "vae": request.getfixturevalue("tiny_autoencoder"),
        "subject": _subject_images(tmp_path / "dog"),
    }
    captions, _ = request.getfixturevalue("coco_data")
    uris = {name: str(path) for name, path in inputs.items()}
    study = str(tmp_path / "study")
    if where == "s3":
        bucket = request.getfixturevalue("s3_bucket")
        uris = {name: _upload(path, f"{bucket}/{name}") for name, path in inputs.items()}
        study = f"{bucket}/study"
    request.getfixturevalue("checkpoint_writer")(
        Storage(study), "debug", BASE_STEP, uris["vae"], (4, 8, 8), 16,
        text_encoder=uris["clip"], context=32, tokens=16,
    )  # fmt: skip
    return [
        f"study={study}", "device=cpu", "model=debug", "data.resolution=16",
        f"data.text_encoder={uris['clip']}", f"data.autoencoder={uris['vae']}",
        f"eval.prompt_set={captions}", f"eval.clip_model={uris['clip']}", "eval.batch_size=8",
        "eval.intervals=50", f"dreambooth.dino_model={uris['dino']}",
        f"+dreambooth.subjects={{dog:{{images:'{uris['subject']}',class_noun:dog,live:true}}}}",
        "+interpolate.pairs={cats:{first:'a red cat on the table',second:'a blue dog'}}",
        f"train.max_steps={BASE_STEP}", "train.ema=false", "dreambooth.class_images=4",
        "dreambooth.class_steps=2", "dreambooth.images_per_prompt=1", "dreambooth.max_steps=2",
        "dreambooth.global_batch=2", "dreambooth.micro_batch=2", "dreambooth.checkpoint_every=2",
        "interpolate.seeds=2", "interpolate.steps=2", f"storage.cache_dir={tmp_path / 'cache'}",
    ]  # fmt: skip


@pytest.mark.parametrize("where", ["file", "s3"])
def test_dreambooth_and_interpolation_on_real_data(where: str, tmp_path: Path, request) -> None:
    overrides = _overrides(where, tmp_path, request)
    cfg = compose(overrides)
    storage = Storage(cfg.study)
    prior = class_images(cfg, storage, RunKey("debug"), "dog")
    assert prior.protocol["prompt"] == "a dog" and prior.protocol["parent"]["step"] == BASE_STEP
    tuned_cfg = compose([*overrides, "model.stage=dreambooth", "model.variant=dog"])
    result = train(tuned_cfg, storage, TUNED)
    assert (result.status, result.step) == ("completed", 2)

    records = {}
    for run, step in ((TUNED, 2), (RunKey("debug"), BASE_STEP)):
        key = EvalKey(run, step, "ddim", 2, 2.0)
        records[run.path] = evaluate_subject(cfg, storage, "dog", key).record
        assert evaluate_subject(cfg, storage, "dog", key).skipped
    record = records[TUNED.path]
    assert record["measure_order"] == ["dino", "clip_i", "clip_t"]
    assert record["num_images"] == 25  # DreamBench's live list, one image per prompt
    protocol = record["protocol"]
    assert protocol["dino_model"] == cfg.dreambooth.dino_model and protocol["real_images"] == 4
    assert protocol["prompts"][10] == "a sks dog wearing a red hat"
    assert set(record["ceiling"]) == {"dino", "clip_i"}  # no prompt-fidelity ceiling
    for measure in ("dino", "clip_i", "clip_t"):
        mean = record["means"][measure]
        assert -1 <= mean["low"] <= mean["value"] <= mean["high"] <= 1

    done = interpolate(cfg, storage, RunKey("debug"), "cats")
    assert done.record["protocol"]["features"] == cfg.eval.clip_model
    for name in ("first_recognised", "second_recognised"):
        assert 0 <= done.record["means"][name]["value"] <= 1
    rel = paths.interpolation_dir("debug", BASE_STEP, "cats")
    with np.load(io.BytesIO(read_file(storage, rel, "images.npz"))) as arrays:
        assert arrays["images"].shape == (2, 5, 16, 16, 3)

    section = dreambooth.section(storage, cfg.seed, cfg.eval.intervals)
    assert section is not None
    table = section.tables["dreambooth.csv"]
    assert all(measure in table for measure in ("dino", "clip_i", "clip_t"))
    assert interpolation.section(storage, cfg.seed, cfg.eval.intervals) is not None
