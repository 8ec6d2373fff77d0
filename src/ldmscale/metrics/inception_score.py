"""Inception Score (Salimans et al., 2016), exp E_x KL(p(y|x) || p(y)), computed by torchmetrics'
`InceptionScore` from per-image class logits kept by the eval shards, so that the score of any
number of merged shards is that of one pass over all images.

torchmetrics splits the images into `splits` random parts and returns the mean (and spread) of
the parts' scores; its permutation is drawn from torch's global generator, which is seeded here
(inside `torch.random.fork_rng`, leaving the caller's state untouched) from the configuration,
so the score is reproducible. Its interval is a percentile bootstrap over images, as every
other interval here (`ldmscale.metrics.intervals`).

The classifier is torch-fidelity's FID Inception (`logits_unbiased`, 1008 classes) on real
data, and on the embedded domain the domain evaluator, standing in for it: the joint
distribution over its attribute heads (shape x colour x size x position, 300 classes), each
head's softmax independent (`joint_logits`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ldmscale.errors import require_finite
from ldmscale.metrics.intervals import Interval, bootstrap_draws, centred

SPLITS = 10
"""torchmetrics' and the original code's default number of splits."""


class _Logits(torch.nn.Module):
    """Identity on logits: torchmetrics then scores logits computed elsewhere."""

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        """logits [B, K] -> the same."""
        return logits


def inception_score(logits: np.ndarray, splits: int, seed: int) -> float:
    """The Inception Score (the mean over `splits` parts) of per-image logits [N, K], its random
    split drawn from `seed`; NonFinite for NaN or infinite logits."""
    from torchmetrics.image.inception import InceptionScore

    require_finite(np.asarray(logits, dtype=np.float64), "Inception Score: the logits")
    metric = InceptionScore(feature=_Logits(), splits=min(splits, len(logits)))
    metric.update(torch.as_tensor(np.asarray(logits, dtype=np.float64)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, _ = metric.compute()
    return float(mean)


def inception_score_interval(
    logits: np.ndarray, splits: int, resamples: int, seed: int
) -> Interval:
    """Bootstrap interval of the Inception Score of logits [N, K] over images. A resample repeats
    images, which lowers the entropy of the marginal and so the score: at 200 images every
    resampled score of an SR demo lay below the estimate (t32: 17.5 against [15.5, 17.0]). As
    FID's, the interval is therefore the resamples' spread around their median placed around the
    estimate (`ldmscale.metrics.intervals.centred`)."""
    draws = bootstrap_draws(len(logits), resamples, seed)
    values = [inception_score(np.asarray(logits)[d], splits, seed) for d in draws]
    return centred(inception_score(logits, splits, seed), np.asarray(values))


def joint_logits(heads: dict[str, torch.Tensor]) -> torch.Tensor:
    """[B, prod(n_h)] log-probabilities of every combination of the heads' classes, each head
    [B, n_h] an independent softmax (the sum of their log-softmaxes, broadcast)."""
    joint: torch.Tensor | None = None
    for logits in heads.values():
        part = torch.log_softmax(logits.double(), dim=1)
        joint = part if joint is None else (joint[:, :, None] + part[:, None, :]).flatten(1)
    if joint is None:
        raise ValueError("no classifier heads")
    return joint


class DomainLogits(torch.nn.Module):
    """The domain evaluator's joint attribute log-probabilities (`joint_logits`)."""

    def __init__(self, evaluator: Any) -> None:
        super().__init__()
        self.evaluator = evaluator

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels [B, 3, H, W] in [-1, 1] -> [B, 300] log-probabilities."""
        require_finite(pixels, "Inception Score: the images")
        return joint_logits(self.evaluator.logits(pixels))


class InceptionLogits(torch.nn.Module):
    """torch-fidelity's FID Inception v3 `logits_unbiased` [B, 1008]; pixels in [-1, 1]."""

    def __init__(self, weights_path: str) -> None:
        super().__init__()
        from torchmetrics.image.fid import NoTrainInceptionV3

        self.net = NoTrainInceptionV3(
            name="inception-v3-compat",
            features_list=["logits_unbiased"],
            feature_extractor_weights_path=weights_path,
            antialias=False,
        )

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels [B, 3, H, W] in [-1, 1] -> logits [B, 1008]."""
        from ldmscale.data.pixels import to_uint8

        require_finite(pixels, "Inception Score: the images")
        return self.net(to_uint8(pixels)).double()


def build_classifier(
    kind: str,
    *,
    evaluator: Any = None,
    weights: str = "",
    options: dict[str, Any] | None = None,
    cache: str = "",
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """(logits module in eval mode, its protocol entries) for the Inception Score: `domain`
    (the evaluator standing in) or `inception` (the FID Inception's weights at `weights`)."""
    from ldmscale.provenance import weights_hash

    if kind == "domain":
        if evaluator is None:
            raise ValueError("the domain Inception Score needs the domain evaluator")
        module: torch.nn.Module = DomainLogits(evaluator)
        source = "domain evaluator (stand-in for Inception: joint attribute classes)"
    elif kind == "inception":
        from ldmscale.metrics.features import inception_weights_file

        module = InceptionLogits(inception_weights_file(weights, options, cache))
        source = weights
    else:
        raise ValueError(f"Inception Score classifier {kind!r}: choose domain or inception")
    module.eval()
    return module, {
        "is_classifier": kind,
        "is_weights": source,
        "is_weights_sha256": weights_hash(module),
        "is_splits": SPLITS,
    }
