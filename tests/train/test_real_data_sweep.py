"""The paper's sweep (train=paper, data=webdataset, eval=coco2014_30k) composes for every job
kind of its plan, with the real-data URIs given as plan overrides, and its settings are the
paper's: 512-pixel images, 77 CLIP tokens, FID Inception on 30k COCO captions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ldmscale.cli.main import main
from ldmscale.orchestrate.jobs import KINDS, parse_job_id
from ldmscale.orchestrate.plan import load_plan_record
from ldmscale.orchestrate.runner import job_config
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage

URIS = [
    "data.shards='s3://bucket/laion/{000000..000099}.tar'",
    "data.autoencoder=s3://bucket/weights/sd-vae-ft-mse",
    "data.text_encoder=s3://bucket/weights/clip-vit-large-patch14",
    "eval.prompt_set=s3://bucket/coco2014/annotations/captions_val2014.json",
    "eval.reference_images=s3://bucket/coco2014/val2014",
    "eval.inception_weights=s3://bucket/weights/weights-inception-2015-12-05-6726825d.pth",
    "eval.clip_model=s3://bucket/weights/clip-vit-large-patch14",
    "dreambooth.subjects.dog.images=s3://bucket/dreambench/dog",
    "dreambooth.dino_model=s3://bucket/weights/dino-vits16",
]


@pytest.mark.slow
def test_paper_sweep_composes_for_every_job_kind(tmp_path: Path, capsys) -> None:
    study = str(tmp_path / "study")
    assert main(["plan", "sweep=paper", f"study={study}", *URIS]) == 0
    capsys.readouterr()
    storage = Storage(study)
    every = [job["id"] for job in json.loads(storage.read_text(paths.PLAN))["jobs"]]
    base = list(load_plan_record(storage)["overrides"])
    shards = json.loads(storage.read_text(paths.PLAN))["shards"]
    for kind in KINDS:
        ids = [i for i in every if parse_job_id(i).kind == kind]
        assert ids, kind
        for job_id in (ids[0], ids[-1]):
            cfg = job_config(parse_job_id(job_id), study, base, shards)
            assert cfg.data.name == "webdataset" and cfg.data.resolution == 512
            assert cfg.data.max_text_tokens == 77
            assert cfg.data.shards == "s3://bucket/laion/{000000..000099}.tar"
            cfg.data.require_real()
            assert cfg.eval.feature_extractor == "inception" and cfg.eval.num_samples == 30_000
            assert cfg.train.global_batch == 2048 and cfg.sweep.name == "paper"
    train = job_config(parse_job_id("train/866m"), study, base, shards)
    assert train.model.preset == "866m" and train.train.max_steps == 500_000
