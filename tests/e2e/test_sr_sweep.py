"""Super-resolution through a sweep on a CPU, on the embedded domain: `sweep.sr` adds
`sr/debug` after the size's training, evaluates its intermediate and final checkpoints at two
step counts (FID, LPIPS and IS, the domain evaluator standing in), merges the shards exactly
(each metric equal to one computed from every image at once) and draws the SR figures against
the calibration's bicubic baseline."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import torch

from ldmscale.cli.main import main
from ldmscale.metrics.fid import fid_of, load_state
from ldmscale.metrics.inception_score import SPLITS, inception_score
from ldmscale.runtime import derive_seed
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import read_file
from ldmscale.storage.paths import EvalKey

pytestmark = pytest.mark.slow

SR = [
    "sweep.sr.models=[debug]",
    "sweep.sr.steps=[2,4]",
    "sweep.sr.checkpoints=[2]",
    "sr.max_steps=4",
    "sr.global_batch=4",
    "sr.micro_batch=4",
    "sr.checkpoint_every=2",
]


def _per_sample(storage: Storage, key: EvalKey, shards: int) -> dict[str, np.ndarray]:
    parts: dict[str, list[np.ndarray]] = {"features": [], "lpips": [], "logits": []}
    for index in range(shards):
        data = read_file(storage, key.shard_dir(index, shards), "samples.npz")
        with np.load(io.BytesIO(data)) as arrays:
            for name, values in parts.items():
                values.append(arrays[name])
    return {name: np.concatenate(values) for name, values in parts.items()}


def test_a_sweep_fine_tunes_evaluates_and_draws_sr(
    tmp_path, prepared_study: tuple[str, list[str]]
) -> None:  # type: ignore[no-untyped-def]
    fast = [o for o in prepared_study[1] if not o.startswith("study=")]
    study = str(tmp_path / "study")
    assert main(["sweep", "sweep=debug", f"study={study}", *SR, *fast]) == 0
    storage = Storage(study)
    plan = json.loads(storage.read_text("plan.json"))
    assert {j["id"]: j["kind"] for j in plan["jobs"]}["sr/debug"] == "sr"

    rows = list(csv.DictReader(io.StringIO(storage.read_text("results/metrics.csv"))))
    sr = [r for r in rows if r["run"] == "debug/sr"]
    assert {(int(r["checkpoint_step"]), int(r["steps"])) for r in sr} == {(2, 4), (4, 2), (4, 4)}
    for row in sr:
        assert row["task"] == "super-resolution"
        protocol = json.loads(row["protocol"])
        assert protocol["task"] == "super-resolution" and protocol["parent"]["run"] == "debug"
        assert protocol["perceptual"] == "domain" and protocol["is_classifier"] == "domain"
        # Merged exactly: each metric is the one of every image at once.
        key = EvalKey.parse(f"debug/sr/step-{row['checkpoint_step']}/ddim-s{row['steps']}-g1")
        samples = _per_sample(storage, key, int(protocol["shards"]))
        reference = load_state(read_file(storage, protocol["reference"], "fid_state.npz"))
        features = torch.from_numpy(samples["features"].astype(np.float64))
        assert float(row["fid"]) == pytest.approx(fid_of(reference, features), rel=1e-7)
        assert float(row["lpips"]) == pytest.approx(samples["lpips"].mean(), rel=1e-12)
        seed = derive_seed(0, "bootstrap", key.path)
        expected = inception_score(samples["logits"], SPLITS, seed)
        assert float(row["inception_score"]) == pytest.approx(expected, rel=1e-12)
        assert float(row["inception_score_low"]) <= float(row["inception_score_high"])
    # Training compute of the SR run counts its parent's.
    base = next(r for r in rows if r["run"] == "debug")
    final = next(r for r in sr if int(r["checkpoint_step"]) == 4)
    assert float(final["training_compute"]) > float(base["training_compute"])

    table = list(csv.DictReader(io.StringIO(storage.read_text("results/sr.csv"))))
    assert {int(r["steps"]) for r in table} == {2, 4}
    assert all(r["beats_bicubic"] in {"yes", "no: worse", "not clearly"} for r in table)
    names = set(storage.listdir("report"))
    assert {"sr_compute.png", "sr_steps.png", "sr_inception.png"} <= names
    page = storage.read_text("report/index.html")
    assert "Super-resolution" in page and "bicubic baseline" in page
