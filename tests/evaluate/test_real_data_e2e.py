"""`ldmscale eval` + `ldmscale merge` on real-data settings with tiny artifacts in the real formats:
a checkpoint conditioned on a CLIP text encoder, a pretrained AutoencoderKL folder, a COCO-style
captions file with its images, a CLIP model for the CLIP score; everything local, then everything
(study included) in an S3 bucket. metrics.json must carry the protocol."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ldmscale.cli.main import main
from ldmscale.config import compose
from ldmscale.evaluate.prompts import CAPTION_RULE
from ldmscale.evaluate.reference import REAL_RESIZE, prepare_reference
from ldmscale.storage.fs import Storage, open_study

pytestmark = pytest.mark.slow

SAMPLES = 4
RESOLUTION = 16
STEP = 3
BASE = [
    "model=debug",
    "sampler=ddim",
    "sampler.steps=2",
    "sampler.guidance=2",
    "eval.batch_size=2",
    f"eval.num_samples={SAMPLES}",
    "eval.grid_size=4",
    # Each resample is one FID: on Inception's 2048 features a 2048 x 2048 matrix square root,
    # about 2 s on one core; merge's default 200 took 7 minutes per Inception case.
    "eval.intervals=10",
    "device=cpu",
]


def _upload(local: Path, uri: str) -> str:
    storage = Storage(uri)
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        storage.put_file(path, str(path.relative_to(local)))
    return uri


def _setup(where: str, tmp_path: Path, request) -> tuple[dict[str, str], list[str]]:
    """(input URIs, overrides) of a study with a committed checkpoint; inputs local or in S3."""
    captions, images = request.getfixturevalue("coco_data")
    tiny_clip = request.getfixturevalue("tiny_clip")
    tiny_autoencoder = request.getfixturevalue("tiny_autoencoder")
    paths = {
        "captions": str(captions),
        "images": str(images),
        "clip": str(tiny_clip),
        "vae": str(tiny_autoencoder),
        "study": str(tmp_path / "study"),
    }
    if where == "s3":
        bucket = request.getfixturevalue("s3_bucket")
        paths["captions"] = (
            _upload(captions.parent, f"{bucket}/coco/annotations") + "/" + captions.name
        )
        paths["images"] = _upload(images, f"{bucket}/coco/val2014")
        paths["clip"] = _upload(tiny_clip, f"{bucket}/weights/clip")
        paths["vae"] = _upload(tiny_autoencoder, f"{bucket}/weights/vae")
        paths["study"] = f"{bucket}/study"
    request.getfixturevalue("checkpoint_writer")(
        Storage(paths["study"]),
        "debug",
        STEP,
        paths["vae"],
        (4, RESOLUTION // 2, RESOLUTION // 2),
        RESOLUTION,
        text_encoder=paths["clip"],
        context=32,
        tokens=16,
    )
    overrides = [
        f"study={paths['study']}",
        *BASE,
        f"data.resolution={RESOLUTION}",
        f"data.text_encoder={paths['clip']}",
        f"data.autoencoder={paths['vae']}",
        f"eval.prompt_set={paths['captions']}",
        f"eval.reference_images={paths['images']}",
        f"eval.clip_model={paths['clip']}",
        f"storage.cache_dir={tmp_path / 'cache'}",
    ]
    return paths, overrides


@pytest.mark.parametrize(
    ("where", "extractor"),
    [("file", "clip"), ("s3", "clip"), ("file", "inception"), ("s3", "inception")],
)
def test_eval_and_merge_on_real_data(
    where: str, extractor: str, tmp_path: Path, request, capsys
) -> None:
    import hashlib

    from ldmscale.evaluate.merge import load_metrics
    from ldmscale.storage import paths as study_paths
    from ldmscale.storage.manifest import is_committed

    weights = ""
    if extractor == "inception":
        weights = str(request.getfixturevalue("inception_weights"))  # skips without torch-fidelity
    inputs, overrides = _setup(where, tmp_path, request)
    if weights and where == "s3":
        weights = _upload(Path(weights).parent, f"{request.getfixturevalue('s3_bucket')}/inc")
        weights += "/" + Path(request.getfixturevalue("inception_weights")).name
    overrides += [f"eval.feature_extractor={extractor}", f"eval.inception_weights={weights}"]

    # The prepare stage's entry point commits the reference statistics the shards then reuse.
    cfg = compose(overrides)
    prepared, _ = prepare_reference(cfg, open_study(cfg))
    for shard in ("0/2", "1/2"):
        assert main(["eval", *overrides, f"eval.shard={shard}"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["images"] == SAMPLES // 2
    assert main(["merge", *overrides, "eval.shard=0/2"]) == 0
    assert main(["eval", *overrides, "eval.shard=1/2"]) == 0  # committed: nothing redone
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["skipped"] is True

    storage = Storage(inputs["study"])
    record = load_metrics(
        storage, study_paths.EvalKey(study_paths.RunKey("debug"), STEP, "ddim", 2, 2.0)
    )
    assert record is not None
    assert record.num_samples == SAMPLES and record.checkpoint_step == STEP
    assert record.prompt_score_name == "clip_score"
    assert 0.0 <= record.prompt_score <= 1.0
    assert record.fid > 0.0
    captions_bytes = Path(request.getfixturevalue("coco_data")[0]).read_bytes()
    protocol = record.protocol
    expected = {
        "dataset": "captions_val2014.json",
        "split": "val2014",
        "caption_rule": CAPTION_RULE,
        "captions_sha256": hashlib.sha256(captions_bytes).hexdigest(),
        "num_samples": SAMPLES,
        "shards": 2,
        "resolution": RESOLUTION,
        "reference_images": inputs["images"],
        "reference_resize": REAL_RESIZE,
        "feature_extractor": extractor,
        "feature_weights": weights or inputs["clip"],
        "prompt_score": "clip_score",
        "clip_model": inputs["clip"],
    }
    assert {key: protocol[key] for key in expected} == expected
    assert len(protocol["feature_weights_sha256"]) == len(protocol["clip_model_sha256"]) == 64
    assert "CLIPImageProcessor" in protocol["clip_preprocessing"]
    assert protocol["resize"] and protocol["reference"] == prepared
    assert is_committed(storage, prepared)
