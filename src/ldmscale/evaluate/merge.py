"""`merge(cfg)`: gather the committed shards of one sampling configuration into `metrics.json`
(the sampling-cost record read by the analysis).

The shards' metric states are added (so the FID is that of one pass over all samples), the FID is
computed against the reference statistics named in the shards' protocol, and the cost of the
configuration is computed from the preset at the checkpoint's latent size and text context:
norm_cost (GFLOPs of one forward / the c=320 forward's), sampling_cost = norm_cost x U-Net
evaluations per image (counted while sampling: one per timestep, so a Heun step is charged about
two), and gflops_per_image over the forward passes actually made (two per evaluation with
guidance).
Merge refuses, writing nothing, when a shard is missing or the shards disagree on the protocol.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from ldmscale.config.schema import StudyConfig
from ldmscale.evaluate.metrics import (
    FID_STATS,
    CLIPScoreMetric,
    FeatureStats,
    FIDMetric,
    MeanScore,
    load_states,
)
from ldmscale.evaluate.shard import PROMPT_SCORE, EvalInputError, eval_key
from ldmscale.models.cost import flops_per_image, model_cost
from ldmscale.provenance import provenance
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import commit, load_manifest, read_file
from ldmscale.train.checkpoint import resolve_step

METRICS = "metrics.json"


@dataclass
class MetricsRecord:
    model: str
    params: int
    channels: int
    checkpoint_step: int
    sampler: str
    steps: int
    guidance: float
    num_samples: int
    fid: float
    prompt_score: float
    prompt_score_name: str
    norm_cost: float
    unet_evaluations: int
    """U-Net evaluations per image (the sampler's timesteps; `steps` is the user's knob)."""
    sampling_cost: float
    """norm_cost x unet_evaluations (the paper's x-axis: cost of one forward x evaluations)."""
    gflops_per_image: float
    """GFLOPs of every forward pass for one image (two passes per evaluation with guidance)."""
    latency_ms_per_image: float
    device: str
    protocol: dict[str, Any]
    provenance: dict[str, Any]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> MetricsRecord:
        return cls(**json.loads(text))


def load_metrics(storage: Storage, key: paths.EvalKey) -> MetricsRecord | None:
    """The committed metrics of `key`, or None."""
    if load_manifest(storage, key.dir) is None:
        return None
    return MetricsRecord.from_json(read_file(storage, key.dir, METRICS).decode())


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


def merge(cfg: StudyConfig) -> MetricsRecord:
    """Merge the `eval.shard` count of shards of the configured sampling configuration."""
    storage = Storage(cfg.require_study(), cfg.storage.options)
    step = resolve_step(storage, cfg.model.preset, cfg.eval.checkpoint)
    key = eval_key(cfg, step)
    done = load_metrics(storage, key)
    if done is not None:
        return done
    count = cfg.eval.shard_count
    metas = _shard_metas(storage, key, count)
    protocol = metas[0]["protocol"]

    reference = FeatureStats.from_npz(read_file(storage, protocol["reference"], FID_STATS))
    fid_metric = FIDMetric(None, reference)
    # CLIP score's mean is floored at 0 (torchmetrics CLIPScore); alignment is a plain mean.
    score = CLIPScoreMetric(None) if protocol["prompt_score"] == "clip_score" else MeanScore()
    score.name = protocol["prompt_score"]
    for index in range(count):
        rel = key.shard_dir(index, count)
        fid_metric.merge_state(load_states(read_file(storage, rel, FID_STATS)))
        score.merge_state(load_states(read_file(storage, rel, PROMPT_SCORE)))
    if fid_metric.stats.n != protocol["num_samples"]:
        raise EvalInputError(
            f"shards of {storage.url(key.dir)} hold {fid_metric.stats.n} samples, the protocol "
            f"says {protocol['num_samples']}"
        )

    ckpt = load_manifest(storage, paths.checkpoint_dir(cfg.model.preset, step))
    assert ckpt is not None  # resolve_step found it committed
    latent = (
        int(ckpt.meta["latent_channels"]),
        int(ckpt.meta["latent_size"]),
        int(ckpt.meta["latent_size"]),
    )
    cost = model_cost(
        cfg.model.preset,
        latent=latent,
        context=int(ckpt.meta["context_dim"]),
        tokens=int(ckpt.meta["max_text_tokens"]),
    )
    seconds = sum(meta["generation_seconds"] for meta in metas)
    devices = sorted({meta["device"] for meta in metas})
    record = MetricsRecord(
        model=cfg.model.preset,
        params=cost.params,
        channels=cost.channels,
        checkpoint_step=step,
        sampler=key.sampler,
        steps=key.steps,
        guidance=key.guidance,
        num_samples=fid_metric.stats.n,
        fid=fid_metric.compute(),
        prompt_score=score.compute(),
        prompt_score_name=protocol["prompt_score"],
        norm_cost=cost.norm_cost,
        unet_evaluations=protocol["unet_evaluations"],
        sampling_cost=cost.norm_cost * protocol["unet_evaluations"],
        gflops_per_image=flops_per_image(
            cost.gflops, protocol["unet_evaluations"], protocol["unet_passes_per_evaluation"]
        ),
        latency_ms_per_image=1000.0 * seconds / fid_metric.stats.n,
        device=", ".join(devices),
        protocol={**protocol, "shards": count, "gflops_forward": cost.gflops},
        provenance=provenance(cfg),
    )
    commit(
        storage,
        key.dir,
        files={METRICS: record.to_json().encode()},
        meta={"fid": record.fid, "shards": count, "num_samples": record.num_samples},
    )
    return record
