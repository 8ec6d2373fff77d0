"""`evaluate(cfg)`: one eval shard — generate the shard's slice of the prompt set with one
sampling configuration of one checkpoint, and commit mergeable metric states.

Output, committed by manifest under
`evals/<model>/step-<N>/<sampler>-s<steps>-g<g>/shard-<i>-of-<n>/`:

    fid_state.npz       the generated half of a torchmetrics FID state (float64 sums)
    prompt_score.npz    the MeanMetric state of the prompt score (alignment or CLIP score)
    samples.npz         per-image features, prompt scores and prompt indices (for intervals)
    grid.png            the shard's first `eval.grid_size` images
    manifest.json       meta: protocol (everything merge checks), timing, device, prompt range,
                        the sampling speed options applied (`speed`, ldmscale.sample.speed)

Nothing is written before the end, so a shard killed mid-way leaves no trace and its rerun gives
the same images (seeds depend on the prompt index only) and the same states. A committed shard
returns at once. Latents, images, features or scores holding NaN or infinity are never
committed: the shard fails with NonFinite (exit 65) naming the configuration and, when the
model's training log shows it, that its training diverged.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ldmscale.config.schema import StudyConfig
from ldmscale.data.pixels import grid_png, to_hwc_uint8
from ldmscale.errors import MissingInput, NonFinite
from ldmscale.evaluate.context import ShardContext, build_context, shard_timing
from ldmscale.evaluate.identity import EvalInputError, refuse_reuse, request
from ldmscale.evaluate.prompts import (
    caption_set,
    is_domain,
    load_prompts,
    missing_inputs,
    used_inputs,
)
from ldmscale.metrics.fid import FID_STATE, save_state
from ldmscale.metrics.scores import SCORE_STATE, Batch
from ldmscale.metrics.training import diverged
from ldmscale.provenance import provenance
from ldmscale.storage import paths
from ldmscale.storage.checkpoints import resolve_step
from ldmscale.storage.fs import Storage, open_study
from ldmscale.storage.manifest import commit, intact, load_manifest
from ldmscale.storage.sources import require_sources

SAMPLES = "samples.npz"
GRID = "grid.png"
TASKS = {"super-resolution": "ldmscale.evaluate.sr:evaluate_sr"}
"""The task a checkpoint's objective records (`meta.objective["task"]`) -> the shard function
(`module:function`, called as `function(cfg, storage, key)`) of a task that is not
text-to-image; a checkpoint without a task is a text-to-image one, evaluated here."""


def task_of(storage: Storage, key: paths.EvalKey) -> str:
    """The task of the checkpoint `key` samples, from its manifest alone."""
    from ldmscale.sample.load import checkpoint_info

    objective = checkpoint_info(storage, key.run, key.step).meta.objective
    return str(objective.get("task", "text-to-image"))


@dataclass
class ShardRecord:
    """What an eval shard committed (or found committed)."""

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
        """Images the shard generated."""
        return self.stop - self.start


def committed(storage: Storage, key: paths.EvalKey) -> paths.EvalKey:
    """`key`, its checkpoint committed (MissingInput naming the committed ones otherwise)."""
    resolve_step(storage, key.run, paths.checkpoint_name(key.step))
    return key


def requested_key(cfg: StudyConfig, storage: Storage) -> paths.EvalKey:
    """The sampling configuration `cfg` asks for, its `eval.checkpoint` resolved to a committed
    step (MissingInput when there is none)."""
    return eval_key(cfg, resolve_step(storage, paths.run_key(cfg.model), cfg.eval.checkpoint))


def eval_key(cfg: StudyConfig, step: int) -> paths.EvalKey:
    """The sampling configuration `cfg` asks for, on checkpoint `step`."""
    s = cfg.sampler
    return paths.EvalKey(
        paths.run_key(cfg.model), step, s.name, s.steps, s.guidance, s.timestep_spacing
    )


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


def _check_committed(
    cfg: StudyConfig, storage: Storage, rel: str, sr: bool = False
) -> dict[str, Any] | None:
    """The committed shard's meta, or None; BadInput when it was made under another protocol
    (`ldmscale.evaluate.identity`; `sr`: a super-resolution shard's)."""
    if not intact(storage, rel):
        return None
    manifest = load_manifest(storage, rel)
    assert manifest is not None  # intact: committed
    refuse_reuse(storage.url(rel), manifest.meta["protocol"], request(cfg, sr))
    return manifest.meta


def _check_inputs(cfg: StudyConfig) -> None:
    """Refuse, before loading anything, a real-data request that lacks inputs or samples."""
    e = cfg.eval
    missing = missing_inputs(e)
    if missing:
        raise EvalInputError("this evaluation needs " + "; ".join(missing))
    require_sources(cfg, used_inputs(e))
    if not is_domain(e.prompt_set):
        try:
            size = len(caption_set(e.prompt_set, cfg.storage))
        except ValueError as err:
            raise EvalInputError(str(err)) from None
        if size < e.num_samples:
            raise EvalInputError(
                f"eval.prompt_set={e.prompt_set!r} has {size} captioned images; "
                f"eval.num_samples={e.num_samples} is more"
            )


@dataclass
class Generated:
    """What the generation loop of a shard produced."""

    features: list[np.ndarray] = field(default_factory=list)
    scores: list[np.ndarray] = field(default_factory=list)
    grid: list[torch.Tensor] = field(default_factory=list)
    seconds: float = 0.0


def _generate(cfg: StudyConfig, context: ShardContext, start: int, stop: int) -> Generated:
    """Generate prompts start..stop-1 in batches; feed FID and the prompt score."""
    out = Generated()
    batch_size, device = cfg.eval.batch_size, context.device
    with tqdm(total=stop - start, desc=f"eval {context.rel}", unit="img", leave=False) as bar:
        for first in range(start, stop, batch_size):
            last = min(first + batch_size, stop)
            prompts = load_prompts(cfg.eval.prompt_set, cfg.seed, first, last, cfg.storage)
            began = time.perf_counter()
            pixels = context.generate(prompts.captions, range(first, last))
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            out.seconds += time.perf_counter() - began
            with torch.no_grad():
                features = context.extractor(pixels)
            context.fid.update(features, real=False)
            scores = context.scorer(Batch(pixels, prompts.captions, prompts.labels))
            context.score.update(scores)
            out.features.append(features.float().cpu().numpy())
            out.scores.append(scores.double().numpy())
            out.grid.extend(pixels[: max(cfg.eval.grid_size - len(out.grid), 0)].cpu())
            bar.update(last - first)
    return out


def _samples_npz(out: Generated, start: int, stop: int) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        features=np.concatenate(out.features),
        scores=np.concatenate(out.scores),
        prompts=np.arange(start, stop, dtype=np.int64),
    )
    return buffer.getvalue()


def _non_finite(cfg: StudyConfig, storage: Storage, key: paths.EvalKey, err: NonFinite) -> str:
    """Why a shard was not committed: the configuration, what held NaN, the training's health."""
    run = key.run.path
    health = diverged(storage, [run]).get(run)
    if not health:
        logged = storage.exists(paths.train_log(key.run))
        health = "its training log shows no divergence" if logged else "no training log here"
    return (
        f"{storage.url(key.shard_dir(cfg.eval.shard_index, cfg.eval.shard_count))} not "
        f"committed. Model {run}, checkpoint {paths.checkpoint_name(key.step)}, sampler "
        f"{key.sampler}, {key.steps} steps, guidance {key.guidance:g}, timestep_spacing "
        f"{key.spacing}: {err}. Training of {run}: {health}. A retry computes the same: train "
        "the model again (e.g. at a lower train.lr) or change the configuration"
    )


def evaluate(
    cfg: StudyConfig, storage: Storage | None = None, key: paths.EvalKey | None = None
) -> ShardRecord:
    """Evaluate shard `eval.shard` of the sampling configuration `key` (the one `cfg` asks for
    when not given; `storage`: the study, opened from `cfg` when not given)."""
    storage = storage or open_study(cfg)
    if key is None:
        try:
            key = requested_key(cfg, storage)
        except MissingInput:
            _check_inputs(cfg)  # a request that cannot be served is named first
            raise
    else:
        key = committed(storage, key)
    task = task_of(storage, key)
    if task in TASKS:
        function = TASKS[task].partition(":")
        evaluate_task = getattr(import_module(function[0]), function[2])
        return evaluate_task(cfg, storage, key)
    _check_inputs(cfg)
    rel = key.shard_dir(cfg.eval.shard_index, cfg.eval.shard_count)
    done = _check_committed(cfg, storage, rel)
    if done is not None:
        return _record(key, rel, done, skipped=True)

    context = build_context(cfg, storage, key, rel)
    start, stop = cfg.eval.shard_range()
    try:
        out = _generate(cfg, context, start, stop)
    except NonFinite as err:
        raise NonFinite(_non_finite(cfg, storage, key, err)) from None
    meta = {
        **shard_timing(cfg, out.seconds, context.device_name),
        "speed": context.speed,
        "protocol": {**context.protocol(), **request(cfg)},
        "provenance": provenance(cfg),
    }
    files = {
        FID_STATE: save_state(context.fid.state(real=False)),
        SCORE_STATE: save_state(context.score.state()),
        SAMPLES: _samples_npz(out, start, stop),
    }
    if out.grid:
        files[GRID] = grid_png(to_hwc_uint8(torch.stack(out.grid)))
    commit(storage, rel, files=files, meta=meta)
    return _record(key, rel, meta, skipped=False)
