"""`evaluate_subject(cfg, storage, subject, key)`: DreamBooth's evaluation of one subject with
one sampling configuration `key` of a checkpoint: a DreamBooth run's (`<model>/dreambooth/
<subject>`), or its size's own as the floor (what the base model makes of the same prompts).

Every prompt of the subject's DreamBench-structured list (`ldmscale.data.dreambench`) is sampled
`dreambooth.images_per_prompt` times; image j shows prompt j // images_per_prompt with the noise
of (study seed, j), so the floor and the fine-tuned model, and every size, sample the same
prompts with the same noise and are compared by paired intervals. Each image gets subject and
prompt fidelity (`ldmscale.metrics.subject`: DINO, CLIP-I and CLIP-T on real data, the domain
evaluator's features and attribute recognition on the embedded domain). The ceiling: on the
embedded domain the real subject rendered in each image's prompt context (image j's render, so
it pairs too); on real data the real images scored against each other.

Committed by manifest to `subjects/<subject>/<run>/step-<N>/<config>/`:

    scores.npz      per image: sample index, prompt index and each measure; `ceiling_<measure>`
    record.json     means with 95% bootstrap intervals, the ceiling, cost, protocol, provenance
    grid.png        each prompt's first image, in prompt order
    manifest.json   meta: the protocol (compared when the result is asked for again)
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ldmscale.config.schema import StudyConfig
from ldmscale.config.stages import Subject
from ldmscale.data.dreambench import SubjectPrompt, prompts_for
from ldmscale.data.pixels import from_uint8, grid_png, to_hwc_uint8
from ldmscale.errors import BadInput
from ldmscale.evaluate.identity import refuse_reuse
from ldmscale.evaluate.merge import sampling_costs
from ldmscale.metrics.intervals import mean_interval
from ldmscale.metrics.subject import SubjectMeasures
from ldmscale.provenance import provenance
from ldmscale.runtime import derive_seed, resolve_device
from ldmscale.sample.generate import ImageGenerator
from ldmscale.sample.load import load_sampling_model
from ldmscale.storage import paths
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import commit, intact, load_manifest, read_file
from ldmscale.storage.sources import require_sources

SCORES = "scores.npz"
RECORD = "record.json"


@dataclass
class SubjectResult:
    """What a subject evaluation committed (or found committed)."""

    rel_dir: str
    record: dict[str, Any]
    skipped: bool = False


def _subject(cfg: StudyConfig, name: str) -> Subject:
    if name not in cfg.dreambooth.subjects:
        raise BadInput(
            f"subject {name!r} is not in dreambooth.subjects ({', '.join(cfg.dreambooth.subjects)})"
        )
    return cfg.dreambooth.subjects[name]


def request(cfg: StudyConfig, name: str, subject: Subject) -> dict[str, Any]:
    """What a committed evaluation of `subject` must have been made with to be reused."""
    prompts = [p.text for p in prompts_for(name, subject)]
    real = subject.images != "embedded"
    return {
        "seed": cfg.seed,
        "subject": name,
        "subject_images": subject.images,
        "prompts": prompts,
        "images_per_prompt": cfg.dreambooth.images_per_prompt,
        "dino_model": cfg.dreambooth.dino_model if real else "",
        "clip_model": cfg.eval.clip_model if real else "",
        "resamples": cfg.eval.intervals,
    }


def _measures(
    cfg: StudyConfig, storage: Storage, name: str, subject: Subject, resolution: int
) -> tuple[SubjectMeasures, np.ndarray]:
    """(the measures against the subject's real images, those images as uint8)."""
    from ldmscale.data.subjects import instance_images
    from ldmscale.metrics.subject import domain_measures, real_measures

    device = resolve_device(cfg.device)
    real = instance_images(name, subject, cfg.seed, resolution, cfg.storage)
    pixels = torch.stack([from_uint8(image) for image in real]).to(device)
    if subject.images == "embedded":
        from ldmscale.models.domain import evaluator_for

        evaluator = evaluator_for(cfg, storage, device)
        return domain_measures(evaluator, pixels, cfg.seed), real
    from ldmscale.metrics.clip import load_clip
    from ldmscale.metrics.dino import load_dino

    missing = [
        f"{field}=<{what}>"
        for field, value, what in (
            ("dreambooth.dino_model", cfg.dreambooth.dino_model, "DINO ViT-S/16 folder or URI"),
            ("eval.clip_model", cfg.eval.clip_model, "CLIP model folder or URI"),
        )
        if not value
    ]
    if missing:
        raise BadInput(f"evaluating the real subject {name!r} needs " + ", ".join(missing))
    require_sources(cfg, ["dreambooth.dino_model", "eval.clip_model"])
    s = cfg.storage
    dino = load_dino(cfg.dreambooth.dino_model, s.options, s.cache_dir)
    clip = load_clip(cfg.eval.clip_model, s.options, s.cache_dir)
    dino.model.to(device)
    clip.model.to(device)
    return real_measures(dino, clip, subject.token, pixels), real


def _ceiling(
    cfg: StudyConfig,
    name: str,
    subject: Subject,
    measures: SubjectMeasures,
    shown: list[SubjectPrompt],
    resolution: int,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(measure -> ceiling values, measure -> what they are); `shown`: each image's prompt.
    Subject fidelity: the real images, each against the others. Prompt fidelity (embedded
    subjects only): the real subject rendered in each image's prompt context."""
    ceiling = measures.real_vs_real()
    what = dict.fromkeys(ceiling, "the real images, each against the others")
    if subject.images != "embedded":
        return ceiling, what
    from ldmscale.data.subjects import render_subject

    device = resolve_device(cfg.device)
    scores = []
    for first in range(0, len(shown), cfg.eval.batch_size):
        batch = shown[first : first + cfg.eval.batch_size]
        renders = [
            render_subject(name, cfg.seed, "ceiling", first + i, resolution, prompt.stated)
            for i, prompt in enumerate(batch)
        ]
        pixels = torch.stack([from_uint8(image) for image in renders]).to(device)
        scores.append(measures(pixels, batch)[measures.prompt_name])
    ceiling[measures.prompt_name] = np.concatenate(scores)
    what[measures.prompt_name] = "the real subject rendered in each image's prompt context"
    return ceiling, what


def _summary(values: dict[str, np.ndarray], resamples: int, seed: int) -> dict[str, Any]:
    """Measure -> its mean and 95% percentile-bootstrap interval over the images."""
    found = {}
    for key, array in values.items():
        interval = mean_interval(array, resamples, seed)
        found[key] = {"value": float(np.mean(array)), "low": interval.low, "high": interval.high}
    return found


def _identity(subject: str, key: paths.EvalKey) -> dict[str, Any]:
    """The record's fields that say what was evaluated."""
    return {
        "subject": subject,
        "model": key.model,
        "run": key.run.path,
        "stage": key.run.stage,
        "checkpoint_step": key.step,
        "sampler": key.sampler,
        "steps": key.steps,
        "guidance": key.guidance,
        "timestep_spacing": key.spacing,
    }


def evaluate_subject(
    cfg: StudyConfig, storage: Storage, subject: str, key: paths.EvalKey
) -> SubjectResult:
    """Evaluate `subject` with the sampling configuration `key` (module docstring), at once
    when it is committed under the same protocol (BadInput when under another)."""
    settings = _subject(cfg, subject)
    rel = paths.subject_dir(subject, key)
    asked = request(cfg, subject, settings)
    if intact(storage, rel):
        manifest = load_manifest(storage, rel)
        assert manifest is not None  # intact: committed
        refuse_reuse(storage.url(rel), manifest.meta["protocol"], asked)
        return SubjectResult(rel, json.loads(read_file(storage, rel, RECORD)), skipped=True)
    device = resolve_device(cfg.device)
    model, info = load_sampling_model(storage, key.run, key.step, device, cfg.storage)
    generate = ImageGenerator(model, key.sampler, key.steps, key.guidance, cfg.seed, key.spacing)
    resolution = int(info.meta.resolution)
    measures, real = _measures(cfg, storage, subject, settings, resolution)
    prompts = prompts_for(subject, settings)
    per = cfg.dreambooth.images_per_prompt
    shown = [prompts[j // per] for j in range(len(prompts) * per)]
    scores, grid = _generate(cfg, generate, measures, shown, per)
    ceiling, ceiling_is = _ceiling(cfg, subject, settings, measures, shown, resolution)
    protocol = {
        **asked,
        **measures.protocol,
        "run": key.run.path,
        "checkpoint_step": key.step,
        "checkpoint_kind": info.meta.objective.get("checkpoint", "base"),
        "parent": info.meta.parent,
        "unet_sha256": info.unet_sha256,
        "real_images": len(real),
        "real_images_sha256": _sha(real),
        "noise_seed": "derive_seed(seed, 'sample', image index)",
        "interval": f"95% percentile bootstrap over the images ({cfg.eval.intervals} resamples)",
    }
    seed = derive_seed(cfg.seed, "bootstrap", rel)
    record = {
        **_identity(subject, key),
        "num_images": len(shown),
        "measures": measures.kinds,
        "measure_order": list(measures.kinds),
        "means": _summary(scores, cfg.eval.intervals, seed),
        "ceiling": _summary(ceiling, cfg.eval.intervals, seed),
        "ceiling_is": ceiling_is,
        **sampling_costs(storage, key, generate.evaluations, generate.passes_per_evaluation),
        "protocol": protocol,
        "provenance": provenance(cfg),
    }
    commit(
        storage, rel, files=_files(record, scores, ceiling, grid, per), meta={"protocol": protocol}
    )
    return SubjectResult(rel, record)


def _files(
    record: dict[str, Any],
    scores: dict[str, np.ndarray],
    ceiling: dict[str, np.ndarray],
    grid: np.ndarray,
    per: int,
) -> dict[str, bytes]:
    """The committed files (module docstring)."""
    count = record["num_images"]
    arrays: dict[str, Any] = {
        "sample": np.arange(count, dtype=np.int64),
        "prompt": np.arange(count, dtype=np.int64) // per,
        **scores,
        **{f"ceiling_{k}": v for k, v in ceiling.items()},
    }
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return {
        SCORES: buffer.getvalue(),
        RECORD: json.dumps(record, indent=1, sort_keys=True).encode(),
        "grid.png": grid_png(grid, columns=5),
    }


def _generate(
    cfg: StudyConfig,
    generate: ImageGenerator,
    measures: SubjectMeasures,
    shown: list[SubjectPrompt],
    per: int,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """(measure -> per-image values, each prompt's first image as uint8) of the images."""
    found: dict[str, list[np.ndarray]] = {}
    firsts = []
    for first in range(0, len(shown), cfg.eval.batch_size):
        indices = range(first, min(first + cfg.eval.batch_size, len(shown)))
        batch = [shown[j] for j in indices]
        pixels = generate([p.text for p in batch], indices)
        for key, values in measures(pixels, batch).items():
            found.setdefault(key, []).append(values)
        images = zip(indices, to_hwc_uint8(pixels), strict=True)
        firsts += [image for j, image in images if j % per == 0]
    return {key: np.concatenate(values) for key, values in found.items()}, np.stack(firsts)


def _sha(images: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()
