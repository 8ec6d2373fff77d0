"""`interpolate(cfg, storage, run, pair)`: prompt interpolation (Mei et al., 2024, Appendix E)
with a size's final checkpoint (`train.max_steps`): the text contexts A and B of a prompt pair
are mixed alpha A + (1 - alpha) B for every alpha of `interpolate.alphas` (1.0 down to 0.0)
and sampled (`ImageGenerator.images_for`) from `interpolate.seeds` initial noises, each shared
by every alpha of its row; then measured, beyond the paper's pictures (`path_measures`):

- smoothness, per seed, from the feature distances (1 - cosine) between the images of
  consecutive alphas: their mean (how far each step moves), the largest step's share of their
  sum (1 / (alphas - 1) when every step moves alike, 1 when one step does all the change), and
  the endpoints' distance;
- endpoint recognition: how far the alpha = 1 image shows A and the alpha = 0 image shows B.
  On the embedded domain, the fraction of each prompt's attributes the evaluator recognises
  (both prompts must state every attribute, as the domain's captions do); on real data, whether
  the image's CLIP embedding is nearer its own prompt's than the other's (1 or 0).

Features: the domain evaluator's, centred on the domain (`ldmscale.metrics.subject.
centred_features`), or CLIP image embeddings (`eval.clip_model`) on real data.
Committed by manifest to `interpolations/<model>/step-<N>/<pair>/`:

    images.npz      images: seeds x alphas x H x W x 3 uint8
    measures.npz    per seed: each measure, and `steps` (seeds x alphas-1 distances)
    record.json     the means with 95% bootstrap intervals over seeds, protocol, provenance
    grid.png        the first rows of the grid (a row per seed, a column per alpha)
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import torch

from ldmscale.config.schema import StudyConfig
from ldmscale.data.pixels import grid_png, to_hwc_uint8
from ldmscale.errors import BadInput
from ldmscale.evaluate.identity import refuse_reuse
from ldmscale.evaluate.merge import sampling_costs
from ldmscale.evaluate.prompts import is_domain
from ldmscale.metrics.intervals import mean_interval
from ldmscale.provenance import provenance
from ldmscale.runtime import derive_seed, resolve_device
from ldmscale.sample.generate import ImageGenerator
from ldmscale.sample.load import load_sampling_model
from ldmscale.storage import paths
from ldmscale.storage.checkpoints import resolve_step
from ldmscale.storage.fs import Storage
from ldmscale.storage.manifest import commit, intact, load_manifest, read_file
from ldmscale.storage.paths import EvalKey, RunKey

RECORD = "record.json"
GRID_ROWS = 4
"""Rows (seeds) of the committed grid.png."""


@dataclass
class InterpolationResult:
    """What an interpolation committed (or found committed)."""

    rel_dir: str
    record: dict[str, Any]
    skipped: bool = False


def request(cfg: StudyConfig, pair: str) -> dict[str, Any]:
    """What a committed interpolation of `pair` must have been made with to be reused."""
    if pair not in cfg.interpolate.pairs:
        known = ", ".join(cfg.interpolate.pairs)
        raise BadInput(f"prompt pair {pair!r} is not in interpolate.pairs ({known})")
    i, prompts = cfg.interpolate, cfg.interpolate.pairs[pair]
    return {
        "seed": cfg.seed,
        "pair": pair,
        "first": prompts.first,
        "second": prompts.second,
        "alphas": list(i.alphas),
        "seeds": i.seeds,
        "sampler": i.sampler,
        "steps": i.steps,
        "guidance": i.guidance,
        "features": "domain" if is_domain(cfg.eval.prompt_set) else cfg.eval.clip_model,
        "resamples": cfg.eval.intervals,
    }


class Reader:
    """Features of images, and how far they show each endpoint prompt (module docstring)."""

    def __init__(self, cfg: StudyConfig, storage: Storage, first: str, second: str) -> None:
        device = resolve_device(cfg.device)
        self.evaluator: Any = None
        if is_domain(cfg.eval.prompt_set):
            from ldmscale.data.shapes import labels_of
            from ldmscale.models.domain import evaluator_for

            labels = [labels_of(first), labels_of(second)]
            if None in labels:
                raise BadInput(
                    "interpolate: on the embedded domain both prompts must be captions of the "
                    "domain that state every attribute (e.g. 'a large red circle at the top "
                    f"left'); got {first!r} and {second!r}"
                )
            from ldmscale.metrics.subject import centred_features

            self.evaluator = evaluator_for(cfg, storage, device)
            self.features = centred_features(self.evaluator, cfg.seed, cfg.data.resolution)
            self.labels = torch.tensor(labels, device=device)
            self.kind = "domain evaluator features (centred on the domain); attributes recognised"
            return
        from ldmscale.metrics.clip import load_clip

        if not cfg.eval.clip_model:
            raise BadInput("interpolate on real data needs eval.clip_model=<CLIP folder or URI>")
        clip = load_clip(cfg.eval.clip_model, cfg.storage.options, cfg.storage.cache_dir)
        clip.model.to(device)
        self.features = clip.image_embeddings
        texts = clip.text_embeddings([first, second])
        self.texts = torch.nn.functional.normalize(texts, dim=-1)
        self.kind = "CLIP image embeddings; the nearer prompt by CLIP"

    @torch.no_grad()
    def recognised(self, pixels: torch.Tensor, endpoint: int) -> np.ndarray:
        """[B] how far each image shows endpoint `endpoint` (0: first, 1: second)."""
        if self.evaluator is not None:
            hits = self.evaluator.predict(pixels) == self.labels[endpoint]
            return hits.float().mean(dim=1).double().cpu().numpy()
        images = torch.nn.functional.normalize(self.features(pixels), dim=-1)
        nearest = (images @ self.texts.T).argmax(dim=1)
        return (nearest == endpoint).double().cpu().numpy()


def path_measures(features: list[torch.Tensor]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """(smoothness measures per seed, [seeds, alphas - 1] step distances) of the features
    [seeds, D] of each alpha's images, in the order of the alphas (module docstring)."""
    steps = torch.stack(
        [1 - torch.cosine_similarity(a, b, dim=-1) for a, b in pairwise(features)], dim=1
    ).double()
    ends = 1 - torch.cosine_similarity(features[0], features[-1], dim=-1).double()
    share = steps.max(dim=1).values / steps.sum(dim=1).clamp(min=1e-12)
    measures = {
        "step_distance": steps.mean(dim=1),
        "largest_step_share": share,
        "endpoint_distance": ends,
    }
    return {k: v.cpu().numpy() for k, v in measures.items()}, steps.cpu().numpy()


def _summary(values: dict[str, np.ndarray], resamples: int, seed: int) -> dict[str, Any]:
    """Measure -> its mean over seeds and 95% percentile-bootstrap interval."""
    found = {}
    for key, array in values.items():
        interval = mean_interval(array, resamples, seed)
        found[key] = {"value": float(np.mean(array)), "low": interval.low, "high": interval.high}
    return found


def _sample(
    cfg: StudyConfig, generate: ImageGenerator, reader: Reader, first: str, second: str
) -> tuple[np.ndarray, list[torch.Tensor], dict[str, np.ndarray]]:
    """(images [seeds, alphas, H, W, 3] uint8, features per alpha, endpoint recognition)."""
    i, batch = cfg.interpolate, cfg.eval.batch_size
    a, b = generate.encode([first]), generate.encode([second])
    images, features, recognised = [], [], {}
    for alpha in i.alphas:
        context = (alpha * a + (1 - alpha) * b).expand(i.seeds, -1, -1)
        pixels = torch.cat(
            [
                generate.images_for(context[k : k + batch], range(k, min(k + batch, i.seeds)))
                for k in range(0, i.seeds, batch)
            ]
        )
        images.append(to_hwc_uint8(pixels))
        features.append(reader.features(pixels))
        if alpha in (1.0, 0.0):
            name = "first_recognised" if alpha == 1.0 else "second_recognised"
            recognised[name] = reader.recognised(pixels, 0 if alpha == 1.0 else 1)
    return np.stack(images, axis=1), features, recognised


def interpolate(cfg: StudyConfig, storage: Storage, run: RunKey, pair: str) -> InterpolationResult:
    """Interpolate the prompt pair `pair` with the final checkpoint of the size `run` (module
    docstring); at once when committed under the same protocol (BadInput when under another)."""
    asked = request(cfg, pair)
    step = resolve_step(storage, run, paths.checkpoint_name(cfg.train.max_steps))
    rel = paths.interpolation_dir(run.model, step, pair)
    if intact(storage, rel):
        manifest = load_manifest(storage, rel)
        assert manifest is not None  # intact: committed
        refuse_reuse(storage.url(rel), manifest.meta["protocol"], asked)
        return InterpolationResult(rel, json.loads(read_file(storage, rel, RECORD)), True)
    i, prompts = cfg.interpolate, cfg.interpolate.pairs[pair]
    model, info = load_sampling_model(storage, run, step, resolve_device(cfg.device), cfg.storage)
    reader = Reader(cfg, storage, prompts.first, prompts.second)
    seed = derive_seed(cfg.seed, "interpolate", pair)
    generate = ImageGenerator(model, i.sampler, i.steps, i.guidance, seed)
    images, features, recognised = _sample(cfg, generate, reader, prompts.first, prompts.second)
    smoothness, steps = path_measures(features)
    measures = {**smoothness, **recognised}
    key = EvalKey(run, step, i.sampler, i.steps, i.guidance)
    protocol = {
        **asked,
        "measures": reader.kind,
        "run": run.path,
        "checkpoint_step": step,
        "unet_sha256": info.unet_sha256,
        "noise_seed": f"derive_seed(derive_seed(seed, 'interpolate', {pair!r}), 'sample', row)",
        "interval": f"95% percentile bootstrap over seeds ({cfg.eval.intervals} resamples)",
    }
    record = {
        "pair": pair,
        "model": run.model,
        "run": run.path,
        "checkpoint_step": step,
        "alphas": list(i.alphas),
        "seeds": i.seeds,
        "means": _summary(measures, cfg.eval.intervals, derive_seed(cfg.seed, "bootstrap", rel)),
        **sampling_costs(storage, key, generate.evaluations, generate.passes_per_evaluation),
        "protocol": protocol,
        "provenance": provenance(cfg),
    }
    files = {
        "images.npz": _npz(images=images),
        "measures.npz": _npz(steps=steps, **measures),
        RECORD: json.dumps(record, indent=1, sort_keys=True).encode(),
        "grid.png": grid_png(images[:GRID_ROWS].reshape(-1, *images.shape[2:]), len(i.alphas)),
    }
    commit(storage, rel, files=files, meta={"protocol": protocol})
    return InterpolationResult(rel, record)


def _npz(**arrays: Any) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()
