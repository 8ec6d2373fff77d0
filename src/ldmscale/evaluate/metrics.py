"""Mergeable evaluation metrics, all computed by torchmetrics.

Every metric follows one contract (`ShardMetric`): `update(batch)` on generated images,
`state()` -> arrays saved in a shard, `merge_state(state)` adds another shard's arrays, and
`compute()` -> float. Because the states are sums, merging shards in any order gives the value
of one pass over all samples (DESIGN.md §5).

- FID: the state is the generated features' count, sum and sum of outer products (`FeatureStats`,
  float64), exactly torchmetrics' FrechetInceptionDistance state; `fid()` computes the distance
  with torchmetrics' own mean/covariance and matrix-square-root code. The feature extractor is
  pluggable: the embedded domain's evaluator, or torchmetrics' FID Inception.
- Prompt score: `alignment` (the domain evaluator's attribute agreement, a torchmetrics
  MeanMetric) or `clip_score` (torchmetrics CLIPScore, divided by 100 to the paper's scale).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

FID_STATS = "fid_stats.npz"


@dataclass
class Batch:
    """Generated images of one batch with what their prompts asked for."""

    pixels: torch.Tensor
    """[B, 3, H, W] in [-1, 1]."""
    captions: Sequence[str]
    labels: torch.Tensor | None = None
    """[B, n_attributes] attribute indices (embedded domain only)."""


@dataclass
class FeatureStats:
    """Sufficient statistics of a feature set: count, sum [F] and sum of outer products [F, F]."""

    n: int
    sum: np.ndarray
    sum_outer: np.ndarray

    @classmethod
    def zeros(cls, dim: int) -> FeatureStats:
        return cls(0, np.zeros(dim), np.zeros((dim, dim)))

    @classmethod
    def of(cls, features: torch.Tensor) -> FeatureStats:
        feats = features.detach().double().cpu()
        return cls(int(feats.shape[0]), feats.sum(0).numpy(), (feats.T @ feats).numpy())

    def __add__(self, other: FeatureStats) -> FeatureStats:
        if self.sum.shape != other.sum.shape:
            raise ValueError(f"feature dims differ: {self.sum.shape[0]} vs {other.sum.shape[0]}")
        return FeatureStats(
            self.n + other.n, self.sum + other.sum, self.sum_outer + other.sum_outer
        )

    def to_npz(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(
            buffer,
            n=np.array(self.n, dtype=np.float64),
            sum=self.sum.astype(np.float64),
            sum_outer=self.sum_outer.astype(np.float64),
        )
        return buffer.getvalue()

    @classmethod
    def from_npz(cls, data: bytes) -> FeatureStats:
        with np.load(io.BytesIO(data)) as arrays:
            return cls(int(arrays["n"]), arrays["sum"], arrays["sum_outer"])

    def mean_cov(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean [F] and unbiased covariance [F, F], as FrechetInceptionDistance.compute does."""
        if self.n < 2:
            raise ValueError(f"FID needs at least 2 samples per set, got {self.n}")
        total = torch.from_numpy(self.sum).double().unsqueeze(0)
        mean = total / self.n
        cov = (torch.from_numpy(self.sum_outer).double() - self.n * mean.T @ mean) / (self.n - 1)
        return mean.squeeze(0), cov


def fid(generated: FeatureStats, reference: FeatureStats) -> float:
    """Fréchet distance between two feature sets (torchmetrics' `_compute_fid`)."""
    from torchmetrics.image.fid import _compute_fid

    mu1, sigma1 = reference.mean_cov()
    mu2, sigma2 = generated.mean_cov()
    return float(_compute_fid(mu1, sigma1, mu2, sigma2))


class ShardMetric(Protocol):
    name: str

    def update(self, batch: Batch) -> None: ...

    def state(self) -> dict[str, np.ndarray]: ...

    def merge_state(self, state: dict[str, np.ndarray]) -> None: ...

    def compute(self) -> float: ...


class FIDMetric:
    """FID of generated images against fixed reference statistics."""

    name = "fid"

    def __init__(self, extractor: torch.nn.Module | None, reference: FeatureStats) -> None:
        self.extractor = extractor
        self.reference = reference
        self.stats = FeatureStats.zeros(reference.sum.shape[0])

    @torch.no_grad()
    def update(self, batch: Batch) -> None:
        if self.extractor is None:
            raise RuntimeError("this FID metric has no feature extractor (merge-only)")
        self.stats = self.stats + FeatureStats.of(self.extractor(batch.pixels))

    def state(self) -> dict[str, np.ndarray]:
        return {
            "n": np.array(self.stats.n, dtype=np.float64),
            "sum": self.stats.sum,
            "sum_outer": self.stats.sum_outer,
        }

    def merge_state(self, state: dict[str, np.ndarray]) -> None:
        self.stats = self.stats + FeatureStats(int(state["n"]), state["sum"], state["sum_outer"])

    def compute(self) -> float:
        return fid(self.stats, self.reference)


class MeanScore:
    """A torchmetrics MeanMetric whose state is saved as (sum, count)."""

    name = "score"

    def __init__(self) -> None:
        from torchmetrics.aggregation import MeanMetric

        # set_dtype, not .double(): torchmetrics keeps states' dtype through .double().
        self.mean: Any = MeanMetric().set_dtype(torch.float64)

    def add(self, scores: torch.Tensor) -> None:
        self.mean.update(scores.detach().double().cpu())

    def state(self) -> dict[str, np.ndarray]:
        return {
            "sum": np.array(float(self.mean.mean_value), dtype=np.float64),
            "count": np.array(float(self.mean.weight), dtype=np.float64),
        }

    def merge_state(self, state: dict[str, np.ndarray]) -> None:
        self.mean.mean_value += float(state["sum"])
        self.mean.weight += float(state["count"])

    def compute(self) -> float:
        if float(self.mean.weight) == 0:
            raise ValueError(f"{self.name}: no samples")
        # MeanMetric's own compute (sum / weight), without its warning about merged-only states.
        return float(self.mean.mean_value / self.mean.weight)


class AlignmentMetric(MeanScore):
    """Fraction of each prompt's attributes that the domain evaluator finds in the image."""

    name = "alignment"

    def __init__(self, evaluator: Any | None) -> None:
        super().__init__()
        self.evaluator = evaluator

    @torch.no_grad()
    def update(self, batch: Batch) -> None:
        if self.evaluator is None or batch.labels is None:
            raise RuntimeError("alignment needs the domain evaluator and the prompts' labels")
        self.add(self.evaluator.alignment(batch.pixels, batch.labels.to(batch.pixels.device)))


class CLIPScoreMetric(MeanScore):
    """torchmetrics CLIPScore (100 x cosine of image and caption embeddings, mean floored at 0),
    reported divided by 100 to the paper's scale. `model` is `eval.clip_model` (a folder, an
    fsspec URI or a hub id), loaded by `ldmscale.evaluate.features.load_clip`."""

    name = "clip_score"

    def __init__(self, model: str | None, cache: str = "") -> None:
        super().__init__()
        self.clip: Any = None
        self.model_spec = model or ""
        if model:
            from torchmetrics.multimodal.clip_score import CLIPScore

            from ldmscale.evaluate.features import load_clip

            loaded = load_clip(model, cache)
            # A callable is how torchmetrics takes a model that is not one of its hub names.
            self.clip = CLIPScore(model_name_or_path=lambda: loaded)  # type: ignore[arg-type,return-value]

    @torch.no_grad()
    def update(self, batch: Batch) -> None:
        if self.clip is None:
            raise RuntimeError("clip_score needs eval.clip_model")
        from torchmetrics.functional.multimodal.clip_score import _clip_score_update

        from ldmscale.evaluate.features import to_uint8

        # The per-image scores of CLIPScore.update, kept to sum them in float64 (its state is a
        # float32 sum); the model runs on the images' device.
        scores, _ = _clip_score_update(
            list(to_uint8(batch.pixels)), list(batch.captions), self.clip.model, self.clip.processor
        )
        self.add(scores / 100.0)

    def protocol(self) -> dict[str, Any]:
        """What identifies the score: the CLIP model, its weights and its image preprocessing."""
        from ldmscale.evaluate.features import clip_preprocessing, weights_hash

        if self.clip is None:
            return {}
        return {
            "clip_model": self.model_spec,
            "clip_model_sha256": weights_hash(self.clip.model),
            "clip_preprocessing": clip_preprocessing(self.clip.processor),
        }

    def compute(self) -> float:
        return max(super().compute(), 0.0)


def load_states(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data)) as arrays:
        return {key: arrays[key] for key in arrays.files}


def save_states(state: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **state)  # type: ignore[arg-type]
    return buffer.getvalue()
