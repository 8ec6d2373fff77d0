"""`evaluate(cfg)`: one eval shard — generate the shard's slice of the prompt set with one
sampling configuration of one checkpoint, and commit mergeable metric states.

Output, committed by manifest under
`evals/<model>/step-<N>/<sampler>-s<steps>-g<g>/shard-<i>-of-<n>/`:

    fid_stats.npz       n, sum, sum_outer (float64) of the generated images' features
    prompt_score.npz    sum, count of the prompt score (alignment or CLIP score)
    grid.png            the shard's first `eval.grid_size` images
    manifest.json       meta: protocol (everything merge checks), timing, device, prompt range,
                        the sampling speed options applied (`speed`, ldmscale.sample.speed)

Nothing is written before the end, so a shard killed mid-way leaves no trace and its rerun gives
the same images (seeds depend on the prompt index only) and the same states. A committed shard
returns at once.
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ldmscale.config.schema import StudyConfig
from ldmscale.evaluate.features import build_extractor
from ldmscale.evaluate.metrics import (
    FID_STATS,
    AlignmentMetric,
    Batch,
    CLIPScoreMetric,
    FIDMetric,
    save_states,
)
from ldmscale.evaluate.prompts import (
    caption_set,
    dataset_protocol,
    is_domain,
    load_prompts,
    missing_inputs,
)
from ldmscale.evaluate.reference import reference_identity, reference_stats
from ldmscale.provenance import provenance
from ldmscale.runtime import resolve_device
from ldmscale.sample.generate import NOISE_STREAM, ImageGenerator
from ldmscale.sample.load import checkpoint_info, load_sampling_model
from ldmscale.sample.speed import fast_sampling_model
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import commit, load_manifest
from ldmscale.train.checkpoint import resolve_step

PROMPT_SCORE = "prompt_score.npz"
GRID = "grid.png"
# Protocol entries known before loading anything: a committed shard must agree on them.
REQUEST_KEYS = ("prompt_set", "seed", "num_samples", "shards", "feature_extractor")


class EvalInputError(ValueError):
    """A request that cannot be served as asked (nothing was written)."""


@dataclass
class ShardRecord:
    key: paths.EvalKey
    shard: int
    shards: int
    rel_dir: str
    start: int
    stop: int
    """[start, stop) prompt indices of the shard."""
    prompt_score_name: str
    generation_seconds: float
    """Wall time of generation (text encoding, sampling loop, decoding); start-up excluded."""
    latency_ms_per_image: float
    device: str
    protocol: dict[str, Any]
    skipped: bool = False
    """True when the shard was already committed and nothing was done."""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_images(self) -> int:
        return self.stop - self.start


def eval_key(cfg: StudyConfig, step: int) -> paths.EvalKey:
    return paths.EvalKey(
        cfg.model.preset, step, cfg.sampler.name, cfg.sampler.steps, cfg.sampler.guidance
    )


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"


def _request(cfg: StudyConfig) -> dict[str, Any]:
    return {
        "prompt_set": cfg.eval.prompt_set,
        "seed": cfg.seed,
        "num_samples": cfg.eval.num_samples,
        "shards": cfg.eval.shard_count,
        "feature_extractor": cfg.eval.feature_extractor,
    }


def _record(key: paths.EvalKey, rel: str, meta: dict[str, Any], skipped: bool) -> ShardRecord:
    return ShardRecord(
        key=key,
        shard=meta["shard"],
        shards=meta["shards"],
        rel_dir=rel,
        start=meta["start"],
        stop=meta["stop"],
        prompt_score_name=meta["protocol"]["prompt_score"],
        generation_seconds=meta["generation_seconds"],
        latency_ms_per_image=meta["latency_ms_per_image"],
        device=meta["device"],
        protocol=meta["protocol"],
        skipped=skipped,
        meta=meta,
    )


def _grid_png(images: list[torch.Tensor]) -> bytes:
    """Images [3, H, W] in [-1, 1] tiled row-major into one PNG."""
    from PIL import Image

    cols = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    _, height, width = images[0].shape
    canvas = np.zeros((rows * height, cols * width, 3), dtype=np.uint8)
    for i, image in enumerate(images):
        tile = ((image.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
        r, c = divmod(i, cols)
        canvas[r * height : (r + 1) * height, c * width : (c + 1) * width] = tile
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, format="PNG")
    return buffer.getvalue()


def _check_committed(cfg: StudyConfig, storage: Storage, rel: str) -> dict[str, Any] | None:
    manifest = load_manifest(storage, rel)
    if manifest is None:
        return None
    committed = manifest.meta["protocol"]
    asked = _request(cfg)
    differ = [k for k in REQUEST_KEYS if committed.get(k) != asked[k]]
    if differ:
        raise EvalInputError(
            f"{storage.url(rel)} is already committed under a different protocol ("
            + ", ".join(f"{k}: {committed.get(k)!r} != {asked[k]!r}" for k in differ)
            + "); remove it to evaluate again"
        )
    return manifest.meta


def _prompt_metric(cfg: StudyConfig, evaluator: Any) -> AlignmentMetric | CLIPScoreMetric:
    if is_domain(cfg.eval.prompt_set):
        return AlignmentMetric(evaluator)
    return CLIPScoreMetric(cfg.eval.clip_model, cfg.storage.cache_dir)


def _check_inputs(cfg: StudyConfig) -> None:
    """Refuse, before loading anything, a real-data request that lacks inputs or samples."""
    e = cfg.eval
    missing = missing_inputs(
        e.prompt_set, e.reference_images, e.feature_extractor, e.inception_weights, e.clip_model
    )
    if missing:
        raise EvalInputError("this evaluation needs " + "; ".join(missing))
    if not is_domain(e.prompt_set):
        try:
            size = len(caption_set(e.prompt_set, cfg.storage.options))
        except ValueError as err:
            raise EvalInputError(str(err)) from None
        if size < e.num_samples:
            raise EvalInputError(
                f"eval.prompt_set={e.prompt_set!r} has {size} captioned images; "
                f"eval.num_samples={e.num_samples} is more"
            )


def evaluate(cfg: StudyConfig) -> ShardRecord:
    """Evaluate shard `eval.shard` of the sampling configuration `sampler` of `model`."""
    storage = Storage(cfg.require_study(), cfg.storage.options)
    _check_inputs(cfg)
    step = resolve_step(storage, cfg.model.preset, cfg.eval.checkpoint)
    key = eval_key(cfg, step)
    index, count = cfg.eval.shard_index, cfg.eval.shard_count
    rel = key.shard_dir(index, count)
    done = _check_committed(cfg, storage, rel)
    if done is not None:
        return _record(key, rel, done, skipped=True)
    if count > cfg.eval.num_samples:
        raise EvalInputError(
            f"eval.shard={cfg.eval.shard}: {count} shards for eval.num_samples="
            f"{cfg.eval.num_samples} would leave shards empty"
        )

    device = resolve_device(cfg.device)
    info = checkpoint_info(storage, cfg.model.preset, step)
    domain = is_domain(cfg.eval.prompt_set)
    evaluator = None
    if domain or cfg.eval.feature_extractor == "domain":
        from ldmscale.prepare.domain import evaluator_for

        evaluator = evaluator_for(cfg, device)
    extractor, feature_protocol = build_extractor(
        cfg.eval.feature_extractor,
        evaluator=evaluator,
        inception_weights=cfg.eval.inception_weights,
        clip_model=cfg.eval.clip_model,
        cache=cfg.storage.cache_dir,
    )
    extractor.to(device)
    prompt_metric = _prompt_metric(cfg, evaluator)
    resolution = int(info.meta["resolution"])
    identity = reference_identity(
        cfg.eval.prompt_set,
        cfg.eval.reference_images,
        cfg.seed,
        cfg.eval.num_samples,
        resolution,
        feature_protocol,
        cfg.storage.options,
    )
    reference_rel, reference = reference_stats(
        storage, identity, extractor, device, cfg.eval.batch_size, cfg.storage.options
    )
    model, _ = load_sampling_model(storage, cfg.model.preset, step, device, cfg.storage.cache_dir)
    model, speed = fast_sampling_model(model, cfg.eval)
    generate = ImageGenerator(
        model,
        cfg.sampler.name,
        cfg.sampler.steps,
        cfg.sampler.guidance,
        cfg.seed,
        cfg.sampler.timestep_spacing,
    )
    fid_metric = FIDMetric(extractor, reference)

    start, stop = cfg.eval.shard_range()
    grid: list[torch.Tensor] = []
    seconds = 0.0
    with tqdm(total=stop - start, desc=f"eval {rel}", unit="img", leave=False) as progress:
        for first in range(start, stop, cfg.eval.batch_size):
            last = min(first + cfg.eval.batch_size, stop)
            prompts = load_prompts(cfg.eval.prompt_set, cfg.seed, first, last, cfg.storage.options)
            began = time.perf_counter()
            pixels = generate(prompts.captions, range(first, last))
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds += time.perf_counter() - began
            batch = Batch(pixels, prompts.captions, prompts.labels)
            fid_metric.update(batch)
            prompt_metric.update(batch)
            grid.extend(pixels[: max(cfg.eval.grid_size - len(grid), 0)].cpu())
            progress.update(last - first)

    protocol = {
        **_request(cfg),
        **feature_protocol,
        **dataset_protocol(cfg.eval.prompt_set, cfg.storage.options),
        "resolution": resolution,
        "reference": reference_rel,
        "reference_images": identity["reference_images"],
        "reference_resize": identity.get("reference_resize", "none (rendered at resolution)"),
        "prompt_score": prompt_metric.name,
        "clip_model": "",
        **(prompt_metric.protocol() if isinstance(prompt_metric, CLIPScoreMetric) else {}),
        "noise_seed": f"derive_seed(seed, {NOISE_STREAM!r}, prompt index)",
        "checkpoint_step": step,
        "unet": info.unet_dir,
        "unet_sha256": info.unet_sha256,
        "sampler": cfg.sampler.name,
        "steps": cfg.sampler.steps,
        "guidance": cfg.sampler.guidance,
        "timestep_spacing": cfg.sampler.timestep_spacing,
        "unet_evaluations": generate.evaluations,
        "unet_passes_per_evaluation": generate.passes_per_evaluation,
    }
    meta = {
        "shard": index,
        "shards": count,
        "start": start,
        "stop": stop,
        "generation_seconds": seconds,
        "latency_ms_per_image": 1000.0 * seconds / (stop - start),
        "device": device_name(device),
        "batch_size": cfg.eval.batch_size,
        "speed": speed,
        "protocol": protocol,
        "provenance": provenance(cfg),
    }
    files = {
        FID_STATS: save_states(fid_metric.state()),
        PROMPT_SCORE: save_states(prompt_metric.state()),
    }
    if grid:
        files[GRID] = _grid_png(grid)
    commit(storage, rel, files=files, meta=meta)
    return _record(key, rel, meta, skipped=False)
