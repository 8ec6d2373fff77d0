"""Eval shards and their merge on a prepared study: sharded FID equals one unsharded run,
finished work is not redone, an interrupted shard reruns to identical stats, bad requests exit 2
and write nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ldmscale.cli.main import main
from ldmscale.config import compose
from ldmscale.evaluate.identity import EvalInputError
from ldmscale.evaluate.merge import merge
from ldmscale.evaluate.shard import SAMPLES as SAMPLES_FILE
from ldmscale.evaluate.shard import evaluate
from ldmscale.metrics.fid import FID, FID_STATE, load_state
from ldmscale.sample.generate import ImageGenerator
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import is_committed, read_file

pytestmark = pytest.mark.slow

SAMPLES = 6
BASE = ["model=debug", "sampler=ddim", "sampler.steps=2", "sampler.guidance=2", "eval.batch_size=2"]


def _cfg(eval_study, *extra: str):
    study, overrides = eval_study
    return compose(
        [f"study={study}", *overrides, *BASE, f"eval.num_samples={SAMPLES}", "device=cpu", *extra]
    )


def _states(storage: Storage, rel: str) -> dict[str, np.ndarray]:
    return load_state(read_file(storage, rel, FID_STATE))


def _fid(storage: Storage, reference_rel: str, *shard_rels: str) -> float:
    metric = FID(int(_states(storage, shard_rels[0])["fake_features_sum"].shape[0]))
    metric.merge(_states(storage, reference_rel))
    for rel in shard_rels:
        metric.merge(_states(storage, rel))
    return metric.compute()


def _samples(storage: Storage, rel: str) -> dict[str, np.ndarray]:
    import io

    with np.load(io.BytesIO(read_file(storage, rel, SAMPLES_FILE))) as arrays:
        return {key: arrays[key] for key in arrays.files}


def test_sharded_fid_equals_unsharded_and_reruns_do_nothing(eval_study) -> None:
    storage = Storage(eval_study[0])
    records = [evaluate(_cfg(eval_study, f"eval.shard={i}/3")) for i in range(3)]
    assert [r.num_images for r in records] == [2, 2, 2]
    assert all(not r.skipped and r.latency_ms_per_image > 0 for r in records)
    sharded = merge(_cfg(eval_study, "eval.shard=0/3"))

    # One unsharded run of the same prompts, another batch size: same images, same features.
    whole = evaluate(_cfg(eval_study, "eval.shard=0/1", "eval.batch_size=4"))
    reference = whole.protocol["reference"]
    unsharded = _fid(storage, reference, whole.rel_dir)
    assert _fid(storage, reference, *(r.rel_dir for r in records)) == pytest.approx(
        unsharded, rel=1e-6
    )
    assert sharded.fid == pytest.approx(unsharded, rel=1e-6)
    # The intervals come from the per-sample features: the shards' together are the whole's.
    features = np.concatenate([_samples(storage, r.rel_dir)["features"] for r in records])
    np.testing.assert_allclose(features, _samples(storage, whole.rel_dir)["features"], atol=1e-5)
    assert sharded.fid_low <= sharded.fid <= sharded.fid_high
    assert sharded.prompt_score_low <= sharded.prompt_score <= sharded.prompt_score_high
    assert "bootstrap" in sharded.protocol["interval"]
    assert sharded.num_samples == SAMPLES and sharded.prompt_score_name == "alignment"
    assert sharded.sampling_cost == pytest.approx(sharded.norm_cost * 2)
    assert sharded.gflops_per_image > 0 and sharded.params > 0
    assert whole.protocol["unet_sha256"] == records[0].protocol["unet_sha256"]
    metrics = json.loads(read_file(storage, records[0].key.dir, "metrics.json"))
    for key in ("model", "params", "channels", "checkpoint_step", "sampler", "steps", "guidance",
                "num_samples", "fid", "prompt_score", "prompt_score_name", "norm_cost",
                "sampling_cost", "gflops_per_image", "latency_ms_per_image", "device",
                "protocol", "provenance"):  # fmt: skip
        assert key in metrics

    again = evaluate(_cfg(eval_study, "eval.shard=1/3"))
    assert again.skipped and again.meta == records[1].meta
    assert merge(_cfg(eval_study, "eval.shard=0/3")) == sharded


def test_equal_unet_work_is_charged_equal_sampling_cost(eval_study) -> None:
    # Heun at 2 steps and DDIM at 3 both make 3 U-Net evaluations per image.
    records = []
    for sampler, steps in (("heun", 2), ("ddim", 3)):
        extra = (f"sampler={sampler}", f"sampler.steps={steps}", "eval.num_samples=2")
        evaluate(_cfg(eval_study, *extra))
        records.append(merge(_cfg(eval_study, *extra)))
    heun, ddim = records
    assert (heun.steps, ddim.steps) == (2, 3)
    assert heun.unet_evaluations == ddim.unet_evaluations == 3
    assert heun.sampling_cost == pytest.approx(ddim.sampling_cost)
    assert heun.gflops_per_image == pytest.approx(ddim.gflops_per_image)
    assert heun.protocol["timestep_spacing"] == "trailing"


def test_interrupted_shard_reruns_to_identical_stats(eval_study, monkeypatch) -> None:
    storage = Storage(eval_study[0])
    cfg = _cfg(eval_study, "eval.shard=1/2", "sampler=euler_a")
    calls = {"n": 0}
    original = ImageGenerator.__call__

    def dies_on_second_batch(self, captions, indices):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("killed mid-generation")
        return original(self, captions, indices)

    monkeypatch.setattr(ImageGenerator, "__call__", dies_on_second_batch)
    with pytest.raises(RuntimeError, match="killed"):
        evaluate(cfg)
    monkeypatch.undo()
    record = evaluate(cfg)
    assert not record.skipped and is_committed(storage, record.rel_dir)
    rerun = _states(storage, record.rel_dir)
    # A fresh, uninterrupted run of the same shard with a different batch size.
    storage.remove(record.rel_dir)
    evaluate(_cfg(eval_study, "eval.shard=1/2", "sampler=euler_a", "eval.batch_size=3"))
    fresh = _states(storage, record.rel_dir)
    assert rerun.keys() == fresh.keys()
    for name in rerun:
        # Another batch size gives float32 features that differ in the last bits: sums of
        # their products agree to 1e-5 of their largest entry.
        scale = float(np.abs(fresh[name]).max())
        np.testing.assert_allclose(rerun[name], fresh[name], rtol=1e-5, atol=1e-5 * scale)


def test_merge_refuses_missing_or_mismatched_shards(eval_study) -> None:
    evaluate(_cfg(eval_study, "eval.shard=0/2", "sampler.steps=1"))
    with pytest.raises(EvalInputError, match=r"shard\(s\) 1 of 2 are not committed"):
        merge(_cfg(eval_study, "eval.shard=0/2", "sampler.steps=1"))
    with pytest.raises(EvalInputError, match="different protocol"):
        evaluate(_cfg(eval_study, "eval.shard=0/2", "sampler.steps=1", "eval.num_samples=10"))


@pytest.mark.parametrize(
    "bad",
    [
        ["sampler=plms"],
        ["sampler.steps=0"],
        ["eval.shard=3/3"],
        ["eval.shard=x"],
        ["eval.num_samples=1"],
        ["eval.num_samples=3", "eval.shard=0/4"],
    ],
)
def test_bad_requests_exit_2_and_write_nothing(eval_study, bad, capsys) -> None:
    study, overrides = eval_study
    storage = Storage(study)
    before = storage.files("evals")
    assert main(["eval", f"study={study}", *overrides, *BASE, *bad]) == 2
    assert storage.files("evals") == before
    assert "bad configuration" in capsys.readouterr().err


def test_cli_eval_and_merge(eval_study, capsys) -> None:
    study, overrides = eval_study
    args = [f"study={study}", *overrides, *BASE, "sampler.guidance=1", "eval.num_samples=4"]
    assert main(["eval", *args, "eval.shard=0/1"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["images"] == 4
    assert main(["merge", *args, "eval.shard=*/1"]) == 0
    assert json.loads(capsys.readouterr().out)["num_samples"] == 4
    assert main(["merge", *args, "sampler.steps=3", "--shards", "2"]) == 2
