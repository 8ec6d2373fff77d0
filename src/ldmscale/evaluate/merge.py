"""`merge(cfg)`: gather the committed shards of one sampling configuration into `metrics.json`
(`ldmscale.storage.records.MetricsRecord`, read by the analysis).

The shards' torchmetrics states are merged (so the FID is that of one pass over all samples), the
FID is computed against the reference statistics named in the shards' protocol, intervals come
from a bootstrap over the shards' per-sample features and scores (`ldmscale.metrics.intervals`),
and the cost is computed from the preset at the checkpoint's latent size and text context:
norm_cost (GFLOPs of one forward / the c=320 forward's), sampling_cost = norm_cost x U-Net
evaluations per image (counted while sampling: one per timestep, so a Heun step is charged about
two), and gflops_per_image over the forward passes actually made (two per evaluation with
guidance). Merge refuses, writing nothing, when a shard is missing or the shards disagree on the
protocol, and fails with NonFinite (exit 65) on a shard whose states hold NaN or infinity.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from ldmscale.config.schema import StudyConfig
from ldmscale.errors import NonFinite
from ldmscale.evaluate.identity import EvalInputError, merge_request, refuse_reuse
from ldmscale.evaluate.shard import SAMPLES, committed, requested_key
from ldmscale.metrics.fid import FID, FID_STATE, load_state
from ldmscale.metrics.inception_score import SPLITS, inception_score, inception_score_interval
from ldmscale.metrics.intervals import Interval, fid_interval, mean_interval
from ldmscale.metrics.scores import SCORE_STATE, MeanScore
from ldmscale.models.cost import flops_per_image, model_cost
from ldmscale.provenance import provenance
from ldmscale.runtime import derive_seed
from ldmscale.sample.budgets import budgets_served
from ldmscale.storage import paths
from ldmscale.storage.checkpoints import read_meta
from ldmscale.storage.fs import Storage, open_study
from ldmscale.storage.manifest import (
    CorruptArtifact,
    commit,
    load_manifest,
    read_file,
    recompute,
)
from ldmscale.storage.records import METRICS, MetricsRecord, load_metrics
from ldmscale.train.diffusion import noise_schedule


def _shard_metas(storage: Storage, key: paths.EvalKey, count: int) -> list[dict[str, Any]]:
    metas, missing = [], []
    for index in range(count):
        manifest = load_manifest(storage, key.shard_dir(index, count))
        if manifest is None:
            missing.append(index)
        else:
            metas.append(manifest.meta)
    if missing:
        raise EvalInputError(
            f"cannot merge {storage.url(key.dir)}: shard(s) {', '.join(map(str, missing))} of "
            f"{count} are not committed; run them first (ldmscale eval eval.shard=i/{count})"
        )
    first = metas[0]["protocol"]
    for index, meta in enumerate(metas[1:], start=1):
        differ = sorted(
            k for k in set(first) | set(meta["protocol"]) if first.get(k) != meta["protocol"].get(k)
        )
        if differ:
            raise EvalInputError(
                f"cannot merge {storage.url(key.dir)}: shard {index} was produced under another "
                f"protocol than shard 0 ({', '.join(differ)}); re-run the stale shards"
            )
    return metas


def _merged(
    storage: Storage, key: paths.EvalKey, count: int, protocol: dict[str, Any]
) -> tuple[FID, dict[str, MeanScore], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(FID with every shard, the per-image scores with every shard by name: the prompt score
    under `prompt_score`, then the task's `extra_scores`; the reference state, per-sample data:
    features, scores, each extra score, and the Inception Score's logits where the protocol
    has one)."""
    reference = load_state(read_file(storage, protocol["reference"], FID_STATE))
    fid = FID(int(protocol["feature_dim"]))
    fid.merge(reference)
    floor = 0.0 if protocol["prompt_score"] == "clip_score" else None
    extra = list(protocol.get("extra_scores", []))
    scores = {"prompt_score": MeanScore(protocol["prompt_score"], floor)}
    scores.update({name: MeanScore(name) for name in extra})
    states = {"prompt_score": SCORE_STATE, **{name: f"{name}.npz" for name in extra}}
    names = ["features", "scores", *extra, *(["logits"] if "is_splits" in protocol else [])]
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for index in range(count):
        rel = key.shard_dir(index, count)
        try:
            fid_state = load_state(read_file(storage, rel, FID_STATE))
            loaded = {k: load_state(read_file(storage, rel, f)) for k, f in states.items()}
            per_sample = read_file(storage, rel, SAMPLES)
        except CorruptArtifact as err:
            raise recompute(storage, rel, err) from err
        try:
            fid.merge(fid_state)
            for name, state in loaded.items():
                scores[name].merge(state)
        except NonFinite as err:
            raise NonFinite(
                f"{storage.url(rel)} cannot be merged: {err} (an eval shard no longer commits "
                "such values; remove the shard and evaluate it again to see why)"
            ) from None
        with np.load(io.BytesIO(per_sample)) as arrays:
            for name in parts:
                parts[name].append(arrays[name])
    samples = {name: np.concatenate(values) for name, values in parts.items()}
    return fid, scores, reference, samples


def _task_metrics(
    cfg: StudyConfig, key: paths.EvalKey, scores: dict[str, MeanScore], samples: dict
) -> dict[str, Any]:
    """The record's task fields: LPIPS and the Inception Score, each with its interval, where
    the shards measured them (super-resolution), their values from every merged image."""
    resamples, seed = cfg.eval.intervals, derive_seed(cfg.seed, "bootstrap", key.path)
    found: dict[str, Any] = {}
    if "lpips" in scores:
        ci = mean_interval(samples["lpips"], resamples, seed)
        found.update(lpips=scores["lpips"].compute(), lpips_low=ci.low, lpips_high=ci.high)
    if "logits" in samples:
        ci = inception_score_interval(samples["logits"], SPLITS, resamples, seed)
        found.update(
            inception_score=inception_score(samples["logits"], SPLITS, seed),
            inception_score_low=ci.low,
            inception_score_high=ci.high,
        )
    return found


def _costs(
    storage: Storage, cfg: StudyConfig, key: paths.EvalKey, protocol: dict[str, Any]
) -> dict:
    """The cost fields of the record (`sampling_costs`), and the sweep's budgets the
    configuration serves on the equal-cost grid."""
    costs = sampling_costs(
        storage,
        key,
        int(protocol["unet_evaluations"]),
        int(protocol["unet_passes_per_evaluation"]),
    )
    budgets = list(cfg.sweep.budgets)
    if budgets:
        schedule = dict(noise_schedule(cfg.train).config)
        sampler, steps, spacing = (
            protocol["sampler"],
            protocol["steps"],
            protocol["timestep_spacing"],
        )
        norm_cost = costs["norm_cost"]
        budgets = budgets_served(norm_cost, budgets, sampler, int(steps), schedule, spacing)
    return {**costs, "budgets": budgets}


def sampling_costs(
    storage: Storage, key: paths.EvalKey, evaluations: int, passes: int
) -> dict[str, Any]:
    """The cost of sampling one image of `key`'s checkpoint with `evaluations` U-Net
    evaluations of `passes` forward passes each, from the preset at the checkpoint's latent size
    and text context (module docstring), and the checkpoint's training compute."""
    meta = read_meta(storage, key.run, key.step)
    cost = model_cost(key.model, meta.latent_shape, meta.context_dim, meta.max_text_tokens)
    return {
        "params": cost.params,
        "channels": cost.channels,
        "norm_cost": cost.norm_cost,
        "unet_evaluations": evaluations,
        "sampling_cost": cost.norm_cost * evaluations,
        "gflops_per_image": flops_per_image(cost.gflops, evaluations, passes),
        "gflops_forward": cost.gflops,
        "training_compute": training_compute(storage, key.run, key.step),
    }


def training_compute(storage: Storage, run: paths.RunKey, step: int) -> float:
    """GFLOPs per forward x optimizer steps, in forward-and-backward equivalents, of checkpoint
    `step` of `run` and of the checkpoints it was fine-tuned from (`CheckpointMeta.train_flops`
    counts every forward of a step: 3 for training, more with a teacher)."""
    meta = read_meta(storage, run, step)
    own = meta.train_flops * step / (3e9 * meta.samples_seen) if meta.samples_seen else 0.0
    parent = meta.parent
    if not parent:
        return own
    return own + training_compute(storage, paths.RunKey.parse(parent["run"]), int(parent["step"]))


def _intervals(
    cfg: StudyConfig,
    key: paths.EvalKey,
    reference: dict[str, np.ndarray],
    samples: dict[str, np.ndarray],
    floor: float | None,
) -> tuple[Interval, Interval, str]:
    """(FID interval, prompt-score interval, how they were made), seeded by the configuration."""
    resamples, seed = cfg.eval.intervals, derive_seed(cfg.seed, "bootstrap", key.path)
    fid_ci = fid_interval(reference, samples["features"], resamples, seed)
    score_ci = mean_interval(samples["scores"], resamples, seed, floor)
    interval = (
        f"{fid_ci.level:.0%} percentile bootstrap over generated samples ({resamples} "
        "resamples, reference fixed; FID: the resamples' spread around their median, placed "
        "around the estimate)"
    )
    return fid_ci, score_ci, interval


def merge(
    cfg: StudyConfig, storage: Storage | None = None, key: paths.EvalKey | None = None
) -> MetricsRecord:
    """Merge the `eval.shard` count of shards of the sampling configuration `key` (the one
    `cfg` asks for when not given; `storage`: the study, opened from `cfg` when not given). A
    committed record made under another protocol is refused (BadInput), not handed back."""
    storage = storage or open_study(cfg)
    key = committed(storage, key) if key else requested_key(cfg, storage)
    done = load_metrics(storage, key)
    if done is not None:
        sr = done.protocol.get("task") == "super-resolution"
        refuse_reuse(storage.url(key.dir), done.protocol, merge_request(cfg, sr))
        return done
    count = cfg.eval.shard_count
    metas = _shard_metas(storage, key, count)
    protocol = metas[0]["protocol"]
    fid, scores, reference, samples = _merged(storage, key, count, protocol)
    score = scores["prompt_score"]
    n = fid.count(real=False)
    if n != protocol["num_samples"]:
        raise EvalInputError(
            f"shards of {storage.url(key.dir)} hold {n} samples, the protocol says "
            f"{protocol['num_samples']}"
        )
    resamples = cfg.eval.intervals
    fid_ci, score_ci, interval = _intervals(cfg, key, reference, samples, score.floor)
    costs = _costs(storage, cfg, key, protocol)
    record = MetricsRecord(
        model=key.model,
        run=key.run.path,
        checkpoint_step=key.step,
        sampler=key.sampler,
        steps=key.steps,
        guidance=key.guidance,
        num_samples=n,
        fid=fid.compute(),
        fid_low=fid_ci.low,
        fid_high=fid_ci.high,
        prompt_score=score.compute(),
        prompt_score_low=score_ci.low,
        prompt_score_high=score_ci.high,
        prompt_score_name=protocol["prompt_score"],
        latency_ms_per_image=1000.0 * sum(m["generation_seconds"] for m in metas) / n,
        device=", ".join(sorted({m["device"] for m in metas})),
        protocol={
            **protocol,
            "shards": count,
            "resamples": resamples,
            "interval": interval,
            "gflops_forward": costs.pop("gflops_forward"),
        },
        provenance=provenance(cfg),
        task=protocol.get("task", "text-to-image"),
        **_task_metrics(cfg, key, scores, samples),
        **costs,
    )
    meta = {"fid": record.fid, "shards": count, "num_samples": n}
    commit(storage, key.dir, files={METRICS: record.to_json().encode()}, meta=meta)
    return record
