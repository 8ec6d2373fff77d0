"""One eval shard of a super-resolution checkpoint (`ldmscale.train.sr`): restore the shard's
slice of the high-resolution set (`ldmscale.evaluate.sr_images`) from its Real-ESRGAN-degraded
inputs with one sampling configuration, and commit mergeable metric states. `ldmscale eval`
comes here for a checkpoint whose objective records the task `super-resolution`
(`ldmscale.evaluate.shard.TASKS`).

Metrics (Mei et al., 2024, §3.2): FID of the restored images against the HR set's (the same
torchmetrics states as text-to-image), LPIPS against each image's own HR target and the
Inception Score, plus PSNR in the prompt-score slot (the per-image score, with its interval).
On the embedded domain the domain evaluator stands in for Inception (FID features, IS classes)
and for LPIPS's network (`ldmscale.metrics.perceptual`, `ldmscale.metrics.inception_score`);
on real data they are FID Inception and LPIPS AlexNet from configured weights.

Output, committed by manifest in the shard folder: `fid_state.npz`, `prompt_score.npz` (PSNR),
`lpips.npz` (MeanMetric state), `samples.npz` (per image: features, PSNR, LPIPS, IS logits,
prompt index), `grid.png`; meta as a text-to-image shard's, the protocol naming the task and
the calibration record (HR-vs-HR floor, bicubic baseline: `ldmscale.evaluate.sr_calibration`)
computed by the first shard that needs it.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ldmscale.config.schema import StudyConfig
from ldmscale.data.pixels import grid_png, to_hwc_uint8
from ldmscale.errors import NonFinite
from ldmscale.evaluate.context import device_name, sampling_protocol, shard_timing
from ldmscale.evaluate.identity import EvalInputError, request
from ldmscale.evaluate.shard import (
    GRID,
    SAMPLES,
    ShardRecord,
    _check_committed,
    _non_finite,
    _record,
)
from ldmscale.evaluate.sr_calibration import SRMeasures, calibration
from ldmscale.evaluate.sr_images import HRSet, degradation_seed, hr_set
from ldmscale.metrics.fid import FID, FID_STATE, save_state
from ldmscale.metrics.scores import SCORE_STATE, MeanScore
from ldmscale.provenance import provenance
from ldmscale.sample.generate import ImageGenerator
from ldmscale.sample.super_resolution import TASK, condition_latents, low_resolution
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import commit
from ldmscale.storage.sources import require_sources

LPIPS_STATE = "lpips.npz"
EXTRA_SCORES = ("lpips",)
"""Per-image scores besides the prompt score that merge averages (each `<name>.npz`)."""


@dataclass
class Restored:
    """Per-image results of a shard, in prompt order."""

    features: list[np.ndarray] = field(default_factory=list)
    psnr: list[np.ndarray] = field(default_factory=list)
    lpips: list[np.ndarray] = field(default_factory=list)
    logits: list[np.ndarray] = field(default_factory=list)
    grid: list[torch.Tensor] = field(default_factory=list)
    seconds: float = 0.0


def _restore(
    cfg: StudyConfig, hr: HRSet, m: SRMeasures, generate: ImageGenerator, encode: Any
) -> tuple[Restored, FID, MeanScore, MeanScore]:
    """Restore samples start..stop-1 of the shard; feed FID, PSNR and LPIPS."""
    out, (start, stop) = Restored(), cfg.eval.shard_range()
    fid, score, lpips = FID(m.feature_dim), MeanScore("psnr"), MeanScore("lpips")
    seed, device = degradation_seed(cfg.seed), m.device
    for first in range(start, stop, cfg.eval.batch_size):
        last = min(first + cfg.eval.batch_size, stop)
        target = hr.images(first, last, cfg.storage).to(device)
        captions, _ = hr.captions(first, last)
        low = low_resolution(target, seed, list(range(first, last)))
        began = time.perf_counter()
        condition = condition_latents(encode, low, (target.shape[-2], target.shape[-1]))
        pixels = generate(captions, range(first, last), condition)
        out.seconds += time.perf_counter() - began
        measured = m.measure(pixels, target)
        fid.update(measured.features, real=False)
        score.update(measured.psnr)
        lpips.update(measured.lpips)
        out.features.append(measured.features.float().cpu().numpy())
        out.psnr.append(measured.psnr.numpy())
        out.lpips.append(measured.lpips.numpy())
        out.logits.append(measured.logits.float().cpu().numpy())
        out.grid.extend(pixels[: max(cfg.eval.grid_size - len(out.grid), 0)].cpu())
    return out, fid, score, lpips


def _samples_npz(out: Restored, start: int, stop: int) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        features=np.concatenate(out.features),
        scores=np.concatenate(out.psnr),
        lpips=np.concatenate(out.lpips),
        logits=np.concatenate(out.logits),
        prompts=np.arange(start, stop, dtype=np.int64),
    )
    return buffer.getvalue()


def _check(cfg: StudyConfig, domain_checkpoint: bool) -> None:
    """EvalInputError for a protocol the checkpoint or the config cannot serve."""
    e = cfg.eval
    if not e.sr_images and not domain_checkpoint:
        raise EvalInputError(
            "super-resolution of a model trained on real data needs eval.sr_images=<folder or "
            "URI of high-resolution images>"
        )
    if e.sr_images:
        missing = [
            f"eval.{name}=<{what}>"
            for name, what in (
                ("inception_weights", "path or URI of the FID Inception weights (.pth)"),
                ("lpips_weights", "path or URI of torchvision's alexnet-owt-7be5be79.pth"),
            )
            if not getattr(e, name)
        ]
        if e.feature_extractor != "inception":
            missing.append("eval.feature_extractor=inception")
        if missing:
            raise EvalInputError("super-resolution on real data needs " + ", ".join(missing))


def _protocol(
    cfg: StudyConfig, m: SRMeasures, hr: HRSet, generate: ImageGenerator, info: Any
) -> dict[str, Any]:
    return {
        **m.protocol,
        **hr.protocol(),
        "task": TASK,
        "scale": 4,
        "degradation": "Real-ESRGAN second-order, derive_seed(sr-eval seed, sample index)",
        "resolution": int(info.meta.resolution),
        "prompt_score": "psnr",
        "extra_scores": list(EXTRA_SCORES),
        **sampling_protocol(info, generate, "super-resolution"),
        **request(cfg, sr=True),
    }


def evaluate_sr(cfg: StudyConfig, storage: Storage, key: paths.EvalKey) -> ShardRecord:
    """Evaluate shard `eval.shard` of the super-resolution configuration `key`."""
    from ldmscale.runtime import resolve_device
    from ldmscale.sample.load import load_sampling_model
    from ldmscale.sample.speed import fast_sampling_model

    require_sources(cfg, ["eval.sr_images", "eval.lpips_weights", "eval.inception_weights"])
    rel = key.shard_dir(cfg.eval.shard_index, cfg.eval.shard_count)
    done = _check_committed(cfg, storage, rel, sr=True)
    if done is not None:
        return _record(key, rel, done, skipped=True)
    device = resolve_device(cfg.device)
    model, info = load_sampling_model(storage, key.run, key.step, device, cfg.storage)
    _check(cfg, info.meta.autoencoder.startswith("prepare/"))
    model, speed = fast_sampling_model(model, cfg.eval)
    generate = ImageGenerator(model, key.sampler, key.steps, key.guidance, cfg.seed, key.spacing)
    resolution = int(info.meta.resolution)
    hr = hr_set(cfg.eval.sr_images, cfg.seed, resolution, cfg.storage)
    measures = SRMeasures.build(cfg, storage, device, resolution)
    measures.protocol["sr_calibration"] = calibration(cfg, storage, hr, measures)
    try:
        out, fid, score, lpips = _restore(cfg, hr, measures, generate, model.encode_images)
    except NonFinite as err:
        raise NonFinite(_non_finite(cfg, storage, key, err)) from None
    start, stop = cfg.eval.shard_range()
    meta = {
        **shard_timing(cfg, out.seconds, device_name(device)),
        "speed": speed,
        "protocol": _protocol(cfg, measures, hr, generate, info),
        "provenance": provenance(cfg),
    }
    files = {
        FID_STATE: save_state(fid.state(real=False)),
        SCORE_STATE: save_state(score.state()),
        LPIPS_STATE: save_state(lpips.state()),
        SAMPLES: _samples_npz(out, start, stop),
    }
    if out.grid:
        files[GRID] = grid_png(to_hwc_uint8(torch.stack(out.grid)))
    commit(storage, rel, files=files, meta=meta)
    return _record(key, rel, meta, skipped=False)
