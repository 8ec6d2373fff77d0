"""Everything an eval shard loads before it generates: the device, the checkpoint's sampling
model and image generator, the feature extractor and FID state, the prompt scorer, and the
reference statistics (computed and committed by the first shard that needs them). Its
`protocol()` is what the shard records and what merge checks the shards agree on."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from typing import Any

import torch

from ldmscale.config.schema import StudyConfig
from ldmscale.evaluate.prompts import dataset_protocol, is_domain
from ldmscale.evaluate.reference import reference_identity, reference_stats
from ldmscale.metrics.fid import FID
from ldmscale.metrics.scores import AlignmentScorer, MeanScore
from ldmscale.runtime import resolve_device
from ldmscale.sample.generate import NOISE_STREAM, ImageGenerator
from ldmscale.sample.load import CheckpointInfo, load_sampling_model
from ldmscale.sample.speed import fast_sampling_model
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage


def device_name(device: torch.device) -> str:
    """The accelerator's name, or the CPU's architecture and thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"


@dataclass
class ShardContext:
    """What one eval shard generates and measures with."""

    rel: str
    device: torch.device
    info: CheckpointInfo
    generate: ImageGenerator
    extractor: torch.nn.Module
    feature_protocol: dict[str, Any]
    fid: FID
    scorer: Any
    """`AlignmentScorer` or `CLIPScorer`: batch -> per-image scores."""
    score: MeanScore
    reference_rel: str
    reference_identity: dict[str, Any]
    dataset: dict[str, Any]
    speed: dict[str, Any]
    """The sampling speed options applied to the U-Net (ldmscale.sample.speed)."""

    @property
    def device_name(self) -> str:
        """Where the images were generated."""
        return device_name(self.device)

    def protocol(self) -> dict[str, Any]:
        """Everything that identifies how the shard's numbers were made."""
        identity, generate = self.reference_identity, self.generate
        return {
            **self.feature_protocol,
            **self.dataset,
            "resolution": int(self.info.meta.resolution),
            "reference": self.reference_rel,
            "reference_images": identity["reference_images"],
            "reference_resize": identity.get("reference_resize", "none (rendered at resolution)"),
            "clip_model": "",
            **self.scorer.protocol(),
            **sampling_protocol(self.info, generate, "base"),
        }


def sampling_protocol(info: CheckpointInfo, generate: ImageGenerator, kind: str) -> dict[str, Any]:
    """The protocol entries of what sampled a shard: the noise rule, the checkpoint (its run,
    step, kind (`kind` when its objective names none), parent and U-Net) and the sampler's
    settings and U-Net evaluations."""
    return {
        "noise_seed": f"derive_seed(seed, {NOISE_STREAM!r}, prompt index)",
        "run": info.run.path,
        "checkpoint_step": info.step,
        "checkpoint_kind": info.meta.objective.get("checkpoint", kind),
        "parent": info.meta.parent,
        "unet": info.unet_dir,
        "unet_sha256": info.unet_sha256,
        "sampler": generate.sampler,
        "steps": generate.steps,
        "guidance": generate.guidance,
        "timestep_spacing": generate.timestep_spacing,
        "unet_evaluations": generate.evaluations,
        "unet_passes_per_evaluation": generate.passes_per_evaluation,
    }


def shard_timing(cfg: StudyConfig, seconds: float, device: str) -> dict[str, Any]:
    """A shard's meta entries of where it sits and how long its generation took (`seconds` for
    its `eval.shard_range()` images on `device`, as `device_name` names it)."""
    start, stop = cfg.eval.shard_range()
    return {
        "shard": cfg.eval.shard_index,
        "shards": cfg.eval.shard_count,
        "start": start,
        "stop": stop,
        "generation_seconds": seconds,
        "latency_ms_per_image": 1000.0 * seconds / (stop - start),
        "device": device,
        "batch_size": cfg.eval.batch_size,
    }


def _scorer(cfg: StudyConfig, evaluator: Any, device: torch.device) -> Any:
    if is_domain(cfg.eval.prompt_set):
        return AlignmentScorer(evaluator)
    from ldmscale.metrics.clip import CLIPScorer, load_clip

    clip = load_clip(cfg.eval.clip_model, cfg.storage.options, cfg.storage.cache_dir)
    clip.model.to(device)
    return CLIPScorer(clip)


def build_context(cfg: StudyConfig, storage: Storage, key: paths.EvalKey, rel: str) -> ShardContext:
    """Load what shard `rel` of the configuration `key` needs (on `cfg.device`)."""
    from ldmscale.metrics.features import build_extractor
    from ldmscale.models.domain import evaluator_for

    device = resolve_device(cfg.device)
    e = cfg.eval
    needs_evaluator = is_domain(e.prompt_set) or e.feature_extractor == "domain"
    evaluator = evaluator_for(cfg, storage, device) if needs_evaluator else None
    extractor, feature_protocol = build_extractor(
        e.feature_extractor,
        evaluator=evaluator,
        inception_weights=e.inception_weights,
        clip_model=e.clip_model,
        options=cfg.storage.options,
        cache=cfg.storage.cache_dir,
    )
    extractor.to(device)
    scorer = _scorer(cfg, evaluator, device)
    model, info = load_sampling_model(storage, key.run, key.step, device, cfg.storage)
    model, speed = fast_sampling_model(model, e)
    # Before the reference statistics, which the first shard commits: values the checkpoint's
    # schedule cannot sample are refused with nothing written.
    generate = ImageGenerator(model, key.sampler, key.steps, key.guidance, cfg.seed, key.spacing)
    identity = reference_identity(
        e.prompt_set,
        e.reference_images,
        cfg.seed,
        e.num_samples,
        int(info.meta.resolution),
        feature_protocol,
        cfg.storage,
    )
    reference_rel, _ = reference_stats(
        storage, identity, extractor, device, e.batch_size, cfg.storage
    )
    return ShardContext(
        rel=rel,
        device=device,
        info=info,
        generate=generate,
        extractor=extractor,
        feature_protocol=feature_protocol,
        fid=FID(int(feature_protocol["feature_dim"])),
        scorer=scorer,
        score=MeanScore(scorer.name, scorer.floor),
        reference_rel=reference_rel,
        reference_identity=identity,
        dataset=dataset_protocol(e.prompt_set, cfg.storage),
        speed=speed,
    )
