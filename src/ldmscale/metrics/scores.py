"""Prompt scores: how well each image shows what its prompt asked for, one value per image,
averaged with a torchmetrics `MeanMetric` (float64 states, merged exactly across shards).

- `alignment` (embedded domain): the fraction of the prompt's attributes (shape, colour, size,
  position) that the domain evaluator recognises in the image;
- `clip_score` (real data): cosine similarity of CLIP image and caption embeddings, i.e.
  torchmetrics' CLIPScore / 100, the paper's scale (Hessel et al., 2021); its mean is floored at
  0, as torchmetrics floors it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ldmscale.errors import require_finite

SCORE_STATE = "prompt_score.npz"


@dataclass
class Batch:
    """Generated images of one batch with what their prompts asked for."""

    pixels: torch.Tensor
    """[B, 3, H, W] in [-1, 1]."""
    captions: Sequence[str]
    labels: torch.Tensor | None = None
    """[B, n_attributes] attribute indices (embedded domain only)."""


class MeanScore:
    """The mean of per-image scores, held by torchmetrics' MeanMetric in float64."""

    def __init__(self, name: str, floor: float | None = None) -> None:
        from torchmetrics.aggregation import MeanMetric

        self.name = name
        self.floor = floor
        # set_dtype, not .double(): torchmetrics keeps states' dtype through .double().
        self.mean: Any = MeanMetric().set_dtype(torch.float64)

    def update(self, scores: torch.Tensor) -> None:
        """Add per-image scores [B]; NonFinite when any is NaN or infinite."""
        require_finite(scores, f"{self.name}: the per-image scores")
        self.mean.update(scores.detach().double().cpu())

    def state(self) -> dict[str, np.ndarray]:
        """The MeanMetric's state (weighted sum and weight)."""
        return {k: v.detach().cpu().numpy() for k, v in self.mean.metric_state.items()}

    def merge(self, state: dict[str, np.ndarray]) -> None:
        """Add a saved state with torchmetrics' `merge_state`; NonFinite for NaN or infinity."""
        for key, value in state.items():
            require_finite(value, f"{self.name} state {key}")
        self.mean.merge_state(
            {k: torch.as_tensor(v, dtype=torch.float64) for k, v in state.items()}
        )

    @property
    def count(self) -> int:
        """Images scored."""
        return int(self.mean.metric_state["weight"])

    def compute(self) -> float:
        """The mean (floored where the score says so); ValueError without samples."""
        if self.count == 0:
            raise ValueError(f"{self.name}: no samples")
        # The ratio of MeanMetric's own states (its compute() warns about merged-only states).
        value = float(self.mean.metric_state["mean_value"] / self.mean.metric_state["weight"])
        return max(value, self.floor) if self.floor is not None else value


class AlignmentScorer:
    """Per-image `alignment` from the domain evaluator and the prompts' labels."""

    name = "alignment"
    floor = None

    def __init__(self, evaluator: Any) -> None:
        self.evaluator = evaluator

    @torch.no_grad()
    def __call__(self, batch: Batch) -> torch.Tensor:
        """[B] in [0, 1]."""
        if batch.labels is None:
            raise ValueError("alignment needs the prompts' attribute labels")
        return self.evaluator.alignment(batch.pixels, batch.labels.to(batch.pixels.device)).cpu()

    def protocol(self) -> dict[str, Any]:
        """What identifies the score."""
        return {"prompt_score": self.name}
