"""Perceptual distance between a super-resolved image and its high-resolution target, one value
per image (averaged by `ldmscale.metrics.scores.MeanScore`, merged exactly across shards):

- `lpips` (real data): torchmetrics' `LearnedPerceptualImagePatchSimilarity` (Zhang et al.,
  2018), AlexNet backbone with the LPIPS linear layers torchmetrics ships. The backbone's
  ImageNet weights come from `eval.lpips_weights` (a path or URI of torchvision's
  `alexnet-owt-7be5be79.pth`; nothing is downloaded): the file is put where torch.hub looks for
  it, in a folder of its own. Needs torchvision (`lpips_unavailable` says why not);
- `domain` (embedded domain): the domain evaluator standing in for AlexNet, with LPIPS's
  formula and unit weights (the paper's "baseline" variant, its eq. 1 with w_l = 1): at the
  end of each of the evaluator's convolution stages, features unit-normalised over channels,
  squared differences summed over channels and averaged over positions, summed over stages.
  A stand-in, documented as one: it ranks images by the evaluator's idea of their content, not
  by human judgement.

Each is a module (images a, b [B, 3, H, W] in [-1, 1]) -> [B] distances, built with its protocol
entries by `build_perceptual`.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import torch

from ldmscale.errors import MissingSource, require_finite
from ldmscale.provenance import weights_hash

_EPS = 1e-10
"""LPIPS's `normalize_tensor` epsilon."""


class DomainPerceptual(torch.nn.Module):
    """LPIPS's formula (unit weights) on the domain evaluator's stage features."""

    def __init__(self, evaluator: Any) -> None:
        super().__init__()
        self.evaluator = evaluator

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """[B] distances between images `a` and `b` [B, 3, H, W] in [-1, 1]."""
        require_finite(a, "perceptual distance: the images")
        total = torch.zeros(a.shape[0], device=a.device, dtype=torch.float64)
        for fa, fb in zip(self.evaluator.stages(a), self.evaluator.stages(b), strict=True):
            na = fa / (fa.norm(dim=1, keepdim=True) + _EPS)
            nb = fb / (fb.norm(dim=1, keepdim=True) + _EPS)
            total += ((na - nb) ** 2).sum(dim=1).mean(dim=(1, 2)).double().to(total.device)
        return total


class LPIPS(torch.nn.Module):
    """torchmetrics' LPIPS (AlexNet), per image."""

    def __init__(self) -> None:
        super().__init__()
        from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

        self.metric = LearnedPerceptualImagePatchSimilarity(net_type="alex", reduction="none")

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """[B] LPIPS between images `a` and `b` [B, 3, H, W] in [-1, 1]."""
        require_finite(a, "LPIPS: the images")
        self.metric.reset()
        return self.metric(a.float().clamp(-1, 1), b.float().clamp(-1, 1)).reshape(-1).double()


def lpips_unavailable() -> str | None:
    """Why torchmetrics' LPIPS cannot be built here (None when it can): it needs torchvision."""
    try:
        import torchvision  # noqa: F401
    except ImportError as err:  # a torchvision built for another torch fails here too
        return f"torchvision cannot be imported ({type(err).__name__}: {err})"
    return None


def load_lpips(weights: str, options: dict[str, Any] | None = None, cache: str = "") -> LPIPS:
    """LPIPS with the AlexNet weights at `weights` (path or URI); ModuleNotFoundError naming
    what to install without torchvision, MissingSource for a missing file."""
    from ldmscale.storage.cache import fetch_pretrained

    if not weights:
        raise ValueError(
            "super-resolution on real data needs eval.lpips_weights=<path or URI of "
            "torchvision's alexnet-owt-7be5be79.pth>"
        )
    reason = lpips_unavailable()
    if reason is not None:
        raise ModuleNotFoundError(
            f"LPIPS: {reason}; install the torchvision that constraints.txt pins beside this "
            "torch (make install does)"
        )
    local = fetch_pretrained(weights, options, cache)
    if not os.path.isfile(local):
        raise MissingSource(f"eval.lpips_weights={weights!r}: no such file")
    from torchvision.models import AlexNet_Weights

    url = AlexNet_Weights.IMAGENET1K_V1.url
    previous = torch.hub.get_dir()
    with tempfile.TemporaryDirectory(prefix="ldmscale-hub-") as hub:
        os.makedirs(os.path.join(hub, "checkpoints"))
        os.symlink(os.path.abspath(local), os.path.join(hub, "checkpoints", url.split("/")[-1]))
        torch.hub.set_dir(hub)
        try:
            module = LPIPS()
        finally:
            torch.hub.set_dir(previous)
    return module


def build_perceptual(
    kind: str,
    *,
    evaluator: Any = None,
    weights: str = "",
    options: dict[str, Any] | None = None,
    cache: str = "",
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """(distance module in eval mode, its protocol entries) for `kind` `domain` or `lpips`."""
    if kind == "domain":
        if evaluator is None:
            raise ValueError("the domain perceptual distance needs the domain evaluator")
        module: torch.nn.Module = DomainPerceptual(evaluator)
        source = "domain evaluator (stand-in for LPIPS: its stage features, unit weights)"
    elif kind == "lpips":
        module, source = load_lpips(weights, options, cache), weights
    else:
        raise ValueError(f"perceptual distance {kind!r} is not valid; choose domain or lpips")
    module.eval()
    protocol = {
        "perceptual": kind,
        "perceptual_weights": source,
        "perceptual_weights_sha256": weights_hash(module),
    }
    return module, protocol
